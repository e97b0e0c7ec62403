//! Keeping a piped input for a second read.
//!
//! Ticket reports (packet ladders) and `--extract` read the inputs twice: once to analyse,
//! once to pick out the packets of the connections with findings. A pipe, a FIFO or a
//! terminal can be read only once, so such an input is copied, as the first pass reads it,
//! into a [`Spool`]: a scratch file in the temporary directory (`TMPDIR`) that is unlinked
//! the moment it is created, so nothing is left behind however the program ends. The second
//! pass reads the copy, a regular file, exactly as it would have read the original.
//!
//! If the copy cannot be written to the end (the disk fills up), the first pass goes on
//! regardless; the spool remembers where and why it stopped, and that becomes a caveat: the
//! ladders and the extract then hold only the packets before that point.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How far the copy got, shared between the writer (inside the first pass's reader) and
/// the [`Spool`].
#[derive(Debug, Default)]
struct State {
    /// Bytes copied.
    bytes: u64,
    /// Why copying stopped, if it did.
    error: Option<String>,
}

/// The scratch copy of one piped input.
#[derive(Debug)]
pub struct Spool {
    file: File,
    dir: PathBuf,
    state: Arc<Mutex<State>>,
}

impl Spool {
    /// Creates an unlinked scratch file in the temporary directory (`TMPDIR`, else `/tmp`).
    pub fn create() -> io::Result<Spool> {
        Spool::create_in(&std::env::temp_dir())
    }

    /// Creates an unlinked scratch file in `dir`.
    pub fn create_in(dir: &Path) -> io::Result<Spool> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0;
        loop {
            let name = dir.join(format!(
                ".resetscope-spool-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&name)
            {
                Ok(file) => {
                    // Unlinked at once: the open handle keeps the data, and nothing is left
                    // behind however the program ends.
                    std::fs::remove_file(&name)?;
                    return Ok(Spool {
                        file,
                        dir: dir.to_path_buf(),
                        state: Arc::default(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The directory the scratch file lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A writer that appends to the copy; give it to the first pass's reader.
    pub fn writer(&self) -> io::Result<SpoolWriter> {
        Ok(SpoolWriter {
            file: Some(self.file.try_clone()?),
            state: Arc::clone(&self.state),
        })
    }

    /// Bytes copied so far.
    pub fn bytes(&self) -> u64 {
        self.state.lock().map(|s| s.bytes).unwrap_or(0)
    }

    /// Why the copy is incomplete, if it is: the error that stopped it, and how many bytes
    /// it holds.
    pub fn failure(&self) -> Option<(String, u64)> {
        let s = self.state.lock().ok()?;
        s.error.clone().map(|e| (e, s.bytes))
    }

    /// The copy, for the second pass: a handle on the (regular, unlinked) file, at its start.
    pub fn reopen(&self) -> io::Result<File> {
        let mut f = self.file.try_clone()?;
        f.rewind()?;
        Ok(f)
    }
}

/// Appends what the first pass reads to a [`Spool`]. After a write error it stops copying
/// (and records the error) but never fails the read.
#[derive(Debug)]
pub struct SpoolWriter {
    file: Option<File>,
    state: Arc<Mutex<State>>,
}

impl SpoolWriter {
    /// Copies `data`; after an error, does nothing. Counts every byte that reached the
    /// file, so that the count is what the copy holds.
    pub fn copy(&mut self, data: &[u8]) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut done = 0;
        let mut error = None;
        while done < data.len() {
            match file.write(&data[done..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Ok(mut s) = self.state.lock() {
            s.bytes += done as u64;
            if let Some(e) = &error {
                s.error = Some(e.to_string());
            }
        }
        if error.is_some() {
            self.file = None;
        }
    }
}

/// A reader that copies everything it reads to a [`SpoolWriter`].
pub(super) struct Tee<R> {
    pub(super) inner: R,
    pub(super) copy: SpoolWriter,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.copy(&buf[..n]);
        Ok(n)
    }
}

/// True when `path` cannot be read twice: anything but a regular file (a pipe, a FIFO, a
/// terminal, `/dev/stdin` on a pipe), and `-` (standard input) unless it is redirected from
/// a regular file. A path that cannot be inspected is left to the first pass to report.
pub fn needs_spool(path: &Path) -> bool {
    let meta = if super::is_stdin(path) {
        super::stdin_file().and_then(|f| f.metadata())
    } else {
        std::fs::metadata(path)
    };
    meta.is_ok_and(|m| !m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_keeps_what_was_read_and_leaves_no_file() {
        let dir =
            std::env::temp_dir().join(format!("resetscope-spool-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let spool = Spool::create_in(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "unlinked");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut tee = Tee {
            inner: &data[..],
            copy: spool.writer().unwrap(),
        };
        let mut seen = Vec::new();
        let mut buf = [0u8; 777];
        loop {
            let n = tee.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert_eq!(seen, data);
        assert_eq!(spool.bytes(), data.len() as u64);
        assert!(spool.failure().is_none());
        let mut back = Vec::new();
        spool.reopen().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_copy_is_remembered_and_reading_goes_on() {
        // /dev/full fails every write with ENOSPC, as a full disk does.
        let spool = Spool::create().unwrap();
        let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let mut tee = Tee {
            inner: &b"abcdefgh"[..],
            copy: SpoolWriter {
                file: Some(full),
                state: Arc::clone(&spool.state),
            },
        };
        let mut buf = [0u8; 4];
        assert_eq!(tee.read(&mut buf).unwrap(), 4);
        assert_eq!(tee.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"efgh");
        let (why, bytes) = spool.failure().unwrap();
        assert!(why.contains("No space left"), "{why}");
        assert_eq!(bytes, 0);
    }
}
