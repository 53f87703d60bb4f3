//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone.

pub mod donor;
mod doublewrite;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::errors::*;
use crate::server::storage::Errno;

/// Errors after which a clone connection cannot carry another message
/// (the stock plugin's list). KILL is one of them for the recipient; the
/// donor still reports it to the recipient.
fn breaks_connection(e: Errno) -> bool {
    [
        ER_NET_PACKETS_OUT_OF_ORDER,
        ER_NET_UNCOMPRESS_ERROR,
        ER_NET_PACKET_TOO_LARGE,
        ER_NET_READ_ERROR,
        ER_NET_READ_INTERRUPTED,
        ER_NET_ERROR_ON_WRITE,
        ER_NET_WRITE_INTERRUPTED,
        ER_NET_WAIT_ERROR,
        ER_QUERY_INTERRUPTED,
        ER_CLONE_PROTOCOL,
    ]
    .contains(&e)
}

/// Network errors after which a clone can resume on new connections (the
/// donor's InnoDB keeps the clone for a while after them).
fn is_restartable(e: Errno) -> bool {
    [ER_NET_ERROR_ON_WRITE, ER_NET_READ_ERROR, ER_NET_WRITE_INTERRUPTED, ER_NET_READ_INTERRUPTED, ER_NET_WAIT_ERROR].contains(&e)
}
