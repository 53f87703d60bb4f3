//! The staged in-place clone: the donor's files are cloned into a hidden
//! directory of the data directory (`.clone_staging`, which InnoDB's scan
//! skips as hidden) while this server keeps all its data and serves; only
//! when the copy is complete are they swapped in, by InnoDB's own start-up
//! (`clone_files_recovery`, clone0api.cc), the way it finishes a stock
//! in-place clone:
//!
//! - `#clone/#replace_files` lists the files the clone replaces; the new
//!   one waits beside each as `<name>.#clone` (for the redo log, the whole
//!   `#innodb_redo` directory). `#clone/#new_files` lists the files that are
//!   new here, already in place. `#clone/#old_files` lists this server's
//!   files the new instance does not have (user tablespaces and tables,
//!   binary logs): InnoDB moves them aside as `<name>.#clone_save` before its
//!   tablespace scan and deletes them when its recovery ends.
//! - `#clone/#status_error`, while it exists, makes the next start roll all
//!   of that back (the placed files removed, the old ones kept). Here it is
//!   a symbolic link to a marker file (InnoDB tests it by opening it, so a
//!   dangling link counts as absent), and the commit is one rename or
//!   unlink of that marker: with a binary log, the rename of an empty index
//!   over `binlog.index`, which the server opens before InnoDB starts, so
//!   that the new instance begins its binary log afresh in the same step.
//!
//! A crash before the commit brings the server up on its own data, with
//! the placed files gone; after it, on the clone, the old files gone. What
//! InnoDB leaves (the dangling link, emptied schema directories, the
//! staging directory) is cleared by [`after_start`] when the plugin loads.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The staging directory, in the data directory.
pub const STAGING_DIR: &str = ".clone_staging";
/// What a failed staged clone adds to its error in clone_status.
pub const DATA_KEPT: &str = "; this server's data was kept (staged in-place clone)";
/// The swap's own record in the staging directory: the marker, and the
/// directories to remove once the new instance runs.
const MANIFEST: &str = "#swap";
/// The marker when there is no binary log to commit with.
const COMMIT_MARKER: &str = "#commit";
/// The suffix of the empty binary log index waiting beside the real one.
const INDEX_SUFFIX: &str = ".clone_staged";

const CLONE_DIR: &str = "#clone";
const ERROR_LINK: &str = "#clone/#status_error";
const NEW_LIST: &str = "#clone/#new_files";
const REPLACE_LIST: &str = "#clone/#replace_files";
const OLD_LIST: &str = "#clone/#old_files";
const FIX_FILE: &str = "#clone/#status_fix";
const REPLACED_SUFFIX: &str = ".#clone";
const REDO_DIR: &str = "#innodb_redo";

/// clone_stage_in_place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stage when the data directory's file system has room for both copies.
    Auto,
    /// Always stage; refuse the clone when there is no room for it.
    Always,
    /// Never: the stock order (this server's data dropped first).
    Never,
}

impl Mode {
    /// The variable's values, in its order.
    pub const NAMES: [&'static str; 3] = ["AUTO", "ALWAYS", "NEVER"];

    pub fn from_index(index: u64) -> Mode {
        match index {
            1 => Mode::Always,
            2 => Mode::Never,
            _ => Mode::Auto,
        }
    }
}

/// How an in-place clone goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Into the staging directory, swapped in at the restart.
    Staged,
    /// The stock order, and why.
    DropFirst(String),
    /// Refused (ALWAYS without what staging needs), and why.
    Refused(String),
}

/// What a staged clone needs besides room: this server's InnoDB files where
/// a clone into a new directory puts them (the data directory), and a data
/// directory of its own kind. `misplaced` names the settings that are not.
pub fn choose(mode: Mode, free: u64, needed: u64, misplaced: &[String]) -> Choice {
    let wanted = needed.saturating_add(margin(needed));
    let why_not = if !misplaced.is_empty() {
        Some(format!("{} not in the data directory, where a staged clone puts those files", misplaced.join(", ")))
    } else if free < wanted {
        Some(format!(
            "the data directory's file system has {} free and a staged clone needs {} (the clone's {} and a margin of {}) beside this server's data",
            crate::space::format_bytes(free),
            crate::space::format_bytes(wanted),
            crate::space::format_bytes(needed),
            crate::space::format_bytes(margin(needed))
        ))
    } else {
        None
    };
    match (mode, why_not) {
        (Mode::Never, _) => Choice::DropFirst("clone_stage_in_place is NEVER".into()),
        (_, None) => Choice::Staged,
        (Mode::Auto, Some(why)) => Choice::DropFirst(why),
        (Mode::Always, Some(why)) => Choice::Refused(why),
    }
}

/// Room kept free beyond the clone's estimate: a tenth, at least 64 MiB
/// (the server keeps writing its own data meanwhile).
fn margin(needed: u64) -> u64 {
    (needed / 10).max(64 << 20)
}

/// How the staged files go in, and which of this server's files go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Staged files (relative) whose name exists here: replaced at the restart.
    pub replaced: Vec<PathBuf>,
    /// Staged files new here.
    pub added: Vec<PathBuf>,
    /// The directories made for them, parents first.
    pub made_dirs: Vec<PathBuf>,
    /// This server's files the new instance does not have.
    pub retired: Vec<PathBuf>,
    /// Directories of user schemas whose files all retire: removed once the
    /// new instance runs, if empty.
    pub emptied: Vec<PathBuf>,
    /// The staged clone asks for InnoDB's fix-up of tables at the restart.
    pub fix: bool,
}

/// Where this server keeps what the swap retires, besides the data directory.
#[derive(Debug, Default, Clone)]
pub struct Retiring {
    /// The binary log index (absolute), when log_bin is ON.
    pub binlog_index: Option<PathBuf>,
    /// innodb_directories and innodb_data_home_dir, for tablespaces created
    /// outside the data directory.
    pub known_dirs: Vec<PathBuf>,
    /// Directories under the data directory that hold logs, not schemas.
    pub log_dirs: Vec<PathBuf>,
}

/// How many binary logs the server may still open between the plan and its
/// stop: their names are retired too (a missing name is skipped).
const BINLOGS_AHEAD: u64 = 16;

/// File extensions of tables and their metadata in a schema directory.
const TABLE_FILES: [&str; 12] = ["ibd", "sdi", "MYD", "MYI", "CSV", "CSM", "ARZ", "ARM", "cfg", "cfp", "TRG", "TRN"];

/// Plans the swap of `staging` into `datadir` (absolute).
pub fn plan(datadir: &Path, staging: &Path, retiring: &Retiring) -> io::Result<Plan> {
    let mut plan = Plan { fix: staging.join(FIX_FILE).exists(), ..Plan::default() };
    let mut staged = BTreeSet::new();
    walk_staged(staging, Path::new(""), &mut staged)?;
    for rel in &staged {
        if datadir.join(rel).symlink_metadata().is_ok() {
            plan.replaced.push(rel.clone());
            continue;
        }
        for dir in rel.ancestors().skip(1).filter(|d| !d.as_os_str().is_empty()) {
            if !datadir.join(dir).exists() && !plan.made_dirs.iter().any(|d| d == dir) {
                plan.made_dirs.push(dir.to_path_buf());
            }
        }
        plan.added.push(rel.clone());
    }
    // Parents before children.
    plan.made_dirs.sort_by_key(|d| d.components().count());
    retire_in_data_directory(datadir, &staged, retiring, &mut plan)?;
    for dir in &retiring.known_dirs {
        retire_tablespaces_under(dir, datadir, 0, &mut plan.retired);
    }
    if let Some(index) = &retiring.binlog_index {
        plan.retired.extend(binary_logs(datadir, index)?);
    }
    Ok(plan)
}

/// The staged files, relative; `#innodb_redo` as one (InnoDB replaces the
/// redo directory whole), InnoDB's `#clone` folder left out.
fn walk_staged(root: &Path, rel: &Path, out: &mut BTreeSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = PathBuf::from(entry.file_name());
        let path = rel.join(&name);
        if rel.as_os_str().is_empty() && (name == Path::new(CLONE_DIR) || name == Path::new(MANIFEST) || name == Path::new(COMMIT_MARKER)) {
            continue;
        }
        if entry.file_type()?.is_dir() && path != Path::new(REDO_DIR) {
            walk_staged(root, &path, out)?;
        } else {
            out.insert(path);
        }
    }
    Ok(())
}

/// This server's files in the data directory that the stock drop deletes
/// and the clone does not bring: tables of user schemas, user tables in
/// the system schemas, general and undo tablespaces at the top. A
/// directory is a schema's when it holds table files; others (lost+found,
/// a clone made here, log folders) are left alone, as are the server's own
/// files (`#...`, hidden, keys, auto.cnf, logs).
fn retire_in_data_directory(datadir: &Path, staged: &BTreeSet<PathBuf>, retiring: &Retiring, plan: &mut Plan) -> io::Result<()> {
    for entry in fs::read_dir(datadir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(text) = name.to_str() else { continue };
        if text.starts_with('#') || text.starts_with('.') {
            continue;
        }
        let rel = PathBuf::from(&name);
        let meta = entry.path().symlink_metadata()?;
        if meta.is_dir() {
            let dir = entry.path();
            if text == "performance_schema" || retiring.log_dirs.iter().any(|d| same(d, &dir)) || crate::space::is_data_directory(&dir) {
                continue;
            }
            let system = text == "mysql" || text == "sys";
            let mut all_retired = true;
            let mut any = false;
            for file in fs::read_dir(&dir)? {
                let file = file?;
                let file_rel = rel.join(file.file_name());
                let fname = file.file_name();
                let fname = fname.to_str().unwrap_or_default();
                let table_file =
                    if system { fname.ends_with(".ibd") || fname.ends_with(".cfg") || fname.ends_with(".cfp") } else { has_table_extension(fname) };
                if table_file && !staged.contains(&file_rel) && !file.file_type()?.is_dir() {
                    plan.retired.push(file_rel);
                    any = true;
                } else {
                    all_retired = false;
                }
            }
            if any && all_retired && !system && !staged.iter().any(|s| s.starts_with(&rel)) {
                plan.emptied.push(rel);
            }
        } else if !staged.contains(&rel) && (text.ends_with(".ibd") || text.ends_with(".ibu") || is_undo_name(text)) {
            plan.retired.push(rel);
        }
    }
    Ok(())
}

fn has_table_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && TABLE_FILES.contains(&ext))
}

/// `undo_001`, and its truncation log `undo_001_trunc.log`.
fn is_undo_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("undo_") else { return false };
    let digits = rest.strip_suffix("_trunc.log").unwrap_or(rest);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn same(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Tablespace files under a directory InnoDB scans other than the data
/// directory, except in another instance's data directory.
fn retire_tablespaces_under(dir: &Path, datadir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 8 || same(dir, datadir) || (depth > 0 && crate::space::is_data_directory(dir)) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        if meta.is_dir() {
            retire_tablespaces_under(&entry.path(), datadir, depth + 1, out);
        } else if entry.file_name().to_str().is_some_and(|n| n.ends_with(".ibd")) {
            out.push(entry.path());
        }
    }
}

/// The binary logs the index names, and the next names the server would
/// give new ones.
fn binary_logs(datadir: &Path, index: &Path) -> io::Result<Vec<PathBuf>> {
    let text = match fs::read_to_string(index) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut logs: Vec<PathBuf> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| datadir.join(l)).collect();
    if let Some(last) = logs.last().cloned() {
        if let Some((stem, number)) = last.to_str().and_then(|s| s.rsplit_once('.')) {
            if let Ok(n) = number.parse::<u64>() {
                let width = number.len();
                logs.extend((1..=BINLOGS_AHEAD).map(|i| PathBuf::from(format!("{stem}.{:0width$}", n + i))));
            }
        }
    }
    Ok(logs)
}

/// A swap set up and not yet committed.
#[derive(Debug)]
pub struct Prepared {
    datadir: PathBuf,
    marker: PathBuf,
    index: Option<PathBuf>,
}

/// Sets the swap up: the lists, the rollback link, the staged files in
/// place. From the link on, a crash rolls it all back at the next start;
/// an error here undoes it at once (the server keeps running on its data).
/// `before_files` runs once the lists are written and before any file
/// moves (the doublewrite replacements join the list there).
pub fn prepare(
    datadir: &Path,
    staging: &Path,
    plan: &Plan,
    binlog_index: Option<&Path>,
    before_files: impl FnOnce() -> io::Result<()>,
) -> io::Result<Prepared> {
    let marker = match binlog_index {
        Some(index) => PathBuf::from(format!("{}{INDEX_SUFFIX}", index.display())),
        None => staging.join(COMMIT_MARKER),
    };
    let prepared = Prepared { datadir: datadir.to_path_buf(), marker, index: binlog_index.map(Path::to_path_buf) };
    let result = set_up(&prepared, staging, plan, before_files);
    if let Err(e) = result {
        prepared.undo();
        return Err(e);
    }
    Ok(prepared)
}

fn set_up(prepared: &Prepared, staging: &Path, plan: &Plan, before_files: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    let datadir = &prepared.datadir;
    let clone_dir = datadir.join(CLONE_DIR);
    fs::create_dir_all(&clone_dir)?;
    for list in [NEW_LIST, REPLACE_LIST, OLD_LIST] {
        remove_if_present(&datadir.join(list))?;
    }
    remove_if_present(&datadir.join(ERROR_LINK))?;
    File::create(&prepared.marker)?.sync_all()?;
    sync_parent(&prepared.marker)?;
    let mut manifest = format!("marker {}\n", prepared.marker.display());
    for dir in &plan.emptied {
        manifest += &format!("emptied {}\n", dir.display());
    }
    write_synced(&staging.join(MANIFEST), &manifest)?;
    symlink(&prepared.marker, datadir.join(ERROR_LINK))?;
    sync_dir(&clone_dir)?;
    let new: Vec<PathBuf> = plan.made_dirs.iter().chain(&plan.added).cloned().collect();
    write_synced(&datadir.join(NEW_LIST), &listing(&new))?;
    write_synced(&datadir.join(REPLACE_LIST), &listing(&plan.replaced))?;
    write_synced(&datadir.join(OLD_LIST), &listing(&plan.retired))?;
    sync_dir(&clone_dir)?;
    before_files()?;
    let mut touched = BTreeSet::new();
    for dir in &plan.made_dirs {
        let made = datadir.join(dir);
        fs::create_dir(&made)?;
        touched.insert(made.parent().unwrap_or(datadir).to_path_buf());
    }
    for rel in &plan.added {
        let to = datadir.join(rel);
        fs::rename(staging.join(rel), &to)?;
        touched.insert(to.parent().unwrap_or(datadir).to_path_buf());
    }
    for rel in &plan.replaced {
        let to = PathBuf::from(format!("{}{REPLACED_SUFFIX}", datadir.join(rel).display()));
        fs::rename(staging.join(rel), &to)?;
        touched.insert(to.parent().unwrap_or(datadir).to_path_buf());
    }
    if plan.fix {
        File::create(datadir.join(FIX_FILE))?.sync_all()?;
    }
    for dir in touched.iter().chain([&clone_dir]) {
        sync_dir(dir)?;
    }
    Ok(())
}

impl Prepared {
    /// The commit: from here the next start is the clone's. An error means
    /// it did not happen (then [`Prepared::undo`]). The directory's sync
    /// after it is best effort: without it a crash may lose the rename, and
    /// the start then rolls back, which is as consistent.
    pub fn commit(&self) -> io::Result<()> {
        match &self.index {
            Some(index) => fs::rename(&self.marker, index)?,
            None => fs::remove_file(&self.marker)?,
        }
        let _ = sync_parent(&self.marker);
        Ok(())
    }

    /// Undoes a swap that will not be committed, as InnoDB's rollback
    /// would at the next start: the placed files go, this server's stay.
    pub fn undo(self) {
        let datadir = &self.datadir;
        for entry in read_list(&datadir.join(REPLACE_LIST)) {
            let _ = fs::remove_file(format!("{}{REPLACED_SUFFIX}", datadir.join(&entry).display()))
                .or_else(|_| fs::remove_dir_all(format!("{}{REPLACED_SUFFIX}", datadir.join(&entry).display())));
        }
        for entry in read_list(&datadir.join(NEW_LIST)).iter().rev() {
            let path = datadir.join(entry);
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
        for file in [NEW_LIST, REPLACE_LIST, OLD_LIST, FIX_FILE, ERROR_LINK] {
            let _ = fs::remove_file(datadir.join(file));
        }
        let _ = fs::remove_file(&self.marker);
    }
}

/// What the plugin found of a staged clone when it loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The swap was committed: this server runs the clone.
    Swapped,
    /// The clone or its swap was cut short before the commit: this server
    /// runs on its own data.
    Kept,
    /// As `Kept`, and the staging directory, marked as a copy from a donor
    /// of ours, is kept there for a resume (`crate::reuse`).
    KeptForResume(PathBuf),
}

/// At plugin start (InnoDB's recovery is over): whether a staged clone was
/// under way, and the clearing of what it left. None without one.
pub fn after_start(datadir: &Path) -> io::Result<Option<Found>> {
    let link = datadir.join(ERROR_LINK);
    if link.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) && !link.exists() {
        fs::remove_file(&link)?;
    }
    let staging = datadir.join(STAGING_DIR);
    if !staging.exists() {
        return Ok(None);
    }
    let manifest = fs::read_to_string(staging.join(MANIFEST)).unwrap_or_default();
    let mut found = Found::Kept;
    let mut emptied = Vec::new();
    for line in manifest.lines() {
        if let Some(marker) = line.strip_prefix("marker ") {
            let marker = Path::new(marker);
            if marker.exists() {
                // Not committed: InnoDB has rolled the swap back.
                if marker.extension().is_some_and(|e| format!(".{}", e.to_string_lossy()) == INDEX_SUFFIX) {
                    fs::remove_file(marker)?;
                }
            } else {
                found = Found::Swapped;
            }
        } else if let Some(dir) = line.strip_prefix("emptied ") {
            emptied.push(datadir.join(dir));
        }
    }
    if found == Found::Swapped {
        for dir in emptied {
            // Not empty when InnoDB rolled back after the commit.
            let _ = fs::remove_dir(dir);
        }
    } else if let Some(kept) = crate::reuse::keep(&staging)? {
        sync_dir(datadir)?;
        return Ok(Some(Found::KeptForResume(kept)));
    }
    fs::remove_dir_all(&staging)?;
    sync_dir(datadir)?;
    Ok(Some(found))
}

/// Removes a staging directory left by an earlier clone.
pub fn clear(staging: &Path) -> io::Result<()> {
    match fs::remove_dir_all(staging) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn listing(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| if p.is_absolute() { format!("{}\n", p.display()) } else { format!("./{}\n", p.display()) }).collect()
}

fn read_list(path: &Path) -> Vec<PathBuf> {
    fs::read_to_string(path).map(|t| t.lines().filter(|l| !l.is_empty()).map(PathBuf::from).collect()).unwrap_or_default()
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn write_synced(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    sync_dir(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dirs {
        root: PathBuf,
        datadir: PathBuf,
        staging: PathBuf,
    }

    impl Dirs {
        /// A server's data directory with an old schema, binary logs, and a
        /// staged clone with a new schema.
        fn new(name: &str) -> Dirs {
            let root = std::env::temp_dir().join(format!("clone-rs-staging-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            let datadir = root.join("data");
            let staging = datadir.join(STAGING_DIR);
            for (dir, files) in [
                (&datadir, &["ibdata1", "mysql.ibd", "undo_001", "undo_003.ibu", "ts1.ibd", "auto.cnf", "binlog.000001", "binlog.000002", "binlog.index"][..]),
                (&datadir.join("#innodb_redo"), &["#ib_redo7"][..]),
                (&datadir.join("old"), &["t.ibd", "m.MYD", "m.MYI", "m_1.sdi"][..]),
                (&datadir.join("both"), &["kept.ibd", "gone.ibd"][..]),
                (&datadir.join("sys"), &["sys_config.ibd", "user.ibd"][..]),
                (&datadir.join("lost+found"), &[][..]),
                (&staging, &["ibdata1", "mysql.ibd", "undo_001"][..]),
                (&staging.join("#innodb_redo"), &["#ib_redo9"][..]),
                (&staging.join("#clone"), &["#status_fix", "#replace_files"][..]),
                (&staging.join("both"), &["kept.ibd"][..]),
                (&staging.join("sys"), &["sys_config.ibd"][..]),
                (&staging.join("new").join("deep"), &["t.ibd"][..]),
            ] {
                fs::create_dir_all(dir).unwrap();
                for file in files {
                    fs::write(dir.join(file), format!("old {}", dir.join(file).display())).unwrap();
                }
            }
            fs::write(datadir.join("binlog.index"), "./binlog.000001\n./binlog.000002\n").unwrap();
            for file in ["ibdata1", "mysql.ibd", "undo_001", "#innodb_redo/#ib_redo9", "both/kept.ibd", "sys/sys_config.ibd", "new/deep/t.ibd"] {
                fs::write(staging.join(file), format!("new {file}")).unwrap();
            }
            Dirs { root, datadir, staging }
        }

        fn retiring(&self) -> Retiring {
            Retiring { binlog_index: Some(self.datadir.join("binlog.index")), ..Retiring::default() }
        }

        fn read(&self, file: &str) -> Option<String> {
            fs::read_to_string(self.datadir.join(file)).ok()
        }
    }

    impl Drop for Dirs {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn names(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn staging_needs_room_for_both_copies_and_the_default_layout() {
        let gib = 1u64 << 30;
        assert_eq!(choose(Mode::Auto, 3 * gib, gib, &[]), Choice::Staged);
        assert_eq!(choose(Mode::Always, 3 * gib, gib, &[]), Choice::Staged);
        assert!(matches!(choose(Mode::Never, 3 * gib, gib, &[]), Choice::DropFirst(why) if why.contains("NEVER")));
        // The margin: a tenth of the clone.
        assert!(matches!(choose(Mode::Auto, gib + gib / 20, gib, &[]), Choice::DropFirst(why) if why.contains("free")));
        assert!(matches!(choose(Mode::Always, gib, gib, &[]), Choice::Refused(_)));
        // At least 64 MiB.
        assert!(matches!(choose(Mode::Auto, (1 << 20) + (60 << 20), 1 << 20, &[]), Choice::DropFirst(_)));
        let misplaced = ["innodb_undo_directory".to_owned()];
        assert!(matches!(choose(Mode::Auto, 3 * gib, gib, &misplaced), Choice::DropFirst(why) if why.contains("innodb_undo_directory")));
        assert!(matches!(choose(Mode::Always, 3 * gib, gib, &misplaced), Choice::Refused(_)));
        assert_eq!(Mode::from_index(0), Mode::Auto);
        assert_eq!(Mode::from_index(1), Mode::Always);
        assert_eq!(Mode::from_index(2), Mode::Never);
    }

    #[test]
    fn plan_replaces_adds_and_retires() {
        let d = Dirs::new("plan");
        let plan = super::plan(&d.datadir, &d.staging, &d.retiring()).unwrap();
        assert_eq!(names(&plan.replaced), ["#innodb_redo", "both/kept.ibd", "ibdata1", "mysql.ibd", "sys/sys_config.ibd", "undo_001"]);
        assert_eq!(names(&plan.added), ["new/deep/t.ibd"]);
        assert_eq!(names(&plan.made_dirs), ["new", "new/deep"]);
        let mut retired = names(&plan.retired);
        let logs: Vec<String> = retired.iter().filter(|r| r.contains("binlog")).cloned().collect();
        retired.retain(|r| !r.contains("binlog"));
        retired.sort();
        assert_eq!(retired, ["both/gone.ibd", "old/m.MYD", "old/m.MYI", "old/m_1.sdi", "old/t.ibd", "sys/user.ibd", "ts1.ibd", "undo_003.ibu"]);
        let data = d.datadir.display();
        assert_eq!(logs[..3], [format!("{data}/./binlog.000001"), format!("{data}/./binlog.000002"), format!("{data}/./binlog.000003")]);
        assert_eq!(logs.len(), 2 + BINLOGS_AHEAD as usize);
        assert_eq!(names(&plan.emptied), ["old"]);
        assert!(plan.fix);
    }

    #[test]
    fn a_committed_swap_leaves_what_innodb_needs() {
        let d = Dirs::new("commit");
        let plan = super::plan(&d.datadir, &d.staging, &d.retiring()).unwrap();
        let index = d.datadir.join("binlog.index");
        let mut ran = false;
        let prepared = prepare(&d.datadir, &d.staging, &plan, Some(&index), || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran);
        // Before the commit the link resolves: a start would roll back.
        assert!(d.datadir.join(ERROR_LINK).exists());
        assert_eq!(d.read("ibdata1.#clone").as_deref(), Some("new ibdata1"));
        assert!(d.read("ibdata1").unwrap().starts_with("old"));
        assert_eq!(d.read("#innodb_redo.#clone/#ib_redo9").as_deref(), Some("new #innodb_redo/#ib_redo9"));
        assert_eq!(d.read("new/deep/t.ibd").as_deref(), Some("new new/deep/t.ibd"));
        assert_eq!(d.read(NEW_LIST).as_deref(), Some("./new\n./new/deep\n./new/deep/t.ibd\n"));
        assert!(d.read(REPLACE_LIST).unwrap().starts_with("./#innodb_redo\n./both/kept.ibd\n"));
        assert!(d.read(OLD_LIST).unwrap().contains("./old/t.ibd\n"));
        assert!(d.datadir.join(FIX_FILE).exists());
        prepared.commit().unwrap();
        // After it the link dangles (InnoDB rolls forward) and the binary
        // log index is the new, empty one.
        assert!(!d.datadir.join(ERROR_LINK).exists());
        assert!(d.datadir.join(ERROR_LINK).symlink_metadata().is_ok());
        assert_eq!(d.read("binlog.index").as_deref(), Some(""));
        // What the plugin clears when it loads on the new instance.
        fs::remove_dir_all(d.datadir.join("old")).unwrap();
        fs::create_dir(d.datadir.join("old")).unwrap();
        assert_eq!(after_start(&d.datadir).unwrap(), Some(Found::Swapped));
        assert!(d.datadir.join(ERROR_LINK).symlink_metadata().is_err());
        assert!(!d.staging.exists());
        assert!(!d.datadir.join("old").exists());
        assert_eq!(after_start(&d.datadir).unwrap(), None);
    }

    #[test]
    fn an_uncommitted_swap_is_undone_or_rolled_back() {
        let d = Dirs::new("undo");
        let plan = super::plan(&d.datadir, &d.staging, &d.retiring()).unwrap();
        let index = d.datadir.join("binlog.index");
        let prepared = prepare(&d.datadir, &d.staging, &plan, Some(&index), || Ok(())).unwrap();
        prepared.undo();
        for gone in ["ibdata1.#clone", "#innodb_redo.#clone", "new", NEW_LIST, REPLACE_LIST, OLD_LIST, ERROR_LINK, FIX_FILE, "binlog.index.clone_staged"] {
            assert!(d.datadir.join(gone).symlink_metadata().is_err(), "{gone} is left");
        }
        assert!(d.read("ibdata1").unwrap().starts_with("old"));
        assert_eq!(d.read("binlog.index").as_deref(), Some("./binlog.000001\n./binlog.000002\n"));
        // A failure while setting up undoes at once.
        let d = Dirs::new("failed");
        let plan = super::plan(&d.datadir, &d.staging, &d.retiring()).unwrap();
        let err = prepare(&d.datadir, &d.staging, &plan, None, || Err(io::Error::other("no room"))).unwrap_err();
        assert_eq!(err.to_string(), "no room");
        assert!(d.datadir.join(ERROR_LINK).symlink_metadata().is_err());
        assert!(d.datadir.join(NEW_LIST).symlink_metadata().is_err());
        // A crash before the commit: the marker is there, InnoDB rolled
        // back; the plugin reports the data kept and clears the staging.
        let d = Dirs::new("crashed");
        let plan = super::plan(&d.datadir, &d.staging, &d.retiring()).unwrap();
        let index = d.datadir.join("binlog.index");
        let _prepared = prepare(&d.datadir, &d.staging, &plan, Some(&index), || Ok(())).unwrap();
        assert_eq!(after_start(&d.datadir).unwrap(), Some(Found::Kept));
        assert!(!d.staging.exists());
        assert!(!d.datadir.join("binlog.index.clone_staged").exists());
        assert!(d.datadir.join("old").exists());
        // A crash during the copy: only the staging directory.
        let d = Dirs::new("copy");
        assert_eq!(after_start(&d.datadir).unwrap(), Some(Found::Kept));
        assert!(!d.staging.exists());
    }

    #[test]
    fn names_of_undo_and_table_files() {
        for name in ["undo_001", "undo_12", "undo_001_trunc.log"] {
            assert!(is_undo_name(name), "{name}");
        }
        for name in ["undo_", "undo_x", "undo_001.log", "myundo_001"] {
            assert!(!is_undo_name(name), "{name}");
        }
        for name in ["t.ibd", "t.MYD", "t_123.sdi", "t.CSV"] {
            assert!(has_table_extension(name), "{name}");
        }
        for name in ["README", ".ibd", "t.txt", "t.ibd.#clone_save"] {
            assert!(!has_table_extension(name), "{name}");
        }
    }
}
