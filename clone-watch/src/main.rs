//! clone-watch: a live view of a clone for a person. Points at a recipient
//! (host, port, user), reads performance_schema.clone_status and
//! clone_progress once a second through the `mysql` client, and shows one
//! line per stage with the percent of its estimate, MiB/s and the time
//! left; then the summary (bytes, time, throughput, the donor's binary log
//! position and GTID set). An in-place clone restarts the recipient: the
//! view says so and waits for it to answer again (the client's own error
//! lines are captured, never shown), then reports the outcome. With
//! --json it prints one JSON object per reading instead, for scripts.
//!
//!     clone-watch [-h HOST] [-P PORT] [-u USER] [--last] [--interval S]
//!                 [--json] [--mysql "COMMAND"]
//!     clone-watch --help | --version
//!
//! The password comes from MYSQL_PWD, never the command line. Without
//! --last it waits for the next clone when none is running.
//!
//! Exit status (outcome.rs; also in --help and clone-watch(1)):
//! 0 the clone completed (and --help, --version); 1 it failed; 2 bad
//! arguments; 3 the clone could not be followed: the client could not be
//! run, the server could not be queried before a clone was found, or
//! standard output was closed before the clone ended; 4 --last, and no
//! clone has run on this server.
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal, Write};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod args;
mod json;
mod outcome;
mod screen;
mod view;

use args::{Options, Request};
use outcome::Outcome;
use screen::Screen;
use view::Snapshot;

fn main() -> ExitCode {
    let o = match args::from_command_line() {
        Ok(Request::Watch(o)) => o,
        Ok(Request::Help) => return say(args::HELP),
        Ok(Request::Version) => return say(&format!("clone-watch {}\n", env!("CARGO_PKG_VERSION"))),
        Err(e) => {
            let _ = writeln!(io::stderr(), "clone-watch: {e}\n{}", args::USAGE);
            return ExitCode::from(outcome::BAD_ARGUMENTS);
        }
    };
    let mut screen = Screen::new(o.json, io::stdout().is_terminal());
    let outcome = match find_clone(&o, &mut screen).and_then(|first| follow(&o, &mut screen, first)) {
        Ok(last) => Outcome::of(last),
        Err(outcome) => outcome,
    };
    // The clone's outcome is known even if it can no longer be shown: the
    // exit status still tells it.
    let _ = screen.end(&outcome);
    ExitCode::from(outcome.exit_status())
}

/// --help, --version: the text on standard output, exit status 0.
fn say(text: &str) -> ExitCode {
    let _ = io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// One reading of both tables. Err is what the client said on its
/// standard error, which `output()` captures so that it never lands in
/// the view.
fn read(o: &Options) -> Result<Snapshot, String> {
    let Some((program, own_options)) = o.mysql.split_first() else { return Err("no client to run".into()) };
    let out = Command::new(program)
        .args(own_options)
        .args(["-h", &o.host, "-P", &o.port, "-u", &o.user, "-N", "-B", "--connect-timeout=3", "-e", view::QUERY])
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(if said.is_empty() { format!("{program} failed ({})", out.status) } else { said });
    }
    Ok(Snapshot::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads until there is a clone to follow: the one running, the next to
/// begin (any clone_status row other than the first one read), or with
/// --last the latest. A server that cannot be queried at the first reading
/// is given up on; one that answered before and falls silent is waited
/// for: an in-place clone that began and ended between two readings is
/// restarting it.
fn find_clone(o: &Options, screen: &mut Screen) -> Result<Snapshot, Outcome> {
    let mut first_key = None;
    let mut said_waiting = false;
    let mut last: Option<Snapshot> = None;
    let mut silent_since: Option<Instant> = None;
    loop {
        let snapshot = match (read(o), &last) {
            (Ok(snapshot), _) => snapshot,
            (Err(client_error), None) => return Err(Outcome::Unreachable(client_error)),
            (Err(client_error), Some(before)) => {
                let since = *silent_since.get_or_insert_with(Instant::now);
                screen.away(before, since.elapsed().as_secs(), &client_error)?;
                std::thread::sleep(o.interval);
                continue;
            }
        };
        silent_since = None;
        let key = snapshot.status.as_ref().map(view::Status::key);
        if o.last {
            return if key.is_some() { Ok(snapshot) } else { Err(Outcome::NoClone) };
        }
        let first = first_key.get_or_insert_with(|| key.clone());
        if snapshot.running() || (key.is_some() && key != *first) {
            return Ok(snapshot);
        }
        if !said_waiting {
            screen.waiting_for_clone()?;
            said_waiting = true;
        }
        last = Some(snapshot);
        std::thread::sleep(o.interval);
    }
}

/// Shows the clone until it has ended; returns the last reading.
fn follow(o: &Options, screen: &mut Screen, mut snapshot: Snapshot) -> Result<Snapshot, Outcome> {
    loop {
        screen.show(&snapshot)?;
        if !snapshot.running() {
            return Ok(snapshot);
        }
        snapshot = next_reading(o, screen, &snapshot)?;
    }
}

/// The next reading, however long the server takes to answer: an
/// in-place clone restarts the recipient, which is then silent for a while.
fn next_reading(o: &Options, screen: &mut Screen, last: &Snapshot) -> Result<Snapshot, Outcome> {
    let mut silent_since: Option<Instant> = None;
    loop {
        std::thread::sleep(o.interval);
        match read(o) {
            Ok(snapshot) => return Ok(snapshot),
            Err(client_error) => {
                let since = *silent_since.get_or_insert_with(Instant::now);
                screen.away(last, since.elapsed().as_secs(), &client_error)?;
            }
        }
    }
}
