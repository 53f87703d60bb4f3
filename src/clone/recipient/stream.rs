//! One thread's data stream: the descriptors and data read from its
//! connection, checked, and applied through the storage engines, with file
//! data written behind the stream.

use super::link::{donor_error, drain_stream, send, LostWrite};
use super::Recipient;
use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use crate::server::files::{self as copy, WriteBehind};
use crate::server::session::Thd;
use crate::server::storage::{Apply, Callback, Cbk, Handle, Lend};
use clone_core::protocol::data::{Block, DataDecoder, DataError};
use clone_core::protocol::innodb::{self, BlockPlace, Checked, TaskView};
use clone_core::protocol::{Command, Response};
use clone_core::recipient::{descriptor_engine, tells_donor_after};
use clone_core::reuse::Digest;
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::thread::Scope;

use super::super::meter::Meter;
use super::is_restartable;

/// One thread's stream: descriptors and data read from its connection and
/// applied through the storage engines.
pub(super) struct Task<'r, 's, 'e, 't> {
    clone: &'r Recipient<'r>,
    thd: Thd<'t>,
    conn: RefCell<Connection>,
    /// Per engine: the master's apply handle, and this thread's task.
    apply: Vec<(&'r Handle, u32)>,
    pub(super) meter: Meter<'r>,
    scope: Option<&'s Scope<'s, 'e>>,
    /// Staging for O_DIRECT writes and zstd blocks, and the blocks the
    /// engine writes itself.
    lend: Lend,
    /// This connection's place in InnoDB's snapshot, for the guard.
    view: RefCell<TaskView>,
    /// The length and file offset the last data descriptor announced for
    /// its block.
    announced: Cell<Option<(u32, u64)>>,
    /// Decodes the data messages of the extensions the donor granted.
    data: RefCell<DataDecoder>,
    /// Reusing what this server holds: where the last data descriptor's
    /// block lies.
    place: Cell<Option<BlockPlace>>,
    /// Writes file data while the next block arrives (None: the thread
    /// could not start, and writes are done in place).
    writer: Option<WriteBehind>,
}

impl<'r: 's, 's, 'e, 't> Task<'r, 's, 'e, 't> {
    pub(super) fn new(
        clone: &'r Recipient<'r>,
        index: usize,
        thd: Thd<'t>,
        conn: Connection,
        apply: Vec<(&'r Handle, u32)>,
        scope: Option<&'s Scope<'s, 'e>>,
    ) -> Result<Self, (Error, Connection)> {
        let data = match DataDecoder::new(clone.version.granted()) {
            Ok(data) => data,
            Err(e) => return Err((Error::internal(format_args!("no zstd decompressor: {e}")), conn)),
        };
        let view = if index == 0 { TaskView::master() } else { TaskView::worker() };
        Ok(Task {
            clone,
            thd,
            conn: RefCell::new(conn),
            apply,
            meter: Meter::new(&clone.team, index),
            scope,
            lend: Lend::default(),
            view: RefCell::new(view),
            announced: Cell::new(None),
            data: RefCell::new(data),
            place: Cell::new(None),
            writer: WriteBehind::new(clone.zeros).map_err(|e| log::info!("Writing clone data in place: no writer thread ({e})")).ok(),
        })
    }

    pub(super) fn into_connection(self) -> Connection {
        self.conn.into_inner()
    }

    fn check_killed(&self) -> Result<(), Error> {
        self.thd.interrupted(self.meter.is_master())
    }

    /// EXECUTE, then apply every descriptor until the donor's COMPLETE.
    /// However the stream ends, the writes queued on it end first: InnoDB
    /// counts a block done once it is handed over, so a write that failed
    /// behind the stream fails the clone, with its own error, whatever
    /// else went wrong (a network error would otherwise resume past it).
    pub(super) fn stream(&self) -> Result<(), Error> {
        let streamed = self.stream_descriptors();
        self.settle()?;
        streamed
    }

    fn stream_descriptors(&self) -> Result<(), Error> {
        send(&mut self.conn.borrow_mut(), self.thd, true, &Command::Execute)?;
        let cbk = Callback::apply(self)?;
        let engines: Vec<u8> = self.clone.engines.iter().map(|e| e.db_type()).collect();
        loop {
            self.check_killed()?;
            let (index, descriptor) = {
                let mut conn = self.conn.borrow_mut();
                let (packet, wire) = conn.receive(Some(self.thd), true, 0)?;
                self.meter.account(0, wire as u64);
                match Response::decode(packet) {
                    Ok(Response::DataDesc { db_type, loc_index, descriptor }) => {
                        let index = descriptor_engine(db_type, loc_index, descriptor, &engines).map_err(Error::protocol)?;
                        (index, descriptor.to_vec())
                    }
                    Ok(Response::Complete) => return Ok(()),
                    Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
                    _ => return Err(Error::protocol("Wrong Clone RPC response, expecting descriptor")),
                }
            };
            let engine = self.clone.engines[index];
            let (handle, task) = self.apply[index];
            let c = cbk.cbk();
            // The engine sets the flags that apply to this chunk only.
            c.clear_flags();
            c.set_loc_index(index as u32);
            c.set_data_desc(&descriptor);
            let checked = if engine.is_innodb() {
                self.clone.innodb_guard.lock().check(&mut self.view.borrow_mut(), &descriptor).map_err(|r| self.clone.refuse(r))
            } else {
                Ok(Checked::Pass)
            };
            if self.clone.kept.is_some() {
                self.follow_files(&descriptor);
            }
            let applied = checked.and_then(|checked| {
                self.announced.set(match checked {
                    Checked::Data { len, offset } => Some((len, offset)),
                    // A file or state change: the engine may extend, sync,
                    // rename or delete files, after the writes before it.
                    Checked::Pass => {
                        self.settle()?;
                        None
                    }
                });
                handle.apply(self.thd, task, c)
            });
            if let Err(e) = applied {
                // A write that failed behind this one is the clone's error.
                let e = self.settle().err().unwrap_or(e);
                self.end_stream_after(e.code(), index);
                return Err(e);
            }
        }
    }

    /// Reusing what this server holds: the file and place of what the
    /// donor may send as reused. The files of file copy come on the
    /// master's connection, the blocks on every task's.
    fn follow_files(&self, descriptor: &[u8]) {
        if let Some((index, name)) = innodb::file_copy_file(descriptor) {
            self.clone.file_names.lock().insert(index, name.to_vec());
        }
        self.place.set(innodb::file_copy_block(descriptor));
    }

    /// Fills `out` with a block the donor found in what this server holds;
    /// if that changed since it was digested, the donor reads it again.
    fn fill_reused(&self, out: &mut [u8], digest: &Digest) -> Result<(), Error> {
        let place = self.place.take();
        let named = place.and_then(|p| self.clone.file_names.lock().get(&p.file).map(|n| (n.clone(), p.offset)));
        let (Some(kept), Some((name, offset))) = (self.clone.kept.as_ref(), named) else {
            return Err(Error::protocol("Wrong Clone RPC: reused data the recipient does not hold"));
        };
        if kept.read(&name, offset, out, digest).is_ok() {
            self.clone.reused.fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        log::info!("The block of {} at offset {offset} changed here since it was digested: the donor sends it", String::from_utf8_lossy(&name));
        let wire = self.clone.fetch(self.thd, &name, offset, out)?;
        self.meter.account(0, wire);
        Ok(())
    }

    /// A local error while applying: as the stock recipient does, the master
    /// tells the donor (an acknowledgement carrying the error), and every
    /// task reads what the donor still sends until it ends its stream. Both
    /// ends can then exit cleanly; a connection dropped mid-stream would make
    /// the donor wait minutes for a restart that never comes.
    fn end_stream_after(&self, error: i32, index: usize) {
        if !tells_donor_after(is_restartable(error), error == ER_CLONE_DONOR) {
            return;
        }
        if self.meter.is_master() {
            let _ = self.clone.acknowledge(self.thd, index, error, &[]);
        }
        // Also after a refused descriptor: the framing is intact, and a
        // worker that hung up would reach the donor as a network failure
        // before the master's acknowledgement, and hold the donor's clone
        // for a reconnection. (A killed task's socket is shut: it stops at once.)
        drain_stream(&mut self.conn.borrow_mut(), self.thd);
    }

    /// Reads the data message that must follow a descriptor; calls
    /// `use_data` with its block while it is valid, and with what names
    /// the block's place (the file the engine writes it to, and the offset
    /// there) for an error. A block that fails its checksum (DATA_CHECKED,
    /// or a zstd frame's) fails the clone.
    fn with_data<T>(&self, cbk: Cbk<'_>, use_data: impl FnOnce(Block<'_>, &dyn Fn() -> String) -> Result<T, Error>) -> Result<T, Error> {
        self.check_killed()?;
        let mut conn = self.conn.borrow_mut();
        let (packet, wire) = conn.receive(Some(self.thd), true, 0)?;
        // InnoDB takes the block's length from the descriptor.
        let announced = self.announced.take();
        let place = || {
            let name = cbk.dest_name();
            let offset = announced.map_or(0, |(_, offset)| offset);
            format!("{} at offset {offset}", if name.is_empty() { "a data block" } else { &name })
        };
        let block = self.data.borrow().decode(packet, announced.map(|(len, _)| len)).map_err(|e| data_error(e, &place))?;
        let len = block.len();
        let result = use_data(block, &place)?;
        let grow = self.meter.account(len as u64, wire as u64);
        drop(conn);
        if let (Some(n), Some(scope)) = (grow, self.scope) {
            let clone = self.clone;
            clone.team.spawn_workers(scope, n, "clone_client", |i| clone.worker(i));
        }
        Ok(result)
    }

    /// Waits for the writes queued so far; a failed one fails the clone,
    /// and is kept so that no task of it resumes.
    fn settle(&self) -> Result<(), Error> {
        let Some(writer) = &self.writer else { return Ok(()) };
        writer.drain().map_err(|e| {
            if let Some(lost) = LostWrite::of(&e) {
                self.clone.lost_write.lock().get_or_insert(lost);
            }
            Error::from(e)
        })
    }

    /// Expands a zstd `frame` into `out`, which is as long as the frame
    /// says it expands to.
    fn expand(&self, frame: &[u8], out: &mut [u8], place: &dyn Fn() -> String) -> Result<(), Error> {
        self.data.borrow_mut().expand(frame, out).map_err(|e| data_error(e, place))
    }
}

/// The error for a data message that fails its checks (`place` names the
/// block).
fn data_error(e: DataError, place: &dyn Fn() -> String) -> Error {
    match e {
        DataError::NotData | DataError::NoRoom => Error::protocol("Wrong Clone RPC response, expecting data packet COM_RES_DATA"),
        DataError::Malformed(what) => Error::protocol(format!("Wrong Clone RPC: {what}")),
        DataError::Length => Error::protocol("Wrong Clone RPC: data length differs from its descriptor"),
        DataError::Checksum { sent, received } => {
            log::error!("Data from the donor failed its checksum: {}", place());
            Error::protocol(format!("Data of {} fails its checksum (CRC-32C {sent:#010x} sent, {received:#010x} received)", place()))
        }
        DataError::Frame => {
            log::error!("Data from the donor failed its checksum: {}", place());
            Error::protocol(format!("Compressed data of {} does not expand to its length or fails its checksum", place()))
        }
    }
}

impl<'r: 's, 's, 'e, 't> Apply for Task<'r, 's, 'e, 't> {
    /// The apply side announced a state or asks to acknowledge one; the
    /// acknowledgement goes to the donor over the auxiliary connection.
    fn notice(&self, cbk: Cbk<'_>) -> Result<(), Error> {
        self.settle()?;
        if self.meter.state_notice(cbk.flags().state_change) {
            return Ok(());
        }
        self.check_killed()?;
        self.clone.acknowledge(self.thd, cbk.loc_index() as usize, 0, cbk.data_desc())
    }

    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error> {
        // O_DIRECT files take aligned memory: the connection's buffer is not.
        let direct = !cbk.flags().os_buffer_cache;
        let write = |data: &[u8]| {
            let written = match &self.writer {
                Some(writer) => writer.write(to, data, &cbk),
                None => copy::write_all(to, data, &cbk),
            };
            written.map_err(Error::from)
        };
        self.with_data(cbk, |block, place| match block {
            Block::Plain(data) if direct && self.writer.is_none() => self.lend.scratch(data.len(), |staged| {
                staged.copy_from_slice(data);
                write(staged)
            }),
            Block::Plain(data) => write(data),
            Block::Zstd { frame, len } => self.lend.scratch(len, |staged| {
                self.expand(frame, staged, place)?;
                write(staged)
            }),
            Block::Reused { digest, len } => self.lend.scratch(len, |staged| {
                self.fill_reused(staged, &digest)?;
                write(staged)
            }),
        })
    }

    fn apply_buffer(&self, cbk: Cbk<'_>) -> Result<&Lend, Error> {
        // The engine writes this block itself, after the queued ones.
        self.settle()?;
        self.with_data(cbk, |block, place| match block {
            Block::Plain(data) => self.lend.fill(data.len(), |out| {
                out.copy_from_slice(data);
                Ok(())
            }),
            Block::Zstd { frame, len } => self.lend.fill(len, |out| self.expand(frame, out, place)),
            Block::Reused { digest, len } => self.lend.fill(len, |out| self.fill_reused(out, &digest)),
        })
    }
}
