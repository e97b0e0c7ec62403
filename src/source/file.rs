//! Reader for one pcap or pcapng file.
//!
//! A regular file is mapped into memory and its records parsed in place, with no copy
//! through `read(2)`; pages already read are handed back to the kernel as the cursor moves
//! on, so resident memory does not grow with the file. Anything that cannot be mapped (a
//! pipe, a FIFO, standard input) is streamed through `pcap-parser`'s buffer instead, which
//! grows to fit the largest record. (A mapped file must not be cut short while it is read; a
//! file still being appended to, as `tcpdump -w` does, is read up to its length when it was
//! opened.) A compressed file (gzip, zstd, xz: see [`super::decompress`]) is streamed too,
//! through its decoder, whether it is a regular file or a pipe; its byte offsets in messages
//! are offsets in the decompressed data, and [`CaptureFile::position`] counts compressed
//! bytes.
//!
//! The two ways of reading agree on everything: the same limits on record sizes
//! ([`MAX_BLOCK`], and the classic pcap caplen check), checked on the record header before it
//! is parsed, and the same check of the file header (`check_header`), so that the same
//! bytes give the same frames, the same "truncated" and the same "damaged" from a file and
//! from a pipe.
//!
//! `pcap-parser` parses the records; this module keeps the per-file state the format needs
//! (the pcap header's link type and resolution; pcapng's sections, their byte order,
//! interfaces, their `if_tsresol`/`if_tsoffset` and statistics), numbers frames like
//! Wireshark (obsolete pcapng Packet Blocks, which old Wireshark versions wrote, count as
//! frames as they do there), and turns truncation and damage into a [`SourceError`] that
//! names the frame. Times follow the pcapng specification for every `if_tsresol` (10^-n, or
//! 2^-n with the top bit set) and `if_tsoffset`, with checked arithmetic: what cannot be
//! represented becomes a sentence in [`FileStats::time_problems`] naming the file and the
//! interface or frame, never a silent guess. A reader is a cursor:
//! [`CaptureFile::peek_ts`] parses the next frame without consuming it, so that
//! [`super::merge::CaptureSet`] can merge files by timestamp without copying packet bytes.

use super::backend::Backend;
use super::decompress::{self, Compression, Progress};
use super::spool::{SpoolWriter, Tee};
use super::{FileStats, FrameRef, RawPacket, SourceError};
use crate::time::Timestamp;
use pcap_parser::pcapng::{Block, PcapNGOption};
use pcap_parser::{PcapBlockOwned, PcapError};
use std::fs::File;
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Initial read buffer of a streamed input; it grows to fit a larger record.
const BUFFER: usize = 256 << 10;
/// The largest pcapng block accepted, from a file and from a pipe alike: Wireshark's limit
/// (`MAX_BLOCK_SIZE` in wiretap/pcapng.c), an Enhanced Packet Block with the largest frame
/// any link type has (a 128 MiB D-Bus message) and 128 KiB of options. A block header
/// claiming more is damage. (The format's own limit, a 32-bit length, is 4 GiB.)
pub const MAX_BLOCK: usize = 32 + (128 << 20) + (128 << 10);
/// The captured length of a classic pcap record believed whatever the header's snaplen
/// (Wireshark's `WTAP_MAX_PACKET_SIZE_STANDARD`); more must be within the snaplen.
const MAX_CAPLEN: u32 = 262_144;
/// The largest classic pcap record believed even under a larger snaplen: Wireshark's largest
/// frame (a D-Bus message), as for pcapng.
const MAX_FRAME: u32 = 128 << 20;
/// The pcapng Section Header Block's type (the same in either byte order).
const SHB_TYPE: u32 = 0x0A0D_0D0A;
/// The first four bytes of every capture format read, as they appear in the file.
const MAGICS: [[u8; 4]; 7] = [
    [0x0a, 0x0d, 0x0d, 0x0a],
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
    [0x34, 0xcd, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xcd, 0x34],
];

/// Link type and clock of one capture interface.
#[derive(Copy, Clone, Debug)]
struct Interface {
    linktype: u32,
    /// Time units per second (`if_tsresol`), at least 1.
    units_per_sec: u64,
    /// Seconds added to every time (`if_tsoffset`).
    offset_secs: i64,
}

/// A frame's time as the file gives it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Time {
    /// A time.
    At(Timestamp),
    /// A count past the year 2262, read as a negative one (see [`pcapng_ts`]).
    Negative(Timestamp),
    /// A time no [`Timestamp`] holds.
    OutOfRange,
    /// No time at all (a Simple Packet Block).
    Missing,
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
    /// The packet comment's offset and length in the reader's buffer.
    comment: Option<(usize, usize)>,
}

/// An EPB's `opt_comment` (the one a live capture wrote, if there are several) as the
/// address and length of its text in the reader's buffer.
fn epb_comment(options: &[PcapNGOption<'_>]) -> Option<(usize, usize)> {
    let comments = options
        .iter()
        .filter(|o| o.code.0 == 1)
        .filter_map(|o| match &o.value {
            std::borrow::Cow::Borrowed(v) => v.get(..o.len as usize),
            std::borrow::Cow::Owned(_) => None,
        });
    let mut first = None;
    for c in comments {
        if c.starts_with(crate::kernel::reason::COMMENT_PREFIX.as_bytes()) {
            return Some((c.as_ptr() as usize, c.len()));
        }
        first = first.or(Some((c.as_ptr() as usize, c.len())));
    }
    first
}

/// What one call to the parser produced, owned so the reader can be used again.
enum Step {
    LegacyHeader {
        linktype: u32,
        nanos: bool,
        big_endian: bool,
        snaplen: u32,
        modified: bool,
    },
    Packet {
        ptr: usize,
        len: usize,
        time: Time,
        linktype: u32,
        orig_len: u32,
        /// An EPB's comment (address and length in the buffer).
        comment: Option<(usize, usize)>,
    },
    Section {
        big_endian: bool,
    },
    Interface {
        linktype: u32,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    },
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

/// Frames with one kind of time trouble: how many, and the first.
#[derive(Copy, Clone, Debug, Default)]
struct Count {
    frames: u64,
    first: u64,
}

impl Count {
    fn add(&mut self, frame: u64) {
        if self.frames == 0 {
            self.first = frame;
        }
        self.frames += 1;
    }
}

/// What is wrong with a file's clock, for [`FileStats::time_problems`].
#[derive(Clone, Debug, Default)]
struct Clock {
    /// Sentences about interfaces whose resolution or offset cannot be used.
    interfaces: Vec<String>,
    out_of_range: Count,
    negative: Count,
    missing: Count,
    /// The last time read, given to a frame without a usable one.
    last: Option<Timestamp>,
}

impl Clock {
    /// The time frame number `frame` gets.
    fn settle(&mut self, time: Time, frame: u64) -> Timestamp {
        match time {
            Time::At(t) => {
                self.last = Some(t);
                t
            }
            Time::Negative(t) => {
                self.negative.add(frame);
                self.last = Some(t);
                t
            }
            Time::OutOfRange => {
                self.out_of_range.add(frame);
                self.last.unwrap_or_default()
            }
            Time::Missing => {
                self.missing.add(frame);
                self.last.unwrap_or_default()
            }
        }
    }

    /// One sentence per problem, naming `path`.
    fn problems(&self, path: &str) -> Vec<String> {
        let mut out = self.interfaces.clone();
        let frames = |c: &Count| {
            format!(
                "{} frame{} (the first is frame {})",
                c.frames,
                if c.frames == 1 { "" } else { "s" },
                c.first
            )
        };
        if self.out_of_range.frames > 0 {
            out.push(format!(
                "{path}: {} carry times outside the years 1677 to 2262, which resetscope's times cannot hold (their interface's if_tsoffset or time units carry them past it); each was given the time of the frame before it, so times and idle gaps around them are not reliable",
                frames(&self.out_of_range)
            ));
        }
        if self.negative.frames > 0 {
            out.push(format!(
                "{path}: {} carry times past the year 2262, which only a writer that stored a time before 1970 as a negative number writes; they were read that way, so their dates are doubtful (Wireshark shows them far in the future)",
                frames(&self.negative)
            ));
        }
        if self.missing.frames > 0 {
            out.push(format!(
                "{path}: {} are Simple Packet Blocks, which carry no time; each was given the time of the frame before it, so times and idle gaps around them are not reliable",
                frames(&self.missing)
            ));
        }
        out
    }
}

/// A pcap or pcapng file being read frame by frame.
pub struct CaptureFile {
    path: PathBuf,
    index: u16,
    reader: Backend,
    /// pcapng (else classic pcap).
    pcapng: bool,
    /// Capacity of a streamed input's buffer.
    capacity: usize,
    /// Classic pcap: the one interface, its byte order and snaplen.
    legacy: Option<(Interface, bool, u32)>,
    /// Classic pcap with 16-byte record headers (not the "modified" format's 24): records
    /// are read by [`CaptureFile::next_record`] without the general block parser.
    plain_records: bool,
    interfaces: Vec<Interface>,
    /// Byte order of the current pcapng section.
    big_endian: bool,
    /// pcapng sections begun (1 for the first).
    sections: u64,
    /// Latest drop count per interface of the current section.
    drops: Vec<u64>,
    /// Drops of earlier sections (`None` once the sum passed 2^64 - 1).
    drops_done: Option<u64>,
    /// The first drop count that cannot be true, described.
    drops_implausible: Option<String>,
    clock: Clock,
    frames: u64,
    /// Bytes consumed from the file so far (offset of the next record).
    offset: u64,
    pending: Option<Pending>,
    to_consume: usize,
    done: bool,
    stats: FileStats,
    error: Option<SourceError>,
    /// A compressed file's format, its decoder's progress and the compressed size (when it
    /// is a regular file).
    compressed: Option<Compressed>,
}

/// What a compressed file's reader keeps about its compression.
struct Compressed {
    kind: Compression,
    progress: Arc<Progress>,
    size: Option<u64>,
}

/// What a file's first bytes say about its header.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    /// A whole, valid header.
    Ok,
    /// Cut short: this many bytes are needed to tell.
    NeedMore(usize),
    /// Cut short, and there are no more bytes.
    Truncated,
    /// Not a header.
    Bad(String),
}

/// Checks the file header, a pcapng Section Header Block or the 24-byte pcap header, in
/// `data`: the file's first bytes, `complete` when there are no more. A mapped file and a
/// stream are checked alike, so that a cut inside the header is "truncated" from both and
/// the same damage "not a capture" from both.
fn check_header(data: &[u8], pcapng: bool, complete: bool) -> Header {
    let short = |need: usize| {
        if complete {
            Header::Truncated
        } else {
            Header::NeedMore(need)
        }
    };
    if !pcapng {
        if data.len() < 24 {
            return short(24);
        }
        return match pcap_parser::parse_pcap_header(&data[..24]) {
            Ok(_) => Header::Ok,
            Err(e) => Header::Bad(format!("{e:?}").chars().take(80).collect()),
        };
    }
    if data.len() < 12 {
        return short(12);
    }
    let big_endian = match data[8..12] {
        [0x1a, 0x2b, 0x3c, 0x4d] => true,
        [0x4d, 0x3c, 0x2b, 0x1a] => false,
        _ => return Header::Bad("section header without its byte-order magic".into()),
    };
    let len = read_u32(&data[4..8], big_endian) as usize;
    if len > MAX_BLOCK {
        return Header::Bad(format!(
            "the section header claims {len} bytes, more than the {MAX_BLOCK} a block may have"
        ));
    }
    if len < 28 {
        return Header::Bad(format!(
            "the section header claims {len} bytes, fewer than its 28-byte minimum"
        ));
    }
    if data.len() < len {
        return short(len);
    }
    match pcap_parser::pcapng::parse_sectionheaderblock(&data[..len]) {
        Ok(_) => Header::Ok,
        Err(e) => Header::Bad(format!("{e:?}").chars().take(80).collect()),
    }
}

fn read_u32(b: &[u8], big_endian: bool) -> u32 {
    let b = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

impl CaptureFile {
    /// Opens `path` (`-` is standard input) and reads its header. `index` is the file's
    /// position in the input list.
    pub fn open(path: &Path, index: u16) -> Result<CaptureFile, SourceError> {
        CaptureFile::open_teed(path, index, None)
    }

    /// Like [`CaptureFile::open`]; with `tee`, every byte read is also copied there (to keep
    /// a piped input for a second pass, see [`super::spool`]).
    pub fn open_teed(
        path: &Path,
        index: u16,
        tee: Option<SpoolWriter>,
    ) -> Result<CaptureFile, SourceError> {
        let file = super::open_input(path).map_err(|source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureFile::from_file(file, path, index, tee)
    }

    /// Reads `file`, already open (a spool), named `path` in messages. With `tee`, every
    /// byte read is also copied there.
    pub fn from_file(
        file: File,
        path: &Path,
        index: u16,
        tee: Option<SpoolWriter>,
    ) -> Result<CaptureFile, SourceError> {
        let io = |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let not_a_capture = |magic: &[u8], detail: Option<String>| SourceError::NotACapture {
            path: path.to_path_buf(),
            magic: {
                let hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
                match detail {
                    Some(d) => format!("{hex} ({d})"),
                    None => hex,
                }
            },
        };
        let truncated = || SourceError::Truncated {
            path: path.to_path_buf(),
            frame: 1,
            offset: 0,
            read: 0,
        };
        // The format from the first bytes; a prefix of a known magic is a cut file.
        let identify = |magic: &[u8]| -> Result<bool, SourceError> {
            if magic.is_empty() {
                return Err(SourceError::Empty {
                    path: path.to_path_buf(),
                    compressed: None,
                });
            }
            match MAGICS.iter().position(|m| m.starts_with(magic)) {
                Some(_) if magic.len() < 4 => Err(truncated()),
                Some(i) => Ok(i == 0),
                None => Err(not_a_capture(&magic[..magic.len().min(4)], None)),
            }
        };
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        // SAFETY: the map is read only; the file must not be cut short while it is read (see
        // the module documentation).
        let mapped = if regular && tee.is_none() {
            unsafe { memmap2::Mmap::map(&file) }.ok()
        } else {
            None
        };
        // A compressed file is streamed through its decoder (see [`super::decompress`]).
        let mapped = mapped.filter(|map| {
            Compression::detect(&map[..map.len().min(Compression::MAGIC_LEN)]).is_none()
        });
        let reader = match mapped {
            Some(map) => {
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                let pcapng = identify(&map[..map.len().min(4)])?;
                match check_header(&map, pcapng, true) {
                    Header::Ok => {}
                    Header::NeedMore(_) | Header::Truncated => return Err(truncated()),
                    Header::Bad(d) => return Err(not_a_capture(&map[..4], Some(d))),
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
            // Not mappable (a pipe, standard input): stream it. The header is read here and
            // checked as a mapped file's is, then put back in front for the parser.
            None => {
                let size = regular
                    .then(|| file.metadata().ok().map(|m| m.len()))
                    .flatten();
                let mut src: Box<dyn Read + Send> = match tee {
                    Some(copy) => Box::new(Tee { inner: file, copy }),
                    None => {
                        let mut file = file;
                        if regular {
                            file.rewind().map_err(io)?;
                        }
                        Box::new(file)
                    }
                };
                let mut first = vec![0u8; Compression::MAGIC_LEN];
                let n = read_up_to(&mut src, &mut first).map_err(io)?;
                first.truncate(n);
                let mut compressed = None;
                if let Some(kind) = Compression::detect(&first) {
                    let progress = Arc::new(Progress::default());
                    let raw = Box::new(Cursor::new(first).chain(src));
                    src = decompress::decoder(kind, raw, Arc::clone(&progress));
                    first = vec![0u8; 4];
                    let got = read_up_to(&mut src, &mut first);
                    compressed = Some(Compressed {
                        kind,
                        progress,
                        size,
                    });
                    let n = got.map_err(|e| stream_error(path, e, compressed.as_ref(), 0))?;
                    first.truncate(n);
                }
                let inside = compressed
                    .as_ref()
                    .map(|c| format!("inside the {} compression", c.kind.name()));
                let not_a_capture = |magic: &[u8], detail: Option<String>| {
                    let detail = match (detail, &inside) {
                        (Some(d), Some(i)) => Some(format!("{d}, {i}")),
                        (d, i) => d.or(i.clone()),
                    };
                    not_a_capture(magic, detail)
                };
                let pcapng = identify(&first[..first.len().min(4)]).map_err(|e| match e {
                    SourceError::NotACapture { .. } => {
                        not_a_capture(&first[..first.len().min(4)], None)
                    }
                    SourceError::Empty { path, .. } => SourceError::Empty {
                        path,
                        compressed: compressed.as_ref().map(|c| c.kind.name()),
                    },
                    other => other,
                })?;
                let mut complete = false;
                loop {
                    match check_header(&first, pcapng, complete) {
                        Header::Ok => break,
                        Header::NeedMore(need) => {
                            let have = first.len();
                            first.resize(need, 0);
                            let got = read_up_to(&mut src, &mut first[have..])
                                .map_err(|e| stream_error(path, e, compressed.as_ref(), 0))?;
                            first.truncate(have + got);
                            complete = first.len() < need;
                        }
                        Header::Truncated => return Err(truncated()),
                        Header::Bad(d) => return Err(not_a_capture(&first[..4], Some(d))),
                    }
                }
                let capacity = BUFFER.max(first.len() + 1);
                let magic = first[..4].to_vec();
                let reader = pcap_parser::create_reader(capacity, Cursor::new(first).chain(src))
                    .map_err(|e| {
                        if let Some(detail) = compressed.as_ref().and_then(|c| c.progress.error()) {
                            return decompress_error(path, compressed.as_ref(), detail, 1, 0, 0);
                        }
                        match e {
                            PcapError::Incomplete(_)
                            | PcapError::UnexpectedEof
                            | PcapError::Eof => truncated(),
                            other => not_a_capture(&magic, Some(format!("{other:?}"))),
                        }
                    })?;
                let mut f =
                    CaptureFile::new(path, index, Backend::Stream(reader), pcapng, capacity);
                f.compressed = compressed;
                return Ok(f);
            }
        };
        let pcapng = matches!(reader, Backend::Mapped { pcapng: true, .. });
        Ok(CaptureFile::new(path, index, reader, pcapng, 0))
    }

    fn new(path: &Path, index: u16, reader: Backend, pcapng: bool, capacity: usize) -> CaptureFile {
        CaptureFile {
            path: path.to_path_buf(),
            index,
            reader,
            pcapng,
            capacity,
            legacy: None,
            plain_records: false,
            interfaces: Vec::new(),
            big_endian: false,
            sections: 0,
            drops: Vec::new(),
            drops_done: Some(0),
            drops_implausible: None,
            clock: Clock::default(),
            frames: 0,
            offset: 0,
            pending: None,
            to_consume: 0,
            done: false,
            stats: FileStats {
                path: path.display().to_string(),
                format: if pcapng { "pcapng" } else { "pcap" }.to_string(),
                ..FileStats::default()
            },
            error: None,
            compressed: None,
        }
    }

    /// The file's position in the input list.
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read so far, and the file's size when it is known (not for a pipe).
    pub fn position(&self) -> (u64, Option<u64>) {
        match &self.compressed {
            // Of a compressed file, the compressed bytes.
            Some(c) => (c.progress.read(), c.size),
            None => (self.offset, self.reader.size()),
        }
    }

    /// The file's compression, if it is compressed.
    pub fn compression(&self) -> Option<Compression> {
        self.compressed.as_ref().map(|c| c.kind)
    }

    /// What has been read so far.
    pub fn stats(&self) -> FileStats {
        let mut s = self.stats.clone();
        let total = self.drops_total();
        s.interface_drops = total.unwrap_or(u64::MAX);
        s.interface_drops_implausible = self.drops_implausible.clone().or_else(|| {
            total
                .is_none()
                .then(|| "counts that add up to more than 2^64".to_string())
        });
        s.time_problems = self.clock.problems(&s.path);
        s
    }

    /// Drops of every section so far, `None` past 2^64 - 1.
    fn drops_total(&self) -> Option<u64> {
        let done = self.drops_done?;
        self.drops
            .iter()
            .try_fold(done, |sum, d| sum.checked_add(*d))
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
            comment: p
                .comment
                .and_then(|(s, l)| std::str::from_utf8(self.reader.data().get(s..s + l)?).ok()),
        })
    }

    /// `interface N`, with its section when the file has had more than one.
    fn interface_name(&self, id: u32) -> String {
        if self.sections > 1 {
            format!("interface {id} of section {}", self.sections)
        } else {
            format!("interface {id}")
        }
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
        if self.next_record() {
            return;
        }
        loop {
            if let Some(detail) = self.record_is_damaged() {
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
                        match self.compressed.as_ref().and_then(|c| c.progress.error()) {
                            Some(detail) => {
                                self.done = true;
                                self.error = Some(decompress_error(
                                    &self.path,
                                    self.compressed.as_ref(),
                                    detail,
                                    self.frames + 1,
                                    self.offset,
                                    self.frames,
                                ));
                            }
                            None => self.fail_corrupt("read error".into()),
                        }
                        return;
                    }
                    continue;
                }
                Step::TooSmall => {
                    // The record header has been checked against the limits: make room for
                    // the whole record (the parser needs one byte more than it takes).
                    let need = self.next_record_len().unwrap_or(0);
                    let cap = need
                        .saturating_add(1)
                        .max(self.capacity.saturating_mul(2).min(MAX_BLOCK + 1));
                    let grown = match &mut self.reader {
                        Backend::Stream(reader) => cap > self.capacity && reader.grow(cap),
                        Backend::Mapped { .. } => false,
                    };
                    if !grown {
                        self.fail_corrupt(format!(
                            "a record of {need} bytes does not fit a read buffer of {} bytes",
                            self.capacity
                        ));
                        return;
                    }
                    self.capacity = cap;
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
                    time,
                    linktype,
                    orig_len,
                    comment,
                } => {
                    let base = self.reader.data().as_ptr() as usize;
                    let comment = comment.map(|(p, l)| (p - base, l));
                    self.take_packet(
                        time,
                        linktype,
                        orig_len,
                        (ptr - base, len),
                        consumed,
                        comment,
                    );
                    return;
                }
                Step::LegacyHeader {
                    linktype,
                    nanos,
                    big_endian,
                    snaplen,
                    modified,
                } => {
                    self.plain_records = !modified;
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
                    self.sections += 1;
                    self.drops_done = self.drops_total();
                    self.drops.clear();
                    self.interfaces.clear();
                }
                Step::Interface {
                    linktype,
                    tsresol,
                    tsoffset,
                } => {
                    let id = self.interfaces.len() as u32;
                    let units_per_sec = match tsresol {
                        None => 1_000_000,
                        Some(r) => match ts_units(r) {
                            Some(units) => units,
                            None => {
                                let text = format!(
                                    "{}: {} declares if_tsresol {r:#04x} (units of {} s), finer than a 64-bit count of units per second can hold; its frames' times were read in microseconds, the default, and are not reliable",
                                    self.stats.path,
                                    self.interface_name(id),
                                    resolution_name(r)
                                );
                                self.clock.interfaces.push(text);
                                1_000_000
                            }
                        },
                    };
                    let offset_secs = match tsoffset {
                        Some(o) if o.checked_mul(1_000_000_000).is_none() => {
                            let text = format!(
                                "{}: {} declares if_tsoffset {o} s, beyond the years 1677 to 2262 that resetscope's times hold; it was left out, so its frames' times are not reliable",
                                self.stats.path,
                                self.interface_name(id)
                            );
                            self.clock.interfaces.push(text);
                            0
                        }
                        o => o.unwrap_or(0),
                    };
                    self.interfaces.push(Interface {
                        linktype,
                        units_per_sec,
                        offset_secs,
                    });
                    self.drops.push(0);
                }
                Step::Drops { if_id, drops } => {
                    if let Some(d) = self.drops.get_mut(if_id as usize) {
                        *d = drops;
                        // A count that does not fit an i64 is a writer's -1 ("unknown") or
                        // damage, not packets.
                        if drops > i64::MAX as u64 && self.drops_implausible.is_none() {
                            self.drops_implausible =
                                Some(format!("{drops} on {}", self.interface_name(if_id)));
                        }
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
                        modified: h.is_modified_format(),
                    },
                    PcapBlockOwned::Legacy(b) => match legacy {
                        Some(iface) => Step::Packet {
                            ptr: b.data.as_ptr() as usize,
                            len: b.data.len(),
                            time: Timestamp::checked_from_parts(
                                b.ts_sec as i64,
                                b.ts_usec as u64,
                                iface.units_per_sec,
                            )
                            .map_or(Time::OutOfRange, Time::At),
                            linktype: iface.linktype,
                            orig_len: b.origlen,
                            comment: None,
                        },
                        None => Step::Bad("packet record before the file header".into()),
                    },
                    PcapBlockOwned::NG(Block::SectionHeader(shb)) => Step::Section {
                        big_endian: shb.big_endian(),
                    },
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let (tsresol, tsoffset) = interface_clock(&idb.options, big_endian);
                        Step::Interface {
                            linktype: idb.linktype.0 as u32,
                            tsresol,
                            tsoffset,
                        }
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        match interfaces.get(epb.if_id as usize) {
                            Some(iface) => Step::Packet {
                                ptr: epb.data.as_ptr() as usize,
                                len: (epb.caplen as usize).min(epb.data.len()),
                                time: pcapng_ts(epb.ts_high, epb.ts_low, iface),
                                linktype: iface.linktype,
                                orig_len: epb.origlen,
                                comment: epb_comment(&epb.options),
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
                            time: Time::Missing,
                            linktype: iface.linktype,
                            orig_len: spb.origlen,
                            comment: None,
                        },
                        None => Step::Bad("simple packet block with no interface".into()),
                    },
                    PcapBlockOwned::NG(Block::InterfaceStatistics(isb)) => {
                        match option_u64(&isb.options, ISB_IFDROP, big_endian) {
                            Some(drops) => Step::Drops {
                                if_id: isb.if_id,
                                drops,
                            },
                            None => Step::Skip,
                        }
                    }
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

    /// Reads the next classic pcap record the quick way, the one most packets take: its
    /// 16-byte header and captured bytes all there, within the limits. Anything else (the
    /// end, a record cut short, a damaged header, a stream to refill, pcapng) is left to
    /// the general path of [`CaptureFile::fill`], which reads it the way it read every
    /// record before, or says what is wrong.
    fn next_record(&mut self) -> bool {
        let Some((iface, big_endian, snaplen)) = self.legacy else {
            return false;
        };
        if !self.plain_records {
            return false;
        }
        let data = self.reader.data();
        let Some(header) = data.get(..16) else {
            return false;
        };
        let field = |at: usize| read_u32(&header[at..at + 4], big_endian);
        let caplen = field(8);
        if caplen > snaplen.clamp(MAX_CAPLEN, MAX_FRAME) || data.len() - 16 < caplen as usize {
            return false;
        }
        let (secs, frac, orig_len) = (field(0), field(4), field(12));
        let time = Timestamp::checked_from_parts(secs as i64, frac as u64, iface.units_per_sec)
            .map_or(Time::OutOfRange, Time::At);
        let len = caplen as usize;
        self.take_packet(time, iface.linktype, orig_len, (16, len), 16 + len, None);
        true
    }

    /// Makes the packet whose captured bytes are `bytes` (start and length, from the
    /// cursor) of a record of `block_len` bytes the pending one: numbers it, settles its
    /// time and counts it.
    #[inline]
    fn take_packet(
        &mut self,
        time: Time,
        linktype: u32,
        orig_len: u32,
        (start, len): (usize, usize),
        block_len: usize,
        comment: Option<(usize, usize)>,
    ) {
        self.frames += 1;
        let ts = self.clock.settle(time, self.frames);
        self.note_packet(ts, linktype, len, orig_len);
        self.pending = Some(Pending {
            frame: self.frames,
            ts,
            linktype,
            orig_len,
            start,
            len,
            block_len,
            comment,
        });
    }

    /// The length the next record's header claims (pcapng: the block's total length;
    /// classic pcap: the 16-byte record header and the captured bytes), once enough of it
    /// is there to tell.
    fn next_record_len(&self) -> Option<usize> {
        let data = self.reader.data();
        if let Some((_, big_endian, _)) = self.legacy {
            return (data.len() >= 16).then(|| 16 + read_u32(&data[8..12], big_endian) as usize);
        }
        if !self.pcapng || data.len() < 8 {
            return None;
        }
        // A section header's length is in its own byte order, given by the magic after it.
        let big_endian = if read_u32(&data[..4], false) == SHB_TYPE {
            match data.get(8..12)? {
                [0x1a, 0x2b, 0x3c, 0x4d] => true,
                [0x4d, 0x3c, 0x2b, 0x1a] => false,
                _ => return None,
            }
        } else {
            self.big_endian
        };
        Some(read_u32(&data[4..8], big_endian) as usize)
    }

    /// The next record's header checked before it is parsed, the same way for a mapped
    /// file and a stream: classic pcap record headers carry no magic, so a damaged caplen
    /// would make the reader swallow garbage (Wireshark checks it too), and a pcapng block
    /// may not claim more than [`MAX_BLOCK`] bytes. Says what is wrong, with the size the
    /// header claims.
    fn record_is_damaged(&self) -> Option<String> {
        let len = self.next_record_len()?;
        if let Some((_, _, snaplen)) = self.legacy {
            let caplen = (len - 16) as u64;
            let limit = snaplen.clamp(MAX_CAPLEN, MAX_FRAME);
            return (caplen > limit as u64)
                .then(|| format!("record claims {caplen} captured bytes (limit {limit})"));
        }
        // A pcapng block is at least 12 bytes (type, length, length again); `pcap-parser`
        // subtracts those 12 before it checks the length against the block's own header, so
        // a smaller claim overflows inside it (found by fuzzing).
        if len < 12 {
            return Some(format!("block claims {len} bytes (at least 12)"));
        }
        (len > MAX_BLOCK).then(|| {
            format!("block claims {len} bytes, more than the {MAX_BLOCK} a pcapng block may have")
        })
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
        s.max_caplen = s.max_caplen.max(len.try_into().unwrap_or(u32::MAX));
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
        s.time_span = Some(
            s.time_span
                .map_or((ts, ts), |(lo, hi)| (lo.min(ts), hi.max(ts))),
        );
    }
}

/// The pcapng block type of the obsolete Packet Block (pcapng draft, written by Wireshark
/// before 1.2): an Enhanced Packet Block with a 16-bit interface id and a drop count.
const OBSOLETE_PACKET_BLOCK: u32 = 2;
/// Interface Description Block options: `if_tsresol`, `if_tsoffset`.
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;
/// Interface Statistics Block option `isb_ifdrop`.
const ISB_IFDROP: u16 = 5;

/// An interface's `if_tsresol` and `if_tsoffset`, read in the section's byte order (as the
/// specification says; `pcap-parser` 0.17 reads the offset little-endian whatever the
/// section's order). Options of the wrong length are ignored, as Wireshark ignores them; a
/// repeated option's last value counts.
fn interface_clock(options: &[PcapNGOption<'_>], big_endian: bool) -> (Option<u8>, Option<i64>) {
    let mut tsresol = None;
    let mut tsoffset = None;
    for o in options {
        match (o.code.0, o.as_bytes()) {
            (IF_TSRESOL, Ok(&[r])) => tsresol = Some(r),
            (IF_TSOFFSET, Ok(b)) if b.len() == 8 => {
                tsoffset =
                    option_u64(std::slice::from_ref(o), IF_TSOFFSET, big_endian).map(|v| v as i64);
            }
            _ => {}
        }
    }
    (tsresol, tsoffset)
}

/// The first 8-byte option `code`, in the section's byte order.
fn option_u64(options: &[PcapNGOption<'_>], code: u16, big_endian: bool) -> Option<u64> {
    options.iter().find_map(|o| {
        let b: [u8; 8] = o.as_bytes().ok()?.try_into().ok()?;
        (o.code.0 == code).then(|| {
            if big_endian {
                u64::from_be_bytes(b)
            } else {
                u64::from_le_bytes(b)
            }
        })
    })
}

/// Timestamp units per second for an `if_tsresol` value: 10^n, or 2^n when the top bit is
/// set; `None` when that does not fit 64 bits (10^20 and finer, 2^64 and finer).
/// (`pcap-parser` 0.17's `build_ts_resolution` rejects every 2^n, so it is done here; see
/// docs/upstream/pcap-parser.md.)
fn ts_units(tsresol: u8) -> Option<u64> {
    let n = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n)
    }
}

/// `10^-n` or `2^-n`, for a caveat.
fn resolution_name(tsresol: u8) -> String {
    match tsresol & 0x80 {
        0 => format!("10^-{tsresol}"),
        _ => format!("2^-{}", tsresol & 0x7f),
    }
}

/// The time of a pcapng packet: 64 bits of `if_tsresol` units since the epoch, plus the
/// interface's `if_tsoffset` seconds, in checked arithmetic. A count beyond what a
/// [`Timestamp`] holds (the year 2262) that is negative as a signed number can only come
/// from a writer that stored a time before the epoch as a negative number, so it is read as
/// one ([`Time::Negative`], which is said in a caveat): the packets keep their spacing
/// instead of all being given the same time. (Wireshark shows such frames in the year
/// 586524.) Anything else out of range is [`Time::OutOfRange`].
fn pcapng_ts(ts_high: u32, ts_low: u32, iface: &Interface) -> Time {
    let raw = ((ts_high as u64) << 32) | ts_low as u64;
    let units = iface.units_per_sec.max(1);
    let limit = (i64::MAX / 1_000_000_000) as u64;
    let whole = raw / units;
    let (secs, frac, negative) = if whole <= limit {
        (whole as i64, raw % units, false)
    } else if raw > i64::MAX as u64 {
        // Here units < 2^64 / limit, so both fit an i128 division without loss.
        let signed = raw as i64 as i128;
        let u = units as i128;
        (
            signed.div_euclid(u) as i64,
            signed.rem_euclid(u) as u64,
            true,
        )
    } else {
        return Time::OutOfRange;
    };
    let Some(secs) = secs.checked_add(iface.offset_secs) else {
        return Time::OutOfRange;
    };
    match Timestamp::checked_from_parts(secs, frac, units) {
        Some(t) if negative => Time::Negative(t),
        Some(t) => Time::At(t),
        None => Time::OutOfRange,
    }
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
    let u32_at = |at: usize| read_u32(&body[at..at + 4], big_endian);
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
        time: pcapng_ts(u32_at(4), u32_at(8), iface),
        linktype: iface.linktype,
        orig_len: u32_at(16),
        comment: None,
    }
}

/// The error of a failed read of `path`: the decoder's, when the file is compressed and its
/// decoder stopped, else the operating system's.
fn stream_error(
    path: &Path,
    e: std::io::Error,
    compressed: Option<&Compressed>,
    offset: u64,
) -> SourceError {
    match compressed.and_then(|c| c.progress.error()) {
        Some(detail) => decompress_error(path, compressed, detail, 1, offset, 0),
        None => SourceError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// [`SourceError::Decompress`] for `path`, at `frame` (decompressed byte `offset`).
fn decompress_error(
    path: &Path,
    compressed: Option<&Compressed>,
    detail: String,
    frame: u64,
    offset: u64,
    read: u64,
) -> SourceError {
    SourceError::Decompress {
        path: path.to_path_buf(),
        format: compressed.map_or("compressed", |c| c.kind.name()),
        frame,
        offset,
        compressed: compressed.map_or(0, |c| c.progress.read()),
        detail,
        read,
    }
}

fn read_up_to(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
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
        assert_eq!(ts_units(0x80 | 20), Some(1 << 20));
        assert_eq!(ts_units(9), Some(1_000_000_000));
        assert_eq!(ts_units(0), Some(1));
        assert_eq!(ts_units(19), Some(10_000_000_000_000_000_000));
        assert_eq!(ts_units(0x80 | 63), Some(1 << 63));
        assert_eq!(ts_units(20), None);
        assert_eq!(ts_units(0x80 | 64), None);
        assert_eq!(ts_units(0x80 | 100), None);
        assert_eq!(ts_units(127), None);
    }

    #[test]
    fn header_checks_agree_however_much_is_there() {
        let shb = &pcapng(false, None, &[])[..28];
        for n in 0..28 {
            assert_eq!(
                check_header(&shb[..n], true, true),
                Header::Truncated,
                "{n}"
            );
            match check_header(&shb[..n], true, false) {
                Header::NeedMore(k) => assert!(k > n && k <= 28, "{n}: {k}"),
                other => panic!("{n}: {other:?}"),
            }
        }
        assert_eq!(check_header(shb, true, true), Header::Ok);
        assert_eq!(check_header(shb, true, false), Header::Ok);
        let mut bad = shb.to_vec();
        bad[8] ^= 0xff;
        assert!(matches!(check_header(&bad, true, true), Header::Bad(_)));
        let mut huge = shb.to_vec();
        huge[4..8].copy_from_slice(&((MAX_BLOCK + 1) as u32).to_le_bytes());
        assert_eq!(
            check_header(&huge, true, false),
            Header::Bad(format!(
                "the section header claims {} bytes, more than the {MAX_BLOCK} a block may have",
                MAX_BLOCK + 1
            ))
        );
        let pcap = [
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for n in 0..24 {
            assert_eq!(check_header(&pcap[..n], false, true), Header::Truncated);
            assert_eq!(check_header(&pcap[..n], false, false), Header::NeedMore(24));
        }
        assert_eq!(check_header(&pcap, false, true), Header::Ok);
    }

    #[test]
    fn pcapng_times_never_overflow() {
        let iface = |units_per_sec, offset_secs| Interface {
            linktype: 1,
            units_per_sec,
            offset_secs,
        };
        let split = |raw: u64| ((raw >> 32) as u32, raw as u32);
        let (h, l) = split(100);
        assert_eq!(
            pcapng_ts(h, l, &iface(1, 1_000)),
            Time::At(Timestamp(1_100_000_000_000))
        );
        // An offset that only overflows with the frame's own count.
        let (h, l) = split(300_000_000);
        assert_eq!(pcapng_ts(h, l, &iface(1, 9_000_000_000)), Time::OutOfRange);
        for offset in [i64::MAX, i64::MIN] {
            for raw in [0, 1, u64::MAX, 1 << 63] {
                let (h, l) = split(raw);
                for units in [1, 1_000_000, 1 << 63, u64::MAX] {
                    // Whatever comes out, nothing panics.
                    let _ = pcapng_ts(h, l, &iface(units, offset));
                }
            }
        }
        // Past 2262 as unsigned, negative as signed: read as before 1970, and said.
        let (h, l) = split((-1_000_000i64) as u64);
        assert_eq!(
            pcapng_ts(h, l, &iface(1_000_000, 0)),
            Time::Negative(Timestamp(-1_000_000_000))
        );
        // Past 2262 and positive as signed (units of a second): out of range.
        let (h, l) = split(10_000_000_000);
        assert_eq!(pcapng_ts(h, l, &iface(1, 0)), Time::OutOfRange);
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
