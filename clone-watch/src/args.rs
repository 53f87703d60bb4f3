//! The command line: the options, --help and --version.

use std::time::Duration;

pub struct Options {
    pub host: String,
    pub port: String,
    pub user: String,
    /// The client and its own options, run once per reading.
    pub mysql: Vec<String>,
    pub interval: Duration,
    pub last: bool,
    pub json: bool,
}

/// What the command line asks for.
pub enum Request {
    Watch(Options),
    Help,
    Version,
}

pub const USAGE: &str =
    "usage: clone-watch [-h HOST] [-P PORT] [-u USER] [--last] [--interval SECONDS] [--json] [--mysql \"COMMAND\"]\n       clone-watch --help | --version";

/// The whole of --help; the exit statuses are those of outcome.rs (a test
/// checks that each is listed).
pub const HELP: &str = "\
usage: clone-watch [-h HOST] [-P PORT] [-u USER] [--last] [--interval SECONDS] [--json] [--mysql \"COMMAND\"]
       clone-watch --help | --version

Shows a MySQL clone on its recipient as it runs: one line per stage with
the percent of its estimate, MiB/s and the time left, through the restart
of an in-place clone, then a summary (bytes, time, throughput, the donor's
binary log position and GTID set). It reads performance_schema.clone_status
and clone_progress through the mysql client. Without --last it follows the
clone that is running, or waits for the next one to begin.

Options:
  -h, --host HOST        the recipient's host (default 127.0.0.1)
  -P, --port PORT        its port (default 3306)
  -u, --user USER        the account to read with (default root); it needs
                         SELECT on performance_schema.clone_status and
                         performance_schema.clone_progress
      --last             show the latest clone, running or ended, instead of
                         waiting for the next one
      --interval SECONDS time between readings, 0.1 to 3600 (default 1)
      --json             one JSON object per reading (newline-delimited)
                         instead of the view, then one for the outcome
      --mysql \"COMMAND\"  the client to run, with options of its own, split
                         at spaces (default \"mysql\"), e.g.
                         --mysql \"mysql --defaults-extra-file=/etc/clone-watch.cnf\"
  -?, --help             show this help and exit
  -V, --version          show the version and exit

Values may also be attached: --port=3307, -P3307.

Environment:
  MYSQL_PWD              the password; the mysql client reads it (it is
                         never put on a command line). The client's option
                         files ([client] in ~/.my.cnf) are read as usual,
                         but the host, port and user are those above.

Exit status:
  0  the clone completed (and for --help, --version)
  1  the clone failed
  2  bad arguments
  3  the clone could not be followed: the mysql client could not be run,
     the server could not be queried before a clone was found, or standard
     output was closed before the clone ended
  4  --last, and no clone has run on this server

See clone-watch(1).
";

/// The defaults: a local server, as root, a reading a second.
fn defaults() -> Options {
    Options {
        host: "127.0.0.1".into(),
        port: "3306".into(),
        user: "root".into(),
        mysql: vec!["mysql".into()],
        interval: Duration::from_secs(1),
        last: false,
        json: false,
    }
}

/// Reads the program's own command line. An argument that is not UTF-8
/// (which std::env::args would panic on) is a bad argument like any other.
pub fn from_command_line() -> Result<Request, String> {
    let args: Result<Vec<String>, String> =
        std::env::args_os().skip(1).map(|a| a.into_string().map_err(|a| format!("argument {} is not UTF-8", a.to_string_lossy()))).collect();
    parse(args?)
}

/// Reads the arguments (without the program's name). Err is the message
/// for a command line that cannot be followed.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Request, String> {
    let mut o = defaults();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, mut inline) = attached_value(&arg);
        let mut value = || inline.take().map(String::from).or_else(|| args.next()).ok_or(format!("{name} needs a value"));
        match name {
            "-h" | "--host" => o.host = value()?,
            "-P" | "--port" => o.port = port(&value()?)?,
            "-u" | "--user" => o.user = value()?,
            "--mysql" => o.mysql = value()?.split_whitespace().map(String::from).collect(),
            "--interval" => o.interval = interval(&value()?)?,
            "--last" => o.last = true,
            "--json" => o.json = true,
            "-?" | "--help" => return Ok(Request::Help),
            "-V" | "--version" => return Ok(Request::Version),
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => return Err(format!("unexpected argument {arg}: clone-watch takes options only")),
        }
        if inline.is_some() {
            return Err(format!("{name} takes no value"));
        }
    }
    if o.mysql.is_empty() {
        return Err("--mysql needs a command".into());
    }
    Ok(Request::Watch(o))
}

/// Splits "--port=3307" and "-P3307" (the mysql client takes both) into
/// the option and its value; any other argument has no value attached.
fn attached_value(arg: &str) -> (&str, Option<&str>) {
    if arg.starts_with("--") {
        if let Some((name, value)) = arg.split_once('=') {
            return (name, Some(value));
        }
    } else {
        for short in ["-h", "-P", "-u"] {
            match arg.strip_prefix(short) {
                Some(value) if !value.is_empty() => return (short, Some(value)),
                _ => {}
            }
        }
    }
    (arg, None)
}

/// A TCP port, checked here rather than left to the client, whose error
/// would read as a server that cannot be reached.
fn port(v: &str) -> Result<String, String> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p.to_string()),
        _ => Err(format!("--port takes a port number, not {v}")),
    }
}

/// Seconds between readings, kept within 0.1 s and an hour.
fn interval(v: &str) -> Result<Duration, String> {
    let seconds: f64 = v.parse().map_err(|_| format!("--interval takes seconds, not {v}"))?;
    Duration::try_from_secs_f64(seconds.clamp(0.1, 3600.0)).map_err(|_| format!("--interval takes seconds, not {v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Request, String> {
        parse(args.iter().map(|a| a.to_string()))
    }

    fn options(args: &[&str]) -> Options {
        match parsed(args) {
            Ok(Request::Watch(o)) => o,
            Ok(_) => panic!("{args:?}: not a watch"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn help_and_version_are_asked_for_anywhere_on_the_line() {
        for args in [&["--help"][..], &["-?"], &["-h", "db1", "-?"], &["--last", "--help", "--json"]] {
            assert!(matches!(parsed(args), Ok(Request::Help)), "{args:?}");
        }
        assert!(matches!(parsed(&["-V"]), Ok(Request::Version)));
    }

    #[test]
    fn values_come_after_the_option_or_after_an_equals_sign() {
        let o = options(&["-h", "db1", "--port=3307", "--user", "watcher", "--interval=0.5", "--last", "--json", "--mysql", "mysql --ssl-mode=REQUIRED"]);
        assert_eq!((o.host.as_str(), o.port.as_str(), o.user.as_str()), ("db1", "3307", "watcher"));
        assert_eq!(o.interval, Duration::from_millis(500));
        assert!(o.last && o.json);
        assert_eq!(o.mysql, ["mysql", "--ssl-mode=REQUIRED"]);
        let o = options(&["-hdb2", "-P3308", "-uwatcher", "--mysql=mysql --defaults-extra-file=/etc/w.cnf"]);
        assert_eq!((o.host.as_str(), o.port.as_str(), o.user.as_str()), ("db2", "3308", "watcher"));
        assert_eq!(o.mysql, ["mysql", "--defaults-extra-file=/etc/w.cnf"]);
        let o = options(&[]);
        assert_eq!(
            (o.host.as_str(), o.port.as_str(), o.user.as_str(), o.interval, o.last, o.json),
            ("127.0.0.1", "3306", "root", Duration::from_secs(1), false, false)
        );
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let error = |args: &[&str]| parsed(args).err().unwrap_or_default();
        assert_eq!(error(&["--bogus"]), "unknown option --bogus");
        assert_eq!(error(&["-x"]), "unknown option -x");
        assert_eq!(error(&["-Lh"]), "unknown option -Lh");
        assert_eq!(error(&["db1"]), "unexpected argument db1: clone-watch takes options only");
        assert_eq!(error(&["-h"]), "-h needs a value");
        assert_eq!(error(&["--port", "db1"]), "--port takes a port number, not db1");
        assert_eq!(error(&["--port=0"]), "--port takes a port number, not 0");
        assert_eq!(error(&["--interval", "soon"]), "--interval takes seconds, not soon");
        assert_eq!(error(&["--interval", "NaN"]), "--interval takes seconds, not NaN");
        assert_eq!(error(&["--last=yes"]), "--last takes no value");
        assert_eq!(error(&["--mysql", " "]), "--mysql needs a command");
    }

    #[test]
    fn intervals_are_kept_within_bounds() {
        assert_eq!(options(&["--interval", "0"]).interval, Duration::from_millis(100));
        assert_eq!(options(&["--interval", "1e9"]).interval, Duration::from_secs(3600));
    }
}
