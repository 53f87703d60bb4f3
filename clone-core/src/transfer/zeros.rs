//! Long runs of zero bytes in a block of file data. Where the server extends
//! its own files without writing them (innodb_extend_and_initialize OFF:
//! InnoDB's `fallocate`), the writer hands these runs to the file system as
//! zero ranges (`fallocate(FALLOC_FL_ZERO_RANGE)`): the blocks are
//! allocated, read back as zeros, and are not written. InnoDB files carry
//! many such pages (free extents, the unused part of undo tablespaces and
//! ibdata1; 16 % of the benchmark's files), and the disk's write speed
//! bounds a clone. With the default ON, InnoDB writes its zeros, and so
//! does the writer.

use std::ops::Range;

/// Zero ranges start and end on file-system block boundaries.
pub const GRANULE: usize = 4096;
/// Shorter runs of zeros are written as data: one bigger write costs less
/// than a write, a zero range and another write.
pub const MIN_RUN: usize = 16 * GRANULE;

/// A part of a block: bytes to write, or zeros to allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Data(Range<usize>),
    Zeros(Range<usize>),
}

/// Splits `data`, bound for file offset `offset`, into data and runs of at
/// least `MIN_RUN` zero bytes on `GRANULE` boundaries of the file. The
/// pieces cover `data` in order; a block not aligned to a granule is one
/// data piece.
pub fn pieces(data: &[u8], offset: u64) -> Vec<Piece> {
    let whole = || vec![Piece::Data(0..data.len())];
    if !offset.is_multiple_of(GRANULE as u64) || data.len() < MIN_RUN {
        return whole();
    }
    let mut out = Vec::new();
    let mut data_start = 0;
    let mut zeros_start = None;
    let granules = data.len() / GRANULE;
    for g in 0..=granules {
        let at = g * GRANULE;
        let zero = g < granules && is_zero(&data[at..at + GRANULE]);
        match (zero, zeros_start) {
            (true, None) => zeros_start = Some(at),
            (false, Some(start)) => {
                if at - start >= MIN_RUN {
                    if start > data_start {
                        out.push(Piece::Data(data_start..start));
                    }
                    out.push(Piece::Zeros(start..at));
                    data_start = at;
                }
                zeros_start = None;
            }
            _ => {}
        }
    }
    if data_start < data.len() {
        out.push(Piece::Data(data_start..data.len()));
    }
    out
}

/// Whether every byte of `block` is zero. Data pages start with a checksum,
/// so most blocks fail on the first bytes; the rest is folded without
/// branches, which the compiler turns into vector instructions.
fn is_zero(block: &[u8]) -> bool {
    let (head, rest) = block.split_at(block.len().min(16));
    head.iter().all(|&b| b == 0) && rest.iter().fold(0u8, |acc, &b| acc | b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `blocks` granules, those listed zero, the others not.
    fn block(granules: usize, zero: impl Fn(usize) -> bool) -> Vec<u8> {
        (0..granules).flat_map(|g| vec![if zero(g) { 0 } else { 1 + (g % 250) as u8 }; GRANULE]).collect()
    }

    fn rebuilt(data: &[u8], pieces: &[Piece]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Data(r) => out.extend_from_slice(&data[r.clone()]),
                Piece::Zeros(r) => out.resize(out.len() + r.len(), 0),
            }
        }
        out
    }

    #[test]
    fn long_zero_runs_become_zero_ranges_and_the_rest_stays_data() {
        let runs = 16;
        // data, 16 zero granules, data, 15 zero granules (too short), data, zeros to the end
        let data =
            block(3 + runs + 2 + (runs - 1) + 1 + runs + 3, |g| (3..3 + runs).contains(&g) || (5 + runs..4 + 2 * runs).contains(&g) || g >= 5 + 2 * runs);
        let p = pieces(&data, 1 << 20);
        let g = GRANULE;
        assert_eq!(
            p,
            vec![
                Piece::Data(0..3 * g),
                Piece::Zeros(3 * g..(3 + runs) * g),
                Piece::Data((3 + runs) * g..(5 + 2 * runs) * g),
                Piece::Zeros((5 + 2 * runs) * g..data.len()),
            ]
        );
        assert!(rebuilt(&data, &p) == data);
    }

    #[test]
    fn one_nonzero_byte_keeps_its_granule_data() {
        let mut data = vec![0u8; 64 * GRANULE];
        data[40 * GRANULE + 4095] = 7;
        let p = pieces(&data, 0);
        assert_eq!(p, vec![Piece::Zeros(0..40 * GRANULE), Piece::Data(40 * GRANULE..41 * GRANULE), Piece::Zeros(41 * GRANULE..64 * GRANULE)]);
        assert!(rebuilt(&data, &p) == data);
    }

    #[test]
    fn unaligned_short_or_partial_blocks() {
        let zeros = vec![0u8; 32 * GRANULE];
        // Not on a granule of the file: written as it is.
        assert_eq!(pieces(&zeros, 512), vec![Piece::Data(0..zeros.len())]);
        // Too short to be worth a zero range.
        assert_eq!(pieces(&zeros[..MIN_RUN - 1], 0), vec![Piece::Data(0..MIN_RUN - 1)]);
        // A tail shorter than a granule is data.
        let tail = vec![0u8; MIN_RUN + 100];
        assert_eq!(pieces(&tail, 0), vec![Piece::Zeros(0..MIN_RUN), Piece::Data(MIN_RUN..MIN_RUN + 100)]);
        // No zeros at all.
        let full = block(40, |_| false);
        assert_eq!(pieces(&full, 0), vec![Piece::Data(0..full.len())]);
    }
}
