//! A safe face on the server's clone_protocol service, which carries every
//! byte of a remote clone (connection, authentication, TLS, compression,
//! packet framing, timeouts, KILL): the donor's side of one clone connection,
//! the recipient's connections to a donor, and the metadata checks.

use super::entry::entry_point;
use super::errors::*;
use super::ffi::{self, cs_conn};
use super::session::Thd;
use clone_core::transfer::buffers::{AlignedBuf, BufferPool};
use clone_core::transfer::pipeline::{Pipeline, Sink};
use parking_lot::Mutex;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Scope;

use super::status as check;

/// The donor's end of a clone connection: the session's own connection.
#[derive(Clone, Copy)]
pub struct DonorLink<'s>(pub Thd<'s>);

impl DonorLink<'_> {
    /// Waits for the next command: its code and body. The body lives in
    /// the connection's buffer until the next read.
    pub fn next_command(&mut self) -> Result<(u8, &[u8]), Error> {
        let mut code = 0u8;
        let mut buf: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: valid THD; out-parameters are locals.
        check(unsafe { ffi::cs_get_command(self.0.as_ptr(), &mut code, &mut buf, &mut len) })?;
        // SAFETY: the server's packet: len bytes at buf, alive until the next read.
        let body = if buf.is_null() || len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(buf, len) } };
        Ok((code, body))
    }

    /// Sends one response message (code byte first). With `secure`, the
    /// service refuses to send over a connection without TLS.
    pub fn send(&self, secure: bool, packet: &mut [u8]) -> Result<(), Error> {
        // SAFETY: the service only reads `packet`.
        check(unsafe { ffi::cs_send_response(self.0.as_ptr(), secure, packet.as_mut_ptr(), packet.len()) })
    }

    /// Sends the diagnostics area's error (or, if fatal, closes the
    /// connection) and clears the error.
    pub fn send_error(&self, fatal: bool) -> Result<(), Error> {
        // SAFETY: valid THD.
        check(unsafe { ffi::cs_send_error(self.0.as_ptr(), clone_core::protocol::response::ERROR, fatal) })
    }
}

/// A message for the recipient, owned until it is sent.
pub enum Outgoing {
    /// `buf[range]`: file data read in place, its head written before it.
    Aligned(AlignedBuf, Range<usize>),
    /// `bytes[start..]`.
    Bytes(Vec<u8>, usize),
}

/// Sends messages on a donor's connection and hands their buffers back:
/// the sending end of the send-behind pipeline, or the session itself.
struct Courier<'s> {
    link: DonorLink<'s>,
    pool: BufferPool,
    keep: crossbeam_channel::Sender<Vec<u8>>,
}

impl Courier<'_> {
    /// Sends `message` and recycles its buffer; the error number if the
    /// send failed.
    fn deliver(&self, secure: bool, mut message: Outgoing) -> Result<(), i32> {
        let bytes = match &mut message {
            Outgoing::Aligned(buf, range) => buf.as_mut_slice().get_mut(range.clone()),
            Outgoing::Bytes(bytes, start) => bytes.get_mut(*start..),
        };
        let sent = bytes.map_or(Err(ER_INTERNAL_ERROR), |b| self.link.send(secure, b).map_err(|e| e.code()));
        self.recycle(message);
        sent
    }

    fn recycle(&self, message: Outgoing) {
        match message {
            Outgoing::Aligned(buf, _) => self.pool.put(buf),
            Outgoing::Bytes(bytes, _) => drop(self.keep.try_send(bytes)),
        }
    }
}

impl Sink for Courier<'_> {
    type Item = (bool, Outgoing);
    type Error = i32;

    fn started(&mut self) {
        super::files::yield_to_workload();
    }

    fn take(&mut self, (secure, message): (bool, Outgoing)) -> Result<(), i32> {
        self.deliver(secure, message)
    }

    fn discard(&mut self, (_, message): (bool, Outgoing)) {
        self.recycle(message);
    }
}

/// A donor's messages, sent in order from a thread of their own (a
/// pipeline in the session's scope) while the session goes on: the engine
/// reads the next block from disk while the last one crosses the network.
/// At most [`SEND_BEHIND_DEPTH`] messages wait, and two aligned buffers
/// circulate. A failed send fails every later call; what was queued after
/// it is not sent. Without a thread (no scope given, or none could start)
/// each message is sent in place.
pub struct SendBehind<'s> {
    /// Sends in place, and recycles for the session.
    courier: Courier<'s>,
    pipeline: Option<Pipeline<Courier<'s>>>,
    spare: crossbeam_channel::Receiver<Vec<u8>>,
    /// The error number of the first failed send, once reported.
    failed: Cell<Option<i32>>,
}

/// Messages queued at most (a block's descriptor and its data, twice).
const SEND_BEHIND_DEPTH: usize = 4;
/// Aligned buffers: one being sent, one being filled.
const ALIGNED_BUFFERS: usize = 2;

impl<'s> SendBehind<'s> {
    /// The thread sends on the session's connection only while the session
    /// does not: the session reads the next command, or sends itself,
    /// after `drain` (or the drop) has waited for the queue.
    pub fn new<'scope>(link: DonorLink<'s>, scope: Option<&'scope Scope<'scope, '_>>) -> SendBehind<'s>
    where
        's: 'scope,
    {
        let (keep, spare) = crossbeam_channel::bounded(SEND_BEHIND_DEPTH);
        let courier = Courier { link, pool: BufferPool::new(ALIGNED_BUFFERS), keep };
        let pipeline = scope.and_then(|scope| {
            let sender = Courier { link, pool: courier.pool.clone(), keep: courier.keep.clone() };
            Pipeline::start_scoped(scope, "clone_send", SEND_BEHIND_DEPTH, sender)
                .map_err(|e| log::info!("Sending clone data in place: no sender thread ({e})"))
                .ok()
        });
        SendBehind { courier, pipeline, spare, failed: Cell::new(None) }
    }

    /// An aligned buffer of at least `len` bytes, once one is free.
    pub fn aligned(&self, len: usize) -> Result<AlignedBuf, Error> {
        self.courier.pool.take(len).map_err(|_| Error::with_int(message::ER_OUTOFMEMORY, len as i64))
    }

    /// An empty vector, reused from a sent message where one is spare.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = self.spare.try_recv().unwrap_or_default();
        v.clear();
        v
    }

    /// Takes back the buffer of a message that is not sent after all.
    pub fn recycle(&self, message: Outgoing) {
        self.courier.recycle(message);
    }

    /// Queues a message; fails with an earlier send's error.
    pub fn send(&self, secure: bool, message: Outgoing) -> Result<(), Error> {
        if let Err(e) = self.check() {
            self.recycle(message);
            return Err(e);
        }
        match &self.pipeline {
            Some(pipeline) => pipeline.push((secure, message)).map_err(|(_, message)| {
                self.recycle(message);
                Error::internal("the sender thread has ended")
            }),
            None => self.courier.deliver(secure, message).map_err(|code| {
                // Sent in place, the server raised the error itself.
                self.failed.set(Some(code));
                Error::reported(code)
            }),
        }
    }

    /// Waits until every queued message is sent; the first failure, if any.
    pub fn drain(&self) -> Result<(), Error> {
        if let Some(Err(code)) = self.pipeline.as_ref().map(Pipeline::drain) {
            return Err(self.first_report(code));
        }
        self.check()
    }

    /// A send that failed on the thread was reported by the server to that
    /// thread (its error log, as it has no session); the first call after
    /// it returns it to be raised on the session.
    fn check(&self) -> Result<(), Error> {
        if let Some(code) = self.pipeline.as_ref().and_then(Pipeline::take_failure) {
            return Err(self.first_report(code));
        }
        self.failed.get().map_or(Ok(()), |code| Err(Error::reported(code)))
    }

    fn first_report(&self, code: i32) -> Error {
        self.failed.set(Some(code));
        Error::unknown(code)
    }
}

/// Where and how the recipient connects.
#[derive(Clone, Debug)]
pub struct DonorAddress {
    pub host: CString,
    pub port: u32,
    pub user: CString,
    pub password: CString,
    /// A mysql_ssl_mode value (1 disabled, 2 preferred, 3 required).
    pub ssl_mode: i32,
    pub ssl_key: Option<CString>,
    pub ssl_cert: Option<CString>,
    pub ssl_ca: Option<CString>,
    pub compress: bool,
}

/// Wakes every connection it watches from another thread: the server's
/// KILL only wakes a session's one clone socket, and a donor may keep a
/// read on any other connection of the clone (auxiliary, workers) busy.
#[derive(Default)]
pub struct Interrupter {
    /// Sockets of open connections; a connection leaves before its socket
    /// is closed, so a descriptor here is never another file's.
    sockets: Mutex<Vec<i32>>,
    fired: AtomicBool,
}

impl Interrupter {
    /// Shuts every watched connection down (and those watched later): a
    /// blocked read or write there fails at once.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        for &fd in self.sockets.lock().iter() {
            // SAFETY: fd is an open socket of a watched connection (see `sockets`).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// A recipient's connection to a donor, in clone mode.
pub struct Connection {
    raw: NonNull<cs_conn>,
    watcher: Option<Arc<Interrupter>>,
}

// SAFETY: one connection is used by one thread at a time.
unsafe impl Send for Connection {}

fn opt(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

impl Connection {
    /// Connects, authenticates and sends COM_CLONE. `thd` (if any) gets the
    /// connection as its clone socket, so KILL wakes a blocked read.
    pub fn open(thd: Option<Thd>, to: &DonorAddress) -> Result<Connection, Error> {
        let thd_ptr = thd.map_or(std::ptr::null_mut(), Thd::as_ptr);
        // SAFETY: all strings outlive the call.
        let raw = unsafe {
            ffi::cs_connect(
                thd_ptr,
                to.host.as_ptr(),
                to.port,
                to.user.as_ptr(),
                to.password.as_ptr(),
                to.ssl_mode,
                opt(&to.ssl_key),
                opt(&to.ssl_cert),
                opt(&to.ssl_ca),
                to.compress,
            )
        };
        NonNull::new(raw).map(|raw| Connection { raw, watcher: None }).ok_or_else(|| match thd.map(|t| t.error().0 as i32).filter(|&e| e != 0) {
            Some(code) => Error::reported(code),
            // Without a session the server only logs why.
            None => Error::unknown(ER_INTERNAL_ERROR),
        })
    }

    /// Sends a command: its code and body, as the service takes them.
    pub fn send(&mut self, thd: Option<Thd>, set_active: bool, command: u8, mut body: Vec<u8>) -> Result<(), Error> {
        let thd_ptr = thd.map_or(std::ptr::null_mut(), Thd::as_ptr);
        // SAFETY: valid connection; the service only reads the buffer.
        check(unsafe { ffi::cs_send_command(thd_ptr, self.raw.as_ptr(), set_active, command, body.as_mut_ptr(), body.len()) })
    }

    /// Reads one response message (code byte first) and the bytes it took
    /// on the wire. The message lives in the connection's buffer until the
    /// next read, which the borrow enforces.
    pub fn receive(&mut self, thd: Option<Thd>, set_active: bool, timeout_s: u32) -> Result<(&[u8], usize), Error> {
        let thd_ptr = thd.map_or(std::ptr::null_mut(), Thd::as_ptr);
        let mut pkt: *mut u8 = std::ptr::null_mut();
        let (mut len, mut net_len) = (0usize, 0usize);
        // SAFETY: valid connection; out-parameters are locals.
        check(unsafe { ffi::cs_get_response(thd_ptr, self.raw.as_ptr(), set_active, timeout_s, &mut pkt, &mut len, &mut net_len) })?;
        // SAFETY: the server's packet: len bytes at pkt, alive until the next read.
        let packet = if pkt.is_null() || len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(pkt, len) } };
        Ok((packet, net_len))
    }

    /// Lets `by` shut this connection down until it is closed.
    pub fn watch(&mut self, by: &Arc<Interrupter>) {
        // SAFETY: valid connection.
        let fd = unsafe { ffi::cs_socket(self.raw.as_ptr()) };
        if fd < 0 {
            return;
        }
        let mut sockets = by.sockets.lock();
        sockets.push(fd);
        if by.fired() {
            // SAFETY: fd is this open connection's socket.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        self.watcher = Some(Arc::clone(by));
    }

    /// Asks the donor, over this connection, to kill `victim`'s session.
    pub fn kill(&mut self, victim: &Connection) {
        // SAFETY: both connections are open.
        unsafe { ffi::cs_kill(self.raw.as_ptr(), victim.raw.as_ptr()) };
    }

    /// Closes the connection; `fatal` skips the polite COM_RESET_CONNECTION.
    pub fn close(mut self, thd: Option<Thd>, fatal: bool, clear_error: bool) {
        if let Some(watcher) = self.watcher.take() {
            // SAFETY: valid connection.
            let fd = unsafe { ffi::cs_socket(self.raw.as_ptr()) };
            watcher.sockets.lock().retain(|&s| s != fd);
        }
        let thd_ptr = thd.map_or(std::ptr::null_mut(), Thd::as_ptr);
        // SAFETY: frees the connection exactly once (self is consumed).
        unsafe { ffi::cs_disconnect(thd_ptr, self.raw.as_ptr(), fatal, clear_error) }
    }
}

entry_point! {
pub(super) fn collect_string(ctx: *mut c_void, s: *const c_char, len: usize) = (); {
    // SAFETY: ctx is the Vec passed below; s has len bytes.
    let list = unsafe { &mut *ctx.cast::<Vec<String>>() };
    // SAFETY: as above.
    let bytes = if s.is_null() { &[][..] } else { unsafe { std::slice::from_raw_parts(s.cast::<u8>(), len) } };
    list.push(String::from_utf8_lossy(bytes).into_owned());
}
}

/// Every collation the data dictionary knows.
pub fn collations(thd: Thd) -> Result<Vec<String>, Error> {
    let mut list: Vec<String> = Vec::new();
    // SAFETY: the visitor only pushes onto `list`.
    check(unsafe { ffi::cs_get_charsets(thd.as_ptr(), Some(collect_string), (&mut list as *mut Vec<String>).cast()) })?;
    Ok(list)
}

/// Whether the shared library at `path` loads here: it is loaded and
/// unloaded, as the stock plugin checks a donor's plugins.
pub fn library_loads(path: &Path) -> bool {
    let Ok(path) = CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: a NUL-terminated path; the handle is closed at once.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

/// ER_CLONE_CHARSET for every collation unknown here (each raised); the
/// last error.
pub fn validate_collations(thd: Thd, names: &[Vec<u8>]) -> Result<(), Error> {
    let ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr().cast()).collect();
    let lens: Vec<usize> = names.iter().map(Vec::len).collect();
    // SAFETY: all slices outlive the call.
    check(unsafe { ffi::cs_validate_charsets(thd.as_ptr(), ptrs.as_ptr(), lens.as_ptr(), names.len()) })
}

/// Compares the donor's configuration values with ours (ER_CLONE_OS,
/// ER_CLONE_PLATFORM, ER_CLONE_CONFIG; each raised).
pub fn validate_configs(thd: Thd, pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<(), Error> {
    let keys: Vec<*const c_char> = pairs.iter().map(|p| p.0.as_ptr().cast()).collect();
    let key_lens: Vec<usize> = pairs.iter().map(|p| p.0.len()).collect();
    let values: Vec<*const c_char> = pairs.iter().map(|p| p.1.as_ptr().cast()).collect();
    let value_lens: Vec<usize> = pairs.iter().map(|p| p.1.len()).collect();
    // SAFETY: all slices outlive the call.
    check(unsafe { ffi::cs_validate_configs(thd.as_ptr(), keys.as_ptr(), key_lens.as_ptr(), values.as_ptr(), value_lens.as_ptr(), pairs.len()) })
}

/// ER_CLONE_DONOR_VERSION (raised) unless the server's rules allow the clone.
pub fn validate_version(recipient: &str, donor: &str, recipient_lts: bool, donor_lts: bool) -> Result<(), Error> {
    // SAFETY: both strings outlive the call.
    check(unsafe { ffi::cs_validate_version(recipient.as_ptr().cast(), recipient.len(), donor.as_ptr().cast(), donor.len(), recipient_lts, donor_lts) })
}

/// A plugin's name and shared object.
pub type PluginName = (Vec<u8>, Vec<u8>);

entry_point! {
fn collect_plugin(ctx: *mut c_void, name: *const c_char, name_len: usize, so: *const c_char, so_len: usize) = (); {
    // SAFETY: ctx is the Vec passed below; the strings have the given lengths.
    let list = unsafe { &mut *ctx.cast::<Vec<PluginName>>() };
    // SAFETY: as above.
    let bytes = |p: *const c_char, n: usize| if p.is_null() { Vec::new() } else { unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec() };
    list.push((bytes(name, name_len), bytes(so, so_len)));
}
}

/// Every ready plugin: name and shared object (empty for built-ins).
pub fn plugins(thd: Thd) -> Result<Vec<PluginName>, Error> {
    let mut list: Vec<PluginName> = Vec::new();
    // SAFETY: the visitor only pushes onto `list`.
    check(unsafe { ffi::cs_foreach_plugin(thd.as_ptr(), Some(collect_plugin), (&mut list as *mut Vec<PluginName>).cast()) })?;
    Ok(list)
}

pub fn plugin_installed(thd: Thd, name: &[u8]) -> bool {
    // SAFETY: name outlives the call.
    unsafe { ffi::cs_plugin_installed(thd.as_ptr(), name.as_ptr().cast(), name.len()) }
}
