//! Where the view goes: a terminal, redrawn in place; a log (standard
//! output is a file or a pipe), which gets only what changed; or
//! newline-delimited JSON. A write fails when the reader has gone away;
//! the caller then stops (Outcome::OutputClosed).

use std::io::{self, Write};
use std::time::Instant;

use crate::json;
use crate::outcome::Outcome;
use crate::view::{away_line, render, summary, Snapshot};

pub enum Screen {
    /// How many lines of the view are on the terminal, to redraw them.
    Terminal {
        drawn: usize,
    },
    /// The running stage's line last printed; while the server is silent,
    /// since when.
    Log {
        last_line: String,
        silent_since: Option<Instant>,
    },
    Json,
}

impl Screen {
    pub fn new(json: bool, terminal: bool) -> Screen {
        match (json, terminal) {
            (true, _) => Screen::Json,
            (false, true) => Screen::Terminal { drawn: 0 },
            (false, false) => Screen::Log { last_line: String::new(), silent_since: None },
        }
    }

    /// Said once, while no clone is running yet; on standard error with
    /// --json, whose standard output is for JSON only.
    pub fn waiting_for_clone(&mut self) -> io::Result<()> {
        const WAITING: &str = "waiting for a clone to begin";
        match self {
            Screen::Json => {
                let _ = writeln!(io::stderr(), "clone-watch: {WAITING}");
                Ok(())
            }
            Screen::Terminal { .. } | Screen::Log { .. } => print(WAITING),
        }
    }

    /// A reading of the clone being followed.
    pub fn show(&mut self, s: &Snapshot) -> io::Result<()> {
        match self {
            Screen::Terminal { drawn } => {
                let lines = render(s);
                let text = format!("{}{}", redraw(*drawn), lines.join("\n"));
                *drawn = lines.len();
                print(&text)
            }
            Screen::Log { last_line, silent_since } => {
                if let Some(since) = silent_since.take() {
                    print(&format!("the server answers again (after {} s)", since.elapsed().as_secs()))?;
                }
                // A log is read afterwards: the running stage, when it moved.
                let running = render(s).into_iter().find(|l| l.starts_with("  ") && l.contains("In Progress"));
                match running {
                    Some(line) if line != *last_line => {
                        print(&line)?;
                        *last_line = line;
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
            Screen::Json => print(&json::snapshot(s)),
        }
    }

    /// A refresh while the server does not answer during the clone of
    /// `last`, `seconds` after it stopped; the client's error is shown only
    /// in JSON, as data.
    pub fn away(&mut self, last: &Snapshot, seconds: u64, client_error: &str) -> io::Result<()> {
        match self {
            Screen::Terminal { drawn } => {
                let text = format!("{}{}", redraw(*drawn), away_line(last, seconds, client_error));
                *drawn = 1;
                print(&text)
            }
            // A log says it once, and how long it lasted when it is over.
            Screen::Log { silent_since, .. } => {
                if silent_since.is_some() {
                    return Ok(());
                }
                *silent_since = Some(Instant::now());
                print(&away_line(last, seconds, client_error))
            }
            Screen::Json => print(&json::away(last, seconds, client_error)),
        }
    }

    /// The end: the summary of a clone that ended, or why there is none.
    pub fn end(&mut self, outcome: &Outcome) -> io::Result<()> {
        if let Outcome::Unreachable(why) = outcome {
            let _ = writeln!(io::stderr(), "clone-watch: {why}");
        }
        match (self, outcome) {
            (_, Outcome::OutputClosed) => Ok(()),
            (Screen::Json, _) => print(&json::outcome(outcome)),
            (screen, Outcome::Completed(last) | Outcome::Failed(last)) => {
                // A log has had only the running stage: the whole view first.
                let mut lines = if let Screen::Log { .. } = screen { render(last) } else { vec![] };
                lines.extend(summary(last));
                print(&lines.join("\n"))
            }
            (_, Outcome::NoClone) => print("No clone has run on this server."),
            (_, Outcome::Unreachable(_)) => Ok(()),
        }
    }
}

/// Moves the cursor up over the `lines` last drawn and clears from there.
fn redraw(lines: usize) -> String {
    if lines == 0 {
        String::new()
    } else {
        format!("\x1b[{lines}A\x1b[J")
    }
}

/// A line (or lines) on standard output, at once: the view is watched live.
fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}
