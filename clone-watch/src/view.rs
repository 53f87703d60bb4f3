//! What the tables say, and how it is shown: pure, tested without a server.

/// Both tables in one round trip, one row per line, tab-separated (the
/// client's batch mode escapes tabs and line breaks inside values).
pub const QUERY: &str = "SELECT 'S', STATE, SOURCE, DESTINATION, UNIX_TIMESTAMP(BEGIN_TIME), UNIX_TIMESTAMP(END_TIME), \
     ERROR_NO, ERROR_MESSAGE, BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED, UNIX_TIMESTAMP(NOW(6)), ID \
     FROM performance_schema.clone_status; \
     SELECT 'P', STAGE, STATE, UNIX_TIMESTAMP(BEGIN_TIME), UNIX_TIMESTAMP(END_TIME), THREADS, ESTIMATE, DATA, NETWORK, DATA_SPEED, NETWORK_SPEED \
     FROM performance_schema.clone_progress ORDER BY ID";

const MIB: f64 = 1024.0 * 1024.0;

/// clone_status.DESTINATION of an in-place clone, which restarts the recipient.
const IN_PLACE: &str = "LOCAL INSTANCE";

/// The clone_status row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Status {
    pub state: String,
    pub source: String,
    pub destination: String,
    pub begin: Option<f64>,
    pub end: Option<f64>,
    pub error_no: i64,
    pub error_message: String,
    pub binlog_file: String,
    pub binlog_position: Option<u64>,
    pub gtid_executed: String,
    /// The server's clock when it answered.
    pub now: f64,
    pub id: String,
}

impl Status {
    /// Tells one clone from the next.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.begin.unwrap_or_default())
    }

    /// Seconds since the clone began, up to its end when it has ended.
    pub fn elapsed(&self) -> f64 {
        match (self.begin, self.end) {
            (Some(b), Some(e)) => e - b,
            (Some(b), None) => self.now - b,
            _ => 0.0,
        }
    }

    /// Seconds from the clone's beginning to its end; 0 while unknown.
    fn took(&self) -> f64 {
        span(self.begin, self.end)
    }

    /// An in-place clone replaces the recipient's data and restarts it.
    fn in_place(&self) -> bool {
        self.destination == IN_PLACE
    }
}

/// A clone_progress row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub state: String,
    pub begin: Option<f64>,
    pub end: Option<f64>,
    pub threads: u64,
    pub estimate: u64,
    pub data: u64,
    pub network: u64,
    /// Bytes per second now, as the server measured them.
    pub data_speed: u64,
    pub network_speed: u64,
}

impl Stage {
    /// How much of its estimate is done, when there is an estimate.
    pub fn percent(&self) -> Option<f64> {
        (self.estimate > 0).then(|| (self.data as f64 * 100.0 / self.estimate as f64).min(100.0))
    }

    /// Bytes per second of data and over the network, as the view shows
    /// them: while the stage runs, the server's current figures (or the
    /// averages since the stage began, as the server's figures are 0
    /// between two of its measurements); once it has ended, the averages
    /// over the stage.
    pub fn speeds(&self, now: f64) -> Speeds {
        let average = |bytes: u64, seconds: f64| if seconds > 0.0 { bytes as f64 / seconds } else { 0.0 };
        match self.state.as_str() {
            RUNNING => {
                let running_for = self.begin.map_or(0.0, |b| now - b);
                let current = |figure: u64, bytes: u64| if figure > 0 { figure as f64 } else { average(bytes, running_for) };
                Speeds { data: current(self.data_speed, self.data), network: current(self.network_speed, self.network) }
            }
            COMPLETED | FAILED => Speeds { data: average(self.data, self.took()), network: average(self.network, self.took()) },
            _ => Speeds::default(),
        }
    }

    /// Seconds left for a running stage at its current rate, when there
    /// is an estimate and something is moving.
    pub fn eta(&self, now: f64) -> Option<f64> {
        let rate = self.speeds(now).data;
        (self.state == RUNNING && rate > 0.0 && self.estimate > self.data).then(|| (self.estimate - self.data) as f64 / rate)
    }

    /// Seconds from the stage's beginning to its end; 0 while unknown.
    fn took(&self) -> f64 {
        span(self.begin, self.end)
    }
}

/// Seconds from a beginning to an end; 0 while either is unknown (or the
/// clock went back).
fn span(begin: Option<f64>, end: Option<f64>) -> f64 {
    match (begin, end) {
        (Some(b), Some(e)) if e >= b => e - b,
        _ => 0.0,
    }
}

/// Bytes per second.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Speeds {
    pub data: f64,
    pub network: f64,
}

/// The states of a clone and of its stages.
const RUNNING: &str = "In Progress";
const COMPLETED: &str = "Completed";
const FAILED: &str = "Failed";

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub status: Option<Status>,
    pub stages: Vec<Stage>,
}

/// A batch-mode value as the server holds it: NULL is empty, and the
/// client's escapes (`\0`, `\t`, `\n`, `\\`) are undone in one pass, so
/// that an escaped backslash followed by an `n` stays a backslash and an `n`.
fn text(v: &str) -> String {
    if v == "NULL" {
        return String::new();
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A server's value on one line of the view: line breaks, tabs and other
/// control characters (which could also move a terminal's cursor) become
/// spaces.
fn one_line(v: &str) -> String {
    v.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn number<T: std::str::FromStr>(v: &str) -> Option<T> {
    v.parse().ok()
}

impl Snapshot {
    pub fn parse(out: &str) -> Snapshot {
        let mut s = Snapshot::default();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["S", state, source, destination, begin, end, error_no, error_message, binlog_file, binlog_position, gtid, now, id] => {
                    s.status = Some(Status {
                        state: text(state),
                        source: text(source),
                        destination: text(destination),
                        begin: number(begin),
                        end: number(end),
                        error_no: number(error_no).unwrap_or(0),
                        error_message: text(error_message),
                        binlog_file: text(binlog_file),
                        binlog_position: number(binlog_position),
                        gtid_executed: text(gtid),
                        now: number(now).unwrap_or(0.0),
                        id: text(id),
                    })
                }
                ["P", name, state, begin, end, threads, estimate, data, network, data_speed, network_speed] => s.stages.push(Stage {
                    name: text(name),
                    state: text(state),
                    begin: number(begin),
                    end: number(end),
                    threads: number(threads).unwrap_or(0),
                    estimate: number(estimate).unwrap_or(0),
                    data: number(data).unwrap_or(0),
                    network: number(network).unwrap_or(0),
                    data_speed: number(data_speed).unwrap_or(0),
                    network_speed: number(network_speed).unwrap_or(0),
                }),
                _ => {}
            }
        }
        s
    }

    /// Whether the clone is still going (the view keeps following it).
    pub fn running(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.state == RUNNING)
    }

    /// Whether the clone ended well.
    pub fn completed(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.state == COMPLETED)
    }

    /// Whether the clone replaces the recipient's data and restarts it.
    pub fn in_place(&self) -> bool {
        self.status.as_ref().is_some_and(Status::in_place)
    }
}

/// Seconds as h:mm:ss or m:ss.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// One line per stage, after a heading.
pub fn render(s: &Snapshot) -> Vec<String> {
    let Some(st) = &s.status else { return vec!["No clone has run on this server.".into()] };
    let heading = format!("Clone from {} into {}: {} ({})", one_line(&st.source), one_line(&st.destination), one_line(&st.state), clock(st.elapsed()));
    let mut lines = vec![heading];
    lines.extend(s.stages.iter().map(|stage| stage_line(stage, st.now)));
    lines
}

/// A stage: how far it is while it runs, what it did once it has ended.
fn stage_line(stage: &Stage, now: f64) -> String {
    let mut line = format!("  {:<10} {:<12}", one_line(&stage.name), one_line(&stage.state));
    match stage.state.as_str() {
        RUNNING => {
            match stage.percent() {
                Some(percent) => line += &format!(" {percent:5.1}%  {} of {}", mib(stage.data), mib(stage.estimate)),
                None => line += &format!(" {}", mib(stage.data)),
            }
            line += &format!("  {:.1} MiB/s", stage.speeds(now).data / MIB);
            if let Some(eta) = stage.eta(now) {
                line += &format!("  ETA {}", clock(eta));
            }
            line += &format!("  {} thread{}", stage.threads, if stage.threads == 1 { "" } else { "s" });
        }
        COMPLETED | FAILED => {
            let took = stage.took();
            if stage.data > 0 {
                line += &format!(" {} in {:.1} s ({:.1} MiB/s)", mib(stage.data), took, stage.speeds(now).data / MIB);
            } else {
                line += &format!(" {took:.1} s");
            }
        }
        _ => {}
    }
    line.trim_end().to_owned()
}

/// What the view shows while the server does not answer during a clone,
/// in place of the client's own error lines (which would scroll a
/// terminal and say nothing a person can act on during a restart). A
/// reply from the server itself (not a connection error) is named by its
/// number: the server is up but refuses the query, which a restart does
/// not explain (after an in-place clone, the accounts are the donor's).
pub fn away_line(last: &Snapshot, seconds: u64, client_error: &str) -> String {
    let why = if last.in_place() { "restarting" } else { "no answer" };
    let mut line = format!("{why}: waiting for the server to answer again ({seconds} s)");
    if let Some(number) = server_error(client_error) {
        line += &format!("; it refuses the query with error {number}");
    }
    line
}

/// The number of an error the server sent, from the client's
/// "ERROR 1045 (28000): ..." line; None for the client's own errors
/// (2000 to 2999: cannot connect, connection lost) and for anything else.
fn server_error(client_error: &str) -> Option<u32> {
    let number = client_error.lines().find_map(|l| l.strip_prefix("ERROR "))?.split([' ', ':']).next()?.parse().ok()?;
    (!(2000..3000).contains(&number)).then_some(number)
}

/// The figures of a clone that has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Seconds from the clone's beginning to its end.
    pub took: f64,
    pub data: u64,
    pub network: u64,
    /// Seconds the copy stages took: the rest is dropping, syncing and
    /// restarting.
    pub copying: f64,
}

impl Totals {
    pub fn of(s: &Snapshot) -> Option<Totals> {
        let st = s.status.as_ref()?;
        let took = st.took();
        let copy: Vec<&Stage> = s.stages.iter().filter(|x| x.name.ends_with(" COPY")).collect();
        let copy_begin = copy.iter().filter_map(|x| x.begin).fold(f64::INFINITY, f64::min);
        let copy_end = copy.iter().filter_map(|x| x.end).fold(f64::NEG_INFINITY, f64::max);
        Some(Totals {
            took,
            data: s.stages.iter().map(|x| x.data).sum(),
            network: s.stages.iter().map(|x| x.network).sum(),
            copying: if copy_end > copy_begin { copy_end - copy_begin } else { took },
        })
    }

    /// Bytes per second of data over the copy.
    pub fn data_rate(&self) -> f64 {
        self.data as f64 / self.copying.max(0.001)
    }
}

/// What a person wants to know once the clone has ended.
pub fn summary(s: &Snapshot) -> Vec<String> {
    let (Some(st), Some(totals)) = (&s.status, Totals::of(s)) else { return vec![] };
    let mut lines = vec![];
    if st.state == FAILED {
        lines.push(format!("Failed after {}: error {}: {}", clock(totals.took), st.error_no, one_line(&st.error_message)));
    } else {
        lines.push(format!("{} in {}", one_line(&st.state), clock(totals.took)));
    }
    lines.push(format!(
        "  {} of data copied in {:.1} s ({:.1} MiB/s); {} over the network",
        mib(totals.data),
        totals.copying,
        totals.data_rate() / MIB,
        mib(totals.network)
    ));
    if !st.binlog_file.is_empty() {
        lines.push(format!("  donor's binary log position: {}:{}", one_line(&st.binlog_file), st.binlog_position.unwrap_or(0)));
    }
    if !st.gtid_executed.is_empty() {
        lines.push(format!("  donor's GTID set: {}", one_line(&st.gtid_executed)));
    }
    lines
}

/// Readings of the tables as the client prints them, shared by the tests.
#[cfg(test)]
pub mod fixtures {
    /// An in-place clone 10 s in: one stage done, one at 25%, one waiting.
    pub const RUNNING_CLONE: &str = "S\tIn Progress\t127.0.0.1:13000\tLOCAL INSTANCE\t1000.5\tNULL\t0\t\tNULL\tNULL\tNULL\t1010.5\t1\n\
        P\tDROP DATA\tCompleted\t1000.5\t1001.0\t1\t0\t0\t0\t0\t0\n\
        P\tFILE COPY\tIn Progress\t1001.0\tNULL\t4\t1048576000\t262144000\t262200000\t104857600\t104870000\n\
        P\tPAGE COPY\tNot Started\tNULL\tNULL\t0\t0\t0\t0\t0\t0\n";

    /// A remote clone into a directory that completed, with the donor's
    /// position and a GTID set broken over two lines (as the server does).
    pub const COMPLETED_CLONE: &str =
        "S\tCompleted\t127.0.0.1:13000\t/var/lib/clone\t1000.0\t1020.0\t0\t\tbinlog.000002\t4711\tuuid:1-100,\\nuuid2:1-5\t1030.0\t1\n\
        P\tFILE COPY\tCompleted\t1001.0\t1019.0\t4\t1048576000\t1048576000\t1048600000\t0\t0\n";
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn a_running_stage_shows_percent_speed_and_eta() {
        let s = Snapshot::parse(RUNNING_CLONE);
        let lines = render(&s);
        assert_eq!(lines[0], "Clone from 127.0.0.1:13000 into LOCAL INSTANCE: In Progress (0:10)");
        assert_eq!(lines[1], "  DROP DATA  Completed    0.5 s");
        // 250 of 1000 MiB at 100 MiB/s: 7.5 s left.
        assert_eq!(lines[2], "  FILE COPY  In Progress   25.0%  250.0 MiB of 1000.0 MiB  100.0 MiB/s  ETA 0:08  4 threads");
        assert_eq!(lines[3], "  PAGE COPY  Not Started");
    }

    #[test]
    fn without_a_current_speed_the_average_is_used() {
        let s = Snapshot::parse(&RUNNING_CLONE.replace("262200000\t104857600", "262200000\t0"));
        // 250 MiB in 9.5 s.
        assert!(render(&s)[2].contains("26.3 MiB/s"), "{}", render(&s)[2]);
    }

    #[test]
    fn the_summary_has_bytes_time_rate_and_the_donors_position() {
        let s = Snapshot::parse(COMPLETED_CLONE);
        assert_eq!(
            summary(&s),
            vec![
                "Completed in 0:20",
                "  1000.0 MiB of data copied in 18.0 s (55.6 MiB/s); 1000.0 MiB over the network",
                "  donor's binary log position: binlog.000002:4711",
                "  donor's GTID set: uuid:1-100, uuid2:1-5",
            ]
        );
        assert_eq!(render(&s)[1], "  FILE COPY  Completed    1000.0 MiB in 18.0 s (55.6 MiB/s)");
    }

    #[test]
    fn a_failure_says_why() {
        let failed = "S\tFailed\th:1\t/d\t1000.0\t1065.0\t3873\tClone estimated database size is 464.24 MiB.\tNULL\tNULL\tNULL\t1066.0\t1\n";
        assert_eq!(summary(&Snapshot::parse(failed))[0], "Failed after 1:05: error 3873: Clone estimated database size is 464.24 MiB.");
    }

    #[test]
    fn clocks_and_odd_input() {
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(-3.0), "0:00");
        assert_eq!(Snapshot::parse("garbage\nS\tonly\n"), Snapshot::default());
        assert_eq!(render(&Snapshot::default()), vec!["No clone has run on this server."]);
    }

    #[test]
    fn the_clients_escapes_are_undone_in_one_pass() {
        assert_eq!(text(r"a\\nb"), r"a\nb", "an escaped backslash before an n");
        assert_eq!(text(r"a\nb\tc"), "a\nb\tc");
        assert_eq!(text(r"nul\0"), "nul\0");
        assert_eq!(text(r"trailing\"), r"trailing\");
        assert_eq!(text("NULL"), "");
    }

    #[test]
    fn server_values_stay_on_one_line_of_the_view() {
        let failed = "S\tFailed\th:1\t/d\t1000.0\t1065.0\t1105\tline one\\nline\\ttwo \x1b[2J\tNULL\tNULL\tNULL\t1066.0\t1\n";
        let s = Snapshot::parse(failed);
        assert_eq!(s.status.as_ref().map(|st| st.error_message.as_str()), Some("line one\nline\ttwo \x1b[2J"));
        assert_eq!(summary(&s)[0], "Failed after 1:05: error 1105: line one line two  [2J");
    }

    #[test]
    fn percent_and_eta_only_where_they_mean_something() {
        let s = Snapshot::parse(RUNNING_CLONE);
        let [done, copying, waiting] = &s.stages[..] else { panic!("three stages") };
        assert_eq!(copying.percent(), Some(25.0));
        assert_eq!(copying.eta(1010.5), Some(7.5));
        assert_eq!((done.percent(), done.eta(1010.5)), (None, None));
        assert_eq!((waiting.percent(), waiting.eta(1010.5)), (None, None));
    }

    #[test]
    fn a_restarting_clone_is_shown_without_the_clients_error() {
        let s = Snapshot::parse(RUNNING_CLONE);
        for error in [
            "ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/run/mysqld/mysqld.sock' (2)",
            "ERROR 2013 (HY000): Lost connection to MySQL server at 'reading initial communication packet', system error: 104",
            "",
        ] {
            assert_eq!(away_line(&s, 12, error), "restarting: waiting for the server to answer again (12 s)");
        }
    }

    #[test]
    fn a_silent_server_outside_an_in_place_clone_is_not_called_restarting() {
        let s = Snapshot::parse(&RUNNING_CLONE.replace("LOCAL INSTANCE", "/var/lib/clone"));
        assert_eq!(
            away_line(&s, 3, "ERROR 2003 (HY000): Can't connect to MySQL server on '10.0.0.5:3306' (110)"),
            "no answer: waiting for the server to answer again (3 s)"
        );
    }

    #[test]
    fn a_server_that_answers_but_refuses_is_named_by_its_error_number() {
        let s = Snapshot::parse(RUNNING_CLONE);
        let refused = "mysql: [Warning] a warning first\nERROR 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: YES)";
        assert_eq!(away_line(&s, 40, refused), "restarting: waiting for the server to answer again (40 s); it refuses the query with error 1045");
        assert_eq!(server_error("ERROR 3169 (HY000): Session was killed"), Some(3169));
        assert_eq!(server_error("ERROR 2013 (HY000): Lost connection"), None);
        assert_eq!(server_error("cannot run mysql: No such file or directory (os error 2)"), None);
        assert_eq!(server_error("ERROR x"), None);
    }
}
