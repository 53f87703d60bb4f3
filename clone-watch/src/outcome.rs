//! How a run ends, and the exit status that says so. These numbers are a
//! promise to scripts: --help, the module doc and clone-watch(1) list them.

use crate::view::Snapshot;

/// The exit status of a command line clone-watch does not understand.
pub const BAD_ARGUMENTS: u8 = 2;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The clone completed; its last reading (boxed: the other outcomes
    /// travel in every Err of the loops, and are small).
    Completed(Box<Snapshot>),
    /// The clone ended any other way (Failed); its last reading.
    Failed(Box<Snapshot>),
    /// The server could not be queried before a clone was found to follow
    /// (or the client could not be run): why.
    Unreachable(String),
    /// Standard output was closed (the reader of --json went away): the
    /// clone's end could not be reported.
    OutputClosed,
    /// --last, and no clone has run on this server.
    NoClone,
}

impl Outcome {
    /// The outcome of a clone that has ended.
    pub fn of(last: Snapshot) -> Outcome {
        if last.completed() {
            Outcome::Completed(Box::new(last))
        } else {
            Outcome::Failed(Box::new(last))
        }
    }

    pub fn exit_status(&self) -> u8 {
        match self {
            Outcome::Completed(_) => 0,
            Outcome::Failed(_) => 1,
            Outcome::Unreachable(_) | Outcome::OutputClosed => 3,
            Outcome::NoClone => 4,
        }
    }

    /// The outcome's name in the JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::Failed(_) => "failed",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::OutputClosed => "output_closed",
            Outcome::NoClone => "no_clone",
        }
    }
}

/// A failed write to standard output: nobody is reading any more.
impl From<std::io::Error> for Outcome {
    fn from(_: std::io::Error) -> Outcome {
        Outcome::OutputClosed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_outcome() -> [Outcome; 5] {
        [Outcome::Completed(Box::default()), Outcome::Failed(Box::default()), Outcome::Unreachable(String::new()), Outcome::OutputClosed, Outcome::NoClone]
    }

    #[test]
    fn every_exit_status_is_documented() {
        let man = include_str!("../clone-watch.1");
        let mut statuses: Vec<u8> = every_outcome().iter().map(Outcome::exit_status).collect();
        statuses.push(BAD_ARGUMENTS);
        for status in statuses {
            assert!(crate::args::HELP.contains(&format!("\n  {status}  ")), "--help lacks exit status {status}");
            assert!(man.contains(&format!(".IP {status}\n")), "clone-watch.1 lacks exit status {status}");
        }
    }

    #[test]
    fn the_clones_state_decides() {
        let completed = Snapshot::parse("S\tCompleted\th:1\t/d\t1\t2\t0\t\tNULL\tNULL\tNULL\t3\t1\n");
        assert_eq!(Outcome::of(completed).exit_status(), 0);
        let failed = Snapshot::parse("S\tFailed\th:1\t/d\t1\t2\t3873\tno\tNULL\tNULL\tNULL\t3\t1\n");
        assert_eq!(Outcome::of(failed).exit_status(), 1);
        assert_eq!(Outcome::of(Snapshot::default()).exit_status(), 1, "a status row gone after the clone is no success");
    }
}
