//! Writes frames back out, byte for byte, with their original timestamps: a classic
//! nanosecond pcap when the inputs have one link type, a pcapng with one interface per link
//! type otherwise (a classic pcap has room for only one). Frames are streamed to the file.

use crate::source::RawPacket;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

const SNAPLEN: u32 = 262_144;

/// Writes an extract.
pub struct PcapWriter {
    out: BufWriter<File>,
    /// pcapng interface ids by link type; empty for classic pcap.
    interfaces: Vec<u32>,
}

impl PcapWriter {
    /// Creates the file for frames of the given link types (classic pcap if there is one).
    pub fn create(path: &Path, linktypes: &[u32]) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        let mut linktypes = linktypes.to_vec();
        linktypes.dedup();
        if linktypes.len() <= 1 {
            let lt = linktypes.first().copied().unwrap_or(1);
            out.write_all(&0xa1b2_3c4du32.to_le_bytes())?; // nanosecond resolution
            out.write_all(&2u16.to_le_bytes())?;
            out.write_all(&4u16.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&SNAPLEN.to_le_bytes())?;
            out.write_all(&lt.to_le_bytes())?;
            return Ok(PcapWriter {
                out,
                interfaces: Vec::new(),
            });
        }
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut out, 0x0A0D_0D0A, &shb)?;
        for lt in &linktypes {
            let mut idb = Vec::new();
            idb.extend_from_slice(&(*lt as u16).to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&SNAPLEN.to_le_bytes());
            // if_tsresol (code 9, length 1) = 9: nanoseconds; then opt_endofopt.
            idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            block(&mut out, 1, &idb)?;
        }
        Ok(PcapWriter {
            out,
            interfaces: linktypes,
        })
    }

    /// Appends one frame.
    pub fn write(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        if self.interfaces.is_empty() {
            let (secs, nanos) = (
                p.ts.0.div_euclid(1_000_000_000),
                p.ts.0.rem_euclid(1_000_000_000),
            );
            self.out.write_all(&(secs as u32).to_le_bytes())?;
            self.out.write_all(&(nanos as u32).to_le_bytes())?;
            self.out.write_all(&(p.data.len() as u32).to_le_bytes())?;
            self.out.write_all(&p.orig_len.to_le_bytes())?;
            return self.out.write_all(p.data);
        }
        let iface = self
            .interfaces
            .iter()
            .position(|l| *l == p.linktype)
            .unwrap_or(0) as u32;
        let t = p.ts.0 as u64;
        let mut epb = Vec::with_capacity(24 + p.data.len());
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(t as u32).to_le_bytes());
        epb.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.orig_len.to_le_bytes());
        epb.extend_from_slice(p.data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut self.out, 6, &epb)
    }

    /// Flushes the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn block(w: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let len = 12 + body.len() as u32;
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&len.to_le_bytes())
}
