//! Moving bytes between the storage engine's file descriptors and buffers,
//! in its callbacks. Files are read and written at their current offsets
//! (the engine positions them). A local clone first tries to share the
//! source's extents (`share_extents`). In-kernel copies are preferred:
//! `copy_file_range` (which can share extents on filesystems that support
//! it), then `sendfile`, then read/write through an aligned buffer; a method
//! that fails once is not tried again in this process. The recipient's
//! writes go behind the engine, through a pipeline, and leave long runs of
//! zeros to the file system as zero ranges where InnoDB would.

use clone_core::transfer::buffers::{AlignedBuf, BufferPool, OutOfMemory};
use clone_core::transfer::pipeline::{Pipeline, Sink};
use clone_core::transfer::zeros::{self, Piece};
use rustix::fd::{BorrowedFd, OwnedFd, RawFd};
use rustix::fs::{FallocateFlags, SeekFrom};
use rustix::io::Errno as OsErrno;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

pub use clone_core::transfer::buffers::ALIGN;

static COPY_FILE_RANGE_OK: AtomicBool = AtomicBool::new(true);
static SENDFILE_OK: AtomicBool = AtomicBool::new(true);

/// The names of the files a copy reads and writes, asked for only when an
/// error must name one.
pub trait FileNames {
    fn source(&self) -> String;
    fn dest(&self) -> String;
}

/// A failed copy: the file and the OS error, on the side that failed.
#[derive(Debug)]
pub enum CopyError {
    Read { file: String, error: io::Error },
    Write { file: String, error: io::Error },
    OutOfMemory(usize),
}

impl From<OutOfMemory> for CopyError {
    fn from(e: OutOfMemory) -> CopyError {
        CopyError::OutOfMemory(e.0)
    }
}

fn read_error(names: &dyn FileNames, error: io::Error) -> CopyError {
    CopyError::Read { file: names.source(), error }
}

fn write_error(names: &dyn FileNames, error: io::Error) -> CopyError {
    CopyError::Write { file: names.dest(), error }
}

/// How far below the server's own threads the clone's helper threads run
/// when the CPU is short: a share of about a third of a session's.
const HELPER_NICE: i32 = 5;

/// Lowers the calling thread's CPU priority (it is one the clone started
/// and ends), so that a busy server's sessions come first. The thread
/// cannot raise it again without privileges, so only the clone's own
/// threads do this, never a session's.
pub fn yield_to_workload() {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if current < HELPER_NICE {
        let _ = rustix::process::setpriority_process(Some(tid), HELPER_NICE);
    }
}

/// A descriptor the storage engine passed to the callback that runs this.
fn borrowed(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the engine keeps the file open until the callback that handed
    // the descriptor over returns, and every copy here ends before that.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn os(e: OsErrno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// The bytes free to the server on the file system of `path`, counted as
/// InnoDB counts them for its space check (block size times available blocks).
pub fn free_space(path: &std::path::Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(os)?;
    Ok(st.f_bsize.saturating_mul(st.f_bavail))
}

/// Writes all of `data` to `fd` at its current offset.
pub fn write_all(fd: RawFd, mut data: &[u8], names: &dyn FileNames) -> Result<(), CopyError> {
    while !data.is_empty() {
        let n = match rustix::io::write(borrowed(fd), data) {
            Ok(n) => n,
            Err(OsErrno::INTR) => continue,
            Err(e) => return Err(write_error(names, os(e))),
        };
        if n == 0 {
            return Err(write_error(names, io::Error::from(io::ErrorKind::WriteZero)));
        }
        data = &data[n..];
    }
    Ok(())
}

/// Fills `buf` from `fd` at its current offset; a short file is an error.
pub fn read_exact(fd: RawFd, buf: &mut [u8], names: &dyn FileNames) -> Result<(), CopyError> {
    let mut done = 0;
    while done < buf.len() {
        let n = match rustix::io::read(borrowed(fd), &mut buf[done..]) {
            Ok(n) => n,
            Err(OsErrno::INTR) => continue,
            Err(e) => return Err(read_error(names, os(e))),
        };
        if n == 0 {
            return Err(read_error(names, io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        done += n;
    }
    Ok(())
}

/// `struct file_clone_range` of linux/fs.h, FICLONERANGE's argument.
#[repr(C)]
struct FileCloneRange {
    src_fd: i64,
    src_offset: u64,
    src_length: u64,
    dest_offset: u64,
}

/// FICLONERANGE: `_IOW(0x94, 13, struct file_clone_range)`.
const FICLONERANGE: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<FileCloneRange>(0x94, 13);

/// Shares `len` bytes of `from`'s blocks with `to`, each at its current
/// offset, and advances both offsets: on a file system that shares extents
/// (XFS with reflink, btrfs) the copy is a change of metadata, whatever
/// the files' flush method. False, with nothing changed, where it cannot:
/// another file system, or between two, or ranges not on block boundaries
/// (then the caller copies the bytes).
pub fn share_extents(from: RawFd, to: RawFd, len: u64) -> bool {
    let (Ok(src_offset), Ok(dest_offset)) = (rustix::fs::seek(borrowed(from), SeekFrom::Current(0)), rustix::fs::seek(borrowed(to), SeekFrom::Current(0)))
    else {
        return false;
    };
    let range = FileCloneRange { src_fd: i64::from(from), src_offset, src_length: len, dest_offset };
    // SAFETY: FICLONERANGE takes a pointer to a file_clone_range, which
    // `range` is (same layout); the kernel only reads it.
    let cloned = unsafe { rustix::ioctl::ioctl(borrowed(to), rustix::ioctl::Setter::<FICLONERANGE, FileCloneRange>::new(range)) };
    if cloned.is_err() {
        return false;
    }
    let (Some(src_end), Some(dest_end)) = (src_offset.checked_add(len), dest_offset.checked_add(len)) else { return false };
    rustix::fs::seek(borrowed(from), SeekFrom::Start(src_end)).is_ok() && rustix::fs::seek(borrowed(to), SeekFrom::Start(dest_end)).is_ok()
}

/// Copies `len` bytes from `from` to `to`. `in_kernel` says whether the
/// engine allows a copy that bypasses user buffers (both files use the OS
/// cache); otherwise, and as fallback, `buf` carries the data.
pub fn copy_file(from: RawFd, to: RawFd, mut len: u64, in_kernel: bool, buf: &mut [u8], names: &dyn FileNames) -> Result<(), CopyError> {
    if in_kernel {
        // No offsets given: the kernel uses and advances both files' own.
        while len > 0 && COPY_FILE_RANGE_OK.load(Relaxed) {
            let chunk = len.min(1 << 30) as usize;
            match rustix::fs::copy_file_range(borrowed(from), None, borrowed(to), None, chunk) {
                Ok(0) => break, // end of the source: the read/write path reports it
                Ok(n) => len -= n as u64,
                Err(OsErrno::INTR) => continue,
                Err(_) => COPY_FILE_RANGE_OK.store(false, Relaxed),
            }
        }
        while len > 0 && SENDFILE_OK.load(Relaxed) {
            let chunk = len.min(1 << 30) as usize;
            match rustix::fs::sendfile(borrowed(to), borrowed(from), None, chunk) {
                Ok(0) => break,
                Ok(n) => len -= n as u64,
                Err(OsErrno::INTR) => continue,
                Err(_) => SENDFILE_OK.store(false, Relaxed),
            }
        }
    }
    while len > 0 {
        let n = (buf.len() as u64).min(len) as usize;
        let chunk = &mut buf[..n];
        read_exact(from, chunk, names)?;
        write_all(to, chunk, names)?;
        len -= n as u64;
    }
    Ok(())
}

/// A block queued for the writer: a duplicate of the engine's descriptor
/// (the file stays open however soon the engine closes its own), the file's
/// offset, and the data in an aligned buffer of the pool.
struct Job {
    fd: OwnedFd,
    offset: u64,
    buf: AlignedBuf,
    len: usize,
    name: String,
}

/// The writer's end of the pipeline: writes each block and gives its
/// buffer back to the pool.
struct Writer {
    zeros: ZeroRuns,
    pool: BufferPool,
}

impl Sink for Writer {
    type Item = Job;
    type Error = CopyError;

    fn started(&mut self) {
        yield_to_workload();
    }

    fn take(&mut self, job: Job) -> Result<(), CopyError> {
        let data = &job.buf.as_slice()[..job.len];
        let written = match self.zeros {
            ZeroRuns::Written => pwrite_all(&job.fd, data, job.offset),
            ZeroRuns::Allocated => write_allocating_zeros(&job.fd, data, job.offset),
        };
        self.pool.put(job.buf);
        written.map_err(|error| CopyError::Write { file: job.name, error })
    }

    fn discard(&mut self, job: Job) {
        self.pool.put(job.buf);
    }
}

/// Writes behind the engine: a block is copied into one of a few aligned
/// buffers and queued for a thread that writes it while the caller
/// receives the next block, so the disk and the network work at the same
/// time. `drain` waits for every queued write; the engine's next step that
/// may read, extend, sync or rename files must come after it.
pub struct WriteBehind {
    pipeline: Pipeline<Writer>,
    pool: BufferPool,
}

/// Buffers in flight per writer: one being written, one being filled.
const WRITE_BEHIND_DEPTH: usize = 2;

/// What the writer does with long runs of zero bytes in file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRuns {
    /// Written as data, as InnoDB fills the files it extends with
    /// innodb_extend_and_initialize ON (its default): every block is
    /// written, so no later write has an extent to convert, a change of
    /// metadata that O_DIRECT_NO_FSYNC would not sync.
    Written,
    /// Allocated as zero ranges, as InnoDB extends its files with
    /// innodb_extend_and_initialize OFF (`fallocate`).
    Allocated,
}

impl WriteBehind {
    pub fn new(zeros: ZeroRuns) -> io::Result<WriteBehind> {
        let pool = BufferPool::new(WRITE_BEHIND_DEPTH);
        let pipeline = Pipeline::start("clone_write", WRITE_BEHIND_DEPTH, Writer { zeros, pool: pool.clone() })?;
        Ok(WriteBehind { pipeline, pool })
    }

    /// Queues `data` for `fd` at its current offset, and moves the offset
    /// past it as a write would. Fails with an earlier write's failure.
    pub fn write(&self, fd: RawFd, data: &[u8], names: &dyn FileNames) -> Result<(), CopyError> {
        self.write_with(
            fd,
            data.len(),
            |buf| {
                buf.copy_from_slice(data);
                Ok(())
            },
            names,
        )
    }

    /// Queues `len` bytes that `fill` puts into the write buffer (reading
    /// them from a file, say) for `fd`, as `write` does.
    pub fn write_with(&self, fd: RawFd, len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), CopyError>, names: &dyn FileNames) -> Result<(), CopyError> {
        if let Some(failure) = self.pipeline.take_failure() {
            return Err(failure);
        }
        let mut buf = self.pool.take(len)?;
        if let Err(e) = fill(&mut buf.as_mut_slice()[..len]) {
            self.pool.put(buf);
            return Err(e);
        }
        let queued = (|| {
            let offset = rustix::fs::seek(borrowed(fd), SeekFrom::Current(0)).map_err(os)?;
            let fd = rustix::io::fcntl_dupfd_cloexec(borrowed(fd), 0).map_err(os)?;
            Ok::<_, io::Error>((fd, offset))
        })();
        let (dup, offset) = match queued {
            Ok(q) => q,
            Err(e) => {
                self.pool.put(buf);
                return Err(write_error(names, e));
            }
        };
        if let Err(job) = self.pipeline.push(Job { fd: dup, offset, buf, len, name: names.dest() }) {
            self.pool.put(job.buf);
            return Err(write_error(names, io::Error::from(io::ErrorKind::BrokenPipe)));
        }
        rustix::fs::seek(borrowed(fd), SeekFrom::Current(len as i64)).map_err(|e| write_error(names, os(e)))?;
        Ok(())
    }

    /// Waits until every queued write is done; the first failure, if any.
    pub fn drain(&self) -> Result<(), CopyError> {
        self.pipeline.drain()
    }
}

/// Writes `data` at `offset`, its long runs of zeros as zero ranges the file
/// system allocates without writing (`clone_core::transfer::zeros`); where
/// the file system has no zero ranges, they are written.
fn write_allocating_zeros(fd: &OwnedFd, data: &[u8], offset: u64) -> io::Result<()> {
    for piece in zeros::pieces(data, offset) {
        match piece {
            Piece::Data(r) => pwrite_all(fd, &data[r.clone()], offset + r.start as u64)?,
            Piece::Zeros(r) => {
                let at = offset + r.start as u64;
                if !ZERO_RANGE_OK.load(Relaxed) || !zero_range(fd, at, r.len() as u64)? {
                    ZERO_RANGE_OK.store(false, Relaxed);
                    pwrite_all(fd, &data[r], at)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether the file system took the last zero range (cleared for good once
/// it did not).
static ZERO_RANGE_OK: AtomicBool = AtomicBool::new(true);

/// Allocates `len` zero bytes at `offset`, as a write of zeros would leave
/// them (the file grows if they end past it). False: the file system has no
/// zero ranges.
fn zero_range(fd: &OwnedFd, offset: u64, len: u64) -> io::Result<bool> {
    loop {
        match rustix::fs::fallocate(fd, FallocateFlags::ZERO_RANGE, offset, len) {
            Ok(()) => return Ok(true),
            Err(OsErrno::INTR) => {}
            Err(OsErrno::OPNOTSUPP | OsErrno::NOSYS | OsErrno::INVAL) => return Ok(false),
            Err(e) => return Err(os(e)),
        }
    }
}

fn pwrite_all(fd: &OwnedFd, mut data: &[u8], mut offset: u64) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::pwrite(fd, data, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(OsErrno::INTR) => continue,
            Err(e) => return Err(os(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    /// Test files named by one name.
    struct Named(&'static str);

    impl FileNames for Named {
        fn source(&self) -> String {
            self.0.into()
        }

        fn dest(&self) -> String {
            self.0.into()
        }
    }
    use std::os::fd::AsRawFd;

    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[test]
    fn a_helper_thread_yields_the_cpu_and_only_itself() {
        let before = own_nice();
        let helper = std::thread::spawn(|| {
            yield_to_workload();
            own_nice()
        });
        assert!(helper.join().unwrap() >= HELPER_NICE);
        assert_eq!(own_nice(), before, "the calling thread changed too");
    }

    fn temp(name: &str, content: &[u8]) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("clone-rs-copy-{}-{name}", std::process::id()));
        let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(content).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    }

    #[test]
    fn copies_from_current_offsets_both_ways() {
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        for in_kernel in [true, false] {
            let mut src = temp("src", &data);
            src.seek(SeekFrom::Start(1000)).unwrap();
            let mut dst = temp("dst", b"head");
            dst.seek(SeekFrom::End(0)).unwrap();
            for (buf_len, len) in [(8192, 150_000usize), (4 << 20, 4_500_000)] {
                src.seek(SeekFrom::Start(1000)).unwrap();
                dst.set_len(4).unwrap();
                dst.seek(SeekFrom::End(0)).unwrap();
                let mut buf = AlignedBuf::new(buf_len).unwrap();
                copy_file(src.as_raw_fd(), dst.as_raw_fd(), len as u64, in_kernel, buf.as_mut_slice(), &Named("dst")).unwrap();
                assert_eq!(dst.stream_position().unwrap(), 4 + len as u64);
                let mut out = vec![];
                dst.seek(SeekFrom::Start(0)).unwrap();
                dst.read_to_end(&mut out).unwrap();
                assert_eq!(&out[..4], b"head");
                assert!(out[4..] == data[1000..1000 + len], "copy of {len} bytes differs");
                assert_eq!(src.stream_position().unwrap(), 1000 + len as u64);
            }
        }
    }

    #[test]
    fn short_source_is_a_read_error() {
        let src = temp("short", b"abc");
        let dst = temp("short-dst", b"");
        let mut buf = AlignedBuf::new(4096).unwrap();
        let r = copy_file(src.as_raw_fd(), dst.as_raw_fd(), 10, false, buf.as_mut_slice(), &Named("short"));
        assert!(matches!(r, Err(CopyError::Read { file, .. }) if file == "short"));
    }

    #[test]
    fn writes_behind_land_at_their_offsets_and_failures_surface() {
        let writer = WriteBehind::new(ZeroRuns::Written).unwrap();
        let mut dst = temp("behind", b"");
        let blocks: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 300_000 + i as usize]).collect();
        for b in &blocks {
            writer.write(dst.as_raw_fd(), b, &Named("dst")).unwrap();
        }
        let total: usize = blocks.iter().map(Vec::len).sum();
        // The offset moves as a write would, before the write is done.
        assert_eq!(dst.stream_position().unwrap(), total as u64);
        writer.drain().unwrap();
        let mut out = vec![];
        dst.seek(SeekFrom::Start(0)).unwrap();
        dst.read_to_end(&mut out).unwrap();
        assert!(out == blocks.concat(), "the file differs from the blocks in order");

        // A descriptor open for reading only: the write fails behind the
        // caller, and the next call reports it with the file's name.
        let path = std::env::temp_dir().join(format!("clone-rs-copy-{}-readonly", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let ro = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        writer.write(ro.as_raw_fd(), b"data", &Named("read-only")).unwrap();
        match writer.drain() {
            Err(CopyError::Write { file, .. }) => assert_eq!(file, "read-only"),
            other => panic!("expected the failed write, got {other:?}"),
        }
        writer.drain().unwrap();
    }

    #[test]
    fn zero_runs_read_back_as_zeros_and_the_file_grows_past_them() {
        for zeros in [ZeroRuns::Written, ZeroRuns::Allocated] {
            zero_runs_read_back_as_zeros(zeros);
        }
    }

    fn zero_runs_read_back_as_zeros(zeros: ZeroRuns) {
        let writer = WriteBehind::new(zeros).unwrap();
        let mut dst = temp("zeros", b"");
        // Data, zeros, a page of data, zeros to the block's end; then a
        // block of zeros only, which must still make the file grow.
        let mut block = vec![0u8; 1 << 20];
        block[..4096].fill(7);
        block[512 << 10..(512 << 10) + 4096].fill(9);
        writer.write(dst.as_raw_fd(), &block, &Named("zeros")).unwrap();
        writer.write(dst.as_raw_fd(), &vec![0u8; 1 << 20], &Named("zeros")).unwrap();
        writer.drain().unwrap();
        let mut out = vec![];
        dst.seek(SeekFrom::Start(0)).unwrap();
        dst.read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 2 << 20);
        assert!(out[..1 << 20] == block[..], "the first block differs");
        assert!(out[1 << 20..].iter().all(|&b| b == 0), "the zero block is not zeros");
    }
}
