//! Memory is flat in the capture's size: the peak RSS of every report format (terminal,
//! JSON, Markdown, HTML, `--extract`) on a capture 8× as long as another, made of the same
//! traffic by `bench/make-large.py`, is within 20 % of it (issue 10).
//!
//! The captures are 1.2 M and 9.6 M packets (326 MB and 2.6 GB, about 26 packets per
//! connection): large enough that everything bounded (flow table, held verdicts, kept
//! findings, per-server tallies) has reached its bound on the smaller one. Made in a scratch
//! directory and removed at the end; about 75 s to make them and two minutes to analyse
//! them on two cores. Peak RSS is GNU time's `%M`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The smaller capture's packets; the larger has 8 times as many.
const BASE: u64 = 1_200_000;

/// A scratch directory removed when the test ends, passed or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make(dir: &Path, packets: u64) -> PathBuf {
    let out = dir.join(format!("large-{packets}.pcap"));
    let status = Command::new("python3")
        .arg(common::root().join("bench/make-large.py"))
        .arg("--out")
        .arg(&out)
        .args(["--packets", &packets.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("python3 runs bench/make-large.py");
    assert!(status.success(), "make-large.py --packets {packets}");
    out
}

/// Peak RSS in KiB of `resetscope analyze capture args...`, its output thrown away.
fn peak_rss(dir: &Path, capture: &Path, args: &[&str]) -> u64 {
    let time = dir.join("time");
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&time)
        .arg(env!("CARGO_BIN_EXE_resetscope"))
        .arg("analyze")
        .arg(capture)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    // Exit 0: no failure in the capture; 3 is "findings" (see --help), both are runs.
    assert!(
        matches!(status.code(), Some(0) | Some(3)),
        "{args:?} on {}: {status}",
        capture.display()
    );
    let text = std::fs::read_to_string(&time).unwrap();
    text.trim().lines().last().unwrap().parse().unwrap()
}

#[test]
fn peak_memory_is_flat_from_1x_to_8x_the_capture_in_every_format() {
    let have = |c: &str, a: &str| {
        Command::new(c)
            .arg(a)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("python3", "--version") || !have("/usr/bin/time", "true") {
        eprintln!("skipped: needs python3 and GNU time (/usr/bin/time)");
        return;
    }
    let dir = Scratch(common::scratch("scale"));
    let small = make(&dir.0, BASE);
    let large = make(&dir.0, 8 * BASE);
    let extract = dir.0.join("extract.pcap");
    let extract = extract.to_str().unwrap();
    let mut failed = Vec::new();
    for (label, args) in [
        ("terminal", vec!["--format", "terminal"]),
        ("json", vec!["--format", "json"]),
        ("markdown", vec!["--format", "markdown"]),
        ("html", vec!["--format", "html"]),
        ("extract", vec!["--extract", extract]),
    ] {
        let one = peak_rss(&dir.0, &small, &args);
        let eight = peak_rss(&dir.0, &large, &args);
        let ratio = eight as f64 / one as f64;
        eprintln!(
            "{label}: {:.1} MiB at 1x, {:.1} MiB at 8x ({ratio:.2}x)",
            one as f64 / 1024.0,
            eight as f64 / 1024.0
        );
        if ratio > 1.2 {
            failed.push(format!("{label}: {one} KiB -> {eight} KiB ({ratio:.2}x)"));
        }
    }
    assert!(
        failed.is_empty(),
        "peak RSS grew by more than 20 %: {failed:?}"
    );
}
