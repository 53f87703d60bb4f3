//! A drop-in replacement for MySQL 9.7's clone plugin (`mysql_clone.so`).
//!
//! Layout: `server` is the boundary with mysqld (the exported plugin
//! declaration and entry points, services, storage-engine interface,
//! performance_schema tables, file I/O on the engine's descriptors) over the
//! raw bindings of `mysql-clone-sys`; `clone` holds the flows; the pure
//! core (codec, checks, transfer, status) is the `clone-core` crate.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use clone_core::{checks, doublewrite, ownership, protocol, space, status, transfer};

mod clone;
mod server;
