//! A drop-in replacement for MySQL 9.7's clone plugin (`mysql_clone.so`).
//!
//! Layout: `server` is the boundary with mysqld (bindings, the exported
//! plugin declaration, services, storage-engine interface, performance_schema
//! tables); `clone` holds the flows; `transfer`, `status`, `checks` and `ownership` are
//! plain Rust with no knowledge of the server, unit-tested on their own.

pub mod checks;
pub mod clone;
pub mod ownership;
pub mod protocol;
pub mod server;
pub mod status;
pub mod transfer;
