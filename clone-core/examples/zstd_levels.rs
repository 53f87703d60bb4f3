//! How fast and how well zstd compresses a file in the 1 MiB blocks a clone
//! sends, at the level the clone uses and at its neighbours: the
//! measurement behind `protocol::extension::ZSTD_LEVEL`.
//!
//!     cargo run --release -p clone-core --example zstd_levels -- FILE.ibd

use std::time::Instant;
use zstd::zstd_safe::{CParameter, ParamSwitch};

fn main() -> std::io::Result<()> {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: zstd_levels FILE");
        std::process::exit(2);
    };
    let data = std::fs::read(path)?;
    let data = &data[..data.len().min(256 << 20)];
    let mb = data.len() as f64 / 1e6;
    for (level, huffman_literals) in [(3, false), (1, false), (-1, false), (-1, true), (-3, true), (-5, true)] {
        let mut c = zstd::bulk::Compressor::new(level)?;
        if huffman_literals {
            c.set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Enable))?;
        }
        let start = Instant::now();
        let mut compressed = 0usize;
        for block in data.chunks(1 << 20) {
            compressed += c.compress(block)?.len();
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "level {level:3}{}: ratio {:.2}, {:.0} MB/s on one core",
            if huffman_literals { " with Huffman literals" } else { "" },
            data.len() as f64 / compressed.max(1) as f64,
            mb / seconds
        );
    }
    Ok(())
}
