//! The diagnostics area of the calling thread's session: `my_error` of each
//! message shape, typed by the arguments the message takes.

use super::errors::{args, message, Message};
use super::ffi;
use std::ffi::{c_int, CString};

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// `my_error` of a message without arguments.
pub(super) fn raise(m: Message<args::None>) {
    // SAFETY: the message takes no arguments (its type says so).
    unsafe { ffi::my_error(m.code, 0) }
}

/// Raises an error number known only at run time (one a server call
/// returned): as itself when its message takes no arguments, otherwise as
/// ER_INTERNAL_ERROR naming it, since its arguments are not known.
pub(super) fn raise_errno(code: i32) {
    if message::NO_ARGUMENTS.binary_search(&code).is_ok() {
        // SAFETY: the message for `code` takes no arguments.
        unsafe { ffi::my_error(code, 0) }
    } else {
        raise_str(message::ER_INTERNAL_ERROR, &format!("clone failed with error {code}"));
    }
}

/// `my_error` of a message with one `%s`.
pub(super) fn raise_str(m: Message<args::Str>, arg: &str) {
    let arg = cstring(arg);
    // SAFETY: the message takes one string.
    unsafe { ffi::my_error(m.code, 0, arg.as_ptr()) }
}

/// `my_error` of a message with two `%s`.
pub(super) fn raise_two_strs(m: Message<args::StrStr>, a: &str, b: &str) {
    let (a, b) = (cstring(a), cstring(b));
    // SAFETY: the message takes two strings.
    unsafe { ffi::my_error(m.code, 0, a.as_ptr(), b.as_ptr()) }
}

/// `my_error` of a message with one `%d`/`%u` (an int, saturated).
pub(super) fn raise_int(m: Message<args::Int>, arg: i64) {
    // SAFETY: the message takes one int.
    unsafe { ffi::my_error(m.code, 0, saturate(arg)) }
}

/// `my_error` of a message with two `%d`/`%u`.
pub(super) fn raise_two_ints(m: Message<args::IntInt>, a: i64, b: i64) {
    // SAFETY: the message takes two ints.
    unsafe { ffi::my_error(m.code, 0, saturate(a), saturate(b)) }
}

fn saturate(n: i64) -> c_int {
    n.clamp(c_int::MIN.into(), c_int::MAX.into()) as c_int
}

/// `my_error(file, errno, text)`: ER_ERROR_ON_READ, ER_ERROR_ON_WRITE and
/// the other messages of a file and an OS error.
pub(super) fn raise_file(m: Message<args::StrIntStr>, file: &str, err: &std::io::Error) {
    let file = cstring(file);
    let text = cstring(&err.to_string());
    let errno = err.raw_os_error().unwrap_or(0);
    // SAFETY: the message takes a string, an int and a string.
    unsafe { ffi::my_error(m.code, 0, file.as_ptr(), errno as c_int, text.as_ptr()) }
}
