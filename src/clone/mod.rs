//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone.

pub mod donor;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::clone_protocol;
use crate::server::errors::*;
use crate::server::session::{self, Thd};
use crate::server::storage::Errno;

/// Both ends need room for 1 MiB data messages and then some.
const MIN_MAX_ALLOWED_PACKET: u64 = 2 * 1024 * 1024;

/// ER_CLONE_NETWORK_PACKET (raised) if this server's max_allowed_packet is
/// too small for clone data messages.
fn check_packet_size(thd: Thd) -> Result<(), Errno> {
    let value = clone_protocol::configs(thd, &["max_allowed_packet"])?;
    let current: u64 = value.first().and_then(|v| v.parse().ok()).unwrap_or(0);
    if current < MIN_MAX_ALLOWED_PACKET {
        session::raise_two_ints(ER_CLONE_NETWORK_PACKET, MIN_MAX_ALLOWED_PACKET as i64, current as i64);
        return Err(ER_CLONE_NETWORK_PACKET);
    }
    Ok(())
}

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
