//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone.

pub mod donor;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::clone_protocol;
use crate::server::errors::*;
use crate::server::files;
use crate::server::session::Thd;
use crate::space::{self, format_bytes, Space};
use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Both ends need room for 1 MiB data messages and then some.
const MIN_MAX_ALLOWED_PACKET: u64 = 2 * 1024 * 1024;

/// How the writers treat runs of zero bytes: as InnoDB itself extends files
/// on this server (innodb_extend_and_initialize, ON unless set OFF).
fn zero_runs(thd: Thd) -> files::ZeroRuns {
    match clone_protocol::config(thd, "innodb_extend_and_initialize").as_deref() {
        Some("OFF" | "0") => files::ZeroRuns::Allocated,
        _ => files::ZeroRuns::Written,
    }
}

/// ER_CLONE_NETWORK_PACKET if this server's max_allowed_packet is too
/// small for clone data messages.
fn check_packet_size(thd: Thd) -> Result<(), Error> {
    let value = clone_protocol::configs(thd, &["max_allowed_packet"])?;
    let current: u64 = value.first().and_then(|v| v.parse().ok()).unwrap_or(0);
    if current < MIN_MAX_ALLOWED_PACKET {
        return Err(Error::with_ints(message::ER_CLONE_NETWORK_PACKET, MIN_MAX_ALLOWED_PACKET as i64, current as i64));
    }
    Ok(())
}

/// Errors after which a clone connection cannot carry another message
/// (the stock plugin's list). KILL is one of them for the recipient; the
/// donor still reports it to the recipient.
fn breaks_connection(e: i32) -> bool {
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
fn is_restartable(e: i32) -> bool {
    [ER_NET_ERROR_ON_WRITE, ER_NET_READ_ERROR, ER_NET_WRITE_INTERRUPTED, ER_NET_READ_INTERRUPTED, ER_NET_WAIT_ERROR].contains(&e)
}

/// The space check made before anything is written, InnoDB's own made
/// early: the file copy's estimate of the bytes it writes (`needed`) against
/// the free space where the clone writes, plus, in place (`data_dir` None),
/// what the drop of this server's user data releases. `tell` gets what was
/// checked (for a dry run's notes), also when it fails; ER_CLONE_DISK_SPACE
/// (InnoDB's text) when there is not enough.
fn check_space(thd: Thd, data_dir: Option<&CStr>, needed: u64, tell: impl FnOnce(&str)) -> Result<(), Error> {
    let (dir, released) = match data_dir {
        Some(target) => {
            let target = Path::new(OsStr::from_bytes(target.to_bytes()));
            (space::existing_ancestor(target).unwrap_or(Path::new("/")).to_path_buf(), None)
        }
        None => {
            let datadir = clone_protocol::config(thd, "datadir").unwrap_or_else(|| ".".into());
            let datadir = PathBuf::from(datadir);
            let released = space::releasable_user_data(&datadir);
            (datadir, Some(released))
        }
    };
    let free = files::free_space(&dir).map_err(|e| Error::with_file(message::ER_CANT_GET_STAT, dir.to_string_lossy(), e))?;
    let space = Space { needed, available: free.saturating_add(released.unwrap_or(0)) };
    let mut text = format!("The clone will write {}; {} has {} free", format_bytes(needed), dir.display(), format_bytes(free));
    if let Some(released) = released {
        text += &format!(" and the drop of this server's user data releases {}", format_bytes(released));
    }
    log::info!("{text}");
    tell(&text);
    if !space.is_enough() {
        return Err(Error::with_strs(message::ER_CLONE_DISK_SPACE, format_bytes(space.needed), format_bytes(space.available)));
    }
    Ok(())
}
