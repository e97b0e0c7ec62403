//! Compressed captures: gzip, zstd and xz, told by their first bytes (never by the file's
//! name) and decompressed as they are read.
//!
//! A compressed capture is streamed through a decoder into [`super::file::CaptureFile`]'s
//! buffer, never unpacked to disk nor held whole in memory: the decoder reads the file
//! through a fixed buffer ([`RAW_BUFFER`]) and keeps only its own window (at most 100 MiB
//! for zstd, ruzstd's limit, and [`XZ_MEMORY_LIMIT`] for xz; gzip's is 32 KiB). Mapped
//! reading does not apply: a compressed regular file is streamed like a pipe, and read and
//! decompressed again for the second pass; a compressed pipe's spool holds the compressed
//! bytes, decompressed again in the same way.
//!
//! All three decoders are pure Rust: `flate2` with its default `miniz_oxide` backend (with
//! [`flate2::bufread::MultiGzDecoder`], so concatenated gzip members, as `cat a.gz b.gz` or
//! `pigz` write them, are one stream), `ruzstd` (every frame of the stream, skippable frames
//! skipped, each frame's checksum checked) and `lzma-rust2` (every stream of the file, with
//! its checks). A decoder that stops on damage or on a cut records why in [`Progress`], so
//! that the reader can turn it into a [`super::SourceError::Decompress`] naming the frame;
//! the frames decompressed before it have been analysed.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of compressed input read at a time.
pub const RAW_BUFFER: usize = 256 << 10;
/// The most memory the xz decoder may use (its dictionary): `xz -9` needs 64 MiB, and the
/// format allows up to 4 GiB, which a damaged header could claim.
pub const XZ_MEMORY_LIMIT: u32 = 256 << 20;

/// A compression format of a capture file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Compression {
    /// gzip (RFC 1952): `1f 8b`.
    Gzip,
    /// Zstandard (RFC 8878): `28 b5 2f fd`.
    Zstd,
    /// xz: `fd 37 7a 58 5a 00`.
    Xz,
}

impl Compression {
    /// The bytes a file in each format starts with.
    const MAGICS: [(Compression, &'static [u8]); 3] = [
        (Compression::Gzip, &[0x1f, 0x8b]),
        (Compression::Zstd, &[0x28, 0xb5, 0x2f, 0xfd]),
        (Compression::Xz, &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    ];

    /// The longest magic: how many bytes [`Compression::detect`] wants to see.
    pub const MAGIC_LEN: usize = 6;

    /// The format whose magic `first` (a file's first bytes) starts with. A file shorter
    /// than a magic is not taken for a compressed one (no pcap magic starts like one).
    pub fn detect(first: &[u8]) -> Option<Compression> {
        Self::MAGICS
            .iter()
            .find(|(_, magic)| first.starts_with(magic))
            .map(|(c, _)| *c)
    }

    /// The format's usual name: `gzip`, `zstd` or `xz`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }
}

/// How far a decoder got, shared between it and the reader that owns it: compressed bytes
/// read from the file (for progress), and why decompression stopped, if it did.
#[derive(Debug, Default)]
pub struct Progress {
    read: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Progress {
    /// Compressed bytes read so far.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Why the decoder stopped (damage, a cut), if it did.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok()?.clone()
    }

    fn fail(&self, e: &io::Error) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert_with(|| describe(e));
        }
    }
}

/// A decoder's error in words: a cut stream says so, whatever the decoder calls it.
fn describe(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        "the compressed data ends early (the file is cut short)".to_string()
    } else {
        e.to_string()
    }
}

/// Counts the compressed bytes read.
struct Counted<R> {
    inner: R,
    progress: Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Records the decoder's first error in [`Progress`] (the capture reader's own parser
/// keeps only that a read failed). A decoder that panics on hostile data (none is known to)
/// is an error like any other, and is not called again: what was read before is analysed.
struct Recorded<R> {
    inner: R,
    progress: Arc<Progress>,
    panicked: bool,
}

impl<R: Read> Read for Recorded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.panicked {
            return Err(io::Error::other("the decoder failed"));
        }
        let inner = &mut self.inner;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.read(buf)))
            .unwrap_or_else(|_| {
                self.panicked = true;
                Err(io::Error::other(
                    "the decoder failed on this data (a bug in it: please report it with the file)",
                ))
            });
        result.inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.progress.fail(e);
            }
        })
    }
}

/// The decompressed bytes of `raw`, a stream in format `kind` (its magic included), with
/// its progress recorded in `progress`.
pub fn decoder(
    kind: Compression,
    raw: Box<dyn Read + Send>,
    progress: Arc<Progress>,
) -> Box<dyn Read + Send> {
    let buffered = BufReader::with_capacity(
        RAW_BUFFER,
        Counted {
            inner: raw,
            progress: Arc::clone(&progress),
        },
    );
    let inner: Box<dyn Read + Send> = match kind {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(ZstdFrames::new(buffered)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            buffered,
            true,
            XZ_MEMORY_LIMIT / 1024,
        )),
    };
    Box::new(Recorded {
        inner,
        progress,
        panicked: false,
    })
}

/// Every frame of a zstd stream, one after the other (`zstd` writes one frame per input,
/// `zstd -T` and `pzstd` several, and `cat a.zst b.zst` is a valid stream); skippable
/// frames are skipped; a frame's checksum, when it has one, is checked.
struct ZstdFrames<R> {
    source: R,
    decoder: ruzstd::FrameDecoder,
    /// A frame is being decoded.
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            source,
            decoder: ruzstd::FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Starts the next frame; `false` at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        use ruzstd::frame::ReadFrameHeaderError;
        use ruzstd::frame_decoder::FrameDecoderError;
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped < u64::from(length) {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(zstd_error(e)),
            }
        }
    }
}

fn zstd_error(e: impl std::fmt::Display) -> io::Error {
    let text = e.to_string();
    // ruzstd reports a cut stream as a failed read of the bytes it needed.
    if text.contains("failed to fill whole buffer") || text.contains("UnexpectedEof") {
        io::ErrorKind::UnexpectedEof.into()
    } else {
        io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {text}"))
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            let d = &mut self.decoder;
            while d.can_collect() < buf.len() && !d.is_finished() {
                let more = buf.len() - d.can_collect();
                d.decode_blocks(
                    &mut self.source,
                    ruzstd::frame_decoder::BlockDecodingStrategy::UptoBytes(more),
                )
                .map_err(zstd_error)?;
            }
            let n = d.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is done and drained: check it, then go on to the next.
            if let (Some(stored), Some(computed)) =
                (d.get_checksum_from_data(), d.get_calculated_checksum())
            {
                if stored != computed {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("zstd: frame checksum mismatch (stored {stored:08x}, computed {computed:08x})"),
                    ));
                }
            }
            self.in_frame = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_their_magic() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 8, 0]),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0x24]),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
            Some(Compression::Xz)
        );
        // A cut magic, and every capture magic, are not compressed.
        assert_eq!(Compression::detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a]), None);
        assert_eq!(Compression::detect(&[0x1f]), None);
        for pcap in [[0xd4, 0xc3, 0xb2, 0xa1], [0x0a, 0x0d, 0x0d, 0x0a]] {
            assert_eq!(Compression::detect(&pcap), None);
        }
    }

    fn all(kind: Compression, bytes: &[u8]) -> (io::Result<Vec<u8>>, Arc<Progress>) {
        let progress = Arc::new(Progress::default());
        let mut d = decoder(
            kind,
            Box::new(Cursor::new(bytes.to_vec())),
            progress.clone(),
        );
        let mut out = Vec::new();
        let r = d.read_to_end(&mut out).map(|_| out);
        (r, progress)
    }

    use std::io::Cursor;

    #[test]
    fn a_panicking_decoder_is_an_error_not_a_crash() {
        struct Panics;
        impl Read for Panics {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                panic!("decoder bug");
            }
        }
        let progress = Arc::new(Progress::default());
        let mut r = Recorded {
            inner: Panics,
            progress: progress.clone(),
            panicked: false,
        };
        let mut buf = [0u8; 8];
        assert!(r.read(&mut buf).is_err());
        assert!(r.read(&mut buf).is_err(), "not called again");
        assert!(progress.error().unwrap().contains("decoder failed"));
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let member = |data: &[u8]| {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let mut both = member(b"first member, ");
        both.extend(member(b"second member"));
        let (out, progress) = all(Compression::Gzip, &both);
        assert_eq!(out.unwrap(), b"first member, second member");
        assert_eq!(progress.read(), both.len() as u64);
        assert!(progress.error().is_none());
        // Cut inside the second member: an error, recorded.
        let (out, progress) = all(Compression::Gzip, &both[..both.len() - 5]);
        assert!(out.is_err());
        assert!(progress.error().is_some());
    }
}
