//! A resumed clone: what the recipient already holds is not sent again.
//!
//! A clone that fails after data arrived leaves a kept copy (a partial
//! DATA DIRECTORY moved aside, see [`kept_dir_for`], or a staged clone's
//! staging directory), tied to its donor by a [`KeptMarker`]. When the
//! same clone runs again from the same donor, the recipient digests every
//! unit of every file of the kept copy and sends that [`Manifest`] to the
//! donor before the copy (only to our donor, which grants
//! [`crate::protocol::extension::Caps::REUSE`]). The donor still reads
//! every block InnoDB offers; where every unit of a block has the digest
//! the recipient sent for that place of that file, it sends a REUSED
//! message (the block's digest, no data) instead of the block. The
//! recipient reads the block from its kept copy, digests it again, and
//! hands it to InnoDB only if it still matches: InnoDB receives every block
//! of the snapshot, and each is byte for byte the donor's.
//!
//! A unit's digest is SHA-256 of its bytes, cut to 128 bits: a damaged,
//! torn or truncated block of the kept copy differs in its digest, never in
//! a page LSN alone, and is sent.

use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A unit's or a block's digest.
pub type Digest = [u8; DIGEST_LEN];
pub const DIGEST_LEN: usize = 16;

/// The smallest unit: 64 KiB, so that InnoDB's smallest blocks (64 pages of
/// 1 KiB, compressed tables) still hold whole units.
pub const MIN_UNIT_POW2: u8 = 16;
/// The largest unit: 64 MiB, InnoDB's largest block.
pub const MAX_UNIT_POW2: u8 = 26;
/// At most this many units in a manifest: 64 MiB of digests on the donor.
/// The unit grows with the kept copy to stay within it (64 KiB units up to
/// 256 GiB, 1 MiB units up to 4 TiB).
pub const MAX_UNITS: u64 = 1 << 22;
/// At most this many files in a manifest.
pub const MAX_FILES: usize = 1 << 20;
/// The longest file name a manifest carries (InnoDB's FN_REFLEN is 512).
pub const MAX_NAME: usize = 4096;
/// A manifest travels in commands of at most this many bytes.
pub const MAX_PACKET: usize = 1 << 20;

/// The digest of one unit of a file.
pub fn unit_digest(bytes: &[u8]) -> Digest {
    let full = Sha256::digest(bytes);
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&full[..DIGEST_LEN]);
    d
}

/// The digest of a block: of the digests of its units, in order.
pub fn block_digest(units: &[Digest]) -> Digest {
    let mut h = Sha256::new();
    for u in units {
        h.update(u);
    }
    let mut d = [0u8; DIGEST_LEN];
    d.copy_from_slice(&h.finalize()[..DIGEST_LEN]);
    d
}

/// The unit for a kept copy of `total` bytes: the smallest that keeps the
/// manifest within [`MAX_UNITS`].
pub fn unit_pow2_for(total: u64) -> u8 {
    let mut pow2 = MIN_UNIT_POW2;
    while pow2 < MAX_UNIT_POW2 && total.div_ceil(1 << pow2) > MAX_UNITS {
        pow2 += 1;
    }
    pow2
}

/// A file name as InnoDB's descriptors give it, as the place the manifest
/// knows it by: relative to the clone's directory, without `./`. None for
/// a name a kept copy cannot hold (absolute, or leading out of it).
pub fn relative_name(name: &[u8]) -> Option<&[u8]> {
    let mut name = name;
    while let Some(rest) = name.strip_prefix(b"./") {
        name = rest;
    }
    let escapes = name.split(|&b| b == b'/').any(|part| part == b"..");
    if name.is_empty() || name.starts_with(b"/") || escapes || name.len() > MAX_NAME {
        None
    } else {
        Some(name)
    }
}

/// One file of a kept copy: its length and the digest of each unit (the
/// last one may be short).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileDigests {
    pub len: u64,
    pub units: Vec<Digest>,
}

/// The digests of a kept copy, per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    unit_pow2: u8,
    files: HashMap<Vec<u8>, FileDigests>,
    units: u64,
}

/// Why a manifest from a recipient was refused (the donor's protocol error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub &'static str);

impl Manifest {
    pub fn new(unit_pow2: u8) -> Manifest {
        Manifest { unit_pow2: unit_pow2.clamp(MIN_UNIT_POW2, MAX_UNIT_POW2), files: HashMap::new(), units: 0 }
    }

    pub fn unit(&self) -> u64 {
        1 << self.unit_pow2
    }

    pub fn is_empty(&self) -> bool {
        self.units == 0
    }

    /// The bytes the manifest covers.
    pub fn bytes(&self) -> u64 {
        self.files.values().map(|f| f.len).sum()
    }

    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    pub fn file(&self, name: &[u8]) -> Option<&FileDigests> {
        self.files.get(name)
    }

    /// Adds a file the recipient digested; false (and nothing added) beyond
    /// the bounds a donor accepts.
    pub fn add(&mut self, name: &[u8], file: FileDigests) -> bool {
        let units = file.units.len() as u64;
        let fits = self.units + units <= MAX_UNITS && self.files.len() < MAX_FILES && relative_name(name) == Some(name);
        if fits && file.units.len() as u64 == file.len.div_ceil(self.unit()) {
            self.units += units;
            self.files.insert(name.to_vec(), file);
            true
        } else {
            false
        }
    }

    /// The manifest as the bodies of the commands that carry it, each at
    /// most [`MAX_PACKET`] bytes: the unit's power of two, then entries of
    /// a name (u16 length), the file's length (u64), the first unit (u32),
    /// a count (u32) and that many digests; integers little-endian. A file
    /// may span commands.
    pub fn encode(&self) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        let mut out = vec![self.unit_pow2];
        let mut names: Vec<&Vec<u8>> = self.files.keys().collect();
        names.sort();
        for name in names {
            let file = &self.files[name];
            let head = 2 + name.len() + 8 + 4 + 4;
            let mut first = 0usize;
            loop {
                if out.len() + head + DIGEST_LEN > MAX_PACKET {
                    packets.push(std::mem::replace(&mut out, vec![self.unit_pow2]));
                }
                let room = (MAX_PACKET - out.len() - head) / DIGEST_LEN;
                let count = room.min(file.units.len() - first);
                out.extend_from_slice(&(name.len() as u16).to_le_bytes());
                out.extend_from_slice(name);
                out.extend_from_slice(&file.len.to_le_bytes());
                out.extend_from_slice(&(first as u32).to_le_bytes());
                out.extend_from_slice(&(count as u32).to_le_bytes());
                for d in &file.units[first..first + count] {
                    out.extend_from_slice(d);
                }
                first += count;
                if first >= file.units.len() {
                    break;
                }
            }
        }
        packets.push(out);
        packets
    }

    /// Takes one command's body from a recipient, checking every length and
    /// count before it sizes anything: the unit must be the one of the
    /// first command, a file's units arrive in order, and the whole stays
    /// within [`MAX_UNITS`] and [`MAX_FILES`].
    pub fn take(this: &mut Option<Manifest>, body: &[u8]) -> Result<(), Refused> {
        const WRONG: Refused = Refused("Wrong Clone RPC: Invalid manifest");
        let (&pow2, mut rest) = body.split_first().ok_or(WRONG)?;
        if !(MIN_UNIT_POW2..=MAX_UNIT_POW2).contains(&pow2) {
            return Err(WRONG);
        }
        let manifest = this.get_or_insert_with(|| Manifest::new(pow2));
        if manifest.unit_pow2 != pow2 {
            return Err(WRONG);
        }
        while !rest.is_empty() {
            let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>, Refused> {
                if rest.len() < n {
                    return Err(WRONG);
                }
                let (head, tail) = rest.split_at(n);
                *rest = tail;
                Ok(head.to_vec())
            };
            let name_len = u16::from_le_bytes(take(&mut rest, 2)?.try_into().map_err(|_| WRONG)?) as usize;
            let name = take(&mut rest, name_len)?;
            let len = u64::from_le_bytes(take(&mut rest, 8)?.try_into().map_err(|_| WRONG)?);
            let first = u32::from_le_bytes(take(&mut rest, 4)?.try_into().map_err(|_| WRONG)?) as u64;
            let count = u32::from_le_bytes(take(&mut rest, 4)?.try_into().map_err(|_| WRONG)?) as u64;
            if relative_name(&name) != Some(&name[..]) || count > (rest.len() / DIGEST_LEN) as u64 {
                return Err(WRONG);
            }
            let total = len.div_ceil(manifest.unit());
            let units = manifest.units;
            let known = manifest.files.len();
            let file = match manifest.files.get_mut(&name) {
                Some(f) => f,
                None if known < MAX_FILES && first == 0 && total <= MAX_UNITS => manifest.files.entry(name).or_insert(FileDigests { len, units: Vec::new() }),
                None => return Err(Refused("Wrong Clone RPC: manifest too large")),
            };
            if file.len != len || file.units.len() as u64 != first || first + count > total {
                return Err(WRONG);
            }
            if units + count > MAX_UNITS {
                return Err(Refused("Wrong Clone RPC: manifest too large"));
            }
            let digests = take(&mut rest, count as usize * DIGEST_LEN)?;
            file.units.extend(digests.chunks_exact(DIGEST_LEN).map(|c| {
                let mut d = [0u8; DIGEST_LEN];
                d.copy_from_slice(c);
                d
            }));
            manifest.units += count;
        }
        Ok(())
    }

    /// Whether the donor's `block`, at `offset` in the file `name`, is what
    /// the recipient holds there: every unit it covers digested alike (a
    /// short unit only at the end of both files). Its digest if so.
    pub fn matches(&self, name: &[u8], offset: u64, block: &[u8]) -> Option<Digest> {
        let file = self.files.get(relative_name(name)?)?;
        let units = self.unit_digests(file, offset, block)?;
        (units.iter().zip(&file.units[(offset >> self.unit_pow2) as usize..]).all(|(a, b)| a == b)).then(|| block_digest(&units))
    }

    /// The digests of the units of `block` at `offset` of `file`, or None
    /// when the block does not cover whole units of the file as the
    /// recipient holds it.
    fn unit_digests(&self, file: &FileDigests, offset: u64, block: &[u8]) -> Option<Vec<Digest>> {
        let unit = self.unit();
        let end = offset.checked_add(block.len() as u64)?;
        if !offset.is_multiple_of(unit) || block.is_empty() || end > file.len || (!end.is_multiple_of(unit) && end != file.len) {
            return None;
        }
        Some(block.chunks(unit as usize).map(unit_digest).collect())
    }

    /// On the recipient: whether `block`, read from the kept copy at
    /// `offset` of `name`, still has the digests the manifest sent and the
    /// digest the donor found (`sent`).
    pub fn verify(&self, name: &[u8], offset: u64, block: &[u8], sent: &Digest) -> bool {
        self.matches(name, offset, block).as_ref() == Some(sent)
    }
}

/// A kept copy's tie to its donor and its clone: written when a clone
/// fails, read before the same clone runs again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptMarker {
    /// The donor's server_uuid.
    pub donor_uuid: String,
    /// host:port, for the operator.
    pub source: String,
    /// The DATA DIRECTORY, or the data directory in place.
    pub target: String,
}

/// The marker's file in a kept copy.
pub const MARKER: &str = "#clone_kept";

impl KeptMarker {
    pub fn encode(&self) -> String {
        format!("donor_uuid={}\nsource={}\ntarget={}\n", self.donor_uuid, self.source, self.target)
    }

    pub fn parse(text: &str) -> Option<KeptMarker> {
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('='))).map(str::to_owned);
        let marker = KeptMarker { donor_uuid: field("donor_uuid")?, source: field("source")?, target: field("target")? };
        (!marker.donor_uuid.is_empty()).then_some(marker)
    }
}

/// Where a partial clone into `target` is kept: a hidden sibling,
/// `<parent>/.<name>.clone_partial` (a staged clone's: beside its staging
/// directory, `.clone_staging.clone_partial`). The server refuses a DATA
/// DIRECTORY that exists before the plugin is called, so a partial copy
/// cannot stay where it was written; InnoDB's start-up scan skips hidden
/// directories.
pub fn kept_dir_for(target: &Path) -> Option<PathBuf> {
    let name = target.file_name()?;
    let mut kept = std::ffi::OsString::new();
    if !name.to_string_lossy().starts_with('.') {
        kept.push(".");
    }
    kept.push(name);
    kept.push(".clone_partial");
    Some(target.with_file_name(kept))
}

/// After a clone into `target` that failed: if the donor is ours (the
/// target carries the [`MARKER`]), the target is moved aside as the kept
/// copy, unless a kept copy that takes more space is there already (that
/// one stays, and the target goes). Where the copy is kept.
pub fn keep(target: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(kept) = kept_dir_for(target) else { return Ok(None) };
    if !target.join(MARKER).is_file() {
        return Ok(None);
    }
    if kept.exists() {
        if allocated(&kept)? > allocated(target)? {
            std::fs::remove_dir_all(target)?;
            return Ok(Some(kept));
        }
        std::fs::remove_dir_all(&kept)?;
    }
    std::fs::rename(target, &kept)?;
    Ok(Some(kept))
}

/// After a clone into `target` that succeeded: its marker and any kept
/// copy go; the kept copy removed, if there was one.
pub fn discard(target: &Path) -> std::io::Result<Option<PathBuf>> {
    match std::fs::remove_file(target.join(MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match kept_dir_for(target).filter(|k| k.exists()) {
        Some(kept) => std::fs::remove_dir_all(&kept).map(|()| Some(kept)),
        None => Ok(None),
    }
}

/// What the status row says of a kept copy, after the error.
pub fn kept_note(kept: &Path) -> String {
    format!("; the partial copy is kept in {} for a resume", kept.display())
}

/// The bytes the files under `dir` take on disk.
fn allocated(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { allocated(&entry.path())? } else { meta.blocks() * 512 };
    }
    Ok(total)
}

/// Whether a file of a live data directory is one of InnoDB's data files,
/// which a clone sends in file copy: tablespaces, undo tablespaces and the
/// system tablespace.
pub fn is_innodb_data_file(relative: &Path) -> bool {
    let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = relative.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    ext == "ibd" || ext == "ibu" || name.starts_with("undo_") || name.starts_with("ibdata")
}

/// The files of a kept copy that may be reused: all but InnoDB's clone
/// status files, the marker, and the redo log (InnoDB names no redo file in
/// its descriptors, so none is ever matched).
pub fn is_reusable(relative: &Path) -> bool {
    let first = relative.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
    !(first == "#clone" || first == "#innodb_redo" || first == MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests_of(bytes: &[u8], unit: usize) -> FileDigests {
        FileDigests { len: bytes.len() as u64, units: bytes.chunks(unit).map(unit_digest).collect() }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    const UNIT: usize = 1 << MIN_UNIT_POW2;

    #[test]
    fn a_block_held_alike_matches_and_a_changed_byte_does_not() {
        let kept = data(5 * UNIT + 100, 1);
        let mut m = Manifest::new(MIN_UNIT_POW2);
        assert!(m.add(b"test/t1.ibd", digests_of(&kept, UNIT)));
        let block = &kept[UNIT..3 * UNIT];
        let digest = m.matches(b"./test/t1.ibd", UNIT as u64, block).expect("held alike");
        assert!(m.verify(b"test/t1.ibd", UNIT as u64, block, &digest));
        let mut changed = block.to_vec();
        changed[UNIT + 7] ^= 1;
        assert_eq!(m.matches(b"test/t1.ibd", UNIT as u64, &changed), None);
        assert!(!m.verify(b"test/t1.ibd", UNIT as u64, &changed, &digest));
        // The short last unit matches only at the end of the file.
        assert!(m.matches(b"test/t1.ibd", 5 * UNIT as u64, &kept[5 * UNIT..]).is_some());
        assert_eq!(m.matches(b"test/t1.ibd", 5 * UNIT as u64, &kept[5 * UNIT..5 * UNIT + 50]), None);
        // Not at a unit's start, past the end, another file, no file.
        assert_eq!(m.matches(b"test/t1.ibd", 100, &kept[100..100 + UNIT]), None);
        assert_eq!(m.matches(b"test/t1.ibd", 5 * UNIT as u64, &data(UNIT, 1)), None);
        assert_eq!(m.matches(b"test/t2.ibd", 0, &kept[..UNIT]), None);
        assert_eq!(m.matches(b"../t1.ibd", 0, &kept[..UNIT]), None);
    }

    #[test]
    fn a_truncated_kept_file_matches_only_what_it_still_holds() {
        let donor = data(4 * UNIT, 2);
        let mut m = Manifest::new(MIN_UNIT_POW2);
        m.add(b"ibdata1", digests_of(&donor[..2 * UNIT + 10], UNIT));
        assert!(m.matches(b"ibdata1", 0, &donor[..2 * UNIT]).is_some());
        assert_eq!(m.matches(b"ibdata1", 2 * UNIT as u64, &donor[2 * UNIT..3 * UNIT]), None);
        assert_eq!(m.matches(b"ibdata1", 0, &donor), None);
    }

    #[test]
    fn the_manifest_round_trips_across_commands() {
        let mut m = Manifest::new(MIN_UNIT_POW2);
        // Large enough to span several commands.
        let big = FileDigests { len: 100_000 * UNIT as u64, units: (0..100_000u32).map(|i| unit_digest(&i.to_le_bytes())).collect() };
        assert!(m.add(b"test/big.ibd", big));
        assert!(m.add(b"mysql.ibd", digests_of(&data(3 * UNIT, 3), UNIT)));
        assert!(m.add(b"empty.ibd", FileDigests::default()));
        let packets = m.encode();
        assert!(packets.len() > 1 && packets.iter().all(|p| p.len() <= MAX_PACKET));
        let mut received = None;
        for p in &packets {
            Manifest::take(&mut received, p).unwrap();
        }
        assert_eq!(received, Some(m));
    }

    #[test]
    fn a_manifest_out_of_bounds_or_out_of_order_is_refused() {
        let mut m = Manifest::new(MIN_UNIT_POW2);
        m.add(b"a.ibd", digests_of(&data(2 * UNIT, 4), UNIT));
        let body = m.encode().remove(0);
        let mut fresh = None;
        Manifest::take(&mut fresh, &body).unwrap();
        // The same units again are out of order.
        assert!(Manifest::take(&mut fresh, &body).is_err());
        // Another unit size.
        let mut other = body.clone();
        other[0] += 1;
        assert!(Manifest::take(&mut fresh, &other).is_err());
        assert!(Manifest::take(&mut None, &[8]).is_err());
        // A count beyond the file's length, or beyond the bytes sent.
        let entry = |name: &[u8], len: u64, first: u32, count: u32, digests: usize| {
            let mut b = vec![MIN_UNIT_POW2];
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&len.to_le_bytes());
            b.extend_from_slice(&first.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend(std::iter::repeat_n(0u8, digests * DIGEST_LEN));
            b
        };
        assert!(Manifest::take(&mut None, &entry(b"a", UNIT as u64, 0, 2, 2)).is_err());
        assert!(Manifest::take(&mut None, &entry(b"a", 9 * UNIT as u64, 0, 9, 3)).is_err());
        assert!(Manifest::take(&mut None, &entry(b"/etc/passwd", UNIT as u64, 0, 1, 1)).is_err());
        assert!(Manifest::take(&mut None, &entry(b"a", u64::MAX, 0, 1, 1)).is_err());
        assert!(Manifest::take(&mut None, &entry(b"a", 3 * UNIT as u64, 1, 1, 1)).is_err());
        assert!(Manifest::take(&mut None, &entry(b"a", 3 * UNIT as u64, 0, 3, 3)).is_ok());
        // Random bodies never panic.
        let mut next = crate::protocol::xorshift();
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(first) = b.first_mut() {
                *first = MIN_UNIT_POW2;
            }
            let _ = Manifest::take(&mut None, &b);
        }
    }

    #[test]
    fn the_unit_grows_with_the_kept_copy() {
        assert_eq!(unit_pow2_for(0), MIN_UNIT_POW2);
        assert_eq!(unit_pow2_for(256 << 30), MIN_UNIT_POW2);
        assert_eq!(unit_pow2_for((256 << 30) + 1), MIN_UNIT_POW2 + 1);
        assert_eq!(unit_pow2_for(4 << 40), 20);
        assert_eq!(unit_pow2_for(u64::MAX), MAX_UNIT_POW2);
    }

    #[test]
    fn names_are_relative_and_inside() {
        assert_eq!(relative_name(b"./test/t1.ibd"), Some(&b"test/t1.ibd"[..]));
        assert_eq!(relative_name(b"ibdata1"), Some(&b"ibdata1"[..]));
        for bad in [&b"/var/lib/t.ibd"[..], b"../x", b"a/../../x", b"./", b""] {
            assert_eq!(relative_name(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_failed_target_is_kept_unless_a_larger_copy_is_there_and_a_success_discards_it() {
        let root = std::env::temp_dir().join(format!("clone-reuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let target = root.join("c1");
        std::fs::create_dir_all(target.join("test")).unwrap();
        std::fs::write(target.join("test/t1.ibd"), vec![1u8; 8192]).unwrap();
        // No marker: a stock donor's clone, left as it is.
        assert_eq!(keep(&target).unwrap(), None);
        assert!(target.exists());
        std::fs::write(target.join(MARKER), "donor_uuid=u\nsource=s\ntarget=t\n").unwrap();
        let kept = kept_dir_for(&target).unwrap();
        assert_eq!(keep(&target).unwrap(), Some(kept.clone()));
        assert!(!target.exists() && kept.join("test/t1.ibd").exists());
        // A later attempt that got less far goes; the larger copy stays.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(MARKER), "donor_uuid=u\nsource=s\ntarget=t\n").unwrap();
        assert_eq!(keep(&target).unwrap(), Some(kept.clone()));
        assert!(!target.exists() && kept.join("test/t1.ibd").exists());
        // One that got further replaces it.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(MARKER), "donor_uuid=u\nsource=s\ntarget=t\n").unwrap();
        std::fs::write(target.join("ibdata1"), vec![1u8; 65536]).unwrap();
        assert_eq!(keep(&target).unwrap(), Some(kept.clone()));
        assert!(kept.join("ibdata1").exists() && !kept.join("test").exists());
        // A success removes the marker and the kept copy.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join(MARKER), "x").unwrap();
        assert_eq!(discard(&target).unwrap(), Some(kept.clone()));
        assert!(!kept.exists() && !target.join(MARKER).exists() && target.exists());
        assert_eq!(discard(&target).unwrap(), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_marker_reads_back_and_a_kept_copy_sits_beside_its_target() {
        let m = KeptMarker { donor_uuid: "8a94f357-aab4-11df-86ab-c80aa9429562".into(), source: "127.0.0.1:13000".into(), target: "/data/c1".into() };
        assert_eq!(KeptMarker::parse(&m.encode()), Some(m));
        assert_eq!(KeptMarker::parse("source=x\ntarget=y\n"), None);
        assert_eq!(kept_dir_for(Path::new("/data/c1")), Some(PathBuf::from("/data/.c1.clone_partial")));
        assert_eq!(kept_dir_for(Path::new("/data/c1/")), Some(PathBuf::from("/data/.c1.clone_partial")));
        assert_eq!(kept_dir_for(Path::new("/var/lib/mysql/.clone_staging")), Some(PathBuf::from("/var/lib/mysql/.clone_staging.clone_partial")));
        assert!(is_reusable(Path::new("test/t1.ibd")));
        assert!(!is_reusable(Path::new("#innodb_redo/#ib_redo9")));
        assert!(!is_reusable(Path::new("#clone/#status_in_progress")));
        for data in ["test/t1.ibd", "mysql.ibd", "undo_001", "ibdata1", "ts.ibu"] {
            assert!(is_innodb_data_file(Path::new(data)), "{data}");
        }
        for other in ["auto.cnf", "private_key.pem", "binlog.000001", "test/t1.sdi", "#ib_16384_0.dblwr"] {
            assert!(!is_innodb_data_file(Path::new(other)), "{other}");
        }
    }
}
