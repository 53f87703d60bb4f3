//! What `performance_schema.clone_status` and `clone_progress` show, and the
//! files that keep it across a restart (`#clone/#view_status`,
//! `#clone/#view_progress`, merged with InnoDB's `#clone/#status_recovery`).
//!
//! Only the recipient side of a clone (local or remote) records status, one
//! clone at a time per server. The file formats are the stock plugin's, so a
//! server can switch between the stock plugin and this one and keep its view.

use parking_lot::Mutex;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shown as SOURCE for a local clone and as DESTINATION for an in-place one.
pub const LOCAL_INSTANCE: &str = "LOCAL INSTANCE";

const VIEW_STATUS_FILE: &str = "#clone/#view_status";
const VIEW_PROGRESS_FILE: &str = "#clone/#view_progress";
const STATUS_RECOVERY_FILE: &str = "#clone/#status_recovery";

/// ER_QUERY_INTERRUPTED and its text: what the files say while a clone runs,
/// so that a crash mid-clone reads back as an interrupted clone.
const CRASH_MARKER_ERROR: u32 = 1317;
const CRASH_MARKER_MESSAGE: &str = "Query execution was interrupted";
/// ER_INTERNAL_ERROR, reported when recovery of a cloned data directory failed.
const RECOVERY_FAILED_ERROR: u32 = 1815;
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
    /// Where the status and progress files go for the running clone.
    status_file: PathBuf,
    progress_file: PathBuf,
    /// The cloned directory's recovery report is still to be merged.
    recovery_pending: bool,
}

/// The status of this server's clones, shared by the clone threads (writers)
/// and performance_schema readers.
pub struct Tracker {
    inner: Mutex<Inner>,
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
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
                status_file: PathBuf::new(),
                progress_file: PathBuf::new(),
                recovery_pending: false,
            }),
        }
    }

    /// Forgets everything, then loads what the files in `datadir` (the
    /// server's working directory) remember of earlier clones, merging
    /// InnoDB's recovery report into the progress rows. Called at plugin start.
    pub fn load(&self, datadir: &Path) {
        let mut inner = self.inner.lock();
        *inner = Inner::default();
        if let Ok(text) = fs::read_to_string(datadir.join(VIEW_STATUS_FILE)) {
            if let Some(status) = parse_status(&text) {
                inner.view.status = status;
            }
        }
        if let Ok(text) = fs::read_to_string(datadir.join(VIEW_PROGRESS_FILE)) {
            if let Some(progress) = parse_progress(&text) {
                inner.view.progress = progress;
            }
        }
        inner.status_file = datadir.join(VIEW_STATUS_FILE);
        inner.progress_file = datadir.join(VIEW_PROGRESS_FILE);
        if let Ok(text) = fs::read_to_string(datadir.join(STATUS_RECOVERY_FILE)) {
            let report = RecoveryReport::parse(&text);
            merge_recovery_progress(&mut inner.view.progress, &report);
            write_file(&inner.progress_file, &format_progress(&inner.view.progress));
            inner.recovery_pending = true;
        }
    }

    /// Completes the status row from InnoDB's recovery report, once, on the
    /// first read after a restart on a cloned directory; the report is then
    /// removed as the stock plugin does.
    pub fn merge_pending_recovery(&self, datadir: &Path) {
        let mut inner = self.inner.lock();
        if !inner.recovery_pending || inner.running {
            return;
        }
        inner.recovery_pending = false;
        let path = datadir.join(STATUS_RECOVERY_FILE);
        let Ok(text) = fs::read_to_string(&path) else {
            return;
        };
        let report = RecoveryReport::parse(&text);
        merge_recovery_status(&mut inner.view.status, &report);
        let _ = fs::remove_file(&path);
        write_file(&inner.status_file, &format_status(&inner.view.status, true));
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
        inner.view.status = StatusRow {
            id: 1,
            pid,
            state: State::InProgress,
            begin_us: now,
            source: one_line(source, 512),
            destination: destination.unwrap_or(LOCAL_INSTANCE).to_owned(),
            ..StatusRow::default()
        };
        // The progress rows appear with the first stage (a remote clone that
        // fails its checks shows none).
        inner.view.progress = Progress::default();
        let base = destination.map(PathBuf::from).unwrap_or_default();
        inner.status_file = base.join(VIEW_STATUS_FILE);
        inner.progress_file = base.join(VIEW_PROGRESS_FILE);
        persist(&inner, false);
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

    /// Adds the bytes moved since the last update to the stage in progress.
    pub fn add_progress(&self, data: u64, network: u64, data_speed: u64, network_speed: u64, threads: u32) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.current {
            let row = &mut inner.view.progress.stages[i];
            row.data += data;
            row.network += network;
            row.data_speed = data_speed;
            row.network_speed = network_speed;
            row.threads = threads;
        }
    }

    /// Ends the clone with the statement's error (0 = success).
    pub fn end(&self, error_no: u32, error_message: &str) {
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

    pub fn is_running(&self) -> bool {
        self.inner.lock().running
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().view.clone()
    }
}

fn persist(inner: &Inner, finished: bool) {
    write_file(&inner.status_file, &format_status(&inner.view.status, finished));
    write_file(&inner.progress_file, &format_progress(&inner.view.progress));
}

/// Best effort, as in the stock plugin: the `#clone` folder may not exist
/// yet (the storage engine creates it), and status files never fail a clone.
fn write_file(path: &Path, text: &str) {
    if path.as_os_str().is_empty() {
        return;
    }
    if let Ok(mut f) = fs::File::create(path) {
        let _ = f.write_all(text.as_bytes());
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
    pub fn parse(text: &str) -> RecoveryReport {
        let mut lines = text.lines();
        let num = |l: Option<&str>| l.and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let begin_us = num(lines.next());
        let end_us = num(lines.next());
        let binlog_file = lines.next().unwrap_or_default().to_owned();
        let binlog_position = lines.next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let gtid_executed = lines.collect::<Vec<_>>().join("\n");
        RecoveryReport { begin_us, end_us, binlog_file, binlog_position, gtid_executed }
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
        s.state = State::Completed;
        s.error_no = 0;
        s.error_message.clear();
    }
    s.binlog_file = r.binlog_file.clone();
    s.binlog_position = r.binlog_position;
    s.gtid_executed = r.gtid_executed.clone();
}

/// This server's clone status, shown by the performance_schema tables.
pub static TRACKER: Tracker = Tracker::new();

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
            let _ = RecoveryReport::parse(&text);
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
        let r = RecoveryReport::parse("700\n900\nbinlog.000001\n155\nuuid:1-3\n");
        merge_recovery_progress(&mut p, &r);
        assert_eq!(p.stages[FILE_SYNC].state, State::Completed);
        assert_eq!(p.stages[FILE_SYNC].end_us, 500);
        assert_eq!((p.stages[RESTART].begin_us, p.stages[RESTART].end_us), (500, 700));
        assert_eq!(p.stages[RECOVERY].state, State::Completed);
        let mut s = sample_status();
        merge_recovery_status(&mut s, &r);
        assert_eq!((s.binlog_file.as_str(), s.binlog_position), ("binlog.000001", 155));
        assert_eq!(s.gtid_executed, "uuid:1-3");
    }

    #[test]
    fn failed_recovery_is_reported() {
        let r = RecoveryReport::parse("700\n0\n");
        let mut s = sample_status();
        merge_recovery_status(&mut s, &r);
        assert_eq!((s.state, s.error_no), (State::Failed, 1815));
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
