//! The transfer engine shared by local and remote clone: per-thread byte
//! counters, the statistics the master thread derives from them, bandwidth
//! throttling, auto-tuning of the number of threads, and file copying.
//! Nothing here knows about the server.

pub mod autotune;
pub mod copy;
pub mod stats;
pub mod throttle;

pub const MIB: u64 = 1024 * 1024;
