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

mod clone;
mod server;

use clone_core::status::Tracker;
use server::errors::Error;
use server::plugin::CloneRequest;
use server::session::Thd;
use std::ffi::CStr;
use std::sync::Arc;

/// The composition root: each entry point of the server calls its flow.
struct Flows;

impl server::plugin::Flows for Flows {
    fn local(thd: Thd, status: Arc<Tracker>, data_dir: &CStr) -> Result<(), Error> {
        clone::local::run(thd, status, data_dir)
    }

    fn client(thd: Thd, status: Arc<Tracker>, request: &CloneRequest<'_>) -> Result<(), Error> {
        clone::recipient::run(thd, status, request)
    }

    fn server(thd: Thd) -> Result<(), Error> {
        clone::donor::serve(thd)
    }
}

server::plugin::export_plugin!(Flows);
