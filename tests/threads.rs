//! Issue 10: the report is the same byte for byte whatever the number of threads
//! (`--threads`), and whatever the flow cap while it is not reached, on every capture of the
//! repository: the fixtures and the corpus of others' captures.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            captures(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        {
            out.push(p);
        }
    }
}

fn report(capture: &Path, extra: &[&str]) -> Vec<u8> {
    let path = capture.display().to_string();
    let mut args = vec!["analyze", path.as_str()];
    args.extend_from_slice(extra);
    outcome(&args)
}

/// What `resetscope ARGS` wrote to both streams, and its exit code.
fn outcome(args: &[&str]) -> Vec<u8> {
    let out = run(args);
    // Damaged captures of the corpus exit 1 with what could be read; both runs must agree.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = out.stdout;
    all.extend_from_slice(b"\n--- stderr ---\n");
    all.extend_from_slice(&out.stderr);
    all.extend_from_slice(format!("\n--- exit {:?} ---\n", out.status.code()).as_bytes());
    all
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(200);
    format!(
        "at byte {at}:\n  {:?}\n  {:?}",
        String::from_utf8_lossy(&a[from..(at + 200).min(a.len())]),
        String::from_utf8_lossy(&b[from..(at + 200).min(b.len())])
    )
}

#[test]
fn reports_are_the_same_whatever_the_number_of_threads() {
    let mut all = Vec::new();
    captures(&root().join("fixtures"), &mut all);
    captures(&root().join("tests/corpus"), &mut all);
    all.sort();
    assert!(all.len() >= 100, "{} captures", all.len());
    let mut connections = 0;
    for capture in &all {
        let name = capture.display();
        let one = report(capture, &["--format", "json", "--threads", "1"]);
        let stdout = &one[..one
            .windows(16)
            .position(|w| w == b"\n--- stderr ---\n")
            .unwrap()];
        if stdout.is_empty() {
            // An unusable input (fixtures/damaged/garbage.pcap) has no report, only its
            // error: the same whatever the number of threads.
            let many = report(capture, &["--format", "json", "--threads", "2"]);
            assert!(one == many, "{name}: {}", first_difference(&one, &many));
            continue;
        }
        let doc: serde_json::Value =
            serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("{name}: {e}"));
        connections += doc["summary"]["connections"]["total"].as_u64().unwrap();
        for threads in ["2", "4"] {
            let many = report(capture, &["--format", "json", "--threads", threads]);
            assert!(
                one == many,
                "{name}: JSON with --threads {threads} differs from one thread {}",
                first_difference(&one, &many)
            );
        }
        // A cap the table never reaches changes nothing (a lower one changes the order
        // connections leave the table: tests/order.rs).
        let peak = doc["summary"]["flow_table"]["peak_flows"].as_u64().unwrap();
        let cap = peak.max(1).to_string();
        for threads in ["1", "3"] {
            let capped = report(
                capture,
                &[
                    "--format",
                    "json",
                    "--threads",
                    threads,
                    "--max-flows",
                    &cap,
                ],
            );
            assert!(
                one == capped,
                "{name}: JSON with --max-flows {cap} --threads {threads} differs {}",
                first_difference(&one, &capped)
            );
        }
    }
    // The corpus must be more than a handful of connections for this to mean much.
    assert!(connections > 1000, "{connections} connections in all");
}

#[test]
fn every_format_is_the_same_whatever_the_number_of_threads() {
    let mut all = Vec::new();
    captures(&root().join("fixtures"), &mut all);
    all.sort();
    for capture in &all {
        for format in ["terminal", "markdown", "html"] {
            let one = report(capture, &["--format", format, "--threads", "1"]);
            let two = report(capture, &["--format", format, "--threads", "2"]);
            assert!(
                one == two,
                "{}: {format} with two threads differs {}",
                capture.display(),
                first_difference(&one, &two)
            );
        }
    }
}

/// The report on several inputs, each read on its own thread (`--read-ahead yes`,
/// `resetscope::source::read_ahead`), is the one of reading them in turn on one thread:
/// the frames merged by time in the same order (ties to the earlier file), the files'
/// statistics and their damage in input order.
#[test]
fn several_inputs_read_at_once_make_the_same_report() {
    let f = |p: &str| root().join("fixtures").join(p).display().to_string();
    let rotated: Vec<String> = (1..=3)
        .map(|i| f(&format!("rotated/capture-{i}.pcap")))
        .collect();
    let mut backwards = rotated.clone();
    backwards.reverse();
    let race = f("go-idle-race/capture.pcap");
    let sets: Vec<(&str, Vec<String>)> = vec![
        ("rotated", rotated),
        ("rotated, given last first", backwards),
        // Every frame's time is met twice: the first file's frame comes first.
        ("one file twice", vec![race.clone(), race.clone()]),
        (
            "damaged, missing and whole",
            vec![
                f("damaged/truncated.pcap"),
                f("damaged/no-such-file.pcap"),
                race.clone(),
                f("damaged/badrecord.pcap"),
            ],
        ),
        // More files than the read-ahead takes: read on the calling thread.
        ("thirty copies", vec![race.clone(); 30]),
    ];
    for (name, files) in &sets {
        for format in ["json", "terminal"] {
            let of = |threads: &str, ahead: &str| {
                let mut args = vec![
                    "analyze",
                    "--format",
                    format,
                    "--threads",
                    threads,
                    "--read-ahead",
                    ahead,
                ];
                args.extend(files.iter().map(String::as_str));
                outcome(&args)
            };
            let one = of("1", "no");
            assert!(one.len() > 300, "{name}: {}", String::from_utf8_lossy(&one));
            for (threads, ahead) in [("1", "yes"), ("2", "yes"), ("2", "no"), ("4", "yes")] {
                let many = of(threads, ahead);
                assert!(
                    one == many,
                    "{name}: {format} with --threads {threads} --read-ahead {ahead} differs {}",
                    first_difference(&one, &many)
                );
            }
        }
    }
}
