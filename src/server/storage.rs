//! A safe face on the storage engines' clone interface (`handlerton::
//! clone_interface`) and on the callback object the engines drive. The C++
//! half is in shim/clone_shim.cc.

use super::entry::entry_point;
use super::errors::{message, Error, ER_INTERNAL_ERROR, ER_OUTOFMEMORY};
use super::ffi::{self, handlerton, Ha_clone_cbk};
use super::files::FileNames;
use super::session::Thd;
use clone_core::transfer::buffers::{self, AlignedBuf};
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use super::status as check;

/// `Ha_clone_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Start = 0,
    Restart = 1,
    AddTask = 2,
    Version = 3,
}

/// A storage engine that can be cloned from or into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine(NonNull<handlerton>);

// SAFETY: handlertons live as long as their plugin, which the running clone
// statement keeps locked; the clone interface is thread-safe.
unsafe impl Send for Engine {}
// SAFETY: as above.
unsafe impl Sync for Engine {}

/// One task's part in an engine's clone, as `begin` or `apply_begin`
/// opened it: the task's number and the engine's locator, the engine's
/// memory until the clone is ended (which takes the handle). The locator
/// bytes it was opened with are kept with it: the engine may answer with
/// the same bytes.
#[derive(Debug)]
pub struct Handle {
    engine: Engine,
    ptr: *const u8,
    len: u32,
    task: u32,
    _given: Option<Box<[u8]>>,
}

// SAFETY: the engine writes a locator only in the begin call that returns
// it, and frees it only once every task holding it has ended (ending one
// consumes its handle): reading it from any thread in between is safe.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Handle {
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn task(&self) -> u32 {
        self.task
    }

    pub fn locator(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: `len` bytes of engine memory (or of `_given`), alive
            // until the clone is ended, which consumes the handle.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
        }
    }

    /// Streams this task's share of the data through `cbk`.
    pub fn copy(&self, thd: Thd, cbk: &Callback<'_>) -> Result<(), Error> {
        // SAFETY: valid handlerton, THD and locator; cbk outlives the call.
        check(unsafe { ffi::cs_clone_copy(self.engine.raw(), thd.as_ptr(), self.ptr, self.len, self.task, cbk.raw()) })
    }

    /// Ends this task's part of the source side.
    pub fn end(self, thd: Thd, in_err: i32) -> Result<(), Error> {
        // SAFETY: as above; the handle is consumed.
        check(unsafe { ffi::cs_clone_end(self.engine.raw(), thd.as_ptr(), self.ptr, self.len, self.task, in_err) })
    }

    /// Applies the descriptor set on `cbk` as `task` of this clone (a
    /// worker applies through the master's handle); the engine may call
    /// back for data.
    pub fn apply(&self, thd: Thd, task: u32, cbk: Cbk<'_>) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_apply(self.engine.raw(), thd.as_ptr(), self.ptr, self.len, task, 0, cbk.0.as_ptr()) })
    }

    /// Tells `task` of this clone's apply side about an error elsewhere.
    pub fn apply_error(&self, thd: Thd, task: u32, err: i32) {
        // SAFETY: as above; a null callback with an error is the engine's "record error".
        unsafe { ffi::cs_clone_apply(self.engine.raw(), thd.as_ptr(), self.ptr, self.len, task, err, std::ptr::null_mut()) };
    }

    /// Ends this handle's own task on the apply side.
    pub fn apply_end(self, thd: Thd, in_err: i32) -> Result<(), Error> {
        self.apply_end_task(thd, self.task, in_err)
    }

    /// Ends a worker's `task` that joined this clone's apply side.
    pub fn apply_end_task(&self, thd: Thd, task: u32, in_err: i32) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_apply_end(self.engine.raw(), thd.as_ptr(), self.ptr, self.len, task, in_err) })
    }
}

entry_point! {
fn collect_engine(ctx: *mut c_void, hton: *mut handlerton) = (); {
    // SAFETY: ctx is the Vec passed by clone_engines below.
    let list = unsafe { &mut *ctx.cast::<Vec<Engine>>() };
    if let Some(h) = NonNull::new(hton) {
        list.push(Engine(h));
    }
}
}

/// The engines that implement the source (copy) side, in plugin order.
pub fn source_engines(thd: Thd) -> Vec<Engine> {
    engines(thd, ffi::cs_clone_side_CS_SIDE_COPY)
}

/// The engines that implement the apply side, in plugin order.
pub fn apply_engines(thd: Thd) -> Vec<Engine> {
    engines(thd, ffi::cs_clone_side_CS_SIDE_APPLY)
}

fn engines(thd: Thd, side: ffi::cs_clone_side) -> Vec<Engine> {
    let mut list: Vec<Engine> = Vec::new();
    // SAFETY: the visitor only pushes onto `list` while the walk runs.
    unsafe { ffi::cs_foreach_clone_engine(thd.as_ptr(), side as c_int, Some(collect_engine), (&mut list as *mut Vec<Engine>).cast()) };
    list
}

impl Engine {
    fn raw(self) -> *mut handlerton {
        self.0.as_ptr()
    }

    /// The engine's legacy type id, the first byte of a locator on the wire.
    pub fn db_type(self) -> u8 {
        // SAFETY: valid handlerton.
        unsafe { ffi::cs_hton_db_type(self.raw()) }
    }

    /// InnoDB's descriptors are the ones the recipient can check.
    pub fn is_innodb(self) -> bool {
        // SAFETY: valid handlerton.
        unsafe { ffi::cs_hton_is_innodb(self.raw()) }
    }

    /// Starts (or joins, with AddTask, the clone `given` names) a clone on
    /// the source side.
    pub fn begin(self, thd: Thd, given: Option<&[u8]>, mode: Mode) -> Result<Handle, Error> {
        self.open(given, |ptr, len, task| {
            // SAFETY: valid handlerton and THD; out-pointers are locals.
            unsafe { ffi::cs_clone_begin(self.raw(), thd.as_ptr(), ptr, len, task, mode as c_int) }
        })
    }

    /// Starts (or joins, or restarts) applying a clone into `data_dir`
    /// (None: replace the server's own data directory). The engine keeps
    /// the directory name until the clone ends, so it must outlive the clone.
    pub fn apply_begin(self, thd: Thd, given: Option<&[u8]>, mode: Mode, data_dir: Option<&CStr>) -> Result<Handle, Error> {
        let dir_ptr = data_dir.map_or(std::ptr::null(), CStr::as_ptr);
        self.open(given, |ptr, len, task| {
            // SAFETY: as above; the caller keeps data_dir alive.
            unsafe { ffi::cs_clone_apply_begin(self.raw(), thd.as_ptr(), ptr, len, task, mode as c_int, dir_ptr) }
        })
    }

    /// Calls `begin` with a copy of the `given` locator, kept with the handle.
    fn open(self, given: Option<&[u8]>, begin: impl FnOnce(&mut *const u8, &mut c_uint, &mut c_uint) -> c_int) -> Result<Handle, Error> {
        let given: Option<Box<[u8]>> = given.map(Box::from);
        let (mut ptr, mut len) = match &given {
            Some(bytes) => (bytes.as_ptr(), u32::try_from(bytes.len()).map_err(|_| Error::protocol("Wrong Clone RPC: Invalid Locator"))?),
            None => (std::ptr::null(), 0),
        };
        let mut task: c_uint = 0;
        check(begin(&mut ptr, &mut len, &mut task))?;
        Ok(Handle { engine: self, ptr, len, task, _given: given })
    }

    /// Passes the apply side's acknowledgement (the descriptor set on
    /// `cbk`) to `task` of the clone `locator` names.
    pub fn ack(self, thd: Thd, locator: &[u8], task: u32, in_err: i32, cbk: Cbk<'_>) -> Result<(), Error> {
        let len = u32::try_from(locator.len()).map_err(|_| Error::protocol("Wrong Clone RPC: Invalid Locator"))?;
        // SAFETY: valid handlerton and THD; the locator outlives the call.
        check(unsafe { ffi::cs_clone_ack(self.raw(), thd.as_ptr(), locator.as_ptr(), len, task, in_err, cbk.0.as_ptr()) })
    }
}

/// What the engine says about the chunk or descriptor at hand.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flags {
    /// The file is read/written through the OS cache (not O_DIRECT).
    pub os_buffer_cache: bool,
    pub zero_copy: bool,
    pub secure: bool,
    /// Set with the byte estimate when the apply side enters a new state.
    pub state_change: Option<u64>,
}

/// The callback object as the engine passes it to a callback, valid for
/// that callback (`'a`).
#[derive(Clone, Copy, Debug)]
pub struct Cbk<'a>(NonNull<Ha_clone_cbk>, PhantomData<&'a Ha_clone_cbk>);

impl<'a> Cbk<'a> {
    fn raw(self) -> *mut Ha_clone_cbk {
        self.0.as_ptr()
    }

    /// The engine that is calling.
    pub fn engine(self) -> Option<Engine> {
        // SAFETY: valid callback object.
        NonNull::new(unsafe { ffi::cs_cbk_hton(self.raw()) }).map(Engine)
    }

    pub fn loc_index(self) -> u32 {
        // SAFETY: valid callback object.
        unsafe { ffi::cs_cbk_loc_index(self.raw()) }
    }

    /// The engine's descriptor for the current chunk or state.
    pub fn data_desc(self) -> &'a [u8] {
        let mut len: c_uint = 0;
        // SAFETY: valid callback object; the bytes live until the callback returns.
        let p = unsafe { ffi::cs_cbk_data_desc(self.raw(), &mut len) };
        if p.is_null() {
            &[]
        } else {
            // SAFETY: as above: len bytes at p, alive during the callback.
            unsafe { std::slice::from_raw_parts(p, len as usize) }
        }
    }

    /// Hands the engine a descriptor (apply side: the one received; source
    /// side: an acknowledgement). The bytes must outlive the engine call.
    pub fn set_data_desc(self, desc: &[u8]) {
        // SAFETY: valid callback object.
        unsafe { ffi::cs_cbk_set_data_desc(self.raw(), desc.as_ptr(), desc.len() as c_uint) }
    }

    pub fn clear_flags(self) {
        // SAFETY: valid callback object.
        unsafe { ffi::cs_cbk_clear_flags(self.raw()) }
    }

    pub fn set_loc_index(self, index: u32) {
        // SAFETY: valid callback object.
        unsafe { ffi::cs_cbk_set_loc_index(self.raw(), index) }
    }

    pub fn flags(self) -> Flags {
        let mut estimate = 0u64;
        // SAFETY: valid callback object.
        let f = unsafe { ffi::cs_cbk_flags(self.raw(), &mut estimate) } as u32;
        Flags {
            os_buffer_cache: f & ffi::cs_cbk_flag_CS_CBK_OS_BUFFER_CACHE != 0,
            zero_copy: f & ffi::cs_cbk_flag_CS_CBK_ZERO_COPY != 0,
            secure: f & ffi::cs_cbk_flag_CS_CBK_SECURE != 0,
            state_change: (f & ffi::cs_cbk_flag_CS_CBK_STATE_CHANGE != 0).then_some(estimate),
        }
    }

    fn name(p: *const c_char) -> String {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: the engine's NUL-terminated file name.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    pub fn source_name(self) -> String {
        // SAFETY: valid callback object.
        Self::name(unsafe { ffi::cs_cbk_source_name(self.raw()) })
    }

    pub fn dest_name(self) -> String {
        // SAFETY: valid callback object.
        Self::name(unsafe { ffi::cs_cbk_dest_name(self.raw()) })
    }
}

impl FileNames for Cbk<'_> {
    fn source(&self) -> String {
        self.source_name()
    }

    fn dest(&self) -> String {
        self.dest_name()
    }
}

/// A buffer the engine hands to a source-side callback, valid for that
/// callback (`'c`). Only the engine makes one.
#[derive(Clone, Copy, Debug)]
pub struct EngineBuf<'c> {
    ptr: *const u8,
    len: u32,
    _engine: PhantomData<&'c [u8]>,
}

impl<'c> EngineBuf<'c> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &'c [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: the engine guarantees `len` readable bytes during the callback ('c).
            unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
        }
    }
}

/// Hands the buffer a source-side callback received to the apply-side
/// callbacks of the engine call it makes (CLONE LOCAL: the source's
/// callback applies its chunk, and the apply side calls back for it).
#[derive(Default)]
pub struct Relay {
    slot: Cell<Option<(NonNull<u8>, u32)>>,
}

impl Relay {
    /// Runs `during` with `buf` relayed (what was relayed before, after).
    pub fn relay<R>(&self, buf: EngineBuf<'_>, during: impl FnOnce() -> R) -> R {
        struct Restore<'r>(&'r Relay, Option<(NonNull<u8>, u32)>);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.slot.set(self.1);
            }
        }
        let relayed = NonNull::new(buf.ptr.cast_mut()).map(|p| (p, buf.len));
        let _restore = Restore(self, self.slot.replace(relayed));
        during()
    }

    /// Calls `with` with the relayed bytes (None outside `relay`), lent
    /// for that call only.
    pub fn with<R>(&self, with: impl FnOnce(Option<&[u8]>) -> R) -> R {
        // SAFETY: the slot holds a buffer only while `relay` runs, which
        // borrows it; a `Relay` is used by one thread (it is not Sync).
        with(self.slot.get().map(|(p, len)| unsafe { std::slice::from_raw_parts(p.as_ptr().cast_const(), len as usize) }))
    }
}

/// A handler's own aligned buffer: its scratch space (staging for
/// O_DIRECT writes), and what an apply-side callback fills and lends to
/// the engine, which writes the block after the callback returns and
/// before it calls back again.
#[derive(Default)]
pub struct Lend {
    buf: RefCell<Option<AlignedBuf>>,
    /// Bytes filled for the engine, until the callback hands them over.
    lent: Cell<Option<usize>>,
}

impl Lend {
    /// Runs `work` on `len` bytes of the buffer (grown if need be).
    pub fn scratch<R>(&self, len: usize, work: impl FnOnce(&mut [u8]) -> Result<R, Error>) -> Result<R, Error> {
        let mut slot = self.buf.try_borrow_mut().map_err(|_| Error::internal("the transfer buffer is in use"))?;
        let buf = buffers::reserve(&mut slot, len).map_err(|_| Error::with_int(message::ER_OUTOFMEMORY, len as i64))?;
        self.lent.set(None);
        work(&mut buf.as_mut_slice()[..len])
    }

    /// Fills `len` bytes with `fill`, for the engine to write once the
    /// callback returns this.
    pub fn fill(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), Error>) -> Result<&Lend, Error> {
        if u32::try_from(len).is_err() {
            return Err(Error::internal("a block of 4 GiB or more"));
        }
        self.scratch(len, fill)?;
        self.lent.set(Some(len));
        Ok(self)
    }

    /// The filled bytes, handed to the engine.
    fn hand_over(&self) -> Option<(*mut u8, c_uint)> {
        let len = self.lent.take()?;
        let mut slot = self.buf.try_borrow_mut().ok()?;
        let buf = slot.as_mut()?.as_mut_slice();
        Some((buf.as_mut_ptr(), len as c_uint))
    }
}

/// The source side of a clone, as the engine calls it back: what it
/// offers to be sent (or, in CLONE LOCAL, applied). Methods take `&self`:
/// the engine re-enters (the source side's callback applies the chunk, and
/// the apply side calls back into the same object), so state lives in cells.
pub trait Source {
    /// `len` bytes are ready at `from`'s current offset.
    fn file(&self, cbk: Cbk<'_>, from: RawFd, len: u32) -> Result<(), Error>;
    /// A buffer is ready (len 0: a descriptor only).
    fn buffer<'c>(&self, cbk: Cbk<'c>, buf: EngineBuf<'c>) -> Result<(), Error>;
}

/// The apply side of a clone, as the engine calls it back.
pub trait Apply {
    /// A state change to show, or an acknowledgement to pass back.
    fn notice(&self, cbk: Cbk<'_>) -> Result<(), Error>;
    /// Write the pending chunk at `to`'s current offset.
    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error>;
    /// The pending chunk, filled into a `Lend` for the engine.
    fn apply_buffer<'s>(&'s self, cbk: Cbk<'_>) -> Result<&'s Lend, Error>;
}

/// Whom a callback object calls: a source side (the donor), an apply side
/// (the recipient), or both (CLONE LOCAL, where the source's buffer
/// callback also carries the apply side's notices).
#[derive(Clone, Copy)]
enum Role<'h> {
    Source(&'h dyn Source),
    Apply(&'h dyn Apply),
    Both(&'h dyn Source, &'h dyn Apply),
}

impl<'h> Role<'h> {
    fn source(self) -> Result<&'h dyn Source, Error> {
        match self {
            Role::Source(s) | Role::Both(s, _) => Ok(s),
            Role::Apply(_) => Err(Error::internal("the engine offered the recipient data to send")),
        }
    }

    fn apply(self) -> Result<&'h dyn Apply, Error> {
        match self {
            Role::Apply(a) | Role::Both(_, a) => Ok(a),
            Role::Source(_) => Err(Error::internal("the engine asked the source side to apply data")),
        }
    }

    fn buffer<'c>(self, cbk: Cbk<'c>, buf: EngineBuf<'c>) -> Result<(), Error> {
        match self {
            Role::Source(s) | Role::Both(s, _) => s.buffer(cbk, buf),
            Role::Apply(a) => a.notice(cbk),
        }
    }
}

/// The C++ callback object, forwarding to a Rust handler.
pub struct Callback<'h> {
    raw: NonNull<Ha_clone_cbk>,
    // Boxed so the C++ object can hold a thin pointer to it.
    _role: Box<Role<'h>>,
}

impl<'h> Callback<'h> {
    /// The callback object of a source side.
    pub fn source(handler: &'h dyn Source) -> Result<Callback<'h>, Error> {
        Callback::new(Role::Source(handler))
    }

    /// The callback object of an apply side.
    pub fn apply(handler: &'h dyn Apply) -> Result<Callback<'h>, Error> {
        Callback::new(Role::Apply(handler))
    }

    /// The callback object of a task on both sides (CLONE LOCAL).
    pub fn both(source: &'h dyn Source, apply: &'h dyn Apply) -> Result<Callback<'h>, Error> {
        Callback::new(Role::Both(source, apply))
    }

    fn new(role: Role<'h>) -> Result<Callback<'h>, Error> {
        let role = Box::new(role);
        let ctx = (&*role as *const Role<'h>).cast_mut().cast::<c_void>();
        // SAFETY: the box outlives the C++ object (both dropped together).
        let raw = NonNull::new(unsafe { ffi::cs_cbk_new(ctx) }).ok_or_else(|| Error::unknown(ER_OUTOFMEMORY))?;
        Ok(Callback { raw, _role: role })
    }

    fn raw(&self) -> *mut Ha_clone_cbk {
        self.raw.as_ptr()
    }

    pub fn cbk(&self) -> Cbk<'_> {
        Cbk(self.raw, PhantomData)
    }

    /// The engine tunes its read size to this (O_DIRECT only).
    pub fn set_client_buffer_size(&self, size: u32) {
        // SAFETY: valid callback object.
        unsafe { ffi::cs_cbk_set_client_buffer_size(self.raw(), size) }
    }
}

impl Drop for Callback<'_> {
    fn drop(&mut self) {
        // SAFETY: created by cs_cbk_new, freed once.
        unsafe { ffi::cs_cbk_free(self.raw()) }
    }
}

/// Recovers the role from the shim's context pointer.
unsafe fn role<'a>(ctx: *mut c_void) -> Role<'a> {
    // SAFETY: the caller passes the context of a live Callback.
    unsafe { *ctx.cast::<Role<'a>>() }
}

/// A callback's result for the engine: 0, or the error number, raised
/// into the calling thread's session (the engine passes only the number on).
fn status(r: Result<(), Error>) -> c_int {
    r.err().map_or(0, |e| e.raise().code())
}

/// The engine's callback object, for the callback that received it.
fn cbk_of<'a>(raw: *mut Ha_clone_cbk) -> Result<Cbk<'a>, Error> {
    NonNull::new(raw).map(|p| Cbk(p, PhantomData)).ok_or_else(|| Error::internal("the engine called back without its callback object"))
}

entry_point! {
#[no_mangle]
fn clone_rs_cbk_file(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, from: c_int, len: c_uint) -> c_int = ER_INTERNAL_ERROR; {
    // SAFETY: ctx comes from Callback::new.
    status(cbk_of(cbk).and_then(|c| unsafe { role(ctx) }.source()?.file(c, from, len)))
}
}

entry_point! {
#[no_mangle]
fn clone_rs_cbk_buffer(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, buf: *mut u8, len: c_uint) -> c_int = ER_INTERNAL_ERROR; {
    let buf = EngineBuf { ptr: buf, len, _engine: PhantomData };
    // SAFETY: ctx is the Callback that Callback::new made for this call.
    status(cbk_of(cbk).and_then(|c| unsafe { role(ctx) }.buffer(c, buf)))
}
}

entry_point! {
#[no_mangle]
fn clone_rs_cbk_apply_file(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, to: c_int) -> c_int = ER_INTERNAL_ERROR; {
    // SAFETY: ctx is the Callback that Callback::new made for this call.
    status(cbk_of(cbk).and_then(|c| unsafe { role(ctx) }.apply()?.apply_file(c, to)))
}
}

entry_point! {
#[no_mangle]
fn clone_rs_cbk_apply_buffer(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, buf: *mut *mut u8, len: *mut c_uint) -> c_int = ER_INTERNAL_ERROR; {
    let lent = || {
        // SAFETY: ctx is the Callback that Callback::new made for this call.
        let lend = cbk_of(cbk).and_then(|c| unsafe { role(ctx) }.apply()?.apply_buffer(c))?;
        lend.hand_over().ok_or_else(|| Error::internal("no block filled for the engine"))
    };
    match lent() {
        Ok((ptr, n)) => {
            // SAFETY: the engine passes valid out-references.
            unsafe {
                *buf = ptr;
                *len = n;
            }
            0
        }
        Err(e) => e.raise().code(),
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_buf(bytes: &[u8]) -> EngineBuf<'_> {
        EngineBuf { ptr: bytes.as_ptr(), len: bytes.len() as u32, _engine: PhantomData }
    }

    #[test]
    fn relay_lends_a_buffer_only_while_it_runs() {
        let relay = Relay::default();
        let outer = [1u8, 2, 3];
        let inner = [9u8];
        assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), None);
        relay.relay(engine_buf(&outer), || {
            assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), Some(vec![1, 2, 3]));
            relay.relay(engine_buf(&inner), || assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), Some(vec![9])));
            assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), Some(vec![1, 2, 3]));
        });
        assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), None);
        // Also when what runs panics.
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relay.relay(engine_buf(&outer), || panic!("boom"))));
        assert!(unwound.is_err());
        assert_eq!(relay.with(|b| b.map(<[u8]>::to_vec)), None);
    }

    #[test]
    fn lend_hands_over_what_was_filled_once() {
        let lend = Lend::default();
        assert!(lend.hand_over().is_none());
        lend.fill(5, |buf| {
            buf.copy_from_slice(b"hello");
            Ok(())
        })
        .map(|_| ())
        .unwrap_or_else(|e| panic!("fill: {e:?}"));
        let (ptr, len) = lend.hand_over().unwrap_or_else(|| panic!("nothing handed over"));
        // SAFETY: the buffer stays in `lend` until it is filled again.
        assert_eq!(unsafe { std::slice::from_raw_parts(ptr, len as usize) }, b"hello");
        assert!(lend.hand_over().is_none(), "handed over twice");
        // Scratch use is not lent.
        lend.fill(3, |_| Ok(())).map(|_| ()).unwrap_or_else(|e| panic!("fill: {e:?}"));
        lend.scratch(3, |_| Ok(())).unwrap_or_else(|e| panic!("scratch: {e:?}"));
        assert!(lend.hand_over().is_none(), "scratch use handed over");
        // A failed fill is not lent either.
        assert!(lend.fill(3, |_| Err(Error::reported(1))).is_err());
        assert!(lend.hand_over().is_none(), "failed fill handed over");
    }
}
