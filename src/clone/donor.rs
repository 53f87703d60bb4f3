//! The donor: one instance per recipient connection, running on that
//! connection's session after COM_CLONE. It answers commands until COM_EXIT
//! or a network error: INIT/REINIT start (or resume) the clone in the
//! storage engines and describe this server, ATTACH adds a worker task,
//! EXECUTE streams this task's share of the data, ACK passes the recipient's
//! state acknowledgements to the engines.

use crate::server::clone_protocol::{self, DonorLink, Outgoing, SendBehind};
use crate::server::config;
use crate::server::errors::*;
use crate::server::files::{self as copy, ALIGN};
use crate::server::services::BackupLock;
use crate::server::session::{Statement, Thd};
use crate::server::storage::{self, Callback, Cbk, Engine, EngineBuf, Handle, Mode, Source};
use clone_core::ownership::{CloneKey, Denial, Joining, LiveClones};
use clone_core::protocol::data::{self, DataEncoder, Encoded, HEAD_ROOM};
use clone_core::protocol::extension::{Caps, Version};
use clone_core::protocol::{self, innodb, response, Command, InitPayload, Response};
use clone_core::reuse::Manifest;
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, LazyLock};
use std::thread::Scope;
use std::time::{Duration, Instant};

/// The clones this server donates, and whose they are.
static LIVE: LiveClones = LiveClones::new();

/// The manifests of the recipients' kept copies, per clone: its master
/// receives it, every task of the clone reads it.
static MANIFESTS: LazyLock<Mutex<HashMap<CloneKey, Arc<Manifest>>>> = LazyLock::new(Mutex::default);

/// Per clone with a manifest, the files of its file copy that the
/// recipient also holds, by index: InnoDB's master task announces them all
/// at the state's start, and every task's blocks name them by index. They
/// are also the only files a FETCH may read (InnoDB opened each by that
/// name; nothing else of the data directory, such as its keys, is ever
/// read for a recipient).
static HELD_FILES: LazyLock<Mutex<HashMap<CloneKey, FileNames>>> = LazyLock::new(Mutex::default);

/// File names by InnoDB's file index.
type FileNames = HashMap<u32, Vec<u8>>;

/// Forgets what a clone's recipient holds, and what recipients of clones
/// that are gone held (a clone that waited for a REINIT that never came).
fn forget_manifest(key: &CloneKey) {
    let mut manifests = MANIFESTS.lock();
    manifests.remove(key);
    manifests.retain(|k, _| LIVE.is_known(*k));
    let mut held = HELD_FILES.lock();
    held.remove(key);
    held.retain(|k, _| LIVE.is_known(*k));
}

/// A REINIT may come before the master that lost its recipient noticed the
/// failure (a write times out after net_write_timeout, 60 s by default); it
/// waits this long, outside InnoDB, for the clone to wait for it.
const REINIT_WAIT: Duration = Duration::from_secs(60);

/// Between commands the donor waits up to the session's wait_timeout, all
/// the while holding InnoDB's clone slot and (with clone_block_ddl) the
/// backup lock for a recipient that may have gone quiet. A peer can raise
/// its session's wait_timeout at will; the donor caps it at the stock
/// default, 8 hours, which a recipient's auxiliary connection needs in the
/// longest copy stage (it is silent between acknowledgements).
const MAX_IDLE_S: u64 = 28800;

/// Configuration values the recipient compares with its own, in order.
const CONFIG_KEYS: [&str; 7] =
    ["version", "version_compile_machine", "version_compile_os", "character_set_server", "character_set_filesystem", "collation_server", "innodb_page_size"];

struct Donor<'s> {
    link: DonorLink<'s>,
    thd: Thd<'s>,
    /// This connection's part in the clone, one handle per engine.
    active: Vec<Handle>,
    /// The stock version spoken on this connection, and what our recipient
    /// was granted (see `protocol::extension`).
    version: Version,
    /// With clone_block_ddl on the recipient: DDL waits for the clone.
    backup: Option<BackupLock<'s>>,
    /// The authenticated account of this connection.
    account: String,
    /// The clone this connection runs as its master.
    owned: Option<CloneKey>,
    /// The clone this connection is a task of.
    joined: Option<CloneKey>,
    /// On an auxiliary connection: the InnoDB clone its last acknowledgement
    /// named, and that locator.
    acknowledged: Option<(Engine, CloneKey, Vec<u8>)>,
}

/// Serves one recipient connection until it exits.
pub fn serve(thd: Thd) -> Result<(), Error> {
    thd.refine_statement(Statement::Server);
    if config::session_uint(thd, "wait_timeout").is_some_and(|wait| wait > MAX_IDLE_S) && !config::set_session_uint(thd, "wait_timeout", MAX_IDLE_S) {
        log::error!(target: "donor", "Could not bound the idle wait of a recipient's session");
    }
    let mut donor = Donor {
        link: DonorLink(thd),
        thd,
        active: Vec::new(),
        version: Version::stock(protocol::VERSION_CURRENT),
        backup: None,
        account: thd.account().unwrap_or_default(),
        owned: None,
        joined: None,
        acknowledged: None,
    };
    let mut last_error = 0;
    loop {
        let mut link = donor.link;
        let (code, body) = match link.next_command() {
            Ok(c) => c,
            Err(e) => {
                // An unreadable command (a network error, an empty packet, a
                // wrong sequence number) ends the clone as the stock donor
                // does: the error closes the connection, the peer learns at once.
                last_error = donor.report(e);
                let _ = donor.link.send_error(true);
                break;
            }
        };
        let outcome = match Command::decode_parts(code, body) {
            Ok(command) => donor.handle(command),
            Err(e) => Err(Error::protocol(format!("Wrong Clone RPC: {}", describe(&e)))),
        };
        match outcome {
            Ok(exit) => {
                log::info!(target: "donor", "COM_RES_COMPLETE");
                if donor.link.send(false, &mut [response::COMPLETE]).is_err() || exit {
                    break;
                }
            }
            Err(e) => {
                last_error = donor.report(e);
                let fatal = is_fatal(last_error);
                log::info!(target: "donor", "Before sending COM_RES_ERROR: {}", if fatal { "network " } else { "" });
                let sent = donor.link.send_error(fatal);
                log::info!(target: "donor", "After sending COM_RES_ERROR");
                if fatal || sent.is_err() {
                    break;
                }
                last_error = 0;
            }
        }
    }
    donor.end(last_error);
    log::info!(target: "donor", "Exiting clone protocol");
    Ok(())
}

fn describe(e: &protocol::DecodeError) -> String {
    match e {
        protocol::DecodeError::Empty => "Empty request".into(),
        protocol::DecodeError::Truncated(what) | protocol::DecodeError::TrailingBytes(what) => (*what).into(),
        protocol::DecodeError::UnknownCode(_) | protocol::DecodeError::DataMessage(_) => "Invalid request".into(),
    }
}

/// Errors after which the donor sends nothing more (a killed donor
/// session still tells the recipient).
fn is_fatal(e: i32) -> bool {
    e != ER_QUERY_INTERRUPTED && super::breaks_connection(e)
}

impl<'s> Donor<'s> {
    /// Raises a command's error for the error packet, which the server
    /// builds from the diagnostics area; its number.
    fn report(&self, e: Error) -> i32 {
        let code = e.raise().code();
        if self.thd.error().0 == 0 {
            // Reported by the server where no session reads it.
            Error::unknown(code).raise();
        }
        code
    }

    /// Runs one command; Ok(true) when the connection is done.
    fn handle(&mut self, command: Command<'_>) -> Result<bool, Error> {
        match command {
            Command::Init(p) => self.begin(p, Mode::Start, true).map(|()| false),
            Command::Reinit(p) => self.begin(p, Mode::Restart, true).map(|()| false),
            Command::Attach(p) => self.begin(p, Mode::AddTask, false).map(|()| false),
            Command::Execute => self.execute().map(|()| false),
            Command::Manifest(body) => self.take_manifest(body).map(|()| false),
            Command::Fetch { locator, name, offset, len } => self.fetch(locator.bytes, name, offset, len).map(|()| false),
            Command::Ack { error, locator, descriptor } => self.ack(error, locator.db_type, locator.bytes, descriptor).map(|()| false),
            Command::Exit => {
                log::info!(target: "donor", "COM_EXIT: Storage End");
                self.end(0);
                Ok(true)
            }
        }
    }

    fn engine_for(&self, db_type: u8) -> Result<Engine, Error> {
        storage::source_engines(self.thd).into_iter().find(|e| e.db_type() == db_type).ok_or_else(|| Error::protocol("Wrong Clone RPC: Init buffer length"))
    }

    /// INIT / REINIT (master) and ATTACH (worker).
    fn begin(&mut self, p: InitPayload<'_>, mode: Mode, master: bool) -> Result<(), Error> {
        if !self.active.is_empty() {
            return Err(Error::protocol("Wrong Clone RPC: Init request after Init"));
        }
        log::info!(target: "donor", "{}", match mode {
            Mode::Start => "COM_INIT: Storage Initialize",
            Mode::Restart => "COM_REINIT: Storage Initialize",
            _ => "COM_ATTACH: Storage Attach",
        });
        self.version = Version::decode(p.version).answer(protocol::VERSION_CURRENT);
        if let Some(caps) = self.version.ours {
            log::info!(target: "donor", "The recipient is this plugin; agreed: {caps}");
        }
        if master && mode == Mode::Start {
            super::check_packet_size(self.thd)?;
            if LIVE.another_account_awaits(&self.account, Instant::now()) {
                log::error!(target: "donor", "Refused a clone of {}: another account's clone waits for its recipient to reconnect", self.account);
                return Err(Error::with_int(message::ER_CLONE_TOO_MANY_CONCURRENT_CLONES, 1));
            }
        }
        let engines = p.locators.iter().map(|l| self.engine_for(l.db_type)).collect::<Result<Vec<_>, _>>()?;
        let joined = match mode {
            Mode::Restart => Some(self.admit(&engines, &p, Joining::Reinit)?),
            Mode::AddTask => Some(self.admit(&engines, &p, Joining::Attach)?),
            _ => None,
        };
        if master {
            // This session now runs the clone a REINIT took over.
            self.owned = joined;
        }
        self.joined = joined;
        if master && p.block_ddl() && self.backup.is_none() {
            self.backup = Some(BackupLock::acquire(self.thd, p.ddl_timeout())?);
            log::info!(target: "donor", "Acquired backup lock");
        }
        for (engine, received) in engines.into_iter().zip(&p.locators) {
            let handle = config::with_ddl_timeout(p.ddl_timeout(), || engine.begin(self.thd, Some(received.bytes), mode))?;
            self.active.push(handle);
        }
        if master && mode == Mode::Start {
            self.owned = self.active.iter().find(|a| a.engine().is_innodb()).and_then(|a| CloneKey::of_innodb_locator(a.locator()));
            if let Some(key) = self.owned {
                LIVE.started(key, &self.account, self.session(), Instant::now());
                forget_manifest(&key);
            }
            self.joined = self.owned;
            self.send_parameters()?;
        }
        let locators: Vec<protocol::Locator<'_>> =
            self.active.iter().map(|a| protocol::Locator { db_type: a.engine().db_type(), bytes: a.locator() }).collect();
        let mut locs = Response::Locators { version: self.version.encode(), locators }.encode();
        self.link.send(false, &mut locs)
    }

    fn session(&self) -> u64 {
        self.thd.thread_id() as u64
    }

    /// Lets a command naming a running clone through only if this
    /// connection's account started that clone and the clone is where the
    /// command needs it; a REINIT waits (killable, outside InnoDB) for the
    /// master that lost the recipient to notice.
    fn admit(&self, engines: &[Engine], p: &InitPayload<'_>, command: Joining) -> Result<CloneKey, Error> {
        let named = engines.iter().zip(&p.locators).find(|(e, _)| e.is_innodb()).and_then(|(_, l)| CloneKey::of_innodb_locator(l.bytes));
        let key = named.ok_or_else(|| self.deny(Denial::Unknown))?;
        let deadline = Instant::now() + REINIT_WAIT;
        loop {
            match LIVE.admit(key, &self.account, self.session(), command) {
                Ok(()) => return Ok(key),
                Err(Denial::NotNow) if command == Joining::Reinit && Instant::now() < deadline && !self.thd.killed() => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(denial) => return Err(self.deny(denial)),
            }
        }
    }

    fn deny(&self, denial: Denial) -> Error {
        if denial == Denial::NotNow {
            // The owner's worker or acknowledgement that comes as its clone
            // ends (a KILL QUERY on the recipient) races the end: no misuse.
            log::info!(target: "donor", "Refused a command from {}: {}", self.account, denial.message());
        } else {
            log::error!(target: "donor", "Refused a command from {}: {}", self.account, denial.message());
        }
        Error::protocol(denial.message())
    }

    /// What the recipient checks before it copies: plugins, collations,
    /// configuration, and (by protocol version) extra configuration; to our
    /// recipient also this server's gtid_executed.
    fn send_parameters(&mut self) -> Result<(), Error> {
        for (name, soname) in clone_protocol::plugins(self.thd)? {
            let mut msg = if self.version.stock >= protocol::VERSION_V2 {
                Response::PluginV2 { name: &name, soname: &soname }.encode()
            } else {
                Response::Plugin { name: &name }.encode()
            };
            self.link.send(false, &mut msg)?;
        }
        for name in clone_protocol::collations(self.thd)? {
            self.link.send(false, &mut Response::Collation { name: name.as_bytes() }.encode())?;
        }
        let values = config::variables(self.thd, &CONFIG_KEYS)?;
        for (key, value) in CONFIG_KEYS.iter().zip(&values) {
            self.link.send(false, &mut Response::Config { key: key.as_bytes(), value: value.as_bytes() }.encode())?;
        }
        if self.version.stock >= protocol::VERSION_V3 {
            let key = "clone_donor_timeout_after_network_failure";
            let value = config::variables(self.thd, &[key])?;
            let value = value.first().map(String::as_str).unwrap_or("");
            self.link.send(false, &mut Response::ConfigV3 { key: key.as_bytes(), value: value.as_bytes() }.encode())?;
        }
        if self.version.granted().contains(Caps::REUSE) {
            // Our recipient ties what it keeps of a failed clone to this server.
            let uuid = config::variable(self.thd, "server_uuid").unwrap_or_default();
            self.link.send(false, &mut Response::ConfigV3 { key: clone_core::recipient::SERVER_UUID, value: uuid.as_bytes() }.encode())?;
        }
        if self.version.granted().contains(Caps::GTIDS) {
            // Our recipient lists the transactions an in-place clone discards.
            let gtids = config::variable(self.thd, "gtid_executed").unwrap_or_default();
            self.link.send(false, &mut Response::ConfigV3 { key: clone_core::recipient::GTID_EXECUTED, value: gtids.as_bytes() }.encode())?;
        }
        if self.version.stock >= protocol::VERSION_V4 {
            let version = values.first().map(String::as_str).unwrap_or("");
            let json = protocol::version_json(version, crate::server::MYSQL_VERSION_MATURITY);
            self.link.send(false, &mut Response::ConfigV4 { key: b"json_configs", value: json.as_bytes() }.encode())?;
        }
        Ok(())
    }

    /// A part of the manifest of our recipient's kept copy: after INIT, on
    /// the clone's master connection, before any task executes.
    fn take_manifest(&mut self, body: &[u8]) -> Result<(), Error> {
        let key = match self.owned {
            Some(key) if self.version.granted().contains(Caps::REUSE) => key,
            _ => return Err(Error::protocol("Wrong Clone RPC: Invalid request")),
        };
        let mut manifests = MANIFESTS.lock();
        let mut manifest = manifests.remove(&key).map(Arc::unwrap_or_clone);
        Manifest::take(&mut manifest, body).map_err(|e| Error::protocol(e.0))?;
        if let Some(m) = manifest {
            manifests.insert(key, Arc::new(m));
        }
        Ok(())
    }

    /// A block the recipient could not take from its own copy, on its
    /// auxiliary connection: read again from the file InnoDB sent it from,
    /// and sent as DATA.
    fn fetch(&mut self, locator: &[u8], name: &[u8], offset: u64, len: u32) -> Result<(), Error> {
        let key = CloneKey::of_innodb_locator(locator).ok_or_else(|| self.deny(Denial::Unknown))?;
        LIVE.admit(key, &self.account, self.session(), Joining::Ack).map_err(|d| self.deny(d))?;
        let sent = HELD_FILES.lock().get(&key).is_some_and(|files| files.values().any(|n| n == name));
        if !sent || len as usize > clone_core::protocol::extension::MAX_BLOCK {
            log::error!(target: "donor", "Refused to read {} for {}: not a file of its clone", String::from_utf8_lossy(name), self.account);
            return Err(Error::protocol("Wrong Clone RPC: Invalid fetch"));
        }
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
        let mut message = vec![0u8; 1 + len as usize];
        message[0] = response::DATA;
        let read = std::fs::File::open(path).and_then(|f| f.read_exact_at(&mut message[1..], offset));
        if let Err(e) = read {
            return Err(Error::with_file(message::ER_CANT_OPEN_FILE, path.to_string_lossy(), e));
        }
        log::info!(target: "donor", "Sent again {len} bytes of {} at {offset}: the recipient's copy changed", path.display());
        self.link.send(false, &mut message)
    }

    fn execute(&mut self) -> Result<(), Error> {
        if self.active.is_empty() {
            return Err(Error::protocol("Wrong Clone RPC: Execute request before Init"));
        }
        log::info!(target: "donor", "COM_EXECUTE: Storage Execute");
        let manifest = match self.joined {
            Some(key) if self.version.granted().contains(Caps::REUSE) => MANIFESTS.lock().get(&key).cloned(),
            _ => None,
        };
        std::thread::scope(|scope| {
            let mut sender = Sender::new(self.link, self.thd, self.version.granted(), Some(scope));
            sender.reuse = manifest.zip(self.joined).map(|(m, key)| Reuse { manifest: m, key, reused: Cell::new(0) });
            let cbk = Callback::source(&sender)?;
            let copied = self.active.iter().try_for_each(|a| a.copy(self.thd, &cbk));
            // Every queued message goes out before the session answers or reads.
            let sent = sender.behind.drain();
            if let Some(reuse) = &sender.reuse {
                log::info!(target: "donor", "The recipient held {} MiB of what this task read: not sent", reuse.reused.get() >> 20);
            }
            copied.and(sent)
        })
    }

    /// A state acknowledgement from the recipient, arriving on its auxiliary
    /// connection: handed to the engine's master task.
    fn ack(&mut self, error: i32, db_type: u8, locator: &[u8], descriptor: &[u8]) -> Result<(), Error> {
        log::info!(target: "donor", "COM_ACK: Storage Ack");
        let engine = self.engine_for(db_type)?;
        if engine.is_innodb() {
            let key = CloneKey::of_innodb_locator(locator).ok_or_else(|| self.deny(Denial::Unknown))?;
            LIVE.admit(key, &self.account, self.session(), Joining::Ack).map_err(|d| self.deny(d))?;
            self.acknowledged = Some((engine, key, locator.to_vec()));
        }
        // InnoDB reads the descriptor only of a successful acknowledgement.
        if error == 0 && engine.is_innodb() {
            if let Err(what) = innodb::check_acknowledgement(descriptor) {
                log::error!(target: "donor", "Refused an acknowledgement from the recipient: {what}");
                return Err(Error::protocol(what));
            }
        }
        let descriptor = descriptor.to_vec();
        let idle = Sender::new(self.link, self.thd, Caps::NONE, None);
        let cbk = Callback::source(&idle)?;
        cbk.cbk().set_data_desc(&descriptor);
        engine.ack(self.thd, locator, 0, error, cbk.cbk())
    }

    /// Ends the engines' part of this connection and releases the lock.
    fn end(&mut self, error: i32) {
        self.tell_master_recipient_lost(error);
        // After a network error InnoDB's master waits inside `end` for a
        // REINIT, which may then take the clone over.
        let owned = self.owned.take();
        if let Some(key) = owned {
            LIVE.ending(key, self.session(), super::is_restartable(error), Instant::now());
            // A REINIT takes the clone over with the manifest it has.
            if !super::is_restartable(error) {
                forget_manifest(&key);
            }
        }
        for a in self.active.drain(..) {
            let _ = a.end(self.thd, error);
        }
        if let Some(key) = owned {
            LIVE.ended(key, self.session());
        }
        self.backup = None;
    }

    /// The auxiliary connection broke (a network error): the recipient is
    /// gone, or will come back with a REINIT. Between states the master
    /// waits in InnoDB for an acknowledgement and would notice only when a
    /// keep-alive fails, 5 to 10 s later, holding the clone all that time;
    /// an acknowledgement carrying the error tells it now, as a failure of
    /// its own connection would.
    fn tell_master_recipient_lost(&mut self, error: i32) {
        let Some((engine, key, locator)) = self.acknowledged.take() else { return };
        if !super::is_restartable(error) || !LIVE.is_copying(key) {
            return;
        }
        log::info!(target: "donor", "The recipient's acknowledgement connection broke: telling the clone's master");
        let idle = Sender::new(self.link, self.thd, Caps::NONE, None);
        let Ok(cbk) = Callback::source(&idle) else { return };
        let _ = engine.ack(self.thd, &locator, 0, error, cbk.cbk());
    }
}

/// Streams what the engine offers to the recipient: a descriptor, then the
/// data it describes, sent behind the session (`SendBehind`) so that the
/// engine reads the next block while the last one is on its way.
struct Sender<'s> {
    thd: Thd<'s>,
    behind: SendBehind<'s>,
    /// Builds the data messages the recipient was granted.
    data: RefCell<DataEncoder>,
    /// With a manifest of the recipient's kept copy.
    reuse: Option<Reuse>,
}

/// What a task needs to find the blocks the recipient holds.
struct Reuse {
    manifest: Arc<Manifest>,
    key: CloneKey,
    /// Bytes not sent because the recipient held them.
    reused: Cell<u64>,
}

impl Reuse {
    /// Follows the files of file copy InnoDB announces (on the master's
    /// connection): those the recipient holds are its clone's.
    fn note_descriptor(&self, desc: &[u8]) {
        if let Some((index, name)) = innodb::file_copy_file(desc) {
            let mut held = HELD_FILES.lock();
            let files = held.entry(self.key).or_default();
            if self.manifest.file(clone_core::reuse::relative_name(name).unwrap_or_default()).is_some() {
                files.insert(index, name.to_vec());
            } else {
                files.remove(&index);
            }
        }
    }

    /// The digest of `block`, described by `desc`, when the recipient holds
    /// it alike.
    fn held(&self, desc: &[u8], block: &[u8]) -> Option<clone_core::reuse::Digest> {
        let place = innodb::file_copy_block(desc)?;
        let name = HELD_FILES.lock().get(&self.key)?.get(&place.file)?.clone();
        let digest = self.manifest.matches(&name, place.offset, block)?;
        self.reused.set(self.reused.get() + block.len() as u64);
        Some(digest)
    }
}

impl<'s> Sender<'s> {
    /// With a `scope`, the sender of EXECUTE (a thread in it sends behind);
    /// without, one that only answers the engine's acknowledgements.
    fn new<'scope>(link: DonorLink<'s>, thd: Thd<'s>, granted: Caps, scope: Option<&'scope Scope<'scope, '_>>) -> Sender<'s>
    where
        's: 'scope,
    {
        let data = DataEncoder::new(granted);
        if granted.contains(Caps::ZSTD) && !data.compresses() {
            log::error!(target: "donor", "No zstd compressor: sending data uncompressed");
        }
        Sender { thd, behind: SendBehind::new(link, scope), data: RefCell::new(data), reuse: None }
    }

    /// Sends the data block after the head room of `block`, in the form
    /// the recipient was granted (see `DataEncoder`). The message's head
    /// goes into the room before the block, so the block is not copied.
    fn send_data(&self, secure: bool, mut block: Outgoing) -> Result<(), Error> {
        let mut data = self.data.borrow_mut();
        let mut packed = if data.compresses() { self.behind.bytes() } else { Vec::new() };
        let encoded = match &mut block {
            Outgoing::Aligned(buf, range) => match buf.as_mut_slice().get_mut(..range.end) {
                Some(area) => data.encode(area, range.start, &mut packed),
                None => Err(clone_core::protocol::data::DataError::NoRoom),
            },
            Outgoing::Bytes(bytes, start) => data.encode(bytes, *start, &mut packed),
        };
        match encoded {
            Ok(Encoded::Packed) => {
                self.behind.recycle(block);
                self.behind.send(secure, Outgoing::Bytes(packed, 0))
            }
            Ok(Encoded::InPlace { start }) => {
                let message = match block {
                    Outgoing::Aligned(buf, range) => Outgoing::Aligned(buf, start..range.end),
                    Outgoing::Bytes(bytes, _) => Outgoing::Bytes(bytes, start),
                };
                self.behind.send(secure, message)
            }
            Err(e) => {
                self.behind.recycle(block);
                Err(Error::internal(e))
            }
        }
    }

    fn send_descriptor(&self, cbk: Cbk<'_>) -> Result<bool, Error> {
        let engine = cbk.engine().ok_or_else(|| Error::internal("a descriptor from no storage engine"))?;
        let flags = cbk.flags();
        if let Some(reuse) = &self.reuse {
            reuse.note_descriptor(cbk.data_desc());
        }
        let mut message = self.behind.bytes();
        message.extend_from_slice(&[response::DATA_DESC, engine.db_type(), cbk.loc_index() as u8]);
        message.extend_from_slice(cbk.data_desc());
        self.behind.send(flags.secure, Outgoing::Bytes(message, 0))?;
        Ok(flags.secure)
    }
}

impl Source for Sender<'_> {
    fn file(&self, cbk: Cbk<'_>, from: RawFd, len: u32) -> Result<(), Error> {
        self.thd.interrupted(true)?;
        let len = len as usize;
        let mut buf = self.behind.aligned(len + ALIGN)?;
        if let Err(e) = copy::read_exact(from, &mut buf.as_mut_slice()[ALIGN..ALIGN + len], &cbk) {
            self.behind.recycle(Outgoing::Aligned(buf, 0..0));
            return Err(e.into());
        }
        let held = self.reuse.as_ref().and_then(|r| r.held(cbk.data_desc(), &buf.as_slice()[ALIGN..ALIGN + len]));
        let secure = match self.send_descriptor(cbk) {
            Ok(secure) => secure,
            Err(e) => {
                self.behind.recycle(Outgoing::Aligned(buf, 0..0));
                return Err(e);
            }
        };
        if let Some(digest) = held {
            self.behind.recycle(Outgoing::Aligned(buf, 0..0));
            return self.behind.send(secure, Outgoing::Bytes(data::reused(&digest), 0));
        }
        self.send_data(secure, Outgoing::Aligned(buf, ALIGN..ALIGN + len))
    }

    fn buffer<'c>(&self, cbk: Cbk<'c>, buf: EngineBuf<'c>) -> Result<(), Error> {
        self.thd.interrupted(true)?;
        let secure = self.send_descriptor(cbk)?;
        if buf.is_empty() {
            return Ok(());
        }
        let mut message = self.behind.bytes();
        message.resize(HEAD_ROOM, 0);
        message.extend_from_slice(buf.as_slice());
        self.send_data(secure, Outgoing::Bytes(message, HEAD_ROOM))
    }
}
