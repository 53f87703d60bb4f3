//! The server's configuration, as the flows read it: the server's global
//! variables (as text, through the clone_protocol service), a session's
//! integer variables, and this plugin's own `clone_*` variables.

use super::clone_protocol::collect_string;
use super::errors::Error;
use super::ffi;
use super::session::Thd;
use super::status as check;
use std::ffi::{c_char, CString};

pub use super::services::{session_uint, set_session_uint};
pub use super::sysvars::{dry_run, excluded_plugins, settings, ssl_files, stage_in_place, valid_donor_list, with_ddl_timeout, Settings};

/// Global variables of the server as text, in the order asked.
pub fn variables(thd: Thd, keys: &[&str]) -> Result<Vec<String>, Error> {
    let owned: Vec<CString> = keys.iter().map(|k| CString::new(*k).unwrap_or_default()).collect();
    let ptrs: Vec<*const c_char> = owned.iter().map(|k| k.as_ptr()).collect();
    let mut values: Vec<String> = Vec::new();
    // SAFETY: keys outlive the call; the visitor only pushes onto `values`.
    check(unsafe { ffi::cs_get_configs(thd.as_ptr(), ptrs.as_ptr(), ptrs.len(), Some(collect_string), (&mut values as *mut Vec<String>).cast()) })?;
    Ok(values)
}

/// One global variable of the server as text; None if it cannot be read.
pub fn variable(thd: Thd, key: &str) -> Option<String> {
    variables(thd, &[key]).ok().and_then(|v| v.into_iter().next())
}
