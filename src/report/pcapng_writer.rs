//! A pcapng writer for `live -w`: one section, one interface, one Enhanced Packet Block per
//! frame, each with its packet comment (`opt_comment`) when it has one.
//!
//! Live capture puts the kernel's reason for a RST in that comment
//! ([`crate::kernel::reason::KernelReason::comment`]); Wireshark and tshark show it as
//! `frame.comment`, and `analyze` reads it back. Blocks are little-endian, timestamps in
//! microseconds (the default `if_tsresol`), as libpcap hands them on.

use crate::source::RawPacket;
use std::io::{self, Write};

/// Writes a pcapng stream.
pub struct PcapngWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface description (`linktype`, `snaplen`,
    /// and the interface's name in `if_name` when given).
    pub fn new(
        mut out: W,
        linktype: u32,
        snaplen: u32,
        if_name: Option<&str>,
    ) -> io::Result<PcapngWriter<W>> {
        let mut b = Vec::new();
        // Section Header Block: byte-order magic, version 1.0, section length unknown.
        let app = format!("resetscope {}", env!("CARGO_PKG_VERSION"));
        let mut opts = Vec::new();
        push_option(&mut opts, 4, app.as_bytes()); // shb_userappl
        push_option(&mut opts, 0, &[]);
        block(&mut b, 0x0A0D_0D0A, |body| {
            body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
            body.extend_from_slice(&1u16.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&(-1i64).to_le_bytes());
            body.extend_from_slice(&opts);
        });
        // Interface Description Block.
        let mut opts = Vec::new();
        if let Some(name) = if_name {
            push_option(&mut opts, 2, name.as_bytes()); // if_name
        }
        push_option(&mut opts, 0, &[]);
        block(&mut b, 1, |body| {
            body.extend_from_slice(&(linktype as u16).to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes());
            body.extend_from_slice(&snaplen.to_le_bytes());
            body.extend_from_slice(&opts);
        });
        out.write_all(&b)?;
        Ok(PcapngWriter { out, buf: b })
    }

    /// Appends one frame, with its comment if it has one.
    pub fn packet(&mut self, p: &RawPacket<'_>) -> io::Result<()> {
        let micros = (p.ts.0 / 1000) as u64;
        self.buf.clear();
        let mut opts = Vec::new();
        if let Some(c) = p.comment {
            push_option(&mut opts, 1, c.as_bytes()); // opt_comment
            push_option(&mut opts, 0, &[]);
        }
        block(&mut self.buf, 6, |body| {
            body.extend_from_slice(&0u32.to_le_bytes()); // interface 0
            body.extend_from_slice(&((micros >> 32) as u32).to_le_bytes());
            body.extend_from_slice(&(micros as u32).to_le_bytes());
            body.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
            body.extend_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
            body.extend_from_slice(p.data);
            body.resize(pad4(body.len()), 0);
            body.extend_from_slice(&opts);
        });
        self.out.write_all(&self.buf)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// One option: code, length, value padded to 32 bits (values over 65535 bytes are cut).
fn push_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(u16::MAX as usize)];
    out.extend_from_slice(&code.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
    out.resize(out.len() + pad4(value.len()) - value.len(), 0);
}

/// A block: type, total length, body, total length again.
fn block(out: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    body(out);
    let total = (out.len() - start + 4) as u32;
    out[start + 4..start + 8].copy_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::file::CaptureFile;
    use crate::source::FrameRef;
    use crate::time::Timestamp;

    #[test]
    fn comments_are_read_back() {
        let dir = std::env::temp_dir().join(format!("resetscope-pcapng-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.pcapng");
        let mut w = PcapngWriter::new(Vec::new(), 1, 262_144, Some("lo")).unwrap();
        let data = [0u8; 61];
        for (n, comment) in [None, Some("resetscope kernel: x"), Some("ünïcode")]
            .into_iter()
            .enumerate()
        {
            w.packet(&RawPacket {
                frame: FrameRef {
                    file: 0,
                    number: n as u64 + 1,
                },
                ts: Timestamp(1_700_000_000_123_456_000 + n as i64 * 1000),
                linktype: 1,
                orig_len: 100,
                data: &data,
                comment,
            })
            .unwrap();
        }
        std::fs::write(&path, &w.out).unwrap();
        let mut f = CaptureFile::open(&path, 0).unwrap();
        let mut seen = Vec::new();
        while let Some(p) = f.next_packet() {
            seen.push((
                p.ts,
                p.orig_len,
                p.data.len(),
                p.comment.map(str::to_string),
            ));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].0, Timestamp(1_700_000_000_123_456_000));
        assert_eq!((seen[0].1, seen[0].2), (100, 61));
        assert_eq!(seen[0].3, None);
        assert_eq!(seen[1].3.as_deref(), Some("resetscope kernel: x"));
        assert_eq!(seen[2].3.as_deref(), Some("ünïcode"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
