//! What a failed clone leaves for the next one (see `clone_core::reuse`):
//! the kept copy, found again and digested when the same clone runs, read
//! back block by block when the donor says the recipient holds one, and
//! kept or discarded when a clone ends.
//!
//! Into a DATA DIRECTORY, the marker is written into the directory as soon
//! as InnoDB has made it, so that a copy cut short by a crash of this
//! server is found at the next start (the plugin's init) as one cut short
//! by an error is found when the statement fails (`keep`): either way it
//! is moved aside to `<parent>/.<name>.clone_partial`, where the server's
//! check that a DATA DIRECTORY does not exist does not see it.

use super::link::{donor_error, send};
use super::Master;
use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use clone_core::protocol::extension::Caps;
use clone_core::protocol::{Command, Response};
use clone_core::reuse::{self, Digest, FileDigests, KeptMarker, Manifest};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

impl Master<'_, '_> {
    /// The target of a clone that can be kept and resumed: a DATA
    /// DIRECTORY, with a donor of ours that granted reuse.
    fn resumable_target(&self) -> Option<(&Path, &str)> {
        let target = self.clone.data_dir?;
        let uuid = self.clone.donor_uuid.as_deref()?;
        let granted = self.clone.version.granted().contains(Caps::REUSE);
        (granted && !self.clone.dry_run).then(|| (Path::new(std::ffi::OsStr::from_bytes(target.to_bytes())), uuid))
    }

    /// After INIT: finds the copy an earlier attempt kept (once), and sends
    /// its manifest to the donor.
    pub(super) fn offer_kept_copy(&mut self, main: &mut Connection) -> Result<(), Error> {
        if self.clone.kept.is_none() {
            let Some((target, uuid)) = self.resumable_target() else { return Ok(()) };
            self.clone.kept = Kept::find(target, uuid);
        }
        let Some(kept) = &self.clone.kept else { return Ok(()) };
        for body in kept.manifest.encode() {
            send(main, self.thd, true, &Command::Manifest(&body))?;
            let (packet, _) = main.receive(Some(self.thd), true, 0)?;
            match Response::decode(packet) {
                Ok(Response::Complete) => {}
                Ok(Response::Error { code, message }) => return Err(donor_error(code, message)),
                _ => return Err(Error::protocol("Wrong Clone RPC response to the manifest")),
            }
        }
        Ok(())
    }

    /// Once InnoDB has made the DATA DIRECTORY: marks it as a copy from
    /// this donor, to be kept if the clone fails (even by a crash here).
    pub(super) fn mark_resumable(&self) {
        let Some((target, uuid)) = self.resumable_target() else { return };
        let source = format!("{}:{}", self.clone.address.host.to_string_lossy(), self.clone.address.port);
        mark(target, &KeptMarker { donor_uuid: uuid.to_owned(), source, target: target.display().to_string() });
    }
}

/// A kept copy being reused.
pub(super) struct Kept {
    dir: PathBuf,
    manifest: Manifest,
}

impl Kept {
    /// The kept copy of the clone into `target` from the donor `donor_uuid`,
    /// digested; None if there is none, or it is another donor's (a note
    /// in the error log says which).
    pub(super) fn find(target: &Path, donor_uuid: &str) -> Option<Kept> {
        let dir = reuse::kept_dir_for(target)?;
        let marker = read_marker(&dir)?;
        if marker.donor_uuid != donor_uuid {
            log::warn!(
                "The partial clone kept in {} is from another donor ({}, server_uuid {}): not used, and removed when this clone succeeds",
                dir.display(),
                marker.source,
                marker.donor_uuid
            );
            return None;
        }
        let started = std::time::Instant::now();
        match digest_dir(&dir) {
            Ok(manifest) => {
                log::info!(
                    "Resuming from the partial clone kept in {}: {} MiB in {} files digested in {:.1} s",
                    dir.display(),
                    manifest.bytes() >> 20,
                    manifest.file_count(),
                    started.elapsed().as_secs_f64()
                );
                Some(Kept { dir, manifest })
            }
            Err(e) => {
                log::error!("Cannot read the partial clone kept in {}: {e}; cloning it all", dir.display());
                None
            }
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fills `out` with the block at `offset` of the file `name` (as the
    /// donor's descriptor named it) from the kept copy, if it still has the
    /// digest the donor found.
    pub(super) fn read(&self, name: &[u8], offset: u64, out: &mut [u8], digest: &Digest) -> Result<(), Error> {
        let changed = || {
            Error::internal(format_args!(
                "the block of {} at offset {offset} in the kept copy {} changed since it was digested; run the clone again",
                String::from_utf8_lossy(name),
                self.dir.display()
            ))
        };
        let relative = reuse::relative_name(name).ok_or_else(changed)?;
        let file = fs::File::open(self.dir.join(std::ffi::OsStr::from_bytes(relative))).map_err(|_| changed())?;
        file.read_exact_at(out, offset).map_err(|_| changed())?;
        if self.manifest.verify(relative, offset, out, digest) {
            Ok(())
        } else {
            Err(changed())
        }
    }
}

fn read_marker(dir: &Path) -> Option<KeptMarker> {
    KeptMarker::parse(&fs::read_to_string(dir.join(reuse::MARKER)).ok()?)
}

/// The digests of every reusable file under `dir`.
fn digest_dir(dir: &Path) -> io::Result<Manifest> {
    let mut files = Vec::new();
    list_files(dir, dir, &mut files)?;
    let total = files.iter().map(|(_, len)| len).sum();
    let mut manifest = Manifest::new(reuse::unit_pow2_for(total));
    let unit = manifest.unit() as usize;
    let mut buf = vec![0u8; unit];
    for (relative, len) in files {
        let mut file = fs::File::open(dir.join(&relative))?;
        let mut digests = FileDigests { len, units: Vec::with_capacity(len.div_ceil(unit as u64) as usize) };
        let mut left = len;
        while left > 0 {
            let n = left.min(unit as u64) as usize;
            file.read_exact(&mut buf[..n])?;
            digests.units.push(reuse::unit_digest(&buf[..n]));
            left -= n as u64;
        }
        if !manifest.add(relative.as_os_str().as_bytes(), digests) {
            // Beyond what a donor accepts: the rest goes in full.
            break;
        }
    }
    Ok(manifest)
}

/// The regular files under `dir` that may be reused, relative to `root`.
fn list_files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else { continue };
        if !reuse::is_reusable(relative) {
            continue;
        }
        // Not followed: a kept copy holds what InnoDB wrote.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(root, &path, out)?;
        } else if kind.is_file() {
            out.push((relative.to_path_buf(), entry.metadata()?.len()));
        }
    }
    Ok(())
}

/// Writes the marker that ties `dir`, the clone's target, to its donor.
pub(super) fn mark(dir: &Path, marker: &KeptMarker) {
    if let Err(e) = fs::write(dir.join(reuse::MARKER), marker.encode()) {
        log::error!("Cannot mark {} for a resume: {e}; a failure will not be resumed", dir.display());
    }
}

/// After a clone into `target` that succeeded: its marker and any kept
/// copy go.
pub(super) fn discard(target: &Path) {
    match reuse::discard(target) {
        Ok(Some(kept)) => log::info!("The partial clone kept in {} is removed: the clone is complete", kept.display()),
        Ok(None) => {}
        Err(e) => log::error!("Cannot remove the partial clone kept for {}: {e}", target.display()),
    }
}

/// After a clone into `target` that failed: kept for a resume if its donor
/// is ours (see `clone_core::reuse::keep`); the note for the status row
/// and the statement.
pub(super) fn keep(target: &Path) -> Option<String> {
    match reuse::keep(target) {
        Ok(Some(kept)) => {
            log::warn!(
                "The partial clone into {} is kept in {}: the same CLONE INSTANCE statement resumes it, and removing that directory discards it",
                target.display(),
                kept.display()
            );
            Some(reuse::kept_note(&kept))
        }
        Ok(None) => None,
        Err(e) => {
            log::error!("Cannot keep the partial clone into {} for a resume: {e}", target.display());
            None
        }
    }
}
