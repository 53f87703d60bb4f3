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
//! Granted capabilities change the data messages (see [`Caps::ZSTD`] and
//! [`Caps::CHECKSUM`]; `super::data` encodes and decodes every form), and
//! [`Caps::GTIDS`] adds one pair to the answer to INIT, and [`Caps::REUSE`]
//! one pair, one command and one data form.

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
    /// The donor's answer to INIT carries its gtid_executed (a ConfigV3
    /// pair named [`crate::recipient::GTID_EXECUTED`]): the recipient lists
    /// its own transactions that an in-place clone discards.
    pub const GTIDS: Caps = Caps(4);
    /// A resumed clone (see `crate::reuse`): the donor's answer to INIT
    /// carries its server_uuid (a ConfigV3 pair named
    /// [`crate::recipient::SERVER_UUID`]), the recipient may send the
    /// manifest of a kept copy ([`super::command::MANIFEST`]), and the donor
    /// sends a block the recipient holds as
    /// [`super::response::DATA_REUSED`].
    pub const REUSE: Caps = Caps(8);
    /// What this build knows.
    pub const SUPPORTED: Caps = Caps(Caps::ZSTD.0 | Caps::CHECKSUM.0 | Caps::GTIDS.0 | Caps::REUSE.0);

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
        let names: Vec<&str> = [(Caps::ZSTD, "zstd"), (Caps::CHECKSUM, "checksums"), (Caps::GTIDS, "GTIDs"), (Caps::REUSE, "reuse")]
            .iter()
            .filter(|(c, _)| self.contains(*c))
            .map(|(_, n)| *n)
            .collect();
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

/// The checksum of a data block sent as it is: CRC-32C, chosen by
/// measurement on 1 MiB blocks of the benchmark's t1.ibd, one core here:
/// 8.6 GB/s (SSE 4.2), against 7.3 GB/s for XXH3 and 1.4 GB/s for SHA-256
/// (SHA-NI). It is InnoDB's page checksum too.
pub fn block_checksum(block: &[u8]) -> u32 {
    crc32c::crc32c(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{VERSION_CURRENT, VERSION_V4};

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
    fn caps_read_as_names() {
        assert_eq!(Caps::SUPPORTED.to_string(), "zstd, checksums, GTIDs, reuse");
        assert_eq!(Caps::CHECKSUM.to_string(), "checksums");
        assert_eq!(Caps::NONE.to_string(), "none");
    }

    #[test]
    fn the_crc32c_of_the_check_string() {
        // The CRC-32C check value of "123456789".
        assert_eq!(block_checksum(b"123456789"), 0xE306_9283);
    }
}
