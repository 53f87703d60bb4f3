//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone.

pub mod donor;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::services;

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
