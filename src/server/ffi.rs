//! The raw bindings (mysql-clone-sys). Only the server layer uses them.

pub use mysql_clone_sys::*;
