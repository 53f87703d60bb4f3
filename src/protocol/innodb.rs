//! InnoDB's descriptors, which travel opaque inside COM_RES_DATA_DESC, as
//! far as the recipient must check them before InnoDB applies them.
//!
//! InnoDB trusts a few of their fields more than a remote party deserves:
//! it stores a file's context at the file index without a bounds check,
//! asserts (aborting mysqld) on a chunk number outside the current state,
//! and joins the file name to the target directory. [`DescriptorGuard`]
//! follows the snapshot state the donor announces and refuses any
//! descriptor that would take InnoDB out of those bounds, or put a file
//! outside the places a clone may write to ([`Places`]).
//!
//! Layouts: storage/innobase/clone/clone0desc.cc (integers big-endian).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Clone_Desc_Type values.
const DESC_STATE: u32 = 3;
const DESC_FILE_METADATA: u32 = 4;
const DESC_DATA: u32 = 5;

/// Snapshot_State values.
const STATE_FILE_COPY: u32 = 2;
const STATE_PAGE_COPY: u32 = 3;
const STATE_REDO_COPY: u32 = 4;
const STATE_DONE: u32 = 5;

/// Header: version, length, type.
const HEADER_LEN: usize = 12;
const TYPE_OFFSET: usize = 8;

/// State descriptor: state, task, chunks, files, two estimates, flags.
const STATE_STATE_OFFSET: usize = 12;
const STATE_CHUNKS_OFFSET: usize = 20;
const STATE_FILES_OFFSET: usize = 24;
const STATE_FLAGS_OFFSET: usize = 44;
const STATE_LEN: usize = 46;
const STATE_FLAG_START: u16 = 1 << 0;
const STATE_FLAG_ACK: u16 = 1 << 1;

/// File metadata descriptor: the fixed part, then the NUL-terminated name.
const FILE_STATE_OFFSET: usize = 12;
const FILE_INDEX_OFFSET: usize = 46;
const FILE_NAME_LEN_OFFSET: usize = 58;
const FILE_NAME_OFFSET: usize = 62;

/// Data descriptor: the chunk number of the block that follows.
const DATA_CHUNK_OFFSET: usize = 20;
const DATA_LEN: usize = 52;

/// InnoDB sizes a vector of pointers by a state's file count (and DDL
/// appends to it); more files than this (half a GiB of pointers) is no real
/// server.
const MAX_FILES: u32 = 1 << 26;

/// Why a descriptor was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed or out of bounds: ER_CLONE_PROTOCOL with this text.
    Protocol(&'static str),
    /// A file name that leads outside the clone's places: ER_WRONG_VALUE
    /// ("file path", name), as InnoDB reports its own path check.
    FilePath(String),
}

/// Where files named by a donor may land. Relative names always resolve
/// inside the target (or, in place, inside the data directory), so only
/// `..` is refused in them; an absolute name (a tablespace created outside
/// the donor's data directory) must lie under one of `roots`.
#[derive(Debug)]
pub struct Places {
    roots: Vec<PathBuf>,
}

impl Places {
    /// `base` resolves relative directories (the server runs in its data
    /// directory). Into a new directory a clone may write under `target`
    /// and `innodb_directories` only, never into this server's own files;
    /// in place, also under the data, undo and system-tablespace homes.
    pub fn new(base: &Path, target: Option<&Path>, innodb_directories: &str, homes: &[&str]) -> Places {
        let mut dirs: Vec<&Path> = innodb_directories.split(';').map(str::trim).map(Path::new).collect();
        match target {
            Some(t) => dirs.push(t),
            None => dirs.extend(homes.iter().map(Path::new)),
        }
        let mut roots = Vec::new();
        for dir in dirs.into_iter().filter(|d| !d.as_os_str().is_empty()) {
            let lexical = resolve_lexically(&base.join(dir));
            // A root may be a symbolic link; a donor names real paths.
            if let Ok(real) = std::fs::canonicalize(&lexical) {
                if real != lexical {
                    roots.push(real);
                }
            }
            roots.push(lexical);
        }
        Places { roots }
    }

    /// Checks a file name from a donor (bytes up to its NUL).
    fn check(&self, name: &[u8]) -> Result<(), Refusal> {
        let refuse = || Refusal::FilePath(String::from_utf8_lossy(name).into_owned());
        let path = Path::new(OsStr::from_bytes(name));
        let mut parts = 0;
        for component in path.components() {
            match component {
                Component::Normal(_) => parts += 1,
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return Err(refuse()),
            }
        }
        if parts == 0 {
            return Err(refuse());
        }
        if path.is_relative() || self.roots.iter().any(|root| path.starts_with(root) && path != root) {
            Ok(())
        } else {
            Err(refuse())
        }
    }
}

/// `dir` with `.` dropped and `..` applied to what precedes it.
fn resolve_lexically(dir: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in dir.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Checks, on the donor, the descriptor of a recipient's COM_ACK before
/// InnoDB's copy side applies it: the only acknowledgement a recipient
/// sends is of a state change. (InnoDB would otherwise run its apply code,
/// which may create files, on the donor's copy of the snapshot.)
/// The error is the text for ER_CLONE_PROTOCOL.
pub fn check_acknowledgement(desc: &[u8]) -> Result<(), &'static str> {
    if desc.len() < STATE_LEN || be32(desc, TYPE_OFFSET) != DESC_STATE || be16(desc, STATE_FLAGS_OFFSET) & STATE_FLAG_ACK == 0 {
        return Err("Wrong Clone RPC: Invalid ACK Descriptor");
    }
    Ok(())
}

/// The snapshot as InnoDB on this side will see it, one per clone (all
/// its connections), fed every InnoDB descriptor in arrival order.
#[derive(Debug)]
pub struct DescriptorGuard {
    places: Places,
    state: u32,
    chunks: u32,
    data_files: u32,
    redo_files: u32,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl DescriptorGuard {
    pub fn new(places: Places) -> Self {
        DescriptorGuard { places, state: 0, chunks: 0, data_files: 0, redo_files: 0 }
    }

    /// Checks one InnoDB descriptor and follows the state it announces.
    /// Types it has nothing to check (locator, task) pass as they are:
    /// InnoDB validates those itself.
    pub fn check(&mut self, desc: &[u8]) -> Result<(), Refusal> {
        if desc.len() < HEADER_LEN {
            return Err(Refusal::Protocol("Wrong Clone RPC: Invalid Descriptor"));
        }
        match be32(desc, TYPE_OFFSET) {
            DESC_STATE => self.state_change(desc),
            DESC_FILE_METADATA => self.file(desc),
            DESC_DATA => self.data(desc),
            _ => Ok(()),
        }
    }

    fn state_change(&mut self, desc: &[u8]) -> Result<(), Refusal> {
        const INVALID: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid State Descriptor");
        if desc.len() < STATE_LEN {
            return Err(INVALID);
        }
        let flags = be16(desc, STATE_FLAGS_OFFSET);
        // Acknowledgements keep the connection alive; only a start moves.
        if flags & STATE_FLAG_ACK != 0 || flags & STATE_FLAG_START == 0 {
            return Ok(());
        }
        let state = be32(desc, STATE_STATE_OFFSET);
        let files = be32(desc, STATE_FILES_OFFSET);
        match state {
            STATE_FILE_COPY | STATE_REDO_COPY if files > MAX_FILES => return Err(INVALID),
            STATE_FILE_COPY => self.data_files = files,
            STATE_REDO_COPY => self.redo_files = files,
            STATE_PAGE_COPY | STATE_DONE => {}
            _ => return Err(INVALID),
        }
        self.state = state;
        self.chunks = be32(desc, STATE_CHUNKS_OFFSET);
        Ok(())
    }

    fn file(&mut self, desc: &[u8]) -> Result<(), Refusal> {
        const INVALID: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid File Descriptor");
        const INDEX: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid File Index");
        if desc.len() < FILE_NAME_OFFSET {
            return Err(INVALID);
        }
        let name_len = be32(desc, FILE_NAME_LEN_OFFSET) as usize;
        let Some(name) = desc.get(FILE_NAME_OFFSET..).and_then(|rest| rest.get(..name_len)) else {
            return Err(INVALID);
        };
        let desc_state = be32(desc, FILE_STATE_OFFSET);
        match name.split_last() {
            // InnoDB reads the name as a C string: up to the first NUL.
            Some((0, text)) => {
                let text = text.split(|&b| b == 0).next().unwrap_or_default();
                self.places.check(text)?;
            }
            Some(_) => return Err(INVALID),
            // Only redo files come without a name (theirs is fixed).
            None if self.state == STATE_REDO_COPY => {}
            None => return Err(INVALID),
        }
        let index = be32(desc, FILE_INDEX_OFFSET);
        match self.state {
            STATE_FILE_COPY | STATE_PAGE_COPY => {
                // A file created by DDL is announced with the next state and
                // appended; InnoDB asserts it is exactly the next index.
                let next = if self.state == STATE_FILE_COPY { STATE_PAGE_COPY } else { STATE_REDO_COPY };
                if desc_state == next && index == self.data_files && index < MAX_FILES {
                    self.data_files += 1;
                    Ok(())
                } else if index < self.data_files {
                    Ok(())
                } else {
                    Err(INDEX)
                }
            }
            STATE_REDO_COPY if index < self.redo_files => Ok(()),
            STATE_REDO_COPY => Err(INDEX),
            _ => Err(INVALID),
        }
    }

    fn data(&self, desc: &[u8]) -> Result<(), Refusal> {
        if desc.len() < DATA_LEN {
            return Err(Refusal::Protocol("Wrong Clone RPC: Invalid Data Descriptor"));
        }
        // Chunks count from 1 within the current state.
        let chunk = be32(desc, DATA_CHUNK_OFFSET);
        if chunk == 0 || chunk > self.chunks {
            return Err(Refusal::Protocol("Wrong Clone RPC: Invalid Chunk Number"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u32, len: usize) -> Vec<u8> {
        let mut d = vec![0u8; len];
        d[0..4].copy_from_slice(&1u32.to_be_bytes());
        d[4..8].copy_from_slice(&(len as u32).to_be_bytes());
        d[8..12].copy_from_slice(&kind.to_be_bytes());
        d
    }

    fn state(state: u32, chunks: u32, files: u32, flags: u16) -> Vec<u8> {
        let mut d = header(DESC_STATE, STATE_LEN);
        d[STATE_STATE_OFFSET..][..4].copy_from_slice(&state.to_be_bytes());
        d[STATE_CHUNKS_OFFSET..][..4].copy_from_slice(&chunks.to_be_bytes());
        d[STATE_FILES_OFFSET..][..4].copy_from_slice(&files.to_be_bytes());
        d[STATE_FLAGS_OFFSET..][..2].copy_from_slice(&flags.to_be_bytes());
        d
    }

    fn file(state: u32, index: u32, name: &[u8]) -> Vec<u8> {
        let mut d = header(DESC_FILE_METADATA, FILE_NAME_OFFSET);
        d[FILE_STATE_OFFSET..][..4].copy_from_slice(&state.to_be_bytes());
        d[FILE_INDEX_OFFSET..][..4].copy_from_slice(&index.to_be_bytes());
        let len = if name.is_empty() { 0 } else { name.len() + 1 };
        d[FILE_NAME_LEN_OFFSET..][..4].copy_from_slice(&(len as u32).to_be_bytes());
        if !name.is_empty() {
            d.extend_from_slice(name);
            d.push(0);
        }
        d
    }

    fn data(chunk: u32) -> Vec<u8> {
        let mut d = header(DESC_DATA, DATA_LEN);
        d[DATA_CHUNK_OFFSET..][..4].copy_from_slice(&chunk.to_be_bytes());
        d
    }

    fn places_in_new_dir() -> Places {
        Places::new(Path::new("/var/lib/mysql"), Some(Path::new("/clones/c1")), "/ext1;ext2", &["/var/lib/mysql"])
    }

    fn guard_in_file_copy(files: u32) -> DescriptorGuard {
        let mut g = DescriptorGuard::new(places_in_new_dir());
        g.check(&state(STATE_FILE_COPY, 10, files, STATE_FLAG_START)).unwrap();
        g
    }

    fn is_path_refusal(r: Result<(), Refusal>) -> bool {
        matches!(r, Err(Refusal::FilePath(_)))
    }

    #[test]
    fn relative_names_stay_inside_and_parent_steps_are_refused() {
        let p = places_in_new_dir();
        for ok in [&b"ibdata1"[..], b"./test/t1.ibd", b"undo_001", b"db/./t.ibd", b"ib_buffer_pool"] {
            assert_eq!(p.check(ok), Ok(()), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [&b"../escape.ibd"[..], b"./test/../../x.ibd", b"db/..", b".", b"./", b"", b"/"] {
            assert!(is_path_refusal(p.check(bad)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn absolute_names_must_lie_under_a_root() {
        let p = places_in_new_dir();
        assert_eq!(p.check(b"/clones/c1/test/t.ibd"), Ok(()));
        assert_eq!(p.check(b"/ext1/db/t.ibd"), Ok(()));
        assert_eq!(p.check(b"/var/lib/mysql/ext2/t.ibd"), Ok(()), "relative root resolves from the data directory");
        assert_eq!(p.check(b"//ext1//db/./t.ibd"), Ok(()));
        for bad in [&b"/etc/passwd"[..], b"/ext1", b"/ext10/t.ibd", b"/ext1/../etc/x.ibd", b"/var/lib/mysql/mysql.ibd", b"/clones/c1x/t.ibd"] {
            assert!(is_path_refusal(p.check(bad)), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn in_place_the_server_homes_are_places_too() {
        let p = Places::new(Path::new("/var/lib/mysql/"), None, "", &["/var/lib/mysql/", "", "../undo"]);
        assert_eq!(p.check(b"/var/lib/mysql/db/t.ibd"), Ok(()));
        assert_eq!(p.check(b"/var/lib/undo/undo_003"), Ok(()));
        assert!(is_path_refusal(p.check(b"/var/lib/other/t.ibd")));
    }

    #[test]
    fn file_names_are_checked_in_descriptors() {
        let mut g = guard_in_file_copy(3);
        assert_eq!(g.check(&file(STATE_FILE_COPY, 0, b"./db/t.ibd")), Ok(()));
        assert!(is_path_refusal(g.check(&file(STATE_FILE_COPY, 1, b"../../etc/cron.d/x"))));
        // What InnoDB reads ends at the first NUL.
        assert!(is_path_refusal(g.check(&file(STATE_FILE_COPY, 1, b"/etc/x\0./db/t.ibd"))));
        let mut unterminated = file(STATE_FILE_COPY, 1, b"db/t.ibd");
        unterminated.pop();
        let len = unterminated.len() - FILE_NAME_OFFSET;
        unterminated[FILE_NAME_LEN_OFFSET..][..4].copy_from_slice(&(len as u32).to_be_bytes());
        assert!(matches!(g.check(&unterminated), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&file(STATE_FILE_COPY, 1, b"")), Err(Refusal::Protocol(_))), "only redo files lack a name");
    }

    #[test]
    fn file_indexes_stay_within_the_announced_files() {
        let mut g = guard_in_file_copy(2);
        assert_eq!(g.check(&file(STATE_FILE_COPY, 1, b"a.ibd")), Ok(()));
        assert!(matches!(g.check(&file(STATE_FILE_COPY, 2, b"a.ibd")), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&file(STATE_FILE_COPY, u32::MAX, b"a.ibd")), Err(Refusal::Protocol(_))));
        // A file created by DDL comes with the next state, appended.
        assert_eq!(g.check(&file(STATE_PAGE_COPY, 2, b"new.ibd")), Ok(()));
        assert_eq!(g.check(&file(STATE_PAGE_COPY, 3, b"new2.ibd")), Ok(()));
        assert!(matches!(g.check(&file(STATE_PAGE_COPY, 5, b"gap.ibd")), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&file(STATE_REDO_COPY, 4, b"skip.ibd")), Err(Refusal::Protocol(_))), "not the next state");
        // Page copy keeps the data files; redo copy has its own.
        g.check(&state(STATE_PAGE_COPY, 4, 100, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&file(STATE_PAGE_COPY, 3, b"a.ibd")), Ok(()));
        g.check(&state(STATE_REDO_COPY, 4, 2, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&file(STATE_REDO_COPY, 1, b"")), Ok(()));
        assert!(matches!(g.check(&file(STATE_REDO_COPY, 2, b"")), Err(Refusal::Protocol(_))));
        g.check(&state(STATE_DONE, 0, 0, STATE_FLAG_START)).unwrap();
        assert!(matches!(g.check(&file(STATE_DONE, 0, b"a.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn files_added_by_ddl_stop_at_the_bound() {
        let mut g = guard_in_file_copy(MAX_FILES);
        assert!(matches!(g.check(&file(STATE_PAGE_COPY, MAX_FILES, b"one-too-many.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn files_before_any_state_are_refused() {
        let mut g = DescriptorGuard::new(places_in_new_dir());
        assert!(matches!(g.check(&file(STATE_FILE_COPY, 0, b"a.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn states_are_followed_only_on_start_and_bounded() {
        let mut g = guard_in_file_copy(1);
        // An acknowledgement or an end of state changes nothing.
        g.check(&state(STATE_REDO_COPY, 1, 9, STATE_FLAG_ACK | STATE_FLAG_START)).unwrap();
        g.check(&state(STATE_REDO_COPY, 1, 9, 0)).unwrap();
        assert_eq!(g.check(&file(STATE_FILE_COPY, 0, b"a.ibd")), Ok(()));
        assert!(g.check(&state(77, 1, 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&state(1, 1, 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&state(STATE_FILE_COPY, 1, MAX_FILES + 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&state(STATE_FILE_COPY, 1, 1, STATE_FLAG_START)[..STATE_LEN - 1]).is_err());
    }

    #[test]
    fn data_chunks_lie_within_the_state() {
        let g = guard_in_file_copy(1);
        assert_eq!(g.data(&data(1)), Ok(()));
        assert_eq!(g.data(&data(10)), Ok(()));
        assert!(g.data(&data(0)).is_err());
        assert!(g.data(&data(11)).is_err());
        assert!(g.data(&data(1)[..DATA_LEN - 1]).is_err());
    }

    #[test]
    fn only_state_acknowledgements_are_acknowledgements() {
        assert_eq!(check_acknowledgement(&state(STATE_FILE_COPY, 1, 1, STATE_FLAG_ACK)), Ok(()));
        assert!(check_acknowledgement(&state(STATE_FILE_COPY, 1, 1, STATE_FLAG_START)).is_err());
        assert!(check_acknowledgement(&state(STATE_FILE_COPY, 1, 1, STATE_FLAG_ACK)[..STATE_LEN - 1]).is_err());
        assert!(check_acknowledgement(&file(STATE_FILE_COPY, 0, b"a.ibd")).is_err());
        assert!(check_acknowledgement(&data(1)).is_err());
        assert!(check_acknowledgement(b"").is_err());
    }

    #[test]
    fn truncated_and_random_descriptors_never_panic() {
        let mut next = crate::protocol::xorshift();
        let samples = [state(STATE_FILE_COPY, 5, 5, STATE_FLAG_START), file(STATE_FILE_COPY, 1, b"./db/t.ibd"), data(3)];
        let mut g = guard_in_file_copy(5);
        for sample in &samples {
            for cut in 0..sample.len() {
                let _ = g.check(&sample[..cut]);
            }
        }
        for _ in 0..20_000 {
            let mut d = samples[(next() % 3) as usize].clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % d.len();
                d[at] = next() as u8;
            }
            let _ = g.check(&d);
            let _ = check_acknowledgement(&d);
        }
    }
}
