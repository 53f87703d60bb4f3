//! Sessions (THD): the statement's own, and those of the clone's worker
//! threads.

use super::errors::{message, Error, ER_QUERY_INTERRUPTED, ER_UNKNOWN_ERROR};
use super::ffi::{self, THD};
use std::ffi::{c_char, c_int, c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Plugin-service pointer the server fills in at load time; the initial value
/// is the interface version the plugin was built for.
#[no_mangle]
pub static mut thd_alloc_service: *mut ffi::thd_alloc_service_st = std::ptr::without_provenance_mut(0x0100);

/// As above, for the security context service (the shim reads accounts).
#[no_mangle]
pub static mut security_context_service: *mut c_void = std::ptr::without_provenance_mut(0x0101);

/// A server session, valid for `'s`: the entry point's call that was
/// given it, or the worker session it belongs to. `Send`, so that a thread
/// of the same statement can watch it or report on it while its own
/// thread waits; not `Sync`: what is shared by the clone's threads holds
/// no session, and each thread uses its own.
#[derive(Clone, Copy, Debug)]
pub struct Thd<'s> {
    raw: NonNull<THD>,
    _session: PhantomData<&'s THD>,
}

// SAFETY: the server calls made through a Thd (killed, errors, notes, the
// clone_protocol service) may come from a thread other than the session's
// while the session's own thread waits for that thread (scoped threads of
// one statement); `'s` ends before the session does.
unsafe impl Send for Thd<'_> {}

impl<'s> Thd<'s> {
    /// # Safety
    /// `thd` is null or a session the server keeps alive for `'s`.
    pub unsafe fn from_raw(thd: *mut THD) -> Option<Thd<'s>> {
        NonNull::new(thd).map(|raw| Thd { raw, _session: PhantomData })
    }

    pub fn as_ptr(self) -> *mut THD {
        self.raw.as_ptr()
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
            (true, false) => Err(Error::reported(ER_QUERY_INTERRUPTED)),
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
        unsafe { ffi::cs_push_note(self.as_ptr(), ER_UNKNOWN_ERROR as u32, text.as_ptr()) }
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

/// Whether the calling thread runs a session (not while the server starts).
pub fn has_current() -> bool {
    // SAFETY: reads the calling thread's session pointer.
    !unsafe { ffi::cs_current_thd() }.is_null()
}

/// Copies `bytes` into memory owned by the session (freed with it).
pub fn thd_strmake(thd: Thd<'_>, bytes: &[u8]) -> *const c_char {
    // SAFETY: the server installed the service before any plugin code runs.
    unsafe {
        let svc = thd_alloc_service;
        match (*svc).thd_strmake_func {
            Some(f) => f(thd.as_ptr().cast(), bytes.as_ptr().cast(), bytes.len()),
            None => std::ptr::null(),
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
    clone_core::transfer::buffers::set_memory_accounting(|bytes| {
        // SAFETY: plain accounting call; the shim checks the service.
        unsafe { ffi::cs_psi_memory_account(bytes) }
    });
}

/// The session of a clone worker thread, created through the clone_protocol
/// service and destroyed on the same OS thread when dropped.
pub struct WorkerSession {
    raw: NonNull<THD>,
}

impl WorkerSession {
    pub fn start(kind: Worker) -> Option<WorkerSession> {
        // SAFETY: creates a THD bound to the calling thread, destroyed by
        // this value's drop.
        let raw = NonNull::new(unsafe { ffi::cs_worker_thd_start(ffi::cs_psi_key(kind as c_int), 0) })?;
        Some(WorkerSession { raw })
    }

    /// The session, for as long as this value lives.
    pub fn thd(&self) -> Thd<'_> {
        Thd { raw: self.raw, _session: PhantomData }
    }
}

impl Drop for WorkerSession {
    fn drop(&mut self) {
        // SAFETY: created by cs_worker_thd_start on this thread.
        unsafe { ffi::cs_worker_thd_finish(self.raw.as_ptr()) }
    }
}
