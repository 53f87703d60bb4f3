//! `performance_schema.clone_status` and `clone_progress`: proxy tables
//! registered with the pfs_plugin_table service. Each open gets its own
//! handle with its own snapshot, so concurrent readers do not share a cursor.

use super::entry::entry_point;
use super::ffi::{self, PFS_engine_table_share_proxy, PSI_field, PSI_pos, PSI_table_handle};
use super::services::{self, PfsServices};
use clone_core::status::{Snapshot, State, STAGE_NAMES};
use std::ffi::{c_int, c_uint, c_ulonglong, CStr, CString};
use std::ptr::{addr_of_mut, null_mut};

// The core writes these numbers into the status files without the server's
// table: they must be the server's.
const _: () = assert!(
    clone_core::status::CRASH_MARKER_ERROR as i32 == super::errors::ER_QUERY_INTERRUPTED
        && clone_core::status::RECOVERY_FAILED_ERROR as i32 == super::errors::ER_INTERNAL_ERROR
);

const STATUS_DEFINITION: &str = concat!(
    "`ID` int,`PID` int,`STATE` char(16),`BEGIN_TIME` timestamp(3) NULL,",
    "`END_TIME` timestamp(3) NULL,`SOURCE` varchar(512),`DESTINATION` varchar(512),",
    "`ERROR_NO` int,`ERROR_MESSAGE` varchar(512),`BINLOG_FILE` varchar(512),",
    "`BINLOG_POSITION` bigint,`GTID_EXECUTED` longtext\0"
);
const PROGRESS_DEFINITION: &str = concat!(
    "`ID` int,`STAGE` char(32),`STATE` char(16),`BEGIN_TIME` timestamp(6) NULL,",
    "`END_TIME` timestamp(6) NULL,`THREADS` int,`ESTIMATE` bigint,`DATA` bigint,",
    "`NETWORK` bigint,`DATA_SPEED` int,`NETWORK_SPEED` int\0"
);

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Status,
    Progress,
}

/// One open of a table: a snapshot and a cursor.
struct Cursor {
    table: Table,
    snapshot: Snapshot,
    rows: u32,
    /// Current row; the server saves and restores it as the 4-byte position.
    pos: u32,
    next: u32,
}

impl Cursor {
    fn refresh(&mut self) {
        if self.table == Table::Status {
            // The first read after a restart on a cloned directory completes
            // the row from InnoDB's recovery report.
            if let Some(status) = super::plugin::status() {
                status.merge_pending_recovery();
            }
        }
        self.snapshot = super::plugin::status().map(|s| s.snapshot()).unwrap_or_default();
        let has_clone = match self.table {
            Table::Status => self.snapshot.status.id != 0,
            Table::Progress => self.snapshot.progress.id != 0,
        };
        self.rows = match (has_clone, self.table) {
            (false, _) => 0,
            (true, Table::Status) => 1,
            (true, Table::Progress) => STAGE_NAMES.len() as u32,
        };
    }
}

fn open(table: Table, pos: *mut *mut PSI_pos) -> *mut PSI_table_handle {
    let cursor = Box::new(Cursor { table, snapshot: Snapshot::default(), rows: 0, pos: 0, next: 0 });
    let raw = Box::into_raw(cursor);
    // SAFETY: `pos` is the server's out-parameter; the cursor outlives the open.
    unsafe { *pos = addr_of_mut!((*raw).pos).cast() };
    raw.cast()
}

unsafe fn cursor<'a>(handle: *mut PSI_table_handle) -> &'a mut Cursor {
    // SAFETY: the caller passes a handle open() made and not yet closed.
    unsafe { &mut *handle.cast::<Cursor>() }
}

entry_point! {
fn open_status(pos: *mut *mut PSI_pos) -> *mut PSI_table_handle = null_mut(); {
    open(Table::Status, pos)
}
}

entry_point! {
fn open_progress(pos: *mut *mut PSI_pos) -> *mut PSI_table_handle = null_mut(); {
    open(Table::Progress, pos)
}
}

entry_point! {
fn close_table(handle: *mut PSI_table_handle) = (); {
    // SAFETY: the handle is the Box that open() leaked; the server closes it once.
    drop(unsafe { Box::from_raw(handle.cast::<Cursor>()) })
}
}

entry_point! {
fn rnd_init(handle: *mut PSI_table_handle, _scan: bool) -> c_int = 0; {
    // SAFETY: the handle open() made, used by one reader at a time.
    let c = unsafe { cursor(handle) };
    c.refresh();
    c.pos = 0;
    c.next = 0;
    0
}
}

entry_point! {
fn rnd_next(handle: *mut PSI_table_handle) -> c_int = ffi::PFS_HA_ERR_END_OF_FILE as c_int; {
    // SAFETY: the handle open() made, used by one reader at a time.
    let c = unsafe { cursor(handle) };
    c.pos = c.next;
    if c.pos < c.rows {
        c.next = c.pos + 1;
        0
    } else {
        ffi::PFS_HA_ERR_END_OF_FILE as c_int
    }
}
}

entry_point! {
fn rnd_pos(handle: *mut PSI_table_handle) -> c_int = ffi::PFS_HA_ERR_END_OF_FILE as c_int; {
    // SAFETY: the handle open() made, used by one reader at a time.
    let c = unsafe { cursor(handle) };
    if c.pos < c.rows {
        0
    } else {
        ffi::PFS_HA_ERR_END_OF_FILE as c_int
    }
}
}

entry_point! {
fn reset_position(handle: *mut PSI_table_handle) = (); {
    // SAFETY: the handle open() made, used by one reader at a time.
    let c = unsafe { cursor(handle) };
    c.pos = 0;
    c.next = 0;
}
}

entry_point! {
fn status_row_count() -> c_ulonglong = 0; {
    1
}
}

entry_point! {
fn progress_row_count() -> c_ulonglong = 0; {
    STAGE_NAMES.len() as c_ulonglong
}
}

/// Writes column values through the column services.
struct Columns<'a> {
    svc: PfsServices,
    field: *mut PSI_field,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl Columns<'_> {
    fn int(&self, v: Option<u64>) {
        let val = ffi::PSI_ulong { val: v.unwrap_or(0) as _, is_null: v.is_none() };
        // SAFETY: acquired service, field of the current read.
        unsafe { (*self.svc.integer).set_unsigned.map(|f| f(self.field, val)) };
    }
    fn bigint(&self, v: Option<u64>) {
        let val = ffi::PSI_ulonglong { val: v.unwrap_or(0), is_null: v.is_none() };
        // SAFETY: acquired service, field of the current read.
        unsafe { (*self.svc.bigint).set_unsigned.map(|f| f(self.field, val)) };
    }
    fn char(&self, v: Option<&str>) {
        let s = v.unwrap_or("");
        // SAFETY: as above; the bytes outlive the call.
        unsafe { (*self.svc.string).set_char_utf8mb4.map(|f| f(self.field, s.as_ptr().cast(), s.len() as c_uint)) };
    }
    /// None shows NULL, an empty string ''.
    fn varchar(&self, v: Option<&str>) {
        let text = v.map(|s| CString::new(s.replace('\0', "")).unwrap_or_default());
        let ptr = text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr());
        // SAFETY: as above; NULL or a NUL-terminated string alive for the call.
        unsafe { (*self.svc.string).set_varchar_utf8mb4.map(|f| f(self.field, ptr)) };
    }
    /// Microseconds since the epoch; 0 or None shows NULL.
    fn timestamp(&self, v: Option<u64>) {
        // SAFETY: acquired service, field of the current read.
        unsafe { (*self.svc.timestamp).set2.map(|f| f(self.field, v.unwrap_or(0))) };
    }
    fn text(&self, v: Option<&str>) {
        let s = v.unwrap_or("");
        // SAFETY: as above; the bytes outlive the call.
        unsafe { (*self.svc.text).set.map(|f| f(self.field, s.as_ptr().cast(), s.len() as c_uint)) };
    }
}

/// The binlog file as shown: without its directory.
fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

entry_point! {
fn read_column(handle: *mut PSI_table_handle, field: *mut PSI_field, index: c_uint) -> c_int = 0; {
    let Some(svc) = services::pfs() else { return 0 };
    // SAFETY: the handle open() made, used by one reader at a time.
    let c = unsafe { cursor(handle) };
    let col = Columns { svc, field, _marker: std::marker::PhantomData };
    let on_row = c.pos < c.rows;
    match c.table {
        Table::Status => {
            let s = &c.snapshot.status;
            let v = |x| on_row.then_some(x);
            match index {
                0 => col.int(v(s.id as u64)),
                1 => col.int(v(s.pid as u64)),
                2 => col.char(Some(s.state.name())),
                3 => col.timestamp(v(s.begin_us)),
                4 => col.timestamp(v(s.end_us)),
                5 => col.varchar(on_row.then_some(s.source.as_str())),
                6 => col.varchar(on_row.then_some(s.destination.as_str())),
                7 => col.int(v(s.error_no as u64)),
                8 => col.varchar(on_row.then_some(s.error_message.as_str())),
                9 => col.varchar(on_row.then_some(base_name(&s.binlog_file))),
                10 => col.bigint(v(s.binlog_position)),
                11 => col.text(on_row.then_some(s.gtid_executed.as_str())),
                _ => {}
            }
        }
        Table::Progress => {
            let p = &c.snapshot.progress;
            let i = (c.pos as usize).min(STAGE_NAMES.len() - 1);
            let row = &p.stages[i];
            let in_progress = row.state == State::InProgress;
            let speed = |s: u64| if in_progress { s as u32 as u64 } else { 0 };
            match index {
                0 => col.int(Some(p.id as u64)),
                1 => col.char(Some(STAGE_NAMES[i])),
                2 => col.char(Some(row.state.name())),
                3 => col.timestamp(Some(row.begin_us)),
                4 => col.timestamp(Some(row.end_us)),
                5 => col.int(Some(row.threads as u64)),
                6 => col.bigint(Some(row.estimate)),
                7 => col.bigint(Some(row.data)),
                8 => col.bigint(Some(row.network)),
                9 => col.int(Some(speed(row.data_speed))),
                10 => col.int(Some(speed(row.network_speed))),
                _ => {}
            }
        }
    }
    0
}
}

fn share(name: &'static CStr, definition: &'static str, open: ffi::open_table_t, rows: ffi::get_row_count_t) -> PFS_engine_table_share_proxy {
    let proxy = ffi::PFS_engine_table_proxy {
        rnd_next: Some(rnd_next),
        rnd_init: Some(rnd_init),
        rnd_pos: Some(rnd_pos),
        read_column_value: Some(read_column),
        reset_position: Some(reset_position),
        open_table: open,
        close_table: Some(close_table),
        ..Default::default()
    };
    PFS_engine_table_share_proxy {
        m_proxy_engine_table: proxy,
        // The service reads the name both as C string and with its length.
        m_table_name: name.as_ptr(),
        m_table_name_length: name.to_bytes().len() as c_uint,
        m_table_definition: definition.as_ptr().cast(),
        m_ref_length: std::mem::size_of::<u32>() as c_uint,
        m_acl: ffi::Access_control_READONLY,
        delete_all_rows: None,
        get_row_count: rows,
    }
}

/// The shares must stay at fixed addresses while registered.
static mut SHARES: Option<[PFS_engine_table_share_proxy; 2]> = None;
static mut SHARE_PTRS: [*mut PFS_engine_table_share_proxy; 2] = [null_mut(); 2];

/// Registers both tables. Called once from plugin init.
pub fn add_tables(svc: PfsServices) -> Result<(), &'static str> {
    // SAFETY: init and deinit are serialised by the server.
    unsafe {
        let shares = (*addr_of_mut!(SHARES)).insert([
            share(c"clone_status", STATUS_DEFINITION, Some(open_status), Some(status_row_count)),
            share(c"clone_progress", PROGRESS_DEFINITION, Some(open_progress), Some(progress_row_count)),
        ]);
        SHARE_PTRS = [&mut shares[0], &mut shares[1]];
        let add = (*svc.table).add_tables.ok_or("no add_tables")?;
        if add(addr_of_mut!(SHARE_PTRS).cast(), 2) != 0 {
            SHARES = None;
            return Err("add_tables refused the tables");
        }
        Ok(())
    }
}

/// Unregisters both tables. Called from plugin deinit.
pub fn delete_tables(svc: PfsServices) {
    // SAFETY: as above.
    unsafe {
        if (*addr_of_mut!(SHARES)).is_some() {
            if let Some(f) = (*svc.table).delete_tables {
                f(addr_of_mut!(SHARE_PTRS).cast(), 2);
            }
            SHARES = None;
        }
    }
}
