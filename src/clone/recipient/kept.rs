//! What this server holds of a clone, reused (see `clone_core::reuse`):
//! the copy a failed attempt kept and, staged in place, this server's own
//! InnoDB files, digested for the donor's manifest, read back block by
//! block when the donor says this server holds one; and a failed attempt's
//! copy kept, or a finished clone's discarded.
//!
//! The directory a clone writes into (a DATA DIRECTORY, a staged clone's
//! staging directory) gets the marker as soon as InnoDB has made it, so
//! that a copy cut short by a crash of this server is found at the next
//! start (the plugin's init, `staging::after_start`) as one cut short by an
//! error is found when the statement fails (`keep`): either way it is moved
//! aside, to `<parent>/.<name>.clone_partial` (where the server's check
//! that a DATA DIRECTORY does not exist does not see it) or
//! `.clone_staging.clone_partial`.

use super::link::{donor_error, send};
use super::Master;
use crate::server::clone_protocol::Connection;
use crate::server::errors::*;
use clone_core::gtid::GtidSet;
use clone_core::protocol::extension::Caps;
use clone_core::protocol::{Command, Response};
use clone_core::reuse::{self, Digest, FileDigests, KeptMarker, Manifest};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

impl Master<'_, '_> {
    /// Where this clone writes, if it can be kept and resumed: a DATA
    /// DIRECTORY or a staged clone's staging directory, with a donor of
    /// ours that granted reuse (and its server_uuid).
    fn resumable_target(&self) -> Option<(&Path, &str)> {
        let target = self.clone.apply_dir()?;
        let uuid = self.clone.donor_uuid.as_deref()?;
        let granted = self.clone.version.granted().contains(Caps::REUSE);
        (granted && !self.clone.dry_run).then(|| (super::dir_path(target), uuid))
    }

    /// After INIT: gathers what this server holds of the clone (once) and
    /// sends its manifest to the donor: the copy an earlier attempt kept,
    /// and, staged in place, this server's own InnoDB files when it shares
    /// transactions with the donor (a replica of it, or an earlier clone).
    pub(super) fn offer_kept_copy(&mut self, main: &mut Connection) -> Result<(), Error> {
        if self.clone.kept.is_none() {
            let Some((target, uuid)) = self.resumable_target() else { return Ok(()) };
            let kept = reuse::kept_dir_for(target).filter(|dir| is_from(dir, uuid));
            let live = self.clone.staging.is_some().then(|| super::swap::data_directory(self.thd)).filter(|_| self.shares_transactions());
            self.clone.kept = Kept::gather(kept, live);
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

    /// Whether this server has transactions of the donor's: then its data
    /// is likely to hold blocks alike (cold tables of a replica, or of an
    /// earlier clone), worth digesting.
    fn shares_transactions(&self) -> bool {
        let own = crate::server::config::variable(self.thd, "gtid_executed").and_then(|g| GtidSet::parse(&g));
        let donor = self.clone.donor_gtids.as_deref().and_then(GtidSet::parse);
        match (own, donor) {
            (Some(own), Some(donor)) => own.minus(&donor).count() < own.count(),
            _ => false,
        }
    }

    /// Once InnoDB has made the directory it clones into: marks it as a
    /// copy from this donor, to be kept if the clone fails (even by a crash
    /// here).
    pub(super) fn mark_resumable(&self) {
        let Some((target, uuid)) = self.resumable_target() else { return };
        let source = format!("{}:{}", self.clone.address.host.to_string_lossy(), self.clone.address.port);
        let clone_target = self.clone.data_dir.map_or_else(|| "this server's data directory".to_owned(), |d| d.to_string_lossy().into_owned());
        mark(target, &KeptMarker { donor_uuid: uuid.to_owned(), source, target: clone_target });
    }
}

/// Whether `dir` is a kept copy from the donor `uuid` (a note in the error
/// log when it is another donor's).
fn is_from(dir: &Path, uuid: &str) -> bool {
    let Some(marker) = read_marker(dir) else { return false };
    if marker.donor_uuid != uuid {
        log::warn!(
            "The partial clone kept in {} is from another donor ({}, server_uuid {}): not used, and removed when this clone succeeds",
            dir.display(),
            marker.source,
            marker.donor_uuid
        );
    }
    marker.donor_uuid == uuid
}

/// What this server holds of a clone: the places its blocks are read from
/// and their digests.
pub(super) struct Kept {
    /// The directories files are read from, by the index in `from`.
    sources: Vec<PathBuf>,
    /// Each file's source.
    from: HashMap<Vec<u8>, usize>,
    manifest: Manifest,
    /// The kept copy of an earlier attempt, among the sources.
    kept: Option<PathBuf>,
}

/// A block the kept copy no longer has as it was digested.
pub(super) struct Changed;

impl Kept {
    /// The kept copy `kept` of an earlier attempt, and the data directory
    /// `live` whose InnoDB files are not in it, digested; None if there is
    /// nothing to digest.
    pub(super) fn gather(kept: Option<PathBuf>, live: Option<PathBuf>) -> Option<Kept> {
        let started = std::time::Instant::now();
        let mut files = Vec::new();
        let mut sources = Vec::new();
        for (dir, is_live) in kept.iter().map(|d| (d, false)).chain(live.iter().map(|d| (d, true))) {
            let mut found = Vec::new();
            if let Err(e) = list_files(dir, dir, is_live, &mut found) {
                log::error!("Cannot read {} for a resume: {e}; not reused", dir.display());
                continue;
            }
            files.extend(found.into_iter().map(|(name, len)| (sources.len(), name, len)));
            sources.push(dir.clone());
        }
        let (manifest, from) = digest_files(&sources, &files);
        if manifest.is_empty() {
            return None;
        }
        let places: Vec<String> = sources.iter().map(|d| d.display().to_string()).collect();
        log::info!(
            "Reusing what this server holds of the clone ({}): {} MiB in {} files digested in {:.1} s",
            places.join(", "),
            manifest.bytes() >> 20,
            manifest.file_count(),
            started.elapsed().as_secs_f64()
        );
        Some(Kept { sources, from, manifest, kept })
    }

    /// The kept copy of an earlier attempt, if it is one of the sources.
    pub(super) fn kept_copy(&self) -> Option<&Path> {
        self.kept.as_deref()
    }

    /// Fills `out` with the block at `offset` of the file `name` (as the
    /// donor's descriptor named it) from where it was digested, if it still
    /// has the digest the donor found.
    pub(super) fn read(&self, name: &[u8], offset: u64, out: &mut [u8], digest: &Digest) -> Result<(), Changed> {
        let relative = reuse::relative_name(name).ok_or(Changed)?;
        let dir = self.from.get(relative).and_then(|&i| self.sources.get(i)).ok_or(Changed)?;
        let file = fs::File::open(dir.join(std::ffi::OsStr::from_bytes(relative))).map_err(|_| Changed)?;
        file.read_exact_at(out, offset).map_err(|_| Changed)?;
        if self.manifest.verify(relative, offset, out, digest) {
            Ok(())
        } else {
            Err(Changed)
        }
    }
}

fn read_marker(dir: &Path) -> Option<KeptMarker> {
    KeptMarker::parse(&fs::read_to_string(dir.join(reuse::MARKER)).ok()?)
}

/// The digests of `files` (source, relative name, length) and each file's
/// source; the first source of a name wins. Files are digested on as many
/// threads as the machine has cores (at most 4): SHA-256 runs at about
/// 1.4 GB/s per core here.
fn digest_files(sources: &[PathBuf], files: &[(usize, PathBuf, u64)]) -> (Manifest, HashMap<Vec<u8>, usize>) {
    let total = files.iter().map(|(_, _, len)| len).sum();
    let mut manifest = Manifest::new(reuse::unit_pow2_for(total));
    let unit = manifest.unit();
    let mut seen = HashSet::new();
    let chosen: Vec<&(usize, PathBuf, u64)> = files.iter().filter(|(_, name, _)| seen.insert(name.as_os_str().as_bytes())).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let digested: Vec<(usize, Option<FileDigests>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    let mut buf = vec![0u8; unit as usize];
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((source, relative, len)) = chosen.get(i) else { return done };
                        done.push((i, digest_file(&sources[*source].join(relative), *len, &mut buf)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    let mut by_index: Vec<Option<FileDigests>> = (0..chosen.len()).map(|_| None).collect();
    for (i, d) in digested {
        by_index[i] = d;
    }
    let mut from = HashMap::new();
    for ((source, relative, _), digests) in chosen.iter().zip(by_index) {
        // A file that could not be read is sent in full.
        let Some(digests) = digests else { continue };
        let name = relative.as_os_str().as_bytes();
        if !manifest.add(name, digests) {
            // Beyond what a donor accepts: the rest goes in full.
            break;
        }
        from.insert(name.to_vec(), *source);
    }
    (manifest, from)
}

/// The digests of the first `len` bytes of `path`, a unit (`buf`'s
/// length) at a time; None (and a note in the error log) if it cannot be
/// read: a file of this server's own may go or shrink meanwhile.
fn digest_file(path: &Path, len: u64, buf: &mut [u8]) -> Option<FileDigests> {
    let digested = (|| -> io::Result<FileDigests> {
        let mut file = fs::File::open(path)?;
        let unit = buf.len() as u64;
        let mut digests = FileDigests { len, units: Vec::with_capacity(len.div_ceil(unit) as usize) };
        let mut left = len;
        while left > 0 {
            let n = left.min(unit) as usize;
            file.read_exact(&mut buf[..n])?;
            digests.units.push(reuse::unit_digest(&buf[..n]));
            left -= n as u64;
        }
        Ok(digests)
    })();
    digested.map_err(|e| log::info!("Not reused, sent in full: {} ({e})", path.display())).ok()
}

/// The regular files under `dir` that may be reused, relative to `root`:
/// of a kept copy, all of them; of this server's live data directory, its
/// InnoDB data files only (never its keys, logs or configuration) outside
/// hidden directories (the staging and any kept copy).
fn list_files(root: &Path, dir: &Path, live: bool, out: &mut Vec<(PathBuf, u64)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else { continue };
        let name = entry.file_name();
        if !reuse::is_reusable(relative) || (live && name.as_bytes().starts_with(b".")) {
            continue;
        }
        // Not followed: a kept copy holds what InnoDB wrote.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(root, &path, live, out)?;
        } else if kind.is_file() && (!live || reuse::is_innodb_data_file(relative)) {
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
            log::info!(
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
