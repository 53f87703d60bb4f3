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
