//! The --json output: one object per line (newline-delimited JSON), for
//! scripts. Written by hand: a few flat objects do not need a serializer.
//!
//! Every line has "type": "snapshot" (one per reading, the same figures as
//! the view) or "outcome" (the last line). Strings are always strings (a
//! NULL column is ""); numbers the server may not have are null.

use std::fmt::{Display, Write};

use crate::outcome::Outcome;
use crate::view::{Snapshot, Stage, Status, Totals};

/// A JSON string. Quotes, backslashes and control characters are escaped
/// (a control character could otherwise break the line or drive the
/// terminal the line is shown on); other characters stay as they are, the
/// output being UTF-8, except U+2028 and U+2029, which JavaScript takes for
/// line ends.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A number, or null when there is none; JSON has no NaN or infinity.
fn number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => x.to_string(),
        _ => "null".into(),
    }
}

/// An integer, or null when there is none.
fn integer<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".into(), |x| x.to_string())
}

/// Seconds to the microsecond, the server's precision: a difference of
/// two timestamps carries floating-point noise below it.
fn seconds(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Bytes per second as a whole number.
fn bytes_per_second(x: f64) -> u64 {
    // `as` saturates: a NaN or negative figure becomes 0.
    x.round() as u64
}

/// A JSON object written field by field, in order.
struct Object(String);

impl Object {
    fn new() -> Object {
        Object("{".into())
    }

    /// A field whose value is already JSON.
    fn raw(mut self, name: &str, json: impl Display) -> Object {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        let _ = write!(self.0, "{}:{json}", string(name));
        self
    }

    fn text(self, name: &str, value: &str) -> Object {
        self.raw(name, string(value))
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }

    /// What a clone ended with: its error, and the donor's binary log
    /// position and GTID set.
    fn outcome_of(self, st: &Status) -> Object {
        self.raw("error_number", st.error_no)
            .text("error_message", &st.error_message)
            .text("binlog_file", &st.binlog_file)
            .raw("binlog_position", integer(st.binlog_position))
            .text("gtid_executed", &st.gtid_executed)
    }
}

fn status(st: &Status) -> String {
    Object::new()
        .raw("id", integer(st.id.parse::<u64>().ok()))
        .text("state", &st.state)
        .text("source", &st.source)
        .text("destination", &st.destination)
        .raw("begin_time", number(st.begin))
        .raw("end_time", number(st.end))
        .raw("elapsed_seconds", number(Some(seconds(st.elapsed()))))
        .raw("server_time", number(Some(st.now)))
        .outcome_of(st)
        .end()
}

fn stage(x: &Stage, now: f64) -> String {
    let speeds = x.speeds(now);
    Object::new()
        .text("name", &x.name)
        .text("state", &x.state)
        .raw("begin_time", number(x.begin))
        .raw("end_time", number(x.end))
        .raw("threads", x.threads)
        .raw("estimate", x.estimate)
        .raw("data", x.data)
        .raw("network", x.network)
        .raw("data_speed", bytes_per_second(speeds.data))
        .raw("network_speed", bytes_per_second(speeds.network))
        .raw("percent", number(x.percent().map(|p| (p * 10.0).round() / 10.0)))
        .raw("eta_seconds", integer(x.eta(now).map(|s| s.round() as u64)))
        .end()
}

/// One reading of the tables.
pub fn snapshot(s: &Snapshot) -> String {
    let now = s.status.as_ref().map_or(0.0, |st| st.now);
    let stages: Vec<String> = s.stages.iter().map(|x| stage(x, now)).collect();
    Object::new()
        .text("type", "snapshot")
        .raw("restarting", false)
        .raw("status", s.status.as_ref().map_or_else(|| "null".into(), status))
        .raw("stages", format!("[{}]", stages.join(",")))
        .end()
}

/// A refresh while the server does not answer during the clone of `last`:
/// no figures, how long it has been silent, and what the client said.
pub fn away(last: &Snapshot, waiting_seconds: u64, client_error: &str) -> String {
    Object::new()
        .text("type", "snapshot")
        .raw("restarting", last.in_place())
        .raw("waiting_seconds", waiting_seconds)
        .text("client_error", client_error.trim())
        .raw("status", "null")
        .raw("stages", "[]")
        .end()
}

/// The last line: how it ended, with the summary of an ended clone.
pub fn outcome(o: &Outcome) -> String {
    let head = Object::new().text("type", "outcome").text("outcome", o.name()).raw("exit_status", o.exit_status());
    match o {
        Outcome::Completed(last) | Outcome::Failed(last) => ended(head, last),
        Outcome::Unreachable(why) => head.text("error", why).end(),
        Outcome::NoClone | Outcome::OutputClosed => head.end(),
    }
}

/// The summary's figures, flat, so that `jq .binlog_position` finds them.
fn ended(head: Object, last: &Snapshot) -> String {
    let (Some(st), Some(totals)) = (&last.status, Totals::of(last)) else { return head.end() };
    head.raw("id", integer(st.id.parse::<u64>().ok()))
        .text("state", &st.state)
        .raw("seconds", number(Some(seconds(totals.took))))
        .raw("data", totals.data)
        .raw("network", totals.network)
        .raw("copy_seconds", number(Some(seconds(totals.copying))))
        .raw("data_speed", bytes_per_second(totals.data_rate()))
        .outcome_of(st)
        .end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::fixtures::{COMPLETED_CLONE, RUNNING_CLONE};

    #[test]
    fn a_snapshot_is_one_line_with_the_views_figures() {
        let line = snapshot(&Snapshot::parse(RUNNING_CLONE));
        let expected = concat!(
            r#"{"type":"snapshot","restarting":false,"#,
            r#""status":{"id":1,"state":"In Progress","source":"127.0.0.1:13000","destination":"LOCAL INSTANCE","begin_time":1000.5,"end_time":null,"#,
            r#""elapsed_seconds":10,"server_time":1010.5,"error_number":0,"error_message":"","binlog_file":"","binlog_position":null,"gtid_executed":""},"#,
            r#""stages":["#,
            r#"{"name":"DROP DATA","state":"Completed","begin_time":1000.5,"end_time":1001,"threads":1,"estimate":0,"data":0,"network":0,"#,
            r#""data_speed":0,"network_speed":0,"percent":null,"eta_seconds":null},"#,
            r#"{"name":"FILE COPY","state":"In Progress","begin_time":1001,"end_time":null,"threads":4,"estimate":1048576000,"data":262144000,"network":262200000,"#,
            r#""data_speed":104857600,"network_speed":104870000,"percent":25,"eta_seconds":8},"#,
            r#"{"name":"PAGE COPY","state":"Not Started","begin_time":null,"end_time":null,"threads":0,"estimate":0,"data":0,"network":0,"#,
            r#""data_speed":0,"network_speed":0,"percent":null,"eta_seconds":null}"#,
            r#"]}"#
        );
        assert_eq!(line, expected);
    }

    #[test]
    fn the_outcome_carries_the_summary() {
        let completed = outcome(&Outcome::of(Snapshot::parse(COMPLETED_CLONE)));
        let expected = concat!(
            r#"{"type":"outcome","outcome":"completed","exit_status":0,"id":1,"state":"Completed","seconds":20,"data":1048576000,"network":1048600000,"#,
            r#""copy_seconds":18,"data_speed":58254222,"error_number":0,"error_message":"","binlog_file":"binlog.000002","binlog_position":4711,"#,
            r#""gtid_executed":"uuid:1-100,\nuuid2:1-5"}"#
        );
        assert_eq!(completed, expected);
        assert_eq!(outcome(&Outcome::NoClone), r#"{"type":"outcome","outcome":"no_clone","exit_status":4}"#);
        assert_eq!(
            outcome(&Outcome::Unreachable("ERROR 2003 (HY000): Can't connect to MySQL server on '10.0.0.5:3306' (111)".into())),
            r#"{"type":"outcome","outcome":"unreachable","exit_status":3,"error":"ERROR 2003 (HY000): Can't connect to MySQL server on '10.0.0.5:3306' (111)"}"#
        );
    }

    #[test]
    fn a_silent_server_gives_a_snapshot_without_figures() {
        let running = Snapshot::parse(RUNNING_CLONE);
        assert_eq!(
            away(&running, 12, "ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/tmp/mysql.sock' (2)\n"),
            concat!(
                r#"{"type":"snapshot","restarting":true,"waiting_seconds":12,"#,
                r#""client_error":"ERROR 2002 (HY000): Can't connect to local MySQL server through socket '/tmp/mysql.sock' (2)","status":null,"stages":[]}"#
            )
        );
        let into_a_directory = Snapshot::parse(&RUNNING_CLONE.replace("LOCAL INSTANCE", "/var/lib/clone"));
        assert!(away(&into_a_directory, 3, "").starts_with(r#"{"type":"snapshot","restarting":false,"waiting_seconds":3,"#));
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(string(r#"say "hi" \ C:\dir"#), r#""say \"hi\" \\ C:\\dir""#);
        assert_eq!(string("\0\x08\x0c\r\n\t\x1b[2J\x7f\u{85}"), r#""\u0000\u0008\u000c\r\n\t\u001b[2J\u007f\u0085""#);
        assert_eq!(string(""), r#""""#);
    }

    #[test]
    fn strings_keep_other_characters_but_javascripts_line_ends() {
        assert_eq!(string("Ошибка: naïve 日本 🦀"), "\"Ошибка: naïve 日本 🦀\"");
        assert_eq!(string("a\u{2028}b\u{2029}c"), r#""a\u2028b\u2029c""#);
    }

    #[test]
    fn a_servers_error_message_and_gtid_set_are_escaped() {
        // As the client prints them in batch mode: a tab, a line break and
        // a backslash escaped, quotes and everything else as they are.
        let failed = "S\tFailed\th:1\t/d\t1000.0\t1065.0\t1105\tcan't open \"./d\\\\t1.ibd\":\\tdéjà vu\\n\x01\tNULL\tNULL\t\
                      3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\\n\"odd\\\\uuid\":1\t1066.0\t7\n";
        let line = snapshot(&Snapshot::parse(failed));
        assert!(line.contains(r#""error_message":"can't open \"./d\\t1.ibd\":\tdéjà vu\n\u0001""#), "{line}");
        assert!(line.contains(r#""gtid_executed":"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n\"odd\\uuid\":1""#), "{line}");
        assert!(!line.contains('\n') && !line.contains('\x01'), "one line, no raw control characters: {line}");
    }

    #[test]
    fn numbers_the_server_did_not_give_are_null() {
        assert_eq!(number(Some(f64::NAN)), "null");
        assert_eq!(number(Some(f64::INFINITY)), "null");
        assert_eq!(number(None), "null");
        assert_eq!(number(Some(1717000000.123456)), "1717000000.123456");
        assert_eq!(seconds(1717000010.5 - 1717000000.123456), 10.376544);
        assert_eq!(integer::<u64>(None), "null");
    }
}
