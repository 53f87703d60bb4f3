//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone.

pub mod donor;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::errors::*;
use crate::server::services;
use crate::server::storage::Errno;

/// Errors after which a clone connection cannot carry another message
/// (the stock plugin's list). KILL is one of them for the recipient; the
/// donor still reports it to the recipient.
fn breaks_connection(e: Errno) -> bool {
    [
        ER_NET_PACKETS_OUT_OF_ORDER,
        ER_NET_UNCOMPRESS_ERROR,
        ER_NET_PACKET_TOO_LARGE,
        ER_NET_READ_ERROR,
        ER_NET_READ_INTERRUPTED,
        ER_NET_ERROR_ON_WRITE,
        ER_NET_WRITE_INTERRUPTED,
        ER_NET_WAIT_ERROR,
        ER_QUERY_INTERRUPTED,
        ER_CLONE_PROTOCOL,
    ]
    .contains(&e)
}

/// A failed clone into a new directory leaves nothing behind: the server
/// checked that the directory did not exist before the clone, so all of it
/// is the clone's. (The stock plugin leaves the partial copy in place.)
fn remove_partial_clone(dir: &str) {
    let path = std::path::Path::new(dir);
    if path.is_dir() {
        match std::fs::remove_dir_all(path) {
            Ok(()) => services::log_info(&format!("Removed incomplete clone directory {dir}")),
            Err(e) => services::log_error(&format!("Cannot remove incomplete clone directory {dir}: {e}")),
        }
    }
}
