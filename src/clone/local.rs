//! `CLONE LOCAL DATA DIRECTORY = 'dir'`: the storage engines copy their data
//! into a new directory of the same server. Each thread (the user's session
//! as master, plus workers) asks the engine for chunks on the source side;
//! every chunk the source offers is handed straight to the apply side,
//! which calls back to have it written. State changes announced by the apply
//! side advance the progress stages and are acknowledged to the source side.

use super::check_space;
use super::meter::{Meter, Team};
use crate::protocol::innodb::{self, CopyEstimate};
use crate::server::errors::*;
use crate::server::files::{self as copy, AlignedBuf, CopyError, WriteBehind};
use crate::server::services;
use crate::server::session::{self, Statement, Thd, Worker, WorkerSession};
use crate::server::storage::{self, Callback, Cbk, Engine, EngineBuf, Handler, Locator, Mode};
use crate::server::sysvars::{self, Settings};
use crate::status::{Busy, LOCAL_INSTANCE, TRACKER};
use crate::transfer::stats::Config;
use std::cell::{Cell, RefCell, RefMut};
use std::ffi::CStr;
use std::os::fd::RawFd;
use std::thread::Scope;

/// Per-thread copy buffers share this much memory at most.
const BUFFER_BUDGET: u32 = 128 * 1024 * 1024;
/// File data goes through the writer in pieces of at most this size: the
/// next piece is read while the last one is written.
const WRITE_PIECE: u64 = 1 << 20;

/// Runs a local clone for the session `thd` into `data_dir` and records it in
/// clone_status / clone_progress.
pub fn run(thd: Thd, data_dir: &CStr) -> Result<(), Error> {
    thd.refine_statement(Statement::Local);
    if sysvars::dry_run(thd) {
        return dry_run(thd, data_dir);
    }
    let dir_text = data_dir.to_string_lossy();
    if let Err(Busy) = TRACKER.begin(thd.thread_id(), LOCAL_INSTANCE, Some(&dir_text)) {
        return Err(Error::with_int(message::ER_CLONE_TOO_MANY_CONCURRENT_CLONES, 1));
    }
    TRACKER.next_stage(0, 1);
    // Raised here, so that clone_status records its message.
    let result = LocalClone::new(thd, data_dir, sysvars::settings()).execute().map_err(Error::raise);
    let (code, message) = thd.error();
    TRACKER.end(code, &message);
    result
}

/// clone_dry_run: the checks of a local clone up to the first byte of
/// data. The source side begins (InnoDB's snapshot) and announces the file
/// copy; its estimate is checked against the space where the new directory
/// would be; the source's clone then ends, and nothing is created. The
/// server has checked the path before the plugin is called; clone_status
/// keeps the last real clone.
fn dry_run(thd: Thd, data_dir: &CStr) -> Result<(), Error> {
    let settings = sysvars::settings();
    if settings.block_ddl {
        services::backup_lock(thd, settings.ddl_timeout)?;
        services::backup_unlock(thd);
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
    let mut result = Err(Error::with_str(message::ER_INTERNAL_ERROR, "clone: no storage engine to clone from"));
    for engine in storage::source_engines(thd) {
        match engine.begin(thd, None, Mode::Start) {
            Ok((loc, task)) => begun.push((engine, loc, task)),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Some(&(engine, loc, task)) = begun.iter().find(|(e, _, _)| e.is_innodb()) {
        let look = Look { thd, engine, loc, estimate: Cell::new(None), ack: RefCell::new(Vec::new()) };
        let copied = Callback::new(&look).and_then(|cbk| engine.copy(thd, loc, task, &cbk));
        result = match (look.estimate.get(), copied) {
            (Some(estimate), _) => Ok(estimate),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => Err(Error::with_str(message::ER_INTERNAL_ERROR, "clone: the file copy announced no estimate")),
        };
    }
    let err = result.as_ref().err().map_or(LOOK_ENDED, Error::code);
    for (engine, loc, task) in begun {
        let _ = engine.end(thd, loc, task, err);
    }
    result
}

/// The error that stops the source's copy once the estimate is known.
const LOOK_ENDED: i32 = ER_QUERY_INTERRUPTED;

/// The source side's callbacks while a dry run looks at the snapshot.
struct Look {
    thd: Thd,
    engine: Engine,
    loc: Locator,
    estimate: Cell<Option<CopyEstimate>>,
    /// The acknowledgement of the INIT state, alive while the engine reads it.
    ack: RefCell<Vec<u8>>,
}

impl Handler for Look {
    fn file(&self, _cbk: Cbk<'_>, _from: RawFd, _len: u32) -> Result<(), Error> {
        Err(Error::quiet(LOOK_ENDED))
    }

    fn buffer(&self, cbk: Cbk<'_>, _buf: EngineBuf) -> Result<(), Error> {
        let desc = cbk.data_desc();
        if let Some(estimate) = innodb::file_copy_estimate(desc) {
            self.estimate.set(Some(estimate));
            return Err(Error::quiet(LOOK_ENDED));
        }
        if let Some(ack) = innodb::init_acknowledgement(desc) {
            let mut held = self.ack.borrow_mut();
            *held = ack;
            cbk.set_data_desc(&held);
            return self.engine.ack(self.thd, self.loc, 0, 0, cbk);
        }
        Ok(())
    }

    fn apply_file(&self, _cbk: Cbk<'_>, _to: RawFd) -> Result<(), Error> {
        Err(no_apply_side())
    }

    fn apply_buffer(&self, _cbk: Cbk<'_>) -> Result<EngineBuf, Error> {
        Err(no_apply_side())
    }
}

/// One engine's clone: its source and apply locators.
#[derive(Clone, Copy)]
struct EngineClone {
    engine: Engine,
    source: Locator,
    source_task: u32,
    apply: Locator,
    apply_task: u32,
}

/// What all threads of one local clone share.
struct LocalClone<'a> {
    master: Thd,
    data_dir: &'a CStr,
    settings: Settings,
    engines: Vec<EngineClone>,
    team: Team,
    /// Bytes per thread buffer (also the engine's read-size hint).
    buffer_size: u32,
}

impl<'a> LocalClone<'a> {
    fn new(master: Thd, data_dir: &'a CStr, settings: Settings) -> LocalClone<'a> {
        let config = Config {
            max_threads: settings.max_concurrency.max(1),
            autotune: settings.autotune_concurrency,
            max_data_mib: settings.max_data_bandwidth as u64,
            max_network_mib: 0,
        };
        let buffer_size = settings.buffer_size.min(BUFFER_BUDGET / config.max_threads);
        LocalClone { master, data_dir, settings, engines: Vec::new(), team: Team::new(config), buffer_size }
    }

    fn execute(mut self) -> Result<(), Error> {
        let thd = self.master;
        let locked = self.settings.block_ddl;
        if locked {
            services::backup_lock(thd, self.settings.ddl_timeout)?;
        }
        let result = self.begin().and_then(|()| self.copy_all());
        if locked {
            services::backup_unlock(thd);
        }
        result
    }

    /// Begins the clone on both sides of every engine.
    fn begin(&mut self) -> Result<(), Error> {
        let thd = self.master;
        let mut sources = Vec::new();
        for engine in storage::source_engines(thd) {
            match engine.begin(thd, None, Mode::Start) {
                Ok((loc, task)) => sources.push((engine, loc, task)),
                Err(e) => {
                    for (engine, loc, task) in sources {
                        let _ = engine.end(thd, loc, task, e.code());
                    }
                    return Err(e);
                }
            }
        }
        for (i, &(engine, source, source_task)) in sources.iter().enumerate() {
            match engine.apply_begin(thd, Some(source), Mode::Start, Some(self.data_dir)) {
                Ok((apply, apply_task)) => self.engines.push(EngineClone { engine, source, source_task, apply, apply_task }),
                Err(e) => {
                    for c in &self.engines {
                        let _ = c.engine.apply_end(thd, c.apply, c.apply_task, e.code());
                    }
                    for &(engine, loc, task) in &sources[i..] {
                        let _ = engine.end(thd, loc, task, e.code());
                    }
                    for c in &self.engines {
                        let _ = c.engine.end(thd, c.source, c.source_task, e.code());
                    }
                    self.engines.clear();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Copies with the master and its workers, then ends both sides.
    fn copy_all(&self) -> Result<(), Error> {
        let thd = self.master;
        let result = std::thread::scope(|scope| {
            let config = self.team.config;
            if !config.autotune {
                let wanted = config.allowed_threads(config.max_threads);
                self.team.spawn_workers(scope, wanted, "clone_local", |i| self.worker(i));
            }
            let tasks: Vec<u32> = self.engines.iter().map(|c| c.apply_task).collect();
            let task = Task::new(self, 0, thd, tasks, Some(scope));
            let result = task.copy(self.engines.iter().map(|c| (c.engine, c.source, c.source_task)));
            task.meter.flush();
            result
        });
        let err = result.as_ref().err().map_or(0, Error::code);
        for c in &self.engines {
            let _ = c.engine.apply_end(thd, c.apply, c.apply_task, err);
        }
        for c in &self.engines {
            let _ = c.engine.end(thd, c.source, c.source_task, err);
        }
        result
    }

    /// A worker joins the running clone on both sides and copies its share.
    fn worker(&self, index: usize) {
        session::guard((), || {
            let Some(session) = WorkerSession::start(Worker::Local) else {
                log::info!("Failed to spawn worker: 0");
                return;
            };
            let thd = session.thd();
            let mut sources = Vec::new();
            let mut tasks = Vec::new();
            for c in &self.engines {
                let Ok((source, source_task)) = c.engine.begin(thd, Some(c.source), Mode::AddTask) else { break };
                // The engine finds the running apply clone through the source locator.
                match c.engine.apply_begin(thd, Some(c.source), Mode::AddTask, Some(self.data_dir)) {
                    Ok((_, apply_task)) => {
                        sources.push((c.engine, source, source_task));
                        tasks.push(apply_task);
                    }
                    Err(e) => {
                        let _ = c.engine.end(thd, source, source_task, e.code());
                        break;
                    }
                }
            }
            // A worker that cannot join leaves the clone to the others.
            let err = if sources.len() == self.engines.len() {
                Task::new(self, index, thd, tasks.clone(), None).copy(sources.iter().copied()).err().map_or(0, |e| e.code())
            } else {
                ER_INTERNAL_ERROR
            };
            for (i, &(engine, source, source_task)) in sources.iter().enumerate() {
                let _ = engine.apply_end(thd, self.engines[i].apply, tasks[i], err);
                let _ = engine.end(thd, source, source_task, err);
            }
        })
    }
}

/// The chunk the source side offered, waiting for the apply side.
#[derive(Clone, Copy)]
enum Pending {
    None,
    File { fd: RawFd, len: u32 },
    Buffer(EngineBuf),
}

/// One thread's part in the clone: the callback handler it gives the engine.
struct Task<'c, 's, 'e> {
    clone: &'c LocalClone<'c>,
    thd: Thd,
    apply_tasks: Vec<u32>,
    pending: Cell<Pending>,
    applying: Cell<bool>,
    buffer: RefCell<Option<AlignedBuf>>,
    meter: Meter<'c>,
    /// Master only: the scope to spawn workers in.
    scope: Option<&'s Scope<'s, 'e>>,
    /// Writes copied file data while the next piece is read (None: the
    /// thread could not start, and writes are done in place).
    writer: Option<WriteBehind>,
}

impl<'c: 's, 's, 'e> Task<'c, 's, 'e> {
    fn new(clone: &'c LocalClone<'c>, index: usize, thd: Thd, apply_tasks: Vec<u32>, scope: Option<&'s Scope<'s, 'e>>) -> Self {
        Task {
            clone,
            thd,
            apply_tasks,
            pending: Cell::new(Pending::None),
            applying: Cell::new(false),
            buffer: RefCell::new(None),
            meter: Meter::new(&clone.team, index),
            scope,
            writer: WriteBehind::new().map_err(|e| log::info!("Writing clone data in place: no writer thread ({e})")).ok(),
        }
    }

    fn is_master(&self) -> bool {
        self.meter.is_master()
    }

    fn copy(&self, sources: impl Iterator<Item = (Engine, Locator, u32)>) -> Result<(), Error> {
        let cbk = Callback::new(self)?;
        cbk.set_client_buffer_size(self.clone.buffer_size);
        for (engine, loc, task) in sources {
            if let Err(e) = engine.copy(self.thd, loc, task, &cbk) {
                let _ = self.settle();
                return Err(e);
            }
        }
        self.settle()
    }

    /// Waits for the writes queued so far; a failed one fails the clone.
    fn settle(&self) -> Result<(), Error> {
        match &self.writer {
            Some(w) => w.drain().map_err(|e| self.report(e, &Default::default())),
            None => Ok(()),
        }
    }

    /// Hands the pending chunk to the apply side of the engine that offered it.
    fn apply(&self, cbk: Cbk<'_>, pending: Pending) -> Result<(), Error> {
        self.thd.interrupted(self.is_master())?;
        let index = cbk.loc_index() as usize;
        let (Some(c), Some(&task)) = (self.clone.engines.get(index), self.apply_tasks.get(index)) else {
            return Err(engine_index_out_of_range());
        };
        // Not file data: a file or state change, or pages the engine may
        // write itself; the writes before it come first.
        if let Pending::Buffer(_) = pending {
            self.settle()?;
        }
        self.pending.set(pending);
        self.applying.set(true);
        let result = c.engine.apply(self.thd, c.apply, task, cbk);
        self.applying.set(false);
        self.pending.set(Pending::None);
        result
    }

    /// The apply side announced a new state, or asks to acknowledge one.
    fn apply_side_notice(&self, cbk: Cbk<'_>) -> Result<(), Error> {
        self.settle()?;
        if let Some(estimate) = cbk.flags().state_change {
            TRACKER.next_stage(estimate, self.clone.team.threads());
            return Ok(());
        }
        self.meter.state_end();
        let index = cbk.loc_index() as usize;
        let Some(c) = self.clone.engines.get(index) else {
            return Err(engine_index_out_of_range());
        };
        // The source side's master task (0) waits for this acknowledgement.
        c.engine.ack(self.clone.master, c.source, 0, 0, cbk)
    }

    /// Statistics, auto-tuning (master) and throttling after each chunk.
    fn account(&self, bytes: u64) {
        if let (Some(n), Some(scope)) = (self.meter.account(bytes, 0), self.scope) {
            let clone = self.clone;
            clone.team.spawn_workers(scope, n, "clone_local", |i| clone.worker(i));
        }
    }

    /// This thread's aligned buffer, grown to at least `len` bytes.
    fn buffer(&self, len: usize) -> Result<RefMut<'_, AlignedBuf>, Error> {
        let mut slot = self.buffer.borrow_mut();
        copy::reserve(&mut slot, len).map_err(|e| self.report(e, &Default::default()))?;
        RefMut::filter_map(slot, Option::as_mut).map_err(|_| Error::with_int(message::ER_OUTOFMEMORY, len as i64))
    }

    /// The error of a failed copy, naming the (source, destination) file.
    fn report(&self, e: CopyError, names: &(String, String)) -> Error {
        match e {
            CopyError::Read(err) => Error::with_file(message::ER_ERROR_ON_READ, names.0.clone(), err),
            CopyError::Write(err) => Error::with_file(message::ER_ERROR_ON_WRITE, names.1.clone(), err),
            CopyError::WriteBehind(f) => Error::with_file(message::ER_ERROR_ON_WRITE, f.name, f.error),
            CopyError::OutOfMemory(n) => Error::with_int(message::ER_OUTOFMEMORY, n as i64),
        }
    }
}

impl<'c: 's, 's, 'e> Handler for Task<'c, 's, 'e> {
    fn file(&self, cbk: Cbk<'_>, from: RawFd, len: u32) -> Result<(), Error> {
        self.apply(cbk, Pending::File { fd: from, len })
    }

    fn buffer(&self, cbk: Cbk<'_>, buf: EngineBuf) -> Result<(), Error> {
        if self.applying.get() {
            return self.apply_side_notice(cbk);
        }
        self.apply(cbk, Pending::Buffer(buf))
    }

    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error> {
        let names = || (cbk.source_name(), cbk.dest_name());
        let bytes = match self.pending.get() {
            Pending::File { fd, len } => {
                let flags = cbk.flags();
                let in_kernel = flags.os_buffer_cache && flags.zero_copy;
                match &self.writer {
                    Some(writer) if !in_kernel => {
                        let mut left = len as u64;
                        while left > 0 {
                            let piece = left.min(WRITE_PIECE) as usize;
                            writer.write_with(to, piece, |buf| copy::read_exact(fd, buf), || cbk.dest_name()).map_err(|e| self.report(e, &names()))?;
                            left -= piece as u64;
                        }
                    }
                    _ => {
                        let mut buf = self.buffer(self.clone.buffer_size as usize)?;
                        copy::copy_file(fd, to, len as u64, in_kernel, &mut buf).map_err(|e| self.report(e, &names()))?;
                    }
                }
                len
            }
            Pending::Buffer(b) => {
                copy::write_all(to, b.as_slice()).map_err(|e| self.report(e, &names()))?;
                b.len()
            }
            Pending::None => return Err(nothing_pending()),
        };
        self.account(bytes as u64);
        Ok(())
    }

    fn apply_buffer(&self, cbk: Cbk<'_>) -> Result<EngineBuf, Error> {
        // The engine writes what it gets here itself, after the queued writes.
        self.settle()?;
        let out = match self.pending.get() {
            Pending::Buffer(b) => b,
            Pending::File { fd, len } => {
                let mut buf = self.buffer(len as usize)?;
                copy::read_exact(fd, &mut buf.as_mut_slice()[..len as usize]).map_err(|e| self.report(e, &(cbk.source_name(), cbk.dest_name())))?;
                EngineBuf::lend(&mut buf.as_mut_slice()[..len as usize])
            }
            Pending::None => return Err(nothing_pending()),
        };
        self.account(out.len() as u64);
        Ok(out)
    }
}

fn no_apply_side() -> Error {
    Error::with_str(message::ER_INTERNAL_ERROR, "clone: the engine asked a dry run to apply data")
}

fn engine_index_out_of_range() -> Error {
    Error::with_str(message::ER_INTERNAL_ERROR, "clone: storage engine index out of range")
}

fn nothing_pending() -> Error {
    Error::with_str(message::ER_INTERNAL_ERROR, "clone: the engine asked to apply data it had not offered")
}
