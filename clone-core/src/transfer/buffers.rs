//! The aligned buffers that file blocks travel in, and the pool that lets
//! a few of them circulate between the thread that fills them and the
//! thread that empties them (a file writer, a network sender). Each buffer
//! is an anonymous mapping of its own (memmap2's safe API), aligned for
//! O_DIRECT and, when large, backed by transparent huge pages where the
//! system allows.

use crossbeam_channel::{Receiver, Sender};
use memmap2::{Advice, MmapMut, MmapOptions};
use std::sync::OnceLock;

/// O_DIRECT needs buffers aligned to the block size.
pub const ALIGN: usize = 4096;

/// Transparent huge pages are this big on x86-64.
const HUGE_PAGE: usize = 2 << 20;

/// No memory for a buffer of this many bytes (its length rounded up as a
/// buffer takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory(pub usize);

impl std::fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "out of memory for a buffer of {} bytes", self.0)
    }
}

impl std::error::Error for OutOfMemory {}

/// Told the bytes of every buffer mapped (positive) and unmapped (negative),
/// for the server's memory statistics.
static MEMORY_ACCOUNTING: OnceLock<fn(i64)> = OnceLock::new();

/// Sets the function told of buffer memory (once per process; later calls
/// are ignored).
pub fn set_memory_accounting(account: fn(i64)) {
    let _ = MEMORY_ACCOUNTING.set(account);
}

fn account(bytes: i64) {
    if let Some(f) = MEMORY_ACCOUNTING.get() {
        f(bytes);
    }
}

/// A buffer aligned for O_DIRECT. It is mapped on its own and, from 512 KiB
/// up, backed by transparent huge pages where the system allows: O_DIRECT
/// pins the buffer's pages on every read and write, and pinning a few huge
/// pages costs far less than pinning hundreds of small ones.
pub struct AlignedBuf {
    map: MmapMut,
    /// Where the buffer starts in the mapping (a huge-page boundary).
    offset: usize,
    len: usize,
}

#[allow(clippy::len_without_is_empty)] // never empty: at least one block
impl AlignedBuf {
    /// A buffer of at least `len` bytes (a whole number of [`ALIGN`]
    /// blocks, at least one; of huge pages when large).
    pub fn new(len: usize) -> Result<AlignedBuf, OutOfMemory> {
        let mut len = len.max(ALIGN).checked_next_multiple_of(ALIGN).ok_or(OutOfMemory(len))?;
        // Buffers of a good part of a huge page get a whole one.
        let huge = len >= HUGE_PAGE / 4;
        if huge {
            len = len.checked_next_multiple_of(HUGE_PAGE).ok_or(OutOfMemory(len))?;
        }
        // Room to place the buffer on a huge-page boundary.
        let map_len = if huge { len.checked_add(HUGE_PAGE).ok_or(OutOfMemory(len))? } else { len };
        let map = MmapOptions::new().len(map_len).map_anon().map_err(|_| OutOfMemory(len))?;
        let offset = if huge { map.as_ptr().align_offset(HUGE_PAGE) } else { 0 };
        if huge {
            // Advice only: without huge pages the buffer still works.
            let _ = map.advise_range(Advice::HugePage, offset, len);
        }
        account(map_len as i64);
        Ok(AlignedBuf { map, offset, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.map[self.offset..self.offset + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.map[self.offset..self.offset + self.len]
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        account(-(self.map.len() as i64));
    }
}

/// The buffer in `slot`, replaced by a bigger one if it holds fewer than
/// `len` bytes (buffers are kept per thread and reused).
pub fn reserve(slot: &mut Option<AlignedBuf>, len: usize) -> Result<&mut AlignedBuf, OutOfMemory> {
    if slot.as_ref().is_none_or(|b| b.len() < len) {
        // The old buffer goes before the new one is mapped.
        *slot = None;
        *slot = Some(AlignedBuf::new(len)?);
    }
    slot.as_mut().ok_or(OutOfMemory(len))
}

/// A fixed number of aligned buffers circulating between the thread that
/// fills them and a thread that empties them: `take` waits until one is
/// back. A slot holds no buffer until its first use, then keeps the largest
/// it needed. Every buffer taken comes back (`put`), or its slot does
/// (`lost`), so that `wait_all` can count them.
#[derive(Clone)]
pub struct BufferPool {
    free: Receiver<Option<AlignedBuf>>,
    back: Sender<Option<AlignedBuf>>,
    slots: usize,
}

impl BufferPool {
    pub fn new(slots: usize) -> BufferPool {
        let (back, free) = crossbeam_channel::bounded(slots);
        for _ in 0..slots {
            let _ = back.send(None);
        }
        BufferPool { free, back, slots }
    }

    /// A buffer of at least `len` bytes, once one is free.
    pub fn take(&self, len: usize) -> Result<AlignedBuf, OutOfMemory> {
        let mut slot = self.free.recv().map_err(|_| OutOfMemory(len))?;
        let reserved = reserve(&mut slot, len).map(|_| ());
        match (reserved, slot) {
            (Ok(()), Some(buf)) => Ok(buf),
            (reserved, slot) => {
                let _ = self.back.send(slot);
                Err(reserved.err().unwrap_or(OutOfMemory(len)))
            }
        }
    }

    /// A buffer taken from this pool comes back.
    pub fn put(&self, buf: AlignedBuf) {
        let _ = self.back.send(Some(buf));
    }

    /// The buffer taken from this slot is gone (sent away in a failed call).
    pub fn lost(&self) {
        let _ = self.back.send(None);
    }

    /// Waits until every buffer is back.
    pub fn wait_all(&self) {
        let held: Vec<_> = (0..self.slots).map_while(|_| self.free.recv().ok()).collect();
        for b in held {
            let _ = self.back.send(b);
        }
    }

    /// How many slots the pool has.
    pub fn slots(&self) -> usize {
        self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn aligned_buffers_are_aligned() {
        let mut b = AlignedBuf::new(10).unwrap();
        assert_eq!(b.as_mut_slice().as_ptr() as usize % ALIGN, 0);
        assert_eq!(b.len(), ALIGN);
        assert_eq!(b.as_slice().len(), ALIGN);
        let mut big = AlignedBuf::new(5 << 20).unwrap();
        assert_eq!(big.as_mut_slice().as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(big.len(), 6 << 20);
        big.as_mut_slice()[(5 << 20) - 1] = 1;
        assert_eq!(big.as_slice()[(5 << 20) - 1], 1);
        assert_eq!(AlignedBuf::new(0).unwrap().len(), ALIGN);
        assert_eq!(AlignedBuf::new(ALIGN + 1).unwrap().len(), 2 * ALIGN);
        assert!(AlignedBuf::new(usize::MAX).is_err());
    }

    #[test]
    fn reserve_keeps_a_big_enough_buffer_and_replaces_a_small_one() {
        let mut slot = None;
        reserve(&mut slot, 100).unwrap().as_mut_slice()[0] = 42;
        assert_eq!(slot.as_ref().map(AlignedBuf::len), Some(ALIGN));
        assert_eq!(reserve(&mut slot, ALIGN).unwrap().as_slice()[0], 42, "kept");
        assert_eq!(reserve(&mut slot, ALIGN + 1).unwrap().as_slice()[0], 0, "replaced");
        assert_eq!(slot.as_ref().map(AlignedBuf::len), Some(2 * ALIGN));
    }

    thread_local! {
        /// What this thread's buffers told the accounting hook (other
        /// tests map buffers at the same time, on their own threads).
        static ACCOUNTED: Cell<i64> = const { Cell::new(0) };
    }

    #[test]
    fn mapped_memory_is_accounted_and_given_back() {
        set_memory_accounting(|bytes| ACCOUNTED.with(|a| a.set(a.get() + bytes)));
        let small = AlignedBuf::new(3 * ALIGN).unwrap();
        assert_eq!(ACCOUNTED.get(), 3 * ALIGN as i64);
        // From 512 KiB up: a whole huge page, and room to align it.
        let big = AlignedBuf::new(1 << 20).unwrap();
        assert_eq!(big.len(), HUGE_PAGE);
        assert_eq!(ACCOUNTED.get(), (3 * ALIGN + 2 * HUGE_PAGE) as i64);
        drop(small);
        drop(big);
        assert_eq!(ACCOUNTED.get(), 0);
    }

    #[test]
    fn a_pool_lends_its_slots_until_one_comes_back() {
        let pool = BufferPool::new(2);
        assert_eq!(pool.slots(), 2);
        let mut a = pool.take(100).unwrap();
        a.as_mut_slice()[0] = 7;
        let b = pool.take(ALIGN * 3).unwrap();
        assert_eq!(b.len(), ALIGN * 3);
        // A third waits until one is put back.
        let (got, taken) = mpsc::channel();
        let lender = pool.clone();
        let waiter = std::thread::spawn(move || {
            let c = lender.take(10).unwrap();
            got.send(c.as_slice()[0]).unwrap();
            lender.put(c);
        });
        assert!(taken.recv_timeout(Duration::from_millis(100)).is_err(), "a third buffer while two are out");
        pool.put(a);
        // The slot keeps its buffer: the one put back, with its bytes.
        assert_eq!(taken.recv_timeout(Duration::from_secs(10)), Ok(7));
        waiter.join().unwrap();
        // A lost buffer gives its slot back, empty.
        drop(b);
        pool.lost();
        let (c, d) = (pool.take(1).unwrap(), pool.take(1).unwrap());
        assert_eq!((c.as_slice()[0], d.as_slice()[0]), (7, 0));
        assert_eq!(d.len(), ALIGN, "a fresh buffer in the lost slot");
        pool.put(c);
        pool.put(d);
    }

    #[test]
    fn wait_all_waits_for_every_slot() {
        let pool = BufferPool::new(3);
        let taken: Vec<AlignedBuf> = (0..3).map(|_| pool.take(ALIGN).unwrap()).collect();
        let (done, waited) = mpsc::channel();
        let waiter_pool = pool.clone();
        let waiter = std::thread::spawn(move || {
            waiter_pool.wait_all();
            done.send(()).unwrap();
        });
        let mut taken = taken.into_iter();
        pool.put(taken.next().unwrap());
        pool.lost();
        drop(taken.next());
        assert!(waited.recv_timeout(Duration::from_millis(100)).is_err(), "wait_all returned with a buffer out");
        pool.put(taken.next().unwrap());
        waited.recv_timeout(Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
        // Every slot is still there after wait_all.
        let again: Vec<AlignedBuf> = (0..3).map(|_| pool.take(1).unwrap()).collect();
        assert_eq!(again.len(), 3);
        for b in again {
            pool.put(b);
        }
        pool.wait_all();
    }

    #[test]
    fn a_buffer_too_big_to_map_leaves_its_slot_in_the_pool() {
        let pool = BufferPool::new(1);
        assert!(pool.take(usize::MAX).is_err());
        assert!(pool.take(usize::MAX / 2).is_err());
        pool.put(pool.take(1).unwrap());
        pool.wait_all();
    }
}
