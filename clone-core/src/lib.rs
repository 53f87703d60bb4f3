//! The pure core of the clone plugin: what can be written and tested
//! without a server. The COM_CLONE codec, the data messages in every form
//! and the checks of InnoDB's descriptors (`protocol`); the transfer
//! statistics, throttle and auto-tune, the aligned buffers and the
//! pipeline that hands work to a thread of its own (`transfer`); the
//! status model and its files (`status`), the donor list (`checks`), who
//! may touch a clone running on a donor (`ownership`), the doublewrite
//! files of an in-place clone (`doublewrite`), the disk space a clone
//! needs and will have (`space`), and the swap of a staged in-place clone
//! (`staging`).
//!
//! No unsafe code here (`forbid(unsafe_code)`), and nothing of the server:
//! `cargo test -p clone-core` needs no MySQL. It is not all Rust
//! underneath: the `zstd` crate builds and links zstd's C library (the
//! data stream's compression), `crc32c` uses CPU intrinsics, and the
//! buffers are anonymous memory maps made through `memmap2`'s safe API.
#![forbid(unsafe_code)]

pub mod checks;
pub mod doublewrite;
pub mod gtid;
pub mod ownership;
pub mod protocol;
pub mod recipient;
pub mod reuse;
pub mod space;
pub mod staging;
pub mod status;
pub mod transfer;
