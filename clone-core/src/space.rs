//! Disk space before a clone writes: what InnoDB's own check (clone0apply.cc,
//! check_space) will compare, known before anything is dropped.
//!
//! InnoDB checks the space of the file copy's estimate against the target's
//! free space when the copy begins. In place, that is after it has dropped
//! this server's user data, whose space then counts as free. Checking before
//! the drop, the space the drop will release has to be added:
//! [`releasable_user_data`] counts it, leaving out whatever it cannot be
//! sure the drop releases (so it never promises space that will not come).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Schemas whose files the drop keeps (clone0api.cc, clone_drop_user_data
/// drops every other schema's tables).
const KEPT_SCHEMAS: [&str; 3] = ["mysql", "sys", "performance_schema"];

/// Bytes as InnoDB prints them in ER_CLONE_DISK_SPACE (ut_format_byte_value):
/// two decimals in the largest power of 1024 below the value.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["Bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && bytes / scale >= 1024 {
        scale *= 1024;
        unit += 1;
    }
    format!("{:.2} {}", bytes as f64 / scale as f64, UNITS[unit])
}

/// What a clone needs against what the target will have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// The copy's estimate of the bytes its files take on disk.
    pub needed: u64,
    /// Free now, plus (in place) what the drop of user data releases.
    pub available: u64,
}

impl Space {
    pub fn is_enough(&self) -> bool {
        self.needed <= self.available
    }
}

/// The disk space the in-place drop of user data will release in
/// `datadir`: the `.ibd` files of user schemas (one directory per schema)
/// and of general tablespaces at its top, on the data directory's own file
/// system, counted by the blocks they occupy. Binary logs (the drop resets
/// them), tables with a DATA DIRECTORY elsewhere and other engines' files
/// are left out.
pub fn releasable_user_data(datadir: &Path) -> u64 {
    let Ok(top) = fs::metadata(datadir) else { return 0 };
    let device = top.dev();
    let Ok(entries) = fs::read_dir(datadir) else { return 0 };
    let mut total = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Not followed: a link leads off the data directory's own files.
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if meta.is_dir() && !name.starts_with('#') && !KEPT_SCHEMAS.contains(&name) {
            total += tablespace_bytes(&entry.path(), device);
        } else if meta.is_file() && is_tablespace(name) && name != "mysql.ibd" && meta.dev() == device {
            total += allocated(&meta);
        }
    }
    total
}

fn tablespace_bytes(schema: &Path, device: u64) -> u64 {
    let Ok(entries) = fs::read_dir(schema) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_tablespace))
        .filter_map(|e| e.path().symlink_metadata().ok())
        .filter(|m| m.is_file() && m.dev() == device)
        .map(|m| allocated(&m))
        .sum()
}

fn is_tablespace(name: &str) -> bool {
    name.ends_with(".ibd")
}

fn allocated(meta: &fs::Metadata) -> u64 {
    meta.blocks().saturating_mul(512)
}

/// The nearest directory at or above `path` that exists: where a clone
/// into a new directory will take its space from.
pub fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| !p.as_os_str().is_empty() && p.is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_printed_as_innodb_prints_them() {
        assert_eq!(format_bytes(0), "0.00 Bytes");
        assert_eq!(format_bytes(1023), "1023.00 Bytes");
        assert_eq!(format_bytes(1024), "1.00 KiB");
        // The figures of the stock error measured here (issue 11).
        assert_eq!(format_bytes(486_789_120), "464.24 MiB");
        assert_eq!(format_bytes(164_984_750), "157.34 MiB");
        assert_eq!(format_bytes(u64::MAX), "16.00 EiB");
    }

    #[test]
    fn enough_is_at_most_what_is_available() {
        assert!(Space { needed: 10, available: 10 }.is_enough());
        assert!(!Space { needed: 11, available: 10 }.is_enough());
    }

    fn write(path: &Path, len: usize) {
        fs::write(path, vec![7u8; len]).unwrap();
    }

    #[test]
    fn the_drop_releases_user_tablespaces_only() {
        let dir = std::env::temp_dir().join(format!("clone-space-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["shop", "mysql", "sys", "#innodb_redo", "empty"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        write(&dir.join("shop/orders.ibd"), 64 * 1024);
        write(&dir.join("shop/notes.txt"), 64 * 1024);
        write(&dir.join("general.ibd"), 32 * 1024);
        write(&dir.join("mysql.ibd"), 128 * 1024);
        write(&dir.join("mysql/kept.ibd"), 128 * 1024);
        write(&dir.join("sys/sys_config.ibd"), 128 * 1024);
        write(&dir.join("#innodb_redo/#ib_redo1"), 128 * 1024);
        write(&dir.join("ibdata1"), 128 * 1024);
        let released = releasable_user_data(&dir);
        let blocks = |p: &str| allocated(&fs::metadata(dir.join(p)).unwrap());
        assert_eq!(released, blocks("shop/orders.ibd") + blocks("general.ibd"));
        assert!(released >= 96 * 1024);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(releasable_user_data(&dir), 0);
    }

    #[test]
    fn a_new_directory_takes_its_space_from_the_nearest_existing_one() {
        let tmp = std::env::temp_dir();
        let target = tmp.join("clone-space-none/a/b");
        assert_eq!(existing_ancestor(&target), Some(tmp.as_path()));
        assert_eq!(existing_ancestor(&tmp), Some(tmp.as_path()));
    }
}
