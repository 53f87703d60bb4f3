//! The boundary with mysqld: the only module with `unsafe` code. `ffi` is
//! the raw, generated layer (mysql-clone-sys); the other modules are thin
//! safe wrappers.

pub mod clone_protocol;
pub mod errors;
pub mod ffi;
pub mod files;
pub mod pfs;
pub mod plugin;
pub mod services;
pub mod session;
pub mod storage;
pub mod sysvars;

/// A server call's status: 0, or the error number it raised.
fn status(err: i32) -> Result<(), errors::Error> {
    if err == 0 {
        Ok(())
    } else {
        Err(errors::Error::raised(err))
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
