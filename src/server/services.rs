//! Component services acquired from the server's registry at plugin start and
//! released at the end: backup lock, clone_protocol (handed to the shim),
//! the error log, session variables, and the performance_schema table
//! services.

use super::errors::{message, Error, ER_CLONE_CLIENT_TRACE, ER_CLONE_SERVER_TRACE, ER_LOG_PRINTF_MSG};
use super::ffi::{self, my_h_service, mysql_service_registry_t};
use super::session::Thd;
use parking_lot::Mutex;
use std::ffi::{c_char, c_void, CString};
use std::ptr::null_mut;

/// Plugin-service pointer the server fills in at load time (initially the
/// interface version the plugin was built for).
#[no_mangle]
pub static mut plugin_registry_service: *mut ffi::plugin_registry_service_st = std::ptr::without_provenance_mut(0x0100);

/// Raw service handles; `Send` because the registry's handles are global.
struct Handles {
    registry: *const mysql_service_registry_t,
    acquired: Vec<my_h_service>,
    backup_lock: *const ffi::s_mysql_mysql_backup_lock,
    variables: Option<VariableServices>,
    pfs: Option<PfsServices>,
}

/// Reading and setting a session's system variables.
#[derive(Clone, Copy)]
struct VariableServices {
    reader: *const ffi::s_mysql_mysql_system_variable_reader,
    integer: *const ffi::s_mysql_mysql_system_variable_update_integer,
    factory: *const ffi::s_mysql_mysql_string_factory,
    converter: *const ffi::s_mysql_mysql_string_converter,
}

// SAFETY: service handles are process-global and thread-safe.
unsafe impl Send for VariableServices {}

// SAFETY: service handles are process-global and thread-safe.
unsafe impl Send for Handles {}

/// The performance_schema services the tables need.
#[derive(Clone, Copy)]
pub struct PfsServices {
    pub table: *const ffi::s_mysql_pfs_plugin_table_v1,
    pub integer: *const ffi::s_mysql_pfs_plugin_column_integer_v1,
    pub bigint: *const ffi::s_mysql_pfs_plugin_column_bigint_v1,
    pub string: *const ffi::s_mysql_pfs_plugin_column_string_v2,
    pub timestamp: *const ffi::s_mysql_pfs_plugin_column_timestamp_v2,
    pub text: *const ffi::s_mysql_pfs_plugin_column_text_v1,
}

// SAFETY: as above.
unsafe impl Send for PfsServices {}
// SAFETY: as above.
unsafe impl Sync for PfsServices {}

static HANDLES: Mutex<Option<Handles>> = Mutex::new(None);

/// One service from the registry; kept in `h` to be released by stop().
fn acquire(h: &mut Handles, name: &str) -> Option<my_h_service> {
    let cname = CString::new(name).ok()?;
    let mut svc: my_h_service = null_mut();
    // SAFETY: `h` holds the registry acquired in start(), valid until stop();
    // the name is NUL-terminated and `svc` is the out-parameter.
    let failed = unsafe {
        let acquire = (*h.registry).acquire?;
        acquire(cname.as_ptr(), &mut svc) != 0
    };
    if failed || svc.is_null() {
        return None;
    }
    h.acquired.push(svc);
    Some(svc)
}

/// Acquires the services every clone needs. On failure, whatever was
/// acquired is released again (the stock plugin leaks it).
pub fn start() -> Result<(), &'static str> {
    // SAFETY: the server installed plugin_registry_service before init.
    let registry = unsafe {
        let svc = plugin_registry_service;
        match (*svc).mysql_plugin_registry_acquire_func {
            Some(f) => f(),
            None => return Err("no plugin registry service"),
        }
    };
    if registry.is_null() {
        return Err("registry unavailable");
    }
    let mut h = Handles { registry, acquired: Vec::new(), backup_lock: std::ptr::null(), variables: None, pfs: None };
    let result = acquire_base(&mut h);
    *HANDLES.lock() = Some(h);
    if result.is_err() {
        stop();
    } else {
        start_logging();
    }
    result
}

/// Acquires the performance_schema table services (not available while
/// `mysqld --initialize` bootstraps).
pub fn start_pfs() -> Result<PfsServices, &'static str> {
    let mut guard = HANDLES.lock();
    let h = guard.as_mut().ok_or("services not started")?;
    let pfs = PfsServices {
        table: acquire(h, "pfs_plugin_table_v1").ok_or("pfs_plugin_table_v1")?.cast(),
        integer: acquire(h, "pfs_plugin_column_integer_v1").ok_or("pfs_plugin_column_integer_v1")?.cast(),
        bigint: acquire(h, "pfs_plugin_column_bigint_v1").ok_or("pfs_plugin_column_bigint_v1")?.cast(),
        string: acquire(h, "pfs_plugin_column_string_v2").ok_or("pfs_plugin_column_string_v2")?.cast(),
        timestamp: acquire(h, "pfs_plugin_column_timestamp_v2").ok_or("pfs_plugin_column_timestamp_v2")?.cast(),
        text: acquire(h, "pfs_plugin_column_text_v1").ok_or("pfs_plugin_column_text_v1")?.cast(),
    };
    h.pfs = Some(pfs);
    Ok(pfs)
}

fn acquire_base(h: &mut Handles) -> Result<(), &'static str> {
    let bi = acquire(h, "log_builtins.mysql_server").ok_or("log_builtins")?;
    let bs = acquire(h, "log_builtins_string.mysql_server").ok_or("log_builtins_string")?;
    // SAFETY: the two log services just acquired; the shim keeps them until stop().
    unsafe { ffi::cs_set_log_services(bi.cast(), bs.cast()) };
    h.backup_lock = acquire(h, "mysql_backup_lock").ok_or("mysql_backup_lock")?.cast();
    let protocol = acquire(h, "clone_protocol").ok_or("clone_protocol")?;
    // SAFETY: the clone_protocol service just acquired, kept until stop().
    unsafe { ffi::cs_set_clone_protocol(protocol.cast()) };
    // Optional: without them a donor cannot bound an idle recipient's wait.
    h.variables = (|| {
        Some(VariableServices {
            reader: acquire(h, "mysql_system_variable_reader")?.cast(),
            integer: acquire(h, "mysql_system_variable_update_integer")?.cast(),
            factory: acquire(h, "mysql_string_factory")?.cast(),
            converter: acquire(h, "mysql_string_converter")?.cast(),
        })
    })();
    Ok(())
}

/// The session value of an integer system variable of the server.
pub fn session_uint(thd: Thd, name: &str) -> Option<u64> {
    let v = HANDLES.lock().as_ref().and_then(|h| h.variables)?;
    let name = CString::new(name).ok()?;
    let mut buf = [0u8; 32];
    let mut value = buf.as_mut_ptr().cast::<c_void>();
    let mut len = buf.len();
    // SAFETY: acquired service; valid THD; the reader writes at most `len`
    // bytes into `buf` and points `value` at the result.
    let text = unsafe {
        let get = (*v.reader).get?;
        if get(thd.as_ptr(), c"SESSION".as_ptr(), c"mysql_server".as_ptr(), name.as_ptr(), &mut value, &mut len) != 0 || value.is_null() {
            return None;
        }
        std::slice::from_raw_parts(value.cast::<u8>(), len.min(buf.len())).to_vec()
    };
    std::str::from_utf8(&text).ok()?.trim_end_matches('\0').trim().parse().ok()
}

/// Sets the session value of an integer system variable of the server.
pub fn set_session_uint(thd: Thd, name: &str, value: u64) -> bool {
    let Some(v) = HANDLES.lock().as_ref().and_then(|h| h.variables) else { return false };
    // SAFETY: acquired services; valid THD; the name string is created,
    // used and destroyed here.
    unsafe {
        let (Some(convert), Some(set), Some(destroy)) = ((*v.converter).convert_from_buffer, (*v.integer).set_unsigned, (*v.factory).destroy) else {
            return false;
        };
        let mut handle: ffi::my_h_string = null_mut();
        if convert(&mut handle, name.as_ptr().cast(), name.len() as u64, c"utf8mb4".as_ptr()) != 0 || handle.is_null() {
            return false;
        }
        let done = set(thd.as_ptr(), c"SESSION".as_ptr(), null_mut(), handle, value) == 0;
        destroy(handle);
        done
    }
}

/// Releases every service, in reverse order, and the registry.
pub fn stop() {
    let Some(mut h) = HANDLES.lock().take() else { return };
    // SAFETY: each service was acquired from this registry and is released
    // once; the shim forgets the services before they go.
    unsafe {
        ffi::cs_set_clone_protocol(null_mut());
        ffi::cs_set_log_services(null_mut(), null_mut());
        if let Some(release) = (*h.registry).release {
            while let Some(svc) = h.acquired.pop() {
                release(svc);
            }
        }
        let svc = plugin_registry_service;
        if let Some(f) = (*svc).mysql_plugin_registry_release_func {
            f(h.registry);
        }
    }
}

pub fn pfs() -> Option<PfsServices> {
    HANDLES.lock().as_ref().and_then(|h| h.pfs)
}

/// The backup lock (as LOCK INSTANCE FOR BACKUP) of a session: DDL waits
/// while it is held, until this value is dropped.
pub struct BackupLock<'s> {
    thd: Thd<'s>,
}

impl<'s> BackupLock<'s> {
    /// Waits up to `timeout_s` for the lock. Not granted: the server's
    /// error, or ER_LOCK_WAIT_TIMEOUT.
    pub fn acquire(thd: Thd<'s>, timeout_s: u32) -> Result<BackupLock<'s>, Error> {
        let svc = HANDLES.lock().as_ref().map(|h| h.backup_lock).unwrap_or(std::ptr::null());
        // SAFETY: acquired service; valid THD.
        let granted = !svc.is_null()
            && unsafe { (*svc).acquire.map(|f| f(thd.as_ptr(), ffi::enum_backup_lock_service_lock_kind_BACKUP_LOCK_SERVICE_DEFAULT, timeout_s as _) == 0) }
                .unwrap_or(false);
        match thd.error().0 {
            _ if granted => Ok(BackupLock { thd }),
            0 => Err(Error::new(message::ER_LOCK_WAIT_TIMEOUT)),
            code => Err(Error::reported(code as i32)),
        }
    }

    /// Leaves the lock with the session, which holds it until it ends: an
    /// in-place clone keeps DDL out until the server restarts.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for BackupLock<'_> {
    fn drop(&mut self) {
        let svc = HANDLES.lock().as_ref().map(|h| h.backup_lock).unwrap_or(std::ptr::null());
        if !svc.is_null() {
            // SAFETY: acquired service; valid THD, which holds the lock.
            unsafe {
                if let Some(f) = (*svc).release {
                    f(self.thd.as_ptr());
                }
            }
        }
    }
}

/// The server's error log behind the `log` macros, under the Clone
/// subsystem: records with the target "donor" are the donor's view
/// (`Server: <message>.`), all others the recipient's or local clone's
/// (`Client: <message>.`). Information lines show with log_error_verbosity=3.
struct ErrorLog;

impl log::Log for ErrorLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => 1,
            log::Level::Warn => 2,
            _ => 3,
        };
        let code = if record.target() == "donor" { ER_CLONE_SERVER_TRACE } else { ER_CLONE_CLIENT_TRACE };
        let msg = CString::new(record.args().to_string().replace('\0', "")).unwrap_or_default();
        // SAFETY: the shim checks that the log services are set.
        unsafe { ffi::cs_log(level, code, msg.as_ptr() as *const c_char) }
    }

    fn flush(&self) {}
}

static ERROR_LOG: ErrorLog = ErrorLog;

/// The server's SYSTEM level, shown whatever log_error_verbosity says.
const SYSTEM_LEVEL: i32 = 0;

/// A line for the error log at the SYSTEM level (as the server's own
/// "ready for connections"): what a DBA must see, such as which clone
/// plugin was loaded.
pub fn log_system(text: &str) {
    let msg = CString::new(text.replace('\0', "")).unwrap_or_default();
    // SAFETY: the shim checks that the log services are set; the message
    // takes one string.
    unsafe { ffi::cs_log(SYSTEM_LEVEL, ER_LOG_PRINTF_MSG, msg.as_ptr()) }
}

/// Sends the `log` macros to the error log (once per process: the library
/// stays mapped across UNINSTALL and INSTALL, and so does the logger).
fn start_logging() {
    if log::set_logger(&ERROR_LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
