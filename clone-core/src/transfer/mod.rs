//! The transfer engine shared by local and remote clone: per-thread byte
//! counters, the statistics the master thread derives from them, bandwidth
//! throttling, auto-tuning of the number of threads, and the zero runs the
//! writer need not write. Nothing here knows about the server (the file
//! copies are the server layer's `files`).

pub mod autotune;
pub mod stats;
pub mod throttle;
pub mod zeros;

pub const MIB: u64 = 1024 * 1024;
