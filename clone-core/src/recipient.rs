//! The recipient's decisions that need no server: what it offers a donor,
//! what it makes of each answer (INIT's, ATTACH's, the look's, the data
//! stream's), which donors it clones from, and whether a failed attempt
//! resumes. The plugin's recipient (src/clone/recipient) acts on them.

use crate::protocol::extension::{Caps, Version};
use crate::protocol::{innodb, Response, VERSION_V3, VERSION_V4};

/// The extensions to offer a donor before it has answered: checksums,
/// the donor's GTIDs and reuse always, zstd when the user asked for compression.
pub fn offer(enable_compression: bool) -> Caps {
    let always = Caps::CHECKSUM.union(Caps::GTIDS).union(Caps::REUSE);
    if enable_compression {
        always.union(Caps::ZSTD)
    } else {
        always
    }
}

/// The answer to INIT: a stock 9.7.4 donor sends about 340 messages (one
/// per plugin and collation, a few configuration values) in about 12 KiB.
/// A donor that sends far more is refused before it bloats this server.
pub const MAX_INIT_MESSAGES: usize = 8192;
pub const MAX_INIT_BYTES: usize = 4 << 20;

/// Without a word from the donor, it keeps a clone this long after a
/// network failure (its default).
pub const DEFAULT_RECONNECT_MINUTES: u32 = 5;
/// The longest network-failure window a donor may ask for: the maximum of
/// clone_donor_timeout_after_network_failure.
pub const MAX_RECONNECT_MINUTES: u32 = 30;

/// The donor's description of itself, from its answer to INIT.
#[derive(Debug, Default)]
pub struct DonorInfo {
    pub version: Version,
    /// Plugin names, each with its library (protocol V2 and later).
    pub plugins: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub collations: Vec<Vec<u8>>,
    pub configs: Vec<(Vec<u8>, Vec<u8>)>,
    pub json: Option<String>,
    pub locators: Vec<(u8, Vec<u8>)>,
    /// The donor's gtid_executed, which only our donor sends (to our
    /// recipient).
    pub gtid_executed: Option<String>,
    /// The donor's server_uuid, which only our donor sends (to our
    /// recipient, for a resumed clone).
    pub server_uuid: Option<String>,
    /// clone_donor_timeout_after_network_failure of the donor, as sent.
    reconnect: Option<u32>,
    has_locators: bool,
    messages: usize,
    bytes: usize,
}

/// The extra configuration our donor sends our recipient: its
/// gtid_executed, for the transactions an in-place clone discards.
pub const GTID_EXECUTED: &[u8] = b"gtid_executed";
/// And its server_uuid, for a resumed clone (`crate::reuse`).
pub const SERVER_UUID: &[u8] = b"server_uuid";

/// What to do after one message of INIT's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum InitStep<'a> {
    /// Read the next message.
    More,
    /// The answer is complete.
    Done,
    /// The donor refused: its error number and message.
    Refused { code: i32, message: &'a [u8] },
    /// A message that does not belong here, or far too many: the text of
    /// the protocol error.
    Wrong(&'static str),
}

impl DonorInfo {
    /// Takes one message of the answer (`packet`, code byte first).
    pub fn take<'a>(&mut self, packet: &'a [u8]) -> InitStep<'a> {
        self.messages += 1;
        self.bytes = self.bytes.saturating_add(packet.len());
        if self.messages > MAX_INIT_MESSAGES || self.bytes > MAX_INIT_BYTES {
            return InitStep::Wrong("Wrong Clone RPC response to COM_INIT: too long");
        }
        match Response::decode(packet) {
            Ok(Response::PluginV2 { name, soname }) => self.plugins.push((name.to_vec(), Some(soname.to_vec()))),
            Ok(Response::Plugin { name }) => self.plugins.push((name.to_vec(), None)),
            Ok(Response::Collation { name }) => self.collations.push(name.to_vec()),
            Ok(Response::Config { key, value }) => self.configs.push((key.to_vec(), value.to_vec())),
            Ok(Response::ConfigV3 { key, value }) => {
                if key == b"clone_donor_timeout_after_network_failure" {
                    self.reconnect = std::str::from_utf8(value).ok().and_then(|v| v.trim().parse().ok());
                } else if key == GTID_EXECUTED {
                    self.gtid_executed = Some(String::from_utf8_lossy(value).into_owned());
                } else if key == SERVER_UUID {
                    self.server_uuid = Some(String::from_utf8_lossy(value).into_owned());
                } else {
                    self.configs.push((key.to_vec(), value.to_vec()));
                }
            }
            Ok(Response::ConfigV4 { value, .. }) => self.json = Some(String::from_utf8_lossy(value).into_owned()),
            Ok(Response::Locators { version, locators }) => {
                self.version = Version::decode(version);
                self.locators = locators.iter().map(|l| (l.db_type, l.bytes.to_vec())).collect();
                self.has_locators = true;
            }
            Ok(Response::Complete) if self.has_locators => return InitStep::Done,
            Ok(Response::Error { code, message }) => return InitStep::Refused { code, message },
            _ => return InitStep::Wrong("Wrong Clone RPC response to COM_INIT"),
        }
        InitStep::More
    }

    /// How long to try reconnecting after a network failure: the donor's
    /// window, bounded.
    pub fn reconnect_minutes(&self) -> u32 {
        self.reconnect.unwrap_or(DEFAULT_RECONNECT_MINUTES).min(MAX_RECONNECT_MINUTES)
    }

    /// Older donors send neither maturity nor all configuration.
    pub fn is_too_old(&self) -> bool {
        self.version.stock < VERSION_V3
    }

    /// The donor's release and whether it is an LTS one: from the JSON of
    /// protocol V4, else from its `version` configuration (not LTS then).
    pub fn release(&self) -> (String, bool) {
        match &self.json {
            Some(json) => (
                crate::protocol::json_string_field(json, "version").unwrap_or_default(),
                crate::protocol::json_string_field(json, "maturity").as_deref() == Some("LTS"),
            ),
            None => {
                let v = self.configs.iter().find(|(k, _)| k == b"version").map(|(_, v)| String::from_utf8_lossy(v).into_owned());
                (v.unwrap_or_default(), false)
            }
        }
    }

    /// Whether the server's version rules may treat this recipient as LTS:
    /// only with a donor that speaks V4, which says its own maturity.
    pub fn recipient_lts(&self, own_maturity: &str) -> bool {
        self.version.stock >= VERSION_V4 && own_maturity == "LTS"
    }

    /// The plugins to check, each once however often the donor names it.
    pub fn distinct_plugins(&self) -> impl Iterator<Item = &(Vec<u8>, Option<Vec<u8>>)> {
        let mut seen = std::collections::HashSet::new();
        self.plugins.iter().filter(move |(name, _)| seen.insert(name.clone()))
    }
}

/// What to do about a donor's plugin that is not installed here, by the
/// library the donor names for it.
#[derive(Debug, PartialEq, Eq)]
pub enum PluginLibrary {
    /// Built into the donor's server: nothing to load.
    BuiltIn,
    /// Not available: no library named (an old donor), or a name with a
    /// directory in it, which could load anything.
    Refused,
    /// Try loading this library from the plugin directory.
    Load(String),
}

pub fn plugin_library(soname: Option<&[u8]>) -> PluginLibrary {
    match soname {
        None => PluginLibrary::Refused,
        Some([]) => PluginLibrary::BuiltIn,
        Some(so) if so.contains(&b'/') => PluginLibrary::Refused,
        Some(so) => PluginLibrary::Load(String::from_utf8_lossy(so).into_owned()),
    }
}

/// The engine a data descriptor is for: its index among this server's
/// engines (`engines`: their type ids, in the order of the locators), or
/// the protocol error.
pub fn descriptor_engine(db_type: u8, loc_index: u8, descriptor: &[u8], engines: &[u8]) -> Result<usize, &'static str> {
    match engines.get(loc_index as usize) {
        Some(&t) if t == db_type && !descriptor.is_empty() => Ok(loc_index as usize),
        Some(_) => Err("Remote descriptor handlerton type mismatch"),
        None => Err("Remote descriptor index out of range"),
    }
}

/// What to do with one message of the look at a donor's snapshot, before
/// the START of its file copy.
#[derive(Debug, PartialEq, Eq)]
pub enum LookStep<'a> {
    /// Data, or a descriptor of no interest: read on.
    Skip,
    /// The START of InnoDB's file copy, with its estimate: the look is over.
    Estimate(innodb::CopyEstimate),
    /// The end of InnoDB's INIT state: acknowledge it with this descriptor.
    Acknowledge(Vec<u8>),
    Refused {
        code: i32,
        message: &'a [u8],
    },
    Wrong(&'static str),
}

/// `innodb`: the index of InnoDB among the engines, and its type id.
pub fn look_step(packet: &[u8], innodb: Option<(usize, u8)>) -> LookStep<'_> {
    if crate::protocol::data::is_stream_message(packet) && packet[0] != crate::protocol::response::DATA_DESC {
        return LookStep::Skip;
    }
    match Response::decode(packet) {
        Ok(Response::DataDesc { db_type, loc_index, descriptor }) if innodb == Some((loc_index as usize, db_type)) => {
            if let Some(estimate) = innodb::file_copy_estimate(descriptor) {
                LookStep::Estimate(estimate)
            } else if let Some(ack) = innodb::init_acknowledgement(descriptor) {
                LookStep::Acknowledge(ack)
            } else {
                LookStep::Skip
            }
        }
        Ok(Response::DataDesc { .. }) => LookStep::Skip,
        Ok(Response::Error { code, message }) => LookStep::Refused { code, message },
        _ => LookStep::Wrong("Wrong Clone RPC response, expecting descriptor"),
    }
}

/// At most this many attempts at one clone, as the stock plugin.
pub const MAX_ATTEMPTS: u32 = 100;

/// How an attempt at the data stream failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failure {
    /// A network error the donor keeps the clone for.
    pub restartable: bool,
    /// The attempt that failed (the first is 1).
    pub attempt: u32,
    /// The guard refused one of the donor's descriptors.
    pub refused: bool,
    /// A write failed behind a stream, on any task.
    pub lost_write: bool,
    /// The statement is killed.
    pub killed: bool,
}

/// What follows a failed attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// The failed write is the clone's error: InnoDB counted its block
    /// done, so no attempt may resume past it.
    LostWrite,
    /// The attempt's error is the clone's.
    Fail,
    /// A KILL that reached the stream as a network error ends the clone
    /// (and the donor's side with it) instead of resuming it.
    Killed,
    /// Reconnect and resume with REINIT.
    Resume,
}

pub fn after_failure(f: Failure) -> AfterFailure {
    if f.lost_write {
        AfterFailure::LostWrite
    } else if !f.restartable || f.attempt >= MAX_ATTEMPTS || f.refused {
        AfterFailure::Fail
    } else if f.killed {
        AfterFailure::Killed
    } else {
        AfterFailure::Resume
    }
}

/// After a local error while applying: whether the donor is told (an
/// acknowledgement carrying the error) and its stream read to its end, as
/// the stock recipient does. Not after a network error (the connection is
/// gone) or the donor's own error (it has ended its stream).
pub fn tells_donor_after(restartable: bool, from_donor: bool) -> bool {
    !restartable && !from_donor
}

/// The threads a data stream starts with. zstd makes each stream CPU-bound
/// on the donor: with it, the clone starts with a stream per core here
/// (auto-tuning goes on from there), not with one. Without it one stream
/// keeps the donor's disk busy, as its sends go behind its reads.
pub fn first_threads(max_threads: u32, autotune: bool, zstd: bool, cores: u32) -> u32 {
    if !autotune {
        max_threads
    } else if zstd {
        cores
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{response, Locator, VERSION_CURRENT, VERSION_V2};

    fn answer(info: &mut DonorInfo, r: Response<'_>) -> String {
        format!("{:?}", info.take(&r.encode()))
    }

    #[test]
    fn offers_zstd_only_when_compression_is_asked_for() {
        assert_eq!(offer(false), Caps::CHECKSUM.union(Caps::GTIDS).union(Caps::REUSE));
        assert!(offer(true).contains(Caps::ZSTD) && offer(true).contains(Caps::CHECKSUM));
    }

    #[test]
    fn init_answer_is_read_until_complete_after_the_locators() {
        let mut info = DonorInfo::default();
        assert_eq!(answer(&mut info, Response::PluginV2 { name: b"p", soname: b"p.so" }), "More");
        assert_eq!(answer(&mut info, Response::Plugin { name: b"q" }), "More");
        assert_eq!(answer(&mut info, Response::Collation { name: b"utf8mb4_bin" }), "More");
        assert_eq!(answer(&mut info, Response::Config { key: b"version", value: b"9.7.4" }), "More");
        assert_eq!(answer(&mut info, Response::ConfigV3 { key: b"clone_donor_timeout_after_network_failure", value: b"12" }), "More");
        assert_eq!(answer(&mut info, Response::ConfigV3 { key: b"other", value: b"x" }), "More");
        // COMPLETE before the locators does not end the answer.
        assert_eq!(answer(&mut info, Response::Complete), format!("{:?}", InitStep::Wrong("Wrong Clone RPC response to COM_INIT")));
        let mut info = DonorInfo::default();
        assert_eq!(answer(&mut info, Response::Locators { version: VERSION_CURRENT, locators: vec![Locator { db_type: 12, bytes: b"l" }] }), "More");
        assert_eq!(answer(&mut info, Response::ConfigV3 { key: b"clone_donor_timeout_after_network_failure", value: b" 12 " }), "More");
        assert_eq!(info.take(&Response::Complete.encode()), InitStep::Done);
        assert_eq!(info.locators, vec![(12, b"l".to_vec())]);
        assert_eq!(info.reconnect_minutes(), 12);
        assert_eq!(info.version.stock, VERSION_CURRENT);
    }

    #[test]
    fn our_donors_extra_pairs_are_taken_apart_from_the_configuration() {
        let mut info = DonorInfo::default();
        assert_eq!(answer(&mut info, Response::ConfigV3 { key: GTID_EXECUTED, value: b"u:1-5" }), "More");
        assert_eq!(answer(&mut info, Response::ConfigV3 { key: SERVER_UUID, value: b"8a94f357-aab4-11df-86ab-c80aa9429562" }), "More");
        assert_eq!(info.gtid_executed.as_deref(), Some("u:1-5"));
        assert_eq!(info.server_uuid.as_deref(), Some("8a94f357-aab4-11df-86ab-c80aa9429562"));
        assert!(info.configs.is_empty(), "not compared as configuration");
    }

    #[test]
    fn init_answer_refusals() {
        let mut info = DonorInfo::default();
        let err = Response::Error { code: 3634, message: b"busy" }.encode();
        assert_eq!(info.take(&err), InitStep::Refused { code: 3634, message: b"busy" });
        assert_eq!(info.take(&[response::DATA, 1]), InitStep::Wrong("Wrong Clone RPC response to COM_INIT"));
        // A donor that never stops describing itself.
        let mut info = DonorInfo::default();
        let collation = Response::Collation { name: b"c" }.encode();
        let steps: Vec<_> = (0..=MAX_INIT_MESSAGES).map(|_| info.take(&collation)).collect();
        assert_eq!(steps[MAX_INIT_MESSAGES - 1], InitStep::More);
        assert_eq!(steps[MAX_INIT_MESSAGES], InitStep::Wrong("Wrong Clone RPC response to COM_INIT: too long"));
        let mut info = DonorInfo::default();
        let big = Response::Collation { name: &vec![b'c'; MAX_INIT_BYTES] }.encode();
        assert_eq!(info.take(&big), InitStep::Wrong("Wrong Clone RPC response to COM_INIT: too long"));
    }

    #[test]
    fn reconnect_window_is_the_donors_bounded() {
        let mut info = DonorInfo::default();
        assert_eq!(info.reconnect_minutes(), DEFAULT_RECONNECT_MINUTES);
        info.take(&Response::ConfigV3 { key: b"clone_donor_timeout_after_network_failure", value: b"0" }.encode());
        assert_eq!(info.reconnect_minutes(), 0);
        info.take(&Response::ConfigV3 { key: b"clone_donor_timeout_after_network_failure", value: b"4000000000" }.encode());
        assert_eq!(info.reconnect_minutes(), MAX_RECONNECT_MINUTES);
        info.take(&Response::ConfigV3 { key: b"clone_donor_timeout_after_network_failure", value: b"soon" }.encode());
        assert_eq!(info.reconnect_minutes(), DEFAULT_RECONNECT_MINUTES);
    }

    #[test]
    fn donor_release_and_age() {
        let mut info = DonorInfo { version: Version::stock(VERSION_V2), ..DonorInfo::default() };
        assert!(info.is_too_old());
        info.version = Version::stock(VERSION_V3);
        assert!(!info.is_too_old());
        info.configs.push((b"version".to_vec(), b"9.7.4".to_vec()));
        assert_eq!(info.release(), ("9.7.4".to_string(), false));
        assert!(!info.recipient_lts("LTS"), "a V3 donor does not say its maturity");
        info.version = Version::stock(VERSION_V4);
        info.json = Some(crate::protocol::version_json("9.7.5", "LTS"));
        assert_eq!(info.release(), ("9.7.5".to_string(), true));
        assert!(info.recipient_lts("LTS"));
        assert!(!info.recipient_lts("Innovation"));
    }

    #[test]
    fn each_plugin_is_checked_once() {
        let mut info = DonorInfo::default();
        for name in [&b"a"[..], b"b", b"a", b"a"] {
            info.plugins.push((name.to_vec(), None));
        }
        let names: Vec<_> = info.distinct_plugins().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn plugin_libraries() {
        assert_eq!(plugin_library(None), PluginLibrary::Refused);
        assert_eq!(plugin_library(Some(b"")), PluginLibrary::BuiltIn);
        assert_eq!(plugin_library(Some(b"../../lib/evil.so")), PluginLibrary::Refused);
        assert_eq!(plugin_library(Some(b"/lib/evil.so")), PluginLibrary::Refused);
        assert_eq!(plugin_library(Some(b"ha_example.so")), PluginLibrary::Load("ha_example.so".into()));
    }

    #[test]
    fn descriptors_name_an_engine_of_this_server() {
        let engines = [12u8, 20];
        assert_eq!(descriptor_engine(20, 1, b"d", &engines), Ok(1));
        assert_eq!(descriptor_engine(12, 1, b"d", &engines), Err("Remote descriptor handlerton type mismatch"));
        assert_eq!(descriptor_engine(12, 0, b"", &engines), Err("Remote descriptor handlerton type mismatch"));
        assert_eq!(descriptor_engine(12, 2, b"d", &engines), Err("Remote descriptor index out of range"));
    }

    #[test]
    fn the_look_skips_data_and_other_engines() {
        let innodb = Some((0, 12));
        assert_eq!(look_step(&[response::DATA, 1, 2], innodb), LookStep::Skip);
        assert_eq!(look_step(&[response::DATA_ZSTD, 1, 2], innodb), LookStep::Skip);
        let other = Response::DataDesc { db_type: 20, loc_index: 1, descriptor: b"x" }.encode();
        assert_eq!(look_step(&other, innodb), LookStep::Skip);
        let not_a_state = Response::DataDesc { db_type: 12, loc_index: 0, descriptor: b"x" }.encode();
        assert_eq!(look_step(&not_a_state, innodb), LookStep::Skip);
        let err = Response::Error { code: 1, message: b"m" }.encode();
        assert_eq!(look_step(&err, innodb), LookStep::Refused { code: 1, message: b"m" });
        assert_eq!(look_step(&Response::Complete.encode(), innodb), LookStep::Wrong("Wrong Clone RPC response, expecting descriptor"));
        assert_eq!(look_step(&[], innodb), LookStep::Wrong("Wrong Clone RPC response, expecting descriptor"));
    }

    #[test]
    fn failures_resume_only_when_nothing_forbids_it() {
        let network = Failure { restartable: true, attempt: 1, ..Failure::default() };
        assert_eq!(after_failure(network), AfterFailure::Resume);
        assert_eq!(after_failure(Failure { restartable: false, ..network }), AfterFailure::Fail);
        assert_eq!(after_failure(Failure { attempt: MAX_ATTEMPTS, ..network }), AfterFailure::Fail);
        assert_eq!(after_failure(Failure { refused: true, ..network }), AfterFailure::Fail);
        assert_eq!(after_failure(Failure { killed: true, ..network }), AfterFailure::Killed);
        // A lost write wins over everything, a local error included.
        assert_eq!(after_failure(Failure { lost_write: true, restartable: false, killed: true, ..network }), AfterFailure::LostWrite);
    }

    #[test]
    fn the_donor_is_told_of_local_errors_only() {
        assert!(tells_donor_after(false, false));
        assert!(!tells_donor_after(true, false));
        assert!(!tells_donor_after(false, true));
    }

    #[test]
    fn first_threads_by_settings() {
        assert_eq!(first_threads(8, false, false, 2), 8);
        assert_eq!(first_threads(8, true, true, 2), 2);
        assert_eq!(first_threads(8, true, false, 2), 1);
    }
}
