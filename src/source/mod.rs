//! Stage 1, source: where packets come from.
//!
//! Capture files (pcap in either byte order and micro- or nanosecond resolution, and pcapng
//! with any number of sections and interfaces) are read by [`file::CaptureFile`] through the
//! pure-Rust `pcap-parser`, streaming through a fixed buffer so a file of any size is never
//! held in memory. Captures compressed with gzip, zstd or xz, told by their first bytes, are
//! decompressed as they are read ([`decompress`]). Several files are merged into one capture
//! in timestamp order by [`merge::CaptureSet`] (rotated `tcpdump -G/-C` output is the common
//! case).
//!
//! The stage hands on [`RawPacket`]s: the link-layer bytes of one frame with its link type,
//! timestamp and [`FrameRef`] (file and 1-based frame number, exactly as Wireshark numbers
//! frames). Anything wrong with a file is a [`SourceError`] that names the file and the frame;
//! a damaged file ends early but what was read before the damage is still analysed.

mod backend;
pub mod decompress;
pub mod file;
#[cfg(feature = "live")]
pub mod live;
pub mod merge;
pub mod read_ahead;
pub mod spool;

use crate::time::Timestamp;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Which frame of which input: `file` indexes the input list, `number` is 1-based in file
/// order, as Wireshark and tshark number frames.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct FrameRef {
    /// Index of the input file (0 for the first, or for a live capture).
    pub file: u16,
    /// 1-based frame number within that file.
    pub number: u64,
}

/// One captured frame, borrowed from the reader's buffer.
#[derive(Copy, Clone, Debug)]
pub struct RawPacket<'a> {
    /// Where the frame sits in the input.
    pub frame: FrameRef,
    /// When it was captured.
    pub ts: Timestamp,
    /// The pcap `LINKTYPE_*` value of the interface it was captured on.
    pub linktype: u32,
    /// The frame's length on the wire (`orig_len`); more than `data.len()` when cut by snaplen.
    pub orig_len: u32,
    /// The captured bytes, starting at the link-layer header.
    pub data: &'a [u8],
    /// The pcapng packet comment (`opt_comment`), if any: where a live capture keeps the
    /// kernel's reason for a RST.
    pub comment: Option<&'a str>,
}

/// Something wrong with an input file. Each variant names the file and, where it applies,
/// the frame at which reading stopped (the frames before it have been analysed).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is empty (or its compressed data decompresses to nothing).
    #[error("{path}: {}", match compressed {
        Some(format) => format!("the file's {format} compressed data holds nothing"),
        None => "the file is empty".to_string(),
    })]
    Empty {
        /// The file.
        path: PathBuf,
        /// `gzip`, `zstd` or `xz` when the file is compressed.
        compressed: Option<&'static str>,
    },
    /// The file does not start with a pcap or pcapng header.
    #[error("{path}: not a pcap or pcapng capture (unrecognised header {magic})")]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, in hex.
        magic: String,
    },
    /// The file ends in the middle of a record.
    #[error("{path}: truncated: the file ends in the middle of frame {frame} (byte offset {offset}); the {read} frames before it were analysed")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The frame that is cut.
        frame: u64,
        /// Byte offset of that frame's record.
        offset: u64,
        /// Frames read before it.
        read: u64,
    },
    /// The compressed data is damaged or cut short: nothing after that point can be read.
    #[error("{path}: the {format} compressed data stops at frame {frame} (decompressed byte offset {offset}, after {compressed} compressed bytes): {detail}; the {read} frames before it were analysed")]
    Decompress {
        /// The file.
        path: PathBuf,
        /// `gzip`, `zstd` or `xz`.
        format: &'static str,
        /// The frame that could not be read.
        frame: u64,
        /// Byte offset of that frame's record in the decompressed data.
        offset: u64,
        /// Compressed bytes read by then (the decoder reads ahead a little).
        compressed: u64,
        /// What the decoder said.
        detail: String,
        /// Frames read before it.
        read: u64,
    },
    /// A record is damaged; nothing after it can be trusted.
    #[error("{path}: damaged record at frame {frame} (byte offset {offset}): {detail}; the {read} frames before it were analysed")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The frame whose record is damaged.
        frame: u64,
        /// Byte offset of that record.
        offset: u64,
        /// What is wrong with it.
        detail: String,
        /// Frames read before it.
        read: u64,
    },
}

impl SourceError {
    /// The frame number where reading stopped, if the error is inside the file.
    pub fn frame(&self) -> Option<u64> {
        match self {
            SourceError::Truncated { frame, .. }
            | SourceError::Corrupt { frame, .. }
            | SourceError::Decompress { frame, .. } => Some(*frame),
            _ => None,
        }
    }

    /// True when nothing at all could be read from the file: it cannot be opened, is empty,
    /// is not a capture, or its compressed data stops before the capture's header.
    pub fn is_unusable(&self) -> bool {
        matches!(
            self,
            SourceError::Io { .. }
                | SourceError::Empty { .. }
                | SourceError::NotACapture { .. }
                | SourceError::Decompress { offset: 0, .. }
        )
    }
}

/// [`FileStats::format`] of an input that could not be read at all (left out of the report).
pub const UNREADABLE: &str = "unreadable";

/// What one input file held, for the summary and the caveats.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FileStats {
    /// The file's path as given.
    pub path: String,
    /// `pcap` or `pcapng`; `unreadable` when the file could not be read at all.
    pub format: String,
    /// Frames read.
    pub frames: u64,
    /// Bytes of captured frame data read.
    pub bytes: u64,
    /// Frames whose captured length is less than their length on the wire (snaplen).
    pub cut_frames: u64,
    /// Packets the capturing interface reported dropped (pcapng interface statistics), as
    /// the file claims them (the sum saturates).
    pub interface_drops: u64,
    /// When a drop count cannot be true (one that does not fit an `i64`, as a writer's -1
    /// for "unknown" does, or a sum beyond 2^64): which, e.g. `18446744073709551615 on
    /// interface 0`.
    #[serde(skip)]
    pub interface_drops_implausible: Option<String>,
    /// The largest captured length of a frame (the extract's snap length must cover it).
    #[serde(skip)]
    pub max_caplen: u32,
    /// The earliest and the latest frame time (frames need not be in time order).
    #[serde(skip)]
    pub time_span: Option<(crate::time::Timestamp, crate::time::Timestamp)>,
    /// What is wrong with the file's timestamps, one sentence each naming the file and the
    /// interface or frame: resolutions or offsets that cannot be represented, times out of
    /// range, frames without a time.
    #[serde(skip)]
    pub time_problems: Vec<String>,
    /// Why the scratch copy of a piped input stopped short (see [`spool`]), naming the file:
    /// the second pass (packet ladders, `--extract`) saw only the packets before that point.
    #[serde(skip)]
    pub spool_failure: Option<String>,
    /// Link types seen, as `LINKTYPE_*` numbers.
    pub linktypes: Vec<u32>,
    /// First and last timestamps.
    pub first_ts: Option<crate::time::Timestamp>,
    /// Timestamp of the last frame.
    pub last_ts: Option<crate::time::Timestamp>,
}

/// True for `-`, which names standard input (or, for an output, standard output).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Standard input as a file (a duplicate of descriptor 0), for `-`.
pub fn stdin_file() -> std::io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        Ok(File::from(std::io::stdin().as_fd().try_clone_to_owned()?))
    }
    #[cfg(not(unix))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "`-` for standard input is supported on Unix only",
        ))
    }
}

/// Opens an input path, `-` being standard input.
pub fn open_input(path: &Path) -> std::io::Result<File> {
    if is_stdin(path) {
        stdin_file()
    } else {
        File::open(path)
    }
}

/// Creates an output file, `-` being standard output (a duplicate of descriptor 1, so the
/// bytes go straight to it, past Rust's line buffer, which nothing else uses meanwhile).
pub fn create_output(path: &Path) -> std::io::Result<File> {
    if !is_stdin(path) {
        return File::create(path);
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        Ok(File::from(std::io::stdout().as_fd().try_clone_to_owned()?))
    }
    #[cfg(not(unix))]
    {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "`-` for standard output is supported on Unix only",
        ))
    }
}
