//! The boundary with mysqld: the only module with `unsafe` code. `ffi` is
//! the raw, generated layer; the other modules are thin safe wrappers.

pub mod errors;
pub mod ffi;
pub mod pfs;
pub mod plugin;
pub mod services;
pub mod session;
pub mod storage;
pub mod sysvars;
