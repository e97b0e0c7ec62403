//! Reader for one pcap or pcapng file.
//!
//! A regular file is mapped into memory and its records parsed in place, with no copy
//! through `read(2)`; pages already read are handed back to the kernel as the cursor moves
//! on, so resident memory does not grow with the file. Anything that cannot be mapped is
//! streamed through `pcap-parser`'s fixed buffer instead. (A mapped file must not be cut
//! short while it is read; a file still being appended to, as `tcpdump -w` does, is read up
//! to its length when it was opened.)
//!
//! `pcap-parser` parses the records; this module keeps the per-file state the format needs
//! (the pcap header's link type and resolution; pcapng's sections, their byte order,
//! interfaces, their `if_tsresol`/`if_tsoffset` and statistics), numbers frames like
//! Wireshark (obsolete pcapng Packet Blocks, which old Wireshark versions wrote, count as
//! frames as they do there), and turns truncation and damage into a [`SourceError`] that
//! names the frame. A reader is a cursor:
//! [`CaptureFile::peek_ts`] parses the next frame without consuming it, so that
//! [`super::merge::CaptureSet`] can merge files by timestamp without copying packet bytes.

use super::backend::Backend;
use super::{FileStats, FrameRef, RawPacket, SourceError};
use crate::time::Timestamp;
use pcap_parser::pcapng::Block;
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// Initial read buffer; grows for large pcapng blocks up to [`MAX_BLOCK`].
const BUFFER: usize = 1 << 20;
/// The largest record we accept (Wireshark's limit for most link types is 256 KiB; pcapng
/// blocks may carry options, so allow more).
const MAX_BLOCK: usize = 16 << 20;
/// The largest captured length of a classic pcap record we believe (Wireshark's
/// `WTAP_MAX_PACKET_SIZE_STANDARD`); a larger one means the record header is damaged.
const MAX_CAPLEN: u32 = 262_144;

/// Link type and clock of one capture interface.
#[derive(Copy, Clone, Debug)]
struct Interface {
    linktype: u32,
    units_per_sec: u64,
    offset_secs: i64,
}

/// The next frame, parsed but not consumed: its bytes live at `start..start+len` of the
/// reader's buffer.
#[derive(Copy, Clone, Debug)]
struct Pending {
    frame: u64,
    ts: Timestamp,
    linktype: u32,
    orig_len: u32,
    start: usize,
    len: usize,
    block_len: usize,
}

/// What one call to the parser produced, owned so the reader can be used again.
enum Step {
    LegacyHeader {
        linktype: u32,
        nanos: bool,
        big_endian: bool,
        snaplen: u32,
    },
    Packet {
        ptr: usize,
        len: usize,
        ts: Timestamp,
        linktype: u32,
        orig_len: u32,
    },
    Section {
        big_endian: bool,
    },
    Interface(Interface),
    Drops {
        if_id: u32,
        drops: u64,
    },
    Skip,
    Refill,
    Eof,
    Truncated,
    TooSmall,
    Bad(String),
}

/// A pcap or pcapng file being read frame by frame.
pub struct CaptureFile {
    path: PathBuf,
    index: u16,
    reader: Backend,
    /// Classic pcap: the one interface, its byte order and snaplen.
    legacy: Option<(Interface, bool, u32)>,
    interfaces: Vec<Interface>,
    /// Byte order of the current pcapng section.
    big_endian: bool,
    /// Latest drop count per interface of the current section.
    drops: Vec<u64>,
    /// Drops of earlier sections.
    drops_done: u64,
    frames: u64,
    /// Bytes consumed from the file so far (offset of the next record).
    offset: u64,
    pending: Option<Pending>,
    to_consume: usize,
    done: bool,
    stats: FileStats,
    error: Option<SourceError>,
}

impl CaptureFile {
    /// Opens `path` and reads its header. `index` is the file's position in the input list.
    pub fn open(path: &Path, index: u16) -> Result<CaptureFile, SourceError> {
        let io = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io)?;
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut file, &mut magic).map_err(io)?;
        if n == 0 {
            return Err(SourceError::Empty {
                path: path.to_path_buf(),
            });
        }
        let format = match u32::from_le_bytes(magic) {
            0x0A0D0D0A => "pcapng",
            0xA1B2C3D4 | 0xD4C3B2A1 | 0xA1B23C4D | 0x4D3CB2A1 | 0xA1B2CD34 | 0x34CDB2A1 => "pcap",
            _ => {
                return Err(SourceError::NotACapture {
                    path: path.to_path_buf(),
                    magic: magic[..n].iter().map(|b| format!("{b:02x}")).collect(),
                })
            }
        };
        let not_a_capture = |detail: String| SourceError::NotACapture {
            path: path.to_path_buf(),
            magic: format!(
                "{} ({detail})",
                magic.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
        };
        let truncated = || SourceError::Truncated {
            path: path.to_path_buf(),
            frame: 1,
            offset: 0,
            read: 0,
        };
        // SAFETY: the map is read only; the file must not be cut short while it is read (see
        // the module documentation).
        let mapped = unsafe { memmap2::Mmap::map(&file) }
            .ok()
            .filter(|m| !m.is_empty());
        let reader = match mapped {
            Some(map) => {
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                let pcapng = format == "pcapng";
                // The file must start with a header the parser accepts.
                let head = if pcapng {
                    pcap_parser::pcapng::parse_sectionheaderblock(&map).map(|_| ())
                } else {
                    pcap_parser::parse_pcap_header(&map).map(|_| ())
                };
                match head {
                    Ok(()) => {}
                    Err(pcap_parser::nom::Err::Incomplete(_)) => return Err(truncated()),
                    Err(e) => {
                        return Err(not_a_capture(format!("{e:?}").chars().take(80).collect()))
                    }
                }
                Backend::Mapped {
                    map,
                    pos: 0,
                    released: 0,
                    pcapng,
                    big_endian: false,
                    legacy: None,
                }
            }
            // Not mappable (a pipe, /dev/stdin): stream it, with what was already read put
            // back in front, in one piece so that the parser sees a whole header at once.
            None => Backend::Stream(
                pcap_parser::create_reader(BUFFER, {
                    let mut first = vec![0u8; 64 * 1024];
                    first[..n].copy_from_slice(&magic[..n]);
                    let more = read_up_to(&mut file, &mut first[n..]).map_err(io)?;
                    first.truncate(n + more);
                    Cursor::new(first).chain(file)
                })
                .map_err(|e| match e {
                    PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                        truncated()
                    }
                    other => not_a_capture(format!("{other:?}")),
                })?,
            ),
        };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            index,
            reader,
            legacy: None,
            interfaces: Vec::new(),
            big_endian: false,
            drops: Vec::new(),
            drops_done: 0,
            frames: 0,
            offset: 0,
            pending: None,
            to_consume: 0,
            done: false,
            stats: FileStats {
                path: path.display().to_string(),
                format: format.to_string(),
                ..FileStats::default()
            },
            error: None,
        })
    }

    /// The file's position in the input list.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What has been read so far.
    pub fn stats(&self) -> FileStats {
        let mut s = self.stats.clone();
        s.interface_drops = self.drops_done + self.drops.iter().sum::<u64>();
        s
    }

    /// The damage that ended reading early, if any (taken once).
    pub fn take_error(&mut self) -> Option<SourceError> {
        self.error.take()
    }

    /// Timestamp of the next frame, parsing it if needed; `None` at the end of the file
    /// (or at damage, recorded for [`CaptureFile::take_error`]).
    pub fn peek_ts(&mut self) -> Option<Timestamp> {
        self.fill();
        self.pending.map(|p| p.ts)
    }

    /// The next frame; it stays valid until the next call on this reader.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        self.fill();
        let p = self.pending.take()?;
        self.to_consume = p.block_len;
        let data = &self.reader.data()[p.start..p.start + p.len];
        Some(RawPacket {
            frame: FrameRef {
                file: self.index,
                number: p.frame,
            },
            ts: p.ts,
            linktype: p.linktype,
            orig_len: p.orig_len,
            data,
        })
    }

    fn fill(&mut self) {
        if self.pending.is_some() || self.done {
            return;
        }
        if self.to_consume > 0 {
            self.reader.consume(self.to_consume);
            self.offset += self.to_consume as u64;
            self.to_consume = 0;
        }
        loop {
            if let Some(detail) = self
                .legacy_record_is_damaged()
                .or_else(|| self.pcapng_block_is_damaged())
            {
                self.fail_corrupt(detail);
                return;
            }
            let (consumed, step) = self.step();
            match step {
                Step::Refill => {
                    let Backend::Stream(reader) = &mut self.reader else {
                        unreachable!("a mapped file is never incomplete")
                    };
                    if reader.refill().is_err() {
                        self.fail_corrupt("read error".into());
                        return;
                    }
                    continue;
                }
                Step::TooSmall => {
                    let cap = self.reader.data().len().max(BUFFER) * 2;
                    let grown = match &mut self.reader {
                        Backend::Stream(reader) => cap <= MAX_BLOCK && reader.grow(cap),
                        Backend::Mapped { .. } => false,
                    };
                    if !grown {
                        self.fail_corrupt(format!("record larger than {} MiB", MAX_BLOCK >> 20));
                        return;
                    }
                    continue;
                }
                Step::Eof => {
                    self.done = true;
                    return;
                }
                Step::Truncated => {
                    self.done = true;
                    self.error = Some(SourceError::Truncated {
                        path: self.path.clone(),
                        frame: self.frames + 1,
                        offset: self.offset,
                        read: self.frames,
                    });
                    return;
                }
                Step::Bad(detail) => {
                    self.fail_corrupt(detail);
                    return;
                }
                Step::Packet {
                    ptr,
                    len,
                    ts,
                    linktype,
                    orig_len,
                } => {
                    self.frames += 1;
                    let base = self.reader.data().as_ptr() as usize;
                    let start = ptr - base;
                    self.note_packet(ts, linktype, len, orig_len);
                    self.pending = Some(Pending {
                        frame: self.frames,
                        ts,
                        linktype,
                        orig_len,
                        start,
                        len,
                        block_len: consumed,
                    });
                    return;
                }
                Step::LegacyHeader {
                    linktype,
                    nanos,
                    big_endian,
                    snaplen,
                } => {
                    let units = if nanos { 1_000_000_000 } else { 1_000_000 };
                    let iface = Interface {
                        linktype,
                        units_per_sec: units,
                        offset_secs: 0,
                    };
                    self.legacy = Some((iface, big_endian, snaplen));
                }
                Step::Section { big_endian } => {
                    self.big_endian = big_endian;
                    self.drops_done += self.drops.iter().sum::<u64>();
                    self.drops.clear();
                    self.interfaces.clear();
                }
                Step::Interface(iface) => {
                    self.interfaces.push(iface);
                    self.drops.push(0);
                }
                Step::Drops { if_id, drops } => {
                    if let Some(d) = self.drops.get_mut(if_id as usize) {
                        *d = drops;
                    }
                }
                Step::Skip => {}
            }
            self.reader.consume(consumed);
            self.offset += consumed as u64;
        }
    }

    /// Parses one block and converts it into an owned [`Step`] with the bytes consumed.
    fn step(&mut self) -> (usize, Step) {
        let legacy = self.legacy.map(|l| l.0);
        let interfaces = &self.interfaces;
        let big_endian = self.big_endian;
        match self.reader.next() {
            Ok((n, block)) => {
                let step = match block {
                    PcapBlockOwned::LegacyHeader(h) => Step::LegacyHeader {
                        linktype: h.network.0 as u32,
                        nanos: h.is_nanosecond_precision(),
                        big_endian: h.is_bigendian(),
                        snaplen: h.snaplen,
                    },
                    PcapBlockOwned::Legacy(b) => match legacy {
                        Some(iface) => Step::Packet {
                            ptr: b.data.as_ptr() as usize,
                            len: b.data.len(),
                            ts: Timestamp::from_parts(
                                b.ts_sec as i64,
                                b.ts_usec as u64,
                                iface.units_per_sec,
                            ),
                            linktype: iface.linktype,
                            orig_len: b.origlen,
                        },
                        None => Step::Bad("packet record before the file header".into()),
                    },
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => Step::Section {
                        big_endian: shb.big_endian(),
                    },
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        Step::Interface(Interface {
                            linktype: idb.linktype.0 as u32,
                            units_per_sec: ts_units(idb.if_tsresol),
                            offset_secs: idb.ts_offset(),
                        })
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize) {
                            Some(iface) => Step::Packet {
                                ptr: epb.data.as_ptr() as usize,
                                len: (epb.caplen as usize).min(epb.data.len()),
                                ts: pcapng_ts(epb.ts_high, epb.ts_low, iface),
                                linktype: iface.linktype,
                                orig_len: epb.origlen,
                            },
                            None => Step::Bad(format!(
                                "packet on interface {} which the section never described",
                                epb.if_id
                            )),
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => match interfaces.first() {
                        Some(iface) => Step::Packet {
                            ptr: spb.data.as_ptr() as usize,
                            len: spb.data.len().min(spb.origlen as usize),
                            ts: Timestamp::default(),
                            linktype: iface.linktype,
                            orig_len: spb.origlen,
                        },
                        None => Step::Bad("simple packet block with no interface".into()),
                    },
                    PcapBlockOwned::NG(Block::InterfaceStatistics(isb)) => match isb.isb_ifdrop() {
                        Some(Ok(drops)) => Step::Drops {
                            if_id: isb.if_id,
                            drops,
                        },
                        _ => Step::Skip,
                    },
                    // `pcap-parser` reads an unknown block's type little-endian whatever
                    // the section's byte order.
                    PcapBlockOwned::NG(Block::Unknown(b))
                        if (if big_endian {
                            b.block_type.swap_bytes()
                        } else {
                            b.block_type
                        }) == OBSOLETE_PACKET_BLOCK =>
                    {
                        obsolete_packet(b.data, big_endian, interfaces)
                    }
                    PcapBlockOwned::NG(_) => Step::Skip,
                };
                (n, step)
            }
            Err(PcapError::Eof) => (0, Step::Eof),
            Err(PcapError::Incomplete(_)) => (0, Step::Refill),
            Err(PcapError::UnexpectedEof) => (0, Step::Truncated),
            Err(PcapError::BufferTooSmall) => (0, Step::TooSmall),
            Err(e) => (
                0,
                Step::Bad(
                    format!("unparseable block ({e:?})")
                        .chars()
                        .take(120)
                        .collect(),
                ),
            ),
        }
    }

    /// Classic pcap record headers carry no magic, so a damaged caplen would make the reader
    /// swallow garbage: check it before parsing (Wireshark does the same).
    fn legacy_record_is_damaged(&self) -> Option<String> {
        let (_, big_endian, snaplen) = self.legacy?;
        let data = self.reader.data();
        if data.len() < 16 {
            return None;
        }
        let field = |at: usize| {
            let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let caplen = field(8);
        let limit = snaplen.max(MAX_CAPLEN);
        (caplen > limit).then(|| format!("record claims {caplen} captured bytes (limit {limit})"))
    }

    /// A pcapng block is at least 12 bytes (type, length, length again). `pcap-parser`
    /// subtracts those 12 from the length a block claims before it checks it against the
    /// block's own header (only 4 bytes for a process information block), so a length
    /// below 12 overflows inside it (found by fuzzing): check it before parsing.
    fn pcapng_block_is_damaged(&self) -> Option<String> {
        if self.legacy.is_some() || self.stats.format != "pcapng" {
            return None;
        }
        let data = self.reader.data();
        // A section header's length is in its own byte order (its parser checks it).
        if data.len() < 8 || data[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
            return None;
        }
        let b = [data[4], data[5], data[6], data[7]];
        let len = if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        };
        (len < 12).then(|| format!("block claims {len} bytes (at least 12)"))
    }

    fn fail_corrupt(&mut self, detail: String) {
        self.done = true;
        self.error = Some(SourceError::Corrupt {
            path: self.path.clone(),
            frame: self.frames + 1,
            offset: self.offset,
            detail,
            read: self.frames,
        });
    }

    fn note_packet(&mut self, ts: Timestamp, linktype: u32, len: usize, orig_len: u32) {
        let s = &mut self.stats;
        s.frames += 1;
        s.bytes += len as u64;
        if (len as u64) < orig_len as u64 {
            s.cut_frames += 1;
        }
        if !s.linktypes.contains(&linktype) {
            s.linktypes.push(linktype);
        }
        if s.first_ts.is_none() {
            s.first_ts = Some(ts);
        }
        s.last_ts = Some(ts);
    }
}

/// The pcapng block type of the obsolete Packet Block (pcapng draft, written by Wireshark
/// before 1.2): an Enhanced Packet Block with a 16-bit interface id and a drop count.
const OBSOLETE_PACKET_BLOCK: u32 = 2;

/// Timestamp units per second from an interface's `if_tsresol`: 10^n, or 2^n when the top
/// bit is set; the default of microseconds when absent (0 is never written) or
/// unrepresentable. (`pcap-parser` 0.17 rejects every 2^n resolution, so it is done here.)
fn ts_units(tsresol: u8) -> u64 {
    let n = (tsresol & 0x7f) as u32;
    match tsresol & 0x80 {
        0 if n <= 19 => 10u64.pow(n),
        0x80 if n <= 63 => 1u64 << n,
        _ => 1_000_000,
    }
    .max(1)
}

/// The time of a pcapng packet: 64 bits of `if_tsresol` units since the epoch, plus the
/// interface's `if_tsoffset` seconds. A count beyond what a [`Timestamp`] holds (the year
/// 2262) can only come from a writer that stored a time before the epoch as a negative
/// number, so it is read as one: the packets keep their spacing instead of all being clamped
/// to the same instant. (Wireshark shows such frames in the year 586524.)
fn pcapng_ts(ts_high: u32, ts_low: u32, iface: &Interface) -> Timestamp {
    let raw = ((ts_high as u64) << 32) | ts_low as u64;
    let units = iface.units_per_sec.max(1);
    let limit = (i64::MAX / 1_000_000_000) as u64;
    if raw / units <= limit || units > i64::MAX as u64 {
        return Timestamp::from_parts((raw / units) as i64 + iface.offset_secs, raw % units, units);
    }
    let signed = raw as i64;
    let units = units as i64;
    Timestamp::from_parts(
        signed.div_euclid(units) + iface.offset_secs,
        signed.rem_euclid(units) as u64,
        units as u64,
    )
}

/// An obsolete Packet Block's body: interface id (16 bits), drop count (16 bits), timestamp
/// high and low, captured and original length, then the frame.
fn obsolete_packet(body: &[u8], big_endian: bool, interfaces: &[Interface]) -> Step {
    let u16_at = |at: usize| {
        let b = [body[at], body[at + 1]];
        if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |at: usize| {
        let b = [body[at], body[at + 1], body[at + 2], body[at + 3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    if body.len() < 20 {
        return Step::Bad("packet block shorter than its header".into());
    }
    let if_id = u16_at(0);
    let Some(iface) = interfaces.get(if_id as usize) else {
        return Step::Bad(format!(
            "packet on interface {if_id} which the section never described"
        ));
    };
    let caplen = u32_at(12) as usize;
    let data = &body[20..];
    if caplen > data.len() {
        return Step::Bad(format!(
            "packet block claims {caplen} captured bytes in {} bytes",
            data.len()
        ));
    }
    Step::Packet {
        ptr: data.as_ptr() as usize,
        len: caplen,
        ts: pcapng_ts(u32_at(4), u32_at(8), iface),
        linktype: iface.linktype,
        orig_len: u32_at(16),
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcapng block: type, total length, body padded to 32 bits, total length again.
    fn block(kind: u32, body: &[u8], be: bool) -> Vec<u8> {
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let len = 12 + body.len() as u32;
        let mut b = w(kind).to_vec();
        b.extend_from_slice(&w(len));
        b.extend_from_slice(&body);
        b.extend_from_slice(&w(len));
        b
    }

    /// A pcapng file: a section header, one interface (Ethernet, with `tsresol` if given)
    /// and the packet blocks after them.
    fn pcapng(be: bool, tsresol: Option<u8>, packets: &[Vec<u8>]) -> Vec<u8> {
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = w32(0x1A2B3C4D).to_vec();
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]); // section length unknown
        let mut f = block(0x0A0D0D0A, &shb, be);
        let mut idb = w16(1).to_vec(); // Ethernet
        idb.extend_from_slice(&w16(0));
        idb.extend_from_slice(&w32(0)); // snaplen
        if let Some(r) = tsresol {
            idb.extend_from_slice(&w16(9));
            idb.extend_from_slice(&w16(1));
            idb.extend_from_slice(&[r, 0, 0, 0]);
            idb.extend_from_slice(&[0; 4]); // opt_endofopt
        }
        f.extend(block(1, &idb, be));
        for p in packets {
            f.extend_from_slice(p);
        }
        f
    }

    /// An Enhanced Packet Block (type 6) or obsolete Packet Block (type 2) on interface 0.
    fn packet(kind: u32, ts: u64, data: &[u8], be: bool) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = if kind == 2 {
            [0u16.to_be_bytes(), 0u16.to_be_bytes()].concat() // interface 0, 0 drops
        } else {
            w32(0).to_vec()
        };
        body.extend_from_slice(&w32((ts >> 32) as u32));
        body.extend_from_slice(&w32(ts as u32));
        body.extend_from_slice(&w32(data.len() as u32));
        body.extend_from_slice(&w32(data.len() as u32 + 4));
        body.extend_from_slice(data);
        block(kind, &body, be)
    }

    /// Every frame of `bytes` written to a file and read back: (number, time, length).
    fn read_all(name: &str, bytes: &[u8]) -> Vec<(u64, i64, usize)> {
        let path = std::env::temp_dir().join(format!(
            "resetscope-file-test-{}-{name}.pcapng",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let mut f = CaptureFile::open(&path, 0).unwrap();
        let mut out = Vec::new();
        while let Some(p) = f.next_packet() {
            out.push((p.frame.number, p.ts.0, p.data.len()));
        }
        assert!(f.take_error().is_none(), "{name}");
        std::fs::remove_file(&path).unwrap();
        out
    }

    #[test]
    fn power_of_two_resolution() {
        // if_tsresol 0x94: 2^20 units per second; 3.5 s after the epoch.
        let ts = 3 * (1u64 << 20) + (1u64 << 19);
        let file = pcapng(false, Some(0x80 | 20), &[packet(6, ts, &[0; 20], false)]);
        assert_eq!(read_all("pow2", &file), vec![(1, 3_500_000_000, 20)]);
        assert_eq!(ts_units(0x80 | 20), 1 << 20);
        assert_eq!(ts_units(9), 1_000_000_000);
        assert_eq!(ts_units(0x80 | 100), 1_000_000);
        assert_eq!(ts_units(50), 1_000_000);
    }

    #[test]
    fn times_beyond_2262_keep_their_spacing() {
        // As in PcapPlusPlus' pcapng-example.pcapng: microsecond counts just below 2^64,
        // i.e. a time 505 s before the epoch written as a negative number.
        let a = 0xffff_ffff_e1df_d279u64;
        let file = pcapng(
            false,
            None,
            &[
                packet(6, a, &[0; 14], false),
                packet(6, a + 9, &[0; 14], false),
            ],
        );
        let got = read_all("negative", &file);
        assert_eq!(got[0].1, (a as i64) * 1_000);
        assert_eq!(got[1].1 - got[0].1, 9_000);
        assert!(got[0].1 < 0);
    }

    #[test]
    fn obsolete_packet_blocks_are_frames() {
        for be in [false, true] {
            let file = pcapng(
                be,
                Some(6),
                &[
                    packet(6, 1_000_000, &[1; 30], be),
                    packet(2, 2_000_001, &[2; 31], be),
                    packet(6, 3_000_000, &[3; 32], be),
                ],
            );
            assert_eq!(
                read_all(if be { "opb-be" } else { "opb-le" }, &file),
                vec![
                    (1, 1_000_000_000, 30),
                    (2, 2_000_001_000, 31),
                    (3, 3_000_000_000, 32)
                ],
                "big endian {be}"
            );
        }
    }
}
