//! Helpers for the integration tests: run the binary, and rewrite real captures into the
//! variants a test needs (other byte order or resolution, split files, damaged copies).

#![allow(dead_code)]

pub mod adversarial;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "idle_race")
        .map(|f| {
            (
                f["request_frame"].as_u64().unwrap(),
                f["close_frame"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Runs `resetscope` with `args`, without colour.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run resetscope")
}

/// Runs `resetscope analyze --format FORMAT FILE...`, which must succeed; returns its output.
pub fn analyze_as(format: &str, files: &[&Path]) -> String {
    let mut args = vec!["analyze".to_string(), "--format".into(), format.into()];
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
