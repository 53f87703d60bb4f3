//! The recipient: `CLONE INSTANCE FROM user@host:port ...`. The master (the
//! user's session) opens a main connection for INIT and the data stream and
//! an auxiliary one for acknowledgements, checks that the donor's server can
//! be cloned here, then applies what the donor streams; workers attach with
//! connections of their own and stream their share. In place (no DATA
//! DIRECTORY), the engines first drop this server's data, and the server
//! restarts on the clone when the statement returns.

use super::meter::{Meter, Team};
use super::{breaks_connection, check_packet_size, check_space, is_restartable};
use crate::protocol::extension::{self, BlockDecompressor, Caps, Version};
use crate::protocol::innodb::{self, Checked, CopyEstimate, DescriptorGuard, Places, Refusal, TaskView};
use crate::protocol::{self, Command, InitPayload, Response};
use crate::server::clone_protocol::{self, Connection, DonorAddress, Interrupter};
use crate::server::errors::*;
use crate::server::files::{self as copy, CopyError, WriteBehind, ZeroRuns};
use crate::server::plugin::CloneRequest as Request;
use crate::server::services;
use crate::server::session::{self, guard, Statement, Thd, Worker, WorkerSession};
use crate::server::storage::{self, Callback, Cbk, Engine, EngineBuf, Handle, Handler, Lend, Mode};
use crate::server::sysvars::{self, Settings};
use crate::status::{Busy, TRACKER};
use crate::transfer::stats::Config;
use crate::{checks, doublewrite};
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::Scope;
use std::time::{Duration, Instant};

/// The donor may be silent this long past clone_ddl_timeout during INIT
/// (backup lock wait, loading tablespaces).
const INIT_EXTRA_TIMEOUT_S: u32 = 300;

/// Without a word from the donor, it keeps a clone this long after a
/// network failure (its default).
const DEFAULT_RECONNECT_MINUTES: u32 = 5;
/// At most this many attempts at one clone, as the stock plugin.
const MAX_ATTEMPTS: u32 = 100;
/// Reconnection attempts start at least this far apart.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);
/// After a local error, how long the donor has to end its stream.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How often the KILL watcher looks at the statement.
const KILL_POLL: Duration = Duration::from_millis(100);
/// The longest network-failure window a donor may ask for: the maximum of
/// clone_donor_timeout_after_network_failure.
const MAX_RECONNECT_MINUTES: u32 = 30;
/// The answer to INIT: a stock 9.7.4 donor sends about 340 messages (one
/// per plugin and collation, a few configuration values) in about 12 KiB.
/// A donor that sends far more is refused before it bloats this server.
const MAX_INIT_MESSAGES: usize = 8192;
const MAX_INIT_BYTES: usize = 4 << 20;
/// Before it announces the file copy's START, a donor sends its task's
/// descriptor and, after DDL, a few file descriptors; far more is refused.
const LOOK_MESSAGES: usize = 1024;
/// The classic protocol's COM_PING: answered once a donor's session is
/// back in command mode.
const COM_PING: u8 = 0x0e;

/// Runs a remote clone and records it in clone_status / clone_progress.
pub fn run(thd: Thd, req: &Request<'_>) -> Result<(), Error> {
    thd.refine_statement(Statement::Client);
    let list = sysvars::valid_donor_list();
    if !checks::donor_is_listed(list.as_deref(), req.host, req.port) {
        let msg = format!("{}:{} is not found in clone_valid_donor_list: {}", req.host, req.port, list.as_deref().unwrap_or(""));
        return Err(Error::with_str(message::ER_CLONE_SYS_CONFIG, msg));
    }
    let dry_run = sysvars::dry_run(thd);
    let source = format!("{}:{}", req.host, req.port);
    let dest = req.data_dir.map(|d| d.to_string_lossy().into_owned());
    // A dry run leaves clone_status to the last real clone.
    if !dry_run && TRACKER.begin(thd.thread_id(), &source, dest.as_deref()) == Err(Busy) {
        return Err(Error::with_int(message::ER_CLONE_TOO_MANY_CONCURRENT_CLONES, 1));
    }
    let settings = sysvars::settings();
    let recipient = Recipient::new(thd, req, settings, dry_run);
    let result = recipient.execute();
    // A finished in-place clone stays "In Progress" until the restart, when
    // the storage engine's recovery report completes it (as stock does).
    let restarts = result.is_ok() && req.data_dir.is_none();
    if !dry_run {
        if restarts {
            TRACKER.await_restart();
        } else {
            let (code, message) = thd.error();
            TRACKER.end(code, &message);
        }
    }
    result
}

/// The donor's description of itself, from the INIT response.
#[derive(Default)]
struct DonorInfo {
    version: Version,
    plugins: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    collations: Vec<Vec<u8>>,
    configs: Vec<(Vec<u8>, Vec<u8>)>,
    json: Option<String>,
    locators: Vec<(u8, Vec<u8>)>,
    /// clone_donor_timeout_after_network_failure of the donor, in minutes.
    reconnect_minutes: Option<u32>,
}

struct Recipient<'r> {
    thd: Thd,
    address: DonorAddress,
    data_dir: Option<&'r CStr>,
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

/// The donor's COM_RES_ERROR as ER_CLONE_DONOR "<errno> : <message>" (the
/// server parses that shape for its own log line).
fn donor_error(code: i32, message: &[u8]) -> Error {
    let text = String::from_utf8_lossy(message);
    Error::with_str(message::ER_CLONE_DONOR, format!("{code} : {text}"))
}

/// For a call the code makes only once what it needs is in place.
fn missing(what: &str) -> Error {
    Error::internal(format_args!("no {what}"))
}

/// Sends a command. `active` makes the connection the session's clone
/// socket (KILL wakes it); the auxiliary connection is never active.
fn send(conn: &mut Connection, thd: Thd, active: bool, command: &Command<'_>) -> Result<(), Error> {
    let packet = command.encode();
    conn.send(Some(thd), active, packet[0], &packet[1..])
}

/// Sends COM_EXIT and waits for the donor's answer.
fn exit(conn: &mut Connection, thd: Thd, active: bool) -> Result<(), Error> {
    send(conn, thd, active, &Command::Exit)?;
    let (packet, _) = conn.receive(Some(thd), active, 0)?;
    match Response::decode(packet) {
        Ok(Response::Complete) => Ok(()),
        Ok(Response::Error { code, message }) => Err(donor_error(code, message)),
        _ => Err(Error::protocol("Wrong Clone RPC response to COM_EXIT")),
    }
}

impl<'r> Recipient<'r> {
    fn new(thd: Thd, req: &Request<'r>, settings: Settings, dry_run: bool) -> Recipient<'r> {
        let (key, cert, ca) = sysvars::ssl_files();
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
        let offer = if settings.enable_compression { Caps::ZSTD.union(Caps::CHECKSUM) } else { Caps::CHECKSUM };
        Recipient {
            thd,
            address,
            data_dir: req.data_dir,
            settings,
            dry_run,
            offer,
            team: Team::new(config),
            engines: Vec::new(),
            donor_locators: Vec::new(),
            apply: Vec::new(),
            version: Version::stock(protocol::VERSION_CURRENT),
            reconnect_minutes: DEFAULT_RECONNECT_MINUTES,
            ack_link: Mutex::new(None),
            interrupter: Arc::default(),
            innodb_guard: Mutex::new(DescriptorGuard::new(clone_places(thd, req.data_dir))),
            refusal: Mutex::new(None),
            lost_write: Mutex::new(None),
            zeros: super::zero_runs(thd),
            notes: Mutex::default(),
        }
    }

    fn in_place(&self) -> bool {
        self.data_dir.is_none()
    }

    fn ddl_word(&self) -> u32 {
        protocol::ddl_word(self.settings.block_ddl, self.settings.ddl_timeout)
    }

    /// INIT with `version`, and the donor's answer.
    fn init(&self, main: &mut Connection, version: Version, locators: &[protocol::Locator<'_>]) -> Result<DonorInfo, Error> {
        let init = Command::Init(InitPayload { version: version.encode(), ddl_word: self.ddl_word(), locators: locators.to_vec() });
        send(main, self.thd, true, &init).and_then(|()| self.read_init_response(main))
    }

    /// The donor did not grant zstd: it is stock (or ours without it). The
    /// recipient leaves that clone and starts over as the stock recipient
    /// does, on a connection with the server's compression and with a
    /// stock INIT.
    fn init_compressed(&self, main: &mut Connection, locators: &[protocol::Locator<'_>]) -> Result<DonorInfo, Error> {
        log::info!("The donor does not compress with zstd: connecting again with the server's compression");
        exit(main, self.thd, true)?;
        let fresh = Connection::open(Some(self.thd), &self.address)?;
        // Replaced as the session's clone socket: closed without the session.
        std::mem::replace(main, fresh).close(None, false, false);
        let ack = self.open_watched(&self.address)?;
        if let Some(mut old) = self.ack_link.lock().replace(ack) {
            let left = exit(&mut old, self.thd, false).is_ok();
            old.close(None, !left, false);
        }
        self.init(main, Version::stock(protocol::VERSION_CURRENT), locators)
    }

    /// Runs the clone while a watcher shuts its connections down as soon as
    /// the statement is killed: the server wakes only the main connection.
    /// Its error is in the diagnostics area when it returns.
    fn execute(mut self) -> Result<(), Error> {
        let thd = self.thd;
        let interrupter = Arc::clone(&self.interrupter);
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
            let result = self.run();
            drop(done);
            // After the connections are closed: closing one clears the
            // statement's diagnostics.
            for note in self.notes.lock().drain(..) {
                thd.note(&note);
            }
            result
        })
    }

    fn run(&mut self) -> Result<(), Error> {
        let mut main = None;
        let mut locked = false;
        let result = self.clone_data(&mut main, &mut locked);
        self.leave(result, main, locked)
    }

    /// Connects, checks, and clones until done or failed.
    fn clone_data(&mut self, main: &mut Option<Connection>, locked: &mut bool) -> Result<(), Error> {
        *main = Some(self.connect()?);
        let mut result = self.introduce(main);
        // In place the apply drops this server's data first: how much the
        // clone will write is known, and checked, before that.
        if result.is_ok() && (self.in_place() || self.dry_run) {
            result = self.look(main).and_then(|()| if self.dry_run { self.conclude_dry_run() } else { self.introduce(main) });
            if self.dry_run {
                return result;
            }
        }
        result?;
        self.begin_apply(locked)?;
        let mut attempt = 1;
        loop {
            let Err(e) = self.transfer(main) else { return Ok(()) };
            // Never resume past a write that failed on any task: its error
            // is the clone's.
            if let Some(lost) = &*self.lost_write.lock() {
                return Err(lost.error());
            }
            // Never resume with a donor that sent what the guard refused.
            if !is_restartable(e.code()) || attempt >= MAX_ATTEMPTS || self.refusal.lock().is_some() {
                return Err(e);
            }
            // A KILL can reach the stream first as a network error (the
            // server shuts the session's clone socket): it ends the clone,
            // and `leave` then ends the donor's side, which would otherwise
            // wait for a reconnection.
            if self.thd.killed() {
                return Err(Error::new(message::ER_QUERY_INTERRUPTED));
            }
            attempt += 1;
            log::info!("Source Network issue: error: {}", e.code());
            self.resume(main)?;
        }
    }

    /// Leaves the donor and ends what the clone began here; raises the
    /// clone's error, before the engines end: the first error raised is
    /// the statement's.
    fn leave(&mut self, mut result: Result<(), Error>, mut main: Option<Connection>, locked: bool) -> Result<(), Error> {
        let thd = self.thd;
        let mut err = result.as_ref().err().map_or(0, Error::code);
        // Leave the donor: the auxiliary connection first.
        if let Some(mut ack) = self.ack_link.lock().take() {
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
            if let Some(refusal) = self.refusal.lock().take() {
                let e = refusal_error(refusal);
                err = e.code();
                result = Err(e);
            }
        }
        // An error still to raise replaces what leaving the donor raised.
        let to_raise = result.as_ref().is_err_and(|e| !e.is_raised());
        if let Some(mut m) = main.take() {
            let fatal = breaks_connection(err) || exit(&mut m, thd, true).is_err();
            m.close(Some(thd), fatal, err == 0 || to_raise);
        }
        let result = result.map_err(Error::raise);
        // Whatever the apply side began (nothing if the checks failed).
        for handle in self.apply.drain(..) {
            let _ = handle.apply_end(thd, err);
        }
        // After an in-place clone the lock is kept until the server restarts.
        if locked && (err != 0 || !self.in_place()) {
            services::backup_unlock(thd);
        }
        result
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

    /// After KILL: the donor's session of the main connection is killed
    /// over a connection back in command mode (after COM_EXIT), so the
    /// donor ends the clone at once rather than wait for a reconnection.
    /// The auxiliary connection serves unless the watcher shut it down.
    fn kill_donor_session(&self, ack: Connection, left: bool, main: &Connection) {
        let mut link = ack;
        if !left {
            link.close(None, true, false);
            let Ok(mut fresh) = Connection::open(None, &self.address) else { return };
            if exit(&mut fresh, self.thd, false).is_err() {
                fresh.close(None, true, false);
                return;
            }
            link = fresh;
        }
        link.kill(main);
        link.close(None, false, false);
    }

    /// Opens the main and the auxiliary connection. Offering zstd, they go
    /// without the server's compression; a stock donor makes the recipient
    /// start over with it.
    fn connect(&self) -> Result<Connection, Error> {
        let thd = self.thd;
        let first = DonorAddress { compress: self.address.compress && !self.offer.contains(Caps::ZSTD), ..self.address.clone() };
        let main = Connection::open(Some(thd), &first)?;
        match self.open_watched(&first) {
            Ok(ack) => {
                *self.ack_link.lock() = Some(ack);
                Ok(main)
            }
            Err(e) => {
                main.close(Some(thd), true, false);
                Err(e)
            }
        }
    }

    /// Connects if `main` is not open, and INIT: version negotiation, the
    /// donor's description, and the checks.
    fn introduce(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let conn = match main {
            Some(conn) => conn,
            None => main.insert(self.connect()?),
        };
        let thd = self.thd;
        self.engines = storage::apply_engines(thd);
        let mut version_locators = Vec::new();
        for &engine in &self.engines {
            match engine.apply_begin(thd, None, Mode::Version, self.data_dir) {
                Ok(v) => version_locators.push(v),
                Err(e) => {
                    for handle in version_locators {
                        let _ = handle.apply_end(thd, e.code());
                    }
                    return Err(e);
                }
            }
        }
        let locators: Vec<_> = version_locators.iter().map(|h| protocol::Locator { db_type: h.engine().db_type(), bytes: h.locator() }).collect();
        let wanted = self.offer;
        let mut info = self.init(conn, Version::ours(protocol::VERSION_CURRENT, wanted), &locators);
        if info.as_ref().is_ok_and(|i| !i.version.granted().contains(wanted)) && self.address.compress {
            info = self.init_compressed(conn, &locators);
        }
        for handle in version_locators {
            let _ = handle.apply_end(thd, 0);
        }
        let mut info = info?;
        self.version = info.version;
        let peer = match info.version.ours {
            Some(granted) => {
                if granted.contains(Caps::ZSTD) {
                    // zstd replaces the server's compression on every connection to come.
                    self.address.compress = false;
                }
                format!("The donor is this plugin; agreed: {granted}")
            }
            None => format!("The donor speaks the stock protocol {:#06x}", info.version.stock),
        };
        log::info!("{peer}");
        // Connections to come ask for what this donor grants.
        self.offer = info.version.granted();
        self.tell(&format!("Connected to {}:{} and authenticated. {peer}", self.address.host.to_string_lossy(), self.address.port));
        self.reconnect_minutes = info.reconnect_minutes.unwrap_or(DEFAULT_RECONNECT_MINUTES).min(MAX_RECONNECT_MINUTES);
        self.validate(&info)?;
        self.tell("The donor's version, platform, plugins, character sets and collations, configuration and max_allowed_packet suit this server");
        self.donor_locators = std::mem::take(&mut info.locators);
        if self.donor_locators.len() != self.engines.len() {
            return Err(Error::protocol("Wrong Clone RPC response: locator count"));
        }
        Ok(())
    }

    /// The start of the apply side, which in place drops our data.
    fn begin_apply(&mut self, locked: &mut bool) -> Result<(), Error> {
        let thd = self.thd;
        if self.in_place() {
            services::backup_lock(thd, self.settings.ddl_timeout)?;
            *locked = true;
        }
        TRACKER.next_stage(0, 1);
        for (i, &engine) in self.engines.iter().enumerate() {
            let (db_type, bytes) = &self.donor_locators[i];
            if *db_type != engine.db_type() || bytes.is_empty() {
                self.end_apply(ER_CLONE_PROTOCOL);
                return Err(Error::protocol("Wrong Clone RPC response: locator"));
            }
            match engine.apply_begin(thd, Some(bytes), Mode::Start, self.data_dir) {
                Ok(v) => self.apply.push(v),
                Err(e) => {
                    self.end_apply(e.code());
                    return Err(e);
                }
            }
        }
        if self.in_place() {
            replace_doublewrite_files(thd);
            self.delay_after_drop()?;
        }
        Ok(())
    }

    /// Before anything is dropped or written: how much the donor's snapshot
    /// will write here, from the START of its file copy, and whether this
    /// server has room for it. The donor's clone that told us is stopped
    /// there, as the stock recipient stops a clone it cannot take (an
    /// acknowledgement with an error), and ended; the real clone starts
    /// anew with another INIT. That costs the donor one snapshot begun and
    /// ended, and the recipient one more connection pair.
    fn look(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let Some(mut conn) = main.take() else { return Err(missing("main connection")) };
        let estimate = self.read_estimate(&mut conn);
        self.end_look(conn, estimate.is_ok());
        let mut counted = String::new();
        let result = check_space(self.thd, self.data_dir, estimate?.disk_bytes, |text| {
            self.tell(text);
            counted = text.to_owned();
        });
        // A refusal says what was counted, dry run or not.
        if result.is_err() && !self.dry_run {
            self.notes.lock().push(counted);
        }
        result
    }

    /// EXECUTE, and the descriptors up to the START of the file copy.
    fn read_estimate(&self, conn: &mut Connection) -> Result<CopyEstimate, Error> {
        send(conn, self.thd, true, &Command::Execute)?;
        for _ in 0..LOOK_MESSAGES {
            let (packet, _) = conn.receive(Some(self.thd), true, 0)?;
            if is_stream_message(packet) && packet[0] != protocol::response::DATA_DESC {
                continue;
            }
            match Response::decode(packet) {
                Ok(Response::DataDesc { db_type, loc_index, descriptor })
                    if self.engines.get(loc_index as usize).is_some_and(|e| e.is_innodb() && e.db_type() == db_type) =>
                {
                    if let Some(estimate) = innodb::file_copy_estimate(descriptor) {
                        return Ok(estimate);
                    }
                    if let Some(ack) = innodb::init_acknowledgement(descriptor) {
                        self.acknowledge_for_donor(loc_index as usize, 0, &ack)?;
                    }
                }
                Ok(Response::DataDesc { .. }) => {}
                Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
                _ => return Err(Error::protocol("Wrong Clone RPC response, expecting descriptor")),
            }
        }
        Err(Error::protocol("Wrong Clone RPC: no estimate at the start of the file copy"))
    }

    /// Stops the donor's stream (if it runs) and leaves the donor once its
    /// clone has ended: a COM_PING answered on the main connection means
    /// the donor's session is back from the clone, which it ends first.
    fn end_look(&self, mut conn: Connection, streaming: bool) {
        let thd = self.thd;
        let stopped = !streaming || (self.acknowledge_for_donor(self.innodb_index(), ER_QUERY_INTERRUPTED, &[]).is_ok() && drain_stream(&mut conn, thd));
        if let Some(mut ack) = self.ack_link.lock().take() {
            let left = exit(&mut ack, thd, false).is_ok();
            ack.close(None, !left, false);
        }
        // The stock donor has left the clone after its error (an EXIT gets
        // "unknown command"); this donor leaves it on EXIT.
        let ended = stopped
            && send(&mut conn, thd, true, &Command::Exit).is_ok()
            && conn.receive(Some(thd), true, 0).is_ok()
            && conn.send(Some(thd), true, COM_PING, &[]).is_ok()
            && conn.receive(Some(thd), true, 0).is_ok();
        // What the donor answered is not this statement's error.
        conn.close(Some(thd), !ended, true);
    }

    /// Every check passed. In place the server restarts after any CLONE
    /// that returns success (sql_admin.cc), so there a dry run ends with an
    /// error that says so; into a new directory it returns OK.
    fn conclude_dry_run(&self) -> Result<(), Error> {
        if self.in_place() {
            if !session::server_is_supervised() {
                // What the real clone ends with, after it has replaced the data.
                self.tell("No supervisor restarts this server: the clone would replace its data, then shut it down");
                return Err(Error::with_str(message::ER_RESTART_SERVER_FAILED, "mysqld is not managed by supervisor process"));
            }
            self.tell("A supervisor restarts this server after the clone");
            return Err(Error::with_str(
                message::ER_CLONE_DISALLOWED,
                "clone_dry_run is ON: every check passed and nothing was changed; the clone in place would start",
            ));
        }
        self.tell("Every check passed and nothing was written: the clone would start");
        Ok(())
    }

    /// In a dry run, what was checked: a note for the statement and a line
    /// in the error log.
    fn tell(&self, text: &str) {
        if self.dry_run {
            log::info!("Clone dry run: {text}");
            self.notes.lock().push(text.to_owned());
        }
    }

    /// Ends the apply side of the engines begun so far.
    fn end_apply(&mut self, err: i32) {
        for handle in self.apply.drain(..) {
            let _ = handle.apply_end(self.thd, err);
        }
    }

    /// After a network failure: drops this attempt's connections, connects
    /// again within the donor's network-failure timeout, and resumes the
    /// clone with COM_REINIT; the engines restart from what was acknowledged.
    fn resume(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let thd = self.thd;
        if let Some(ack) = self.ack_link.lock().take() {
            ack.close(None, true, false);
        }
        // The broken main connection stays registered as the session's
        // clone socket until a new one replaces it; closing it with the
        // session clears the session's errors, so that a KILL, whenever it
        // comes, is what the statement reports.
        let mut broken = main.take();
        let give_up = |broken: &mut Option<Connection>, kill: bool| {
            if let Some(b) = broken.take() {
                b.close(Some(thd), true, kill);
            }
            if kill {
                Error::new(message::ER_QUERY_INTERRUPTED)
            } else {
                log::info!("Source break restart loop");
                match thd.error().0 {
                    0 => Error::unknown(ER_NET_READ_ERROR),
                    code => Error::raised(code as i32),
                }
            }
        };
        // The workers of the failed attempt are gone; new ones may start.
        self.team.threads.store(1, Relaxed);
        log::info!("Source re-connect for at most {} minutes", self.reconnect_minutes);
        let deadline = Instant::now() + Duration::from_secs(self.reconnect_minutes as u64 * 60);
        let mut tries = 0u32;
        let (new_main, new_ack) = loop {
            let started = Instant::now();
            if thd.killed() {
                return Err(give_up(&mut broken, true));
            }
            if self.reconnect_minutes == 0 || started > deadline {
                return Err(give_up(&mut broken, false));
            }
            tries += 1;
            match Connection::open(Some(thd), &self.address) {
                Ok(mut m) => match self.open_watched(&self.address) {
                    Ok(a) => break (m, a),
                    Err(_) => {
                        let _ = exit(&mut m, thd, true);
                        m.close(Some(thd), true, false);
                    }
                },
                Err(_) => log::info!("Source re-connect failed: count: {tries}"),
            }
            while started.elapsed() < RECONNECT_INTERVAL && !thd.killed() {
                std::thread::sleep(KILL_POLL);
            }
        };
        // Replaced as the session's clone socket: closed without the session.
        if let Some(b) = broken.take() {
            b.close(None, true, false);
        }
        *self.ack_link.lock() = Some(new_ack);
        let mut m = new_main;
        // The engines re-issue their locators for the restart.
        let mut restarted = Vec::new();
        for handle in &self.apply {
            restarted.push(handle.engine().apply_begin(thd, Some(handle.locator()), Mode::Restart, self.data_dir)?);
        }
        self.apply = restarted;
        let locators = self.apply.iter().map(|h| protocol::Locator { db_type: h.engine().db_type(), bytes: h.locator() }).collect();
        let reinit = Command::Reinit(InitPayload { version: self.version.encode(), ddl_word: self.ddl_word(), locators });
        let sent = send(&mut m, thd, true, &reinit).and_then(|()| read_locators(&mut m, thd));
        *main = Some(m);
        sent.map(|_| ())
    }

    fn read_init_response(&self, main: &mut Connection) -> Result<DonorInfo, Error> {
        let thd = self.thd;
        let timeout = self.settings.ddl_timeout.saturating_add(INIT_EXTRA_TIMEOUT_S);
        let mut info = DonorInfo::default();
        let mut have_locators = false;
        let (mut messages, mut bytes) = (0usize, 0usize);
        loop {
            let (packet, _) = main.receive(Some(thd), true, timeout)?;
            messages += 1;
            bytes += packet.len();
            if messages > MAX_INIT_MESSAGES || bytes > MAX_INIT_BYTES {
                return Err(Error::protocol("Wrong Clone RPC response to COM_INIT: too long"));
            }
            match Response::decode(packet) {
                Ok(Response::PluginV2 { name, soname }) => info.plugins.push((name.to_vec(), Some(soname.to_vec()))),
                Ok(Response::Plugin { name }) => info.plugins.push((name.to_vec(), None)),
                Ok(Response::Collation { name }) => info.collations.push(name.to_vec()),
                Ok(Response::Config { key, value }) => info.configs.push((key.to_vec(), value.to_vec())),
                Ok(Response::ConfigV3 { key, value }) => {
                    if key == b"clone_donor_timeout_after_network_failure" {
                        info.reconnect_minutes = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse().ok());
                    } else {
                        info.configs.push((key.to_vec(), value.to_vec()));
                    }
                }
                Ok(Response::ConfigV4 { value, .. }) => info.json = Some(String::from_utf8_lossy(value).into_owned()),
                Ok(Response::Locators { version, locators }) => {
                    info.version = Version::decode(version);
                    info.locators = locators.iter().map(|l| (l.db_type, l.bytes.to_vec())).collect();
                    have_locators = true;
                }
                Ok(Response::Complete) if have_locators => return Ok(info),
                Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
                _ => return Err(Error::protocol("Wrong Clone RPC response to COM_INIT")),
            }
        }
    }

    /// The stock checks, in the stock order; each failing one raises its
    /// error at once (the statement shows them all), and the first one
    /// fails the clone.
    fn validate(&self, info: &DonorInfo) -> Result<(), Error> {
        let thd = self.thd;
        if info.version.stock < protocol::VERSION_V3 {
            // Older donors send neither maturity nor all configuration.
            return Err(Error::protocol("Donor protocol version is too old"));
        }
        let mut first = 0;
        let mut note = |checked: Result<(), Error>| {
            if let Err(e) = checked {
                let code = e.raise().code();
                if first == 0 {
                    first = code;
                }
            }
        };
        let plugin_dir = clone_protocol::config(thd, "plugin_dir").unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let excluded = sysvars::excluded_plugins();
        // One check (and one dlopen) per plugin, however often it is named.
        for (name, soname) in info.plugins.iter().filter(|(name, _)| seen.insert(name)) {
            let text = String::from_utf8_lossy(name);
            if checks::is_excluded(&excluded, &text) {
                if !clone_protocol::plugin_installed(thd, name) {
                    log::info!("The donor's plugin {text} is not checked: clone_exclude_plugins_list names it");
                    self.tell(&format!("The donor's plugin {text} is not active here and not needed: clone_exclude_plugins_list names it"));
                }
                continue;
            }
            if !plugin_is_available(thd, name, soname.as_deref(), &plugin_dir) {
                note(Err(Error::with_str(message::ER_CLONE_PLUGIN_MATCH, text)));
            }
        }
        note(clone_protocol::validate_collations(thd, &info.collations));
        note(clone_protocol::validate_configs(thd, &info.configs));
        let own_version = clone_protocol::config(thd, "version").unwrap_or_default();
        let recipient_lts = info.version.stock >= protocol::VERSION_V4 && crate::server::MYSQL_VERSION_MATURITY == "LTS";
        let (donor_version, donor_lts) = match &info.json {
            Some(json) => {
                (protocol::json_string_field(json, "version").unwrap_or_default(), protocol::json_string_field(json, "maturity").as_deref() == Some("LTS"))
            }
            None => {
                let v = info.configs.iter().find(|(k, _)| k == b"version").map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                (v.unwrap_or_default(), false)
            }
        };
        note(clone_protocol::validate_version(&own_version, &donor_version, recipient_lts, donor_lts));
        note(check_packet_size(thd));
        if first == 0 {
            Ok(())
        } else {
            Err(Error::raised(first))
        }
    }

    /// clone_delay_after_data_drop: some filesystems release the space of
    /// removed files late. KILL is checked every 100 ms.
    fn delay_after_drop(&self) -> Result<(), Error> {
        let seconds = self.settings.delay_after_data_drop;
        if seconds == 0 {
            return Ok(());
        }
        log::info!("Begin Delay after data drop");
        for step in 0..seconds as u64 * 10 {
            self.thd.interrupted(true)?;
            if step % 600 == 0 && step > 0 {
                log::info!("Wait time remaining is {} minutes.", (seconds as u64 * 10 - step) / 600);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        log::info!("End Delay after data drop");
        Ok(())
    }

    /// Streams the data with the master and its workers.
    fn transfer(&self, main: &mut Option<Connection>) -> Result<(), Error> {
        let Some(conn) = main.take() else { return Err(missing("main connection")) };
        let (result, conn) = std::thread::scope(|scope| {
            let config = self.team.config;
            // zstd makes each stream CPU-bound on the donor: with it, the
            // clone starts with a stream per core here (auto-tuning goes on
            // from there), not with one. Without it one stream keeps the
            // donor's disk busy, as its sends go behind its reads.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let start = if !config.autotune {
                config.max_threads
            } else if self.version.granted().contains(Caps::ZSTD) {
                cores
            } else {
                1
            };
            if start > 1 {
                self.team.spawn_workers(scope, config.allowed_threads(start), "clone_client", |i| self.worker(i));
            }
            let task = Task::new(self, 0, self.thd, conn, self.apply.iter().map(|h| (h, h.task())).collect(), Some(scope));
            let result = task.stream();
            task.meter.flush();
            if let Err(e) = &result {
                for handle in &self.apply {
                    handle.apply_error(self.thd, handle.task(), e.code());
                }
            }
            (result, task.conn.into_inner())
        });
        *main = Some(conn);
        result
    }

    /// A worker: its own connection, ATTACH, its share of the stream.
    fn worker(&self, index: usize) {
        guard((), || {
            let Some(session) = WorkerSession::start(Worker::Client) else { return };
            let thd = session.thd();
            let Ok(mut conn) = Connection::open(Some(thd), &self.address) else {
                log::info!("Task Connect failed");
                return;
            };
            conn.watch(&self.interrupter);
            let locators = self.apply.iter().map(|h| protocol::Locator { db_type: h.engine().db_type(), bytes: h.locator() }).collect();
            let attach = Command::Attach(InitPayload { version: self.version.encode(), ddl_word: self.ddl_word(), locators });
            // Errors are raised on the worker's own session, as the engines' are.
            let donor_locators = send(&mut conn, thd, true, &attach).and_then(|()| read_locators(&mut conn, thd)).map_err(Error::raise);
            let mut apply = Vec::new();
            // Kept until the worker ends, with the locator bytes they were opened with.
            let mut joined = Vec::new();
            // The engine joins the running clone through the donor's locator;
            // applying then goes through the master's apply handle (what the
            // engine returns here names the donor's clone, not ours).
            let mut result = donor_locators.map_err(|e| Error::quiet(e.code())).and_then(|locs| {
                for ((engine, (_, bytes)), master) in self.engines.iter().zip(&locs).zip(&self.apply) {
                    let handle = engine.apply_begin(thd, Some(bytes), Mode::AddTask, self.data_dir)?;
                    apply.push((master, handle.task()));
                    joined.push(handle);
                }
                Ok(())
            });
            let mut conn = Some(conn);
            let mut streamed = false;
            if result.is_ok() && apply.len() == self.engines.len() {
                if let Some(c) = conn.take() {
                    let task = Task::new(self, index, thd, c, apply.clone(), None);
                    result = task.stream();
                    streamed = true;
                    conn = Some(task.conn.into_inner());
                }
            }
            let err = result.err().map_or(0, |e| e.raise().code());
            if let Some(mut c) = conn {
                // A worker that could not join (the clone failed meanwhile)
                // leaves with EXIT: a dropped connection would reach the
                // donor as a network failure, which it holds the clone for.
                let fatal = (streamed && breaks_connection(err)) || exit(&mut c, thd, true).is_err();
                c.close(Some(thd), fatal, true);
            }
            for (master, task) in apply {
                if err != 0 {
                    master.apply_error(thd, task, err);
                }
                let _ = master.apply_end_task(thd, task, err);
            }
            drop(joined);
        })
    }

    /// COM_ACK over the auxiliary connection, for the engine at `index`: a
    /// state the apply side finished (`error` 0), or a local error.
    fn acknowledge(&self, index: usize, error: i32, descriptor: &[u8]) -> Result<(), Error> {
        let Some(handle) = self.apply.get(index) else {
            return Err(missing("storage engine at that index"));
        };
        self.send_ack(&Command::Ack { error, locator: protocol::Locator { db_type: handle.engine().db_type(), bytes: handle.locator() }, descriptor })
    }

    /// Where InnoDB is among the engines (and the donor's locators).
    fn innodb_index(&self) -> usize {
        self.engines.iter().position(|e| e.is_innodb()).unwrap_or(0)
    }

    /// COM_ACK of a state before the apply side has begun (a look at the
    /// snapshot): it names the donor's own locator.
    fn acknowledge_for_donor(&self, index: usize, error: i32, descriptor: &[u8]) -> Result<(), Error> {
        let Some((db_type, loc)) = self.donor_locators.get(index) else { return Err(missing("donor locator at that index")) };
        self.send_ack(&Command::Ack { error, locator: protocol::Locator { db_type: *db_type, bytes: loc }, descriptor })
    }

    fn send_ack(&self, ack: &Command<'_>) -> Result<(), Error> {
        let mut link = self.ack_link.lock();
        let Some(conn) = link.as_mut() else { return Err(missing("auxiliary connection")) };
        send(conn, self.thd, false, ack)?;
        let (packet, _) = conn.receive(Some(self.thd), false, 0)?;
        match Response::decode(packet) {
            Ok(Response::Complete) => Ok(()),
            Ok(Response::Error { code, message }) => Err(donor_error(code, message)),
            _ => Err(Error::protocol("Wrong Clone RPC response to COM_ACK")),
        }
    }
}

/// Reads what the donor still streams on `conn` until its answer that ends
/// the stream, for at most DRAIN_LIMIT; true when that answer came.
fn drain_stream(conn: &mut Connection, thd: Thd) -> bool {
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

/// A message of a data stream: a descriptor or a data block, of any kind.
fn is_stream_message(packet: &[u8]) -> bool {
    use protocol::response::{DATA, DATA_CHECKED, DATA_DESC, DATA_ZSTD};
    matches!(packet.first(), Some(&(DATA_DESC | DATA | DATA_ZSTD | DATA_CHECKED)))
}

/// The answer to ATTACH: the donor's locators, then COMPLETE.
fn read_locators(conn: &mut Connection, thd: Thd) -> Result<Vec<(u8, Vec<u8>)>, Error> {
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

/// Whether the donor's plugin can run here: installed, built in on the
/// donor, or a library in our plugin directory that loads.
fn plugin_is_available(thd: Thd, name: &[u8], soname: Option<&[u8]>, plugin_dir: &str) -> bool {
    if clone_protocol::plugin_installed(thd, name) {
        return true;
    }
    let Some(so) = soname else { return false };
    if so.is_empty() {
        return true;
    }
    // A name with a directory in it could load anything.
    if so.contains(&b'/') {
        return false;
    }
    clone_protocol::library_loads(&Path::new(plugin_dir).join(String::from_utf8_lossy(so).as_ref()))
}

/// In place, once InnoDB has begun (its rollback on failure then covers
/// them): this server's doublewrite files are replaced with zeroes at the
/// restart (see [`doublewrite`]). A failure here does not fail a clone whose
/// data is already dropped; the error log says what remains.
fn replace_doublewrite_files(thd: Thd) {
    let setting = clone_protocol::config(thd, "innodb_doublewrite_dir").unwrap_or_default();
    let files = doublewrite::files_in(&doublewrite::directory(&setting));
    match files.and_then(|files| doublewrite::replace_with_zeroes(Path::new("."), &files).map(|()| files)) {
        Ok(files) => {
            let names: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
            log::info!("Doublewrite files to replace at the restart: {}", names.join(", "));
        }
        Err(e) => log::error!(
            "Cannot set the doublewrite files up for replacement ({e}): the restart keeps them, and a crash before InnoDB overwrites them may damage the clone"
        ),
    }
}

/// Where a donor's file names may put files: see [`Places`].
fn clone_places(thd: Thd, data_dir: Option<&CStr>) -> Places {
    let keys = ["datadir", "innodb_directories", "innodb_data_home_dir", "innodb_undo_directory"];
    let values = clone_protocol::configs(thd, &keys).unwrap_or_default();
    let value = |i: usize| values.get(i).map(String::as_str).unwrap_or_default();
    let target = data_dir.map(|d| Path::new(OsStr::from_bytes(d.to_bytes())));
    Places::new(Path::new(value(0)), target, value(1), &[value(0), value(2), value(3)], |p| std::fs::canonicalize(p).ok())
}

/// The error for an InnoDB descriptor the guard refused.
fn refusal_error(refusal: Refusal) -> Error {
    match refusal {
        Refusal::Protocol(what) => Error::protocol(what),
        Refusal::FilePath(name) => Error::with_strs(message::ER_WRONG_VALUE, "file path", name),
    }
}

/// A write that failed behind a stream: its file and OS error, kept for
/// the statement's error when another task saw only a network error.
struct LostWrite {
    name: String,
    errno: Option<i32>,
    kind: std::io::ErrorKind,
}

impl LostWrite {
    fn of(f: &copy::WriteFailure) -> LostWrite {
        LostWrite { name: f.name.clone(), errno: f.error.raw_os_error(), kind: f.error.kind() }
    }

    fn error(&self) -> Error {
        let os = self.errno.map_or_else(|| std::io::Error::from(self.kind), std::io::Error::from_raw_os_error);
        Error::with_file(message::ER_ERROR_ON_WRITE, self.name.clone(), os)
    }
}

/// ER_ERROR_ON_WRITE for a failed write of file `name` (or of the file a
/// write behind names).
fn write_error(e: CopyError, name: impl FnOnce() -> String) -> Error {
    match e {
        CopyError::WriteBehind(f) => Error::with_file(message::ER_ERROR_ON_WRITE, f.name, f.error),
        CopyError::Write(err) | CopyError::Read(err) => Error::with_file(message::ER_ERROR_ON_WRITE, name(), err),
        CopyError::OutOfMemory(len) => Error::with_int(message::ER_OUTOFMEMORY, len as i64),
    }
}

/// One thread's stream: descriptors and data read from its connection and
/// applied through the storage engines.
struct Task<'r, 's, 'e> {
    clone: &'r Recipient<'r>,
    thd: Thd,
    conn: RefCell<Connection>,
    /// Per engine: the master's apply handle, and this thread's task.
    apply: Vec<(&'r Handle, u32)>,
    meter: Meter<'r>,
    scope: Option<&'s Scope<'s, 'e>>,
    /// Staging for O_DIRECT writes and zstd blocks, and the blocks the
    /// engine writes itself.
    lend: Lend,
    /// This connection's place in InnoDB's snapshot, for the guard.
    view: RefCell<TaskView>,
    /// The length and file offset the last data descriptor announced for
    /// its block.
    announced: Cell<Option<(u32, u64)>>,
    /// Checksums granted: blocks sent as they are come as DATA_CHECKED.
    checksums: bool,
    /// With zstd granted: expands DATA_ZSTD blocks.
    zstd: Option<RefCell<BlockDecompressor>>,
    /// Writes file data while the next block arrives (None: the thread
    /// could not start, and writes are done in place).
    writer: Option<WriteBehind>,
}

/// A data block as it arrived, in the connection's buffer: as it is, or
/// a zstd frame and the length it expands to.
enum Block<'a> {
    Wire(&'a [u8]),
    Zstd(&'a [u8], usize),
}

impl<'r: 's, 's, 'e> Task<'r, 's, 'e> {
    fn new(clone: &'r Recipient<'r>, index: usize, thd: Thd, conn: Connection, apply: Vec<(&'r Handle, u32)>, scope: Option<&'s Scope<'s, 'e>>) -> Self {
        let view = if index == 0 { TaskView::master() } else { TaskView::worker() };
        Task {
            clone,
            thd,
            conn: RefCell::new(conn),
            apply,
            meter: Meter::new(&clone.team, index),
            scope,
            lend: Lend::default(),
            view: RefCell::new(view),
            announced: Cell::new(None),
            checksums: clone.version.granted().contains(Caps::CHECKSUM),
            zstd: clone.version.granted().contains(Caps::ZSTD).then(|| BlockDecompressor::new().ok().map(RefCell::new)).flatten(),
            writer: WriteBehind::new(clone.zeros).map_err(|e| log::info!("Writing clone data in place: no writer thread ({e})")).ok(),
        }
    }

    fn check_killed(&self) -> Result<(), Error> {
        self.thd.interrupted(self.meter.is_master())
    }

    /// EXECUTE, then apply every descriptor until the donor's COMPLETE.
    /// However the stream ends, the writes queued on it end first: InnoDB
    /// counts a block done once it is handed over, so a write that failed
    /// behind the stream fails the clone, with its own error, whatever
    /// else went wrong (a network error would otherwise resume past it).
    fn stream(&self) -> Result<(), Error> {
        let streamed = self.stream_descriptors();
        self.settle()?;
        streamed
    }

    fn stream_descriptors(&self) -> Result<(), Error> {
        send(&mut self.conn.borrow_mut(), self.thd, true, &Command::Execute)?;
        let cbk = Callback::new(self)?;
        loop {
            self.check_killed()?;
            let (index, descriptor) = {
                let mut conn = self.conn.borrow_mut();
                let (packet, wire) = conn.receive(Some(self.thd), true, 0)?;
                self.meter.account(0, wire as u64);
                match Response::decode(packet) {
                    Ok(Response::DataDesc { db_type, loc_index, descriptor }) => {
                        let index = loc_index as usize;
                        match self.clone.engines.get(index) {
                            Some(e) if e.db_type() == db_type && !descriptor.is_empty() => (index, descriptor.to_vec()),
                            Some(_) => return Err(Error::protocol("Remote descriptor handlerton type mismatch")),
                            None => return Err(Error::protocol("Remote descriptor index out of range")),
                        }
                    }
                    Ok(Response::Complete) => return Ok(()),
                    Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
                    _ => return Err(Error::protocol("Wrong Clone RPC response, expecting descriptor")),
                }
            };
            let engine = self.clone.engines[index];
            let (handle, task) = self.apply[index];
            let c = cbk.cbk();
            // The engine sets the flags that apply to this chunk only.
            c.clear_flags();
            c.set_loc_index(index as u32);
            c.set_data_desc(&descriptor);
            let checked = if engine.is_innodb() {
                self.clone.innodb_guard.lock().check(&mut self.view.borrow_mut(), &descriptor).map_err(|r| self.clone.refuse(r))
            } else {
                Ok(Checked::Pass)
            };
            let applied = checked.and_then(|checked| {
                self.announced.set(match checked {
                    Checked::Data { len, offset } => Some((len, offset)),
                    // A file or state change: the engine may extend, sync,
                    // rename or delete files, after the writes before it.
                    Checked::Pass => {
                        self.settle()?;
                        None
                    }
                });
                handle.apply(self.thd, task, c)
            });
            if let Err(e) = applied {
                // A write that failed behind this one is the clone's error.
                let e = self.settle().err().unwrap_or(e);
                self.end_stream_after(e.code(), index);
                return Err(e);
            }
        }
    }

    /// A local error while applying: as the stock recipient does, the master
    /// tells the donor (an acknowledgement carrying the error), and every
    /// task reads what the donor still sends until it ends its stream. Both
    /// ends can then exit cleanly; a connection dropped mid-stream would make
    /// the donor wait minutes for a restart that never comes.
    fn end_stream_after(&self, error: i32, index: usize) {
        if is_restartable(error) || error == ER_CLONE_DONOR {
            return;
        }
        if self.meter.is_master() {
            let _ = self.clone.acknowledge(index, error, &[]);
        }
        // Also after a refused descriptor: the framing is intact, and a
        // worker that hung up would reach the donor as a network failure
        // before the master's acknowledgement, and hold the donor's clone
        // for a reconnection. (A killed task's socket is shut: it stops at once.)
        drain_stream(&mut self.conn.borrow_mut(), self.thd);
    }

    /// Reads the data message that must follow a descriptor; calls
    /// `use_data` with its block while it is valid, and with what names
    /// the block's place (the file the engine writes it to, and the offset
    /// there) for an error. A block that fails its checksum (DATA_CHECKED,
    /// or a zstd frame's) fails the clone.
    fn with_data<T>(&self, cbk: Cbk<'_>, use_data: impl FnOnce(Block<'_>, &dyn Fn() -> String) -> Result<T, Error>) -> Result<T, Error> {
        self.check_killed()?;
        let mut conn = self.conn.borrow_mut();
        let (packet, wire) = conn.receive(Some(self.thd), true, 0)?;
        // InnoDB takes the block's length from the descriptor.
        let announced = self.announced.take();
        let differs = || Error::protocol("Wrong Clone RPC: data length differs from its descriptor");
        let place = || {
            let name = cbk.dest_name();
            let offset = announced.map_or(0, |(_, offset)| offset);
            format!("{} at offset {offset}", if name.is_empty() { "a data block" } else { &name })
        };
        let (block, len) = match (packet.split_first(), &self.zstd) {
            (Some((&protocol::response::DATA, data)), _) => (Block::Wire(data), data.len()),
            (Some((&protocol::response::DATA_CHECKED, body)), _) if self.checksums => {
                let (sent, data) = extension::decode_checked_body(body).map_err(|_| Error::protocol("Wrong Clone RPC: checked data"))?;
                if announced.is_some_and(|(a, _)| a as usize != data.len()) {
                    return Err(differs());
                }
                let received = extension::block_checksum(data);
                if received != sent {
                    log::error!("Data from the donor failed its checksum: {}", place());
                    let what = format!("Data of {} fails its checksum (CRC-32C {sent:#010x} sent, {received:#010x} received)", place());
                    return Err(Error::protocol(what));
                }
                (Block::Wire(data), data.len())
            }
            (Some((&protocol::response::DATA_ZSTD, body)), Some(_)) => {
                let (len, frame) = extension::decode_zstd_body(body).map_err(|_| Error::protocol("Wrong Clone RPC: compressed data"))?;
                if announced.is_some_and(|(a, _)| a as usize != len) || len > extension::MAX_BLOCK {
                    return Err(differs());
                }
                (Block::Zstd(frame, len), len)
            }
            _ => return Err(Error::protocol("Wrong Clone RPC response, expecting data packet COM_RES_DATA")),
        };
        if announced.is_some_and(|(a, _)| a as usize != len) {
            return Err(differs());
        }
        let result = use_data(block, &place)?;
        let grow = self.meter.account(len as u64, wire as u64);
        drop(conn);
        if let (Some(n), Some(scope)) = (grow, self.scope) {
            let clone = self.clone;
            clone.team.spawn_workers(scope, n, "clone_client", |i| clone.worker(i));
        }
        Ok(result)
    }

    /// Waits for the writes queued so far; a failed one fails the clone,
    /// and is kept so that no task of it resumes.
    fn settle(&self) -> Result<(), Error> {
        let Some(writer) = &self.writer else { return Ok(()) };
        writer.drain().map_err(|e| {
            if let CopyError::WriteBehind(f) = &e {
                self.clone.lost_write.lock().get_or_insert_with(|| LostWrite::of(f));
            }
            write_error(e, String::new)
        })
    }

    /// Expands a zstd `frame` into `out`, which is as long as the frame
    /// says it expands to.
    fn expand(&self, frame: &[u8], out: &mut [u8], place: &dyn Fn() -> String) -> Result<(), Error> {
        let expanded = match &self.zstd {
            Some(zstd) => zstd.borrow_mut().expand(frame, out),
            None => return Err(Error::protocol("Wrong Clone RPC: compressed data without zstd")),
        };
        expanded.map_err(|_| {
            log::error!("Data from the donor failed its checksum: {}", place());
            Error::protocol(format!("Compressed data of {} does not expand to its length or fails its checksum", place()))
        })
    }

    /// The apply side announced a state or asks to acknowledge one; the
    /// acknowledgement goes to the donor over the auxiliary connection.
    fn notice(&self, cbk: Cbk<'_>) -> Result<(), Error> {
        self.settle()?;
        if let Some(estimate) = cbk.flags().state_change {
            TRACKER.next_stage(estimate, self.clone.team.threads());
            return Ok(());
        }
        self.meter.state_end();
        self.check_killed()?;
        self.clone.acknowledge(cbk.loc_index() as usize, 0, cbk.data_desc())
    }
}

impl<'r: 's, 's, 'e> Handler for Task<'r, 's, 'e> {
    fn file(&self, _cbk: Cbk<'_>, _from: RawFd, _len: u32) -> Result<(), Error> {
        Err(Error::internal("the engine offered the recipient a file to send"))
    }

    fn buffer<'c>(&self, cbk: Cbk<'c>, _buf: EngineBuf<'c>) -> Result<(), Error> {
        self.notice(cbk)
    }

    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error> {
        // O_DIRECT files take aligned memory: the connection's buffer is not.
        let direct = !cbk.flags().os_buffer_cache;
        let write = |data: &[u8]| {
            let written = match &self.writer {
                Some(writer) => writer.write(to, data, || cbk.dest_name()),
                None => copy::write_all(to, data),
            };
            written.map_err(|e| write_error(e, || cbk.dest_name()))
        };
        self.with_data(cbk, |block, place| match block {
            Block::Wire(data) if direct && self.writer.is_none() => self.lend.scratch(data.len(), |staged| {
                staged.copy_from_slice(data);
                write(staged)
            }),
            Block::Wire(data) => write(data),
            Block::Zstd(frame, len) => self.lend.scratch(len, |staged| {
                self.expand(frame, staged, place)?;
                write(staged)
            }),
        })
    }

    fn apply_buffer(&self, cbk: Cbk<'_>) -> Result<&Lend, Error> {
        // The engine writes this block itself, after the queued ones.
        self.settle()?;
        self.with_data(cbk, |block, place| match block {
            Block::Wire(data) => self.lend.fill(data.len(), |out| {
                out.copy_from_slice(data);
                Ok(())
            }),
            Block::Zstd(frame, len) => self.lend.fill(len, |out| self.expand(frame, out, place)),
        })
    }
}
