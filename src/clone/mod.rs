//! The clone flows, written against the safe server layer: local clone, and
//! the two ends of a remote clone. No `unsafe` here: what needs it is the
//! server layer's.
#![forbid(unsafe_code)]

pub mod donor;
pub mod local;
mod meter;
pub mod recipient;

use crate::server::config;
use crate::server::errors::*;
use crate::server::files;
use crate::server::session::Thd;
use clone_core::doublewrite;
use clone_core::space::{self, format_bytes, Space};
use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Both ends need room for 1 MiB data messages and then some.
const MIN_MAX_ALLOWED_PACKET: u64 = 2 * 1024 * 1024;

/// How the writers treat runs of zero bytes: as InnoDB itself extends files
/// on this server (innodb_extend_and_initialize, ON unless set OFF).
fn zero_runs(thd: Thd) -> files::ZeroRuns {
    match config::variable(thd, "innodb_extend_and_initialize").as_deref() {
        Some("OFF" | "0") => files::ZeroRuns::Allocated,
        _ => files::ZeroRuns::Written,
    }
}

/// ER_CLONE_NETWORK_PACKET if this server's max_allowed_packet is too
/// small for clone data messages.
fn check_packet_size(thd: Thd) -> Result<(), Error> {
    let value = config::variables(thd, &["max_allowed_packet"])?;
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
/// the free space of the one file system InnoDB checks, the new directory's
/// or, in place (`data_dir` None), the data directory's, plus what the drop
/// of this server's user data releases on that file system, less what is
/// written there before InnoDB checks. `tell` gets what was checked and
/// counted (for a dry run's notes, and a refusal's), also when it fails;
/// ER_CLONE_DISK_SPACE (InnoDB's text) when there is not enough.
fn check_space(thd: Thd, data_dir: Option<&CStr>, needed: u64, tell: impl FnOnce(&str)) -> Result<(), Error> {
    let (dir, in_place) = match data_dir {
        Some(target) => {
            let target = Path::new(OsStr::from_bytes(target.to_bytes()));
            (space::existing_ancestor(target).unwrap_or(Path::new("/")).to_path_buf(), false)
        }
        None => (PathBuf::from(config::variable(thd, "datadir").unwrap_or_else(|| ".".into())), true),
    };
    let free = files::free_space(&dir).map_err(|e| Error::with_file(message::ER_CANT_GET_STAT, dir.to_string_lossy(), e))?;
    let mut space = Space { needed, free, released: 0, written_first: 0 };
    let mut released = None;
    if in_place {
        let top = std::fs::metadata(&dir).map_err(|e| Error::with_file(message::ER_CANT_GET_STAT, dir.to_string_lossy(), e))?;
        let scope = drop_scope(thd, &dir);
        let counted = space::releasable(&scope);
        space.released = counted.on(top.dev());
        space.written_first = written_first(thd, &dir, top.dev(), top.blksize(), !scope.binary_logs.is_empty());
        released = Some((top.dev(), counted));
    }
    let device = released.as_ref().map_or(0, |(d, _)| *d);
    let text = space::describe(&space, &dir, device, released.as_ref().map(|(_, r)| r));
    log::info!("{text}");
    tell(&text);
    if !space.is_enough() {
        return Err(Error::with_strs(message::ER_CLONE_DISK_SPACE, format_bytes(space.needed), format_bytes(space.available())));
    }
    Ok(())
}

/// Where this server's user data and binary logs are.
fn drop_scope(thd: Thd, datadir: &Path) -> space::DropScope {
    let config = |key| config::variable(thd, key).unwrap_or_default();
    let index = match config("log_bin").as_str() {
        "ON" | "1" => std::fs::read_to_string(datadir.join(config("log_bin_index"))).ok(),
        _ => None,
    };
    space::DropScope::new(datadir, &config("innodb_data_home_dir"), &config("innodb_directories"), index.as_deref())
}

/// Blocks for InnoDB's `#clone` directory and status files, and our list
/// of the files the restart replaces.
const CLONE_METADATA_BLOCKS: u64 = 4;

/// What is written on the data directory's file system (`device`) between
/// the drop and InnoDB's check: the zero-filled doublewrite replacements
/// (recipient.rs, replace_doublewrite_files) when their directory is there,
/// the clone's small metadata files, and the first binary log that RESET
/// BINARY LOGS AND GTIDS opens.
fn written_first(thd: Thd, datadir: &Path, device: u64, block: u64, binary_logs: bool) -> u64 {
    let setting = config::variable(thd, "innodb_doublewrite_dir").unwrap_or_default();
    let dblwr = datadir.join(doublewrite::directory(&setting));
    let mut sizes = Vec::new();
    if std::fs::metadata(&dblwr).is_ok_and(|m| m.dev() == device) {
        let names = doublewrite::files_in(&dblwr).unwrap_or_default();
        sizes.extend(names.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()));
    }
    let extra = CLONE_METADATA_BLOCKS + u64::from(binary_logs);
    space::in_blocks(sizes, block).saturating_add(extra.saturating_mul(block))
}
