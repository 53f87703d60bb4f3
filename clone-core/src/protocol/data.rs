//! The data messages of a clone's stream, in every form, encoded and
//! decoded in one place with their length and checksum checks:
//!
//! - DATA ([`response::DATA`](super::response::DATA)): the code, then the
//!   block. The stock form, and the only one a stock peer sees or sends.
//! - DATA_CHECKED ([`response::DATA_CHECKED`](super::response::DATA_CHECKED),
//!   with [`Caps::CHECKSUM`] granted): the code, the block's CRC-32C
//!   (little-endian), the block.
//! - DATA_ZSTD ([`response::DATA_ZSTD`](super::response::DATA_ZSTD), with
//!   [`Caps::ZSTD`] granted): the code, the block's length (u32,
//!   little-endian), one zstd frame that carries a checksum of the block.
//! - DATA_REUSED ([`response::DATA_REUSED`](super::response::DATA_REUSED),
//!   with [`Caps::REUSE`] granted): the code, the block's digest
//!   ([`crate::reuse::block_digest`]); the recipient reads the block, as long
//!   as its descriptor says, from its kept copy (`crate::reuse`).
//!
//! A sender leaves [`HEAD_ROOM`] bytes before each block, so that the head
//! of DATA or DATA_CHECKED is written there and the block is sent where it
//! lies, never copied; a DATA_ZSTD message is built apart. A receiver
//! decodes a whole message ([`DataDecoder::decode`]) into a [`Block`]: the
//! bytes, checked, or a zstd frame to expand where the block belongs
//! ([`DataDecoder::expand`]).

use super::extension::{block_checksum, Caps, MAX_BLOCK, ZSTD_LEVEL};
use super::response::{DATA, DATA_CHECKED, DATA_DESC, DATA_REUSED, DATA_ZSTD};
use crate::reuse::{Digest, DIGEST_LEN};

/// Bytes a sender leaves before a block for the message head: the code and
/// a CRC-32C, the longest head written in place (DATA_CHECKED's).
pub const HEAD_ROOM: usize = 5;

/// DATA_CHECKED's head: the code, then the CRC-32C.
const CHECKED_HEAD: usize = 5;
/// DATA_ZSTD's head: the code, then the block's length.
const ZSTD_HEAD: usize = 5;

/// Why a data message was refused (or could not be built). Each variant's
/// text ([`std::fmt::Display`]) is the error a clone reports for it; the
/// caller may add the block's place (file and offset) to `Checksum` and
/// `Frame`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataError {
    /// Not a data message, or a form that was not granted.
    NotData,
    /// A message of a data form whose body is cut short: what it is
    /// ("checked data", "compressed data").
    Malformed(&'static str),
    /// The block's length is not the one its descriptor announced (for a
    /// zstd frame: the length its head announces), or it is beyond
    /// [`MAX_BLOCK`].
    Length,
    /// The block's CRC-32C is not the one the donor sent.
    Checksum { sent: u32, received: u32 },
    /// A zstd frame that is not valid, fails its checksum, or does not
    /// expand to exactly its announced length.
    Frame,
    /// A block to encode without [`HEAD_ROOM`] bytes before it.
    NoRoom,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::NotData => f.write_str("Wrong Clone RPC response, expecting data packet COM_RES_DATA"),
            DataError::Malformed(what) => write!(f, "Wrong Clone RPC: {what}"),
            DataError::Length => f.write_str("Wrong Clone RPC: data length differs from its descriptor"),
            DataError::Checksum { sent, received } => {
                write!(f, "Data fails its checksum (CRC-32C {sent:#010x} sent, {received:#010x} received)")
            }
            DataError::Frame => f.write_str("Compressed data does not expand to its length or fails its checksum"),
            DataError::NoRoom => f.write_str("a data block without room for its head"),
        }
    }
}

impl std::error::Error for DataError {}

/// Where [`DataEncoder::encode`] put the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// The whole message (DATA_ZSTD) is in `packed`; the area is not part
    /// of it and may be reused at once.
    Packed,
    /// The message is `area[start..]`: its head was written just before
    /// the block.
    InPlace { start: usize },
}

/// Builds the data messages of one sending task, in the form the granted
/// capabilities allow (its zstd context is reused from block to block).
pub struct DataEncoder {
    /// With zstd granted, and a compressor made.
    zstd: Option<zstd::bulk::Compressor<'static>>,
    checksums: bool,
    backoff: Backoff,
}

/// Most blocks sent as they are, untried, after misses in a row.
const MAX_SKIP: u32 = 32;

/// Keeps a task from compressing what does not compress (encrypted or
/// page-compressed tablespaces, compressed blobs): after a block that zstd
/// shrank by less than an eighth (a miss: too little to pay for the
/// compression and expansion on a fast link), the next block goes untried;
/// each further miss in a row doubles the blocks skipped, up to
/// [`MAX_SKIP`]; a block that shrinks more starts over. So incompressible
/// data costs one try in up to 33 blocks, and compressible data, whose
/// blocks all shrink, is compressed as before.
#[derive(Debug, Default)]
struct Backoff {
    /// Blocks still to send untried.
    skip: u32,
    /// Blocks to skip after the next miss.
    next_skip: u32,
}

impl Backoff {
    /// Whether to try compressing the next block (counts a skipped one).
    fn try_next(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// What the try gave: a frame of `packed` bytes for a block of `len`.
    fn tried(&mut self, len: usize, packed: usize) {
        if packed < len - len / 8 {
            self.next_skip = 0;
        } else {
            self.next_skip = (self.next_skip * 2).clamp(1, MAX_SKIP);
            self.skip = self.next_skip;
        }
    }
}

fn compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    c.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))?;
    // Each frame carries a checksum of its block (XXH64, 4 bytes), which
    // the recipient checks as it expands it: a damaged frame fails the
    // clone instead of landing in a data file.
    c.set_parameter(CParameter::ChecksumFlag(true))?;
    Ok(c)
}

impl DataEncoder {
    /// An encoder for the capabilities the donor granted. With zstd
    /// granted but no compressor to be had, blocks go uncompressed (see
    /// [`DataEncoder::compresses`]), which the protocol allows.
    pub fn new(granted: Caps) -> DataEncoder {
        let zstd = if granted.contains(Caps::ZSTD) { compressor().ok() } else { None };
        DataEncoder { zstd, checksums: granted.contains(Caps::CHECKSUM), backoff: Backoff::default() }
    }

    /// Whether blocks are compressed where that makes them smaller.
    pub fn compresses(&self) -> bool {
        self.zstd.is_some()
    }

    /// Whether blocks sent as they are carry their CRC-32C.
    pub fn checksums(&self) -> bool {
        self.checksums
    }

    /// Builds the message of the block `area[head..]`: a DATA_ZSTD message
    /// in `packed` when zstd is granted, the block is tried ([`Backoff`])
    /// and the frame is smaller than the block ([`Encoded::Packed`]);
    /// otherwise the head of DATA_CHECKED
    /// (checksums granted) or of DATA is written into the head room before
    /// the block ([`Encoded::InPlace`]). `packed` is cleared first, and left
    /// empty unless the message is in it. `head` must be at least
    /// [`HEAD_ROOM`] and at most `area.len()`.
    pub fn encode(&mut self, area: &mut [u8], head: usize, packed: &mut Vec<u8>) -> Result<Encoded, DataError> {
        if head < HEAD_ROOM || head > area.len() {
            return Err(DataError::NoRoom);
        }
        packed.clear();
        if let Some(c) = &mut self.zstd {
            let block = &area[head..];
            // A block beyond MAX_BLOCK goes as it is, untried.
            if block.len() <= MAX_BLOCK && self.backoff.try_next() {
                let smaller = pack(c, block, packed);
                self.backoff.tried(block.len(), if smaller { packed.len() - ZSTD_HEAD } else { block.len() });
                if smaller {
                    return Ok(Encoded::Packed);
                }
                packed.clear();
            }
        }
        if self.checksums {
            let start = head - CHECKED_HEAD;
            let crc = block_checksum(&area[head..]);
            area[start] = DATA_CHECKED;
            area[start + 1..head].copy_from_slice(&crc.to_le_bytes());
            Ok(Encoded::InPlace { start })
        } else {
            area[head - 1] = DATA;
            Ok(Encoded::InPlace { start: head - 1 })
        }
    }
}

/// Writes a DATA_ZSTD message for `block` (at most MAX_BLOCK long) into
/// `out`; false when the frame would not be smaller than the block or zstd
/// failed (the block then goes as it is).
fn pack(c: &mut zstd::bulk::Compressor<'static>, block: &[u8], out: &mut Vec<u8>) -> bool {
    out.push(DATA_ZSTD);
    out.extend_from_slice(&(block.len() as u32).to_le_bytes());
    out.resize(ZSTD_HEAD + zstd::zstd_safe::compress_bound(block.len()), 0);
    match c.compress_to_buffer(block, &mut out[ZSTD_HEAD..]) {
        Ok(n) => {
            out.truncate(ZSTD_HEAD + n);
            n < block.len()
        }
        Err(_) => false,
    }
}

/// A data block as received: its bytes (from DATA, or from DATA_CHECKED
/// once its checksum matched), or a zstd frame and the length it expands to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block<'a> {
    Plain(&'a [u8]),
    Zstd {
        frame: &'a [u8],
        len: usize,
    },
    /// A block the recipient holds: `len` bytes (as the descriptor
    /// announced) whose digest is `digest`.
    Reused {
        digest: Digest,
        len: usize,
    },
}

impl Block<'_> {
    /// The block's length (a frame's: once expanded).
    pub fn len(&self) -> usize {
        match self {
            Block::Plain(b) => b.len(),
            Block::Zstd { len, .. } | Block::Reused { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads the data messages of one receiving task, accepting the forms the
/// granted capabilities allow (its zstd context is reused).
pub struct DataDecoder {
    /// With zstd granted.
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    checksums: bool,
    reuse: bool,
}

impl DataDecoder {
    /// A decoder for the capabilities the donor granted; fails only when
    /// zstd is granted and no decompressor can be made.
    pub fn new(granted: Caps) -> std::io::Result<DataDecoder> {
        let zstd = if granted.contains(Caps::ZSTD) { Some(zstd::bulk::Decompressor::new()?) } else { None };
        Ok(DataDecoder { zstd, checksums: granted.contains(Caps::CHECKSUM), reuse: granted.contains(Caps::REUSE) })
    }

    /// Decodes a whole data message (`packet`, code byte first). DATA is
    /// always accepted, DATA_CHECKED with checksums granted (its CRC-32C
    /// checked), DATA_ZSTD with zstd granted (its length at most
    /// [`MAX_BLOCK`]; the frame is checked as it expands). With
    /// `announced`, the length the block's descriptor gave, the block must
    /// be exactly that long (a frame: announce exactly that length).
    pub fn decode<'a>(&self, packet: &'a [u8], announced: Option<u32>) -> Result<Block<'a>, DataError> {
        let block = match packet.split_first() {
            Some((&DATA, data)) => Block::Plain(data),
            Some((&DATA_CHECKED, body)) if self.checksums => {
                let (sent, data) = split_u32(body).ok_or(DataError::Malformed("checked data"))?;
                // A block of the wrong length is refused as such before its
                // checksum is looked at.
                check_length(announced, data.len())?;
                let received = block_checksum(data);
                if received != sent {
                    return Err(DataError::Checksum { sent, received });
                }
                Block::Plain(data)
            }
            Some((&DATA_ZSTD, body)) if self.zstd.is_some() => {
                let (len, frame) = split_u32(body).ok_or(DataError::Malformed("compressed data"))?;
                let len = len as usize;
                if len > MAX_BLOCK {
                    return Err(DataError::Length);
                }
                Block::Zstd { frame, len }
            }
            Some((&DATA_REUSED, body)) if self.reuse => {
                let digest: Digest = body.try_into().map_err(|_| DataError::Malformed("reused data"))?;
                // Only a descriptor says how long a reused block is.
                let len = announced.ok_or(DataError::Length)? as usize;
                if len > MAX_BLOCK {
                    return Err(DataError::Length);
                }
                Block::Reused { digest, len }
            }
            _ => return Err(DataError::NotData),
        };
        check_length(announced, block.len())?;
        Ok(block)
    }

    /// Expands a zstd `frame` into `out`, which is as long as the frame's
    /// message announced: zstd writes nothing past it, and a frame that
    /// expands to more or less, or fails its checksum, is refused.
    pub fn expand(&mut self, frame: &[u8], out: &mut [u8]) -> Result<(), DataError> {
        let Some(zstd) = &mut self.zstd else {
            return Err(DataError::Malformed("compressed data without zstd"));
        };
        if out.len() > MAX_BLOCK {
            return Err(DataError::Length);
        }
        match zstd.decompress_to_buffer(frame, out) {
            Ok(n) if n == out.len() => Ok(()),
            _ => Err(DataError::Frame),
        }
    }
}

fn split_u32(body: &[u8]) -> Option<(u32, &[u8])> {
    let (word, rest) = body.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*word), rest))
}

fn check_length(announced: Option<u32>, len: usize) -> Result<(), DataError> {
    match announced {
        Some(a) if u64::from(a) != len as u64 => Err(DataError::Length),
        _ => Ok(()),
    }
}

/// The DATA_REUSED message of a block with digest `digest`.
pub fn reused(digest: &Digest) -> Vec<u8> {
    let mut m = Vec::with_capacity(1 + DIGEST_LEN);
    m.push(DATA_REUSED);
    m.extend_from_slice(digest);
    m
}

/// A message of a data stream: a descriptor or a data block, of any form.
pub fn is_stream_message(packet: &[u8]) -> bool {
    matches!(packet.first(), Some(&(DATA_DESC | DATA | DATA_ZSTD | DATA_CHECKED | DATA_REUSED)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{response, xorshift};

    const ALL_CAPS: [Caps; 4] = [Caps::NONE, Caps::ZSTD, Caps::CHECKSUM, Caps::SUPPORTED];

    /// Rows of a table as hex text: zstd makes them about a third.
    fn compressible(len: usize) -> Vec<u8> {
        (0..len as u32).map(|i| (i % 251) as u8 / 4).collect()
    }

    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (seed >> 56) as u8
            })
            .collect()
    }

    /// The message `enc` sends for `block`, as a donor lays it out: the
    /// block after the head room.
    fn send(enc: &mut DataEncoder, block: &[u8]) -> Vec<u8> {
        let mut area = vec![0u8; HEAD_ROOM + block.len()];
        area[HEAD_ROOM..].copy_from_slice(block);
        let mut packed = vec![1, 2, 3];
        match enc.encode(&mut area, HEAD_ROOM, &mut packed).unwrap() {
            Encoded::Packed => packed,
            Encoded::InPlace { start } => {
                assert!(packed.is_empty(), "packed left empty when unused");
                area[start..].to_vec()
            }
        }
    }

    /// The block `dec` reads from `message`.
    fn receive(dec: &mut DataDecoder, message: &[u8], announced: Option<u32>) -> Result<Vec<u8>, DataError> {
        match dec.decode(message, announced)? {
            Block::Plain(b) => Ok(b.to_vec()),
            Block::Zstd { frame, len } => {
                let mut out = vec![0u8; len];
                dec.expand(frame, &mut out)?;
                Ok(out)
            }
            Block::Reused { .. } => Err(DataError::NotData),
        }
    }

    #[test]
    fn a_reused_block_is_its_digest_and_takes_its_length_from_the_descriptor() {
        let digest = [7u8; DIGEST_LEN];
        let message = reused(&digest);
        assert!(is_stream_message(&message));
        let dec = DataDecoder::new(Caps::REUSE).unwrap();
        assert_eq!(dec.decode(&message, Some(1 << 20)), Ok(Block::Reused { digest, len: 1 << 20 }));
        assert_eq!(dec.decode(&message, None), Err(DataError::Length));
        assert_eq!(dec.decode(&message, Some(MAX_BLOCK as u32 + 1)), Err(DataError::Length));
        assert_eq!(dec.decode(&message[..10], Some(16)), Err(DataError::Malformed("reused data")));
        // Not granted: not data.
        assert_eq!(DataDecoder::new(Caps::SUPPORTED.intersection(Caps::ZSTD)).unwrap().decode(&message, Some(16)), Err(DataError::NotData));
    }

    #[test]
    fn every_granted_form_round_trips() {
        // Each block, and whether a zstd frame of it is smaller.
        let blocks = [(compressible(65536), true), (compressible(1 << 20), true), (noise(4096, 1), false), (Vec::new(), false), (b"x".to_vec(), false)];
        for caps in ALL_CAPS {
            let mut enc = DataEncoder::new(caps);
            assert_eq!(enc.compresses(), caps.contains(Caps::ZSTD), "{caps}");
            assert_eq!(enc.checksums(), caps.contains(Caps::CHECKSUM), "{caps}");
            let mut dec = DataDecoder::new(caps).unwrap();
            for (block, shrinks) in &blocks {
                let message = send(&mut enc, block);
                // Blocks a frame makes smaller go as zstd frames when
                // granted; the rest as DATA_CHECKED or DATA.
                let zstd = caps.contains(Caps::ZSTD) && *shrinks;
                let expected = match (zstd, caps.contains(Caps::CHECKSUM)) {
                    (true, _) => response::DATA_ZSTD,
                    (false, true) => response::DATA_CHECKED,
                    (false, false) => response::DATA,
                };
                assert_eq!(message[0], expected, "{caps}, a block of {}", block.len());
                if zstd {
                    assert!(message.len() < block.len() / 2, "{caps}: {} of {}", message.len(), block.len());
                }
                assert_eq!(&receive(&mut dec, &message, Some(block.len() as u32)).unwrap(), block, "{caps}");
                assert_eq!(&receive(&mut dec, &message, None).unwrap(), block, "{caps}");
                // A decoder granted everything reads every form.
                assert_eq!(&receive(&mut DataDecoder::new(Caps::SUPPORTED).unwrap(), &message, None).unwrap(), block);
            }
        }
    }

    #[test]
    fn blocks_that_do_not_shrink_are_tried_less_and_less_often() {
        let mut backoff = Backoff::default();
        let mut tried = Vec::new();
        for i in 0..140 {
            if backoff.try_next() {
                tried.push(i);
                backoff.tried(1000, 1000);
            }
        }
        assert_eq!(tried, [0, 2, 5, 10, 19, 36, 69, 102, 135]);
        // A block that shrinks by an eighth or more starts over.
        while !backoff.try_next() {}
        backoff.tried(1000, 800);
        assert!(backoff.try_next());
        backoff.tried(1000, 1000);
        assert!(!backoff.try_next(), "one block skipped after a first miss");
        assert!(backoff.try_next());
    }

    #[test]
    fn compression_stops_on_noise_and_comes_back_with_data_that_shrinks() {
        let compressed = |message: &[u8]| message[0] == response::DATA_ZSTD;
        let mut enc = DataEncoder::new(Caps::ZSTD);
        assert!((0..40).all(|_| compressed(&send(&mut enc, &compressible(65536)))), "compressible data: every block");
        for seed in 0..100 {
            assert!(!compressed(&send(&mut enc, &noise(65536, seed))));
        }
        let forms: Vec<bool> = (0..40).map(|_| compressed(&send(&mut enc, &compressible(65536)))).collect();
        let first = forms.iter().position(|&c| c).expect("compressed again");
        assert!(first <= MAX_SKIP as usize, "after {first} blocks");
        assert!(forms[first..].iter().all(|&c| c));
        // A frame barely smaller is sent, and counts as a miss.
        let mut barely = noise(65536, 7);
        barely[..2048].fill(0);
        assert!(compressed(&send(&mut enc, &barely)));
        assert!(!compressed(&send(&mut enc, &compressible(65536))), "skipped after a miss");
        assert!(compressed(&send(&mut enc, &compressible(65536))));
    }

    #[test]
    fn stock_data_is_the_code_then_the_block_written_in_place() {
        // A file block as the donor reads it: a page of head room.
        let block = compressible(10_000);
        let head = 4096;
        let mut area = vec![0xEEu8; head + block.len()];
        area[head..].copy_from_slice(&block);
        let mut packed = Vec::new();
        for caps in [Caps::NONE, Caps::CHECKSUM] {
            let mut enc = DataEncoder::new(caps);
            let start = match enc.encode(&mut area, head, &mut packed).unwrap() {
                Encoded::InPlace { start } => start,
                Encoded::Packed => panic!("{caps}: compressed without zstd granted"),
            };
            assert!(area[..start].iter().all(|&b| b == 0xEE), "{caps}: bytes before the head changed");
            assert_eq!(&area[head..], &block[..], "{caps}: the block changed");
            if caps == Caps::NONE {
                assert_eq!(start, head - 1);
                let mut stock = vec![response::DATA];
                stock.extend_from_slice(&block);
                assert_eq!(area[start..], stock[..], "stock DATA is [3] + block");
            } else {
                assert_eq!(start, head - 5);
                assert_eq!(area[start], response::DATA_CHECKED);
                assert_eq!(area[start + 1..head], block_checksum(&block).to_le_bytes());
            }
        }
    }

    #[test]
    fn a_checked_block_carries_its_crc32c() {
        let message = send(&mut DataEncoder::new(Caps::CHECKSUM), b"123456789");
        // The CRC-32C check value of "123456789", little-endian.
        assert_eq!(message[..5], [response::DATA_CHECKED, 0x83, 0x92, 0x06, 0xE3]);
        assert_eq!(&message[5..], b"123456789");
        let dec = DataDecoder::new(Caps::CHECKSUM).unwrap();
        assert_eq!(dec.decode(&message, Some(9)), Ok(Block::Plain(b"123456789")));
    }

    #[test]
    fn a_zstd_message_is_its_code_the_length_and_a_checksummed_frame() {
        let block = compressible(65536);
        let message = send(&mut DataEncoder::new(Caps::ZSTD), &block);
        assert_eq!(message[0], response::DATA_ZSTD);
        assert_eq!(message[1..5], 65536u32.to_le_bytes());
        assert!(message.len() < block.len() / 4);
        assert_eq!(zstd::bulk::decompress(&message[5..], 65536).unwrap(), block);
        // The frame header descriptor's Content_Checksum_flag.
        assert_ne!(message[5 + 4] & 0x04, 0, "the frame carries a checksum");
        let dec = DataDecoder::new(Caps::ZSTD).unwrap();
        assert_eq!(dec.decode(&message, Some(65536)), Ok(Block::Zstd { frame: &message[5..], len: 65536 }));
        assert_eq!(dec.decode(&message, None).unwrap().len(), 65536);
    }

    #[test]
    fn incompressible_blocks_stay_plain_and_packed_stays_empty() {
        let block = noise(4096, 7);
        for caps in [Caps::ZSTD, Caps::SUPPORTED] {
            let mut enc = DataEncoder::new(caps);
            let mut area = vec![0u8; HEAD_ROOM + block.len()];
            area[HEAD_ROOM..].copy_from_slice(&block);
            let mut packed = b"old".to_vec();
            let start = if caps.contains(Caps::CHECKSUM) { 0 } else { HEAD_ROOM - 1 };
            assert_eq!(enc.encode(&mut area, HEAD_ROOM, &mut packed), Ok(Encoded::InPlace { start }), "{caps}");
            assert!(packed.is_empty());
        }
    }

    #[test]
    fn a_block_without_head_room_is_refused() {
        for caps in ALL_CAPS {
            let mut enc = DataEncoder::new(caps);
            let mut packed = Vec::new();
            let mut area = compressible(4100);
            assert_eq!(enc.encode(&mut area, HEAD_ROOM - 1, &mut packed), Err(DataError::NoRoom), "{caps}");
            assert_eq!(enc.encode(&mut area, 0, &mut packed), Err(DataError::NoRoom), "{caps}");
            assert_eq!(enc.encode(&mut area, 4101, &mut packed), Err(DataError::NoRoom), "{caps}");
            assert_eq!(area, compressible(4100), "{caps}: nothing written");
            // An empty block right at the end of its area is a message.
            assert!(enc.encode(&mut area, 4100, &mut packed).is_ok(), "{caps}");
        }
    }

    #[test]
    fn a_wrong_announced_length_is_refused_in_every_form() {
        let block = compressible(65536);
        for caps in [Caps::NONE, Caps::CHECKSUM, Caps::ZSTD] {
            let message = send(&mut DataEncoder::new(caps), &block);
            let mut dec = DataDecoder::new(caps).unwrap();
            for wrong in [0, 1, 65535, 65537, u32::MAX] {
                assert_eq!(receive(&mut dec, &message, Some(wrong)), Err(DataError::Length), "{caps}, announced {wrong}");
            }
        }
        // A checked block of the wrong length and a wrong checksum: the
        // length is what is reported.
        let mut message = send(&mut DataEncoder::new(Caps::CHECKSUM), b"abc");
        message[1] ^= 1;
        assert_eq!(DataDecoder::new(Caps::CHECKSUM).unwrap().decode(&message, Some(4)), Err(DataError::Length));
    }

    #[test]
    fn a_corrupt_crc_is_refused_with_both_values() {
        let block = compressible(5000);
        let good = send(&mut DataEncoder::new(Caps::CHECKSUM), &block);
        let dec = DataDecoder::new(Caps::CHECKSUM).unwrap();
        let crc = block_checksum(&block);
        // Damage to the sent checksum, and to the block.
        let mut bad_crc = good.clone();
        bad_crc[2] ^= 0x10;
        let sent = u32::from_le_bytes(bad_crc[1..5].try_into().unwrap());
        assert_eq!(dec.decode(&bad_crc, Some(5000)), Err(DataError::Checksum { sent, received: crc }));
        for at in (5..good.len()).step_by(97) {
            let mut bad_block = good.clone();
            bad_block[at] ^= 0x01;
            match dec.decode(&bad_block, None) {
                Err(DataError::Checksum { sent, received }) => assert_eq!((sent, received), (crc, block_checksum(&bad_block[5..]))),
                other => panic!("damage at {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_frame_that_is_damaged_or_lies_about_its_length_is_refused() {
        let block = vec![7u8; 10_000];
        let message = send(&mut DataEncoder::new(Caps::ZSTD), &block);
        assert_eq!(message[0], response::DATA_ZSTD);
        let frame = &message[5..];
        let mut d = DataDecoder::new(Caps::ZSTD).unwrap();
        // Expanded into less than the frame holds: nothing written past.
        let mut short = vec![0u8; 9_999];
        assert_eq!(d.expand(frame, &mut short), Err(DataError::Frame));
        // Into more.
        let mut long = vec![0u8; 10_001];
        assert_eq!(d.expand(frame, &mut long), Err(DataError::Frame));
        // A head that announces another length than the frame expands to:
        // the message decodes (with that length announced), the frame does
        // not expand to it.
        for lie in [9_999u32, 10_001, 0] {
            let mut lying = message.clone();
            lying[1..5].copy_from_slice(&lie.to_le_bytes());
            assert_eq!(receive(&mut d, &lying, Some(lie)), Err(DataError::Frame), "announced {lie}");
        }
        // One damaged byte anywhere in the frame: the frame's checksum
        // catches it even where the damage still decodes to a block of the
        // right size.
        for at in 5..message.len() {
            let mut damaged = message.clone();
            damaged[at] ^= 0x01;
            assert_eq!(receive(&mut d, &damaged, Some(10_000)), Err(DataError::Frame), "damage at {at}");
        }
        // Garbage and a cut frame.
        assert_eq!(d.expand(b"not zstd at all", &mut [0u8; 15]), Err(DataError::Frame));
        assert_eq!(d.expand(&frame[..frame.len() - 1], &mut [0u8; 10_000]), Err(DataError::Frame));
        assert_eq!(receive(&mut d, &message[..message.len() - 1], Some(10_000)), Err(DataError::Frame));
        // The good one, after all that.
        assert_eq!(receive(&mut d, &message, Some(10_000)), Ok(block));
    }

    #[test]
    fn forms_not_granted_and_other_messages_are_not_data() {
        let checked = send(&mut DataEncoder::new(Caps::CHECKSUM), b"block");
        let zstd = send(&mut DataEncoder::new(Caps::ZSTD), &compressible(5000));
        let plain = send(&mut DataEncoder::new(Caps::NONE), b"block");
        assert_eq!((checked[0], zstd[0], plain[0]), (response::DATA_CHECKED, response::DATA_ZSTD, response::DATA));
        for caps in ALL_CAPS {
            let dec = DataDecoder::new(caps).unwrap();
            assert_eq!(dec.decode(&plain, Some(5)), Ok(Block::Plain(b"block")), "{caps}: DATA is always data");
            assert_eq!(dec.decode(&checked, None).is_ok(), caps.contains(Caps::CHECKSUM), "{caps}");
            assert_eq!(dec.decode(&zstd, None).is_ok(), caps.contains(Caps::ZSTD), "{caps}");
            if !caps.contains(Caps::CHECKSUM) {
                assert_eq!(dec.decode(&checked, None), Err(DataError::NotData), "{caps}");
            }
            if !caps.contains(Caps::ZSTD) {
                assert_eq!(dec.decode(&zstd, None), Err(DataError::NotData), "{caps}");
            }
            for other in [&[][..], &[response::DATA_DESC, 12, 0, 1][..], &[response::COMPLETE][..], &[response::ERROR, 1, 0, 0, 0][..], &[0xC4, 1][..]] {
                assert_eq!(dec.decode(other, None), Err(DataError::NotData), "{caps}: {other:?}");
            }
        }
        // A decoder without zstd has nothing to expand with.
        let mut none = DataDecoder::new(Caps::CHECKSUM).unwrap();
        assert_eq!(none.expand(&zstd[5..], &mut vec![0u8; 5000]), Err(DataError::Malformed("compressed data without zstd")));
    }

    #[test]
    fn truncated_bodies_are_malformed() {
        let dec = DataDecoder::new(Caps::SUPPORTED).unwrap();
        for cut in 0..4 {
            let mut checked = vec![response::DATA_CHECKED];
            checked.extend(std::iter::repeat_n(0u8, cut));
            assert_eq!(dec.decode(&checked, None), Err(DataError::Malformed("checked data")), "{cut}");
            assert_eq!(dec.decode(&checked, Some(0)), Err(DataError::Malformed("checked data")), "{cut}");
            let mut zstd = vec![response::DATA_ZSTD];
            zstd.extend(std::iter::repeat_n(0u8, cut));
            assert_eq!(dec.decode(&zstd, None), Err(DataError::Malformed("compressed data")), "{cut}");
        }
        // Bodies of exactly their head: an empty checked block (CRC-32C of
        // nothing is 0); no frame at all, which zstd expands to nothing (an
        // empty block: no sender of ours makes one, an empty block goes as
        // it is), and only to nothing.
        assert_eq!(dec.decode(&[response::DATA_CHECKED, 0, 0, 0, 0], Some(0)), Ok(Block::Plain(&[])));
        assert_eq!(dec.decode(&[response::DATA_ZSTD, 0, 0, 0, 0], Some(0)), Ok(Block::Zstd { frame: &[], len: 0 }));
        let mut zstd_only = DataDecoder::new(Caps::ZSTD).unwrap();
        assert_eq!(zstd_only.expand(&[], &mut []), Ok(()));
        assert_eq!(zstd_only.expand(&[], &mut [0u8; 1]), Err(DataError::Frame));
        // An empty DATA block is the stock protocol's.
        assert_eq!(dec.decode(&[response::DATA], Some(0)), Ok(Block::Plain(&[])));
        assert!(Block::Plain(&[]).is_empty());
    }

    #[test]
    fn blocks_beyond_max_block_are_refused_or_sent_plain() {
        let dec = DataDecoder::new(Caps::ZSTD).unwrap();
        let mut huge = vec![response::DATA_ZSTD];
        huge.extend_from_slice(&(MAX_BLOCK as u32 + 1).to_le_bytes());
        huge.extend_from_slice(b"frame");
        assert_eq!(dec.decode(&huge, None), Err(DataError::Length));
        assert_eq!(dec.decode(&huge, Some(MAX_BLOCK as u32 + 1)), Err(DataError::Length));
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(dec.decode(&huge, None), Err(DataError::Length));
        huge[1..5].copy_from_slice(&(MAX_BLOCK as u32).to_le_bytes());
        assert_eq!(dec.decode(&huge, None), Ok(Block::Zstd { frame: b"frame", len: MAX_BLOCK }));
        let mut d = DataDecoder::new(Caps::ZSTD).unwrap();
        assert_eq!(d.expand(b"frame", &mut vec![0u8; MAX_BLOCK + 1]), Err(DataError::Length));
        // A block beyond MAX_BLOCK goes uncompressed, however compressible.
        let mut enc = DataEncoder::new(Caps::SUPPORTED);
        let mut area = vec![0u8; HEAD_ROOM + MAX_BLOCK + 1];
        let mut packed = Vec::new();
        assert_eq!(enc.encode(&mut area, HEAD_ROOM, &mut packed), Ok(Encoded::InPlace { start: 0 }));
        assert_eq!(area[0], response::DATA_CHECKED);
        // At MAX_BLOCK it is compressed.
        assert_eq!(enc.encode(&mut area[1..], HEAD_ROOM, &mut packed), Ok(Encoded::Packed));
        assert_eq!(packed[1..5], (MAX_BLOCK as u32).to_le_bytes());
    }

    #[test]
    fn error_texts_are_the_ones_a_clone_reports() {
        assert_eq!(DataError::NotData.to_string(), "Wrong Clone RPC response, expecting data packet COM_RES_DATA");
        assert_eq!(DataError::Malformed("checked data").to_string(), "Wrong Clone RPC: checked data");
        assert_eq!(DataError::Malformed("compressed data").to_string(), "Wrong Clone RPC: compressed data");
        assert_eq!(DataError::Length.to_string(), "Wrong Clone RPC: data length differs from its descriptor");
        assert_eq!(
            DataError::Checksum { sent: 0xE306_9283, received: 1 }.to_string(),
            "Data fails its checksum (CRC-32C 0xe3069283 sent, 0x00000001 received)"
        );
        assert_eq!(DataError::Frame.to_string(), "Compressed data does not expand to its length or fails its checksum");
        assert_eq!(DataError::NoRoom.to_string(), "a data block without room for its head");
        let boxed: Box<dyn std::error::Error> = Box::new(DataError::Length);
        assert!(boxed.to_string().contains("descriptor"));
    }

    #[test]
    fn stream_messages_are_descriptors_and_data_of_any_form() {
        for code in [response::DATA_DESC, response::DATA, response::DATA_ZSTD, response::DATA_CHECKED, response::DATA_REUSED] {
            assert!(is_stream_message(&[code]), "{code}");
            assert!(is_stream_message(&[code, 1, 2]), "{code}");
        }
        for code in [response::LOCS, response::PLUGIN, response::COMPLETE, response::ERROR, response::CONFIG_V4, 0xC4] {
            assert!(!is_stream_message(&[code, 0]), "{code}");
        }
        assert!(!is_stream_message(&[]));
    }

    /// Random and mutated messages, read by decoders of every granted set
    /// with and without an announced length: decoding returns, never
    /// panics, a block read as it is has the announced length and encodes
    /// back to the same message, and a frame expands only to its length.
    #[test]
    fn random_and_mutated_data_messages_never_panic() {
        let mut next = xorshift();
        let valid = [
            send(&mut DataEncoder::new(Caps::NONE), b"hello, donor"),
            send(&mut DataEncoder::new(Caps::NONE), b""),
            send(&mut DataEncoder::new(Caps::CHECKSUM), b"123456789"),
            send(&mut DataEncoder::new(Caps::CHECKSUM), b""),
            send(&mut DataEncoder::new(Caps::ZSTD), &compressible(3000)),
            send(&mut DataEncoder::new(Caps::SUPPORTED), &compressible(1000)),
        ];
        assert_eq!(valid.iter().map(|m| m[0]).collect::<Vec<_>>(), [3, 3, 0xC2, 0xC2, 0xC1, 0xC1]);
        let mut decoders: Vec<DataDecoder> = ALL_CAPS.iter().map(|&c| DataDecoder::new(c).unwrap()).collect();
        let mut stock = DataEncoder::new(Caps::NONE);
        let mut checked = DataEncoder::new(Caps::CHECKSUM);
        let codes = [response::DATA, response::DATA_CHECKED, response::DATA_ZSTD];
        let (mut plain, mut zstd, mut expanded) = (0, 0, 0);
        for round in 0..20_000 {
            let mut packet = if round % 2 == 0 {
                let len = (next() % 40) as usize;
                let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                if !p.is_empty() && round % 4 == 0 {
                    p[0] = codes[(next() % 3) as usize];
                }
                p
            } else {
                valid[(next() % valid.len() as u64) as usize].clone()
            };
            for _ in 0..(next() % 3) {
                if packet.is_empty() {
                    break;
                }
                let i = (next() % packet.len() as u64) as usize;
                match next() % 4 {
                    0 => packet.truncate(i),
                    _ => packet[i] = next() as u8,
                }
            }
            let announced = match next() % 3 {
                0 => None,
                1 => Some(packet.len().saturating_sub(1 + 4 * usize::from(packet.first() != Some(&response::DATA))) as u32),
                _ => Some((next() % 64) as u32),
            };
            for dec in decoders.iter_mut() {
                match dec.decode(&packet, announced) {
                    Ok(Block::Plain(block)) => {
                        plain += 1;
                        assert!(announced.is_none_or(|a| a as usize == block.len()));
                        let enc = if packet[0] == response::DATA { &mut stock } else { &mut checked };
                        assert_eq!(send(enc, block), packet, "read as it is, sent as it was");
                    }
                    Ok(Block::Zstd { frame, len }) => {
                        zstd += 1;
                        assert_eq!(packet[0], response::DATA_ZSTD);
                        assert!(announced.is_none_or(|a| a as usize == len) && len <= MAX_BLOCK);
                        if len <= 1 << 16 {
                            let mut out = vec![0u8; len];
                            if dec.expand(frame, &mut out).is_ok() {
                                expanded += 1;
                                assert_eq!(zstd::bulk::decompress(frame, len).ok(), Some(out));
                            }
                        }
                    }
                    Ok(Block::Reused { len, .. }) => {
                        assert_eq!(packet[0], response::DATA_REUSED);
                        assert!(announced == Some(len as u32) && packet.len() == 1 + DIGEST_LEN);
                    }
                    Err(_) => {}
                }
            }
        }
        // Every path was taken.
        assert!(plain > 1000 && zstd > 100 && expanded > 10, "{plain} plain, {zstd} frames, {expanded} expanded");
    }
}
