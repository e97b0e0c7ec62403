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
//! (the pcap header's link type and resolution; pcapng's sections, interfaces, their
//! `if_tsresol`/`if_tsoffset` and statistics), numbers frames like Wireshark, and turns
//! truncation and damage into a [`SourceError`] that names the frame. A reader is a cursor:
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
    Section,
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
            if let Some(detail) = self.legacy_record_is_damaged() {
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
                Step::Section => {
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
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => Step::Section,
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        Step::Interface(Interface {
                            linktype: idb.linktype.0 as u32,
                            units_per_sec: idb.ts_resolution().unwrap_or(1_000_000),
                            offset_secs: idb.ts_offset(),
                        })
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize) {
                            Some(iface) => {
                                let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                                let units = iface.units_per_sec.max(1);
                                Step::Packet {
                                    ptr: epb.data.as_ptr() as usize,
                                    len: (epb.caplen as usize).min(epb.data.len()),
                                    ts: Timestamp::from_parts(
                                        (raw / units) as i64 + iface.offset_secs,
                                        raw % units,
                                        units,
                                    ),
                                    linktype: iface.linktype,
                                    orig_len: epb.origlen,
                                }
                            }
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
