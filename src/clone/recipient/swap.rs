//! The staged in-place clone (clone_core::staging): the choice made after
//! the look, and the swap set up once the copy is complete. The server
//! restarts on it when the statement returns, as after a stock in-place
//! clone; until the commit, this server keeps all its data.

use super::Master;
use crate::server::config;
use crate::server::errors::*;
use crate::server::services::BackupLock;
use crate::server::session::Thd;
use clone_core::doublewrite;
use clone_core::gtid::GtidSet;
use clone_core::staging::{self, Choice, Mode, Retiring};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

impl<'s> Master<'_, 's> {
    /// In place, after the look: staged or the stock order, by
    /// clone_stage_in_place and the room for both copies (`needed` is the
    /// donor's estimate). Says which, and why, in the error log, and in
    /// SHOW WARNINGS in a dry run or when AUTO falls back.
    pub(super) fn choose_staging(&mut self, needed: u64) -> Result<(), Error> {
        let thd = self.thd;
        let datadir = data_directory(thd);
        let staging = datadir.join(staging::STAGING_DIR);
        let free = crate::server::files::free_space(&datadir).map_err(|e| Error::with_file(message::ER_CANT_GET_STAT, datadir.to_string_lossy(), e))?;
        let needed = needed.saturating_add(doublewrite_bytes(thd));
        let choice = staging::choose(config::stage_in_place(), free, needed, &misplaced_settings(thd, &datadir));
        let text = match &choice {
            Choice::Staged => format!(
                "Staged in-place clone: the clone goes to {} while this server keeps its data and serves; the restart swaps it in (writes made here meanwhile are discarded, as by the stock drop)",
                staging.display()
            ),
            Choice::DropFirst(why) => format!("In-place clone in the stock order, this server's data dropped first: {why}"),
            Choice::Refused(why) => format!("clone_stage_in_place is ALWAYS and the clone cannot be staged: {why}"),
        };
        log::info!("{text}");
        // SHOW WARNINGS says so in a dry run, and when AUTO falls back to
        // the stock order; a staged clone's success looks like stock's.
        if self.clone.dry_run || (matches!(choice, Choice::DropFirst(_)) && config::stage_in_place() == Mode::Auto) {
            self.clone.announce(&text);
        }
        match choice {
            Choice::Staged => {
                let path = CString::new(staging.as_os_str().as_bytes())
                    .map_err(|_| Error::with_str(message::ER_CLONE_SYS_CONFIG, "the data directory's path holds a NUL"))?;
                self.clone.stage(thd, path);
                Ok(())
            }
            Choice::DropFirst(_) => Ok(()),
            Choice::Refused(_) => Err(Error::with_str(message::ER_CLONE_SYS_CONFIG, text)),
        }
    }

    /// In place: this server's transactions that the donor does not have,
    /// which any in-place clone discards (from the donor's gtid_executed,
    /// which only our donor sends). A note in a dry run; in a real clone a
    /// note in the error log.
    pub(super) fn tell_discarded(&self) {
        let Some(donor) = self.clone.donor_gtids.as_deref() else {
            self.tell("The donor does not tell its GTIDs (the stock plugin): this server's transactions that the clone discards are not listed");
            return;
        };
        let own = config::variable(self.thd, "gtid_executed").unwrap_or_default();
        let text = match (GtidSet::parse(&own), GtidSet::parse(donor)) {
            (Some(own), Some(donor)) => {
                let lost = own.minus(&donor);
                if lost.is_empty() {
                    "Every transaction of this server is on the donor too: the clone discards none".to_owned()
                } else {
                    let text = format!("This server has {} transactions the donor does not have, which the clone discards: {lost}", lost.count());
                    text
                }
            }
            _ => "This server's transactions that the clone discards are not listed: a GTID set could not be read".to_owned(),
        };
        self.tell(&shortened(&text, 500));
    }

    /// A dry run's note (and its error log line); a real clone's line in
    /// the error log only.
    fn tell(&self, text: &str) {
        if self.clone.dry_run {
            self.clone.tell(text);
        } else {
            log::info!("{text}");
        }
    }

    /// The copy is complete in the staging directory: the swap is set up
    /// and committed under the backup lock, which is returned (to be kept
    /// until the restart). On failure nothing of this server has changed.
    pub(super) fn swap_in(&self) -> Result<BackupLock<'s>, Error> {
        let thd = self.thd;
        let lock = BackupLock::acquire(thd, self.clone.settings.ddl_timeout)?;
        let datadir = data_directory(thd);
        let staging = datadir.join(staging::STAGING_DIR);
        let retiring = retiring(thd, &datadir);
        let failed = |what: &str, e: std::io::Error| {
            log::error!("Staged in-place clone: {what} failed ({e}); this server keeps its data");
            Error::with_file(message::ER_ERROR_ON_WRITE, format!("{} ({what})", staging.display()), e)
        };
        let plan = staging::plan(&datadir, &staging, &retiring).map_err(|e| failed("the plan of the swap", e))?;
        log::info!(
            "Staged in-place clone: {} files replace this server's, {} are new, {} of its files are retired at the restart",
            plan.replaced.len(),
            plan.added.len(),
            plan.retired.len()
        );
        let index = retiring.binlog_index.as_deref();
        let prepared =
            staging::prepare(&datadir, &staging, &plan, index, || replace_doublewrite_files(thd).map(drop)).map_err(|e| failed("setting the swap up", e))?;
        if let Err(e) = prepared.commit() {
            prepared.undo();
            return Err(failed("the commit", e));
        }
        log::info!("Staged in-place clone: committed; InnoDB swaps the files in when the server starts");
        Ok(lock)
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut (a warning's
/// text has room for 512 bytes).
fn shortened(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 3).collect();
    cut.push_str("...");
    cut
}

/// The data directory, absolute.
pub(super) fn data_directory(thd: Thd) -> PathBuf {
    let dir = config::variable(thd, "datadir").unwrap_or_else(|| ".".into());
    std::fs::canonicalize(&dir).unwrap_or_else(|_| PathBuf::from(dir))
}

/// The settings that put InnoDB files outside the data directory, where a
/// staged clone (a clone into a new directory) would not put them.
fn misplaced_settings(thd: Thd, datadir: &Path) -> Vec<String> {
    let keys = ["innodb_data_home_dir", "innodb_undo_directory", "innodb_log_group_home_dir"];
    let values = config::variables(thd, &keys).unwrap_or_default();
    let here = |value: &str| value.is_empty() || std::fs::canonicalize(datadir.join(value)).is_ok_and(|p| p == datadir);
    keys.iter().zip(values.iter()).filter(|(_, v)| !here(v)).map(|(k, _)| (*k).to_owned()).collect()
}

/// What the swap retires outside the user schemas: the binary logs, the
/// tablespaces in InnoDB's other directories; and the log folders it
/// leaves alone.
fn retiring(thd: Thd, datadir: &Path) -> Retiring {
    let keys = ["log_bin", "log_bin_index", "log_bin_basename", "relay_log_basename", "innodb_directories", "innodb_data_home_dir"];
    let values = config::variables(thd, &keys).unwrap_or_default();
    let value = |i: usize| values.get(i).map(String::as_str).unwrap_or_default();
    let binlog_index = matches!(value(0), "ON" | "1").then(|| datadir.join(value(1)));
    let log_dirs = [value(2), value(3)].iter().filter(|v| !v.is_empty()).filter_map(|v| datadir.join(v).parent().map(Path::to_path_buf)).collect();
    let known_dirs = value(4)
        .split(';')
        .chain([value(5)])
        .map(|d| d.trim().trim_matches(|c| c == '\'' || c == '"'))
        .filter(|d| !d.is_empty())
        .map(|d| datadir.join(d))
        .collect();
    Retiring { binlog_index, known_dirs, log_dirs }
}

/// This server's doublewrite files, in the directory innodb_doublewrite_dir names.
fn doublewrite_files(thd: Thd) -> std::io::Result<Vec<PathBuf>> {
    let setting = config::variable(thd, "innodb_doublewrite_dir").unwrap_or_default();
    doublewrite::files_in(&doublewrite::directory(&setting))
}

/// The bytes of the doublewrite files' zero-filled replacements.
fn doublewrite_bytes(thd: Thd) -> u64 {
    let files = doublewrite_files(thd).unwrap_or_default();
    files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// This server's doublewrite files are replaced with zeroes at the restart
/// (see [`doublewrite`]); the names replaced.
pub(super) fn replace_doublewrite_files(thd: Thd) -> std::io::Result<Vec<PathBuf>> {
    let files = doublewrite_files(thd)?;
    doublewrite::replace_with_zeroes(Path::new("."), &files)?;
    Ok(files)
}
