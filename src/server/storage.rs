//! A safe face on the storage engines' clone interface (`handlerton::
//! clone_interface`) and on the callback object the engines drive. The C++
//! half is in shim/clone_shim.cc.

use super::errors::{message, Error, ER_INTERNAL_ERROR, ER_OUTOFMEMORY};
use super::ffi::{self, handlerton, Ha_clone_cbk};
use super::session::{guard, Thd};
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

/// Engine-owned locator bytes identifying one clone in that engine. The
/// engine keeps them alive until the clone ends (and may update them).
#[derive(Clone, Copy, Debug)]
pub struct Locator {
    ptr: *const u8,
    len: u32,
}

// SAFETY: see Locator: engine memory valid for the clone's lifetime.
unsafe impl Send for Locator {}
// SAFETY: as above.
unsafe impl Sync for Locator {}

impl Locator {
    /// A locator over bytes the caller keeps alive for as long as the
    /// engine may use them (e.g. one received from the network and copied).
    pub fn from_bytes(bytes: &[u8]) -> Locator {
        Locator { ptr: bytes.as_ptr(), len: bytes.len() as u32 }
    }

    pub fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: engine memory of `len` bytes, alive for the clone.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
        }
    }
}

extern "C" fn collect_engine(ctx: *mut c_void, hton: *mut handlerton) {
    // SAFETY: ctx is the Vec passed by clone_engines below.
    let list = unsafe { &mut *ctx.cast::<Vec<Engine>>() };
    if let Some(h) = NonNull::new(hton) {
        list.push(Engine(h));
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

    /// Starts (or joins, with AddTask) a clone on the source side.
    pub fn begin(self, thd: Thd, loc: Option<Locator>, mode: Mode) -> Result<(Locator, u32), Error> {
        let (mut ptr, mut len) = loc.map_or((std::ptr::null(), 0), |l| (l.ptr, l.len));
        let mut task: c_uint = 0;
        // SAFETY: valid handlerton and THD; out-pointers are locals.
        check(unsafe { ffi::cs_clone_begin(self.raw(), thd.as_ptr(), &mut ptr, &mut len, &mut task, mode as c_int) })?;
        Ok((Locator { ptr, len }, task))
    }

    /// Streams this task's share of the data through `cbk`.
    pub fn copy(self, thd: Thd, loc: Locator, task: u32, cbk: &Callback<'_>) -> Result<(), Error> {
        // SAFETY: as above; cbk outlives the call.
        check(unsafe { ffi::cs_clone_copy(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, cbk.raw()) })
    }

    /// Passes the apply side's acknowledgement (the descriptor set on `cbk`).
    pub fn ack(self, thd: Thd, loc: Locator, task: u32, in_err: i32, cbk: Cbk<'_>) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_ack(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, in_err, cbk.0.as_ptr()) })
    }

    pub fn end(self, thd: Thd, loc: Locator, task: u32, in_err: i32) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_end(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, in_err) })
    }

    /// Starts (or joins) applying a clone into `data_dir` (None: replace the
    /// server's own data directory). The engine keeps the directory name
    /// until the clone ends, so it must outlive the clone.
    pub fn apply_begin(self, thd: Thd, loc: Option<Locator>, mode: Mode, data_dir: Option<&CStr>) -> Result<(Locator, u32), Error> {
        let (mut ptr, mut len) = loc.map_or((std::ptr::null(), 0), |l| (l.ptr, l.len));
        let mut task: c_uint = 0;
        let dir_ptr = data_dir.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: as above; the caller keeps data_dir alive.
        check(unsafe { ffi::cs_clone_apply_begin(self.raw(), thd.as_ptr(), &mut ptr, &mut len, &mut task, mode as c_int, dir_ptr) })?;
        Ok((Locator { ptr, len }, task))
    }

    /// Applies the descriptor set on `cbk` (the engine may call back for data).
    pub fn apply(self, thd: Thd, loc: Locator, task: u32, cbk: Cbk<'_>) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_apply(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, 0, cbk.0.as_ptr()) })
    }

    /// Tells the apply side about an error elsewhere.
    pub fn apply_error(self, thd: Thd, loc: Locator, task: u32, err: i32) {
        // SAFETY: a null callback with an error is the engine's "record error".
        unsafe { ffi::cs_clone_apply(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, err, std::ptr::null_mut()) };
    }

    pub fn apply_end(self, thd: Thd, loc: Locator, task: u32, in_err: i32) -> Result<(), Error> {
        // SAFETY: as above.
        check(unsafe { ffi::cs_clone_apply_end(self.raw(), thd.as_ptr(), loc.ptr, loc.len, task, in_err) })
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

/// A buffer the engine owns (source side) or that the plugin lends to the
/// engine (apply side), valid for the duration of the callback that saw it.
/// Made only from the engine's own pointer or from a slice (`lend`).
#[derive(Clone, Copy, Debug)]
pub struct EngineBuf {
    ptr: *mut u8,
    len: u32,
}

// SAFETY: only used within the nested callbacks of one thread.
unsafe impl Send for EngineBuf {}

impl EngineBuf {
    /// Lends `buf` to the engine, which reads it after the callback that
    /// returns it: the caller keeps the bytes unchanged until the engine's
    /// next call. Longer than `u32::MAX` bytes is not lent whole.
    pub fn lend(buf: &mut [u8]) -> EngineBuf {
        EngineBuf { ptr: buf.as_mut_ptr(), len: u32::try_from(buf.len()).unwrap_or(u32::MAX) }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: the engine guarantees `len` readable bytes during the callback.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len as usize) }
        }
    }
}

/// What the plugin does when the engine calls back. Methods take `&self`:
/// the engine re-enters (the source side's callback applies the chunk, and
/// the apply side calls back into the same object), so state lives in cells.
pub trait Handler {
    /// Source side: `len` bytes are ready at `from`'s current offset.
    fn file(&self, cbk: Cbk<'_>, from: RawFd, len: u32) -> Result<(), Error>;
    /// Source side: a buffer is ready (len 0: a descriptor only); on the apply
    /// side, a state change or acknowledgement to pass back.
    fn buffer(&self, cbk: Cbk<'_>, buf: EngineBuf) -> Result<(), Error>;
    /// Apply side: write the pending chunk at `to`'s current offset.
    fn apply_file(&self, cbk: Cbk<'_>, to: RawFd) -> Result<(), Error>;
    /// Apply side: hand out the pending chunk in memory.
    fn apply_buffer(&self, cbk: Cbk<'_>) -> Result<EngineBuf, Error>;
}

/// The C++ callback object, forwarding to a Rust handler.
pub struct Callback<'h> {
    raw: NonNull<Ha_clone_cbk>,
    // Boxed so the C++ object can hold a thin pointer to the fat one.
    #[allow(clippy::redundant_allocation)]
    _ctx: Box<&'h dyn Handler>,
    _lifetime: PhantomData<&'h ()>,
}

impl<'h> Callback<'h> {
    pub fn new(handler: &'h dyn Handler) -> Result<Callback<'h>, Error> {
        let ctx: Box<&'h dyn Handler> = Box::new(handler);
        let ctx_ptr = (&*ctx as *const &dyn Handler).cast_mut().cast::<c_void>();
        // SAFETY: the box outlives the C++ object (both dropped together).
        let raw = NonNull::new(unsafe { ffi::cs_cbk_new(ctx_ptr) }).ok_or_else(|| Error::unknown(ER_OUTOFMEMORY))?;
        Ok(Callback { raw, _ctx: ctx, _lifetime: PhantomData })
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

/// Recovers the handler from the shim's context pointer.
unsafe fn handler<'a>(ctx: *mut c_void) -> &'a dyn Handler {
    // SAFETY: the caller passes the context of a live Callback.
    unsafe { *ctx.cast::<&dyn Handler>() }
}

/// A callback's result for the engine: 0, or the error number, raised
/// into the calling thread's session (the engine passes only the number on).
fn status(r: Result<(), Error>) -> c_int {
    r.err().map_or(0, |e| e.raise().code())
}

/// The engine's callback object, for the callback that received it.
fn cbk_of<'a>(raw: *mut Ha_clone_cbk) -> Result<Cbk<'a>, Error> {
    NonNull::new(raw)
        .map(|p| Cbk(p, PhantomData))
        .ok_or_else(|| Error::with_str(message::ER_INTERNAL_ERROR, "clone: the engine called back without its callback object"))
}

#[no_mangle]
extern "C" fn clone_rs_cbk_file(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, from: c_int, len: c_uint) -> c_int {
    // SAFETY: ctx comes from Callback::new.
    guard(ER_INTERNAL_ERROR, || status(cbk_of(cbk).and_then(|c| unsafe { handler(ctx) }.file(c, from, len))))
}

#[no_mangle]
extern "C" fn clone_rs_cbk_buffer(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, buf: *mut u8, len: c_uint) -> c_int {
    // SAFETY: ctx is the Callback that Callback::new made for this call.
    guard(ER_INTERNAL_ERROR, || status(cbk_of(cbk).and_then(|c| unsafe { handler(ctx) }.buffer(c, EngineBuf { ptr: buf, len }))))
}

#[no_mangle]
extern "C" fn clone_rs_cbk_apply_file(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, to: c_int) -> c_int {
    // SAFETY: ctx is the Callback that Callback::new made for this call.
    guard(ER_INTERNAL_ERROR, || status(cbk_of(cbk).and_then(|c| unsafe { handler(ctx) }.apply_file(c, to))))
}

#[no_mangle]
extern "C" fn clone_rs_cbk_apply_buffer(ctx: *mut c_void, cbk: *mut Ha_clone_cbk, buf: *mut *mut u8, len: *mut c_uint) -> c_int {
    // SAFETY: ctx is the Callback that Callback::new made for this call.
    guard(ER_INTERNAL_ERROR, || match cbk_of(cbk).and_then(|c| unsafe { handler(ctx) }.apply_buffer(c)) {
        Ok(b) => {
            // SAFETY: the engine passes valid out-references.
            unsafe {
                *buf = b.ptr;
                *len = b.len;
            }
            0
        }
        Err(e) => e.raise().code(),
    })
}
