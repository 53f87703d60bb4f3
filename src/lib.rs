//! A drop-in replacement for MySQL 9.7's clone plugin (`mysql_clone.so`).
//!
//! Layout: `server` is the boundary with mysqld (the plugin's declaration
//! and entry points, services, storage-engine interface, performance_schema
//! tables, file I/O on the engine's descriptors) over the raw bindings of
//! `mysql-clone-sys`; `clone` holds the flows; the pure core (codec, checks,
//! transfer, status) is the `clone-core` crate. This file is the
//! composition root: it exports the plugin with the flows behind its entry
//! points, so calls run one way, entry points to flows to the server layer.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use clone_core::{checks, doublewrite, ownership, protocol, space, status, transfer};

mod clone;
mod server;

/// The composition root: each entry point of the server calls its flow.
struct Flows;

impl server::plugin::Flows for Flows {
    fn local(thd: server::session::Thd, data_dir: &std::ffi::CStr) -> Result<(), server::errors::Error> {
        clone::local::run(thd, data_dir)
    }

    fn client(thd: server::session::Thd, request: &server::plugin::CloneRequest<'_>) -> Result<(), server::errors::Error> {
        clone::recipient::run(thd, request)
    }

    fn server(thd: server::session::Thd) -> Result<(), server::errors::Error> {
        clone::donor::serve(thd)
    }
}

server::plugin::export_plugin!(Flows);
