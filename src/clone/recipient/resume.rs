//! Resuming after a network failure, as the stock recipient does: new
//! connections within the donor's network-failure window, and REINIT, after
//! which the engines restart from what was acknowledged.

use super::link::{exit, read_locators, send};
use super::{Master, KILL_POLL};
use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use crate::server::storage::Mode;
use clone_core::protocol::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Reconnection attempts start at least this far apart.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(5);

impl Master<'_, '_> {
    /// Drops this attempt's connections, connects again and resumes the
    /// clone with COM_REINIT.
    pub(super) fn resume(&mut self, main: &mut Option<Connection>) -> Result<(), Error> {
        let thd = self.thd;
        if let Some(ack) = self.clone.ack_link.lock().take() {
            ack.close(None, true, false);
        }
        // The broken main connection stays registered as the session's
        // clone socket until a new one replaces it; closing it with the
        // session clears the session's errors, so that a KILL, whenever it
        // comes, is what the statement reports.
        let mut broken = main.take();
        let (new_main, new_ack) = match self.reconnect() {
            Ok(pair) => pair,
            Err(killed) => {
                if let Some(b) = broken.take() {
                    b.close(Some(thd), true, killed);
                }
                return Err(if killed {
                    Error::new(message::ER_QUERY_INTERRUPTED)
                } else {
                    log::info!("Source break restart loop");
                    match thd.error().0 {
                        0 => Error::unknown(ER_NET_READ_ERROR),
                        code => Error::reported(code as i32),
                    }
                });
            }
        };
        // Replaced as the session's clone socket: closed without the session.
        if let Some(b) = broken.take() {
            b.close(None, true, false);
        }
        *self.clone.ack_link.lock() = Some(new_ack);
        let mut m = new_main;
        // The engines re-issue their locators for the restart.
        let mut restarted = Vec::new();
        for handle in &self.clone.apply {
            restarted.push(handle.engine().apply_begin(thd, Some(handle.locator()), Mode::Restart, self.clone.apply_dir())?);
        }
        self.clone.apply = restarted;
        let reinit = Command::Reinit(self.clone.join_payload(&self.clone.apply));
        let sent = send(&mut m, thd, true, &reinit).and_then(|()| read_locators(&mut m, thd));
        *main = Some(m);
        sent.map(|_| ())
    }

    /// A new main and auxiliary connection, tried every few seconds within
    /// the donor's window; Err(true) if the statement was killed meanwhile,
    /// Err(false) when the window is over.
    fn reconnect(&self) -> Result<(Connection, Connection), bool> {
        let thd = self.thd;
        let minutes = self.clone.reconnect_minutes;
        // The workers of the failed attempt are gone; new ones may start.
        self.clone.team.threads.store(1, Relaxed);
        log::info!("Source re-connect for at most {minutes} minutes");
        let deadline = Instant::now() + Duration::from_secs(minutes as u64 * 60);
        let mut tries = 0u32;
        loop {
            let started = Instant::now();
            if thd.killed() {
                return Err(true);
            }
            if minutes == 0 || started > deadline {
                return Err(false);
            }
            tries += 1;
            match Connection::open(Some(thd), &self.clone.address) {
                Ok(mut m) => match self.clone.open_watched(&self.clone.address) {
                    Ok(a) => return Ok((m, a)),
                    Err(_) => {
                        let _ = exit(&mut m, thd, true);
                        m.close(Some(thd), true, false);
                    }
                },
                Err(_) => log::info!("Source re-connect failed: count: {tries}"),
            }
            while started.elapsed() < RECONNECT_INTERVAL && !thd.killed() {
                std::thread::sleep(KILL_POLL);
            }
        }
    }
}
