//! The look at the donor's snapshot before anything here is dropped or
//! written: the donor's estimate of what the clone writes, which decides
//! whether an in-place clone is staged and is checked against this
//! server's free space; and the end of a dry run.

use super::link::{donor_error, drain_stream, exit, missing, send};
use super::Master;
use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use crate::server::session;
use clone_core::protocol::innodb::CopyEstimate;
use clone_core::protocol::Command;
use clone_core::recipient::{look_step, LookStep};

/// Before it announces the file copy's START, a donor sends its task's
/// descriptor and, after DDL, a few file descriptors; far more is refused.
const LOOK_MESSAGES: usize = 1024;
/// The classic protocol's COM_PING: answered once a donor's session is
/// back in command mode.
const COM_PING: u8 = 0x0e;

impl Master<'_, '_> {
    /// How much the donor's snapshot will write here, from the START of its
    /// file copy, and whether this server has room for it. The donor's
    /// clone that told us is stopped there, as the stock recipient stops a
    /// clone it cannot take (an acknowledgement with an error), and ended;
    /// the real clone starts anew with another INIT. That costs the donor
    /// one snapshot begun and ended, and the recipient one more connection
    /// pair.
    pub(super) fn look(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let Some(mut conn) = main.take() else { return Err(missing("main connection")) };
        let estimate = self.read_estimate(&mut conn);
        self.end_look(conn, estimate.is_ok());
        let needed = estimate?.disk_bytes;
        if self.clone.in_place() {
            self.tell_discarded();
            self.choose_staging(needed)?;
        }
        let mut counted = String::new();
        let result = super::super::check_space(self.thd, self.clone.apply_dir(), needed, |text| {
            self.clone.tell(text);
            counted = text.to_owned();
        });
        // A refusal says what was counted, dry run or not.
        if result.is_err() && !self.clone.dry_run {
            self.clone.notes.lock().push(counted);
        }
        result
    }

    /// EXECUTE, and the descriptors up to the START of the file copy.
    fn read_estimate(&self, conn: &mut Connection) -> Result<CopyEstimate, Error> {
        send(conn, self.thd, true, &Command::Execute)?;
        let innodb = self.clone.innodb_index().map(|i| (i, self.clone.engines[i].db_type()));
        for _ in 0..LOOK_MESSAGES {
            let (packet, _) = conn.receive(Some(self.thd), true, 0)?;
            match look_step(packet, innodb) {
                LookStep::Skip => {}
                LookStep::Estimate(estimate) => return Ok(estimate),
                LookStep::Acknowledge(ack) => self.clone.acknowledge_for_donor(self.thd, innodb.map_or(0, |(i, _)| i), 0, &ack)?,
                LookStep::Refused { code, message } => return Err(donor_error(code, message)),
                LookStep::Wrong(what) => return Err(Error::protocol(what)),
            }
        }
        Err(Error::protocol("Wrong Clone RPC: no estimate at the start of the file copy"))
    }

    /// Stops the donor's stream (if it runs) and leaves the donor once its
    /// clone has ended: a COM_PING answered on the main connection means
    /// the donor's session is back from the clone, which it ends first.
    fn end_look(&self, mut conn: Connection, streaming: bool) {
        let thd = self.thd;
        let innodb = self.clone.innodb_index().unwrap_or(0);
        let stopped = !streaming || (self.clone.acknowledge_for_donor(thd, innodb, ER_QUERY_INTERRUPTED, &[]).is_ok() && drain_stream(&mut conn, thd));
        if let Some(mut ack) = self.clone.ack_link.lock().take() {
            let left = exit(&mut ack, thd, false).is_ok();
            ack.close(None, !left, false);
        }
        // The stock donor has left the clone after its error (an EXIT gets
        // "unknown command"); this donor leaves it on EXIT.
        let ended = stopped
            && send(&mut conn, thd, true, &Command::Exit).is_ok()
            && conn.receive(Some(thd), true, 0).is_ok()
            && conn.send(Some(thd), true, COM_PING, Vec::new()).is_ok()
            && conn.receive(Some(thd), true, 0).is_ok();
        // What the donor answered is not this statement's error.
        conn.close(Some(thd), !ended, true);
    }

    /// Every check passed. In place the server restarts after any CLONE
    /// that returns success (sql_admin.cc), so there a dry run ends with an
    /// error that says so; into a new directory it returns OK.
    pub(super) fn conclude_dry_run(&self) -> Result<(), Error> {
        let clone = &self.clone;
        if clone.in_place() {
            if !session::server_is_supervised() {
                // What the real clone ends with, after it has replaced the data.
                clone.tell("No supervisor restarts this server: the clone would replace its data, then shut it down");
                return Err(Error::with_str(message::ER_RESTART_SERVER_FAILED, "mysqld is not managed by supervisor process"));
            }
            clone.tell("A supervisor restarts this server after the clone");
            return Err(Error::with_str(
                message::ER_CLONE_DISALLOWED,
                "clone_dry_run is ON: every check passed and nothing was changed; the clone in place would start",
            ));
        }
        clone.tell("Every check passed and nothing was written: the clone would start");
        Ok(())
    }
}
