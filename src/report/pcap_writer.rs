//! Writes frames back out, byte for byte, with their original timestamps: a classic
//! nanosecond pcap when the inputs have one link type and every time fits its 32-bit
//! seconds (1970 to 2106), a pcapng otherwise (one interface per link type; a classic pcap
//! has room for only one, and pcapng's 64-bit nanosecond count holds any time resetscope
//! reads). Frames are streamed to the file.
//!
//! The header is written before the first frame, so what it must cover is known from the
//! first pass ([`Shape`]): its snap length is at least the largest frame read (a classic
//! pcap reader, resetscope's included, calls a record longer than the snap length damage).
//! Should a frame still not fit (the input changed between the passes), it is cut to the
//! snap length, its wire length kept, and counted in [`Written::misfits`].

use crate::source::{FileStats, RawPacket};
use crate::time::Timestamp;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The largest frame Wireshark and tshark accept on any link type that carries IP
/// (`WTAP_MAX_PACKET_SIZE_STANDARD`), in pcap and pcapng alike; the smallest snap length
/// written.
pub const WIRESHARK_MAX_FRAME: u32 = 262_144;

/// What the frames to be written are like, known before the first one.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Their link types.
    pub linktypes: Vec<u32>,
    /// The largest captured length.
    pub max_caplen: u32,
    /// The earliest and latest time.
    pub span: Option<(Timestamp, Timestamp)>,
}

impl Shape {
    /// The shape of everything the first pass read from `inputs`.
    pub fn of(inputs: &[FileStats]) -> Shape {
        let mut linktypes: Vec<u32> = inputs
            .iter()
            .flat_map(|i| i.linktypes.iter().copied())
            .collect();
        linktypes.sort_unstable();
        linktypes.dedup();
        let span = inputs
            .iter()
            .filter_map(|i| i.time_span)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        Shape {
            linktypes,
            max_caplen: inputs.iter().map(|i| i.max_caplen).max().unwrap_or(0),
            span,
        }
    }

    /// True when a classic pcap holds these frames: one link type, every time in 1970–2106.
    fn fits_classic_pcap(&self) -> bool {
        let secs = |t: Timestamp| t.0.div_euclid(1_000_000_000);
        self.linktypes.len() <= 1
            && self
                .span
                .is_none_or(|(lo, hi)| secs(lo) >= 0 && secs(hi) <= u32::MAX as i64)
    }
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Frames written.
    pub frames: u64,
    /// Frames longer than [`WIRESHARK_MAX_FRAME`]: resetscope reads them back, Wireshark
    /// refuses them.
    pub over_wireshark_limit: u64,
    /// Frames that did not fit the header chosen from the first pass (cut to the snap
    /// length, or a time clamped); 0 unless the input changed between the passes.
    pub misfits: u64,
}

/// Writes an extract.
pub struct PcapWriter {
    out: BufWriter<File>,
    /// pcapng interface ids by link type; empty for classic pcap.
    interfaces: Vec<u32>,
    snaplen: u32,
    written: Written,
}

impl PcapWriter {
    /// Creates the file for frames of the given [`Shape`] (`-` is standard output).
    pub fn create(path: &Path, shape: &Shape) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(crate::source::create_output(path)?);
        let snaplen = shape.max_caplen.max(WIRESHARK_MAX_FRAME);
        let written = Written::default();
        if shape.fits_classic_pcap() {
            let lt = shape.linktypes.first().copied().unwrap_or(1);
            out.write_all(&0xa1b2_3c4du32.to_le_bytes())?; // nanosecond resolution
            out.write_all(&2u16.to_le_bytes())?;
            out.write_all(&4u16.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&0u32.to_le_bytes())?;
            out.write_all(&snaplen.to_le_bytes())?;
            out.write_all(&lt.to_le_bytes())?;
            return Ok(PcapWriter {
                out,
                interfaces: Vec::new(),
                snaplen,
                written,
            });
        }
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut out, 0x0A0D_0D0A, &shb)?;
        let linktypes = if shape.linktypes.is_empty() {
            vec![1]
        } else {
            shape.linktypes.clone()
        };
        for lt in &linktypes {
            let mut idb = Vec::new();
            idb.extend_from_slice(&(*lt as u16).to_le_bytes());
            idb.extend_from_slice(&0u16.to_le_bytes());
            idb.extend_from_slice(&snaplen.to_le_bytes());
            // if_tsresol (code 9, length 1) = 9: nanoseconds; then opt_endofopt.
            idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            block(&mut out, 1, &idb)?;
        }
        Ok(PcapWriter {
            out,
            interfaces: linktypes,
            snaplen,
            written,
        })
    }

    /// Appends one frame.
    pub fn write(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        let mut data = p.data;
        if data.len() > self.snaplen as usize {
            data = &data[..self.snaplen as usize];
            self.written.misfits += 1;
        }
        self.written.frames += 1;
        if data.len() > WIRESHARK_MAX_FRAME as usize {
            self.written.over_wireshark_limit += 1;
        }
        if self.interfaces.is_empty() {
            let secs = p.ts.0.div_euclid(1_000_000_000);
            let nanos = p.ts.0.rem_euclid(1_000_000_000) as u32;
            let secs = u32::try_from(secs).unwrap_or_else(|_| {
                self.written.misfits += 1;
                if secs < 0 {
                    0
                } else {
                    u32::MAX
                }
            });
            self.out.write_all(&secs.to_le_bytes())?;
            self.out.write_all(&nanos.to_le_bytes())?;
            self.out.write_all(&(data.len() as u32).to_le_bytes())?;
            self.out.write_all(&p.orig_len.to_le_bytes())?;
            return self.out.write_all(data);
        }
        let iface = self
            .interfaces
            .iter()
            .position(|l| *l == p.linktype)
            .unwrap_or(0) as u32;
        // A time before 1970 is written as a negative count, as resetscope reads it back.
        let t = p.ts.0 as u64;
        let mut epb = Vec::with_capacity(24 + data.len());
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((t >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(t as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&p.orig_len.to_le_bytes());
        epb.extend_from_slice(data);
        epb.resize(epb.len().next_multiple_of(4), 0);
        block(&mut self.out, 6, &epb)
    }

    /// Flushes the file; says what was written.
    pub fn finish(mut self) -> io::Result<Written> {
        self.out.flush()?;
        Ok(self.written)
    }
}

fn block(w: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let len = 12 + body.len() as u32;
    w.write_all(&kind.to_le_bytes())?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&len.to_le_bytes())
}
