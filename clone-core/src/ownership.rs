//! Who may touch a clone running on this donor. InnoDB finds a clone by
//! the clone and snapshot ids in a locator, small counters that any
//! session could name: with nothing more, a second BACKUP_ADMIN session
//! could abort another's clone (an ACK with an error), take chunks from it
//! (ATTACH, EXECUTE), acknowledge states for it, or take it over while it
//! waits for its recipient (REINIT). [`LiveClones`] binds each clone to the
//! account that started it and to where it is in its life, and says which
//! commands naming it may reach InnoDB.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Clone_Desc_Locator (storage/innobase/clone/clone0desc.cc): header
/// (version, length, type), clone id, snapshot id; big-endian.
const LOCATOR_TYPE: u32 = 1;
const LOCATOR_TYPE_OFFSET: usize = 8;
const LOCATOR_CLONE_ID_OFFSET: usize = 12;
const LOCATOR_SNAPSHOT_ID_OFFSET: usize = 20;
const LOCATOR_LEN: usize = 34;

/// A clone waiting for its recipient is forgotten this long after it began
/// to wait: InnoDB gives up by then (the longest
/// clone_donor_timeout_after_network_failure is 30 minutes).
const FORGET_AFTER: Duration = Duration::from_secs(31 * 60);

/// The InnoDB clone a locator names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CloneKey {
    clone_id: u64,
    snapshot_id: u64,
}

impl CloneKey {
    /// Reads an InnoDB locator; None if it is not one.
    pub fn of_innodb_locator(locator: &[u8]) -> Option<CloneKey> {
        let be64 = |at: usize| locator.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        let kind = locator.get(LOCATOR_TYPE_OFFSET..LOCATOR_TYPE_OFFSET + 4)?;
        if locator.len() < LOCATOR_LEN || kind != LOCATOR_TYPE.to_be_bytes() {
            return None;
        }
        Some(CloneKey { clone_id: be64(LOCATOR_CLONE_ID_OFFSET)?, snapshot_id: be64(LOCATOR_SNAPSHOT_ID_OFFSET)? })
    }
}

/// A command that names a running clone instead of starting one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joining {
    /// A worker joins the copy.
    Attach,
    /// A state acknowledgement, or an error, from the recipient.
    Ack,
    /// The recipient comes back after a network failure.
    Reinit,
}

/// Why a command may not touch the clone it names: the text of the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    Unknown,
    OtherAccount,
    /// The clone is not where the command needs it (a REINIT may retry
    /// while the master that lost its recipient has not noticed yet).
    NotNow,
}

impl Denial {
    pub fn message(self) -> &'static str {
        match self {
            Denial::Unknown => "Wrong Clone RPC: the locator names no clone of this donor",
            Denial::OtherAccount => "Wrong Clone RPC: the clone belongs to another account",
            Denial::NotNow => "Wrong Clone RPC: the clone does not accept this command now",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Its master session copies: workers may attach, acknowledgements flow.
    Copying,
    /// Its master lost the recipient and waits for a REINIT.
    AwaitingRecipient(Instant),
    /// Its master is ending it.
    Ending,
}

#[derive(Debug)]
struct Live {
    key: CloneKey,
    owner: String,
    /// The session of the master that runs it now.
    master: u64,
    phase: Phase,
}

/// The clones this donor runs, one entry per clone begun by INIT.
#[derive(Default)]
pub struct LiveClones {
    clones: Mutex<Vec<Live>>,
}

impl LiveClones {
    pub const fn new() -> Self {
        LiveClones { clones: Mutex::new(Vec::new()) }
    }

    /// INIT began `key` for `owner` on session `master`.
    pub fn started(&self, key: CloneKey, owner: &str, master: u64, now: Instant) {
        let mut clones = self.clones.lock();
        clones.retain(|c| c.key != key && !matches!(c.phase, Phase::AwaitingRecipient(since) if now.duration_since(since) > FORGET_AFTER));
        clones.push(Live { key, owner: owner.to_owned(), master, phase: Phase::Copying });
    }

    /// Whether `owner`, on session `session`, may send `command` naming
    /// `key`. A REINIT that is let in makes `session` the clone's master.
    pub fn admit(&self, key: CloneKey, owner: &str, session: u64, command: Joining) -> Result<(), Denial> {
        let mut clones = self.clones.lock();
        let clone = clones.iter_mut().find(|c| c.key == key).ok_or(Denial::Unknown)?;
        if clone.owner != owner {
            return Err(Denial::OtherAccount);
        }
        match (command, clone.phase) {
            (Joining::Attach | Joining::Ack, Phase::Copying) => Ok(()),
            (Joining::Reinit, Phase::AwaitingRecipient(_)) => {
                clone.master = session;
                clone.phase = Phase::Copying;
                Ok(())
            }
            _ => Err(Denial::NotNow),
        }
    }

    /// The master on `session` ends the clone; with `resumable` (a network
    /// error) InnoDB keeps it for a REINIT while the master waits.
    pub fn ending(&self, key: CloneKey, session: u64, resumable: bool, now: Instant) {
        if let Some(clone) = self.clones.lock().iter_mut().find(|c| c.key == key && c.master == session) {
            clone.phase = if resumable { Phase::AwaitingRecipient(now) } else { Phase::Ending };
        }
    }

    /// Whether a new clone of `owner` must wait: another account's clone
    /// waits for its recipient. InnoDB would abort that clone to make room
    /// for any new one (clone0clone.cc, find_free_index); the account that
    /// started it may give it up so, no other.
    pub fn another_account_awaits(&self, owner: &str, now: Instant) -> bool {
        self.clones.lock().iter().any(|c| c.owner != owner && matches!(c.phase, Phase::AwaitingRecipient(since) if now.duration_since(since) <= FORGET_AFTER))
    }

    /// Whether the clone `key` is copying (its master has not lost its
    /// recipient, nor begun to end it).
    pub fn is_copying(&self, key: CloneKey) -> bool {
        self.clones.lock().iter().any(|c| c.key == key && c.phase == Phase::Copying)
    }

    /// Whether the clone `key` runs or waits for its recipient.
    pub fn is_known(&self, key: CloneKey) -> bool {
        self.clones.lock().iter().any(|c| c.key == key)
    }

    /// The master on `session` is done with the clone: unless a REINIT took
    /// it over meanwhile, InnoDB has dropped it.
    pub fn ended(&self, key: CloneKey, session: u64) {
        self.clones.lock().retain(|c| !(c.key == key && c.master == session));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(clone_id: u64, snapshot_id: u64) -> Vec<u8> {
        let mut l = vec![0u8; LOCATOR_LEN];
        l[LOCATOR_TYPE_OFFSET..][..4].copy_from_slice(&LOCATOR_TYPE.to_be_bytes());
        l[LOCATOR_CLONE_ID_OFFSET..][..8].copy_from_slice(&clone_id.to_be_bytes());
        l[LOCATOR_SNAPSHOT_ID_OFFSET..][..8].copy_from_slice(&snapshot_id.to_be_bytes());
        l
    }

    fn key(clone_id: u64) -> CloneKey {
        CloneKey::of_innodb_locator(&locator(clone_id, clone_id + 1)).unwrap()
    }

    #[test]
    fn locators_are_read_with_their_type_and_length() {
        assert_eq!(CloneKey::of_innodb_locator(&locator(3, 4)), Some(CloneKey { clone_id: 3, snapshot_id: 4 }));
        assert_eq!(CloneKey::of_innodb_locator(&locator(3, 4)[..LOCATOR_LEN - 1]), None);
        let mut other = locator(3, 4);
        other[LOCATOR_TYPE_OFFSET + 3] = 2;
        assert_eq!(CloneKey::of_innodb_locator(&other), None);
        assert_eq!(CloneKey::of_innodb_locator(b""), None);
    }

    #[test]
    fn only_the_owner_joins_a_copying_clone() {
        let live = LiveClones::new();
        let now = Instant::now();
        live.started(key(1), "repl@%", 10, now);
        assert_eq!(live.admit(key(1), "repl@%", 11, Joining::Attach), Ok(()));
        assert_eq!(live.admit(key(1), "repl@%", 12, Joining::Ack), Ok(()));
        assert_eq!(live.admit(key(1), "other@%", 13, Joining::Attach), Err(Denial::OtherAccount));
        assert_eq!(live.admit(key(1), "other@%", 13, Joining::Ack), Err(Denial::OtherAccount));
        assert_eq!(live.admit(key(2), "repl@%", 13, Joining::Attach), Err(Denial::Unknown));
        assert_eq!(live.admit(key(1), "repl@%", 13, Joining::Reinit), Err(Denial::NotNow), "its master still copies");
    }

    /// Clone 1 of repl@%, whose master (session 10) lost its recipient.
    fn waiting_for_its_recipient(since: Instant) -> LiveClones {
        let live = LiveClones::new();
        live.started(key(1), "repl@%", 10, since);
        live.ending(key(1), 10, true, since);
        live
    }

    #[test]
    fn a_reinit_takes_over_only_a_clone_waiting_for_its_recipient() {
        let now = Instant::now();
        let live = waiting_for_its_recipient(now);
        assert_eq!(live.admit(key(1), "repl@%", 11, Joining::Attach), Err(Denial::NotNow));
        assert_eq!(live.admit(key(1), "other@%", 11, Joining::Reinit), Err(Denial::OtherAccount));
        assert_eq!(live.admit(key(1), "repl@%", 11, Joining::Reinit), Ok(()));
        // The old master's end does not drop what the new one runs.
        live.ended(key(1), 10);
        assert_eq!(live.admit(key(1), "repl@%", 12, Joining::Attach), Ok(()));
        live.ending(key(1), 11, false, now);
        assert_eq!(live.admit(key(1), "repl@%", 12, Joining::Attach), Err(Denial::NotNow));
        live.ended(key(1), 11);
        assert_eq!(live.admit(key(1), "repl@%", 12, Joining::Reinit), Err(Denial::Unknown));
    }

    #[test]
    fn a_clone_waiting_for_its_recipient_keeps_its_place_from_other_accounts() {
        let now = Instant::now();
        let live = LiveClones::new();
        live.started(key(1), "repl@%", 10, now);
        assert!(!live.another_account_awaits("other@%", now), "a copying clone: InnoDB itself refuses a second one");
        live.ending(key(1), 10, true, now);
        assert!(live.another_account_awaits("other@%", now));
        assert!(!live.another_account_awaits("repl@%", now), "its own account may start over");
        assert!(!live.another_account_awaits("other@%", now + FORGET_AFTER + Duration::from_secs(1)));
        assert_eq!(live.admit(key(1), "repl@%", 11, Joining::Reinit), Ok(()));
        assert!(!live.another_account_awaits("other@%", now), "resumed: copying again");
        assert!(live.is_copying(key(1)));
        live.ending(key(1), 11, false, now);
        assert!(!live.another_account_awaits("other@%", now), "ending for good");
        assert!(!live.is_copying(key(1)));
        assert!(live.is_known(key(1)), "until its master is done");
        live.ended(key(1), 11);
        assert!(!live.is_known(key(1)));
    }

    #[test]
    fn clones_waiting_past_any_timeout_are_forgotten() {
        let then = Instant::now();
        let live = waiting_for_its_recipient(then);
        live.started(key(2), "repl@%", 20, then + FORGET_AFTER + Duration::from_secs(1));
        assert_eq!(live.admit(key(1), "repl@%", 11, Joining::Reinit), Err(Denial::Unknown));
        assert_eq!(live.clones.lock().len(), 1);
    }
}
