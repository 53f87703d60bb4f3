//! MySQL error numbers, each message to clients typed by the arguments it
//! takes (mysql-clone-sys, generated from the message files), and the one
//! error type of the flows and the server layer.

pub use mysql_clone_sys::errors::*;
pub use mysql_clone_sys::messages as message;
pub use mysql_clone_sys::{args, Message};

use super::diagnostics;
use super::files::CopyError;
use std::fmt;

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
    /// A number known only at run time: see [`diagnostics::raise_errno`].
    Unknown,
}

impl Error {
    /// An error number this thread does not raise: the server or a storage
    /// engine has put it into the diagnostics area already, or it only
    /// tells an engine to stop, or a worker carries it while the master
    /// thread reports the error.
    pub fn reported(code: i32) -> Error {
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

    /// Whether nothing is left to raise of this error.
    pub fn is_reported(&self) -> bool {
        self.pending.is_none()
    }

    /// Raises the error into the diagnostics area of the calling thread's
    /// session, unless it is there already.
    pub fn raise(self) -> Error {
        match self.pending {
            None => {}
            Some(Args::None) => diagnostics::raise(Message::new(self.code)),
            Some(Args::Str(a)) => diagnostics::raise_str(Message::new(self.code), &a),
            Some(Args::StrStr(a, b)) => diagnostics::raise_two_strs(Message::new(self.code), &a, &b),
            Some(Args::Int(n)) => diagnostics::raise_int(Message::new(self.code), n),
            Some(Args::IntInt(a, b)) => diagnostics::raise_two_ints(Message::new(self.code), a, b),
            Some(Args::File(file, err)) => diagnostics::raise_file(Message::new(self.code), &file, &err),
            Some(Args::Unknown) => diagnostics::raise_errno(self.code),
        }
        Error::reported(self.code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MySQL error {}", self.code)?;
        match &self.pending {
            None | Some(Args::None) | Some(Args::Unknown) => Ok(()),
            Some(Args::Str(a)) => write!(f, ": {a}"),
            Some(Args::StrStr(a, b)) => write!(f, ": {a}, {b}"),
            Some(Args::Int(n)) => write!(f, ": {n}"),
            Some(Args::IntInt(a, b)) => write!(f, ": {a}, {b}"),
            Some(Args::File(file, err)) => write!(f, ": {file}: {err}"),
        }
    }
}

impl std::error::Error for Error {}

/// A failed copy as the statement's error: ER_ERROR_ON_READ or
/// ER_ERROR_ON_WRITE naming the file and the OS error, or ER_OUTOFMEMORY.
impl From<CopyError> for Error {
    fn from(e: CopyError) -> Error {
        match e {
            CopyError::Read { file, error } => Error::with_file(message::ER_ERROR_ON_READ, file, error),
            CopyError::Write { file, error } => Error::with_file(message::ER_ERROR_ON_WRITE, file, error),
            CopyError::OutOfMemory(len) => Error::with_int(message::ER_OUTOFMEMORY, len as i64),
        }
    }
}
