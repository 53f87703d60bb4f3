//! What `performance_schema.clone_status` and `clone_progress` show, and the
//! files that keep it across a restart (`#clone/#view_status`,
//! `#clone/#view_progress`, merged with InnoDB's `#clone/#status_recovery`).
//!
//! Only the recipient side of a clone (local or remote) records status, one
//! clone at a time per server. The file formats are the stock plugin's, so a
//! server can switch between the stock plugin and this one and keep its view.

use crate::transfer::pipeline::{Pipeline, Sink};
use parking_lot::Mutex;
use std::convert::Infallible;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Shown as SOURCE for a local clone and as DESTINATION for an in-place one.
pub const LOCAL_INSTANCE: &str = "LOCAL INSTANCE";

const VIEW_STATUS_FILE: &str = "#clone/#view_status";
const VIEW_PROGRESS_FILE: &str = "#clone/#view_progress";
const STATUS_RECOVERY_FILE: &str = "#clone/#status_recovery";
/// Where this server's last clone went, when it was not in place (ours: the
/// stock plugin forgets it).
const VIEW_DESTINATION_FILE: &str = "#clone/#view_destination";
/// At the top of a target directory that a crash left incomplete.
const INCOMPLETE_MARKER: &str = "CLONE_INCOMPLETE";
/// How often a running stage's progress is written down.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// ER_QUERY_INTERRUPTED and its text: what the files say while a clone runs,
/// so that a crash mid-clone reads back as an interrupted clone.
pub const CRASH_MARKER_ERROR: u32 = 1317;
const CRASH_MARKER_MESSAGE: &str = "Query execution was interrupted";
/// What the status says of a clone the server's stop cut short.
const INTERRUPTED_MESSAGE: &str = "Query execution was interrupted: the server stopped before the clone finished";
/// ER_INTERNAL_ERROR, reported when recovery of a cloned data directory failed.
pub const RECOVERY_FAILED_ERROR: u32 = 1815;
const RECOVERY_FAILED_MESSAGE: &str = "Recovery failed. Please Retry Clone. For details, look into server error log.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    NotStarted = 0,
    InProgress = 1,
    Completed = 2,
    Failed = 3,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::NotStarted => "Not Started",
            State::InProgress => "In Progress",
            State::Completed => "Completed",
            State::Failed => "Failed",
        }
    }

    fn from_number(n: u32) -> State {
        match n {
            1 => State::InProgress,
            2 => State::Completed,
            3 => State::Failed,
            _ => State::NotStarted,
        }
    }
}

/// The seven stages, in the order clone_progress lists them.
pub const STAGE_NAMES: [&str; 7] = ["DROP DATA", "FILE COPY", "PAGE COPY", "REDO COPY", "FILE SYNC", "RESTART", "RECOVERY"];
const FILE_SYNC: usize = 4;
const RESTART: usize = 5;
const RECOVERY: usize = 6;

/// The single row of clone_status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatusRow {
    /// 0 until a clone has ever run (the table is then empty), else 1.
    pub id: u32,
    pub pid: u32,
    pub state: State,
    pub begin_us: u64,
    pub end_us: u64,
    pub source: String,
    pub destination: String,
    pub error_no: u32,
    pub error_message: String,
    pub binlog_file: String,
    pub binlog_position: u64,
    pub gtid_executed: String,
}

/// One row of clone_progress.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageRow {
    pub state: State,
    pub threads: u32,
    pub begin_us: u64,
    pub end_us: u64,
    pub estimate: u64,
    pub data: u64,
    pub network: u64,
    pub data_speed: u64,
    pub network_speed: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    pub id: u32,
    pub stages: [StageRow; 7],
}

/// Everything both tables show, as one consistent snapshot.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub status: StatusRow,
    pub progress: Progress,
}

/// Another clone already runs here (ER_CLONE_TOO_MANY_CONCURRENT_CLONES).
#[derive(Debug, PartialEq)]
pub struct Busy;

#[derive(Default)]
struct Inner {
    view: Snapshot,
    running: bool,
    /// Index into STAGE_NAMES of the stage in progress.
    current: Option<usize>,
    /// This server's data directory, where the files remember its clones
    /// (empty until `load`: then nothing is written).
    datadir: PathBuf,
    /// The running clone's target directory (DATA DIRECTORY), which gets
    /// the files too, for a server started on it.
    target: Option<PathBuf>,
    /// When the progress file was last written while a stage ran.
    heartbeat: Option<Instant>,
    /// The cloned directory's recovery report is still to be merged.
    recovery_pending: bool,
    /// While a clone runs: writes its files off the clone's own threads.
    behind: Option<FileWriter>,
}

impl Inner {
    fn own_file(&self, name: &str) -> Option<PathBuf> {
        (!self.datadir.as_os_str().is_empty()).then(|| self.datadir.join(name))
    }
}

/// The status of this server's clones, shared by the clone threads (writers)
/// and performance_schema readers. The plugin owns one: made at its start
/// (`new`, then `load`), ended at its end (`shutdown`, or a drop, which
/// write the files a running clone has queued).
pub struct Tracker {
    inner: Mutex<Inner>,
}

pub fn now_us() -> u64 {
    micros_since_epoch(SystemTime::now())
}

fn micros_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    pub const fn new() -> Tracker {
        Tracker {
            inner: Mutex::new(Inner {
                view: Snapshot {
                    status: StatusRow {
                        id: 0,
                        pid: 0,
                        state: State::NotStarted,
                        begin_us: 0,
                        end_us: 0,
                        source: String::new(),
                        destination: String::new(),
                        error_no: 0,
                        error_message: String::new(),
                        binlog_file: String::new(),
                        binlog_position: 0,
                        gtid_executed: String::new(),
                    },
                    progress: Progress {
                        id: 0,
                        stages: [StageRow {
                            state: State::NotStarted,
                            threads: 0,
                            begin_us: 0,
                            end_us: 0,
                            estimate: 0,
                            data: 0,
                            network: 0,
                            data_speed: 0,
                            network_speed: 0,
                        }; 7],
                    },
                },
                running: false,
                current: None,
                datadir: PathBuf::new(),
                target: None,
                heartbeat: None,
                recovery_pending: false,
                behind: None,
            }),
        }
    }

    /// Forgets everything, then loads what the files in `datadir` (the
    /// server's working directory) remember of earlier clones, merging
    /// InnoDB's recovery report into the progress rows. A clone the files
    /// show running was cut short by the server's stop: it is recorded as
    /// failed, and a directory it left incomplete is marked. Called at plugin
    /// start; returns what the error log should say (files it could not
    /// read, clones it found interrupted). Never fails: the plugin starts
    /// with whatever could be read.
    pub fn load(&self, datadir: &Path) -> Vec<String> {
        let mut notes = Vec::new();
        let mut inner = self.inner.lock();
        *inner = Inner { datadir: datadir.to_path_buf(), ..Inner::default() };
        if let Some(status) = read_file(&datadir.join(VIEW_STATUS_FILE), parse_status, &mut notes) {
            let status_begin = status.begin_us;
            inner.view.status = status;
            if let Some(destination) = fs::read_to_string(datadir.join(VIEW_DESTINATION_FILE)).ok().and_then(|t| parse_destination(&t, status_begin)) {
                inner.view.status.destination = destination;
            }
        }
        if let Some(progress) = read_file(&datadir.join(VIEW_PROGRESS_FILE), parse_progress, &mut notes) {
            inner.view.progress = progress;
        }
        let last_sign_of_life = [VIEW_PROGRESS_FILE, VIEW_STATUS_FILE]
            .iter()
            .filter_map(|f| fs::metadata(datadir.join(f)).and_then(|m| m.modified()).ok())
            .max()
            .map(micros_since_epoch);
        match RecoveryReport::read(&datadir.join(STATUS_RECOVERY_FILE)) {
            Ok(report) => {
                merge_recovery_progress(&mut inner.view.progress, &report);
                if let Some(path) = inner.own_file(VIEW_PROGRESS_FILE) {
                    write_file(&path, &format_progress(&inner.view.progress));
                }
                inner.recovery_pending = true;
            }
            Err(e) if e.kind() != ErrorKind::NotFound => notes.push(format!("Cannot read {STATUS_RECOVERY_FILE}: {e}")),
            Err(_) => {}
        }
        if inner.view.status.state == State::InProgress && !inner.recovery_pending {
            // File times are coarser than the clock the begin time came from.
            let end_us = last_sign_of_life.unwrap_or_else(now_us).max(inner.view.status.begin_us);
            let destination = inner.view.status.destination.clone();
            // A copy that can be resumed is kept, not marked (crate::reuse).
            let incomplete = (destination != LOCAL_INSTANCE).then(|| PathBuf::from(&destination)).filter(|d| !d.join(crate::reuse::MARKER).is_file());
            interrupted(&mut inner.view, end_us, incomplete.as_deref());
            let marked = match incomplete.filter(|d| d.is_dir()) {
                Some(dir) => match mark_incomplete(&dir, &inner.view) {
                    Ok(()) => format!("; {} is marked incomplete ({INCOMPLETE_MARKER})", dir.display()),
                    Err(e) => format!("; cannot mark {} incomplete: {e}", dir.display()),
                },
                None => String::new(),
            };
            let status = &inner.view.status;
            notes.push(format!(
                "The clone from {} to {} begun at {} did not finish: the server stopped during it{marked}",
                status.source,
                status.destination,
                utc(status.begin_us)
            ));
            persist(&inner, true);
        }
        notes
    }

    /// Completes the status row from InnoDB's recovery report, once, on the
    /// first read after a restart on a cloned directory; the report is then
    /// removed as the stock plugin does. The files are those `load` read.
    pub fn merge_pending_recovery(&self) {
        let mut inner = self.inner.lock();
        if !inner.recovery_pending || inner.running {
            return;
        }
        inner.recovery_pending = false;
        let Some(path) = inner.own_file(STATUS_RECOVERY_FILE) else { return };
        let Ok(report) = RecoveryReport::read(&path) else {
            return;
        };
        merge_recovery_status(&mut inner.view.status, &report);
        let _ = fs::remove_file(&path);
        if let Some(own) = inner.own_file(VIEW_STATUS_FILE) {
            write_file(&own, &format_status(&inner.view.status, true));
        }
    }

    /// Starts tracking a clone. `destination` is the target directory, or
    /// None for an in-place clone; `source` is `host:port` or LOCAL_INSTANCE.
    pub fn begin(&self, pid: u32, source: &str, destination: Option<&str>) -> Result<(), Busy> {
        let mut inner = self.inner.lock();
        if inner.running {
            return Err(Busy);
        }
        let now = now_us();
        inner.running = true;
        inner.current = None;
        inner.heartbeat = None;
        // A recovery report nobody read belongs to the clone before this one.
        if std::mem::take(&mut inner.recovery_pending) {
            if let Some(report) = inner.own_file(STATUS_RECOVERY_FILE) {
                let _ = fs::remove_file(report);
            }
        }
        inner.view.status = StatusRow {
            id: 1,
            pid,
            state: State::InProgress,
            begin_us: now,
            source: one_line(source, 512),
            destination: destination.map(|d| one_line(d, 512)).unwrap_or_else(|| LOCAL_INSTANCE.to_owned()),
            ..StatusRow::default()
        };
        // The progress rows appear with the first stage (a remote clone that
        // fails its checks shows none).
        inner.view.progress = Progress::default();
        inner.target = destination.map(PathBuf::from);
        // This server remembers where its clone went; InnoDB creates the
        // folder only for an in-place clone, and later.
        if let Some(own) = inner.own_file(VIEW_DESTINATION_FILE) {
            match destination {
                Some(d) => {
                    if let Some(folder) = own.parent() {
                        let _ = fs::create_dir_all(folder);
                    }
                    write_file(&own, &format_destination(now, d));
                }
                None => {
                    let _ = fs::remove_file(own);
                }
            }
        }
        persist(&inner, false);
        inner.behind = FileWriter::start();
        Ok(())
    }

    /// Ends the stage in progress (Completed) and begins the next one with the
    /// storage engine's byte estimate.
    pub fn next_stage(&self, estimate: u64, threads: u32) {
        let mut inner = self.inner.lock();
        if !inner.running {
            return;
        }
        let now = now_us();
        let next = match inner.current {
            Some(i) => {
                let row = &mut inner.view.progress.stages[i];
                row.state = State::Completed;
                row.end_us = now;
                row.data_speed = 0;
                row.network_speed = 0;
                i + 1
            }
            None => 0,
        };
        inner.view.progress.id = 1;
        if next < STAGE_NAMES.len() {
            inner.view.progress.stages[next] = StageRow { state: State::InProgress, threads, begin_us: now, estimate, ..StageRow::default() };
            inner.current = Some(next);
        } else {
            inner.current = None;
        }
        persist(&inner, false);
    }

    /// Adds the bytes moved since the last update to the stage in progress;
    /// about once a second the progress file records them, so that after a
    /// crash it shows how far the clone got, and when.
    pub fn add_progress(&self, data: u64, network: u64, data_speed: u64, network_speed: u64, threads: u32) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.current {
            let row = &mut inner.view.progress.stages[i];
            row.data += data;
            row.network += network;
            row.data_speed = data_speed;
            row.network_speed = network_speed;
            row.threads = threads;
            if inner.heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
                inner.heartbeat = Some(Instant::now());
                persist_progress(&inner, Rewrite::Overwrite);
            }
        }
    }

    /// An in-place clone that succeeded stays In Progress until the restart
    /// completes it: the files it has queued are written before the server
    /// stops.
    pub fn await_restart(&self, note: Option<&str>) {
        // What the clone did beyond stock (it reused data it held), kept
        // when InnoDB's report completes the row. Written as it is, not
        // as the crash marker: a start without that report (the restart
        // never came) reads the row as interrupted all the same.
        if let Some(note) = note {
            let mut inner = self.inner.lock();
            inner.view.status.error_message = one_line(note, 511);
            persist(&inner, true);
        }
        self.write_queued();
    }

    /// Writes the files a running clone has queued and stops the thread
    /// that writes them (later writes are made in place): what the plugin
    /// does at its end, before it lets the tracker go. Dropping the tracker
    /// does the same.
    pub fn shutdown(&self) {
        self.write_queued();
    }

    /// Waits (without the lock, so that readers of the tables do not) until
    /// the files the running clone queued are written; later writes are
    /// made in place.
    fn write_queued(&self) {
        let behind = self.inner.lock().behind.take();
        if let Some(b) = behind {
            b.finish();
        }
    }

    /// Ends the clone with the statement's error (0 = success).
    pub fn end(&self, error_no: u32, error_message: &str) {
        // The final state is written after what is queued, and before the
        // statement returns.
        self.write_queued();
        let mut inner = self.inner.lock();
        if !inner.running {
            return;
        }
        let now = now_us();
        let state = if error_no == 0 { State::Completed } else { State::Failed };
        if let Some(i) = inner.current.take() {
            let row = &mut inner.view.progress.stages[i];
            row.state = state;
            row.end_us = now;
            row.data_speed = 0;
            row.network_speed = 0;
        }
        let status = &mut inner.view.status;
        status.state = state;
        status.end_us = now;
        status.error_no = error_no;
        status.error_message = one_line(error_message, 511);
        persist(&inner, true);
        inner.running = false;
    }

    /// Adds `note` to the error of the last clone when it failed (what a
    /// failed staged clone did to this server's data).
    pub fn add_to_failure(&self, note: &str) {
        let mut inner = self.inner.lock();
        if inner.running || inner.view.status.state != State::Failed || inner.view.status.error_message.ends_with(note) {
            return;
        }
        let message = format!("{}{note}", inner.view.status.error_message);
        inner.view.status.error_message = one_line(&message, 511);
        persist(&inner, true);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().view.clone()
    }
}

/// Records a clone cut short by the server's stop: failed at `end_us` (the
/// last time its files were written), as is the stage it was in.
fn interrupted(view: &mut Snapshot, end_us: u64, incomplete: Option<&Path>) {
    let status = &mut view.status;
    status.state = State::Failed;
    status.end_us = end_us;
    status.error_no = CRASH_MARKER_ERROR;
    status.error_message = match incomplete {
        Some(dir) => format!("{INTERRUPTED_MESSAGE}: the directory {} is incomplete; remove it before cloning into it again", dir.display()),
        None => INTERRUPTED_MESSAGE.to_owned(),
    };
    for row in view.progress.stages.iter_mut().filter(|r| matches!(r.state, State::InProgress | State::Failed) && r.end_us == 0) {
        row.state = State::Failed;
        row.end_us = end_us;
    }
}

/// Marks a target directory a crash left incomplete: a note at its top
/// that says so, and its own status files (InnoDB already refuses to start
/// on it: `#clone/#status_in_progress`).
fn mark_incomplete(dir: &Path, view: &Snapshot) -> std::io::Result<()> {
    let note = format!(
        "This directory is the incomplete result of a clone from {} begun at {} and cut short when the server making it stopped.\nIt is not a usable data directory. Remove it before cloning into this path again.\n",
        view.status.source,
        utc(view.status.begin_us)
    );
    fs::write(dir.join(INCOMPLETE_MARKER), note)?;
    write_file(&dir.join(VIEW_STATUS_FILE), &format_status(&view.status, true));
    write_file(&dir.join(VIEW_PROGRESS_FILE), &format_progress(&view.progress));
    Ok(())
}

/// Microseconds since 1970 as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (H. Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Parses a status file; a file that exists but cannot be read or parsed
/// is ignored with a note.
fn read_file<T>(path: &Path, parse: fn(&str) -> Option<T>, notes: &mut Vec<String>) -> Option<T> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let parsed = parse(&text);
            if parsed.is_none() {
                notes.push(format!("Ignored {}: not in the expected format", path.display()));
            }
            parsed
        }
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            notes.push(format!("Ignored {}: {e}", path.display()));
            None
        }
    }
}

/// The running clone's files: this server's, and the target directory's.
fn files_of(inner: &Inner, name: &str) -> Vec<PathBuf> {
    inner.own_file(name).into_iter().chain(inner.target.as_ref().map(|t| t.join(name))).collect()
}

fn persist(inner: &Inner, finished: bool) {
    for path in files_of(inner, VIEW_STATUS_FILE) {
        write_now_or_behind(inner, path, format_status(&inner.view.status, finished), Rewrite::Replace);
    }
    persist_progress(inner, Rewrite::Replace);
}

fn persist_progress(inner: &Inner, how: Rewrite) {
    for path in files_of(inner, VIEW_PROGRESS_FILE) {
        write_now_or_behind(inner, path, format_progress(&inner.view.progress), how);
    }
}

fn write_now_or_behind(inner: &Inner, path: PathBuf, text: String, how: Rewrite) {
    match &inner.behind {
        Some(behind) => behind.write(path, text, how),
        None => how.write(&path, &text),
    }
}

/// How a status file takes its new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rewrite {
    /// A new file renamed over the old one: a crash leaves one or the
    /// other whole. For the files of a stage change.
    Replace,
    /// The new text over the old in the file's own bytes: the heartbeat.
    /// Replacing a file a second frees its block and allocates another
    /// each time, and on ext4 mounted with discard that cut a 16 GiB
    /// clone's throughput by a third (docs/performance.md); an overwrite
    /// of a few hundred bytes frees and allocates nothing. A kill leaves
    /// a whole write (one page); a power loss may tear it, and the file is
    /// then ignored as unreadable.
    Overwrite,
}

impl Rewrite {
    fn write(self, path: &Path, text: &str) {
        match self {
            Rewrite::Replace => write_file(path, text),
            Rewrite::Overwrite => overwrite_file(path, text),
        }
    }
}

/// Writes a running clone's status files from a thread of its own. A file
/// is replaced by renaming a new one over it, and on ext4 busy with the
/// clone's own O_DIRECT writes such a rename took from 2 ms to 1.6 s here
/// (it waits for the journal): the clone's threads, which record every
/// stage and a heartbeat a second, must not wait for that. Files are
/// written in the order given; a file queued again before its turn is
/// written once, with its latest text.
struct FileWriter(Pipeline<StatusFiles>);

/// Files queued at most: a clone queues four at a stage or heartbeat, and
/// what waits together is merged, so the queue fills only when renames
/// lag many seconds behind.
const FILE_WRITER_DEPTH: usize = 64;

/// The status files' sink: each path with its text and how it is written.
struct StatusFiles;

impl Sink for StatusFiles {
    type Item = (PathBuf, String, Rewrite);
    /// Status files are best effort: they never fail a clone.
    type Error = Infallible;

    fn take(&mut self, (path, text, how): (PathBuf, String, Rewrite)) -> Result<(), Infallible> {
        how.write(&path, &text);
        Ok(())
    }

    /// A file queued more than once is written once, with its latest text,
    /// and replaced if any of its writes was to replace it.
    fn take_all(&mut self, files: Vec<(PathBuf, String, Rewrite)>) -> Result<(), Infallible> {
        for (i, (path, text, how)) in files.iter().enumerate() {
            if files[i + 1..].iter().any(|(later, ..)| later == path) {
                continue;
            }
            let replaced = files[..i].iter().any(|(earlier, _, h)| earlier == path && *h == Rewrite::Replace);
            if replaced { Rewrite::Replace } else { *how }.write(path, text);
        }
        Ok(())
    }
}

impl FileWriter {
    /// None when no thread can start: the files are then written in place.
    fn start() -> Option<FileWriter> {
        Pipeline::start("clone_status", FILE_WRITER_DEPTH, StatusFiles).ok().map(FileWriter)
    }

    fn write(&self, path: PathBuf, text: String, how: Rewrite) {
        if let Err((path, text, how)) = self.0.push((path, text, how)) {
            how.write(&path, &text);
        }
    }

    /// Returns once every queued file is written.
    fn finish(self) {
        drop(self);
    }
}

/// Writes `text` over the start of the file at `path`, padded with spaces
/// to the file's length (the readers stop at the last stage's line), so
/// that it neither grows past its block nor needs a truncation a kill
/// could separate from the write. A file that does not exist yet, or has
/// grown beyond a page, is replaced instead.
fn overwrite_file(path: &Path, text: &str) {
    use std::os::unix::fs::FileExt;
    const PAGE: u64 = 4096;
    let Ok(file) = fs::OpenOptions::new().write(true).open(path) else { return write_file(path, text) };
    let old_len = file.metadata().map_or(u64::MAX, |m| m.len());
    if old_len > PAGE || text.len() as u64 > PAGE {
        return write_file(path, text);
    }
    let mut padded = text.as_bytes().to_vec();
    padded.resize(padded.len().max(old_len as usize), b' ');
    let _ = file.write_all_at(&padded, 0);
}

/// Best effort, as in the stock plugin: the `#clone` folder may not exist
/// yet (the storage engine creates it), and status files never fail a clone.
/// The text goes to a new file renamed over the old one, so that a crash
/// leaves one or the other whole.
fn write_file(path: &Path, text: &str) {
    let Some(name) = path.file_name() else { return };
    let mut fresh = name.to_os_string();
    fresh.push(".new");
    let fresh = path.with_file_name(fresh);
    if fs::write(&fresh, text).is_ok() && fs::rename(&fresh, path).is_err() {
        let _ = fs::remove_file(&fresh);
    }
}

/// Text for a line of a status file, at most `max` characters: a message
/// may come from the donor, and a line break in it would be read back as
/// the next field after a restart.
fn one_line(s: &str, max: usize) -> String {
    s.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// `#view_status`: state and id, begin and end, source, error number and
/// message (the crash marker until the clone ends), binlog file, position,
/// GTID set (which may span lines).
pub fn format_status(s: &StatusRow, finished: bool) -> String {
    let (err, msg) = if finished { (s.error_no, s.error_message.as_str()) } else { (CRASH_MARKER_ERROR, CRASH_MARKER_MESSAGE) };
    format!(
        "{} {}\n{} {}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        s.state as u32, s.id, s.begin_us, s.end_us, s.source, err, msg, s.binlog_file, s.binlog_position, s.gtid_executed
    )
}

/// Reads `#view_status`. After a restart the session is gone (PID 0) and the
/// clone that wrote it was, from this server's view, in place.
pub fn parse_status(text: &str) -> Option<StatusRow> {
    let mut lines = text.lines();
    let mut first = lines.next()?.split_whitespace();
    let state: u32 = first.next()?.parse().ok()?;
    let id: u32 = first.next()?.parse().ok()?;
    let mut times = lines.next()?.split_whitespace();
    let begin_us = times.next()?.parse().ok()?;
    let end_us = times.next()?.parse().ok()?;
    let source = lines.next()?.to_owned();
    let error_no = lines.next()?.trim().parse().ok()?;
    let error_message = lines.next().unwrap_or_default().to_owned();
    let binlog_file = lines.next().unwrap_or_default().to_owned();
    let binlog_position = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    let gtid_executed = lines.collect::<Vec<_>>().join("\n");
    Some(StatusRow {
        id,
        pid: 0,
        state: State::from_number(state),
        begin_us,
        end_us,
        source,
        destination: LOCAL_INSTANCE.to_owned(),
        error_no,
        error_message,
        binlog_file,
        binlog_position,
        gtid_executed,
    })
}

/// `#view_destination`: the clone's begin time, then its target directory.
fn format_destination(begin_us: u64, destination: &str) -> String {
    format!("{begin_us}\n{}\n", one_line(destination, 512))
}

/// The target directory, if the file belongs to the clone begun at
/// `begin_us` (another plugin may have run a clone since).
fn parse_destination(text: &str, begin_us: u64) -> Option<String> {
    let (begin, destination) = text.split_once('\n')?;
    (begin.trim().parse::<u64>().ok()? == begin_us).then(|| destination.trim_end_matches('\n').to_owned())
}

/// `#view_progress`: the id, then one line per stage; a stage still in
/// progress is written as failed, the crash marker for progress.
pub fn format_progress(p: &Progress) -> String {
    let mut out = format!("{}\n", p.id);
    for row in &p.stages {
        let state = if row.state == State::InProgress { State::Failed } else { row.state };
        out.push_str(&format!("{} {} {} {} {} {} {}\n", state as u32, row.threads, row.begin_us, row.end_us, row.estimate, row.data, row.network));
    }
    out
}

pub fn parse_progress(text: &str) -> Option<Progress> {
    let mut lines = text.lines();
    let id = lines.next()?.trim().parse().ok()?;
    let mut progress = Progress { id, ..Progress::default() };
    for row in progress.stages.iter_mut() {
        let Some(line) = lines.next() else { break };
        let f: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() < 7 {
            return None;
        }
        *row = StageRow {
            state: State::from_number(f[0] as u32),
            threads: f[1] as u32,
            begin_us: f[2],
            end_us: f[3],
            estimate: f[4],
            data: f[5],
            network: f[6],
            data_speed: 0,
            network_speed: 0,
        };
    }
    Some(progress)
}

/// InnoDB's `#status_recovery`, written while it starts on a cloned directory.
#[derive(Debug, Default, PartialEq)]
pub struct RecoveryReport {
    pub begin_us: u64,
    /// 0 when recovery failed.
    pub end_us: u64,
    pub binlog_file: String,
    pub binlog_position: u64,
    pub gtid_executed: String,
}

impl RecoveryReport {
    /// `written_us` is when the report was last written. InnoDB appends the
    /// end time (0 if its recovery failed), the binary log position, then
    /// the GTIDs. A start killed after its file swap but before the end
    /// time leaves none: the next start finds the swap done, does not
    /// begin a report again, and appends only the GTIDs (clone0api.cc,
    /// clone_files_recovery). That recovery succeeded when they were
    /// written, which is the report's last write.
    pub fn parse(text: &str, written_us: u64) -> RecoveryReport {
        let mut lines = text.lines();
        let begin_us = lines.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let second = lines.next();
        match second.map(|s| s.trim().parse::<u64>()) {
            Some(Ok(end_us)) => {
                let binlog_file = lines.next().unwrap_or_default().to_owned();
                let binlog_position = lines.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                let gtid_executed = lines.collect::<Vec<_>>().join("\n");
                RecoveryReport { begin_us, end_us, binlog_file, binlog_position, gtid_executed }
            }
            _ if begin_us != 0 => RecoveryReport {
                begin_us,
                end_us: written_us.max(begin_us),
                gtid_executed: second.into_iter().chain(lines).collect::<Vec<_>>().join("\n"),
                ..RecoveryReport::default()
            },
            _ => RecoveryReport::default(),
        }
    }

    fn read(path: &Path) -> io::Result<RecoveryReport> {
        let text = fs::read_to_string(path)?;
        let written_us = fs::metadata(path).and_then(|m| m.modified()).map(micros_since_epoch).unwrap_or_else(|_| now_us());
        Ok(RecoveryReport::parse(&text, written_us))
    }
}

/// RESTART spans from the end of FILE SYNC to the start of recovery;
/// RECOVERY is what InnoDB reported.
pub fn merge_recovery_progress(p: &mut Progress, r: &RecoveryReport) {
    let sync = &mut p.stages[FILE_SYNC];
    if sync.state != State::Completed || sync.end_us == 0 {
        sync.state = State::Completed;
        sync.end_us = sync.begin_us;
    }
    let sync_end = sync.end_us;
    p.stages[RESTART] = StageRow { state: State::Completed, begin_us: sync_end, end_us: r.begin_us, ..StageRow::default() };
    p.stages[RECOVERY] =
        StageRow { state: if r.end_us != 0 { State::Completed } else { State::Failed }, begin_us: r.begin_us, end_us: r.end_us, ..StageRow::default() };
}

pub fn merge_recovery_status(s: &mut StatusRow, r: &RecoveryReport) {
    s.end_us = r.end_us;
    if r.end_us == 0 {
        s.state = State::Failed;
        s.error_no = RECOVERY_FAILED_ERROR;
        s.error_message = RECOVERY_FAILED_MESSAGE.to_owned();
    } else {
        // A note the clone left for its success (no error) stays.
        if s.error_no != 0 {
            s.error_message.clear();
        }
        s.state = State::Completed;
        s.error_no = 0;
    }
    s.binlog_file = r.binlog_file.clone();
    s.binlog_position = r.binlog_position;
    s.gtid_executed = r.gtid_executed.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_status() -> StatusRow {
        StatusRow {
            id: 1,
            pid: 9,
            state: State::Completed,
            begin_us: 100,
            end_us: 200,
            source: "127.0.0.1:3306".into(),
            destination: LOCAL_INSTANCE.into(),
            error_no: 0,
            error_message: String::new(),
            binlog_file: "/data/binlog.000002".into(),
            binlog_position: 1234,
            gtid_executed: "uuid-a:1-5,\nuuid-b:1-3".into(),
        }
    }

    #[test]
    fn status_file_round_trips_with_multiline_gtid() {
        let s = sample_status();
        let back = parse_status(&format_status(&s, true)).unwrap();
        assert_eq!(back, StatusRow { pid: 0, ..s });
    }

    #[test]
    fn running_clone_is_written_with_crash_marker() {
        let s = StatusRow { state: State::InProgress, ..sample_status() };
        let back = parse_status(&format_status(&s, false)).unwrap();
        assert_eq!(back.error_no, 1317);
        assert_eq!(back.error_message, "Query execution was interrupted");
        assert_eq!(back.state, State::InProgress);
    }

    #[test]
    fn a_message_with_line_breaks_cannot_invent_fields() {
        let tracker = Tracker::default();
        tracker.begin(7, "127.0.0.1:3306", None).unwrap();
        tracker.end(3862, "boom\nbinlog.999999\n4242\nfake-uuid:1-100\r");
        let row = tracker.snapshot().status;
        let back = parse_status(&format_status(&row, true)).unwrap();
        assert_eq!(back.error_message, "boom binlog.999999 4242 fake-uuid:1-100 ");
        assert_eq!((back.binlog_file.as_str(), back.binlog_position, back.gtid_executed.as_str()), ("", 0, ""));
        tracker.begin(7, "x", None).unwrap();
        tracker.end(1, &"é".repeat(2000));
        assert_eq!(tracker.snapshot().status.error_message.chars().count(), 511);
    }

    #[test]
    fn mutated_status_and_progress_files_never_panic() {
        let mut next = crate::protocol::xorshift();
        let status = format_status(&sample_status(), true).into_bytes();
        let mut p = Progress { id: 1, ..Progress::default() };
        p.stages[1] = StageRow { state: State::InProgress, threads: 4, begin_us: 2, estimate: 99, data: 50, ..Default::default() };
        let progress = format_progress(&p).into_bytes();
        let recovery = b"700\n900\nbinlog.000001\n155\nuuid:1-3\n".to_vec();
        let samples = [status, progress, recovery];
        for _ in 0..20_000 {
            let mut text = samples[(next() % 3) as usize].clone();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % text.len();
                match next() % 3 {
                    0 => text[at] = next() as u8,
                    1 => text.truncate(at.max(1)),
                    _ => text.insert(at, b"\n0 -1:"[(next() % 6) as usize]),
                }
            }
            let text = String::from_utf8_lossy(&text);
            let _ = parse_status(&text);
            let _ = parse_progress(&text);
            let _ = RecoveryReport::parse(&text, 1);
        }
    }

    #[test]
    fn truncated_status_file_is_ignored() {
        assert_eq!(parse_status("2 1\n"), None);
        assert_eq!(parse_status("x y\n1 2\nsrc\n0\n"), None);
    }

    #[test]
    fn progress_in_progress_stage_reads_back_failed() {
        let mut p = Progress { id: 1, ..Progress::default() };
        p.stages[0] = StageRow { state: State::Completed, threads: 1, begin_us: 1, end_us: 2, ..Default::default() };
        p.stages[1] = StageRow { state: State::InProgress, threads: 4, begin_us: 2, estimate: 99, data: 50, ..Default::default() };
        let back = parse_progress(&format_progress(&p)).unwrap();
        assert_eq!(back.stages[0], p.stages[0]);
        assert_eq!(back.stages[1].state, State::Failed);
        assert_eq!(back.stages[1].data, 50);
    }

    #[test]
    fn recovery_report_fills_restart_and_recovery() {
        let mut p = Progress { id: 1, ..Progress::default() };
        p.stages[FILE_SYNC] = StageRow { state: State::Failed, begin_us: 500, ..Default::default() };
        let r = RecoveryReport::parse("700\n900\nbinlog.000001\n155\nuuid:1-3\n", 950);
        merge_recovery_progress(&mut p, &r);
        assert_eq!(p.stages[FILE_SYNC].state, State::Completed);
        assert_eq!(p.stages[FILE_SYNC].end_us, 500);
        assert_eq!((p.stages[RESTART].begin_us, p.stages[RESTART].end_us), (500, 700));
        assert_eq!(p.stages[RECOVERY].state, State::Completed);
        let mut s = sample_status();
        merge_recovery_status(&mut s, &r);
        assert_eq!((s.binlog_file.as_str(), s.binlog_position), ("binlog.000001", 155));
        assert_eq!(s.gtid_executed, "uuid:1-3");
        // A note the clone left for its success stays; an error's text goes.
        let mut noted = StatusRow { state: State::InProgress, error_no: 0, error_message: "Re-cloned: 151 MiB taken".into(), ..sample_status() };
        merge_recovery_status(&mut noted, &r);
        assert_eq!((noted.state, noted.error_message.as_str()), (State::Completed, "Re-cloned: 151 MiB taken"));
        let mut failed = StatusRow { error_no: 1317, error_message: "interrupted".into(), ..sample_status() };
        merge_recovery_status(&mut failed, &r);
        assert_eq!((failed.error_no, failed.error_message.as_str()), (0, ""));
    }

    #[test]
    fn failed_recovery_is_reported() {
        let r = RecoveryReport::parse("700\n0\n", 950);
        let mut s = sample_status();
        merge_recovery_status(&mut s, &r);
        assert_eq!((s.state, s.error_no), (State::Failed, 1815));
        assert_eq!(RecoveryReport::parse("", 950).end_us, 0);
    }

    #[test]
    fn a_recovery_whose_end_time_a_kill_cut_off_ended_when_its_gtids_were_written() {
        for (text, gtids) in [("700\nuuid:1-3,\nuuid-b:1-2\n", "uuid:1-3,\nuuid-b:1-2"), ("700\n\n", ""), ("700\n", "")] {
            let r = RecoveryReport::parse(text, 950);
            assert_eq!((r.begin_us, r.end_us, r.gtid_executed.as_str(), r.binlog_position), (700, 950, gtids, 0), "{text:?}");
            let mut s = StatusRow { state: State::InProgress, error_no: 0, error_message: "Resumed: 45 MiB taken".into(), ..sample_status() };
            merge_recovery_status(&mut s, &r);
            assert_eq!((s.state, s.error_no, s.error_message.as_str()), (State::Completed, 0, "Resumed: 45 MiB taken"));
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_164_245_123_456), "2026-12-01 22:30:45 UTC");
    }

    /// Waits until the files a running clone queued are written.
    fn written(t: &Tracker) {
        assert!(t.inner.lock().behind.is_some(), "a running clone writes behind");
        t.write_queued();
    }

    #[test]
    fn files_written_behind_land_in_order_with_their_latest_text() {
        let dir = scratch_dir("behind");
        let (a, b) = (dir.join("a"), dir.join("b"));
        let behind = FileWriter::start().unwrap();
        for i in 0..200 {
            behind.write(a.clone(), format!("a{i}"), Rewrite::Replace);
            behind.write(b.clone(), format!("b{i}"), Rewrite::Replace);
        }
        behind.write(a.clone(), "last".into(), Rewrite::Replace);
        behind.finish();
        assert_eq!((fs::read_to_string(&a).unwrap(), fs::read_to_string(&b).unwrap()), ("last".into(), "b199".into()));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn the_heartbeat_overwrites_the_file_it_finds_and_readers_see_the_new_text() {
        let dir = scratch_dir("overwrite");
        let path = dir.join(VIEW_PROGRESS_FILE);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut progress = Progress { id: 7, ..Progress::default() };
        progress.stages[2] =
            StageRow { state: State::InProgress, threads: 4, begin_us: 1, estimate: 123_456_789_000, data: 99_999_999_999, ..StageRow::default() };
        Rewrite::Overwrite.write(&path, &format_progress(&progress));
        let first = inode(&path);
        // Fewer digits: the text is shorter than the file it overwrites.
        progress.stages[2].data = 5;
        Rewrite::Overwrite.write(&path, &format_progress(&progress));
        assert_eq!(inode(&path), first, "the file was replaced, not overwritten");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.len() > format_progress(&progress).len() && text.ends_with(' '), "not padded to the old length: {text:?}");
        assert_eq!(parse_progress(&text).unwrap().stages[2].data, 5);
        // A stage change replaces it.
        Rewrite::Replace.write(&path, &format_progress(&progress));
        assert_ne!(inode(&path), first);
        assert_eq!(fs::read_to_string(&path).unwrap(), format_progress(&progress));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_replacement_queued_before_a_heartbeat_of_the_same_file_still_replaces_it() {
        let dir = scratch_dir("merge");
        let path = dir.join("f");
        fs::write(&path, "old").unwrap();
        let before = inode(&path);
        StatusFiles.take_all(vec![(path.clone(), "stage".into(), Rewrite::Replace), (path.clone(), "beat".into(), Rewrite::Overwrite)]).unwrap();
        assert_ne!(inode(&path), before);
        assert_eq!(fs::read_to_string(&path).unwrap(), "beat");
        let replaced = inode(&path);
        StatusFiles.take_all(vec![(path.clone(), "beat 1".into(), Rewrite::Overwrite), (path.clone(), "beat 2".into(), Rewrite::Overwrite)]).unwrap();
        assert_eq!((inode(&path), fs::read_to_string(&path).unwrap()), (replaced, "beat 2".into()));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A tracker of `datadir` whose clone `id` is in its file copy with
    /// `data` bytes copied (its status files queued for the writer).
    fn copying(datadir: &Path, id: u32, estimate: u64, data: u64) -> Tracker {
        let t = Tracker::new();
        t.load(datadir);
        t.begin(id, "127.0.0.1:3306", None).unwrap();
        t.next_stage(0, 1);
        t.next_stage(estimate, 1);
        t.add_progress(data, data, 0, 0, 1);
        t
    }

    fn progress_on_disk(datadir: &Path) -> Progress {
        parse_progress(&fs::read_to_string(datadir.join(VIEW_PROGRESS_FILE)).unwrap()).unwrap()
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clone-rs-status-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn clone_cut_short_by_a_crash_reads_back_failed() {
        let datadir = scratch_dir("in-place");
        fs::create_dir_all(datadir.join("#clone")).unwrap();
        let t = Tracker::new();
        assert!(t.load(&datadir).is_empty());
        t.begin(7, "127.0.0.1:3306", None).unwrap();
        t.next_stage(0, 1);
        t.next_stage(1000, 1);
        t.add_progress(400, 400, 0, 0, 1);
        // The server dies here, with what it wrote on disk; the next start
        // loads what the files say.
        written(&t);
        let after = Tracker::new();
        let notes = after.load(&datadir);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let snap = after.snapshot();
        assert_eq!((snap.status.state, snap.status.error_no, snap.status.destination.as_str()), (State::Failed, 1317, LOCAL_INSTANCE));
        assert!(snap.status.error_message.contains("server stopped"));
        assert!(snap.status.end_us >= snap.status.begin_us);
        assert_eq!(snap.progress.stages[0].state, State::Completed);
        assert_eq!((snap.progress.stages[1].state, snap.progress.stages[1].data), (State::Failed, 400));
        assert!(snap.progress.stages[1].end_us > 0);
        // It is written down: a third start reads the same, with nothing to say.
        let third = Tracker::new();
        assert!(third.load(&datadir).is_empty());
        assert_eq!(third.snapshot().status, StatusRow { pid: 0, ..snap.status });
        fs::remove_dir_all(&datadir).unwrap();
    }

    #[test]
    fn an_in_place_clone_leaves_nothing_queued_for_the_restart() {
        let datadir = scratch_dir("restart");
        fs::create_dir_all(datadir.join("#clone")).unwrap();
        let t = copying(&datadir, 7, 1000, 700);
        t.await_restart(None);
        assert!(t.inner.lock().behind.is_none(), "the writer has finished");
        let on_disk = progress_on_disk(&datadir);
        // The latest progress, in the state a crash would leave it in.
        assert_eq!((on_disk.stages[1].state, on_disk.stages[1].data), (State::Failed, 700));
        fs::remove_dir_all(&datadir).unwrap();
    }

    #[test]
    fn an_in_place_clones_note_survives_its_restart_and_a_crash_instead_reads_as_one() {
        for restarted in [true, false] {
            let datadir = scratch_dir(if restarted { "note-restart" } else { "note-crash" });
            fs::create_dir_all(datadir.join("#clone")).unwrap();
            let t = copying(&datadir, 7, 1000, 1000);
            t.await_restart(Some("Re-cloned: 151 MiB taken from this server's own files"));
            drop(t);
            if restarted {
                fs::write(datadir.join(STATUS_RECOVERY_FILE), "700\n900\nbinlog.000001\n155\nuuid:1-3\n").unwrap();
            }
            let after = Tracker::new();
            after.load(&datadir);
            after.merge_pending_recovery();
            let status = after.snapshot().status;
            if restarted {
                assert_eq!((status.state, status.error_no), (State::Completed, 0));
                assert_eq!(status.error_message, "Re-cloned: 151 MiB taken from this server's own files");
            } else {
                assert_eq!((status.state, status.error_no), (State::Failed, 1317));
                assert!(status.error_message.contains("server stopped"), "{}", status.error_message);
            }
            fs::remove_dir_all(&datadir).unwrap();
        }
    }

    #[test]
    fn data_directory_clone_is_remembered_and_its_remains_marked() {
        let datadir = scratch_dir("own");
        let target = scratch_dir("target");
        fs::create_dir_all(target.join("#clone")).unwrap();
        let t = Tracker::new();
        t.load(&datadir);
        t.begin(7, "127.0.0.1:3306", Some(target.to_str().unwrap())).unwrap();
        t.next_stage(0, 1);
        written(&t);
        let after = Tracker::new();
        after.load(&datadir);
        let snap = after.snapshot();
        assert_eq!((snap.status.state, snap.status.destination.as_str()), (State::Failed, target.to_str().unwrap()));
        assert!(snap.status.error_message.contains("is incomplete"), "{}", snap.status.error_message);
        assert!(fs::read_to_string(target.join(INCOMPLETE_MARKER)).unwrap().contains("not a usable data directory"));
        assert_eq!(parse_status(&fs::read_to_string(target.join(VIEW_STATUS_FILE)).unwrap()).unwrap().state, State::Failed);
        // A recovery report of an earlier in-place clone, never read, is not
        // this clone's.
        fs::write(datadir.join(STATUS_RECOVERY_FILE), "100\n200\nbinlog.000001\n155\n").unwrap();
        let reloaded = Tracker::new();
        reloaded.load(&datadir);
        reloaded.begin(8, "127.0.0.1:3306", Some(target.to_str().unwrap())).unwrap();
        let after = Tracker::new();
        after.load(&datadir);
        after.merge_pending_recovery();
        assert_eq!(after.snapshot().status.state, State::Failed);
        // A finished clone into a directory is remembered as such.
        after.begin(8, "127.0.0.1:3306", Some(target.to_str().unwrap())).unwrap();
        after.end(0, "");
        let again = Tracker::new();
        assert!(again.load(&datadir).is_empty());
        assert_eq!((again.snapshot().status.state, again.snapshot().status.destination), (State::Completed, target.to_str().unwrap().to_owned()));
        // An in-place clone since then is not mistaken for one into the directory.
        after.begin(9, "127.0.0.1:3306", None).unwrap();
        after.end(0, "");
        let last = Tracker::new();
        last.load(&datadir);
        assert_eq!(last.snapshot().status.destination, LOCAL_INSTANCE);
        fs::remove_dir_all(&datadir).unwrap();
        fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn unreadable_files_are_reported_and_skipped() {
        let datadir = scratch_dir("garbled");
        fs::create_dir_all(datadir.join(VIEW_STATUS_FILE)).unwrap();
        fs::write(datadir.join(VIEW_PROGRESS_FILE), "garbage\n").unwrap();
        let t = Tracker::new();
        let notes = t.load(&datadir);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(t.snapshot().status.id, 0);
        fs::remove_dir_all(&datadir).unwrap();
    }

    #[test]
    fn a_tracker_shuts_down_or_drops_with_its_files_written() {
        let datadir = scratch_dir("shutdown");
        fs::create_dir_all(datadir.join("#clone")).unwrap();
        let t = copying(&datadir, 7, 1000, 300);
        t.shutdown();
        assert!(t.inner.lock().behind.is_none(), "the writer has finished");
        let on_disk = progress_on_disk(&datadir);
        assert_eq!(on_disk.stages[1].data, 300);
        // Once shut down, files are written in place; shutting down again
        // is harmless, and the clone can still end.
        t.next_stage(0, 1);
        t.shutdown();
        t.end(0, "");
        assert_eq!(parse_status(&fs::read_to_string(datadir.join(VIEW_STATUS_FILE)).unwrap()).unwrap().state, State::Completed);
        // A tracker dropped while its clone runs writes what was queued.
        let t = copying(&datadir, 8, 2000, 900);
        assert!(t.inner.lock().behind.is_some());
        drop(t);
        let on_disk = progress_on_disk(&datadir);
        assert_eq!((on_disk.stages[1].estimate, on_disk.stages[1].data), (2000, 900));
        // A tracker that never ran a clone ends at once.
        Tracker::new().shutdown();
        fs::remove_dir_all(&datadir).unwrap();
    }

    #[test]
    fn tracker_allows_one_clone_and_walks_stages() {
        let t = Tracker::new();
        t.begin(7, LOCAL_INSTANCE, None).unwrap();
        assert_eq!(t.begin(8, LOCAL_INSTANCE, None), Err(Busy));
        assert_eq!(t.snapshot().progress.id, 0, "no progress rows before the first stage");
        t.next_stage(0, 1);
        t.next_stage(1000, 2);
        t.add_progress(600, 0, 60, 0, 2);
        t.end(0, "");
        let snap = t.snapshot();
        assert_eq!(snap.status.state, State::Completed);
        assert_eq!(snap.progress.stages[0].state, State::Completed);
        assert_eq!(snap.progress.stages[1].state, State::Completed);
        assert_eq!(snap.progress.stages[1].data, 600);
        assert_eq!(snap.progress.stages[2].state, State::NotStarted);
        assert!(t.begin(9, LOCAL_INSTANCE, None).is_ok());
    }
}
