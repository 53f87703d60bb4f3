//! The engines' apply side: begun once the donor is checked (in place in
//! the stock order, the engines drop this server's data then), ended when
//! the clone is over; and what an in-place clone sets up around the drop.

use super::link::missing;
use super::Master;
use crate::server::config;
use crate::server::errors::*;
use crate::server::services::BackupLock;
use crate::server::session::Thd;
use crate::server::storage::Mode;
use clone_core::protocol::innodb::Places;
use clone_core::staging;
use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

impl<'s> Master<'_, 's> {
    /// The start of the apply side, which in place drops our data, under
    /// the backup lock it puts in `lock` (held until the clone has left).
    pub(super) fn begin_apply(&mut self, lock: &mut Option<BackupLock<'s>>) -> Result<(), Error> {
        let thd = self.thd;
        if self.clone.drops_first() {
            *lock = Some(BackupLock::acquire(thd, self.clone.settings.ddl_timeout)?);
        }
        if let Some(dir) = self.clone.staging_dir() {
            // One left by a clone the plugin did not see end goes; the
            // status files need the `#clone` folder, which InnoDB makes
            // here only for a clone over this server's data.
            let status_folder = dir.with_file_name("#clone");
            staging::clear(dir)
                .and_then(|()| std::fs::create_dir_all(&status_folder))
                .map_err(|e| Error::with_file(message::ER_ERROR_ON_WRITE, dir.to_string_lossy(), e))?;
        }
        self.clone.team.status.next_stage(0, 1);
        for (i, &engine) in self.clone.engines.iter().enumerate() {
            let Some((db_type, bytes)) = self.clone.donor_locators.get(i) else { return Err(missing("donor locator at that index")) };
            if *db_type != engine.db_type() || bytes.is_empty() {
                self.end_apply(ER_CLONE_PROTOCOL);
                return Err(Error::protocol("Wrong Clone RPC response: locator"));
            }
            match engine.apply_begin(thd, Some(bytes), Mode::Start, self.clone.apply_dir()) {
                Ok(v) => self.clone.apply.push(v),
                Err(e) => {
                    self.end_apply(e.code());
                    return Err(e);
                }
            }
        }
        if self.clone.drops_first() {
            replace_doublewrite_files_or_log(thd);
            self.delay_after_drop()?;
        }
        Ok(())
    }

    /// Ends the apply side of the engines begun so far.
    pub(super) fn end_apply(&mut self, err: i32) {
        for handle in self.clone.apply.drain(..) {
            let _ = handle.apply_end(self.thd, err);
        }
    }

    /// clone_delay_after_data_drop: some filesystems release the space of
    /// removed files late. KILL is checked every 100 ms.
    fn delay_after_drop(&self) -> Result<(), Error> {
        let seconds = self.clone.settings.delay_after_data_drop;
        if seconds == 0 {
            return Ok(());
        }
        log::info!("Begin Delay after data drop");
        for step in 0..seconds as u64 * 10 {
            self.thd.interrupted(true)?;
            if step % 600 == 0 && step > 0 {
                log::info!("Wait time remaining is {} minutes.", (seconds as u64 * 10 - step) / 600);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        log::info!("End Delay after data drop");
        Ok(())
    }
}

/// In place, once InnoDB has begun (its rollback on failure then covers
/// them): this server's doublewrite files are replaced with zeroes at the
/// restart (see [`clone_core::doublewrite`]). A failure here does not fail
/// a clone whose data is already dropped; the error log says what remains.
fn replace_doublewrite_files_or_log(thd: Thd) {
    match super::swap::replace_doublewrite_files(thd) {
        Ok(files) => {
            let names: Vec<_> = files.iter().map(|f| f.display().to_string()).collect();
            log::info!("Doublewrite files to replace at the restart: {}", names.join(", "));
        }
        Err(e) => log::error!(
            "Cannot set the doublewrite files up for replacement ({e}): the restart keeps them, and a crash before InnoDB overwrites them may damage the clone"
        ),
    }
}

/// Where a donor's file names may put files: see [`Places`]. A staged
/// clone writes into its staging directory only: a file named elsewhere
/// would land among this server's own.
pub(super) fn clone_places(thd: Thd, data_dir: Option<&CStr>, staged: bool) -> Places {
    let keys = ["datadir", "innodb_directories", "innodb_data_home_dir", "innodb_undo_directory"];
    let values = config::variables(thd, &keys).unwrap_or_default();
    let value = |i: usize| values.get(i).map(String::as_str).unwrap_or_default();
    let target = data_dir.map(|d| Path::new(OsStr::from_bytes(d.to_bytes())));
    let directories = if staged { "" } else { value(1) };
    Places::new(Path::new(value(0)), target, directories, &[value(0), value(2), value(3)], |p| std::fs::canonicalize(p).ok())
}
