//! The data stream of one attempt, with the master and its workers: each
//! worker opens its own connection, joins the donor's clone with ATTACH and
//! the engines' apply side with its own task, and streams its share. The
//! acknowledgements of every task go to the donor over the master's
//! auxiliary connection.

use super::link::{donor_error, exit, missing, read_locators, send};
use super::stream::Task;
use super::{Master, Recipient};
use crate::server::clone_protocol::Connection;
use crate::server::entry::guard;
use crate::server::errors::*;
use crate::server::session::{Thd, Worker, WorkerSession};
use crate::server::storage::Mode;
use clone_core::protocol::extension::Caps;
use clone_core::protocol::{self, Command, Response};
use clone_core::recipient::first_threads;

impl Master<'_, '_> {
    /// Streams the data with the master and its workers.
    pub(super) fn transfer(&self, main: &mut Option<Connection>) -> Result<(), Error> {
        let Some(conn) = main.take() else { return Err(missing("main connection")) };
        let clone = &self.clone;
        let (result, conn) = std::thread::scope(|scope| {
            let config = clone.team.config;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
            let start = first_threads(config.max_threads, config.autotune, clone.version.granted().contains(Caps::ZSTD), cores);
            if start > 1 {
                clone.team.spawn_workers(scope, config.allowed_threads(start), "clone_client", |i| clone.worker(i));
            }
            let task = match Task::new(clone, 0, self.thd, conn, clone.apply.iter().map(|h| (h, h.task())).collect(), Some(scope)) {
                Ok(task) => task,
                Err((e, conn)) => return (Err(e), conn),
            };
            let result = task.stream();
            task.meter.flush();
            if let Err(e) = &result {
                for handle in &clone.apply {
                    handle.apply_error(self.thd, handle.task(), e.code());
                }
            }
            (result, task.into_connection())
        });
        *main = Some(conn);
        result
    }
}

impl Recipient<'_> {
    /// A worker: its own connection, ATTACH, its share of the stream.
    pub(super) fn worker(&self, index: usize) {
        guard((), || {
            let Some(session) = WorkerSession::start(Worker::Client) else { return };
            let thd = session.thd();
            let Ok(mut conn) = Connection::open(Some(thd), &self.address) else {
                log::info!("Task Connect failed");
                return;
            };
            conn.watch(&self.interrupter);
            let attach = Command::Attach(self.join_payload(&self.apply));
            // Errors are raised on the worker's own session, as the engines' are.
            let donor_locators = send(&mut conn, thd, true, &attach).and_then(|()| read_locators(&mut conn, thd)).map_err(Error::raise);
            let mut apply = Vec::new();
            // Kept until the worker ends, with the locator bytes they were opened with.
            let mut joined = Vec::new();
            // The engine joins the running clone through the donor's locator;
            // applying then goes through the master's apply handle (what the
            // engine returns here names the donor's clone, not ours).
            let mut result = donor_locators.map_err(|e| Error::reported(e.code())).and_then(|locs| {
                for ((engine, (_, bytes)), master) in self.engines.iter().zip(&locs).zip(&self.apply) {
                    let handle = engine.apply_begin(thd, Some(bytes), Mode::AddTask, self.apply_dir())?;
                    apply.push((master, handle.task()));
                    joined.push(handle);
                }
                Ok(())
            });
            let mut conn = Some(conn);
            let mut streamed = false;
            if result.is_ok() && apply.len() == self.engines.len() {
                if let Some(c) = conn.take() {
                    match Task::new(self, index, thd, c, apply.clone(), None) {
                        Ok(task) => {
                            result = task.stream();
                            streamed = true;
                            conn = Some(task.into_connection());
                        }
                        Err((e, c)) => {
                            result = Err(e);
                            conn = Some(c);
                        }
                    }
                }
            }
            let err = result.err().map_or(0, |e| e.raise().code());
            if let Some(mut c) = conn {
                // A worker that could not join (the clone failed meanwhile)
                // leaves with EXIT: a dropped connection would reach the
                // donor as a network failure, which it holds the clone for.
                let fatal = (streamed && super::breaks_connection(err)) || exit(&mut c, thd, true).is_err();
                c.close(Some(thd), fatal, true);
            }
            for (master, task) in apply {
                if err != 0 {
                    master.apply_error(thd, task, err);
                }
                let _ = master.apply_end_task(thd, task, err);
            }
            drop(joined);
        })
    }

    /// COM_ACK over the auxiliary connection, for the engine at `index`: a
    /// state the apply side finished (`error` 0), or a local error. `thd`
    /// is the calling thread's session.
    pub(super) fn acknowledge(&self, thd: Thd, index: usize, error: i32, descriptor: &[u8]) -> Result<(), Error> {
        let Some(handle) = self.apply.get(index) else {
            return Err(missing("storage engine at that index"));
        };
        self.send_ack(thd, &Command::Ack { error, locator: protocol::Locator { db_type: handle.engine().db_type(), bytes: handle.locator() }, descriptor })
    }

    /// Where InnoDB is among the engines (and the donor's locators).
    pub(super) fn innodb_index(&self) -> Option<usize> {
        self.engines.iter().position(|e| e.is_innodb())
    }

    /// COM_ACK of a state before the apply side has begun (a look at the
    /// snapshot): it names the donor's own locator.
    pub(super) fn acknowledge_for_donor(&self, thd: Thd, index: usize, error: i32, descriptor: &[u8]) -> Result<(), Error> {
        let Some((db_type, loc)) = self.donor_locators.get(index) else { return Err(missing("donor locator at that index")) };
        self.send_ack(thd, &Command::Ack { error, locator: protocol::Locator { db_type: *db_type, bytes: loc }, descriptor })
    }

    /// FETCH on the auxiliary connection: the donor reads `out.len()` bytes
    /// at `offset` of its file `name` again (what this server held there
    /// changed since it was digested). The bytes on the wire.
    pub(super) fn fetch(&self, thd: Thd, name: &[u8], offset: u64, out: &mut [u8]) -> Result<u64, Error> {
        let Some(handle) = self.innodb_index().and_then(|i| self.apply.get(i)) else {
            return Err(missing("InnoDB apply handle"));
        };
        let locator = protocol::Locator { db_type: handle.engine().db_type(), bytes: handle.locator() };
        let fetch = Command::Fetch { locator, name, offset, len: out.len() as u32 };
        let mut link = self.ack_link.lock();
        let Some(conn) = link.as_mut() else { return Err(missing("auxiliary connection")) };
        send(conn, thd, false, &fetch)?;
        let (packet, wire) = conn.receive(Some(thd), false, 0)?;
        // A plain DATA message of exactly the length asked for.
        match packet.split_first() {
            Some((&protocol::response::DATA, block)) if block.len() == out.len() => out.copy_from_slice(block),
            _ => {
                return Err(match Response::decode(packet) {
                    Ok(Response::Error { code, message }) => donor_error(code, message),
                    _ => Error::protocol("Wrong Clone RPC response to the fetch"),
                })
            }
        }
        let (packet, _) = conn.receive(Some(thd), false, 0)?;
        match Response::decode(packet) {
            Ok(Response::Complete) => Ok(wire as u64),
            Ok(Response::Error { code, message }) => Err(donor_error(code, message)),
            _ => Err(Error::protocol("Wrong Clone RPC response to the fetch")),
        }
    }

    fn send_ack(&self, thd: Thd, ack: &Command<'_>) -> Result<(), Error> {
        let mut link = self.ack_link.lock();
        let Some(conn) = link.as_mut() else { return Err(missing("auxiliary connection")) };
        send(conn, thd, false, ack)?;
        let (packet, _) = conn.receive(Some(thd), false, 0)?;
        match Response::decode(packet) {
            Ok(Response::Complete) => Ok(()),
            Ok(Response::Error { code, message }) => Err(donor_error(code, message)),
            _ => Err(Error::protocol("Wrong Clone RPC response to COM_ACK")),
        }
    }
}
