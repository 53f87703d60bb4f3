//! The small exchanges on a connection to the donor: a command, EXIT, the
//! answer to ATTACH or REINIT, reading a stream to its end; and the errors
//! the recipient makes of what the donor or a writer reported.

use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use crate::server::files::CopyError;
use crate::server::session::Thd;
use clone_core::protocol::data::is_stream_message;
use clone_core::protocol::{Command, Response};
use std::time::{Duration, Instant};

/// After a local error, how long the donor has to end its stream.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The donor's COM_RES_ERROR as ER_CLONE_DONOR "<errno> : <message>" (the
/// server parses that shape for its own log line).
pub(super) fn donor_error(code: i32, message: &[u8]) -> Error {
    let text = String::from_utf8_lossy(message);
    Error::with_str(message::ER_CLONE_DONOR, format!("{code} : {text}"))
}

/// For a call the code makes only once what it needs is in place.
pub(super) fn missing(what: &str) -> Error {
    Error::internal(format_args!("no {what}"))
}

/// Sends a command. `active` makes the connection the session's clone
/// socket (KILL wakes it); the auxiliary connection is never active.
pub(super) fn send(conn: &mut Connection, thd: Thd, active: bool, command: &Command<'_>) -> Result<(), Error> {
    let (code, body) = command.encode_parts();
    conn.send(Some(thd), active, code, body)
}

/// Sends COM_EXIT and waits for the donor's answer.
pub(super) fn exit(conn: &mut Connection, thd: Thd, active: bool) -> Result<(), Error> {
    send(conn, thd, active, &Command::Exit)?;
    let (packet, _) = conn.receive(Some(thd), active, 0)?;
    match Response::decode(packet) {
        Ok(Response::Complete) => Ok(()),
        Ok(Response::Error { code, message }) => Err(donor_error(code, message)),
        _ => Err(Error::protocol("Wrong Clone RPC response to COM_EXIT")),
    }
}

/// Reads what the donor still streams on `conn` until its answer that ends
/// the stream, for at most DRAIN_LIMIT; true when that answer came.
pub(super) fn drain_stream(conn: &mut Connection, thd: Thd) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        match conn.receive(Some(thd), true, 0) {
            Ok((packet, _)) if is_stream_message(packet) => continue,
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
    false
}

/// The answer to ATTACH or REINIT: the donor's locators, then COMPLETE.
pub(super) fn read_locators(conn: &mut Connection, thd: Thd) -> Result<Vec<(u8, Vec<u8>)>, Error> {
    let mut locators = None;
    loop {
        let (packet, _) = conn.receive(Some(thd), true, 0)?;
        match Response::decode(packet) {
            Ok(Response::Locators { locators: l, .. }) => locators = Some(l.iter().map(|l| (l.db_type, l.bytes.to_vec())).collect()),
            Ok(Response::Complete) => return locators.ok_or_else(|| Error::protocol("Wrong Clone RPC response to COM_ATTACH")),
            Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
            _ => return Err(Error::protocol("Wrong Clone RPC response to COM_ATTACH")),
        }
    }
}

/// A write that failed behind a stream: its file and OS error, kept for
/// the statement's error when another task saw only a network error.
pub(super) struct LostWrite {
    name: String,
    errno: Option<i32>,
    kind: std::io::ErrorKind,
}

impl LostWrite {
    /// The write failure in `e`, if it is one.
    pub(super) fn of(e: &CopyError) -> Option<LostWrite> {
        match e {
            CopyError::Write { file, error } => Some(LostWrite { name: file.clone(), errno: error.raw_os_error(), kind: error.kind() }),
            _ => None,
        }
    }

    pub(super) fn error(&self) -> Error {
        let os = self.errno.map_or_else(|| std::io::Error::from(self.kind), std::io::Error::from_raw_os_error);
        Error::with_file(message::ER_ERROR_ON_WRITE, self.name.clone(), os)
    }
}
