//! Sessions (THD), the diagnostics area (`my_error`) and the panic barrier
//! every entry point from the server goes through.

use super::errors::{args, message, Error, Message};
use super::ffi::{self, THD};
use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

/// Plugin-service pointer the server fills in at load time; the initial value
/// is the interface version the plugin was built for.
#[no_mangle]
pub static mut thd_alloc_service: *mut ffi::thd_alloc_service_st = std::ptr::without_provenance_mut(0x0100);

/// As above, for the security context service (the shim reads accounts).
#[no_mangle]
pub static mut security_context_service: *mut c_void = std::ptr::without_provenance_mut(0x0101);

/// A server session. Each THD belongs to one thread at a time; the clone
/// code moves it only between the threads of one statement.
#[derive(Clone, Copy, Debug)]
pub struct Thd(NonNull<THD>);

// SAFETY: a THD is handed between the threads of one clone only while the
// owning thread waits for them; the server calls used here are thread-safe.
unsafe impl Send for Thd {}
// SAFETY: as above.
unsafe impl Sync for Thd {}

impl Thd {
    /// # Safety
    /// `thd` is null or a session the server keeps alive for as long as the
    /// returned value is used (an entry point's argument, until it returns).
    pub unsafe fn from_raw(thd: *mut THD) -> Option<Thd> {
        NonNull::new(thd).map(Thd)
    }

    pub fn as_ptr(self) -> *mut THD {
        self.0.as_ptr()
    }

    /// The session running the calling thread.
    pub fn current() -> Option<Thd> {
        // SAFETY: the calling thread's own session, alive while it runs.
        unsafe { Thd::from_raw(ffi::cs_current_thd()) }
    }

    /// KILL QUERY / KILL CONNECTION / shutdown.
    pub fn killed(self) -> bool {
        // SAFETY: valid THD.
        unsafe { ffi::thd_killed(self.as_ptr().cast()) != 0 }
    }

    /// ER_QUERY_INTERRUPTED once the statement is killed: to be raised by
    /// the thread that `reports` it, only carried by the others.
    pub fn interrupted(self, reports: bool) -> Result<(), Error> {
        match (self.killed(), reports) {
            (false, _) => Ok(()),
            (true, true) => Err(Error::new(message::ER_QUERY_INTERRUPTED)),
            (true, false) => Err(Error::quiet(super::errors::ER_QUERY_INTERRUPTED)),
        }
    }

    /// The authenticated account, "priv_user@priv_host"; None if the
    /// server cannot tell.
    pub fn account(self) -> Option<String> {
        let mut buf = [0u8; 512];
        // SAFETY: valid THD; the shim writes at most buf.len() bytes.
        let len = unsafe { ffi::cs_thd_account(self.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (len > 0 && len <= buf.len()).then(|| String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// The processlist id.
    pub fn thread_id(self) -> u32 {
        // SAFETY: valid THD.
        unsafe { ffi::thd_get_thread_id(self.as_ptr()) as u32 }
    }

    /// Shows the session's statement as this clone statement instrument
    /// (statement/clone/local, client or server) in performance_schema.
    pub fn refine_statement(self, statement: Statement) {
        // SAFETY: valid THD; the key was registered at plugin start.
        unsafe { ffi::cs_statement_refine(self.as_ptr(), ffi::cs_psi_key(statement as c_int)) }
    }

    /// Adds a note to the statement's warnings (SHOW WARNINGS), with
    /// ER_UNKNOWN_ERROR's number as the server's own free-text notes have.
    pub fn note(self, text: &str) {
        let text = cstring(text);
        // SAFETY: valid THD; the server copies the text.
        unsafe { ffi::cs_push_note(self.as_ptr(), super::errors::ER_UNKNOWN_ERROR as u32, text.as_ptr()) }
    }

    /// The error in the session's diagnostics area (0 and "" if none).
    pub fn error(self) -> (u32, String) {
        let mut msg: *const c_char = std::ptr::null();
        // SAFETY: valid THD; the message lives in the DA until it is cleared.
        let code = unsafe { ffi::cs_thd_error(self.as_ptr(), &mut msg) };
        // SAFETY: as above: a NUL-terminated message.
        let text = if msg.is_null() { String::new() } else { unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy().into_owned() };
        (code, text)
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Whether a supervisor restarts this server when it asks to be
/// restarted (after an in-place clone); without one it shuts down.
pub fn server_is_supervised() -> bool {
    // SAFETY: reads the server's process state.
    unsafe { ffi::cs_server_is_supervised() }
}

/// `my_error` of a message without arguments.
pub(super) fn raise(m: Message<args::None>) {
    // SAFETY: the message takes no arguments (its type says so).
    unsafe { ffi::my_error(m.code, 0) }
}

/// Raises an error number known only at run time (one a server call
/// returned): as itself when its message takes no arguments, otherwise as
/// ER_INTERNAL_ERROR naming it, since its arguments are not known.
pub(super) fn raise_errno(code: i32) {
    if message::NO_ARGUMENTS.binary_search(&code).is_ok() {
        // SAFETY: the message for `code` takes no arguments.
        unsafe { ffi::my_error(code, 0) }
    } else {
        raise_str(message::ER_INTERNAL_ERROR, &format!("clone failed with error {code}"));
    }
}

/// `my_error` of a message with one `%s`.
pub(super) fn raise_str(m: Message<args::Str>, arg: &str) {
    let arg = cstring(arg);
    // SAFETY: the message takes one string.
    unsafe { ffi::my_error(m.code, 0, arg.as_ptr()) }
}

/// `my_error` of a message with two `%s`.
pub(super) fn raise_two_strs(m: Message<args::StrStr>, a: &str, b: &str) {
    let (a, b) = (cstring(a), cstring(b));
    // SAFETY: the message takes two strings.
    unsafe { ffi::my_error(m.code, 0, a.as_ptr(), b.as_ptr()) }
}

/// `my_error` of a message with one `%d`/`%u` (an int, saturated).
pub(super) fn raise_int(m: Message<args::Int>, arg: i64) {
    // SAFETY: the message takes one int.
    unsafe { ffi::my_error(m.code, 0, saturate(arg)) }
}

/// `my_error` of a message with two `%d`/`%u`.
pub(super) fn raise_two_ints(m: Message<args::IntInt>, a: i64, b: i64) {
    // SAFETY: the message takes two ints.
    unsafe { ffi::my_error(m.code, 0, saturate(a), saturate(b)) }
}

fn saturate(n: i64) -> c_int {
    n.clamp(c_int::MIN.into(), c_int::MAX.into()) as c_int
}

/// `my_error(file, errno, text)`: ER_ERROR_ON_READ, ER_ERROR_ON_WRITE and
/// the other messages of a file and an OS error.
pub(super) fn raise_file(m: Message<args::StrIntStr>, file: &str, err: &std::io::Error) {
    let file = cstring(file);
    let text = cstring(&err.to_string());
    let errno = err.raw_os_error().unwrap_or(0);
    // SAFETY: the message takes a string, an int and a string.
    unsafe { ffi::my_error(m.code, 0, file.as_ptr(), errno as c_int, text.as_ptr()) }
}

/// Copies `bytes` into memory owned by the session (freed with it).
pub fn thd_strmake(thd: *mut THD, bytes: &[u8]) -> *const c_char {
    // SAFETY: the server installed the service before any plugin code runs.
    unsafe {
        let svc = thd_alloc_service;
        match (*svc).thd_strmake_func {
            Some(f) => f(thd.cast(), bytes.as_ptr().cast(), bytes.len()),
            None => std::ptr::null(),
        }
    }
}

/// Runs `body` and returns its result; a panic becomes `on_panic` after an
/// ER_INTERNAL_ERROR in the diagnostics area. Every function the server or a
/// storage engine calls goes through here: unwinding must never reach C++.
pub fn guard<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let what =
                payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown".into());
            let _ = catch_unwind(|| raise_str(message::ER_INTERNAL_ERROR, &format!("clone plugin panic: {what}")));
            on_panic
        }
    }
}

/// The clone statement instruments (values: the shim's cs_psi_instrument).
#[derive(Clone, Copy)]
pub enum Statement {
    Local = ffi::cs_psi_instrument_CS_PSI_STATEMENT_LOCAL as isize,
    Client = ffi::cs_psi_instrument_CS_PSI_STATEMENT_CLIENT as isize,
    Server = ffi::cs_psi_instrument_CS_PSI_STATEMENT_SERVER as isize,
}

/// The clone worker thread instruments.
#[derive(Clone, Copy)]
pub enum Worker {
    Local = ffi::cs_psi_instrument_CS_PSI_LOCAL_TASK as isize,
    Client = ffi::cs_psi_instrument_CS_PSI_CLIENT_TASK as isize,
}

/// Registers the thread, statement and memory instruments with
/// performance_schema; transfer buffers are counted as memory/clone/data.
pub fn register_instruments() {
    // SAFETY: registration through the server's PSI services.
    unsafe { ffi::cs_psi_register() }
    super::files::set_memory_accounting(|bytes| {
        // SAFETY: plain accounting call; the shim checks the service.
        unsafe { ffi::cs_psi_memory_account(bytes) }
    });
}

/// The session of a clone worker thread, created through the clone_protocol
/// service and destroyed on the same OS thread when dropped.
pub struct WorkerSession {
    thd: Thd,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl WorkerSession {
    pub fn start(kind: Worker) -> Option<WorkerSession> {
        // SAFETY: creates a THD bound to the calling thread, destroyed by
        // this value's drop.
        let thd = unsafe { Thd::from_raw(ffi::cs_worker_thd_start(ffi::cs_psi_key(kind as c_int), 0)) }?;
        Some(WorkerSession { thd, _not_send: std::marker::PhantomData })
    }

    pub fn thd(&self) -> Thd {
        self.thd
    }
}

impl Drop for WorkerSession {
    fn drop(&mut self) {
        // SAFETY: created by cs_worker_thd_start on this thread.
        unsafe { ffi::cs_worker_thd_finish(self.thd.as_ptr()) }
    }
}
