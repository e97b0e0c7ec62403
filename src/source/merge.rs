//! Several capture files read as one capture, in timestamp order.
//!
//! Rotated captures (`tcpdump -G`/`-C`) and captures taken on several interfaces are given as
//! several files. [`CaptureSet`] peeks at the next frame of each and hands on the earliest,
//! so connections that span files are reassembled as one. Frames keep their own file's
//! numbering ([`super::FrameRef`]), so each can be opened in Wireshark.

use super::file::CaptureFile;
use super::read_ahead::{self, ReadAhead};
use super::spool::SpoolWriter;
use super::{FileStats, RawPacket, SourceError};
use std::fs::File;
use std::path::PathBuf;

/// One input of a [`CaptureSet`]: its path, and how to read it.
#[derive(Debug)]
pub struct Input {
    /// The path as given (`-` is standard input); frames and messages name it.
    pub path: PathBuf,
    /// How it is read.
    pub open: Open,
}

/// How an [`Input`] is read.
#[derive(Debug)]
pub enum Open {
    /// Open the path.
    Path,
    /// Open the path, and copy every byte read to this spool (a piped input that a second
    /// pass will need again).
    Tee(SpoolWriter),
    /// Read this file, already open (the spool of a piped input, for the second pass).
    File(File),
}

impl Input {
    /// The input at `path`, opened as it is.
    pub fn path(path: &std::path::Path) -> Input {
        Input {
            path: path.to_path_buf(),
            open: Open::Path,
        }
    }
}

/// The input files of one analysis.
pub struct CaptureSet {
    files: Vec<CaptureFile>,
    /// Errors met so far: files that could not be opened, and damage found while reading.
    errors: Vec<SourceError>,
    /// Paths in input order (including files that failed to open).
    paths: Vec<PathBuf>,
    /// The files, once [`CaptureSet::read_ahead`] has handed them to threads of their own
    /// (`files` is then empty).
    ahead: Option<ReadAhead>,
}

impl CaptureSet {
    /// Opens every path; files that cannot be opened are recorded as errors and skipped.
    pub fn open(paths: &[PathBuf]) -> CaptureSet {
        CaptureSet::open_inputs(paths.iter().map(|p| Input::path(p)).collect())
    }

    /// Opens every input as it says; those that cannot be opened are recorded as errors
    /// and skipped.
    pub fn open_inputs(inputs: Vec<Input>) -> CaptureSet {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        let mut paths = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let index = i as u16;
            let opened = match input.open {
                Open::Path => CaptureFile::open(&input.path, index),
                Open::Tee(copy) => CaptureFile::open_teed(&input.path, index, Some(copy)),
                Open::File(f) => CaptureFile::from_file(f, &input.path, index, None),
            };
            match opened {
                Ok(f) => files.push(f),
                Err(e) => errors.push(e),
            }
            paths.push(input.path);
        }
        CaptureSet {
            files,
            errors,
            paths,
            ahead: None,
        }
    }

    /// Reads each file on a thread of its own from now on, when there are several and the
    /// read-ahead's memory allows it ([`read_ahead::chunk_size`]); the frames come in the
    /// same order. Returns whether it does.
    pub fn read_ahead(&mut self) -> bool {
        if self.ahead.is_some() {
            return true;
        }
        let Some(chunk) = read_ahead::chunk_size(self.files.len()) else {
            return false;
        };
        self.ahead = Some(ReadAhead::start(std::mem::take(&mut self.files), chunk));
        true
    }

    /// How many inputs were opened (the others are in the errors): none means there is
    /// nothing to analyse.
    pub fn opened(&self) -> usize {
        self.files.len()
    }

    /// The set with `errors` put back (taken by [`CaptureSet::take_errors`] to look at them).
    pub fn with_errors(mut self, errors: Vec<SourceError>) -> CaptureSet {
        self.errors = errors;
        self
    }

    /// The next frame across all files, earliest timestamp first (ties: earlier file).
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        if let Some(ahead) = &mut self.ahead {
            return ahead.next_packet();
        }
        let pick = if self.files.len() == 1 {
            0
        } else {
            let mut best: Option<(usize, crate::time::Timestamp)> = None;
            for (i, f) in self.files.iter_mut().enumerate() {
                if let Some(ts) = f.peek_ts() {
                    if best.is_none_or(|(_, b)| ts < b) {
                        best = Some((i, ts));
                    }
                }
            }
            best?.0
        };
        self.files.get_mut(pick)?.next_packet()
    }

    /// Bytes read so far over all files, and their total size when every size is known.
    pub fn position(&self) -> (u64, Option<u64>) {
        if let Some(ahead) = &self.ahead {
            return ahead.position();
        }
        self.files.iter().fold((0, Some(0)), |(read, total), f| {
            let (r, t) = f.position();
            (read + r, total.zip(t).map(|(a, b)| a + b))
        })
    }

    /// Errors met so far (files that could not be opened, damage found while reading).
    pub fn take_errors(&mut self) -> Vec<SourceError> {
        for f in &mut self.files {
            if let Some(e) = f.take_error() {
                self.errors.push(e);
            }
        }
        if let Some(ahead) = &mut self.ahead {
            self.errors.extend(ahead.take_errors());
        }
        std::mem::take(&mut self.errors)
    }

    /// Per-file statistics, one per input path in input order (a file that could not be
    /// read at all has format `unreadable`), so that [`super::FrameRef::file`] indexes it.
    pub fn stats(&self) -> Vec<FileStats> {
        let mut out: Vec<FileStats> = self
            .paths
            .iter()
            .map(|p| FileStats {
                path: p.display().to_string(),
                format: super::UNREADABLE.into(),
                ..FileStats::default()
            })
            .collect();
        for f in &self.files {
            if let Some(slot) = out.get_mut(f.index() as usize) {
                *slot = f.stats();
            }
        }
        for (index, stats) in self.ahead.iter().flat_map(ReadAhead::stats) {
            if let Some(slot) = out.get_mut(index as usize) {
                *slot = stats.clone();
            }
        }
        out
    }
}
