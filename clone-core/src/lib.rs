//! The pure core of the clone plugin: what can be written and tested
//! without a server. The COM_CLONE codec and the checks of InnoDB's
//! descriptors (`protocol`), the transfer statistics, throttle and auto-tune
//! (`transfer`), the status model and its files (`status`), the donor list
//! (`checks`), who may touch a clone running on a donor (`ownership`), the
//! doublewrite files of an in-place clone (`doublewrite`), and the disk
//! space a clone needs and will have (`space`). No FFI, no
//! unsafe: `cargo test -p clone-core` needs Rust only.
#![forbid(unsafe_code)]

pub mod checks;
pub mod doublewrite;
pub mod ownership;
pub mod protocol;
pub mod space;
pub mod status;
pub mod transfer;
