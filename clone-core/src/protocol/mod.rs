//! The COM_CLONE wire format between a recipient and a donor: the payloads
//! of the commands the recipient sends and of the responses the donor sends
//! back (framing, TLS and compression belong to the server's clone_protocol
//! service). Byte-compatible with the stock plugin of MySQL 9.7.4. Pure
//! encode/decode: every length and count read from the network is checked
//! before use, and a malformed message is an error, never a panic.

pub mod data;
pub mod extension;
pub mod innodb;

/// A fixed-seed xorshift generator for the tests that feed the decoders
/// random and mutated input.
#[cfg(test)]
pub(crate) fn xorshift() -> impl FnMut() -> u64 {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Protocol versions; the recipient offers the newest, the donor answers
/// with min(offered, newest it knows).
/// (0x0100, the first, is implied: every peer speaks it.)
/// The plugin list carries shared-object names (`PluginV2`).
pub const VERSION_V2: u32 = 0x0101;
/// The donor sends `ConfigV3` (its network-failure timeout).
pub const VERSION_V3: u32 = 0x0102;
/// The donor sends `ConfigV4` (version and maturity as JSON).
pub const VERSION_V4: u32 = 0x0103;
pub const VERSION_CURRENT: u32 = VERSION_V4;

/// Bit of the DDL word set when the recipient does not want the donor to
/// block DDL (clone_block_ddl = OFF); the rest is clone_ddl_timeout.
pub const NO_BACKUP_LOCK_FLAG: u32 = 0x8000_0000;

/// Command codes (first byte of a command packet).
pub mod command {
    pub const INIT: u8 = 1;
    pub const ATTACH: u8 = 2;
    pub const REINIT: u8 = 3;
    pub const EXECUTE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const EXIT: u8 = 6;
    /// Ours only, with `Caps::REUSE` granted: part of the manifest of the
    /// recipient's kept copy (`crate::reuse::Manifest`), after INIT.
    pub const MANIFEST: u8 = super::extension::MAGIC;
    /// Ours only, with `Caps::REUSE` granted, on the auxiliary connection:
    /// a block the recipient could not take from its own copy (it changed
    /// since it was digested), read again by the donor and sent as DATA.
    pub const FETCH: u8 = 0xC2;
}

/// Response codes (first byte of a response packet).
pub mod response {
    pub const LOCS: u8 = 1;
    pub const DATA_DESC: u8 = 2;
    pub const DATA: u8 = 3;
    pub const PLUGIN: u8 = 4;
    pub const CONFIG: u8 = 5;
    pub const COLLATION: u8 = 6;
    pub const PLUGIN_V2: u8 = 7;
    pub const CONFIG_V3: u8 = 8;
    pub const CONFIG_V4: u8 = 9;
    pub const COMPLETE: u8 = 99;
    pub const ERROR: u8 = 100;
    /// Ours only, when granted (see `extension` and `data`): a data block
    /// as a zstd frame.
    pub const DATA_ZSTD: u8 = super::extension::MAGIC;
    /// Ours only, when granted: a data block with its CRC-32C.
    pub const DATA_CHECKED: u8 = 0xC2;
    /// Ours only, when granted: a block the recipient holds, by its digest.
    pub const DATA_REUSED: u8 = 0xC3;
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    Truncated(&'static str),
    TrailingBytes(&'static str),
    UnknownCode(u8),
    /// A data message (DATA, DATA_CHECKED or DATA_ZSTD, the code given):
    /// `data::DataDecoder` reads those, with their length and checksum
    /// checks, not `Response::decode`.
    DataMessage(u8),
}

/// A storage engine's locator: its legacy type id and opaque bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator<'a> {
    pub db_type: u8,
    pub bytes: &'a [u8],
}

/// INIT, ATTACH and REINIT share one layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPayload<'a> {
    pub version: u32,
    pub ddl_word: u32,
    pub locators: Vec<Locator<'a>>,
}

impl InitPayload<'_> {
    /// Whether the donor should take the backup lock (block DDL).
    pub fn block_ddl(&self) -> bool {
        self.ddl_word & NO_BACKUP_LOCK_FLAG == 0
    }

    pub fn ddl_timeout(&self) -> u32 {
        self.ddl_word & !NO_BACKUP_LOCK_FLAG
    }
}

/// The DDL word sent in INIT/ATTACH/REINIT.
pub fn ddl_word(block_ddl: bool, ddl_timeout: u32) -> u32 {
    let timeout = ddl_timeout & !NO_BACKUP_LOCK_FLAG;
    if block_ddl {
        timeout
    } else {
        timeout | NO_BACKUP_LOCK_FLAG
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Init(InitPayload<'a>),
    Attach(InitPayload<'a>),
    Reinit(InitPayload<'a>),
    Execute,
    Ack {
        error: i32,
        locator: Locator<'a>,
        descriptor: &'a [u8],
    },
    Exit,
    /// A part of a manifest, opaque here (`crate::reuse::Manifest::take`).
    Manifest(&'a [u8]),
    /// A block of the file `name` of the clone `locator` names, `len`
    /// bytes at `offset`.
    Fetch {
        locator: Locator<'a>,
        name: &'a [u8],
        offset: u64,
        len: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    Locators { version: u32, locators: Vec<Locator<'a>> },
    DataDesc { db_type: u8, loc_index: u8, descriptor: &'a [u8] },
    Plugin { name: &'a [u8] },
    PluginV2 { name: &'a [u8], soname: &'a [u8] },
    Config { key: &'a [u8], value: &'a [u8] },
    ConfigV3 { key: &'a [u8], value: &'a [u8] },
    ConfigV4 { key: &'a [u8], value: &'a [u8] },
    Collation { name: &'a [u8] },
    Complete,
    Error { code: i32, message: &'a [u8] },
}

/// A cursor over a received payload that checks every read.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(self.what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u32 length followed by that many bytes.
    fn counted(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    fn locator(&mut self) -> Result<Locator<'a>, DecodeError> {
        let db_type = self.u8()?;
        let bytes = self.counted()?;
        Ok(Locator { db_type, bytes })
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.what))
        }
    }
}

fn split_code(packet: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    packet.split_first().map(|(c, rest)| (*c, rest)).ok_or(DecodeError::Empty)
}

fn decode_init(body: &[u8]) -> Result<InitPayload<'_>, DecodeError> {
    let mut r = Reader::new(body, "Init buffer length");
    let version = r.u32()?;
    let ddl_word = r.u32()?;
    let mut locators = Vec::new();
    while !r.buf.is_empty() {
        locators.push(r.locator()?);
    }
    Ok(InitPayload { version, ddl_word, locators })
}

impl<'a> Command<'a> {
    /// Decodes a command packet (code byte first).
    pub fn decode(packet: &'a [u8]) -> Result<Command<'a>, DecodeError> {
        let (code, body) = split_code(packet)?;
        Command::decode_parts(code, body)
    }

    /// Decodes a command from its code and its body, as the server hands
    /// them over apart.
    pub fn decode_parts(code: u8, body: &'a [u8]) -> Result<Command<'a>, DecodeError> {
        match code {
            command::INIT => Ok(Command::Init(decode_init(body)?)),
            command::ATTACH => Ok(Command::Attach(decode_init(body)?)),
            command::REINIT => Ok(Command::Reinit(decode_init(body)?)),
            command::EXECUTE => Ok(Command::Execute),
            command::EXIT => Ok(Command::Exit),
            command::MANIFEST => Ok(Command::Manifest(body)),
            command::FETCH => {
                let mut r = Reader::new(body, "Fetch length");
                let locator = r.locator()?;
                let name = r.counted()?;
                let offset = r.bytes(8)?;
                let len = r.u32()?;
                r.finish()?;
                let offset = u64::from_le_bytes(offset.try_into().map_err(|_| DecodeError::Truncated("Fetch length"))?);
                Ok(Command::Fetch { locator, name, offset, len })
            }
            command::ACK => {
                let mut r = Reader::new(body, "Init ACK length");
                let error = r.u32()? as i32;
                let locator = r.locator()?;
                let descriptor = r.counted()?;
                r.finish()?;
                Ok(Command::Ack { error, locator, descriptor })
            }
            other => Err(DecodeError::UnknownCode(other)),
        }
    }

    /// Encodes the command into a packet payload (code byte first).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.code()];
        self.encode_body(&mut out);
        out
    }

    /// The command's code and its body, for a service that takes them
    /// apart (`encode` puts the code before the body).
    pub fn encode_parts(&self) -> (u8, Vec<u8>) {
        let mut body = Vec::new();
        self.encode_body(&mut body);
        (self.code(), body)
    }

    /// The command's code (the first byte of its packet).
    pub fn code(&self) -> u8 {
        match self {
            Command::Init(_) => command::INIT,
            Command::Attach(_) => command::ATTACH,
            Command::Reinit(_) => command::REINIT,
            Command::Execute => command::EXECUTE,
            Command::Ack { .. } => command::ACK,
            Command::Exit => command::EXIT,
            Command::Manifest(_) => command::MANIFEST,
            Command::Fetch { .. } => command::FETCH,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Command::Init(p) | Command::Attach(p) | Command::Reinit(p) => {
                out.extend_from_slice(&p.version.to_le_bytes());
                out.extend_from_slice(&p.ddl_word.to_le_bytes());
                for l in &p.locators {
                    put_locator(out, l);
                }
            }
            Command::Execute | Command::Exit => {}
            Command::Manifest(body) => out.extend_from_slice(body),
            Command::Fetch { locator, name, offset, len } => {
                put_locator(out, locator);
                put_counted(out, name);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&len.to_le_bytes());
            }
            Command::Ack { error, locator, descriptor } => {
                out.extend_from_slice(&error.to_le_bytes());
                put_locator(out, locator);
                put_counted(out, descriptor);
            }
        }
    }
}

fn put_counted(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_locator(out: &mut Vec<u8>, l: &Locator<'_>) {
    out.push(l.db_type);
    put_counted(out, l.bytes);
}

impl<'a> Response<'a> {
    /// Decodes a response packet (code byte first).
    pub fn decode(packet: &'a [u8]) -> Result<Response<'a>, DecodeError> {
        let (code, body) = split_code(packet)?;
        let key_value = |what| -> Result<(&'a [u8], &'a [u8]), DecodeError> {
            let mut r = Reader::new(body, what);
            let key = r.counted()?;
            let value = r.counted()?;
            r.finish()?;
            Ok((key, value))
        };
        match code {
            response::LOCS => {
                let mut r = Reader::new(body, "locator response");
                let version = r.u32()?;
                let mut locators = Vec::new();
                while !r.buf.is_empty() {
                    locators.push(r.locator()?);
                }
                Ok(Response::Locators { version, locators })
            }
            response::DATA_DESC => {
                let mut r = Reader::new(body, "descriptor response");
                let db_type = r.u8()?;
                let loc_index = r.u8()?;
                Ok(Response::DataDesc { db_type, loc_index, descriptor: r.rest() })
            }
            response::DATA | response::DATA_CHECKED | response::DATA_ZSTD | response::DATA_REUSED => Err(DecodeError::DataMessage(code)),
            response::PLUGIN | response::COLLATION => {
                let mut r = Reader::new(body, "name response");
                let name = r.counted()?;
                r.finish()?;
                Ok(if code == response::PLUGIN { Response::Plugin { name } } else { Response::Collation { name } })
            }
            response::PLUGIN_V2 => {
                let mut r = Reader::new(body, "plugin response");
                let name = r.counted()?;
                let soname = r.counted()?;
                r.finish()?;
                Ok(Response::PluginV2 { name, soname })
            }
            response::CONFIG => key_value("config response").map(|(key, value)| Response::Config { key, value }),
            response::CONFIG_V3 => key_value("config response").map(|(key, value)| Response::ConfigV3 { key, value }),
            response::CONFIG_V4 => key_value("config response").map(|(key, value)| Response::ConfigV4 { key, value }),
            response::COMPLETE => Ok(Response::Complete),
            response::ERROR => {
                let mut r = Reader::new(body, "error response");
                let code = r.u32()? as i32;
                Ok(Response::Error { code, message: r.rest() })
            }
            other => Err(DecodeError::UnknownCode(other)),
        }
    }

    /// Encodes the response into a packet payload (code byte first).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Response::Locators { version, locators } => {
                out.push(response::LOCS);
                out.extend_from_slice(&version.to_le_bytes());
                for l in locators {
                    put_locator(&mut out, l);
                }
            }
            Response::DataDesc { db_type, loc_index, descriptor } => {
                out.extend_from_slice(&[response::DATA_DESC, *db_type, *loc_index]);
                out.extend_from_slice(descriptor);
            }
            Response::Plugin { name } => {
                out.push(response::PLUGIN);
                put_counted(&mut out, name);
            }
            Response::Collation { name } => {
                out.push(response::COLLATION);
                put_counted(&mut out, name);
            }
            Response::PluginV2 { name, soname } => {
                out.push(response::PLUGIN_V2);
                put_counted(&mut out, name);
                put_counted(&mut out, soname);
            }
            Response::Config { key, value } | Response::ConfigV3 { key, value } | Response::ConfigV4 { key, value } => {
                out.push(match self {
                    Response::Config { .. } => response::CONFIG,
                    Response::ConfigV3 { .. } => response::CONFIG_V3,
                    _ => response::CONFIG_V4,
                });
                put_counted(&mut out, key);
                put_counted(&mut out, value);
            }
            Response::Complete => out.push(response::COMPLETE),
            Response::Error { code, message } => {
                out.push(response::ERROR);
                out.extend_from_slice(&code.to_le_bytes());
                out.extend_from_slice(message);
            }
        }
        out
    }
}

/// The donor's CONFIG_V4 value: compact JSON with these keys in this order,
/// as the stock donor writes it.
pub fn version_json(version: &str, maturity: &str) -> String {
    format!("{{\"version\":\"{}\",\"maturity\":\"{}\"}}", json_escape(version), json_escape(maturity))
}

/// Reads a string member of a flat JSON object such as the one
/// `version_json` writes (what a donor sends in CONFIG_V4).
pub fn json_string_field(json: &str, key: &str) -> Option<String> {
    let pattern = format!("\"{}\"", json_escape(key));
    let after_key = &json[json.find(&pattern)? + pattern.len()..];
    let after_colon = after_key.trim_start().strip_prefix(':')?.trim_start();
    let mut chars = after_colon.strip_prefix('"')?.chars();
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(bytes: &[u8]) -> Locator<'_> {
        Locator { db_type: 12, bytes }
    }

    #[test]
    fn init_layout_is_the_stock_one() {
        let init = Command::Init(InitPayload { version: VERSION_CURRENT, ddl_word: ddl_word(false, 300), locators: vec![loc(b"abc")] });
        let bytes = init.encode();
        assert_eq!(bytes, [1, 3, 1, 0, 0, 0x2c, 1, 0, 0x80, 12, 3, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(Command::decode(&bytes).unwrap(), init);
    }

    #[test]
    fn ddl_word_carries_lock_choice_and_timeout() {
        let p = InitPayload { version: 0, ddl_word: ddl_word(true, 7), locators: vec![] };
        assert!(p.block_ddl());
        assert_eq!(p.ddl_timeout(), 7);
        let p = InitPayload { version: 0, ddl_word: ddl_word(false, 7), locators: vec![] };
        assert!(!p.block_ddl());
        assert_eq!(p.ddl_timeout(), 7);
    }

    #[test]
    fn commands_round_trip() {
        for c in [
            Command::Attach(InitPayload { version: 0x0102, ddl_word: 5, locators: vec![loc(b""), loc(b"x")] }),
            Command::Reinit(InitPayload { version: 0x0103, ddl_word: 0, locators: vec![] }),
            Command::Execute,
            Command::Exit,
            Command::Ack { error: -5, locator: loc(b"loc"), descriptor: b"desc" },
            Command::Manifest(b"\x10digests"),
            Command::Fetch { locator: loc(b"loc"), name: b"./test/t1.ibd", offset: 1 << 40, len: 1 << 20 },
        ] {
            assert_eq!(Command::decode(&c.encode()).unwrap(), c);
        }
        let fetch = Command::Fetch { locator: loc(b"loc"), name: b"n", offset: 0, len: 1 }.encode();
        assert!(Command::decode(&fetch[..fetch.len() - 1]).is_err());
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Locators { version: 0x0103, locators: vec![loc(b"L")] },
            Response::DataDesc { db_type: 12, loc_index: 0, descriptor: b"d" },
            Response::Plugin { name: b"InnoDB" },
            Response::PluginV2 { name: b"clone", soname: b"mysql_clone.so" },
            Response::Config { key: b"version", value: b"9.7.4" },
            Response::ConfigV3 { key: b"k", value: b"" },
            Response::ConfigV4 { key: b"json_configs", value: b"{}" },
            Response::Collation { name: b"utf8mb4_0900_ai_ci" },
            Response::Complete,
            Response::Error { code: 3957, message: b"too small" },
        ] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let samples = [
            Command::Init(InitPayload { version: 1, ddl_word: 2, locators: vec![loc(b"abcdef")] }).encode(),
            Command::Ack { error: 0, locator: loc(b"abc"), descriptor: b"xyz" }.encode(),
        ];
        for s in &samples {
            for cut in 1..s.len() {
                // An INIT cut right after its header is a valid INIT without locators.
                if s[0] == command::INIT && cut == 9 {
                    continue;
                }
                assert!(Command::decode(&s[..cut]).is_err(), "cut at {cut} of {s:?}");
            }
        }
        let responses = [
            Response::PluginV2 { name: b"a", soname: b"b" }.encode(),
            Response::Config { key: b"k", value: b"v" }.encode(),
            Response::Error { code: 1, message: b"" }.encode(),
        ];
        for s in &responses {
            for cut in 1..s.len() {
                assert!(Response::decode(&s[..cut]).is_err(), "cut at {cut} of {s:?}");
            }
        }
        assert_eq!(Command::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Response::decode(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn hostile_lengths_and_codes_are_rejected() {
        // A locator claiming 4 GiB of bytes.
        let mut init = vec![command::INIT, 3, 1, 0, 0, 0, 0, 0, 0, 12];
        init.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Command::decode(&init), Err(DecodeError::Truncated("Init buffer length")));
        // ACK with bytes after the descriptor.
        let mut ack = Command::Ack { error: 0, locator: loc(b"a"), descriptor: b"b" }.encode();
        ack.push(0);
        assert_eq!(Command::decode(&ack), Err(DecodeError::TrailingBytes("Init ACK length")));
        assert_eq!(Command::decode(&[42]), Err(DecodeError::UnknownCode(42)));
        assert_eq!(Response::decode(&[77, 1, 2]), Err(DecodeError::UnknownCode(77)));
        assert!(Response::decode(&[response::DATA_DESC, 12]).is_err());
    }

    #[test]
    fn data_messages_are_not_responses_to_decode_here() {
        for code in [response::DATA, response::DATA_CHECKED, response::DATA_ZSTD] {
            assert_eq!(Response::decode(&[code]), Err(DecodeError::DataMessage(code)));
            assert_eq!(Response::decode(&[code, 1, 2, 3, 4, 5]), Err(DecodeError::DataMessage(code)));
        }
    }

    #[test]
    fn command_parts_agree_with_packets() {
        let commands = [
            Command::Init(InitPayload { version: VERSION_CURRENT, ddl_word: ddl_word(false, 300), locators: vec![loc(b"abc"), loc(b"")] }),
            Command::Attach(InitPayload { version: 0x0102, ddl_word: 5, locators: vec![loc(b"x")] }),
            Command::Reinit(InitPayload { version: 0x0103, ddl_word: 0, locators: vec![] }),
            Command::Execute,
            Command::Exit,
            Command::Ack { error: -5, locator: loc(b"loc"), descriptor: b"desc" },
        ];
        for c in commands {
            let packet = c.encode();
            let (code, body) = c.encode_parts();
            assert_eq!((code, &body[..]), (packet[0], &packet[1..]), "{c:?}");
            assert_eq!(code, c.code());
            assert_eq!(Command::decode_parts(code, &body).as_ref(), Ok(&c));
            assert_eq!(Command::decode_parts(packet[0], &packet[1..]), Command::decode(&packet));
        }
        // Errors agree too.
        for packet in [&[42u8][..], &[command::ACK, 0, 0][..], &[command::INIT, 3, 1][..]] {
            assert_eq!(Command::decode_parts(packet[0], &packet[1..]), Command::decode(packet));
        }
        assert_eq!(Command::decode_parts(command::EXECUTE, &[]), Ok(Command::Execute));
    }

    /// Random and mutated packets: decoding returns, never panics, and what
    /// decodes re-encodes to a packet that decodes the same way.
    #[test]
    fn random_and_mutated_packets_never_panic() {
        let mut next = xorshift();
        let valid = [
            Command::Init(InitPayload { version: 0x0103, ddl_word: 7, locators: vec![loc(b"abc"), loc(b"")] }).encode(),
            Command::Ack { error: 3, locator: loc(b"l"), descriptor: b"dd" }.encode(),
            Response::PluginV2 { name: b"n", soname: b"s.so" }.encode(),
            Response::Locators { version: 0x0103, locators: vec![loc(b"xyz")] }.encode(),
        ];
        for round in 0..20_000 {
            let mut packet = if round % 2 == 0 {
                let len = (next() % 40) as usize;
                (0..len).map(|_| next() as u8).collect::<Vec<u8>>()
            } else {
                valid[(next() % valid.len() as u64) as usize].clone()
            };
            if !packet.is_empty() {
                let i = (next() % packet.len() as u64) as usize;
                packet[i] = next() as u8;
            }
            if let Ok(c) = Command::decode(&packet) {
                assert_eq!(Command::decode(&c.encode()).as_ref(), Ok(&c));
            }
            if let Ok(r) = Response::decode(&packet) {
                assert_eq!(Response::decode(&r.encode()).as_ref(), Ok(&r));
            }
        }
    }

    #[test]
    fn json_fields_read_back() {
        let j = version_json("9.7.4", "LTS");
        assert_eq!(json_string_field(&j, "version").as_deref(), Some("9.7.4"));
        assert_eq!(json_string_field(&j, "maturity").as_deref(), Some("LTS"));
        assert_eq!(json_string_field(&j, "missing"), None);
        assert_eq!(json_string_field(r#"{ "version" : "a\"b" }"#, "version").as_deref(), Some("a\"b"));
        assert_eq!(json_string_field(r#"{"version":"unterminated"#, "version"), None);
        assert_eq!(json_string_field(r#"{"version":12}"#, "version"), None);
    }

    #[test]
    fn version_json_is_compact_and_ordered() {
        assert_eq!(version_json("9.7.4", "LTS"), r#"{"version":"9.7.4","maturity":"LTS"}"#);
        assert_eq!(version_json("a\"b", ""), r#"{"version":"a\"b","maturity":""}"#);
    }
}
