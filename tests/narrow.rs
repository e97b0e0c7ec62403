//! `--since`, `--until` and the capture filter after `--`: the frames kept are those tshark
//! keeps for the same window, the second pass (ladders, `--extract`) leaves out the same
//! frames, the report says the analysis was narrowed, and mistakes are usage errors.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

/// Whether tshark runs here; says so when it does not (the test is then skipped). CI
/// installs it.
fn tshark() -> bool {
    let ok = Command::new("tshark").arg("-v").output().is_ok();
    if !ok {
        eprintln!("narrow: skipped: tshark is not installed (apt-get install tshark)");
    }
    ok
}

/// The frame numbers tshark's display filter keeps (tshark is there: [`tshark`]).
fn frames_of(file: &str, filter: &str) -> Vec<u64> {
    tshark_frames(file, filter).expect("tshark")
}

fn json_of(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seconds since the epoch of the race fixture's first frame (22:28:49.123107 UTC).
const FIRST: &str = "1795213729.123107";

#[test]
fn the_time_window_keeps_the_frames_tshark_keeps() {
    if !tshark() {
        return;
    }
    let race = race_capture();
    let file = race.to_str().unwrap();
    let first: f64 = FIRST.parse().unwrap();
    for (since, until, from, to) in [
        // relative to the first frame
        ("+5s", "+10s", first + 5.0, first + 10.0),
        // absolute, in UTC, with an offset, and as a time of day
        (
            "2026-11-20T22:29:00Z",
            "2026-11-20 23:29:05.5+01:00",
            1795213740.0,
            1795213745.5,
        ),
        ("22:28:55", "22:29:10", 1795213735.0, 1795213750.0),
        // seconds since the epoch
        ("1795213740", "1795213742.25", 1795213740.0, 1795213742.25),
    ] {
        let doc = json_of(&[
            "analyze", "-f", "json", "--since", since, "--until", until, file,
        ]);
        let want = frames_of(
            file,
            &format!("frame.time_epoch >= {from:.6} && frame.time_epoch <= {to:.6}"),
        );
        let p = &doc["summary"]["packets"];
        assert_eq!(p["frames"], 636);
        assert_eq!(
            p["matched"].as_u64().unwrap(),
            want.len() as u64,
            "--since {since} --until {until}"
        );
        assert!(!want.is_empty() && want.len() < 636);
        // Every frame a finding cites is one the window kept.
        for (kind, _, frames) in findings(&doc) {
            for f in frames {
                assert!(
                    want.contains(&f),
                    "{kind} cites #{f}, outside {since}..{until}"
                );
            }
        }
        let n = &doc["summary"]["narrowed"];
        assert!(n["since"].is_string() && n["until"].is_string(), "{n}");
        assert!(doc["caveats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "narrowed"
                && c["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("({} of 636 read)", want.len()))));
    }
    // Not narrowed: every frame matched, and no narrowing stated.
    let doc = json_of(&["analyze", "-f", "json", file]);
    assert_eq!(doc["summary"]["packets"]["matched"], 636);
    assert!(doc["summary"].get("narrowed").is_none());
    assert!(!doc["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["kind"] == "narrowed"));
}

#[test]
fn the_second_pass_leaves_out_the_same_frames() {
    if !tshark() {
        return;
    }
    let race = race_capture();
    let out = scratch("narrow-extract").join("evidence.pcap");
    let result = run(&[
        "analyze",
        "--since",
        "+5s",
        "--until",
        "+12s",
        "--extract",
        out.to_str().unwrap(),
        race.to_str().unwrap(),
    ]);
    assert!(result.status.success());
    let first: f64 = FIRST.parse().unwrap();
    let all = frames_of(out.to_str().unwrap(), "frame");
    let inside = frames_of(
        out.to_str().unwrap(),
        &format!(
            "frame.time_epoch >= {:.6} && frame.time_epoch <= {:.6}",
            first + 5.0,
            first + 12.0
        ),
    );
    assert!(!all.is_empty());
    assert_eq!(all, inside, "the extract holds frames outside the window");
    // The extract, analysed, gives the narrowed analysis's findings.
    let narrowed = json_of(&[
        "analyze",
        "-f",
        "json",
        "--since",
        "+5s",
        "--until",
        "+12s",
        race.to_str().unwrap(),
    ]);
    let again = json_of(&["analyze", "-f", "json", out.to_str().unwrap()]);
    let kinds = |d: &Value| -> Vec<String> {
        let mut k: Vec<String> = findings(d)
            .into_iter()
            .filter(|(k, _, _)| k != "idle_close")
            .map(|(k, _, _)| k)
            .collect();
        k.sort();
        k
    };
    assert_eq!(kinds(&narrowed), kinds(&again));
    assert!(kinds(&narrowed).iter().any(|k| k == "idle_race"));
}

#[test]
fn mistakes_are_usage_errors() {
    let race = race_capture();
    let file = race.to_str().unwrap();
    // A filter after the file, without `--`.
    let out = run(&["analyze", file, "tcp port 9000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'tcp port 9000' is not a file")
            && err.contains(&format!("resetscope analyze {file} -- 'tcp port 9000'")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // An empty window, an unreadable time.
    let out = run(&[
        "analyze",
        "--since",
        "2026-11-21",
        "--until",
        "2026-11-20",
        file,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--until is before --since"));
    let out = run(&["analyze", "--since", "yesterday", file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a time"));
    // A file that exists is a file, whatever its name.
    let odd = scratch("narrow-odd").join("port 9000");
    std::fs::copy(&race, &odd).unwrap();
    let out = run(&["analyze", odd.to_str().unwrap()]);
    assert!(out.status.success());
}

/// Frames tcpdump's own filter keeps, by count (`-q`: one line per packet).
fn tcpdump_count(file: &str, expr: &str) -> Option<u64> {
    let out = Command::new("tcpdump")
        .args(["-n", "-q", "-r", file, expr])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().count() as u64)
}

#[test]
fn the_filter_after_the_files_keeps_what_tcpdump_keeps() {
    let race = race_capture();
    let file = race.to_str().unwrap();
    for expr in [
        "tcp port 54110",
        "host 127.0.0.1 and not (port 54110 or port 36558)",
        "src port 9000 or dst portrange 36000-36600",
        "ip6",
    ] {
        let doc = json_of(&["analyze", "-f", "json", file, "--", expr]);
        let matched = doc["summary"]["packets"]["matched"].as_u64().unwrap();
        assert_eq!(doc["summary"]["packets"]["frames"], 636);
        assert_eq!(doc["summary"]["narrowed"]["filter"], expr);
        match tcpdump_count(file, expr) {
            Some(n) => assert_eq!(matched, n, "{expr}"),
            None => eprintln!("narrow: tcpdump is not installed: {expr} not compared"),
        }
    }
    // The words of the filter may come as separate arguments, as tcpdump takes them.
    let doc = json_of(&["analyze", "-f", "json", file, "--", "tcp", "port", "54110"]);
    assert_eq!(doc["summary"]["packets"]["matched"], 10);
    let kinds: Vec<String> = findings(&doc).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["idle_race"]);
    // A filter that does not parse is a usage error that says where.
    let out = run(&["analyze", file, "--", "tcp prot 9000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at 'prot' (word 2)"));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_report_says_what_was_analysed() {
    let race = race_capture();
    let file = race.to_str().unwrap();
    let out = run(&["analyze", file, "--", "ip6"]);
    assert!(out.status.success());
    let text = flat(&String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("636 frames (0 analysed)"), "{text}");
    assert!(
        text.contains(
            "No frame is inside the time window and the filter given: nothing was analysed"
        ),
        "{text}"
    );
    assert!(!text.contains("No resets and no failed requests"), "{text}");
    let out = run(&["analyze", "--since", "+20s", "-f", "markdown", file]);
    let md = flat(&String::from_utf8_lossy(&out.stdout));
    assert!(md.contains("636 frames (155 analysed)"), "{md}");
    // Not narrowed: no such count.
    let out = run(&["analyze", file]);
    let text = flat(&String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("636 frames, 636 TCP"), "{text}");
}
