//! Extensions that only this plugin's recipient and donor agree on.
//!
//! The stock protocol has one place where a recipient states what it
//! speaks: the version word of INIT, ATTACH and REINIT. A stock donor
//! answers a version above its own with its own (clone_server.cc,
//! deserialize_init_buffer) and otherwise ignores it. Our recipient sets
//! the top byte of that word to [`MAGIC`] and the next byte to the
//! capabilities it wants; the low 16 bits stay the stock version it speaks.
//! Our donor answers with the same magic and the capabilities it grants in
//! the version word of its locator response. So:
//!
//! - a stock donor answers with a plain stock version: the recipient then
//!   speaks the stock protocol and nothing else (with clone_enable_compression,
//!   it starts over on a zlib connection, see the recipient);
//! - a stock recipient never sets the magic: our donor answers with the
//!   stock version and sends only stock messages;
//! - a stock version bump (0x0104, ...) changes the low 16 bits only, so it
//!   cannot be read as an offer, and an offer cannot be read as a version
//!   bump: the stock numbering would need 2^31 versions to reach the magic.
//!
//! Granted capabilities change the data messages only (see [`Caps::ZSTD`]
//! and [`Caps::CHECKSUM`]).

use super::DecodeError;

/// The top byte of the version word of an offer or an answer.
pub const MAGIC: u8 = 0xC1;
const MAGIC_SHIFT: u32 = 24;
const CAPS_SHIFT: u32 = 16;
const STOCK_MASK: u32 = 0xFFFF;

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps(u8);

impl Caps {
    pub const NONE: Caps = Caps(0);
    /// Data messages may be zstd frames ([`super::response::DATA_ZSTD`])
    /// instead of DATA, on connections without protocol compression.
    pub const ZSTD: Caps = Caps(1);
    /// Data blocks sent as they are carry a CRC-32C of the bytes the donor
    /// read ([`super::response::DATA_CHECKED`]), which the recipient checks
    /// before the engine applies them (a zstd frame carries a checksum of
    /// its block already).
    pub const CHECKSUM: Caps = Caps(2);
    /// What this build knows.
    pub const SUPPORTED: Caps = Caps(Caps::ZSTD.0 | Caps::CHECKSUM.0);

    pub fn contains(self, other: Caps) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Caps) -> Caps {
        Caps(self.0 | other.0)
    }

    pub fn intersection(self, other: Caps) -> Caps {
        Caps(self.0 & other.0)
    }
}

impl std::fmt::Display for Caps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [(Caps::ZSTD, "zstd"), (Caps::CHECKSUM, "checksums")].iter().filter(|(c, _)| self.contains(*c)).map(|(_, n)| *n).collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

/// A version word: the stock version, and whether the peer is ours (with
/// the capabilities it offers or grants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Version {
    pub stock: u32,
    /// None from a stock peer.
    pub ours: Option<Caps>,
}

impl Version {
    pub fn stock(stock: u32) -> Version {
        Version { stock, ours: None }
    }

    pub fn ours(stock: u32, caps: Caps) -> Version {
        Version { stock, ours: Some(caps) }
    }

    /// Reads a version word. A word whose top byte is not the magic is a
    /// stock version, taken whole (as a stock donor takes it).
    pub fn decode(word: u32) -> Version {
        if (word >> MAGIC_SHIFT) as u8 == MAGIC {
            Version::ours(word & STOCK_MASK, Caps((word >> CAPS_SHIFT) as u8))
        } else {
            Version::stock(word)
        }
    }

    pub fn encode(self) -> u32 {
        match self.ours {
            None => self.stock,
            Some(caps) => (u32::from(MAGIC) << MAGIC_SHIFT) | (u32::from(caps.0) << CAPS_SHIFT) | (self.stock & STOCK_MASK),
        }
    }

    /// What our donor answers to an offer: the stock version it speaks with
    /// the peer, and, to our recipient only, the capabilities it grants.
    pub fn answer(self, newest: u32) -> Version {
        Version { stock: self.stock.min(newest), ours: self.ours.map(|offered| offered.intersection(Caps::SUPPORTED)) }
    }

    pub fn granted(self) -> Caps {
        self.ours.unwrap_or(Caps::NONE)
    }
}

/// The largest block a compressed data message may carry: InnoDB sends
/// blocks of at most 64 pages (4 MiB at 64 KiB pages); larger ones go
/// uncompressed, and a recipient allocates no more than this for one.
pub const MAX_BLOCK: usize = 64 << 20;

/// The zstd level of the data stream, with Huffman-coded literals (which
/// zstd leaves out below level 1). Measured on 1 MiB blocks of the
/// benchmark's .ibd files (README): level -3 so compresses 1.5 times as
/// fast as level 1 (336 against 209 MB/s on one core here) to the same
/// ratio on hex-text rows (2.63 against 2.64; 3.34 against 3.51 on
/// sysbench's tables); without Huffman literals the ratio falls to 1.43,
/// and levels above 1 are slower for no gain. A clone's compression is
/// CPU-bound on the donor up to about a Gbit link, so speed wins.
pub const ZSTD_LEVEL: i32 = -3;

/// The body of a DATA_ZSTD message: the block's length, then one zstd frame.
pub fn encode_zstd_header(out: &mut Vec<u8>, raw_len: usize) {
    out.push(super::response::DATA_ZSTD);
    out.extend_from_slice(&(raw_len as u32).to_le_bytes());
}

/// Splits a DATA_ZSTD body into the block's length and its frame.
pub fn decode_zstd_body(body: &[u8]) -> Result<(usize, &[u8]), DecodeError> {
    if body.len() < 4 {
        return Err(DecodeError::Truncated("compressed data"));
    }
    let (len, frame) = body.split_at(4);
    let raw_len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    Ok((raw_len, frame))
}

/// The checksum of a data block sent as it is: CRC-32C, chosen by
/// measurement on 1 MiB blocks of the benchmark's t1.ibd, one core here:
/// 8.6 GB/s (SSE 4.2), against 7.3 GB/s for XXH3 and 1.4 GB/s for SHA-256
/// (SHA-NI). It is InnoDB's page checksum too.
pub fn block_checksum(block: &[u8]) -> u32 {
    crc32c::crc32c(block)
}

/// The head of a DATA_CHECKED message: its code, then the block's checksum.
pub fn checked_head(block: &[u8]) -> [u8; CHECKED_HEAD] {
    let crc = block_checksum(block).to_le_bytes();
    [super::response::DATA_CHECKED, crc[0], crc[1], crc[2], crc[3]]
}

/// Bytes before the block in a DATA_CHECKED message.
pub const CHECKED_HEAD: usize = 5;

/// Splits a DATA_CHECKED body into the checksum the donor sent and the block.
pub fn decode_checked_body(body: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if body.len() < 4 {
        return Err(DecodeError::Truncated("checked data"));
    }
    let (crc, block) = body.split_at(4);
    Ok((u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]), block))
}

/// Compresses data blocks; one per sending task, its context reused.
pub struct BlockCompressor(zstd::bulk::Compressor<'static>);

impl BlockCompressor {
    pub fn new() -> std::io::Result<BlockCompressor> {
        let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
        c.set_parameter(zstd::zstd_safe::CParameter::LiteralCompressionMode(zstd::zstd_safe::ParamSwitch::Enable))?;
        // Each frame carries a checksum of its block (XXH64, 4 bytes),
        // which the recipient checks as it expands it: a damaged frame
        // fails the clone instead of landing in a data file.
        c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
        Ok(BlockCompressor(c))
    }

    /// Writes a DATA_ZSTD message for `block` into `out`; false when the
    /// frame would not be smaller (the caller then sends DATA).
    pub fn message(&mut self, block: &[u8], out: &mut Vec<u8>) -> std::io::Result<bool> {
        if block.len() > MAX_BLOCK {
            return Ok(false);
        }
        out.clear();
        encode_zstd_header(out, block.len());
        let header = out.len();
        out.resize(header + zstd::zstd_safe::compress_bound(block.len()), 0);
        let n = self.0.compress_to_buffer(block, &mut out[header..])?;
        out.truncate(header + n);
        Ok(n < block.len())
    }
}

/// Decompresses data blocks; one per receiving task.
pub struct BlockDecompressor(zstd::bulk::Decompressor<'static>);

/// Why a compressed block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The announced length is not the block's (or is beyond MAX_BLOCK).
    Length,
    /// The frame is not valid zstd, or expands to other than announced.
    Frame,
}

impl BlockDecompressor {
    pub fn new() -> std::io::Result<BlockDecompressor> {
        zstd::bulk::Decompressor::new().map(BlockDecompressor)
    }

    /// Expands a frame into `into`, which must be exactly the announced
    /// length: zstd writes nothing past it, and a frame that expands to
    /// more or less is refused.
    pub fn expand(&mut self, frame: &[u8], into: &mut [u8]) -> Result<(), BlockError> {
        if into.len() > MAX_BLOCK {
            return Err(BlockError::Length);
        }
        match self.0.decompress_to_buffer(frame, into) {
            Ok(n) if n == into.len() => Ok(()),
            _ => Err(BlockError::Frame),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{response, VERSION_CURRENT, VERSION_V4};

    #[test]
    fn an_offer_reads_back_and_a_stock_word_is_stock() {
        let offer = Version::ours(VERSION_CURRENT, Caps::ZSTD);
        assert_eq!(offer.encode(), 0xC101_0103);
        assert_eq!(Version::decode(offer.encode()), offer);
        for stock in [0x0100, 0x0103, 0x0104, 0x0200, 0xFFFF, 0x00C1_0103, u32::MAX >> 1] {
            assert_eq!(Version::decode(stock), Version::stock(stock), "{stock:#x}");
        }
    }

    #[test]
    fn a_stock_donor_answer_is_its_version_and_ours_grants_what_it_knows() {
        // The stock donor's rule, min(offered, its own), strips the magic.
        let offered = Version::ours(VERSION_CURRENT, Caps::ZSTD).encode();
        assert_eq!(Version::decode(offered.min(VERSION_V4)), Version::stock(VERSION_V4));
        // Ours grants only what it supports, at the lower stock version.
        let answer = Version::decode(Version::ours(0x0105, Caps(0xFF)).encode()).answer(VERSION_CURRENT);
        assert_eq!(answer, Version::ours(VERSION_CURRENT, Caps::SUPPORTED));
        // A stock recipient (no magic) gets a stock answer.
        assert_eq!(Version::stock(0x0104).answer(VERSION_CURRENT), Version::stock(VERSION_CURRENT));
        assert_eq!(Version::stock(0x0104).answer(VERSION_CURRENT).encode(), VERSION_CURRENT);
    }

    #[test]
    fn blocks_round_trip_and_incompressible_ones_stay_plain() {
        let mut c = BlockCompressor::new().unwrap();
        let mut d = BlockDecompressor::new().unwrap();
        let block: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8 / 4).collect();
        let mut msg = Vec::new();
        assert!(c.message(&block, &mut msg).unwrap());
        assert_eq!(msg[0], response::DATA_ZSTD);
        assert!(msg.len() < block.len() / 4);
        let (len, frame) = decode_zstd_body(&msg[1..]).unwrap();
        let mut out = vec![0u8; len];
        d.expand(frame, &mut out).unwrap();
        assert_eq!(out, block);

        let mut seed = 1u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect();
        assert!(!c.message(&noise, &mut msg).unwrap());
    }

    #[test]
    fn a_checked_block_carries_its_crc32c() {
        let block = b"123456789";
        let mut message = checked_head(block).to_vec();
        message.extend_from_slice(block);
        assert_eq!(message[0], super::super::response::DATA_CHECKED);
        // The CRC-32C check value of "123456789".
        assert_eq!(decode_checked_body(&message[1..]), Ok((0xE306_9283, &block[..])));
        assert!(decode_checked_body(&message[1..4]).is_err());
        assert_eq!(Caps::SUPPORTED.to_string(), "zstd, checksums");
        assert_eq!(Caps::CHECKSUM.to_string(), "checksums");
        assert_eq!(Caps::NONE.to_string(), "none");
    }

    #[test]
    fn a_frame_that_lies_about_its_length_is_refused() {
        let mut c = BlockCompressor::new().unwrap();
        let mut d = BlockDecompressor::new().unwrap();
        let block = vec![7u8; 10_000];
        let mut msg = Vec::new();
        c.message(&block, &mut msg).unwrap();
        let frame = &msg[5..];
        // Announced shorter than the frame expands to: nothing written past.
        let mut short = vec![0u8; 9_999];
        assert_eq!(d.expand(frame, &mut short), Err(BlockError::Frame));
        // Announced longer.
        let mut long = vec![0u8; 10_001];
        assert_eq!(d.expand(frame, &mut long), Err(BlockError::Frame));
        // One damaged byte in the middle: the frame's checksum catches it
        // even where the damage still decodes to a block of the right size.
        for at in (5..msg.len()).step_by(7) {
            let mut damaged = msg[5..].to_vec();
            damaged[at - 5] ^= 0x01;
            assert_eq!(d.expand(&damaged, &mut [0u8; 10_000]), Err(BlockError::Frame), "damage at {at}");
        }
        // Garbage and a cut frame.
        assert_eq!(d.expand(b"not zstd at all", &mut [0u8; 15]), Err(BlockError::Frame));
        assert_eq!(d.expand(&frame[..frame.len() - 1], &mut [0u8; 10_000]), Err(BlockError::Frame));
        assert_eq!(decode_zstd_body(&[1, 2, 3]), Err(DecodeError::Truncated("compressed data")));
    }
}
