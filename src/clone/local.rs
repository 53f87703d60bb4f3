//! `CLONE LOCAL DATA DIRECTORY = 'dir'`: the storage engines copy their data
//! into a new directory of the same server. Each thread (the user's session
//! as master, plus workers) asks the engine for chunks on the source side;
//! every chunk the source offers is handed straight to the apply side,
//! which calls back to have it written (on XFS with reflink and on btrfs, a
//! file chunk's extents are shared instead). State changes announced by the
//! apply side advance the progress stages and are acknowledged to the
//! source side.

use super::check_space;
use super::meter::{Meter, Team};
use crate::server::config::{self, Settings};
use crate::server::entry::guard;
use crate::server::errors::*;
use crate::server::files::{self as copy, WriteBehind, ZeroRuns};
use crate::server::services::BackupLock;
use crate::server::session::{Statement, Thd, Worker, WorkerSession};
use crate::server::storage::{self, Apply, Callback, Cbk, EngineBuf, Handle, Lend, Mode, Relay, Source};
use clone_core::protocol::innodb::{self, CopyEstimate};
use clone_core::status::{Busy, Tracker, LOCAL_INSTANCE};
use clone_core::transfer::stats::Config;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::Scope;

/// Per-thread copy buffers share this much memory at most.
const BUFFER_BUDGET: u32 = 128 * 1024 * 1024;
/// File data goes through the writer in pieces of at most this size: the
/// next piece is read while the last one is written.
const WRITE_PIECE: u64 = 1 << 20;

/// Runs a local clone for the session `thd` into `data_dir` and records it in
/// clone_status / clone_progress.
pub fn run(thd: Thd, status: Arc<Tracker>, data_dir: &CStr) -> Result<(), Error> {
    thd.refine_statement(Statement::Local);
    if config::dry_run(thd) {
        return dry_run(thd, data_dir);
    }
    let dir_text = data_dir.to_string_lossy();
    if let Err(Busy) = status.begin(thd.thread_id(), LOCAL_INSTANCE, Some(&dir_text)) {
        return Err(Error::with_int(message::ER_CLONE_TOO_MANY_CONCURRENT_CLONES, 1));
    }
    status.next_stage(0, 1);
    // Raised here, so that clone_status records its message.
    let result = LocalClone::new(thd, data_dir, config::settings(), Arc::clone(&status)).execute(thd).map_err(Error::raise);
    let (code, message) = thd.error();
    status.end(code, &message);
    result
}

/// clone_dry_run: the checks of a local clone up to the first byte of
/// data. The source side begins (InnoDB's snapshot) and announces the file
/// copy; its estimate is checked against the space where the new directory
/// would be; the source's clone then ends, and nothing is created. The
/// server has checked the path before the plugin is called; clone_status
/// keeps the last real clone.
fn dry_run(thd: Thd, data_dir: &CStr) -> Result<(), Error> {
    let settings = config::settings();
    if settings.block_ddl {
        drop(BackupLock::acquire(thd, settings.ddl_timeout)?);
        thd.note("The backup lock (clone_block_ddl) was granted");
    }
    let estimate = look(thd)?;
    check_space(thd, Some(data_dir), estimate.disk_bytes, |text| thd.note(text))?;
    log::info!("Clone dry run: every check passed and nothing was written");
    thd.note("Every check passed and nothing was written: the clone would start");
    Ok(())
}

/// Begins the source side of every engine and reads InnoDB's estimate from
/// the START of its file copy, then ends them all.
fn look(thd: Thd) -> Result<CopyEstimate, Error> {
    let mut begun = Vec::new();
    let mut result = Err(Error::internal("no storage engine to clone from"));
    for engine in storage::source_engines(thd) {
        match engine.begin(thd, None, Mode::Start) {
            Ok(handle) => begun.push(handle),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some(source) = begun.iter().find(|h| h.engine().is_innodb()) {
        let look = Look { thd, source, estimate: Cell::new(None), ack: RefCell::new(Vec::new()) };
        let copied = Callback::source(&look).and_then(|cbk| source.copy(thd, &cbk));
        result = match (look.estimate.get(), copied) {
            (Some(estimate), _) => Ok(estimate),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(Error::internal("the file copy announced no estimate")),
        };
    }
    let err = result.as_ref().err().map_or(LOOK_ENDED, Error::code);
    for handle in begun {
        let _ = handle.end(thd, err);
    }
    result
}

/// The error that stops the source's copy once the estimate is known.
const LOOK_ENDED: i32 = ER_QUERY_INTERRUPTED;

/// The source side's callbacks while a dry run looks at the snapshot.
struct Look<'h, 's> {
    thd: Thd<'s>,
    source: &'h Handle,
    estimate: Cell<Option<CopyEstimate>>,
    /// The acknowledgement of the INIT state, alive while the engine reads it.
    ack: RefCell<Vec<u8>>,
}

impl Source for Look<'_, '_> {
    fn file(&self, _cbk: Cbk<'_>, _from: RawFd, _len: u32) -> Result<(), Error> {
        Err(Error::reported(LOOK_ENDED))
    }

    fn buffer<'c>(&self, cbk: Cbk<'c>, _buf: EngineBuf<'c>) -> Result<(), Error> {
        let desc = cbk.data_desc();
        if let Some(estimate) = innodb::file_copy_estimate(desc) {
            self.estimate.set(Some(estimate));
            return Err(Error::reported(LOOK_ENDED));
        }
        if let Some(ack) = innodb::init_acknowledgement(desc) {
            let mut held = self.ack.borrow_mut();
            *held = ack;
            cbk.set_data_desc(&held);
            return self.source.engine().ack(self.thd, self.source.locator(), 0, 0, cbk);
        }
        Ok(())
    }
}

/// One engine's clone: the master's handles on its two sides.
struct EngineClone {
    source: Handle,
    apply: Handle,
}

/// What all threads of one local clone share (each uses its own session).
struct LocalClone<'a> {
    data_dir: &'a CStr,
    settings: Settings,
    engines: Vec<EngineClone>,
    team: Team,
    /// Bytes per thread buffer (also the engine's read-size hint).
    buffer_size: u32,
    zeros: ZeroRuns,
}

impl<'a> LocalClone<'a> {
    fn new(master: Thd, data_dir: &'a CStr, settings: Settings, status: Arc<Tracker>) -> LocalClone<'a> {
        let config = Config {
            max_threads: settings.max_concurrency.max(1),
            autotune: settings.autotune_concurrency,
            max_data_mib: settings.max_data_bandwidth as u64,
            max_network_mib: 0,
        };
        let buffer_size = settings.buffer_size.min(BUFFER_BUDGET / config.max_threads);
        LocalClone { data_dir, settings, engines: Vec::new(), team: Team::new(config, status), buffer_size, zeros: super::zero_runs(master) }
    }

    /// Runs the clone with `thd`, the user's session, as its master.
    fn execute(mut self, thd: Thd) -> Result<(), Error> {
        let _lock = if self.settings.block_ddl { Some(BackupLock::acquire(thd, self.settings.ddl_timeout)?) } else { None };
        self.begin(thd).and_then(|()| self.copy_all(thd))
    }

    /// Begins the clone on both sides of every engine.
    fn begin(&mut self, thd: Thd) -> Result<(), Error> {
        let mut sources = Vec::new();
        for engine in storage::source_engines(thd) {
            match engine.begin(thd, None, Mode::Start) {
                Ok(handle) => sources.push(handle),
                Err(e) => {
                    for source in sources {
                        let _ = source.end(thd, e.code());
                    }
                    return Err(e);
                }
            }
        }
        let mut sources = sources.into_iter();
        while let Some(source) = sources.next() {
            match source.engine().apply_begin(thd, Some(source.locator()), Mode::Start, Some(self.data_dir)) {
                Ok(apply) => self.engines.push(EngineClone { source, apply }),
                Err(e) => {
                    // The apply sides begun, then every source side.
                    let begun = std::mem::take(&mut self.engines);
                    let mut begun_sources = Vec::new();
                    for c in begun {
                        let _ = c.apply.apply_end(thd, e.code());
                        begun_sources.push(c.source);
                    }
                    for source in std::iter::once(source).chain(sources).chain(begun_sources) {
                        let _ = source.end(thd, e.code());
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Copies with the master and its workers, then ends both sides.
    fn copy_all(&mut self, thd: Thd) -> Result<(), Error> {
        let clone = &*self;
        let result = std::thread::scope(|scope| {
            let config = clone.team.config;
            if !config.autotune {
                let wanted = config.allowed_threads(config.max_threads);
                clone.team.spawn_workers(scope, wanted, "clone_local", |i| clone.worker(i));
            }
            let tasks: Vec<u32> = clone.engines.iter().map(|c| c.apply.task()).collect();
            let task = Task::new(clone, 0, thd, tasks, Some(scope));
            let result = task.copy(clone.engines.iter().map(|c| &c.source));
            task.meter.flush();
            result
        });
        let err = result.as_ref().err().map_or(0, Error::code);
        let (applies, sources): (Vec<_>, Vec<_>) = std::mem::take(&mut self.engines).into_iter().map(|c| (c.apply, c.source)).unzip();
        for apply in applies {
            let _ = apply.apply_end(thd, err);
        }
        for source in sources {
            let _ = source.end(thd, err);
        }
        result
    }

    /// A worker joins the running clone on both sides and copies its share.
    fn worker(&self, index: usize) {
        guard((), || {
            let Some(session) = WorkerSession::start(Worker::Local) else {
                log::info!("Failed to spawn worker: 0");
                return;
            };
            let thd = session.thd();
            let mut sources = Vec::new();
            let mut tasks = Vec::new();
            for c in &self.engines {
                let engine = c.source.engine();
                let Ok(source) = engine.begin(thd, Some(c.source.locator()), Mode::AddTask) else { break };
                // The engine finds the running apply clone through the source
                // locator; this task applies through the master's apply handle.
                match engine.apply_begin(thd, Some(c.source.locator()), Mode::AddTask, Some(self.data_dir)) {
                    Ok(joined) => {
                        sources.push(source);
                        tasks.push(joined.task());
                    }
                    Err(e) => {
                        let _ = source.end(thd, e.code());
                        break;
                    }
                }
            }
            // A worker that cannot join leaves the clone to the others.
            let err = if sources.len() == self.engines.len() {
                Task::new(self, index, thd, tasks.clone(), None).copy(sources.iter()).err().map_or(0, |e| e.code())
            } else {
                ER_INTERNAL_ERROR
            };
            for ((source, task), c) in sources.into_iter().zip(tasks).zip(&self.engines) {
                let _ = c.apply.apply_end_task(thd, task, err);
                let _ = source.end(thd, err);
            }
        })
    }
}

/// One thread's part in the clone: the callback handler it gives the engine.
struct Task<'c, 's, 'e, 't> {
    clone: &'c LocalClone<'c>,
    thd: Thd<'t>,
    apply_tasks: Vec<u32>,
    /// The chunk the source side offered, waiting for the apply side:
    /// `len` bytes at a file's offset, or a buffer (relayed).
    pending_file: Cell<Option<(RawFd, u32)>>,
    pending_buffer: Relay,
    applying: Cell<bool>,
    /// Staging for copies, and the blocks the engine writes itself.
    lend: Lend,
    meter: Meter<'c>,
    /// Master only: the scope to spawn workers in.
    scope: Option<&'s Scope<'s, 'e>>,
    /// Writes copied file data while the next piece is read (None: the
    /// thread could not start, and writes are done in place).
    writer: Option<WriteBehind>,
}

impl<'c: 's, 's, 'e, 't> Task<'c, 's, 'e, 't> {
    fn new(clone: &'c LocalClone<'c>, index: usize, thd: Thd<'t>, apply_tasks: Vec<u32>, scope: Option<&'s Scope<'s, 'e>>) -> Self {
        Task {
            clone,
            thd,
            apply_tasks,
            pending_file: Cell::new(None),
            pending_buffer: Relay::default(),
            applying: Cell::new(false),
            lend: Lend::default(),
            meter: Meter::new(&clone.team, index),
            scope,
            writer: WriteBehind::new(clone.zeros).map_err(|e| log::info!("Writing clone data in place: no writer thread ({e})")).ok(),
        }
    }

    fn is_master(&self) -> bool {
        self.meter.is_master()
    }

    fn copy<'h>(&self, sources: impl Iterator<Item = &'h Handle>) -> Result<(), Error> {
        let cbk = Callback::both(self, self)?;
        cbk.set_client_buffer_size(self.clone.buffer_size);
        for source in sources {
            if let Err(e) = source.copy(self.thd, &cbk) {
                let _ = self.settle();
                return Err(e);
            }
        }
        self.settle()
    }

    /// Waits for the writes queued so far; a failed one fails the clone.
    fn settle(&self) -> Result<(), Error> {
        match &self.writer {
            Some(w) => w.drain().map_err(Error::from),
            None => Ok(()),
        }
    }

    /// Hands the chunk at hand (file or buffer) to the apply side of the
    /// engine that offered it.
    fn apply(&self, cbk: Cbk<'_>) -> Result<(), Error> {
        self.thd.interrupted(self.is_master())?;
        let index = cbk.loc_index() as usize;
        let (Some(c), Some(&task)) = (self.clone.engines.get(index), self.apply_tasks.get(index)) else {
            return Err(engine_index_out_of_range());
        };
        self.applying.set(true);
        let result = c.apply.apply(self.thd, task, cbk);
        self.applying.set(false);
        result
    }

    /// Statistics, auto-tuning (master) and throttling after each chunk.
    fn account(&self, bytes: u64) {
        if let (Some(n), Some(scope)) = (self.meter.account(bytes, 0), self.scope) {
            let clone = self.clone;
            clone.team.spawn_workers(scope, n, "clone_local", |i| clone.worker(i));
        }
    }
}

impl<'c: 's, 's, 'e, 't> Source for Task<'c, 's, 'e, 't> {
    fn file(&self, cbk: Cbk<'_>, from: RawFd, len: u32) -> Result<(), Error> {
        self.pending_file.set(Some((from, len)));
        let applied = self.apply(cbk);
        self.pending_file.set(None);
        applied
    }

    fn buffer<'b>(&self, cbk: Cbk<'b>, buf: EngineBuf<'b>) -> Result<(), Error> {
        if self.applying.get() {
            return self.notice(cbk);
        }
        // Not file data: a file or state change, or pages the engine may
        // write itself; the writes before it come first.
        self.settle()?;
        self.pending_buffer.relay(buf, || self.apply(cbk))
    }
}

impl<'c: 's, 's, 'e, 't> Apply for Task<'c, 's, 'e, 't> {
    /// The apply side announced a new state, or asks to acknowledge one.
    fn notice(&self, cbk: Cbk<'_>) -> Result<(), Error> {
        self.settle()?;
        if self.meter.state_notice(cbk.flags().state_change) {
            return Ok(());
        }
        let index = cbk.loc_index() as usize;
        let Some(c) = self.clone.engines.get(index) else {
            return Err(engine_index_out_of_range());
        };
        // The source side's master task (0) waits for this acknowledgement.
        c.source.engine().ack(self.thd, c.source.locator(), 0, 0, cbk)
    }

    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error> {
        let bytes = match self.pending_file.get() {
            // Where the file system shares extents, the bytes need not move.
            Some((fd, len)) if copy::share_extents(fd, to, len as u64) => len as usize,
            Some((fd, len)) => {
                let flags = cbk.flags();
                let in_kernel = flags.os_buffer_cache && flags.zero_copy;
                match &self.writer {
                    Some(writer) if !in_kernel => {
                        let mut left = len as u64;
                        while left > 0 {
                            let piece = left.min(WRITE_PIECE) as usize;
                            writer.write_with(to, piece, |buf| copy::read_exact(fd, buf, &cbk), &cbk)?;
                            left -= piece as u64;
                        }
                    }
                    _ => self.lend.scratch(self.clone.buffer_size as usize, |buf| Ok(copy::copy_file(fd, to, len as u64, in_kernel, buf, &cbk)?))?,
                }
                len as usize
            }
            None => self.pending_buffer.with(|buf| match buf {
                Some(b) => Ok(copy::write_all(to, b, &cbk).map(|()| b.len())?),
                None => Err(nothing_pending()),
            })?,
        };
        self.account(bytes as u64);
        Ok(())
    }

    fn apply_buffer(&self, cbk: Cbk<'_>) -> Result<&Lend, Error> {
        // The engine writes what it gets here itself, after the queued writes.
        self.settle()?;
        let (len, lent) = match self.pending_file.get() {
            Some((fd, len)) => (len as usize, self.lend.fill(len as usize, |buf| Ok(copy::read_exact(fd, buf, &cbk)?))?),
            None => self.pending_buffer.with(|buf| match buf {
                Some(b) => {
                    let copy = |out: &mut [u8]| {
                        out.copy_from_slice(b);
                        Ok(())
                    };
                    self.lend.fill(b.len(), copy).map(|lent| (b.len(), lent))
                }
                None => Err(nothing_pending()),
            })?,
        };
        self.account(len as u64);
        Ok(lent)
    }
}

fn engine_index_out_of_range() -> Error {
    Error::internal("storage engine index out of range")
}

fn nothing_pending() -> Error {
    Error::internal("the engine asked to apply data it had not offered")
}
