//! MySQL error numbers, and each message to clients typed by the arguments
//! it takes (mysql-clone-sys, generated from the message files).

pub use mysql_clone_sys::errors::*;
pub use mysql_clone_sys::messages as message;
pub use mysql_clone_sys::{args, Message};
