//! Raw bindings of the MySQL 9.7 server for the clone plugin, generated at
//! build time by the repository's build.rs from the MySQL source tree: the
//! plugin ABI and component services (bindgen over include/clone_plugin.h),
//! the C interface of the C++ shim (shim/), and the server's error numbers.
//! Nothing else: the safe layer over them is the plugin's `server` module.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, improper_ctypes, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// MySQL error numbers, from share/messages_to_clients.txt and
/// share/messages_to_error_log.txt.
pub mod errors {
    include!(concat!(env!("OUT_DIR"), "/error_codes.rs"));
}

/// A MySQL error number whose message takes the arguments `A` stands for
/// (read from its English text in share/messages_to_clients.txt): the raise
/// functions take only the shapes they pass, so a mismatch does not compile.
pub struct Message<A> {
    pub code: i32,
    _args: core::marker::PhantomData<A>,
}

impl<A> Message<A> {
    pub const fn new(code: i32) -> Message<A> {
        Message { code, _args: core::marker::PhantomData }
    }
}

impl<A> Clone for Message<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for Message<A> {}

/// The shapes of a message's arguments.
pub mod args {
    pub enum None {}
    pub enum Str {}
    pub enum StrStr {}
    /// One `%d` or `%u`.
    pub enum Int {}
    pub enum IntInt {}
    /// `%s`, `%d`, `%s`: a file, the OS errno and its text.
    pub enum StrIntStr {}
    pub enum Other {}
}

/// Every message to clients as a [`Message`], and `NO_ARGUMENTS`.
pub mod messages {
    include!(concat!(env!("OUT_DIR"), "/error_messages.rs"));
}
