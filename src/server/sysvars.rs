//! The 14 `clone_*` system variables, with the stock plugin's names, types,
//! defaults, ranges and checks, and ours (`clone_dry_run`,
//! `clone_stage_in_place`, and Percona Server's
//! `clone_exclude_plugins_list`). The server owns the values: it writes into
//! the storage cells below (and into the descriptors themselves), so both
//! live in mutable statics; the plugin reads them through atomics.

use super::entry::entry_point;
use super::errors::{message, ER_CLONE_SYS_CONFIG};
use super::ffi::{self, st_mysql_value, SYS_VAR, THD};
use super::session::{self, Thd};
use clone_core::checks::{parse_donor_list, parse_exclude_list, ExcludeListError};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{addr_of, addr_of_mut, null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::Relaxed};

type CheckFn = unsafe extern "C" fn(*mut THD, *mut SYS_VAR, *mut c_void, *mut st_mysql_value) -> c_int;
type UpdateFn = unsafe extern "C" fn(*mut THD, *mut SYS_VAR, *mut c_void, *const c_void);

const UINT: c_int = (ffi::PLUGIN_VAR_INT | ffi::PLUGIN_VAR_UNSIGNED | ffi::PLUGIN_VAR_RQCMDARG) as c_int;
const BOOL: c_int = (ffi::PLUGIN_VAR_BOOL | ffi::PLUGIN_VAR_NOCMDARG) as c_int;
const SESSION_BOOL: c_int = (ffi::PLUGIN_VAR_BOOL | ffi::PLUGIN_VAR_THDLOCAL | ffi::PLUGIN_VAR_NOCMDARG) as c_int;
const ENUM: c_int = (ffi::PLUGIN_VAR_ENUM | ffi::PLUGIN_VAR_RQCMDARG) as c_int;
const STR: c_int = (ffi::PLUGIN_VAR_STR | ffi::PLUGIN_VAR_OPCMDARG | ffi::PLUGIN_VAR_MEMALLOC) as c_int;

/// Layout of MYSQL_SYSVAR_UINT's descriptor (include/mysql/plugin.h).
#[repr(C)]
pub struct UintVar {
    flags: c_int,
    name: *const c_char,
    comment: *const c_char,
    check: Option<CheckFn>,
    update: Option<UpdateFn>,
    value: *const AtomicU32,
    def_val: u32,
    min_val: u32,
    max_val: u32,
    blk_sz: u32,
}

/// Layout of MYSQL_SYSVAR_BOOL's descriptor.
#[repr(C)]
pub struct BoolVar {
    flags: c_int,
    name: *const c_char,
    comment: *const c_char,
    check: Option<CheckFn>,
    update: Option<UpdateFn>,
    value: *const AtomicBool,
    def_val: bool,
}

/// Layout of MYSQL_THDVAR_BOOL's descriptor: the server fills in `offset`
/// and `resolve` when it loads the plugin.
#[repr(C)]
pub struct SessionBoolVar {
    flags: c_int,
    name: *const c_char,
    comment: *const c_char,
    check: Option<CheckFn>,
    update: Option<UpdateFn>,
    offset: c_int,
    def_val: bool,
    resolve: Option<unsafe extern "C" fn(*mut THD, c_int) -> *mut bool>,
}

/// Layout of MYSQL_SYSVAR_ENUM's descriptor.
#[repr(C)]
pub struct EnumVar {
    flags: c_int,
    name: *const c_char,
    comment: *const c_char,
    check: Option<CheckFn>,
    update: Option<UpdateFn>,
    value: *const AtomicU64,
    def_val: u64,
    typelib: *const ffi::TYPELIB,
}

/// Layout of MYSQL_SYSVAR_STR's descriptor.
#[repr(C)]
pub struct StrVar {
    flags: c_int,
    name: *const c_char,
    comment: *const c_char,
    check: Option<CheckFn>,
    update: Option<UpdateFn>,
    value: *const AtomicPtr<c_char>,
    def_val: *const c_char,
}

macro_rules! uint_var {
    ($var:ident, $cell:ident, $name:literal, $comment:literal, $def:expr, $min:expr, $max:expr, $blk:expr) => {
        uint_var!($var, $cell, $name, $comment, $def, $min, $max, $blk, None);
    };
    ($var:ident, $cell:ident, $name:literal, $comment:literal, $def:expr, $min:expr, $max:expr, $blk:expr, $update:expr) => {
        static $cell: AtomicU32 = AtomicU32::new($def);
        static mut $var: UintVar = UintVar {
            flags: UINT,
            name: concat!($name, "\0").as_ptr().cast(),
            comment: concat!($comment, "\0").as_ptr().cast(),
            check: None,
            update: $update,
            value: &$cell,
            def_val: $def,
            min_val: $min,
            max_val: $max,
            blk_sz: $blk,
        };
    };
}

macro_rules! bool_var {
    ($var:ident, $cell:ident, $name:literal, $comment:literal, $def:expr) => {
        static $cell: AtomicBool = AtomicBool::new($def);
        static mut $var: BoolVar = BoolVar {
            flags: BOOL,
            name: concat!($name, "\0").as_ptr().cast(),
            comment: concat!($comment, "\0").as_ptr().cast(),
            check: None,
            update: None,
            value: &$cell,
            def_val: $def,
        };
    };
}

macro_rules! str_var {
    ($var:ident, $cell:ident, $name:literal, $comment:literal, $check:expr) => {
        static $cell: AtomicPtr<c_char> = AtomicPtr::new(null_mut());
        static mut $var: StrVar = StrVar {
            flags: STR,
            name: concat!($name, "\0").as_ptr().cast(),
            comment: concat!($comment, "\0").as_ptr().cast(),
            check: $check,
            update: None,
            value: &$cell,
            def_val: null(),
        };
    };
}

const MIB: u32 = 1024 * 1024;

uint_var!(BUFFER_SIZE, BUFFER_SIZE_VAL, "buffer_size", "buffer size used by clone for data transfer", 4 * MIB, MIB, 256 * MIB, MIB);
bool_var!(BLOCK_DDL, BLOCK_DDL_VAL, "block_ddl", "If clone should block concurrent DDL", false);
const MAX_DDL_TIMEOUT: u32 = 60 * 60 * 24 * 30;
uint_var!(DDL_TIMEOUT, DDL_TIMEOUT_VAL, "ddl_timeout", "Time in seconds to wait for DDL lock", 300, 0, MAX_DDL_TIMEOUT, 1, Some(update_ddl_timeout));
uint_var!(MAX_CONCURRENCY, MAX_CONCURRENCY_VAL, "max_concurrency", "Maximum number of concurrent threads for clone", 16, 1, 128, 1);
uint_var!(MAX_NETWORK_BANDWIDTH, MAX_NETWORK_BANDWIDTH_VAL, "max_network_bandwidth", "Maximum network bandwidth for clone in MiB/sec", 0, 0, 1024 * 1024, 1);
uint_var!(MAX_DATA_BANDWIDTH, MAX_DATA_BANDWIDTH_VAL, "max_data_bandwidth", "Maximum File data bandwidth for clone in MiB/sec", 0, 0, 1024 * 1024, 1);
bool_var!(ENABLE_COMPRESSION, ENABLE_COMPRESSION_VAL, "enable_compression", "If compression is done at network", false);
bool_var!(AUTOTUNE_CONCURRENCY, AUTOTUNE_CONCURRENCY_VAL, "autotune_concurrency", "If concurrency is automatically tuned", true);
str_var!(
    VALID_DONOR_LIST,
    VALID_DONOR_LIST_VAL,
    "valid_donor_list",
    "List of valid donor addresses allowed to clone from HOST1:PORT1,HOST2:PORT2,...",
    Some(check_donor_list)
);
str_var!(SSL_KEY, SSL_KEY_VAL, "ssl_key", "SSL path name of the SSL private key file", None);
str_var!(SSL_CERT, SSL_CERT_VAL, "ssl_cert", "SSL path name of the public key certificate file", None);
str_var!(SSL_CA, SSL_CA_VAL, "ssl_ca", "SSL path name for Certificate Authority (CA) file", None);
uint_var!(
    DONOR_TIMEOUT,
    DONOR_TIMEOUT_VAL,
    "donor_timeout_after_network_failure",
    "Time in minutes up to which donor allows recipient to re-connect and restart cloning after network failure.",
    5,
    0,
    30,
    1
);
uint_var!(DELAY_AFTER_DATA_DROP, DELAY_AFTER_DATA_DROP_VAL, "delay_after_data_drop", "Time in seconds to wait after removing data.", 0, 0, 60 * 60, 1);
// Percona Server's name and meaning.
str_var!(
    EXCLUDE_PLUGINS_LIST,
    EXCLUDE_PLUGINS_LIST_VAL,
    "exclude_plugins_list",
    "Plugins active on the donor that this recipient does without: PLUGIN1,PLUGIN2,...",
    Some(check_exclude_list)
);

/// Ours: whether an in-place clone is staged (clone_core::staging).
static STAGE_IN_PLACE_VAL: AtomicU64 = AtomicU64::new(0);
static mut STAGE_IN_PLACE_NAMES: [*const c_char; 4] = [c"AUTO".as_ptr(), c"ALWAYS".as_ptr(), c"NEVER".as_ptr(), null()];
static mut STAGE_IN_PLACE_LENGTHS: [u32; 4] = [4, 6, 5, 0];
static mut STAGE_IN_PLACE_TYPELIB: ffi::TYPELIB = ffi::TYPELIB {
    count: 3,
    name: c"clone_stage_in_place".as_ptr(),
    // Addresses of statics, never moved; the server only reads them.
    type_names: addr_of_mut!(STAGE_IN_PLACE_NAMES).cast(),
    type_lengths: addr_of_mut!(STAGE_IN_PLACE_LENGTHS).cast(),
};
static mut STAGE_IN_PLACE: EnumVar = EnumVar {
    flags: ENUM,
    name: c"stage_in_place".as_ptr(),
    comment: c"How an in-place CLONE INSTANCE treats this server's data: AUTO clones into a staging directory and swaps it in at the restart when the file system has room for both, else drops the data first; ALWAYS always stages; NEVER always drops first (the stock order)".as_ptr(),
    check: None,
    update: None,
    value: &STAGE_IN_PLACE_VAL,
    def_val: 0,
    typelib: addr_of!(STAGE_IN_PLACE_TYPELIB),
};

/// clone_stage_in_place.
pub fn stage_in_place() -> clone_core::staging::Mode {
    clone_core::staging::Mode::from_index(STAGE_IN_PLACE_VAL.load(Relaxed))
}

/// Ours: SET SESSION clone_dry_run = ON makes the session's CLONE
/// statements check everything up to the first byte of data, and stop.
static mut DRY_RUN: SessionBoolVar = SessionBoolVar {
    flags: SESSION_BOOL,
    name: c"dry_run".as_ptr(),
    comment: c"If CLONE only checks that the clone would start, writing nothing".as_ptr(),
    check: None,
    update: None,
    offset: 0,
    def_val: false,
    resolve: None,
};

/// The session's clone_dry_run.
pub fn dry_run(thd: Thd) -> bool {
    // SAFETY: the server wrote offset and resolve when it loaded the plugin,
    // before any statement; resolve returns the session's own cell.
    unsafe {
        let var = &*addr_of!(DRY_RUN);
        match var.resolve {
            Some(resolve) => {
                let cell = resolve(thd.as_ptr(), var.offset);
                !cell.is_null() && *cell
            }
            None => false,
        }
    }
}

/// The NULL-terminated array the plugin descriptor points to, in the stock order.
pub static mut SYSTEM_VARIABLES: [*mut SYS_VAR; 18] = [
    addr_of_mut!(BUFFER_SIZE).cast(),
    addr_of_mut!(BLOCK_DDL).cast(),
    addr_of_mut!(DDL_TIMEOUT).cast(),
    addr_of_mut!(MAX_CONCURRENCY).cast(),
    addr_of_mut!(MAX_NETWORK_BANDWIDTH).cast(),
    addr_of_mut!(MAX_DATA_BANDWIDTH).cast(),
    addr_of_mut!(ENABLE_COMPRESSION).cast(),
    addr_of_mut!(AUTOTUNE_CONCURRENCY).cast(),
    addr_of_mut!(VALID_DONOR_LIST).cast(),
    addr_of_mut!(SSL_KEY).cast(),
    addr_of_mut!(SSL_CERT).cast(),
    addr_of_mut!(SSL_CA).cast(),
    addr_of_mut!(DONOR_TIMEOUT).cast(),
    addr_of_mut!(DELAY_AFTER_DATA_DROP).cast(),
    addr_of_mut!(DRY_RUN).cast(),
    addr_of_mut!(EXCLUDE_PLUGINS_LIST).cast(),
    addr_of_mut!(STAGE_IN_PLACE).cast(),
    null_mut(),
];

/// The values a clone works with, read once when it starts.
#[derive(Clone, Debug)]
pub struct Settings {
    pub buffer_size: u32,
    pub block_ddl: bool,
    pub ddl_timeout: u32,
    pub max_concurrency: u32,
    pub max_network_bandwidth: u32,
    pub max_data_bandwidth: u32,
    pub enable_compression: bool,
    pub autotune_concurrency: bool,
    pub delay_after_data_drop: u32,
}

pub fn settings() -> Settings {
    Settings {
        buffer_size: BUFFER_SIZE_VAL.load(Relaxed),
        block_ddl: BLOCK_DDL_VAL.load(Relaxed),
        ddl_timeout: DDL_TIMEOUT_VAL.load(Relaxed),
        max_concurrency: MAX_CONCURRENCY_VAL.load(Relaxed),
        max_network_bandwidth: MAX_NETWORK_BANDWIDTH_VAL.load(Relaxed),
        max_data_bandwidth: MAX_DATA_BANDWIDTH_VAL.load(Relaxed),
        enable_compression: ENABLE_COMPRESSION_VAL.load(Relaxed),
        autotune_concurrency: AUTOTUNE_CONCURRENCY_VAL.load(Relaxed),
        delay_after_data_drop: DELAY_AFTER_DATA_DROP_VAL.load(Relaxed),
    }
}

entry_point! {
/// `SET GLOBAL clone_valid_donor_list`: NULL is fine, anything else must be
/// a well-formed list.
fn check_donor_list(thd: *mut THD, _var: *mut SYS_VAR, save: *mut c_void, value: *mut st_mysql_value) -> c_int = 1; {
    // SAFETY: the server's arguments, passed on.
    unsafe {
        check_text(thd, save, value, |text| match parse_donor_list(text) {
            Some(_) => Ok(()),
            None => Err("Invalid Format. Please enter \"<hostname1>:<port1>,...\"' with no extra space".into()),
        })
    }
}
}

entry_point! {
/// `SET GLOBAL clone_exclude_plugins_list`: plugin names, none of them one
/// a clone needs.
fn check_exclude_list(thd: *mut THD, _var: *mut SYS_VAR, save: *mut c_void, value: *mut st_mysql_value) -> c_int = 1; {
    // SAFETY: the server's arguments, passed on.
    unsafe {
        check_text(thd, save, value, |text| match parse_exclude_list(text) {
            Ok(_) => Ok(()),
            Err(ExcludeListError::Malformed) => Err("clone_exclude_plugins_list: plugin names separated by commas".into()),
            Err(ExcludeListError::Required(name)) => Err(format!("clone_exclude_plugins_list cannot exclude {name}: clone needs it")),
        })
    }
}
}

/// A string variable's check: NULL is fine, other text must pass `valid`
/// (else ER_CLONE_SYS_CONFIG with its message). The accepted text is copied
/// into the session's memory before it is handed back (the value buffer is
/// the caller's stack).
///
/// # Safety
/// The server's arguments to a check function.
unsafe fn check_text(thd: *mut THD, save: *mut c_void, value: *mut st_mysql_value, valid: impl Fn(&str) -> Result<(), String>) -> c_int {
    let save = save.cast::<*const c_char>();
    let mut buf = [0 as c_char; 80];
    let mut len = buf.len() as c_int;
    // SAFETY: the server passes a valid value object and a save slot.
    let text = unsafe { (*value).val_str.map(|f| f(value, buf.as_mut_ptr(), &mut len)) }.unwrap_or(null());
    if text.is_null() {
        // SAFETY: the server's out-pointer for the checked value.
        unsafe { *save = null() };
        return 0;
    }
    // SAFETY: val_str returns a NUL-terminated string of `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(text.cast::<u8>(), len.max(0) as usize) };
    let verdict = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned()).and_then(&valid);
    if let Err(why) = verdict {
        // SAFETY: the server's out-pointer for the checked value.
        unsafe { *save = null() };
        super::diagnostics::raise_str(message::ER_CLONE_SYS_CONFIG, &why);
        return ER_CLONE_SYS_CONFIG;
    }
    // SAFETY: the session of this SET, alive while the check runs.
    let copy = unsafe { Thd::from_raw(thd) }.map_or(null(), |thd| session::thd_strmake(thd, bytes));
    // SAFETY: as above; the copy lives in the session's memory.
    unsafe { *save = copy };
    0
}

/// The current value of a string variable, copied.
fn read_str(cell: &AtomicPtr<c_char>) -> Option<String> {
    let p = cell.load(Relaxed);
    // SAFETY: the server keeps a NUL-terminated string there (or NULL).
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

pub fn valid_donor_list() -> Option<String> {
    read_str(&VALID_DONOR_LIST_VAL)
}

/// clone_exclude_plugins_list, as checked when it was set.
pub fn excluded_plugins() -> Vec<String> {
    read_str(&EXCLUDE_PLUGINS_LIST_VAL).and_then(|l| parse_exclude_list(&l).ok()).unwrap_or_default()
}

/// clone_ssl_key, clone_ssl_cert, clone_ssl_ca.
pub fn ssl_files() -> (Option<String>, Option<String>, Option<String>) {
    (read_str(&SSL_KEY_VAL), read_str(&SSL_CERT_VAL), read_str(&SSL_CA_VAL))
}

/// Who sets clone_ddl_timeout: the user, and donor sessions for the
/// moment InnoDB reads it while it begins a clone for their recipient.
struct DdlTimeout {
    /// The user's value (from SET GLOBAL, or as the server started).
    user: u32,
    /// The values of the donor sessions inside `with_ddl_timeout`.
    overrides: Vec<(u64, u32)>,
    next_id: u64,
}

static DDL_TIMEOUT_OWNERS: Mutex<DdlTimeout> = Mutex::new(DdlTimeout { user: 300, overrides: Vec::new(), next_id: 0 });

entry_point! {
/// SET GLOBAL clone_ddl_timeout: the user's value shows at once unless a
/// donor session overrides it; then it shows when the last one is done.
fn update_ddl_timeout(_thd: *mut THD, _var: *mut SYS_VAR, _var_ptr: *mut c_void, save: *const c_void) = (); {
    // SAFETY: for an unsigned int variable the server passes the checked value.
    set_user_ddl_timeout(unsafe { *save.cast::<u32>() });
}
}

fn set_user_ddl_timeout(value: u32) {
    let mut owners = DDL_TIMEOUT_OWNERS.lock();
    owners.user = value;
    if owners.overrides.is_empty() {
        DDL_TIMEOUT_VAL.store(value, Relaxed);
    }
}

/// Runs `body` with clone_ddl_timeout set to the recipient's value: InnoDB
/// reads the variable by name (there is no other way to pass it) while a
/// donor begins a clone. Overlapping sessions each restore what they found
/// only as the last one leaves, and a user's SET GLOBAL in the meantime is
/// kept: the variable always ends at the user's value, never at a
/// recipient's (which is clamped to the variable's range).
pub fn with_ddl_timeout<T>(timeout: u32, body: impl FnOnce() -> T) -> T {
    let timeout = timeout.min(MAX_DDL_TIMEOUT);
    let id = {
        let mut owners = DDL_TIMEOUT_OWNERS.lock();
        if owners.overrides.is_empty() {
            owners.user = DDL_TIMEOUT_VAL.load(Relaxed);
        }
        owners.next_id += 1;
        let id = owners.next_id;
        owners.overrides.push((id, timeout));
        DDL_TIMEOUT_VAL.store(timeout, Relaxed);
        id
    };
    let _restore = RestoreDdlTimeout(id);
    body()
}

/// Ends one override of clone_ddl_timeout, also if its body panics.
struct RestoreDdlTimeout(u64);

impl Drop for RestoreDdlTimeout {
    fn drop(&mut self) {
        let mut owners = DDL_TIMEOUT_OWNERS.lock();
        owners.overrides.retain(|&(i, _)| i != self.0);
        let shown = owners.overrides.last().map_or(owners.user, |&(_, v)| v);
        DDL_TIMEOUT_VAL.store(shown, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn set_by_user(value: u32) {
        set_user_ddl_timeout(value);
    }

    fn shown() -> u32 {
        DDL_TIMEOUT_VAL.load(Relaxed)
    }

    /// Two donor sessions overlap (A begins, B begins, A ends, B ends) and
    /// the user sets the variable in between: it ends at the user's value.
    #[test]
    fn overlapping_donor_sessions_leave_the_users_value() {
        set_by_user(300);
        let (a_began, wait_a_began) = channel();
        let (b_began, wait_b_began) = channel();
        let (a_ended, wait_a_ended) = channel();
        let a = std::thread::spawn(move || {
            with_ddl_timeout(7, || {
                a_began.send(()).unwrap();
                wait_b_began.recv().unwrap();
            });
            a_ended.send(()).unwrap();
        });
        wait_a_began.recv().unwrap();
        assert_eq!(shown(), 7);
        with_ddl_timeout(u32::MAX, || {
            b_began.send(()).unwrap();
            wait_a_ended.recv().unwrap();
            assert_eq!(shown(), MAX_DDL_TIMEOUT, "a recipient's value is clamped to the range");
            set_by_user(120);
            assert_eq!(shown(), MAX_DDL_TIMEOUT, "shown once the last session is done");
        });
        a.join().unwrap();
        assert_eq!(shown(), 120);
        set_by_user(300);
    }
}
