//! InnoDB's descriptors, which travel opaque inside COM_RES_DATA_DESC, as
//! far as the recipient must check them before InnoDB applies them.
//!
//! InnoDB trusts a donor more than a remote party deserves: it stores a
//! file's context at the file index without a bounds check, asserts
//! (aborting mysqld) on a chunk number outside the current state, sizes its
//! file vectors and chunk bitmap by the counts a state's start announces,
//! reads fixed offsets of a data block whose length it takes from the
//! descriptor, and joins the file name to the target directory.
//! [`DescriptorGuard`] follows the snapshot exactly as InnoDB's apply side
//! holds it and refuses any descriptor that would take InnoDB out of those
//! bounds, or put a file outside the places a clone may write to
//! ([`Places`]).
//!
//! How InnoDB moves between states (clone0clone.cc, change_state): only
//! the master task's START sets the counts; a worker's START only names the
//! state it waits for, and the master changes the snapshot once every task
//! has arrived. So the counts of a state are fixed by the master's START,
//! every task's descriptors are checked against the state that task is in
//! ([`TaskView`]), and a worker's START must agree with the master's.
//!
//! Layouts: storage/innobase/clone/clone0desc.cc (integers big-endian).

use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::hash::BuildHasher;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Clone_Desc_Type values.
const DESC_STATE: u32 = 3;
const DESC_FILE_METADATA: u32 = 4;
const DESC_DATA: u32 = 5;

/// Snapshot_State values.
const STATE_INIT: u32 = 1;
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
const STATE_ESTIMATE_OFFSET: usize = 28;
const STATE_DISK_ESTIMATE_OFFSET: usize = 36;
const STATE_FLAGS_OFFSET: usize = 44;
const STATE_LEN: usize = 46;
const STATE_FLAG_START: u16 = 1 << 0;
const STATE_FLAG_ACK: u16 = 1 << 1;

/// File metadata descriptor: the fixed part, then the NUL-terminated name.
const FILE_STATE_OFFSET: usize = 12;
const FILE_FLAGS_OFFSET: usize = 40;
const FILE_INDEX_OFFSET: usize = 46;
const FILE_BEGIN_CHUNK_OFFSET: usize = 50;
const FILE_END_CHUNK_OFFSET: usize = 54;
const FILE_NAME_LEN_OFFSET: usize = 58;
const FILE_NAME_OFFSET: usize = 62;
/// CLONE_DESC_FILE_FLAG_DELETED (bit 5, counted from 1).
const FILE_FLAG_DELETED: u16 = 1 << 4;

/// Data descriptor: the state, the chunk number, the file index, and the
/// length and file offset of the block that follows.
const DATA_STATE_OFFSET: usize = 12;
const DATA_CHUNK_OFFSET: usize = 20;
const DATA_FILE_INDEX_OFFSET: usize = 28;
const DATA_LEN_OFFSET: usize = 32;
const DATA_FILE_OFFSET: usize = 36;
const DATA_LEN: usize = 52;

/// At most this many files in a state (InnoDB allocates a pointer per file
/// from the count a START announces, and DDL appends to it): 32 MiB of
/// pointers. Four million tablespaces is far beyond any real server (a
/// donor sends one file per tablespace, redo file or undo file).
pub const MAX_FILES: u32 = 1 << 22;
/// At most this many chunks in a state (InnoDB zero-fills a bitmap of half
/// a byte per chunk): 32 MiB. A chunk is 4096 pages (clone0snapshot.h,
/// SNAPSHOT_DEF_CHUNK_SIZE_POW2; 64 pages is a block, the unit of a data
/// descriptor), so this is 4 PiB of data at the default 16 KiB page size
/// (1 PiB at 4 KiB pages).
pub const MAX_CHUNKS: u32 = 1 << 26;

/// Why a descriptor was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `real_path` resolves symbolic links (the caller's file system; None
    /// where a directory does not exist yet).
    pub fn new(base: &Path, target: Option<&Path>, innodb_directories: &str, homes: &[&str], real_path: impl Fn(&Path) -> Option<PathBuf>) -> Places {
        let mut dirs: Vec<&Path> = innodb_directories.split(';').map(str::trim).map(Path::new).collect();
        match target {
            Some(t) => dirs.push(t),
            None => dirs.extend(homes.iter().map(Path::new)),
        }
        let mut roots = Vec::new();
        for dir in dirs.into_iter().filter(|d| !d.as_os_str().is_empty()) {
            let lexical = resolve_lexically(&base.join(dir));
            // A root may be a symbolic link; a donor names real paths.
            if let Some(real) = real_path(&lexical) {
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

/// What the master's START of the file copy announces: the bytes the
/// clone will copy and the bytes its files will take on disk (InnoDB's own
/// free-space check compares the latter with the target's free space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyEstimate {
    pub bytes: u64,
    pub disk_bytes: u64,
}

/// The estimate in `desc` when it is the START of the file copy; None for
/// any other descriptor.
pub fn file_copy_estimate(desc: &[u8]) -> Option<CopyEstimate> {
    let is_start = desc.len() >= STATE_LEN
        && be32(desc, TYPE_OFFSET) == DESC_STATE
        && be32(desc, STATE_STATE_OFFSET) == STATE_FILE_COPY
        && be16(desc, STATE_FLAGS_OFFSET) & (STATE_FLAG_START | STATE_FLAG_ACK) == STATE_FLAG_START;
    is_start.then(|| CopyEstimate { bytes: be64(desc, STATE_ESTIMATE_OFFSET), disk_bytes: be64(desc, STATE_DISK_ESTIMATE_OFFSET) })
}

/// The acknowledgement InnoDB's apply side sends for `desc` when it is
/// the end of the snapshot's first state (INIT, which has no data): the
/// same descriptor, flagged as an acknowledgement. The donor announces the
/// file copy only after it. None for any other descriptor.
pub fn init_acknowledgement(desc: &[u8]) -> Option<Vec<u8>> {
    let is_init_end = desc.len() >= STATE_LEN
        && be32(desc, TYPE_OFFSET) == DESC_STATE
        && be32(desc, STATE_STATE_OFFSET) == STATE_INIT
        && be16(desc, STATE_FLAGS_OFFSET) & (STATE_FLAG_START | STATE_FLAG_ACK) == 0;
    is_init_end.then(|| {
        let mut ack = desc[..STATE_LEN].to_vec();
        ack[STATE_FLAGS_OFFSET + 1] |= STATE_FLAG_ACK as u8;
        ack
    })
}

/// The counts a state's START announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    chunks: u32,
    files: u32,
}

/// One task (connection) of the apply side: the state its descriptors
/// belong to, and whether it is the master, whose START sets the counts.
#[derive(Debug)]
pub struct TaskView {
    master: bool,
    /// 0 until the task's first descriptor: a worker that attaches in the
    /// middle of a state gets no START and is in the master's state.
    state: u32,
}

impl TaskView {
    pub fn master() -> Self {
        TaskView { master: true, state: 0 }
    }

    pub fn worker() -> Self {
        TaskView { master: false, state: 0 }
    }
}

/// What the caller must do with a descriptor that passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// Apply it as it is.
    Pass,
    /// The DATA message that follows must carry exactly this many bytes,
    /// for this offset in its file.
    Data { len: u32, offset: u64 },
}

/// The snapshot as InnoDB's apply side holds it, one per clone (all its
/// connections); every InnoDB descriptor is checked here, with the view of
/// the task that received it, before InnoDB sees it.
#[derive(Debug)]
pub struct DescriptorGuard {
    places: Places,
    /// Per state (index: Snapshot_State), the counts of the master's START.
    /// Fixed once set: InnoDB holds them while any task is in that state.
    counts: [Option<Counts>; STATE_DONE as usize + 1],
    /// A worker's START for the state after the master's: the master's
    /// START must announce the same (InnoDB takes the state a worker asks
    /// for, but the master's counts).
    ahead: Option<(u32, Counts)>,
    /// The state of the master's latest START.
    master_state: u32,
    /// Data files: as announced, then with those DDL appended.
    data_files: u32,
    /// The names of the files DDL appended since the master's latest START,
    /// at `data_files - appended.len()` on: after a network failure the
    /// donor restarts the state it moved to and sends every file DDL
    /// touched again (clone0copy.cc, copy and send_all_ddl_metadata),
    /// and InnoDB takes a file it holds as known (clone0apply.cc,
    /// apply_file_metadata). Kept as keyed hashes: up to MAX_FILES names
    /// of a donor's choosing would otherwise take what it likes here.
    appended: Vec<u64>,
    /// The key of those hashes, random: a donor cannot make two names
    /// collide.
    names: RandomState,
    /// Data files InnoDB holds in page copy: those of file copy and those
    /// DDL appended before the page copy's START.
    page_files: u32,
    redo_files: u32,
}

/// Where a data block of file copy lies: its file (the index the file's
/// descriptor gave), its offset there and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPlace {
    pub file: u32,
    pub offset: u64,
    pub len: u32,
}

/// A descriptor of a file in file copy: its index and its name as sent
/// (NUL-terminated), for a resumed clone (`crate::reuse`) to know which
/// file a block belongs to. Other states, types and malformed descriptors
/// give None; the guard checks them.
pub fn file_copy_file(desc: &[u8]) -> Option<(u32, &[u8])> {
    if desc.len() < FILE_NAME_OFFSET || be32(desc, TYPE_OFFSET) != DESC_FILE_METADATA || be32(desc, FILE_STATE_OFFSET) != STATE_FILE_COPY {
        return None;
    }
    let name = desc.get(FILE_NAME_OFFSET..)?.get(..be32(desc, FILE_NAME_LEN_OFFSET) as usize)?;
    let name = name.split(|&b| b == 0).next()?;
    Some((be32(desc, FILE_INDEX_OFFSET), name))
}

/// Where the block of a data descriptor of file copy lies; None for other
/// states, types and malformed descriptors.
pub fn file_copy_block(desc: &[u8]) -> Option<BlockPlace> {
    if desc.len() < DATA_LEN || be32(desc, TYPE_OFFSET) != DESC_DATA || be32(desc, DATA_STATE_OFFSET) != STATE_FILE_COPY {
        return None;
    }
    Some(BlockPlace { file: be32(desc, DATA_FILE_INDEX_OFFSET), offset: be64(desc, DATA_FILE_OFFSET), len: be32(desc, DATA_LEN_OFFSET) })
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    u64::from(be32(b, at)) << 32 | u64::from(be32(b, at + 4))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

const INVALID_STATE: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid State Descriptor");
const INVALID_FILE: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid File Descriptor");
const INVALID_INDEX: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid File Index");
const INVALID_CHUNK: Refusal = Refusal::Protocol("Wrong Clone RPC: Invalid Chunk Number");

impl DescriptorGuard {
    pub fn new(places: Places) -> Self {
        DescriptorGuard {
            places,
            counts: [None; STATE_DONE as usize + 1],
            ahead: None,
            master_state: 0,
            data_files: 0,
            appended: Vec::new(),
            names: RandomState::new(),
            page_files: 0,
            redo_files: 0,
        }
    }

    /// Checks one InnoDB descriptor received by `task` and follows the
    /// state it announces. Types it has nothing to check (locator, task)
    /// pass as they are: InnoDB validates those itself.
    pub fn check(&mut self, task: &mut TaskView, desc: &[u8]) -> Result<Checked, Refusal> {
        if desc.len() < HEADER_LEN {
            return Err(Refusal::Protocol("Wrong Clone RPC: Invalid Descriptor"));
        }
        if task.state == 0 {
            task.state = self.master_state;
        }
        match be32(desc, TYPE_OFFSET) {
            DESC_STATE => self.state_change(task, desc).map(|()| Checked::Pass),
            DESC_FILE_METADATA => self.file(task, desc),
            DESC_DATA => self.data(task, desc),
            _ => Ok(Checked::Pass),
        }
    }

    /// The chunk count of the state `task` is in.
    fn chunks(&self, task: &TaskView) -> u32 {
        self.counts.get(task.state as usize).copied().flatten().map_or(0, |c| c.chunks)
    }

    fn state_change(&mut self, task: &mut TaskView, desc: &[u8]) -> Result<(), Refusal> {
        if desc.len() < STATE_LEN {
            return Err(INVALID_STATE);
        }
        let flags = be16(desc, STATE_FLAGS_OFFSET);
        // Acknowledgements keep the connection alive, and an end of state
        // changes no count; only a start moves.
        if flags & STATE_FLAG_ACK != 0 || flags & STATE_FLAG_START == 0 {
            return Ok(());
        }
        let state = be32(desc, STATE_STATE_OFFSET);
        let counts = Counts { chunks: be32(desc, STATE_CHUNKS_OFFSET), files: be32(desc, STATE_FILES_OFFSET) };
        let bounded = match state {
            STATE_FILE_COPY | STATE_REDO_COPY => counts.files <= MAX_FILES && counts.chunks <= MAX_CHUNKS,
            // Page copy counts pages in `files`: InnoDB sizes nothing by it.
            STATE_PAGE_COPY => counts.chunks <= MAX_CHUNKS,
            STATE_DONE => counts.chunks == 0,
            _ => false,
        };
        // States only move forward; a restart repeats the current one.
        if !bounded || state < task.state || state < self.master_state {
            return Err(INVALID_STATE);
        }
        let known = self.counts[state as usize];
        if known.is_some_and(|k| k != counts) {
            return Err(INVALID_STATE);
        }
        if task.master {
            if let Some(ahead) = self.ahead.take() {
                if ahead != (state, counts) {
                    return Err(INVALID_STATE);
                }
            }
            self.counts[state as usize] = Some(counts);
            self.master_state = state;
            // InnoDB sizes its file vectors anew (a restart shrinks them
            // back to the announced count).
            match state {
                STATE_FILE_COPY => self.data_files = counts.files,
                STATE_PAGE_COPY => self.page_files = self.data_files,
                STATE_REDO_COPY => self.redo_files = counts.files,
                _ => {}
            }
            // What DDL appended is now among the state's files: a repeat
            // is checked as any of those.
            self.appended.clear();
        } else if known.is_none() {
            // Ahead of the master: InnoDB will move every task to the state
            // the first one asks for, so all of them must ask the same.
            match self.ahead {
                Some(ahead) if ahead != (state, counts) => return Err(INVALID_STATE),
                _ => self.ahead = Some((state, counts)),
            }
        }
        task.state = state;
        Ok(())
    }

    fn file(&mut self, task: &TaskView, desc: &[u8]) -> Result<Checked, Refusal> {
        if desc.len() < FILE_NAME_OFFSET {
            return Err(INVALID_FILE);
        }
        let name_len = be32(desc, FILE_NAME_LEN_OFFSET) as usize;
        let Some(name) = desc.get(FILE_NAME_OFFSET..).and_then(|rest| rest.get(..name_len)) else {
            return Err(INVALID_FILE);
        };
        let text: &[u8] = match name.split_last() {
            // InnoDB reads the name as a C string: up to the first NUL.
            Some((0, text)) => {
                let text = text.split(|&b| b == 0).next().unwrap_or_default();
                self.places.check(text)?;
                text
            }
            Some(_) => return Err(INVALID_FILE),
            // Only redo files come without a name (theirs is fixed).
            None if task.state == STATE_REDO_COPY => &[],
            None => return Err(INVALID_FILE),
        };
        let desc_state = be32(desc, FILE_STATE_OFFSET);
        let index = be32(desc, FILE_INDEX_OFFSET);
        // The files InnoDB holds while the task is in its state.
        let (files, next) = match task.state {
            STATE_FILE_COPY => (self.counts[STATE_FILE_COPY as usize].map_or(0, |c| c.files), STATE_PAGE_COPY),
            STATE_PAGE_COPY => (self.page_files, STATE_REDO_COPY),
            STATE_REDO_COPY => (self.redo_files, STATE_DONE),
            _ => return Err(INVALID_FILE),
        };
        // A data file created by DDL: the master announces it with the next
        // state, before that state's START, and InnoDB appends it (asserting
        // it is exactly the next index).
        if desc_state == next && task.state != STATE_REDO_COPY && task.master {
            if index == self.data_files && index < MAX_FILES {
                self.data_files += 1;
                self.appended.push(self.names.hash_one(text));
                return Ok(Checked::Pass);
            }
            // Sent again by a restart: the same file, which the donor names
            // anew only when a state begins (a rename or drop meanwhile sets
            // only a flag).
            let first = self.data_files - self.appended.len() as u32;
            if let Some(known) = index.checked_sub(first).and_then(|i| self.appended.get(i as usize)) {
                return if *known == self.names.hash_one(text) { Ok(Checked::Pass) } else { Err(INVALID_FILE) };
            }
        }
        if index >= files {
            return Err(INVALID_INDEX);
        }
        self.deleted_chunks(task, desc, desc_state)?;
        Ok(Checked::Pass)
    }

    /// A file dropped during the copy: InnoDB marks its chunks done, from
    /// its begin to its end chunk in file copy, its begin chunk alone in
    /// page copy (clone0apply.cc, apply_file_delete).
    fn deleted_chunks(&self, task: &TaskView, desc: &[u8], desc_state: u32) -> Result<(), Refusal> {
        if be16(desc, FILE_FLAGS_OFFSET) & FILE_FLAG_DELETED == 0 || desc_state != task.state {
            return Ok(());
        }
        let chunks = self.chunks(task);
        let begin = be32(desc, FILE_BEGIN_CHUNK_OFFSET);
        let end = if task.state == STATE_PAGE_COPY { begin } else { be32(desc, FILE_END_CHUNK_OFFSET) };
        // An empty file has no chunk: begin is one past end.
        if begin > end || (begin >= 1 && end <= chunks) {
            Ok(())
        } else {
            Err(INVALID_CHUNK)
        }
    }

    fn data(&self, task: &TaskView, desc: &[u8]) -> Result<Checked, Refusal> {
        if desc.len() < DATA_LEN {
            return Err(Refusal::Protocol("Wrong Clone RPC: Invalid Data Descriptor"));
        }
        // Chunks count from 1 within the task's state.
        let chunk = be32(desc, DATA_CHUNK_OFFSET);
        if chunk == 0 || chunk > self.chunks(task) {
            return Err(INVALID_CHUNK);
        }
        Ok(Checked::Data { len: be32(desc, DATA_LEN_OFFSET), offset: be64(desc, DATA_FILE_OFFSET) })
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

    fn deleted(state: u32, index: u32, begin: u32, end: u32) -> Vec<u8> {
        let mut d = file(state, index, b"gone.ibd");
        d[FILE_FLAGS_OFFSET..][..2].copy_from_slice(&FILE_FLAG_DELETED.to_be_bytes());
        d[FILE_BEGIN_CHUNK_OFFSET..][..4].copy_from_slice(&begin.to_be_bytes());
        d[FILE_END_CHUNK_OFFSET..][..4].copy_from_slice(&end.to_be_bytes());
        d
    }

    fn places_in_new_dir() -> Places {
        Places::new(Path::new("/var/lib/mysql"), Some(Path::new("/clones/c1")), "/ext1;ext2", &["/var/lib/mysql"], |_| None)
    }

    fn guard_in_file_copy(files: u32) -> (DescriptorGuard, TaskView) {
        let mut g = DescriptorGuard::new(places_in_new_dir());
        let mut m = TaskView::master();
        g.check(&mut m, &state(STATE_FILE_COPY, 10, files, STATE_FLAG_START)).unwrap();
        (g, m)
    }

    fn is_path_refusal<T>(r: Result<T, Refusal>) -> bool {
        matches!(r, Err(Refusal::FilePath(_)))
    }

    #[test]
    fn the_file_copy_start_carries_the_estimate() {
        let mut start = state(STATE_FILE_COPY, 10, 3, STATE_FLAG_START);
        start[STATE_ESTIMATE_OFFSET..][..8].copy_from_slice(&(5u64 << 32 | 7).to_be_bytes());
        start[STATE_DISK_ESTIMATE_OFFSET..][..8].copy_from_slice(&486_789_120u64.to_be_bytes());
        assert_eq!(file_copy_estimate(&start), Some(CopyEstimate { bytes: 5 << 32 | 7, disk_bytes: 486_789_120 }));
        // Its end, its acknowledgement, another state, a short one, a file.
        assert_eq!(file_copy_estimate(&state(STATE_FILE_COPY, 10, 3, 0)), None);
        assert_eq!(file_copy_estimate(&state(STATE_FILE_COPY, 10, 3, STATE_FLAG_START | STATE_FLAG_ACK)), None);
        assert_eq!(file_copy_estimate(&state(STATE_PAGE_COPY, 10, 3, STATE_FLAG_START)), None);
        assert_eq!(file_copy_estimate(&start[..STATE_LEN - 1]), None);
        assert_eq!(file_copy_estimate(&file(STATE_FILE_COPY, 0, b"ibdata1")), None);
    }

    #[test]
    fn only_the_end_of_init_is_acknowledged_before_the_file_copy() {
        let end = state(STATE_INIT, 0, 0, 0);
        let ack = init_acknowledgement(&end).unwrap();
        assert_eq!(check_acknowledgement(&ack), Ok(()));
        assert_eq!(ack[..STATE_FLAGS_OFFSET], end[..STATE_FLAGS_OFFSET]);
        // A keep-alive (START and ACK), a start, another state's end.
        assert_eq!(init_acknowledgement(&state(STATE_INIT, 0, 0, STATE_FLAG_START | STATE_FLAG_ACK)), None);
        assert_eq!(init_acknowledgement(&state(STATE_INIT, 0, 0, STATE_FLAG_START)), None);
        assert_eq!(init_acknowledgement(&state(STATE_FILE_COPY, 0, 0, 0)), None);
        assert_eq!(init_acknowledgement(&end[..STATE_LEN - 1]), None);
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
        let p = Places::new(Path::new("/var/lib/mysql/"), None, "", &["/var/lib/mysql/", "", "../undo"], |_| None);
        assert_eq!(p.check(b"/var/lib/mysql/db/t.ibd"), Ok(()));
        assert_eq!(p.check(b"/var/lib/undo/undo_003"), Ok(()));
        assert!(is_path_refusal(p.check(b"/var/lib/other/t.ibd")));
    }

    #[test]
    fn a_place_behind_a_symbolic_link_admits_its_real_path() {
        let real = |d: &Path| (d == Path::new("/clones/c1")).then(|| PathBuf::from("/mnt/big/c1"));
        let p = Places::new(Path::new("/var/lib/mysql"), Some(Path::new("/clones/c1")), "", &[], real);
        assert_eq!(p.check(b"/mnt/big/c1/db/t.ibd"), Ok(()));
        assert_eq!(p.check(b"/clones/c1/db/t.ibd"), Ok(()));
        assert!(is_path_refusal(p.check(b"/mnt/big/other/t.ibd")));
        assert!(is_path_refusal(p.check(b"/mnt/big/c1")));
    }

    #[test]
    fn file_names_are_checked_in_descriptors() {
        let (mut g, mut m) = guard_in_file_copy(3);
        assert_eq!(g.check(&mut m, &file(STATE_FILE_COPY, 0, b"./db/t.ibd")), Ok(Checked::Pass));
        assert!(is_path_refusal(g.check(&mut m, &file(STATE_FILE_COPY, 1, b"../../etc/cron.d/x"))));
        // What InnoDB reads ends at the first NUL.
        assert!(is_path_refusal(g.check(&mut m, &file(STATE_FILE_COPY, 1, b"/etc/x\0./db/t.ibd"))));
        let mut unterminated = file(STATE_FILE_COPY, 1, b"db/t.ibd");
        unterminated.pop();
        let len = unterminated.len() - FILE_NAME_OFFSET;
        unterminated[FILE_NAME_LEN_OFFSET..][..4].copy_from_slice(&(len as u32).to_be_bytes());
        assert!(matches!(g.check(&mut m, &unterminated), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&mut m, &file(STATE_FILE_COPY, 1, b"")), Err(Refusal::Protocol(_))), "only redo files lack a name");
    }

    #[test]
    fn file_indexes_stay_within_the_announced_files() {
        let (mut g, mut m) = guard_in_file_copy(2);
        assert_eq!(g.check(&mut m, &file(STATE_FILE_COPY, 1, b"a.ibd")), Ok(Checked::Pass));
        assert!(matches!(g.check(&mut m, &file(STATE_FILE_COPY, 2, b"a.ibd")), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&mut m, &file(STATE_FILE_COPY, u32::MAX, b"a.ibd")), Err(Refusal::Protocol(_))));
        // A file created by DDL comes with the next state, appended.
        assert_eq!(g.check(&mut m, &file(STATE_PAGE_COPY, 2, b"new.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut m, &file(STATE_PAGE_COPY, 3, b"new2.ibd")), Ok(Checked::Pass));
        assert!(matches!(g.check(&mut m, &file(STATE_PAGE_COPY, 5, b"gap.ibd")), Err(Refusal::Protocol(_))));
        assert!(matches!(g.check(&mut m, &file(STATE_REDO_COPY, 4, b"skip.ibd")), Err(Refusal::Protocol(_))), "not the next state");
        // Page copy keeps the data files; redo copy has its own.
        g.check(&mut m, &state(STATE_PAGE_COPY, 4, 100, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut m, &file(STATE_PAGE_COPY, 3, b"a.ibd")), Ok(Checked::Pass));
        g.check(&mut m, &state(STATE_REDO_COPY, 4, 2, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut m, &file(STATE_REDO_COPY, 1, b"")), Ok(Checked::Pass));
        assert!(matches!(g.check(&mut m, &file(STATE_REDO_COPY, 2, b"")), Err(Refusal::Protocol(_))));
        g.check(&mut m, &state(STATE_DONE, 0, 0, STATE_FLAG_START)).unwrap();
        assert!(matches!(g.check(&mut m, &file(STATE_DONE, 0, b"a.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn a_restart_resends_the_files_ddl_appended() {
        let (mut g, mut m) = guard_in_file_copy(2);
        assert_eq!(g.check(&mut m, &file(STATE_PAGE_COPY, 2, b"db/new.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut m, &file(STATE_PAGE_COPY, 3, b"db/new2.ibd")), Ok(Checked::Pass));
        // The network breaks before the page copy's START; the donor's
        // restart sends every file DDL touched again, in index order: the
        // appended ones at the index and with the name they came with, an
        // existing one (renamed or dropped meanwhile) as before.
        let mut restarted = TaskView::master();
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 1, b"db/renamed.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 2, b"db/new.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 3, b"db/new2.ibd")), Ok(Checked::Pass));
        // A file the first round did not reach is appended as before.
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 4, b"db/new3.ibd")), Ok(Checked::Pass));
        assert!(matches!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 6, b"db/gap.ibd")), Err(Refusal::Protocol(_))));
        // Workers never carry DDL descriptors, first or repeated.
        let mut w = TaskView::worker();
        assert!(matches!(g.check(&mut w, &file(STATE_PAGE_COPY, 2, b"db/new.ibd")), Err(Refusal::Protocol(_))));
        // Page copy holds all five.
        g.check(&mut restarted, &state(STATE_PAGE_COPY, 4, 100, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 4, b"db/new3.ibd")), Ok(Checked::Pass));
        assert!(matches!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 5, b"db/x.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn a_resent_file_keeps_its_name() {
        let (mut g, mut m) = guard_in_file_copy(2);
        g.check(&mut m, &file(STATE_PAGE_COPY, 2, b"db/new.ibd")).unwrap();
        let mut restarted = TaskView::master();
        // Dropped while the network was down: the same file, flagged.
        let mut dropped = file(STATE_PAGE_COPY, 2, b"db/new.ibd");
        dropped[FILE_FLAGS_OFFSET..][..2].copy_from_slice(&FILE_FLAG_DELETED.to_be_bytes());
        assert_eq!(g.check(&mut restarted, &dropped), Ok(Checked::Pass));
        // What InnoDB reads ends at the first NUL.
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 2, b"db/new.ibd\0junk")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 2, b"db/other.ibd")), Err(INVALID_FILE));
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 2, b"db/new.ibd.x")), Err(INVALID_FILE));
        assert_eq!(g.check(&mut restarted, &file(STATE_PAGE_COPY, 4, b"db/new.ibd")), Err(INVALID_INDEX));
    }

    #[test]
    fn a_restart_resends_the_files_ddl_appended_in_page_copy() {
        let (mut g, mut m) = guard_in_file_copy(2);
        g.check(&mut m, &file(STATE_PAGE_COPY, 2, b"db/new.ibd")).unwrap();
        g.check(&mut m, &state(STATE_PAGE_COPY, 4, 100, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut m, &file(STATE_REDO_COPY, 3, b"db/late.ibd")), Ok(Checked::Pass));
        let mut restarted = TaskView::master();
        // Renamed in page copy: the redo copy's start names it anew.
        assert_eq!(g.check(&mut restarted, &file(STATE_REDO_COPY, 2, b"db/moved.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut restarted, &file(STATE_REDO_COPY, 3, b"db/late.ibd")), Ok(Checked::Pass));
        assert_eq!(g.check(&mut restarted, &file(STATE_REDO_COPY, 3, b"db/other.ibd")), Err(INVALID_FILE));
        assert_eq!(g.check(&mut restarted, &file(STATE_REDO_COPY, 5, b"db/gap.ibd")), Err(INVALID_INDEX));
        // Once the redo copy starts, nothing is appended or repeated.
        g.check(&mut restarted, &state(STATE_REDO_COPY, 4, 2, STATE_FLAG_START)).unwrap();
        assert!(g.check(&mut restarted, &file(STATE_DONE, 3, b"db/late.ibd")).is_err());
        assert!(g.check(&mut restarted, &file(STATE_REDO_COPY, 3, b"")).is_err());
    }

    #[test]
    fn files_added_by_ddl_stop_at_the_bound() {
        let (mut g, mut m) = guard_in_file_copy(MAX_FILES);
        assert!(matches!(g.check(&mut m, &file(STATE_PAGE_COPY, MAX_FILES, b"one-too-many.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn files_before_any_state_are_refused() {
        let mut g = DescriptorGuard::new(places_in_new_dir());
        let mut m = TaskView::master();
        assert!(matches!(g.check(&mut m, &file(STATE_FILE_COPY, 0, b"a.ibd")), Err(Refusal::Protocol(_))));
    }

    #[test]
    fn states_are_followed_only_on_start_and_bounded() {
        let (mut g, mut m) = guard_in_file_copy(1);
        // An acknowledgement or an end of state changes nothing.
        g.check(&mut m, &state(STATE_REDO_COPY, 1, 9, STATE_FLAG_ACK | STATE_FLAG_START)).unwrap();
        g.check(&mut m, &state(STATE_REDO_COPY, 1, 9, 0)).unwrap();
        assert_eq!(g.check(&mut m, &file(STATE_FILE_COPY, 0, b"a.ibd")), Ok(Checked::Pass));
        assert!(g.check(&mut m, &state(77, 1, 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut m, &state(1, 1, 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut m, &state(STATE_FILE_COPY, 1, MAX_FILES + 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut m, &state(STATE_FILE_COPY, 1, 1, STATE_FLAG_START)[..STATE_LEN - 1]).is_err());
    }

    #[test]
    fn data_chunks_lie_within_the_state() {
        let (g, m) = guard_in_file_copy(1);
        assert_eq!(g.data(&m, &data(1)), Ok(Checked::Data { len: 0, offset: 0 }));
        assert_eq!(g.data(&m, &data(10)), Ok(Checked::Data { len: 0, offset: 0 }));
        assert!(g.data(&m, &data(0)).is_err());
        assert!(g.data(&m, &data(11)).is_err());
        assert!(g.data(&m, &data(1)[..DATA_LEN - 1]).is_err());
    }

    #[test]
    fn the_masters_start_sets_the_counts_and_workers_must_agree() {
        let (mut g, mut m) = guard_in_file_copy(3);
        // A worker that attached mid-state is in the master's state.
        let mut w = TaskView::worker();
        assert_eq!(g.check(&mut w, &data(10)), Ok(Checked::Data { len: 0, offset: 0 }));
        assert!(g.check(&mut w, &data(11)).is_err());
        // A worker's START of the same state must carry the same counts
        // (InnoDB keeps the master's: a larger count would let chunks and
        // file indexes past what InnoDB allocated through).
        assert!(g.check(&mut w, &state(STATE_FILE_COPY, 1 << 20, 3, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut w, &state(STATE_FILE_COPY, 10, 1 << 20, STATE_FLAG_START)).is_err());
        assert_eq!(g.check(&mut w, &state(STATE_FILE_COPY, 10, 3, STATE_FLAG_START)), Ok(Checked::Pass));
        assert!(g.check(&mut w, &file(STATE_FILE_COPY, 3, b"a.ibd")).is_err());
        // Ahead of the master: the master's START must then announce the same.
        let mut w2 = TaskView::worker();
        g.check(&mut w2, &data(1)).unwrap();
        assert_eq!(g.check(&mut w2, &state(STATE_PAGE_COPY, 4, 50, STATE_FLAG_START)), Ok(Checked::Pass));
        assert!(g.check(&mut w, &state(STATE_PAGE_COPY, 5, 50, STATE_FLAG_START)).is_err(), "another worker disagrees");
        assert!(g.check(&mut w, &state(STATE_REDO_COPY, 4, 2, STATE_FLAG_START)).is_err(), "another state ahead");
        assert!(g.check(&mut m, &state(STATE_PAGE_COPY, 8, 50, STATE_FLAG_START)).is_err(), "master disagrees");
        let (mut g, mut m) = guard_in_file_copy(3);
        let mut w = TaskView::worker();
        g.check(&mut w, &state(STATE_PAGE_COPY, 4, 50, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut m, &state(STATE_PAGE_COPY, 4, 50, STATE_FLAG_START)), Ok(Checked::Pass));
    }

    #[test]
    fn each_task_is_checked_in_its_own_state() {
        let (mut g, mut m) = guard_in_file_copy(3);
        let mut w = TaskView::worker();
        g.check(&mut w, &data(9)).unwrap();
        // The master starts page copy with fewer chunks; the worker still
        // sends the end of its file copy, which InnoDB holds until it moves.
        g.check(&mut m, &state(STATE_PAGE_COPY, 2, 50, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut w, &data(9)), Ok(Checked::Data { len: 0, offset: 0 }));
        assert!(g.check(&mut m, &data(3)).is_err());
        g.check(&mut w, &state(STATE_PAGE_COPY, 2, 50, STATE_FLAG_START)).unwrap();
        assert!(g.check(&mut w, &data(9)).is_err());
        assert!(g.check(&mut w, &state(STATE_FILE_COPY, 10, 3, STATE_FLAG_START)).is_err(), "no way back");
        assert!(g.check(&mut m, &state(STATE_FILE_COPY, 10, 3, STATE_FLAG_START)).is_err(), "no way back");
        // A restart repeats the master's state with the same counts only.
        let mut restarted = TaskView::master();
        assert_eq!(g.check(&mut restarted, &state(STATE_PAGE_COPY, 2, 50, STATE_FLAG_START)), Ok(Checked::Pass));
        assert!(g.check(&mut restarted, &state(STATE_PAGE_COPY, 3, 50, STATE_FLAG_START)).is_err());
    }

    #[test]
    fn counts_are_bounded() {
        let mut g = DescriptorGuard::new(places_in_new_dir());
        let mut m = TaskView::master();
        assert!(g.check(&mut m, &state(STATE_FILE_COPY, MAX_CHUNKS + 1, 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut m, &state(STATE_FILE_COPY, 1, MAX_FILES + 1, STATE_FLAG_START)).is_err());
        assert_eq!(g.check(&mut m, &state(STATE_FILE_COPY, MAX_CHUNKS, MAX_FILES, STATE_FLAG_START)), Ok(Checked::Pass));
        assert!(g.check(&mut m, &state(STATE_PAGE_COPY, MAX_CHUNKS + 1, u32::MAX, STATE_FLAG_START)).is_err());
        assert_eq!(g.check(&mut m, &state(STATE_PAGE_COPY, MAX_CHUNKS, u32::MAX, STATE_FLAG_START)), Ok(Checked::Pass), "page copy counts pages");
        assert!(g.check(&mut m, &state(STATE_REDO_COPY, 1, MAX_FILES + 1, STATE_FLAG_START)).is_err());
        assert!(g.check(&mut m, &state(STATE_DONE, 1, 0, STATE_FLAG_START)).is_err());
    }

    #[test]
    fn only_the_master_appends_files() {
        let (mut g, _) = guard_in_file_copy(2);
        let mut w = TaskView::worker();
        assert!(g.check(&mut w, &file(STATE_PAGE_COPY, 2, b"new.ibd")).is_err());
    }

    #[test]
    fn deleted_files_free_chunks_of_their_state_only() {
        let (mut g, mut m) = guard_in_file_copy(3);
        assert_eq!(g.check(&mut m, &deleted(STATE_FILE_COPY, 1, 3, 10)), Ok(Checked::Pass));
        assert_eq!(g.check(&mut m, &deleted(STATE_FILE_COPY, 1, 11, 10)), Ok(Checked::Pass), "an empty file");
        assert!(g.check(&mut m, &deleted(STATE_FILE_COPY, 1, 3, 11)).is_err());
        assert!(g.check(&mut m, &deleted(STATE_FILE_COPY, 1, 0, 4)).is_err());
        assert!(g.check(&mut m, &deleted(STATE_FILE_COPY, 1, 1, u32::MAX)).is_err());
        g.check(&mut m, &state(STATE_PAGE_COPY, 2, 50, STATE_FLAG_START)).unwrap();
        assert_eq!(g.check(&mut m, &deleted(STATE_PAGE_COPY, 1, 2, 0)), Ok(Checked::Pass));
        assert!(g.check(&mut m, &deleted(STATE_PAGE_COPY, 1, 3, 3)).is_err());
    }

    #[test]
    fn data_tells_the_length_and_offset_of_its_block() {
        let (mut g, mut m) = guard_in_file_copy(1);
        let mut d = data(1);
        d[DATA_LEN_OFFSET..][..4].copy_from_slice(&16384u32.to_be_bytes());
        d[DATA_FILE_OFFSET..][..8].copy_from_slice(&(3u64 << 32 | 16384).to_be_bytes());
        assert_eq!(g.check(&mut m, &d), Ok(Checked::Data { len: 16384, offset: 3 << 32 | 16384 }));
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
    fn a_file_copy_block_names_its_file_and_place() {
        assert_eq!(file_copy_file(&file(STATE_FILE_COPY, 7, b"./test/t1.ibd")), Some((7, &b"./test/t1.ibd"[..])));
        assert_eq!(file_copy_file(&file(STATE_PAGE_COPY, 7, b"./test/t1.ibd")), None);
        assert_eq!(file_copy_file(&file(STATE_FILE_COPY, 7, b"x")[..FILE_NAME_OFFSET + 1]), None);
        let mut d = data(3);
        d[DATA_STATE_OFFSET..][..4].copy_from_slice(&STATE_FILE_COPY.to_be_bytes());
        d[DATA_FILE_INDEX_OFFSET..][..4].copy_from_slice(&7u32.to_be_bytes());
        d[DATA_LEN_OFFSET..][..4].copy_from_slice(&(1u32 << 20).to_be_bytes());
        d[DATA_FILE_OFFSET..][..8].copy_from_slice(&(5u64 << 20).to_be_bytes());
        assert_eq!(file_copy_block(&d), Some(BlockPlace { file: 7, offset: 5 << 20, len: 1 << 20 }));
        assert_eq!(file_copy_block(&d[..DATA_LEN - 1]), None);
        d[DATA_STATE_OFFSET..][..4].copy_from_slice(&STATE_REDO_COPY.to_be_bytes());
        assert_eq!(file_copy_block(&d), None);
    }

    #[test]
    fn truncated_and_random_descriptors_never_panic() {
        let mut next = crate::protocol::xorshift();
        let samples = [
            state(STATE_FILE_COPY, 5, 5, STATE_FLAG_START),
            state(STATE_PAGE_COPY, 3, 70, STATE_FLAG_START),
            state(STATE_REDO_COPY, 2, 2, STATE_FLAG_START),
            file(STATE_FILE_COPY, 1, b"./db/t.ibd"),
            file(STATE_PAGE_COPY, 5, b"./db/new.ibd"),
            deleted(STATE_FILE_COPY, 2, 1, 3),
            data(3),
        ];
        let (mut g, m) = guard_in_file_copy(5);
        let mut tasks = [m, TaskView::worker(), TaskView::worker()];
        for sample in &samples {
            for cut in 0..sample.len() {
                let _ = g.check(&mut tasks[0], &sample[..cut]);
            }
        }
        // Streams on several connections, each descriptor maybe mutated:
        // the guard's own bookkeeping never panics or overflows.
        for _ in 0..20_000 {
            let mut d = samples[(next() % samples.len() as u64) as usize].clone();
            for _ in 0..(next() % 4) {
                let at = (next() as usize) % d.len();
                d[at] = next() as u8;
            }
            let task = (next() % 3) as usize;
            let _ = g.check(&mut tasks[task], &d);
            let _ = check_acknowledgement(&d);
        }
    }
}
