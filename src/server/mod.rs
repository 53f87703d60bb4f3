//! The boundary with mysqld: the only module with `unsafe` code. `ffi` is
//! the raw layer (mysql-clone-sys); the other modules give the flows safe
//! types over it: the entry points and their panic barrier, sessions and
//! the diagnostics area, the services, the storage engines' clone
//! interface, the clone connections with the donor's send-behind, the
//! performance_schema tables, the system variables, and file I/O on the
//! engines' descriptors with the recipient's write-behind.

pub mod clone_protocol;
pub mod config;
mod diagnostics;
pub mod entry;
pub mod errors;
pub mod ffi;
pub mod files;
pub mod pfs;
pub mod plugin;
pub mod services;
pub mod session;
pub mod storage;
mod sysvars;

/// A server call's status: 0, or the error number it raised.
fn status(err: i32) -> Result<(), errors::Error> {
    if err == 0 {
        Ok(())
    } else {
        Err(errors::Error::reported(err))
    }
}

/// "LTS" or "Innovation": the maturity of the server this plugin was built for.
pub const MYSQL_VERSION_MATURITY: &str = match std::ffi::CStr::from_bytes_with_nul(ffi::MYSQL_VERSION_MATURITY) {
    Ok(s) => match s.to_str() {
        Ok(s) => s,
        Err(_) => "",
    },
    Err(_) => "",
};
