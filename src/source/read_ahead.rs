//! Several capture files read at once, each on a thread of its own.
//!
//! A [`super::merge::CaptureSet`] of several files spends its calling thread parsing every
//! file's records. Given [`ReadAhead`], each file is parsed by its own thread into chunks of
//! frames (their bytes copied into the chunk, with where each begins), handed over on a
//! bounded channel; the calling thread only merges the chunks' frames by timestamp, with
//! the same rule and in the same order as reading the files itself (earliest time first,
//! ties to the earlier file), so the analysis is the same byte for byte.
//!
//! What the chunks hold is bounded: every file has at most three of them at once (the
//! one being merged, the one waiting, the one being filled), all of one size chosen so that
//! the whole read-ahead holds [`READ_AHEAD_BYTES`] at most.

use super::file::CaptureFile;
use super::{FileStats, FrameRef, RawPacket, SourceError};
use crate::time::Timestamp;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// What the chunks of every file may hold together, at most (a part of what the memory
/// budget sets aside for input buffers, [`crate::pipeline::BUDGET_RESERVE`]; a chunk may
/// pass its size by one frame).
pub const READ_AHEAD_BYTES: usize = 4 << 20;
/// Chunks each file has at once, at most.
const CHUNKS: usize = 3;
/// The smallest chunk: below it, handing chunks over costs more than reading saves.
const MIN_CHUNK: usize = 64 << 10;
/// The largest chunk.
const MAX_CHUNK: usize = 1 << 20;

/// The size of each chunk when `files` files are read ahead, or `None` when so many files
/// would make chunks smaller than is worth it (they are then read on the calling thread).
pub fn chunk_size(files: usize) -> Option<usize> {
    if files < 2 {
        return None;
    }
    let size = (READ_AHEAD_BYTES / (files * CHUNKS)).min(MAX_CHUNK);
    (size >= MIN_CHUNK).then_some(size)
}

/// One frame of a chunk: what [`RawPacket`] says of it, its bytes as a range of the chunk.
struct Frame {
    number: u64,
    ts: Timestamp,
    linktype: u32,
    orig_len: u32,
    start: usize,
    len: usize,
    /// The packet comment's range, when it has one.
    comment: Option<(usize, usize)>,
}

/// Frames of one file, in file order.
#[derive(Default)]
struct Chunk {
    frames: Vec<Frame>,
    bytes: Vec<u8>,
    /// The file's [`CaptureFile::position`] after the chunk's last frame.
    position: (u64, Option<u64>),
    /// The file ended with this chunk: what it says of itself.
    end: Option<Box<End>>,
}

/// What a file says of itself once it has been read to its end.
struct End {
    stats: FileStats,
    error: Option<SourceError>,
}

/// One file, read on its thread.
struct Reader {
    rx: Receiver<Chunk>,
    /// Merged chunks go back to the thread to be filled again.
    spent: Sender<Chunk>,
    chunk: Chunk,
    /// The next frame of `chunk` to hand on.
    next: usize,
    /// The file's index among the inputs.
    index: u16,
    /// Set once the last chunk has come.
    end: Option<Box<End>>,
    thread: Option<JoinHandle<()>>,
}

impl Reader {
    /// Time of the next frame, waiting for the next chunk if needed; `None` at the end.
    fn peek_ts(&mut self) -> Option<Timestamp> {
        while self.next >= self.chunk.frames.len() {
            if self.end.is_some() {
                return None;
            }
            self.receive();
        }
        Some(self.chunk.frames[self.next].ts)
    }

    /// Takes the next chunk (or learns that the file has ended).
    fn receive(&mut self) {
        let got = self.rx.recv().unwrap_or_else(|_| {
            // The thread stopped without saying the file ended: it panicked. Joining
            // hands the panic on.
            if let Some(t) = self.thread.take() {
                if let Err(panic) = t.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            unreachable!("a reader thread ends by sending the file's end")
        });
        let mut spent = std::mem::replace(&mut self.chunk, got);
        self.next = 0;
        if let Some(end) = self.chunk.end.take() {
            self.end = Some(end);
            // The thread has handed everything on; once it has returned, the file (and a
            // copy of a piped input, for the second pass) is closed.
            if let Some(t) = self.thread.take() {
                if let Err(panic) = t.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        } else {
            spent.frames.clear();
            spent.bytes.clear();
            // The thread has stopped only when the file has ended.
            let _ = self.spent.send(spent);
        }
    }
}

/// Several files, each read on its own thread (see the module's documentation).
pub struct ReadAhead {
    readers: Vec<Reader>,
}

impl ReadAhead {
    /// Starts a thread for each of `files`, reading chunks of `chunk` bytes.
    pub fn start(files: Vec<CaptureFile>, chunk: usize) -> ReadAhead {
        let readers = files
            .into_iter()
            .map(|f| {
                let index = f.index();
                let (tx, rx) = mpsc::sync_channel(1);
                let (spent, spare) = mpsc::channel();
                let thread = std::thread::Builder::new()
                    .name(format!("resetscope-read-{index}"))
                    .spawn(move || read(f, chunk, tx, spare))
                    .expect("a reader thread");
                Reader {
                    rx,
                    spent,
                    chunk: Chunk::default(),
                    next: 0,
                    index,
                    end: None,
                    thread: Some(thread),
                }
            })
            .collect();
        ReadAhead { readers }
    }

    /// The next frame across all files, earliest timestamp first (ties: earlier file), as
    /// [`super::merge::CaptureSet::next_packet`] picks it.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, r) in self.readers.iter_mut().enumerate() {
            if let Some(ts) = r.peek_ts() {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        let r = &mut self.readers[best?.0];
        let f = &r.chunk.frames[r.next];
        r.next += 1;
        let bytes = &r.chunk.bytes;
        Some(RawPacket {
            frame: FrameRef {
                file: r.index,
                number: f.number,
            },
            ts: f.ts,
            linktype: f.linktype,
            orig_len: f.orig_len,
            data: &bytes[f.start..f.start + f.len],
            comment: f
                .comment
                .and_then(|(s, l)| std::str::from_utf8(&bytes[s..s + l]).ok()),
        })
    }

    /// Bytes read so far over all files (as far as the chunks handed over say), and their
    /// total size when every size is known.
    pub fn position(&self) -> (u64, Option<u64>) {
        self.readers.iter().fold((0, Some(0)), |(read, total), r| {
            let (done, size) = r.chunk.position;
            (read + done, total.zip(size).map(|(a, b)| a + b))
        })
    }

    /// The damage met by the files that have ended, in input order (taken once).
    pub fn take_errors(&mut self) -> Vec<SourceError> {
        self.readers
            .iter_mut()
            .filter_map(|r| r.end.as_mut()?.error.take())
            .collect()
    }

    /// The statistics of the files that have ended, with their index among the inputs.
    pub fn stats(&self) -> impl Iterator<Item = (u16, &FileStats)> {
        self.readers
            .iter()
            .filter_map(|r| Some((r.index, &r.end.as_ref()?.stats)))
    }
}

/// A reader thread: fills chunks from `file` and hands them over until the file ends, then
/// hands over its end. Stops early when the set is dropped.
fn read(mut file: CaptureFile, size: usize, tx: SyncSender<Chunk>, spare: Receiver<Chunk>) {
    let frame_cost = std::mem::size_of::<Frame>();
    let mut made = 0;
    loop {
        let mut chunk = match spare.try_recv() {
            Ok(c) => c,
            // The first chunks are new; later ones wait for a spent one to come back, so
            // that the file never has more than CHUNKS.
            Err(_) if made < CHUNKS => {
                made += 1;
                Chunk {
                    frames: Vec::new(),
                    bytes: Vec::with_capacity(size),
                    ..Chunk::default()
                }
            }
            Err(_) => match spare.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let mut ended = true;
        while let Some(p) = file.next_packet() {
            let start = chunk.bytes.len();
            chunk.bytes.extend_from_slice(p.data);
            let comment = p.comment.map(|c| {
                let s = chunk.bytes.len();
                chunk.bytes.extend_from_slice(c.as_bytes());
                (s, c.len())
            });
            chunk.frames.push(Frame {
                number: p.frame.number,
                ts: p.ts,
                linktype: p.linktype,
                orig_len: p.orig_len,
                start,
                len: p.data.len(),
                comment,
            });
            if chunk.bytes.len() + chunk.frames.len() * frame_cost >= size {
                ended = false;
                break;
            }
        }
        chunk.position = file.position();
        if ended {
            chunk.end = Some(Box::new(End {
                stats: file.stats(),
                error: file.take_error(),
            }));
        }
        if tx.send(chunk).is_err() || ended {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_the_read_ahead_budget_at_most() {
        assert_eq!(chunk_size(1), None);
        assert_eq!(chunk_size(2), Some(READ_AHEAD_BYTES / 6));
        for files in 2..=21 {
            let size = chunk_size(files).expect("a chunk");
            assert!(size * files * CHUNKS <= READ_AHEAD_BYTES);
            assert!(size >= MIN_CHUNK);
        }
        assert_eq!(chunk_size(22), None);
    }
}
