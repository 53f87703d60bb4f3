//! The recipient: `CLONE INSTANCE FROM user@host:port ...`. The master (the
//! user's session) opens a main connection for INIT and the data stream and
//! an auxiliary one for acknowledgements, checks that the donor's server can
//! be cloned here, then applies what the donor streams; workers attach with
//! connections of their own and stream their share. In place (no DATA
//! DIRECTORY), the clone goes into a staging directory while this server
//! keeps its data, or (clone_stage_in_place, room) the engines first drop
//! this server's data; the server restarts on the clone when the statement
//! returns.
//!
//! The rooms: this file runs a clone from start to end (its attempts, and
//! leaving the donor); `handshake` connects and checks the donor; `look`
//! reads the donor's estimate before anything is dropped (and concludes a
//! dry run); `apply` begins and ends the engines' apply side; `workers`
//! streams the data with the master and its workers; `stream` is one
//! thread's data stream; `resume` reconnects after a network failure;
//! `link` holds the small exchanges on a connection; `swap` stages an
//! in-place clone and swaps it in; `kept` keeps what a failed clone wrote
//! and reuses it (and this server's own files) when the same clone runs
//! again. What needs no server is decided in `clone_core::recipient`,
//! `clone_core::staging` and `clone_core::reuse`.

mod apply;
mod handshake;
mod kept;
mod link;
mod look;
mod resume;
mod stream;
mod swap;
mod workers;

use super::meter::Team;
use super::{breaks_connection, is_restartable};
use crate::server::clone_protocol::{Connection, DonorAddress, Interrupter};
use crate::server::config::{self, Settings};
use crate::server::errors::*;
use crate::server::files::ZeroRuns;
use crate::server::plugin::CloneRequest as Request;
use crate::server::services::BackupLock;
use crate::server::session::{Statement, Thd};
use crate::server::storage::{Engine, Handle};
use clone_core::checks;
use clone_core::protocol::extension::{Caps, Version};
use clone_core::protocol::innodb::{DescriptorGuard, Refusal};
use clone_core::protocol::{self, InitPayload};
use clone_core::recipient::{after_failure, AfterFailure, Failure, DEFAULT_RECONNECT_MINUTES};
use clone_core::staging;
use clone_core::status::{Busy, Tracker};
use clone_core::transfer::stats::Config;
use link::{exit, LostWrite};
use parking_lot::Mutex;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

/// How often the KILL watcher looks at the statement.
const KILL_POLL: Duration = Duration::from_millis(100);

/// Runs a remote clone and records it in clone_status / clone_progress.
pub fn run(thd: Thd, status: Arc<Tracker>, req: &Request<'_>) -> Result<(), Error> {
    thd.refine_statement(Statement::Client);
    let list = config::valid_donor_list();
    if !checks::donor_is_listed(list.as_deref(), req.host, req.port) {
        let msg = format!("{}:{} is not found in clone_valid_donor_list: {}", req.host, req.port, list.as_deref().unwrap_or(""));
        return Err(Error::with_str(message::ER_CLONE_SYS_CONFIG, msg));
    }
    let dry_run = config::dry_run(thd);
    let source = format!("{}:{}", req.host, req.port);
    let dest = req.data_dir.map(|d| d.to_string_lossy().into_owned());
    // A dry run leaves clone_status to the last real clone.
    if !dry_run && status.begin(thd.thread_id(), &source, dest.as_deref()) == Err(Busy) {
        return Err(Error::with_int(message::ER_CLONE_TOO_MANY_CONCURRENT_CLONES, 1));
    }
    let master = Master { thd, clone: Recipient::new(thd, req, config::settings(), dry_run, Arc::clone(&status)) };
    let (result, ended) = master.execute();
    // A finished in-place clone stays "In Progress" until the restart, when
    // the storage engine's recovery report completes it (as stock does).
    let restarts = result.is_ok() && req.data_dir.is_none();
    if !dry_run {
        if restarts {
            status.await_restart(ended.resumed.as_deref());
        } else {
            let (code, mut message) = thd.error();
            if ended.staged && code != 0 {
                message += staging::DATA_KEPT;
            }
            if code == 0 {
                message = ended.resumed.unwrap_or_default();
            } else {
                message += &ended.kept.unwrap_or_default();
            }
            status.end(code, &message);
        }
    }
    result
}

/// How a clone ended, besides its result.
struct Ended {
    /// In place, staged.
    staged: bool,
    /// It reused what this server held: what it took, for the status row.
    resumed: Option<String>,
    /// Failed, and what it wrote is kept for a resume: where, for the
    /// status row.
    kept: Option<String>,
}

/// What the threads of one clone share: the donor, the engines, the checks
/// on what the donor sends. It holds no session: each thread uses its own.
struct Recipient<'r> {
    address: DonorAddress,
    data_dir: Option<&'r CStr>,
    /// In place, staged: the staging directory the engines clone into.
    staging: Option<CString>,
    settings: Settings,
    /// clone_dry_run: check everything up to the first byte of data, stop.
    dry_run: bool,
    /// The extensions to ask a donor for: what the settings want, until a
    /// donor has answered without them.
    offer: Caps,
    team: Team,
    engines: Vec<Engine>,
    /// The locators the donor sent in its answer to INIT.
    donor_locators: Vec<(u8, Vec<u8>)>,
    /// The master's apply handles, one per engine (their locators are
    /// what ATTACH and ACK carry).
    apply: Vec<Handle>,
    /// The donor's answer to INIT: what ATTACH and REINIT offer again.
    version: Version,
    /// The donor's gtid_executed (our donor only).
    donor_gtids: Option<String>,
    /// The donor's server_uuid (our donor only, granting reuse).
    donor_uuid: Option<String>,
    /// What this server holds of the clone (an earlier attempt's kept copy,
    /// its own files), which the donor does not send again.
    kept: Option<kept::Kept>,
    /// Bytes of the snapshot taken from what this server held.
    reused: std::sync::atomic::AtomicU64,
    /// Reusing what this server holds: the files of file copy, by index,
    /// as the donor named them (on the master's connection).
    file_names: Mutex<std::collections::HashMap<u32, Vec<u8>>>,
    /// How long the donor keeps a clone for us after a network failure.
    reconnect_minutes: u32,
    ack_link: Mutex<Option<Connection>>,
    /// Shuts the auxiliary and worker connections down on KILL.
    interrupter: Arc<Interrupter>,
    /// Checks InnoDB's descriptors before InnoDB applies them.
    innodb_guard: Mutex<DescriptorGuard>,
    /// The first descriptor the guard refused, on any connection.
    refusal: Mutex<Option<Refusal>>,
    /// The first write that failed behind a stream, on any connection:
    /// InnoDB counts its block done, so the clone never resumes past it.
    lost_write: Mutex<Option<LostWrite>>,
    /// How the writers treat runs of zeros in file data.
    zeros: ZeroRuns,
    /// What a dry run checked, for SHOW WARNINGS.
    notes: Mutex<Vec<String>>,
}

/// The clone as the user's session runs it.
struct Master<'r, 's> {
    thd: Thd<'s>,
    clone: Recipient<'r>,
}

impl<'r> Recipient<'r> {
    fn new(thd: Thd, req: &Request<'r>, settings: Settings, dry_run: bool, status: Arc<Tracker>) -> Recipient<'r> {
        let (key, cert, ca) = config::ssl_files();
        let cstring = |s: &str| CString::new(s).unwrap_or_default();
        let address = DonorAddress {
            host: cstring(req.host),
            port: req.port,
            user: req.user.to_owned(),
            password: req.password.to_owned(),
            ssl_mode: req.ssl_mode,
            ssl_key: key.as_deref().map(cstring),
            ssl_cert: cert.as_deref().map(cstring),
            ssl_ca: ca.as_deref().map(cstring),
            compress: settings.enable_compression,
        };
        let config = Config {
            max_threads: settings.max_concurrency.max(1),
            autotune: settings.autotune_concurrency,
            max_data_mib: settings.max_data_bandwidth as u64,
            max_network_mib: settings.max_network_bandwidth as u64,
        };
        Recipient {
            address,
            data_dir: req.data_dir,
            staging: None,
            offer: clone_core::recipient::offer(settings.enable_compression),
            settings,
            dry_run,
            team: Team::new(config, status),
            engines: Vec::new(),
            donor_locators: Vec::new(),
            apply: Vec::new(),
            version: Version::stock(protocol::VERSION_CURRENT),
            donor_gtids: None,
            donor_uuid: None,
            kept: None,
            reused: Default::default(),
            file_names: Mutex::default(),
            reconnect_minutes: DEFAULT_RECONNECT_MINUTES,
            ack_link: Mutex::new(None),
            interrupter: Arc::default(),
            innodb_guard: Mutex::new(DescriptorGuard::new(apply::clone_places(thd, req.data_dir, false))),
            refusal: Mutex::new(None),
            lost_write: Mutex::new(None),
            zeros: super::zero_runs(thd),
            notes: Mutex::default(),
        }
    }

    fn in_place(&self) -> bool {
        self.data_dir.is_none()
    }

    /// In place in the stock order: this server's data dropped first.
    fn drops_first(&self) -> bool {
        self.in_place() && self.staging.is_none()
    }

    /// The staging directory of a staged clone.
    fn staging_dir(&self) -> Option<&std::path::Path> {
        self.staging.as_deref().map(dir_path)
    }

    /// Where the engines clone to: the DATA DIRECTORY, the staging
    /// directory, or (None) over this server's data.
    fn apply_dir(&self) -> Option<&CStr> {
        self.staging.as_deref().or(self.data_dir)
    }

    /// From now on the clone goes to `dir`, and the donor's file names are
    /// checked against it.
    fn stage(&mut self, thd: Thd, dir: CString) {
        *self.innodb_guard.lock() = DescriptorGuard::new(apply::clone_places(thd, Some(&dir), true));
        self.staging = Some(dir);
    }

    /// A note for the statement and its SHOW WARNINGS, dry run or not.
    fn announce(&self, text: &str) {
        self.notes.lock().push(text.to_owned());
    }

    fn ddl_word(&self) -> u32 {
        protocol::ddl_word(self.settings.block_ddl, self.settings.ddl_timeout)
    }

    /// ATTACH or REINIT with what INIT agreed, naming `handles`' clones.
    fn join_payload<'h>(&self, handles: &'h [Handle]) -> InitPayload<'h> {
        let locators = handles.iter().map(|h| protocol::Locator { db_type: h.engine().db_type(), bytes: h.locator() }).collect();
        InitPayload { version: self.version.encode(), ddl_word: self.ddl_word(), locators }
    }

    /// In a dry run, what was checked: a note for the statement and a line
    /// in the error log.
    fn tell(&self, text: &str) {
        if self.dry_run {
            log::info!("Clone dry run: {text}");
            self.notes.lock().push(text.to_owned());
        }
    }

    /// The error for a refused descriptor, which is also kept: a worker's
    /// refusal reaches the master only as InnoDB's generic error.
    fn refuse(&self, refusal: Refusal) -> Error {
        if let Refusal::FilePath(name) = &refusal {
            log::error!("Refused a file path from the donor: {name}");
        }
        self.refusal.lock().get_or_insert(refusal.clone());
        refusal_error(refusal)
    }

    /// A connection that the KILL watcher shuts down.
    fn open_watched(&self, to: &DonorAddress) -> Result<Connection, Error> {
        let mut conn = Connection::open(None, to)?;
        conn.watch(&self.interrupter);
        Ok(conn)
    }
}

impl<'s> Master<'_, 's> {
    /// Runs the clone while a watcher shuts its connections down as soon as
    /// the statement is killed: the server wakes only the main connection.
    /// Its error is in the diagnostics area when it returns, with how it
    /// ended.
    fn execute(mut self) -> (Result<(), Error>, Ended) {
        let thd = self.thd;
        let interrupter = Arc::clone(&self.clone.interrupter);
        // Dropped when the clone is over: the watcher stops at once, not
        // after its next look.
        let (done, over) = crossbeam_channel::bounded::<()>(0);
        std::thread::scope(|scope| {
            let watcher = std::thread::Builder::new().name("clone_kill_watch".into()).spawn_scoped(scope, move || {
                while !thd.killed() {
                    if over.recv_timeout(KILL_POLL) != Err(crossbeam_channel::RecvTimeoutError::Timeout) {
                        return;
                    }
                }
                interrupter.fire();
            });
            if watcher.is_err() {
                log::info!("Failed to spawn the KILL watcher");
            }
            let mut main = None;
            let mut lock = None;
            let result = self.clone_data(&mut main, &mut lock);
            let mut result = self.leave(result, main, lock);
            // What a failed attempt wrote is kept for a resume, or removed.
            let kept = result.as_ref().err().and_then(|_| self.keep_for_resume());
            if self.clone.staging.is_some() && !self.clone.dry_run {
                result = self.finish_staged(result);
            }
            drop(done);
            // After the connections are closed: closing one clears the
            // statement's diagnostics.
            for note in self.clone.notes.lock().drain(..) {
                thd.note(&note);
            }
            let resumed = if result.is_ok() && !self.clone.dry_run { self.reuse_summary() } else { None };
            self.finish_resumable(&result);
            (result, Ended { staged: self.clone.staging.is_some(), resumed, kept })
        })
    }

    /// After a clone into a DATA DIRECTORY that succeeded: its marker and
    /// the kept copy go (a staged clone's go before the swap, see
    /// `finish_staged`).
    fn finish_resumable(&self, result: &Result<(), Error>) {
        if let Some(target) = self.clone.data_dir.filter(|_| result.is_ok() && !self.clone.dry_run) {
            kept::discard(dir_path(target));
        }
    }

    /// What a clone that reused what this server held took from it, for
    /// the error log and the status row.
    fn reuse_summary(&self) -> Option<String> {
        let kept = self.clone.kept.as_ref()?;
        let reused = self.clone.reused.load(std::sync::atomic::Ordering::Relaxed) >> 20;
        let text = match kept.kept_copy() {
            Some(dir) => format!("Resumed: {reused} MiB taken from the partial copy kept in {}, the rest sent by the donor", dir.display()),
            None => format!("Re-cloned: {reused} MiB taken from this server's own files, the rest sent by the donor"),
        };
        log::info!("{text}");
        Some(text)
    }

    /// After a clone that failed: what it wrote is kept for a resume when
    /// its donor is ours (see `kept::keep`). The note for the status row.
    fn keep_for_resume(&self) -> Option<String> {
        if self.clone.dry_run {
            return None;
        }
        kept::keep(dir_path(self.clone.apply_dir()?))
    }

    /// A staged clone whose copy is complete is swapped in, and the backup
    /// lock kept until the restart; one that failed leaves this server as
    /// it was, its staging directory removed.
    fn finish_staged(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        if result.is_ok() {
            // The marker must not join this server's files.
            if let Some(dir) = self.clone.staging_dir() {
                kept::discard(dir);
            }
        }
        match result.and_then(|()| self.swap_in().map_err(Error::raise)) {
            Ok(lock) => {
                lock.keep();
                Ok(())
            }
            Err(e) => {
                if let Some(dir) = self.clone.staging_dir().filter(|d| d.exists()) {
                    if let Err(e) = staging::clear(dir) {
                        log::error!("Cannot remove the staging directory {}: {e}", dir.display());
                    }
                }
                self.clone.announce("The staged in-place clone failed: this server kept all its data");
                Err(e)
            }
        }
    }

    /// Connects, checks, and clones until done or failed.
    fn clone_data(&mut self, main: &mut Option<Connection>, lock: &mut Option<BackupLock<'s>>) -> Result<(), Error> {
        *main = Some(self.connect()?);
        let mut result = self.introduce(main);
        // In place the apply drops this server's data first: how much the
        // clone will write is known, and checked, before that.
        if result.is_ok() && (self.clone.in_place() || self.clone.dry_run) {
            result = self.look(main).and_then(|()| if self.clone.dry_run { self.conclude_dry_run() } else { self.introduce(main) });
            if self.clone.dry_run {
                return result;
            }
        }
        result?;
        self.begin_apply(lock)?;
        self.mark_resumable();
        let mut attempt = 1;
        loop {
            let Err(e) = self.transfer(main) else { return Ok(()) };
            let failure = Failure {
                restartable: is_restartable(e.code()),
                attempt,
                refused: self.clone.refusal.lock().is_some(),
                lost_write: self.clone.lost_write.lock().is_some(),
                killed: self.thd.killed(),
            };
            match after_failure(failure) {
                AfterFailure::LostWrite => return Err(self.clone.lost_write.lock().as_ref().map_or(e, LostWrite::error)),
                AfterFailure::Fail => return Err(e),
                // `leave` then ends the donor's side, which would otherwise
                // wait for a reconnection.
                AfterFailure::Killed => return Err(Error::new(message::ER_QUERY_INTERRUPTED)),
                AfterFailure::Resume => {}
            }
            attempt += 1;
            log::info!("Source Network issue: error: {}", e.code());
            self.resume(main)?;
        }
    }

    /// Leaves the donor and ends what the clone began here; raises the
    /// clone's error, before the engines end: the first error raised is
    /// the statement's.
    fn leave(&mut self, mut result: Result<(), Error>, mut main: Option<Connection>, lock: Option<BackupLock<'s>>) -> Result<(), Error> {
        let thd = self.thd;
        let mut err = result.as_ref().err().map_or(0, Error::code);
        // Leave the donor: the auxiliary connection first.
        if let Some(mut ack) = self.clone.ack_link.lock().take() {
            let left = exit(&mut ack, thd, false).is_ok();
            if err == ER_QUERY_INTERRUPTED {
                if let Some(m) = &main {
                    self.kill_donor_session(ack, left, m);
                } else {
                    ack.close(None, false, false);
                }
            } else {
                ack.close(None, !left, false);
            }
        }
        // The statement reports the refusal, not what InnoDB made of it.
        if err != 0 && err != ER_QUERY_INTERRUPTED {
            if let Some(refusal) = self.clone.refusal.lock().take() {
                let e = refusal_error(refusal);
                err = e.code();
                result = Err(e);
            }
        }
        // An error still to raise replaces what leaving the donor raised.
        let to_raise = result.as_ref().is_err_and(|e| !e.is_reported());
        if let Some(mut m) = main.take() {
            let fatal = breaks_connection(err) || exit(&mut m, thd, true).is_err();
            m.close(Some(thd), fatal, err == 0 || to_raise);
        }
        let result = result.map_err(Error::raise);
        // Whatever the apply side began (nothing if the checks failed).
        self.end_apply(err);
        // After an in-place clone the lock is kept until the server restarts.
        if let Some(lock) = lock {
            if err == 0 && self.clone.in_place() {
                lock.keep();
            }
        }
        result
    }

    /// After KILL: the donor's session of the main connection is killed
    /// over a connection back in command mode (after COM_EXIT), so the
    /// donor ends the clone at once rather than wait for a reconnection.
    /// The auxiliary connection serves unless the watcher shut it down.
    fn kill_donor_session(&self, ack: Connection, left: bool, main: &Connection) {
        let mut link = ack;
        if !left {
            link.close(None, true, false);
            let Ok(mut fresh) = Connection::open(None, &self.clone.address) else { return };
            if exit(&mut fresh, self.thd, false).is_err() {
                fresh.close(None, true, false);
                return;
            }
            link = fresh;
        }
        link.kill(main);
        link.close(None, false, false);
    }
}

/// A directory the server named, as a path.
fn dir_path(dir: &CStr) -> &std::path::Path {
    std::path::Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes()))
}

/// The error for an InnoDB descriptor the guard refused.
fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Protocol(what) => Error::protocol(what),
        Refusal::FilePath(name) => Error::with_strs(message::ER_WRONG_VALUE, "file path", name),
    }
}
