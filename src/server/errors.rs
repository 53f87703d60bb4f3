//! MySQL error numbers, each message to clients typed by the arguments it
//! takes (mysql-clone-sys, generated from the message files), and the one
//! error type of the flows.

pub use mysql_clone_sys::errors::*;
pub use mysql_clone_sys::messages as message;
pub use mysql_clone_sys::{args, Message};

use super::session;

/// An error of a clone: a MySQL error number with its message's arguments,
/// carried up to where the server reads the session's diagnostics area
/// (an entry point or an engine callback returning, the donor's error
/// packet, the end of a clone before clone_status records it) and raised
/// there, once. The constructors take a [`Message`] of the matching shape,
/// so a wrong argument list does not compile.
#[derive(Debug)]
pub struct Error {
    code: i32,
    pending: Option<Args>,
}

/// What a not yet raised error's message needs.
#[derive(Debug)]
enum Args {
    None,
    Str(String),
    StrStr(String, String),
    Int(i64),
    IntInt(i64, i64),
    File(String, std::io::Error),
    /// A number known only at run time: see [`session::raise_errno`].
    Unknown,
}

impl Error {
    /// An error the server or a storage engine has already put into the
    /// diagnostics area.
    pub fn raised(code: i32) -> Error {
        Error { code, pending: None }
    }

    /// A number that is never raised: one that tells an engine to stop, or
    /// that a worker carries while the master thread reports the error.
    pub fn quiet(code: i32) -> Error {
        Error { code, pending: None }
    }

    pub fn new(m: Message<args::None>) -> Error {
        Error { code: m.code, pending: Some(Args::None) }
    }

    pub fn with_str(m: Message<args::Str>, arg: impl Into<String>) -> Error {
        Error { code: m.code, pending: Some(Args::Str(arg.into())) }
    }

    pub fn with_strs(m: Message<args::StrStr>, a: impl Into<String>, b: impl Into<String>) -> Error {
        Error { code: m.code, pending: Some(Args::StrStr(a.into(), b.into())) }
    }

    pub fn with_int(m: Message<args::Int>, arg: i64) -> Error {
        Error { code: m.code, pending: Some(Args::Int(arg)) }
    }

    pub fn with_ints(m: Message<args::IntInt>, a: i64, b: i64) -> Error {
        Error { code: m.code, pending: Some(Args::IntInt(a, b)) }
    }

    /// A message of a file and the OS error on it (ER_ERROR_ON_WRITE, ...).
    pub fn with_file(m: Message<args::StrIntStr>, file: impl Into<String>, err: std::io::Error) -> Error {
        Error { code: m.code, pending: Some(Args::File(file.into(), err)) }
    }

    /// An error number from a call that did not raise it.
    pub fn unknown(code: i32) -> Error {
        Error { code, pending: Some(Args::Unknown) }
    }

    /// ER_INTERNAL_ERROR "clone: `what`": something this plugin or an
    /// engine did that cannot happen.
    pub fn internal(what: impl std::fmt::Display) -> Error {
        Error::with_str(message::ER_INTERNAL_ERROR, format!("clone: {what}"))
    }

    /// ER_CLONE_PROTOCOL: the peer broke the protocol (`what` says how).
    pub fn protocol(what: impl Into<String>) -> Error {
        Error::with_str(message::ER_CLONE_PROTOCOL, what)
    }

    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the diagnostics area already holds this error.
    pub fn is_raised(&self) -> bool {
        self.pending.is_none()
    }

    /// Raises the error into the diagnostics area of the calling thread's
    /// session, unless it is there already.
    pub fn raise(self) -> Error {
        match self.pending {
            None => {}
            Some(Args::None) => session::raise(Message::new(self.code)),
            Some(Args::Str(a)) => session::raise_str(Message::new(self.code), &a),
            Some(Args::StrStr(a, b)) => session::raise_two_strs(Message::new(self.code), &a, &b),
            Some(Args::Int(n)) => session::raise_int(Message::new(self.code), n),
            Some(Args::IntInt(a, b)) => session::raise_two_ints(Message::new(self.code), a, b),
            Some(Args::File(file, err)) => session::raise_file(Message::new(self.code), &file, &err),
            Some(Args::Unknown) => session::raise_errno(self.code),
        }
        Error::raised(self.code)
    }
}
