//! Helpers for the integration tests: run the binary, and rewrite real captures into the
//! variants a test needs (other byte order or resolution, split files, damaged copies).

#![allow(dead_code)]

pub mod adversarial;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// GitHub's Markdown, as pulldown-cmark reads it: CommonMark with tables, strike-through,
/// task lists, footnotes, alerts and math (smart punctuation is not GFM).
pub fn gfm() -> pulldown_cmark::Options {
    use pulldown_cmark::Options;
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_GFM
        | Options::ENABLE_MATH
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Go race fixture (a real capture; see fixtures/go-idle-race/NOTES.md).
pub fn race_capture() -> PathBuf {
    root().join("fixtures/go-idle-race/capture.pcap")
}

/// (request frame, close frame) of every idle race in the race fixture, as its
/// expected.json (derived with tshark and the client's log) has them.
pub fn race_frames() -> Vec<(u64, u64)> {
    let path = root().join("fixtures/go-idle-race/expected.json");
    let e: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    expected_races(&e)
        .map(|f| {
            (
                f["request_frame"].as_u64().unwrap(),
                f["close_frame"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The `idle_race` findings of a fixture's expected.json.
pub fn expected_races(expected: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    expected["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "idle_race")
}

/// Runs `resetscope` with `args`, without colour.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run resetscope")
}

/// The words of a report with every run of spaces and line breaks made one space: what a
/// sentence says, wherever the terminal report wrapped it.
#[allow(dead_code)]
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A count and a regular noun as the reports write them: `1 connection`, `1,007 frames`.
#[allow(dead_code)]
pub fn things(n: u64, noun: &str) -> String {
    let digits = n.to_string();
    let mut count = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            count.push(',');
        }
        count.push(c);
    }
    format!("{count} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The findings table of a terminal report, row by row (the header first), each cell's
/// lines joined by spaces: what the row says, however its cells were wrapped. A row of the
/// stacked layout (narrow terminals) has two cells, the number and the finding.
#[allow(dead_code)]
pub fn table_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        let Some(inner) = line.strip_prefix('│').and_then(|l| l.strip_suffix('│')) else {
            continue;
        };
        let cells: Vec<&str> = inner.split('┆').map(str::trim).collect();
        if !cells[0].is_empty() || rows.is_empty() {
            rows.push(vec![String::new(); cells.len()]);
        }
        let row = rows.last_mut().unwrap();
        for (cell, piece) in row.iter_mut().zip(&cells) {
            if !piece.is_empty() {
                if !cell.is_empty() {
                    cell.push(' ');
                }
                cell.push_str(piece);
            }
        }
    }
    rows
}

/// Runs `resetscope analyze --format FORMAT FILE...`, which must succeed; returns its output.
pub fn analyze_as(format: &str, files: &[&Path]) -> String {
    analyze_with(&["--format", format], files)
}

/// Runs `resetscope analyze OPTIONS... FILE...`, which must succeed; returns its output.
pub fn analyze_with(options: &[&str], files: &[&Path]) -> String {
    let mut args = vec!["analyze".to_string()];
    args.extend(options.iter().map(|o| o.to_string()));
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

/// Runs `resetscope analyze --format json` and parses the document.
pub fn json(files: &[&Path]) -> serde_json::Value {
    serde_json::from_str(&analyze_as("json", files)).expect("valid JSON")
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resetscope-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A classic little-endian microsecond pcap, split into its header and records.
pub struct Pcap {
    pub linktype: u32,
    pub snaplen: u32,
    /// (seconds, microseconds, original length, data)
    pub records: Vec<(u32, u32, u32, Vec<u8>)>,
}

impl Pcap {
    pub fn read(path: &Path) -> Pcap {
        let b = std::fs::read(path).unwrap();
        assert_eq!(
            &b[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "test helper reads LE microsecond pcap only"
        );
        let u = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let (snaplen, linktype) = (u(16), u(20));
        let mut records = Vec::new();
        let mut i = 24;
        while i + 16 <= b.len() {
            let (s, us, cap, orig) = (u(i), u(i + 4), u(i + 8) as usize, u(i + 12));
            records.push((s, us, orig, b[i + 16..i + 16 + cap].to_vec()));
            i += 16 + cap;
        }
        Pcap {
            linktype,
            snaplen,
            records,
        }
    }

    /// Writes records `range` as a pcap: big-endian or not, nanosecond or not.
    pub fn write(&self, path: &Path, range: std::ops::Range<usize>, big_endian: bool, nanos: bool) {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let mut v = Vec::new();
        w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, self.snaplen);
        w32(&mut v, self.linktype);
        for (s, us, orig, data) in &self.records[range] {
            w32(&mut v, *s);
            w32(&mut v, if nanos { us * 1000 } else { *us });
            w32(&mut v, data.len() as u32);
            w32(&mut v, *orig);
            v.extend_from_slice(data);
        }
        std::fs::write(path, v).unwrap();
    }

    /// Byte offset of record `n` (0-based) in the LE file this was read from.
    pub fn offset_of(&self, n: usize) -> usize {
        24 + self.records[..n]
            .iter()
            .map(|r| 16 + r.3.len())
            .sum::<usize>()
    }
}

/// The (kind, client, frame numbers) of every non-informational finding.
pub fn findings(doc: &serde_json::Value) -> Vec<(String, String, Vec<u64>)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["client"].as_str().unwrap().to_string(),
                f["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["number"].as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// pcapng blocks written by hand, in either byte order. Real captures are preferred, but no
/// capture stack writes the lies these tests need (absurd `if_tsresol`/`if_tsoffset`,
/// drop counts of 2^64 - 1, blocks of many megabytes), so they are built byte by byte
/// here, following the pcapng specification (draft-ietf-opsawg-pcapng).
#[derive(Copy, Clone, Debug)]
pub struct Ng {
    /// Big-endian section.
    pub be: bool,
}

impl Ng {
    pub fn u16(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn u32(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn u64(&self, v: u64) -> [u8; 8] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block: type, total length, body padded to 32 bits, total length again.
    pub fn block(&self, kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = Vec::with_capacity(12 + padded);
        b.extend_from_slice(&self.u32(kind));
        b.extend_from_slice(&self.u32(len));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&self.u32(len));
        b
    }

    /// A Section Header Block (version 1.0, section length unknown).
    pub fn shb(&self) -> Vec<u8> {
        let mut body = self.u32(0x1A2B_3C4D).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0A0D_0D0A, &body)
    }

    /// One option: code, length, value padded to 32 bits.
    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = self.u16(code).to_vec();
        o.extend_from_slice(&self.u16(value.len() as u16));
        o.extend_from_slice(value);
        o.resize(4 + value.len().div_ceil(4) * 4, 0);
        o
    }

    /// `if_tsresol`.
    pub fn tsresol(&self, r: u8) -> Vec<u8> {
        self.option(9, &[r])
    }

    /// `if_tsoffset`, in seconds.
    pub fn tsoffset(&self, secs: i64) -> Vec<u8> {
        self.option(14, &self.u64(secs as u64))
    }

    /// Options followed by opt_endofopt (nothing when there are none).
    fn options(&self, options: &[Vec<u8>]) -> Vec<u8> {
        let mut b: Vec<u8> = options.concat();
        if !options.is_empty() {
            b.extend_from_slice(&[0; 4]);
        }
        b
    }

    /// An Interface Description Block (snaplen 0: no limit).
    pub fn idb(&self, linktype: u16, options: &[Vec<u8>]) -> Vec<u8> {
        let mut body = self.u16(linktype).to_vec();
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32(0));
        body.extend_from_slice(&self.options(options));
        self.block(1, &body)
    }

    /// An Enhanced Packet Block: `ts` in the interface's units.
    pub fn epb(&self, if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(20 + data.len());
        body.extend_from_slice(&self.u32(if_id));
        body.extend_from_slice(&self.u32((ts >> 32) as u32));
        body.extend_from_slice(&self.u32(ts as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// An Interface Statistics Block with `isb_ifdrop` = `drops`.
    pub fn isb_drops(&self, if_id: u32, drops: u64) -> Vec<u8> {
        let mut body = self.u32(if_id).to_vec();
        body.extend_from_slice(&self.u32(0));
        body.extend_from_slice(&self.u32(0));
        body.extend_from_slice(&self.options(&[self.option(5, &self.u64(drops))]));
        self.block(5, &body)
    }
}

/// An Ethernet/IPv4/TCP frame from `src` to `dst` (IPv4 total length 0 when the packet is
/// too long for it, as TSO/GRO captures have it).
pub fn tcp_frame(
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    flags: u8,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let total = 40 + payload.len();
    let total = if total > 0xffff { 0 } else { total as u16 };
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// TCP flag bits for [`tcp_frame`].
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Runs `resetscope` with `args` and `input` on its standard input (a pipe), written from
/// another thread so that a large input cannot deadlock against the output.
pub fn run_piped(args: &[&str], input: Vec<u8>, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run resetscope");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The program may stop reading early (damage); that is not the test's failure.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for resetscope");
    writer.join().unwrap();
    out
}

/// The frame numbers tshark's display filter keeps in `file`; `None`, said on stderr, where
/// tshark is not installed (CI installs it).
pub fn tshark_frames(file: &str, filter: &str) -> Option<Vec<u64>> {
    let Ok(out) = Command::new("tshark")
        .args([
            "-n",
            "-r",
            file,
            "-Y",
            filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output()
    else {
        eprintln!("tshark is not installed (apt-get install tshark): not compared with it");
        return None;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect(),
    )
}
