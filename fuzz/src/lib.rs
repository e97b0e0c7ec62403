//! The fuzz targets' bodies, one function per target (`fuzz_targets/<name>.rs` calls
//! `resetscope_fuzz::<name>(data)`). Kept apart from libFuzzer and free of any dependency
//! but `resetscope` and std, so that `tests/fuzz_regressions.rs` in the main package
//! includes this very file and runs every saved crash through the same code path.
//!
//! Each function panics when a promise is broken: a crash, or a check stated beside it.

// `cfg(fuzzing)` is set by cargo fuzz; the main package does not declare it.
#![allow(unexpected_cfgs)]

use resetscope::app::{h2::H2, http::Http, tls::Tls, tolerant};
use resetscope::escape;
use resetscope::flows::reassembly::Chunk;
use resetscope::flows::reassembly::{Origin, Reassembler, StreamEvent};
use resetscope::flows::seq::SeqNumber;
use resetscope::flows::Side;
use resetscope::pipeline::{Analyzer, Options};
use resetscope::report::json::JsonWriter;
use resetscope::source::file::CaptureFile;
use resetscope::source::FrameRef;
use resetscope::time::Timestamp;
use std::path::{Path, PathBuf};

mod dangerous;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its function and of its `fuzz_targets/` file.
pub const TARGETS: &[(&str, Target)] = &[
    ("pcap", pcap),
    ("pcapng", pcapng),
    ("pipe", pipe),
    ("decode", decode),
    ("filter", filter),
    ("reassembly", reassembly),
    ("http", http),
    ("tls", tls),
    ("h2", h2),
    ("escape", escape),
    ("analyzer", analyzer),
];

/// The classic pcap magic numbers the reader accepts (as the file's first four bytes, read
/// little-endian): micro- and nanosecond, both byte orders, and Kuznetsov's modified pcap.
const PCAP_MAGICS: [u32; 6] = [
    0xA1B2C3D4, 0xD4C3B2A1, 0xA1B23C4D, 0x4D3CB2A1, 0xA1B2CD34, 0x34CDB2A1,
];

/// A file of this process's own in tmpfs (or the temp dir), rewritten for every input.
fn scratch(name: &str) -> PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.join(format!(
        "resetscope-fuzz-{}-{thread}-{name}",
        std::process::id()
    ))
}

/// One frame as read, owned, to compare two readers.
#[derive(Debug, PartialEq)]
struct Frame {
    frame: FrameRef,
    ts: Timestamp,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Reads every frame of `path`; checks that frame numbers count up from 1 and that the
/// reader ends (with or without an error). Each frame is also decoded.
fn read_all(path: &Path) -> Option<(Vec<Frame>, bool)> {
    let mut f = CaptureFile::open(path, 7).ok()?;
    let mut frames = Vec::new();
    let mut n = 0u64;
    loop {
        let _ = f.peek_ts();
        let Some(p) = f.next_packet() else { break };
        n += 1;
        assert_eq!(p.frame, FrameRef { file: 7, number: n }, "frame numbering");
        let _ = resetscope::decode::decode(p.linktype, p.data);
        frames.push(Frame {
            frame: p.frame,
            ts: p.ts,
            linktype: p.linktype,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        });
    }
    assert!(f.next_packet().is_none(), "a frame after the end");
    let stats = f.stats();
    let _ = serde_json::to_string(&stats);
    let error = f.take_error().map(|e| e.to_string());
    Some((frames, error.is_some()))
}

fn read_file_bytes(name: &str, bytes: &[u8]) -> Option<(Vec<Frame>, bool)> {
    let path = scratch(name);
    std::fs::write(&path, bytes).expect("scratch file");
    let out = read_all(&path);
    let _ = std::fs::remove_file(&path);
    out
}

/// Classic pcap through the memory-mapped reader: the first byte picks one of the six
/// magic numbers, the rest is the file after the magic.
pub fn pcap(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut file = PCAP_MAGICS[pick as usize % PCAP_MAGICS.len()]
        .to_le_bytes()
        .to_vec();
    file.extend_from_slice(rest);
    read_file_bytes("pcap", &file);
}

/// pcapng through the memory-mapped reader: the input is the file after the section header
/// block's type (`0a 0d 0d 0a`).
pub fn pcapng(data: &[u8]) {
    let mut file = vec![0x0a, 0x0d, 0x0d, 0x0a];
    file.extend_from_slice(data);
    read_file_bytes("pcapng", &file);
}

/// The read end of a pipe holding `data` (at most 64 KiB, what a pipe holds), and a path
/// that opens it. In the fuzzer: an anonymous pipe, the whole input written before reading,
/// so no thread and no SIGPIPE (libFuzzer's main does not ignore it).
#[cfg(fuzzing)]
fn pipe_of(data: &[u8]) -> (impl Sized, PathBuf) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    writer.write_all(data).expect("write to pipe");
    drop(writer);
    let path = PathBuf::from(format!("/proc/self/fd/{}", reader.as_raw_fd()));
    (reader, path)
}

/// The same for the regression tests, without `std::io::pipe` (newer than the package's
/// minimum Rust): `cat` of a scratch file writes into the pipe.
#[cfg(not(fuzzing))]
fn pipe_of(data: &[u8]) -> (impl Sized, PathBuf) {
    use std::os::fd::AsRawFd;
    struct Cat {
        child: std::process::Child,
        _stdout: std::process::ChildStdout,
        file: PathBuf,
    }
    impl Drop for Cat {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_file(&self.file);
        }
    }
    let file = scratch("pipe-source");
    std::fs::write(&file, data).expect("scratch file");
    let mut child = std::process::Command::new("cat")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cat");
    let out = child.stdout.take().expect("cat's stdout");
    let path = PathBuf::from(format!("/proc/self/fd/{}", out.as_raw_fd()));
    let cat = Cat {
        child,
        _stdout: out,
        file,
    };
    (cat, path)
}

/// A capture read from a pipe (the streaming reader, as for `analyze /dev/stdin`), in
/// either format: the input is the whole file. The streaming reader must yield exactly the
/// frames the memory-mapped reader yields from the same bytes, and end in an error exactly
/// when it does.
pub fn pipe(data: &[u8]) {
    let data = &data[..data.len().min(65536)];
    let (reader, path) = pipe_of(data);
    let streamed = read_all(&path);
    drop(reader);
    let mapped = read_file_bytes("pipe", data);
    match (streamed, mapped) {
        (Some((s, s_err)), Some((m, m_err))) => {
            assert_eq!(s, m, "the pipe and the mapped file yield different frames");
            assert_eq!(s_err, m_err, "only one of the two readers met an error");
        }
        (None, None) => {}
        (s, m) => panic!(
            "only one reader opened the capture: pipe {}, file {}",
            s.is_some(),
            m.is_some()
        ),
    }
}

/// Capture filters: the bytes up to the first NUL are the expression (as UTF-8, lossily),
/// the rest a frame as for [`decode`]. Parsing and matching never panic, and an expression
/// combined with itself by `and` or `or` keeps exactly the frames it keeps.
pub fn filter(data: &[u8]) {
    const LINKTYPES: [u32; 10] = [1, 113, 276, 0, 108, 12, 14, 101, 228, 229];
    let (text, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let Ok(f) = resetscope::filter::Filter::parse(&text) else {
        return;
    };
    let Some((&pick, frame)) = rest.split_first() else {
        return;
    };
    let linktype = LINKTYPES.get(pick as usize).copied().unwrap_or(pick as u32);
    let kept = f.matches(linktype, frame);
    for joined in [
        format!("({text}) and ({text})"),
        format!("({text}) or ({text})"),
    ] {
        if let Ok(g) = resetscope::filter::Filter::parse(&joined) {
            assert_eq!(g.matches(linktype, frame), kept, "{joined:?}");
        }
    }
}

/// Link-layer decoding: the first byte picks a link type (the ones decoded, or any value),
/// the rest is the frame. A segment's payload must lie inside the frame and be no longer
/// than its length on the wire.
pub fn decode(data: &[u8]) {
    const LINKTYPES: [u32; 10] = [1, 113, 276, 0, 108, 12, 14, 101, 228, 229];
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let linktype = LINKTYPES.get(pick as usize).copied().unwrap_or(pick as u32);
    if let Ok(seg) = resetscope::decode::decode(linktype, frame) {
        let (lo, hi) = (
            frame.as_ptr() as usize,
            frame.as_ptr() as usize + frame.len(),
        );
        let p = seg.payload.as_ptr() as usize;
        assert!(
            seg.payload.is_empty() || (p >= lo && p + seg.payload.len() <= hi),
            "payload outside the frame"
        );
        assert!(
            seg.payload.len() as u64 <= seg.payload_len as u64,
            "captured payload {} longer than on the wire {}",
            seg.payload.len(),
            seg.payload_len
        );
        let _ = seg.seq_len();
    }
}

/// Byte `seq` of the one true stream every segment is cut from.
fn stream_byte(seq: u32) -> u8 {
    (seq ^ (seq >> 8) ^ (seq >> 16)) as u8
}

/// A little reader of fuzz input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Reassembly of one direction: segments cut from one stream (so any byte delivered must be
/// that stream's byte at its sequence number), sent out of order, again, overlapping, cut
/// short, with acknowledgments and flushes between. The events must tile the stream: each
/// starts where the one before ended, and `offset()` counts them. Shedding (the memory
/// budget) is one of the operations.
pub fn reassembly(data: &[u8]) {
    let mut inp = Input(data);
    let (Some(isn), Some(cap)) = (inp.u32(), inp.u16()) else {
        return;
    };
    let cap = cap as usize;
    let mut r = Reassembler::default();
    if isn & 1 == 0 {
        r.start_at(SeqNumber(isn));
    }
    let mut payload = Vec::new();
    let mut frame = 0u64;
    // (next sequence number expected, bytes delivered or skipped) as the events say.
    let mut expect: Option<u32> = r.next_seq().map(|s| s.0);
    let mut total = 0u64;
    while let Some(op) = inp.u8() {
        frame += 1;
        let at = Origin {
            frame: FrameRef {
                file: 0,
                number: frame,
            },
            ts: Timestamp(frame as i64 * 1000),
            ack: None,
        };
        let (f, ts) = (at.frame, at.ts);
        let mut events = Vec::new();
        let mut out = |e: StreamEvent<'_>| match e {
            StreamEvent::Data(c) => {
                events.push((c.seq.0, c.data.len() as u64, Some(c.data.to_vec())))
            }
            StreamEvent::Gap { len, .. } => events.push((u32::MAX, len, None)),
        };
        match op % 8 {
            // A segment: offset from the ISN (signed), captured length, bytes cut.
            0..=4 => {
                let (Some(off), Some(len), Some(cut)) = (inp.u16(), inp.u8(), inp.u8()) else {
                    break;
                };
                let off = off as i16 as i32 * if op & 0x80 != 0 { 64 } else { 1 };
                let seq = isn.wrapping_add(off as u32);
                let cut = if op & 0x40 != 0 { cut as u32 } else { 0 };
                payload.clear();
                payload.extend((0..len as u32).map(|i| stream_byte(seq.wrapping_add(i))));
                r.segment(
                    SeqNumber(seq),
                    &payload,
                    len as u32 + cut,
                    at,
                    cap,
                    &mut out,
                );
            }
            5 | 6 => {
                let Some(off) = inp.u16() else { break };
                let off = off as i16 as i32 * if op & 0x80 != 0 { 64 } else { 1 };
                r.acked(SeqNumber(isn.wrapping_add(off as u32)), f, ts, &mut out);
            }
            // The memory budget's shedding: what is buffered goes out, with gaps; a second
            // shed has nothing left to free.
            _ if op & 0x80 != 0 => {
                r.shed(f, ts, &mut out);
                assert_eq!(r.shed(f, ts, &mut out), 0, "a second shed freed bytes");
            }
            _ => r.flush(f, ts, &mut out),
        }
        for (seq, len, bytes) in events {
            if let Some(bytes) = bytes {
                if let Some(e) = expect {
                    assert_eq!(seq, e, "data does not start where the stream stands");
                }
                for (i, b) in bytes.iter().enumerate() {
                    assert_eq!(
                        *b,
                        stream_byte(seq.wrapping_add(i as u32)),
                        "byte {i} of the chunk at {seq} is not the stream's"
                    );
                }
                expect = Some(seq.wrapping_add(len as u32));
            } else {
                assert!(len > 0, "an empty gap");
                expect = expect.map(|e| e.wrapping_add(len as u32));
            }
            total += len;
        }
        assert_eq!(
            r.offset(),
            total,
            "offset() is not what the events delivered"
        );
        if let (Some(e), Some(n)) = (expect, r.next_seq()) {
            assert_eq!(n.0, e, "next_seq() is not where the events ended");
        }
    }
}

/// What an application parser is fed: a conversation of both sides' stream events.
trait Parser {
    fn event(&mut self, side: Side, ev: StreamEvent<'_>);
    fn fin(&mut self, _side: Side, _frame: FrameRef, _ts: Timestamp) {}
    fn done(&mut self) {}
}

/// Feeds a conversation to `p`. The input is records: a control byte (bit 0: the side, 1
/// for the server; bits 1-2: 0 or 1 data, 2 a gap, 3 a FIN; bits 3-7: milliseconds since the
/// record before), a little-endian u16 length, then that many bytes for data (a gap is
/// only its length).
fn converse(data: &[u8], p: &mut dyn Parser) {
    let mut inp = Input(data);
    let mut seq = [SeqNumber(1000), SeqNumber(0x7fff_ff00)];
    let mut frame = 0u64;
    let mut ms = 0i64;
    while let (Some(ctl), Some(len)) = (inp.u8(), inp.u16()) {
        frame += 1;
        ms += (ctl >> 3) as i64;
        let side = if ctl & 1 == 0 {
            Side::Client
        } else {
            Side::Server
        };
        let f = FrameRef {
            file: 0,
            number: frame,
        };
        let ts = Timestamp(ms * 1_000_000);
        let s = &mut seq[side as usize];
        match (ctl >> 1) & 3 {
            0 | 1 => {
                let bytes = inp.bytes(len as usize);
                if bytes.is_empty() {
                    continue;
                }
                p.event(
                    side,
                    StreamEvent::Data(Chunk {
                        data: bytes,
                        seq: *s,
                        frame: f,
                        ts,
                        ack: Some(SeqNumber(frame as u32)),
                    }),
                );
                *s = s.plus(bytes.len() as u32);
            }
            2 => {
                let len = (len as u64).max(1);
                p.event(side, StreamEvent::Gap { len, frame: f, ts });
                *s = s.plus(len as u32);
            }
            _ => p.fin(side, f, ts),
        }
    }
    p.done();
}

impl Parser for Http {
    fn event(&mut self, side: Side, ev: StreamEvent<'_>) {
        self.on_event(side, ev);
    }
    fn fin(&mut self, side: Side, frame: FrameRef, ts: Timestamp) {
        self.on_fin(side, resetscope::app::Mark { frame, ts });
    }
    fn done(&mut self) {
        for r in &self.requests {
            let _ = (escape::terminal(&r.target), r.idempotent(), &r.response);
        }
    }
}

impl Parser for Tls {
    fn event(&mut self, side: Side, ev: StreamEvent<'_>) {
        self.on_event(side, ev);
    }
    fn done(&mut self) {
        let _ = (self.unanswered(), self.answered(), self.last_exchange_end());
    }
}

impl Parser for H2 {
    fn event(&mut self, side: Side, ev: StreamEvent<'_>) {
        self.on_event(side, ev);
    }
    fn done(&mut self) {
        for s in self.streams() {
            let _ = (&s.method, &s.path, s.status);
        }
        let _ = (self.goaway(), self.lost(), self.streams_dropped());
    }
}

/// The HTTP/1.x parser (and through it the tolerant reader, chunked bodies, and HTTP/2 after
/// `Upgrade: h2c`) on a conversation (see [`converse`]). The tolerant reader is also handed
/// the client's first record whole, as a request head and as a response head.
pub fn http(data: &[u8]) {
    let mut h = Http::default();
    converse(data, &mut h);
    if data.len() > 3 {
        let _ = tolerant::parse(&data[3..], true);
        let _ = tolerant::parse(&data[3..], false);
    }
}

/// The TLS record follower (and the ClientHello/ServerHello reader) on a conversation.
pub fn tls(data: &[u8]) {
    converse(data, &mut Tls::default());
}

/// The HTTP/2 frame follower and HPACK decoder on a conversation (prior knowledge: the
/// client's stream should start with the preface).
pub fn h2(data: &[u8]) {
    converse(data, &mut H2::default());
}

fn is_dangerous(c: char) -> bool {
    let u = c as u32;
    dangerous::DANGEROUS
        .binary_search_by(|&(lo, hi)| {
            if hi < u {
                std::cmp::Ordering::Less
            } else if lo > u {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The escapers. The first byte picks how the rest becomes text (as UTF-8, lossily; or
/// three bytes per code point, to reach every plane) and the length limit. Checked exactly
/// what `src/escape.rs` promises, against this crate's own table of Cc, Cf, Zl, Zp and
/// Bidi_Control code points (`src/dangerous.rs`, from the Unicode tables of another crate):
/// - terminal: every dangerous character shown as `\xNN` (below U+0100) or `\u{hex}`, a
///   backslash as `\\`, every other character as itself, cut after `max` characters with
///   `…`: nothing else.
/// - markdown: the terminal text with each of `` \ ` * _ [ ] < > & # | ~ $ @ `` behind a
///   backslash, no backslash before anything else that cannot make Markdown, and none of
///   what makes Markdown only somewhere left raw there (`- + =` first, `http:/`, `www.`,
///   `1. ` first, spaces at either end, written `&#32;`).
/// - JSON: valid, reads back to the text, no dangerous character raw; `terminal_lines`;
///   `is_dangerous` agrees with the table.
/// - html: the terminal text with `& < > " '` as `&amp; &lt; &gt; &quot; &#39;`, so none
///   of them is left raw.
pub fn escape(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text: String = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        rest.chunks(3)
            .filter_map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_le_bytes(b) % 0x11_0000)
            })
            .collect()
    };
    let max = match mode >> 1 {
        0 => escape::MAX_CHARS,
        n => n as usize,
    };
    // terminal, exactly.
    let mut expected = String::new();
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            expected.push('…');
            break;
        }
        if c == '\\' {
            // A captured backslash is doubled, so that it cannot start a forged escape.
            expected.push_str("\\\\");
        } else if is_dangerous(c) {
            if (c as u32) < 0x100 {
                expected.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                expected.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
        } else {
            expected.push(c);
        }
    }
    let term = escape::terminal_max(&text, max);
    assert_eq!(term, expected, "terminal escape of {text:?}");
    if max == escape::MAX_CHARS {
        assert_eq!(escape::terminal(&text), term);
    }
    for c in term.chars() {
        assert!(!is_dangerous(c), "terminal let U+{:04X} through", c as u32);
    }

    // markdown: undo the backslashes and `&#32;`; what is left is the terminal text, every
    // character that always makes Markdown stands behind a backslash, and none of the
    // characters that make it only somewhere (a list marker at the start, `http:/`, `www.`,
    // `1. ` at the start, spaces that would be trimmed) is left raw there.
    const ALWAYS: &[char] = &['\\', '`', '*', '[', ']', '<', '>', '&', '|', '$', '@'];
    const SOMETIMES: &[char] = &[':', '.', ')', '-', '+', '=', '_', '~', '#'];
    let md = escape::markdown_max(&text, max);
    // (character, written raw)
    let mut tokens: Vec<(char, bool)> = Vec::new();
    let mut rest = md.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("&#32;") {
            tokens.push((' ', false));
            rest = r;
        } else if c == '\\' {
            let next = rest[1..]
                .chars()
                .next()
                .expect("markdown ends in a lone backslash");
            assert!(
                ALWAYS.contains(&next) || SOMETIMES.contains(&next),
                "markdown escaped {next:?}, which makes no Markdown, in {md:?}"
            );
            tokens.push((next, false));
            rest = &rest[1 + next.len_utf8()..];
        } else {
            assert!(
                !ALWAYS.contains(&c),
                "markdown left {c:?} unescaped in {md:?}"
            );
            assert!(!is_dangerous(c), "markdown let U+{:04X} through", c as u32);
            tokens.push((c, true));
            rest = &rest[c.len_utf8()..];
        }
    }
    let plain: String = tokens.iter().map(|t| t.0).collect();
    assert_eq!(plain, term, "markdown is not the terminal text escaped");
    let chars: Vec<char> = tokens.iter().map(|t| t.0).collect();
    let first = chars.iter().position(|&c| c != ' ');
    let last = chars.iter().rposition(|&c| c != ' ');
    for (i, &(c, raw)) in tokens.iter().enumerate() {
        if !raw {
            continue;
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let bad = match c {
            '-' | '+' | '=' => i == 0,
            // Emphasis or strike-through could start or end here.
            '_' => {
                !(prev.is_some_and(char::is_alphanumeric)
                    && next.is_some_and(char::is_alphanumeric))
            }
            '~' => {
                !(prev.is_some_and(|p| p.is_whitespace() || p == '(')
                    && next.is_some_and(char::is_alphanumeric))
            }
            // A heading, or the closing run of one.
            '#' => i == 0 || chars[i..].iter().all(|&c| c == '#'),
            ' ' => first.is_none_or(|f| i < f) || last.is_none_or(|l| i > l),
            ':' => prev.is_some_and(|p| p.is_ascii_alphabetic()) && next == Some('/'),
            '.' if i >= 3 && chars[i - 3..i].iter().all(|w| w.eq_ignore_ascii_case(&'w')) => true,
            '.' | ')' => {
                (1..=9).contains(&i)
                    && chars[..i].iter().all(char::is_ascii_digit)
                    && next.is_none_or(|n| n == ' ')
            }
            _ => false,
        };
        assert!(!bad, "markdown left {c:?} raw at {i} in {md:?}");
    }
    if max == escape::MAX_CHARS {
        assert_eq!(escape::markdown(&text), md);
    }

    // JSON: valid, reads back to the very text, and no dangerous character raw.
    let json = escape::json_to_string(&text).expect("json");
    for c in json.chars() {
        assert!(!is_dangerous(c), "json let U+{:04X} through", c as u32);
    }
    let back: String = serde_json::from_str(&json).expect("the JSON does not parse");
    assert_eq!(back, text, "the JSON does not read back to the text");

    // terminal_lines: each line escaped whole, the line breaks kept.
    let lines = escape::terminal_lines(&text);
    let expected: Vec<String> = text
        .split('\n')
        .map(|l| escape::terminal_max(l, usize::MAX))
        .collect();
    assert_eq!(lines, expected.join("\n"));

    // The one predicate agrees with this target's table.
    for c in text.chars() {
        assert_eq!(
            escape::is_dangerous(c),
            is_dangerous(c),
            "is_dangerous(U+{:04X})",
            c as u32
        );
    }

    // html: no raw `< > " '`; every `&` starts one of the five entities; decoding them gives
    // the terminal text.
    let html = escape::html_max(&text, max);
    let mut plain = String::new();
    let mut rest = html.as_str();
    while let Some(c) = rest.chars().next() {
        assert!(
            !matches!(c, '<' | '>' | '"' | '\''),
            "html left {c:?} raw in {html:?}"
        );
        assert!(!is_dangerous(c), "html let U+{:04X} through", c as u32);
        if c == '&' {
            let (ent, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
                ("&#39;", '\''),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e))
            .expect("html: a raw & from the input");
            plain.push(ch);
            rest = &rest[ent.len()..];
        } else {
            plain.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    assert_eq!(plain, term, "html is not the terminal text escaped");
    if max == escape::MAX_CHARS {
        assert_eq!(escape::html(&text), html);
    }
}

/// The whole pipeline on a capture file (either format): reading, decoding, the flow
/// table, reassembly, the application parsers, diagnosis, and the JSON report, which must
/// be valid JSON.
pub fn analyzer(data: &[u8]) {
    let path = scratch("analyzer");
    std::fs::write(&path, data).expect("scratch file");
    let Ok(mut file) = CaptureFile::open(&path, 0) else {
        let _ = std::fs::remove_file(&path);
        return;
    };
    let mut json = JsonWriter::new(Vec::new()).expect("json report");
    let mut options = Options::default();
    // Small limits, so that eviction and caps are reached on small inputs too.
    options.flows.max_flows = 4;
    options.flows.max_buffer = 4096;
    let mut a = Analyzer::new(&options);
    while let Some(p) = file.next_packet() {
        a.packet(&p, &mut json);
    }
    let analysis = a.finish(&mut json);
    let out = json.finish(&analysis).expect("json report");
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
        panic!("the JSON report does not parse: {e}");
    }
    // The same report whatever the number of threads (with a flow cap the input cannot
    // reach: a shard that reaches it evicts what one table would not).
    let report = |threads: usize| {
        let mut options = Options::default();
        options.flows.max_buffer = 4096;
        options.threads = threads;
        let mut json = JsonWriter::new(Vec::new()).expect("json report");
        let set = resetscope::source::merge::CaptureSet::open(std::slice::from_ref(&path));
        let (analysis, _) = resetscope::pipeline::analyze_set(set, &options, &mut json);
        json.finish(&analysis).expect("json report")
    };
    let one = report(1);
    let three = report(3);
    let _ = std::fs::remove_file(&path);
    assert!(
        one == three,
        "the JSON report with 3 threads differs from 1 thread's:\n{}\n{}",
        String::from_utf8_lossy(&one),
        String::from_utf8_lossy(&three)
    );
}
