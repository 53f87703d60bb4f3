//! Disk space before a clone writes: what InnoDB's own check (clone0apply.cc,
//! check_space) will compare, known before anything is dropped.
//!
//! InnoDB compares the file copy's estimate with the free space of one file
//! system, the data directory's (in place) or the new directory's, when the
//! copy begins (`os_get_free_space`, f_bsize * f_bavail). In place, that is
//! after it has dropped this server's user data (clone0api.cc,
//! clone_drop_user_data): every user table, user schema and general
//! tablespace, wherever its files lie, and then the binary logs (RESET
//! BINARY LOGS AND GTIDS). What that releases on the checked file system
//! then counts as free; what it releases on any other one does not.
//! Checking before the drop, [`releasable`] counts the drop's files per file
//! system (by device id), and [`Space`] adds what it releases on the checked
//! one and takes off what the plugin itself writes there before InnoDB
//! checks.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Schemas the drop keeps (clone0api.cc, Fixup_data::is_system_schema;
/// information_schema has no directory).
const SYSTEM_SCHEMAS: [&str; 3] = ["mysql", "sys", "performance_schema"];

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

/// What a clone needs against what InnoDB will find on the file system it
/// checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// The copy's estimate of the bytes its files take on disk.
    pub needed: u64,
    /// Free now on the checked file system.
    pub free: u64,
    /// What the in-place drop releases there (0 into a new directory).
    pub released: u64,
    /// What this plugin writes there between the drop and InnoDB's check
    /// (the doublewrite replacements, the new first binary log).
    pub written_first: u64,
}

impl Space {
    /// The free space InnoDB's check will see.
    pub fn available(&self) -> u64 {
        self.free.saturating_add(self.released).saturating_sub(self.written_first)
    }

    pub fn is_enough(&self) -> bool {
        self.needed <= self.available()
    }
}

/// The kinds of files the drop deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The files of user schemas' tables in the data directory (any engine,
    /// with what MyISAM's DATA/INDEX DIRECTORY links lead to), and the
    /// schema directories themselves (DROP SCHEMA).
    SchemaFile,
    /// InnoDB tablespace files elsewhere: tables created with DATA
    /// DIRECTORY and general tablespaces, under the data directory's top,
    /// innodb_data_home_dir or innodb_directories.
    Tablespace,
    /// Binary logs, which RESET BINARY LOGS AND GTIDS deletes.
    BinaryLog,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::SchemaFile => "files of user schemas",
            Kind::Tablespace => "tablespace files outside them",
            Kind::BinaryLog => "binary logs",
        }
    }
}

/// Files and the bytes they occupy.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

/// What the drop releases, per file system (`st_dev`) and kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    devices: BTreeMap<u64, BTreeMap<Kind, Tally>>,
}

impl Released {
    pub fn add(&mut self, device: u64, kind: Kind, bytes: u64) {
        let tally = self.devices.entry(device).or_default().entry(kind).or_default();
        tally.files += 1;
        tally.bytes = tally.bytes.saturating_add(bytes);
    }

    /// The bytes released on the file system `device`.
    pub fn on(&self, device: u64) -> u64 {
        self.devices.get(&device).map_or(0, |kinds| kinds.values().fold(0u64, |sum, t| sum.saturating_add(t.bytes)))
    }

    /// The bytes released on every other file system.
    pub fn elsewhere(&self, device: u64) -> u64 {
        self.devices.keys().filter(|&&d| d != device).fold(0u64, |sum, &d| sum.saturating_add(self.on(d)))
    }

    pub fn tally(&self, device: u64, kind: Kind) -> Tally {
        self.devices.get(&device).and_then(|k| k.get(&kind)).copied().unwrap_or_default()
    }

    /// "3 files of user schemas (1.00 GiB), 2 binary logs (10.00 MiB)",
    /// or "nothing" for the file system `device`.
    pub fn describe(&self, device: u64) -> String {
        let Some(kinds) = self.devices.get(&device) else { return "nothing".into() };
        let parts: Vec<String> = kinds.iter().map(|(kind, t)| format!("{} {} ({})", t.files, kind.describe(), format_bytes(t.bytes))).collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Where the drop's files are, from this server's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DropScope {
    /// The data directory (absolute).
    pub datadir: PathBuf,
    /// InnoDB's other known directories (fil_set_scan_dir(s) in
    /// srv0start.cc): innodb_data_home_dir and innodb_directories.
    pub known_dirs: Vec<PathBuf>,
    /// The binary logs named in the index, when log_bin is ON.
    pub binary_logs: Vec<PathBuf>,
}

impl DropScope {
    /// From the values of datadir, innodb_data_home_dir,
    /// innodb_directories (';'-separated, quotes removed as InnoDB removes
    /// them) and, when log_bin is ON, the text of the log_bin_index file.
    /// Relative names are taken from the data directory, the server's
    /// working directory.
    pub fn new(datadir: &Path, data_home_dir: &str, innodb_directories: &str, binlog_index: Option<&str>) -> DropScope {
        let known_dirs = std::iter::once(data_home_dir)
            .chain(innodb_directories.split(';'))
            .map(|d| d.trim().trim_matches(|c| c == '\'' || c == '"'))
            .filter(|d| !d.is_empty())
            .map(|d| datadir.join(d))
            .collect();
        let binary_logs = binlog_index.map(|text| text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| datadir.join(l)).collect()).unwrap_or_default();
        DropScope { datadir: datadir.to_path_buf(), known_dirs, binary_logs }
    }
}

/// What the in-place drop of user data releases, per file system, counted
/// by the blocks the files occupy. Each file is counted once (by device and
/// inode), and only if it has no other link (deleting it would not free its
/// blocks otherwise). Not counted: what the drop keeps (the system,
/// undo and mysql tablespaces, the redo log, sys.sys_config), other
/// instances' data directories under a known directory, and relay logs.
pub fn releasable(scope: &DropScope) -> Released {
    let mut count = Counter::default();
    count.data_directory(&scope.datadir);
    for dir in &scope.known_dirs {
        count.known_directory(dir, &scope.datadir, 0);
    }
    for log in &scope.binary_logs {
        if let Ok(meta) = fs::metadata(log) {
            count.file(&meta, Kind::BinaryLog);
        }
    }
    count.released
}

/// How deep below a known directory tablespaces are looked for; InnoDB's
/// own scan has no bound, DATA DIRECTORY puts a table one level down.
const MAX_DEPTH: usize = 8;

#[derive(Default)]
struct Counter {
    released: Released,
    seen: HashSet<(u64, u64)>,
}

impl Counter {
    fn file(&mut self, meta: &fs::Metadata, kind: Kind) {
        if meta.is_file() && meta.nlink() == 1 && self.seen.insert((meta.dev(), meta.ino())) {
            self.released.add(meta.dev(), kind, allocated(meta));
        }
    }

    /// The user schemas' directories, all they hold, and the general
    /// tablespaces at the top; in the system schemas, the tablespaces of
    /// user tables the drop does not skip.
    fn data_directory(&mut self, datadir: &Path) {
        let Ok(entries) = fs::read_dir(datadir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // Not followed: a link here is not one of the drop's files.
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            if meta.is_dir() && !name.starts_with('#') {
                if SYSTEM_SCHEMAS.contains(&name) {
                    self.system_schema(&entry.path(), name);
                } else {
                    self.user_schema(&entry.path(), &meta);
                }
            } else if is_tablespace(name) && name != "mysql.ibd" {
                self.tablespace(&entry.path(), &meta);
            }
        }
    }

    /// DROP TABLE deletes every table's files and DROP SCHEMA the rest it
    /// knows (it refuses, and the clone fails, on others): all of it.
    fn user_schema(&mut self, dir: &Path, meta: &fs::Metadata) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Ok(link) = entry.path().symlink_metadata() else { continue };
            // A MyISAM DATA/INDEX DIRECTORY link: the drop deletes its target.
            let target = if link.file_type().is_symlink() { fs::metadata(entry.path()) } else { Ok(link) };
            if let Ok(file) = target {
                self.file(&file, Kind::SchemaFile);
            }
        }
        if self.seen.insert((meta.dev(), meta.ino())) {
            self.released.add(meta.dev(), Kind::SchemaFile, allocated(meta));
        }
    }

    /// mysql: its own tables are in mysql.ibd (kept) or CSV (kept); a
    /// tablespace file there is a user table's. sys: all but sys_config.
    fn system_schema(&mut self, dir: &Path, schema: &str) {
        if schema == "performance_schema" {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_tablespace(name) && !(schema == "sys" && name == "sys_config.ibd") {
                if let Ok(meta) = entry.path().symlink_metadata() {
                    self.tablespace(&entry.path(), &meta);
                }
            }
        }
    }

    /// A tablespace file, and the .cfg/.cfp files InnoDB deletes with it.
    fn tablespace(&mut self, path: &Path, meta: &fs::Metadata) {
        self.file(meta, Kind::Tablespace);
        for extension in ["cfg", "cfp"] {
            if let Ok(side) = path.with_extension(extension).symlink_metadata() {
                self.file(&side, Kind::Tablespace);
            }
        }
    }

    /// The tablespace files under a known directory other than the data
    /// directory (counted above), whatever depth, except in another
    /// instance's data directory.
    fn known_directory(&mut self, dir: &Path, datadir: &Path, depth: usize) {
        if depth > MAX_DEPTH || same_directory(dir, datadir) || (depth > 0 && is_data_directory(dir)) {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else { continue };
            let name = entry.file_name();
            if meta.is_dir() {
                self.known_directory(&entry.path(), datadir, depth + 1);
            } else if name.to_str().is_some_and(is_tablespace) {
                self.tablespace(&entry.path(), &meta);
            }
        }
    }
}

fn same_directory(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A data directory of its own (another instance, or a clone made here).
pub(crate) fn is_data_directory(dir: &Path) -> bool {
    dir.join("mysql.ibd").exists() || dir.join("#innodb_redo").is_dir()
}

fn is_tablespace(name: &str) -> bool {
    name.ends_with(".ibd")
}

fn allocated(meta: &fs::Metadata) -> u64 {
    meta.blocks().saturating_mul(512)
}

/// The bytes `sizes` take once written, each rounded up to whole blocks.
pub fn in_blocks(sizes: impl IntoIterator<Item = u64>, block: u64) -> u64 {
    let block = block.max(1);
    sizes.into_iter().fold(0u64, |sum, s| sum.saturating_add(s.div_ceil(block).saturating_mul(block)))
}

/// The nearest directory at or above `path` that exists: where a clone
/// into a new directory will take its space from.
pub fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors().find(|p| !p.as_os_str().is_empty() && p.is_dir())
}

/// What was checked, for the notes, the log and a refusal: the free space
/// of `dir`, what the drop releases on its file system (`device`) and
/// elsewhere, and what is written there first.
pub fn describe(space: &Space, dir: &Path, device: u64, released: Option<&Released>) -> String {
    let mut text = format!("The clone will write {}; {} has {} free", format_bytes(space.needed), dir.display(), format_bytes(space.free));
    if let Some(released) = released {
        text +=
            &format!(", and the drop of this server's user data releases {} on its file system: {}", format_bytes(space.released), released.describe(device));
        if space.written_first > 0 {
            text += &format!("; less {} this plugin writes there first", format_bytes(space.written_first));
        }
        let elsewhere = released.elsewhere(device);
        if elsewhere > 0 {
            text += &format!("; {} released on other file systems does not count (InnoDB checks this one)", format_bytes(elsewhere));
        }
        text += &format!("; {} available in all", format_bytes(space.available()));
    }
    text
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
    fn enough_is_at_most_what_innodb_will_find() {
        let space = |free, released, written_first| Space { needed: 100, free, released, written_first };
        assert!(space(100, 0, 0).is_enough());
        assert!(!space(99, 0, 0).is_enough());
        assert!(space(60, 40, 0).is_enough());
        assert!(!space(60, 40, 1).is_enough());
        assert!(space(60, 50, 10).is_enough());
        assert_eq!(space(5, 0, 10).available(), 0);
    }

    #[test]
    fn releases_are_kept_per_file_system() {
        let mut r = Released::default();
        r.add(1, Kind::SchemaFile, 100);
        r.add(1, Kind::SchemaFile, 50);
        r.add(1, Kind::BinaryLog, 7);
        r.add(2, Kind::Tablespace, 1000);
        assert_eq!(r.on(1), 157);
        assert_eq!(r.on(2), 1000);
        assert_eq!(r.on(3), 0);
        assert_eq!(r.elsewhere(1), 1000);
        assert_eq!(r.tally(1, Kind::SchemaFile), Tally { files: 2, bytes: 150 });
        assert_eq!(r.describe(1), "2 files of user schemas (150.00 Bytes), 1 binary logs (7.00 Bytes)");
        assert_eq!(r.describe(3), "nothing");
    }

    #[test]
    fn the_scope_follows_the_settings() {
        let s = DropScope::new(Path::new("/d"), "", " /ext1 ; 'ext2';", Some("./binlog.000001\n/logs/binlog.000002\n\n"));
        assert_eq!(s.known_dirs, vec![PathBuf::from("/ext1"), PathBuf::from("/d/ext2")]);
        assert_eq!(s.binary_logs, vec![PathBuf::from("/d/./binlog.000001"), PathBuf::from("/logs/binlog.000002")]);
        assert!(DropScope::new(Path::new("/d"), "/home", "", None).binary_logs.is_empty());
        assert_eq!(DropScope::new(Path::new("/d"), "/home", "", None).known_dirs, vec![PathBuf::from("/home")]);
    }

    #[test]
    fn written_sizes_take_whole_blocks() {
        assert_eq!(in_blocks([0, 1, 4096, 4097], 4096), 4096 + 4096 + 8192);
        assert_eq!(in_blocks([5], 0), 5);
    }

    fn write(path: &Path, len: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, vec![7u8; len]).unwrap();
    }

    fn blocks(path: &Path) -> u64 {
        allocated(&fs::metadata(path).unwrap())
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clone-space-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_drop_releases_user_data_only() {
        let root = scratch("drop");
        let dir = root.join("data");
        for sub in ["shop", "mysql", "sys", "performance_schema", "#innodb_redo", "#innodb_temp"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        write(&dir.join("shop/orders.ibd"), 64 * 1024);
        write(&dir.join("shop/legacy.MYD"), 64 * 1024);
        write(&dir.join("general.ibd"), 32 * 1024);
        write(&dir.join("mysql.ibd"), 128 * 1024);
        write(&dir.join("mysql/general_log.CSV"), 128 * 1024);
        write(&dir.join("mysql/mine.ibd"), 16 * 1024);
        write(&dir.join("sys/sys_config.ibd"), 128 * 1024);
        write(&dir.join("#innodb_redo/#ib_redo1"), 128 * 1024);
        write(&dir.join("#innodb_temp/temp_1.ibt"), 128 * 1024);
        write(&dir.join("ibdata1"), 128 * 1024);
        write(&dir.join("undo_001"), 128 * 1024);
        // A hard-linked file frees nothing when one of its names goes.
        write(&dir.join("shop/linked.ibd"), 64 * 1024);
        fs::hard_link(dir.join("shop/linked.ibd"), root.join("elsewhere")).unwrap();

        let scope = DropScope { datadir: dir.clone(), ..DropScope::default() };
        let released = releasable(&scope);
        let dev = fs::metadata(&dir).unwrap().dev();
        let schema_files = blocks(&dir.join("shop/orders.ibd")) + blocks(&dir.join("shop/legacy.MYD")) + blocks(&dir.join("shop"));
        assert_eq!(released.tally(dev, Kind::SchemaFile), Tally { files: 3, bytes: schema_files });
        let tablespaces = blocks(&dir.join("general.ibd")) + blocks(&dir.join("mysql/mine.ibd"));
        assert_eq!(released.tally(dev, Kind::Tablespace), Tally { files: 2, bytes: tablespaces });
        assert_eq!(released.on(dev), schema_files + tablespaces);
        assert_eq!(released.elsewhere(dev), 0);
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(releasable(&scope), Released::default());
    }

    #[test]
    fn tablespaces_under_known_directories_and_binary_logs_count() {
        let root = scratch("known");
        let dir = root.join("data");
        write(&dir.join("shop/orders.ibd"), 16 * 1024);
        write(&dir.join("binlog.000001"), 40 * 1024);
        write(&dir.join("binlog.000002"), 8 * 1024);
        write(&dir.join("binlog.index"), 100);
        // DATA DIRECTORY puts a table at <dir>/<schema>/<table>.ibd.
        write(&root.join("ext/shop/big.ibd"), 96 * 1024);
        write(&root.join("ext/shop/big.cfg"), 1024);
        write(&root.join("ext/ts1.ibd"), 48 * 1024);
        write(&root.join("ext/notes.txt"), 48 * 1024);
        // Another instance's data directory under a known directory.
        write(&root.join("ext/other/mysql.ibd"), 48 * 1024);
        write(&root.join("ext/other/shop/t.ibd"), 48 * 1024);

        let scope = DropScope::new(&dir, "", root.join("ext").to_str().unwrap(), Some("./binlog.000001\n./binlog.000002\n"));
        let released = releasable(&scope);
        let dev = fs::metadata(&dir).unwrap().dev();
        let ext = blocks(&root.join("ext/shop/big.ibd")) + blocks(&root.join("ext/shop/big.cfg")) + blocks(&root.join("ext/ts1.ibd"));
        assert_eq!(released.tally(dev, Kind::Tablespace), Tally { files: 3, bytes: ext });
        let logs = blocks(&dir.join("binlog.000001")) + blocks(&dir.join("binlog.000002"));
        assert_eq!(released.tally(dev, Kind::BinaryLog), Tally { files: 2, bytes: logs });
        assert_eq!(released.tally(dev, Kind::SchemaFile).files, 2);

        // The data directory listed as a known directory too: nothing twice.
        let twice = DropScope::new(&dir, dir.to_str().unwrap(), root.join("ext").to_str().unwrap(), None);
        assert_eq!(releasable(&twice).on(dev), released.on(dev) - logs);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_description_says_what_was_counted() {
        let mut r = Released::default();
        r.add(1, Kind::Tablespace, 3 << 20);
        r.add(1, Kind::BinaryLog, 1 << 20);
        r.add(2, Kind::SchemaFile, 5 << 20);
        let space = Space { needed: 10 << 20, free: 2 << 20, released: r.on(1), written_first: 1 << 20 };
        assert_eq!(
            describe(&space, Path::new("/var/lib/mysql"), 1, Some(&r)),
            "The clone will write 10.00 MiB; /var/lib/mysql has 2.00 MiB free, and the drop of this server's user data \
             releases 4.00 MiB on its file system: 1 tablespace files outside them (3.00 MiB), 1 binary logs (1.00 MiB); \
             less 1.00 MiB this plugin writes there first; 5.00 MiB released on other file systems does not count \
             (InnoDB checks this one); 5.00 MiB available in all"
        );
        let new_dir = Space { needed: 1, free: 2, released: 0, written_first: 0 };
        assert_eq!(describe(&new_dir, Path::new("/clones"), 1, None), "The clone will write 1.00 Bytes; /clones has 2.00 Bytes free");
    }

    #[test]
    fn a_new_directory_takes_its_space_from_the_nearest_existing_one() {
        let tmp = std::env::temp_dir();
        let target = tmp.join("clone-space-none/a/b");
        assert_eq!(existing_ancestor(&target), Some(tmp.as_path()));
        assert_eq!(existing_ancestor(&tmp), Some(tmp.as_path()));
    }
}
