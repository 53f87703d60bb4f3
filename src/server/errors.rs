//! MySQL error numbers (mysql-clone-sys, generated from the message files).

pub use mysql_clone_sys::errors::*;
