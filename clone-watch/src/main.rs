//! clone-watch: a live view of a clone for a person. Points at a recipient
//! (host, port, user), reads performance_schema.clone_status and
//! clone_progress once a second through the `mysql` client, and shows one
//! line per stage with the percent of its estimate, MiB/s and the time
//! left; then the summary (bytes, time, throughput, the donor's binary log
//! position and GTID set). An in-place clone restarts the recipient: the
//! view waits for it to answer again and reports the outcome.
//!
//!     clone-watch [-h HOST] [-P PORT] [-u USER] [--last] [--interval S]
//!                 [--mysql "COMMAND"]
//!
//! The password comes from MYSQL_PWD, never the command line. Without
//! --last it waits for the next clone when none is running. Exit status:
//! 0 when the clone completed, 1 when it failed, 2 on bad arguments.
#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

mod view;

use view::{render, summary, Snapshot};

struct Options {
    host: String,
    port: String,
    user: String,
    mysql: Vec<String>,
    interval: Duration,
    last: bool,
}

const USAGE: &str = "usage: clone-watch [-h HOST] [-P PORT] [-u USER] [--last] [--interval SECONDS] [--mysql \"COMMAND\"] (password: MYSQL_PWD)";

fn options() -> Result<Options, String> {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: "3306".into(),
        user: "root".into(),
        mysql: vec!["mysql".into()],
        interval: Duration::from_secs(1),
        last: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--host" => o.host = value("--host")?,
            "-P" | "--port" => o.port = value("--port")?,
            "-u" | "--user" => o.user = value("--user")?,
            "--mysql" => o.mysql = value("--mysql")?.split_whitespace().map(String::from).collect(),
            "--interval" => {
                let s: f64 = value("--interval")?.parse().map_err(|_| "--interval takes seconds")?;
                o.interval = Duration::try_from_secs_f64(s.clamp(0.1, 3600.0)).map_err(|_| "--interval takes seconds")?;
            }
            "--last" => o.last = true,
            "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if o.mysql.is_empty() {
        return Err("--mysql needs a command".into());
    }
    Ok(o)
}

/// Moves the cursor up over the `lines` last drawn and clears from there.
fn redraw(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("\x1b[{lines}A\x1b[J")
    }
}

/// One reading of both tables; Err when the server does not answer.
fn read(o: &Options) -> Result<Snapshot, String> {
    let out = Command::new(&o.mysql[0])
        .args(&o.mysql[1..])
        .args(["-h", &o.host, "-P", &o.port, "-u", &o.user, "-N", "-B", "--connect-timeout=3", "-e", view::QUERY])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", o.mysql[0]))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(Snapshot::parse(&String::from_utf8_lossy(&out.stdout)))
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tty = std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout();
    // The clone this view is about: the running one, the next to begin
    // (any clone_status row other than the first one read), or with
    // --last the latest.
    let mut watching = false;
    let mut first_seen: Option<Option<String>> = None;
    let mut last_line = String::new();
    let mut away_since: Option<Instant> = None;
    // Lines of the view on the terminal, redrawn in place.
    let mut drawn = 0;
    loop {
        let snapshot = match read(&o) {
            Ok(s) => {
                away_since = None;
                s
            }
            Err(e) if !watching => {
                eprintln!("clone-watch: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                // An in-place clone restarts the recipient: wait for it.
                let since = *away_since.get_or_insert_with(Instant::now);
                let line = format!("waiting for the server to answer again ({} s): {e}", since.elapsed().as_secs());
                if tty {
                    let _ = writeln!(stdout, "{}{line}", redraw(drawn));
                    drawn = 1;
                    let _ = stdout.flush();
                } else if since.elapsed() < o.interval {
                    println!("{line}");
                }
                std::thread::sleep(o.interval);
                continue;
            }
        };
        let key = snapshot.status.as_ref().map(|s| s.key());
        let first = first_seen.get_or_insert_with(|| key.clone());
        let running = snapshot.status.as_ref().is_some_and(|s| s.state == "In Progress");
        if !watching {
            watching = (o.last && key.is_some()) || running || (key.is_some() && key != *first);
            if o.last && key.is_none() {
                println!("No clone has run on this server.");
                return ExitCode::SUCCESS;
            }
            if !watching {
                if last_line.is_empty() {
                    last_line = "waiting for a clone to begin".into();
                    println!("{last_line}");
                }
                std::thread::sleep(o.interval);
                continue;
            }
        }
        let lines = render(&snapshot);
        if tty {
            let _ = writeln!(stdout, "{}{}", redraw(drawn), lines.join("\n"));
            drawn = lines.len();
            let _ = stdout.flush();
        } else if let Some(active) = lines.iter().find(|l| l.contains("In Progress") && l.starts_with("  ")) {
            if *active != last_line {
                println!("{active}");
                last_line.clone_from(active);
            }
        }
        if !running {
            if !tty {
                println!("{}", lines.join("\n"));
            }
            println!("{}", summary(&snapshot).join("\n"));
            let completed = snapshot.status.as_ref().is_some_and(|s| s.state == "Completed");
            return if completed { ExitCode::SUCCESS } else { ExitCode::from(1) };
        }
        std::thread::sleep(o.interval);
    }
}
