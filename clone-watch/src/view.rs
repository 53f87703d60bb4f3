//! What the tables say, and how it is shown: pure, tested without a server.

/// Both tables in one round trip, one row per line, tab-separated (the
/// client's batch mode escapes tabs and line breaks inside values).
pub const QUERY: &str = "SELECT 'S', STATE, SOURCE, DESTINATION, UNIX_TIMESTAMP(BEGIN_TIME), UNIX_TIMESTAMP(END_TIME), \
     ERROR_NO, ERROR_MESSAGE, BINLOG_FILE, BINLOG_POSITION, GTID_EXECUTED, UNIX_TIMESTAMP(NOW(6)), ID \
     FROM performance_schema.clone_status; \
     SELECT 'P', STAGE, STATE, UNIX_TIMESTAMP(BEGIN_TIME), UNIX_TIMESTAMP(END_TIME), THREADS, ESTIMATE, DATA, NETWORK, DATA_SPEED \
     FROM performance_schema.clone_progress ORDER BY ID";

const MIB: f64 = 1024.0 * 1024.0;

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
    /// Bytes per second now.
    pub data_speed: u64,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    pub status: Option<Status>,
    pub stages: Vec<Stage>,
}

/// A batch-mode value: NULL is none; escapes undone.
fn text(v: &str) -> String {
    if v == "NULL" {
        return String::new();
    }
    v.replace("\\t", " ").replace("\\n", " ").replace("\\\\", "\\")
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
                ["P", name, state, begin, end, threads, estimate, data, network, speed] => s.stages.push(Stage {
                    name: text(name),
                    state: text(state),
                    begin: number(begin),
                    end: number(end),
                    threads: number(threads).unwrap_or(0),
                    estimate: number(estimate).unwrap_or(0),
                    data: number(data).unwrap_or(0),
                    network: number(network).unwrap_or(0),
                    data_speed: number(speed).unwrap_or(0),
                }),
                _ => {}
            }
        }
        s
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

/// A running stage's speed: the server's current figure, or the average
/// since the stage began.
fn speed(stage: &Stage, now: f64) -> f64 {
    if stage.data_speed > 0 {
        return stage.data_speed as f64;
    }
    match stage.begin {
        Some(b) if now > b => stage.data as f64 / (now - b),
        _ => 0.0,
    }
}

/// One line per stage, after a heading.
pub fn render(s: &Snapshot) -> Vec<String> {
    let Some(st) = &s.status else { return vec!["No clone has run on this server.".into()] };
    let elapsed = match (st.begin, st.end) {
        (Some(b), Some(e)) => e - b,
        (Some(b), None) => st.now - b,
        _ => 0.0,
    };
    let mut lines = vec![format!("Clone from {} into {}: {} ({})", st.source, st.destination, st.state, clock(elapsed))];
    for stage in &s.stages {
        let mut line = format!("  {:<10} {:<12}", stage.name, stage.state);
        match stage.state.as_str() {
            "In Progress" => {
                let rate = speed(stage, st.now);
                if stage.estimate > 0 {
                    let percent = (stage.data as f64 * 100.0 / stage.estimate as f64).min(100.0);
                    line += &format!(" {percent:5.1}%  {} of {}", mib(stage.data), mib(stage.estimate));
                } else {
                    line += &format!(" {}", mib(stage.data));
                }
                line += &format!("  {:.1} MiB/s", rate / MIB);
                if rate > 0.0 && stage.estimate > stage.data {
                    line += &format!("  ETA {}", clock((stage.estimate - stage.data) as f64 / rate));
                }
                line += &format!("  {} thread{}", stage.threads, if stage.threads == 1 { "" } else { "s" });
            }
            "Completed" | "Failed" => {
                let took = match (stage.begin, stage.end) {
                    (Some(b), Some(e)) if e >= b => e - b,
                    _ => 0.0,
                };
                if stage.data > 0 {
                    line += &format!(" {} in {:.1} s ({:.1} MiB/s)", mib(stage.data), took, stage.data as f64 / MIB / took.max(0.001));
                } else {
                    line += &format!(" {took:.1} s");
                }
            }
            _ => {}
        }
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// What a person wants to know once the clone has ended.
pub fn summary(s: &Snapshot) -> Vec<String> {
    let Some(st) = &s.status else { return vec![] };
    let data: u64 = s.stages.iter().map(|x| x.data).sum();
    let network: u64 = s.stages.iter().map(|x| x.network).sum();
    let took = match (st.begin, st.end) {
        (Some(b), Some(e)) if e >= b => e - b,
        _ => 0.0,
    };
    let mut lines = vec![];
    if st.state == "Failed" {
        lines.push(format!("Failed after {}: error {}: {}", clock(took), st.error_no, st.error_message));
    } else {
        lines.push(format!("{} in {}", st.state, clock(took)));
    }
    // The copy stages' span: the rest is dropping, syncing and restarting.
    let copy: Vec<&Stage> = s.stages.iter().filter(|x| x.name.ends_with(" COPY")).collect();
    let copy_begin = copy.iter().filter_map(|x| x.begin).fold(f64::INFINITY, f64::min);
    let copy_end = copy.iter().filter_map(|x| x.end).fold(f64::NEG_INFINITY, f64::max);
    let copying = if copy_end > copy_begin { copy_end - copy_begin } else { took };
    lines.push(format!(
        "  {} of data copied in {:.1} s ({:.1} MiB/s); {} over the network",
        mib(data),
        copying,
        data as f64 / MIB / copying.max(0.001),
        mib(network)
    ));
    if !st.binlog_file.is_empty() {
        lines.push(format!("  donor's binary log position: {}:{}", st.binlog_file, st.binlog_position.unwrap_or(0)));
    }
    if !st.gtid_executed.is_empty() {
        lines.push(format!("  donor's GTID set: {}", st.gtid_executed));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "S\tIn Progress\t127.0.0.1:13000\tLOCAL INSTANCE\t1000.5\tNULL\t0\t\tNULL\tNULL\tNULL\t1010.5\t1\n\
        P\tDROP DATA\tCompleted\t1000.5\t1001.0\t1\t0\t0\t0\t0\n\
        P\tFILE COPY\tIn Progress\t1001.0\tNULL\t4\t1048576000\t262144000\t262200000\t104857600\n\
        P\tPAGE COPY\tNot Started\tNULL\tNULL\t0\t0\t0\t0\t0\n";

    #[test]
    fn a_running_stage_shows_percent_speed_and_eta() {
        let s = Snapshot::parse(RUNNING);
        let lines = render(&s);
        assert_eq!(lines[0], "Clone from 127.0.0.1:13000 into LOCAL INSTANCE: In Progress (0:10)");
        assert_eq!(lines[1], "  DROP DATA  Completed    0.5 s");
        // 250 of 1000 MiB at 100 MiB/s: 7.5 s left.
        assert_eq!(lines[2], "  FILE COPY  In Progress   25.0%  250.0 MiB of 1000.0 MiB  100.0 MiB/s  ETA 0:08  4 threads");
        assert_eq!(lines[3], "  PAGE COPY  Not Started");
    }

    #[test]
    fn without_a_current_speed_the_average_is_used() {
        let s = Snapshot::parse(&RUNNING.replace("262200000\t104857600", "262200000\t0"));
        // 250 MiB in 9.5 s.
        assert!(render(&s)[2].contains("26.3 MiB/s"), "{}", render(&s)[2]);
    }

    #[test]
    fn the_summary_has_bytes_time_rate_and_the_donors_position() {
        let done = "S\tCompleted\t127.0.0.1:13000\tLOCAL INSTANCE\t1000.0\t1020.0\t0\t\tbinlog.000002\t4711\tuuid:1-100,\\nuuid2:1-5\t1030.0\t1\n\
            P\tFILE COPY\tCompleted\t1001.0\t1019.0\t4\t1048576000\t1048576000\t1048600000\t0\n";
        let s = Snapshot::parse(done);
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
}
