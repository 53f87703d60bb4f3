//! The transfer engine shared by local and remote clone: per-thread byte
//! counters, the statistics the master thread derives from them, bandwidth
//! throttling, auto-tuning of the number of threads, the zero runs the
//! writer need not write, the aligned buffers blocks travel in, and the
//! pipeline that hands work to a thread of its own (file writes, network
//! sends, status files). Nothing here knows about the server (the file
//! copies themselves are the server layer's `files`).

pub mod autotune;
pub mod buffers;
pub mod pipeline;
pub mod stats;
pub mod throttle;
pub mod zeros;

pub const MIB: u64 = 1024 * 1024;
