//! `--format ndjson` (docs/ndjson.md): every line parses on its own, has the common keys, and
//! is, past them, exactly the JSON report's connection record, finding or tail; the lines
//! come as the analysis releases them, the summary last; `--host`; hostile text is escaped;
//! `-o`; `live --format ndjson` writes the same lines. (A closed pipe is success:
//! tests/cli.rs.)

mod common;

use common::*;
use serde_json::{Map, Value};
use std::path::Path;

const SCHEMA: &str = "resetscope.ndjson/1";

/// The lines of `analyze --format ndjson` (with `--host HOST` when given), each parsed.
fn ndjson(files: &[&Path], host: Option<&str>) -> (String, Vec<Value>) {
    let mut options = vec!["--format", "ndjson"];
    options.extend(host.map(|h| ["--host", h]).into_iter().flatten());
    let text = analyze_with(&options, files);
    let lines = parse_lines(&text);
    (text, lines)
}

/// Parses every line, which must be one JSON object whose first keys are `type`, `schema` and
/// `host` (line-oriented tools can dispatch on the prefix).
fn parse_lines(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'), "the last line ends with a newline");
    text.lines()
        .map(|l| {
            let rest = l.strip_prefix("{\"type\":\"").expect(l);
            let (_, rest) = rest.split_once('"').unwrap();
            assert!(
                rest.starts_with(&format!(",\"schema\":\"{SCHEMA}\",\"host\":")),
                "{l}"
            );
            match serde_json::from_str(l) {
                Ok(v @ Value::Object(_)) => v,
                other => panic!("not a JSON object: {other:?}: {l}"),
            }
        })
        .collect()
}

/// The time of a line as seconds since the epoch, from its RFC 3339 text.
fn epoch(rfc3339: &Value) -> f64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    t.timestamp() as f64 + t.timestamp_subsec_micros() as f64 / 1e6
}

/// Checks the common keys of every line and takes them off, leaving what the JSON report
/// says of the same thing: (type, the rest).
fn split_heads(lines: &[Value], host: &Value) -> Vec<(String, Map<String, Value>)> {
    lines
        .iter()
        .map(|l| {
            let mut l = l.as_object().unwrap().clone();
            let kind = l.remove("type").unwrap().as_str().unwrap().to_string();
            assert_eq!(l.remove("schema").unwrap(), SCHEMA);
            assert_eq!(&l.remove("host").unwrap(), host);
            let unix = l.remove("time_unix_s").unwrap();
            // A finding keeps its own `time` (it is one of its fields); the others' `time`
            // is the head's.
            let time = match kind.as_str() {
                "finding" => l["time"].clone(),
                _ => l.remove("time").unwrap(),
            };
            match (&time, unix.as_f64()) {
                (Value::Null, None) => {}
                (t, Some(u)) => assert!((epoch(t) - u).abs() < 5e-7, "{t} vs {u}"),
                other => panic!("time and time_unix_s disagree: {other:?}"),
            }
            match kind.as_str() {
                "connection" => assert_eq!(time, l["start"]),
                "summary" => {
                    assert_eq!(l.remove("community_id"), Some(Value::Null));
                    assert_eq!(time, l["summary"]["first_time"]);
                }
                "finding" => {}
                other => panic!("unknown line type {other}"),
            }
            if kind != "summary" {
                assert!(
                    l["community_id"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("1:")),
                    "{l:?}"
                );
            }
            (kind, l)
        })
        .collect()
}

/// The lines say exactly what the JSON report says, in the same order.
fn check_against_the_json_report(files: &[&Path]) {
    let (_, lines) = ndjson(files, Some("a"));
    let doc = json(files);
    let lines = split_heads(&lines, &Value::from("a"));
    let of = |kind: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, l)| Value::Object(l.clone()))
            .collect()
    };
    assert_eq!(&of("connection"), doc["connections"].as_array().unwrap());
    assert_eq!(&of("finding"), doc["findings"].as_array().unwrap());
    let summary = of("summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(
        lines.last().unwrap().0,
        "summary",
        "the summary is the last line"
    );
    // The summary line is the document's tail: every key after the findings.
    let mut tail = doc.as_object().unwrap().clone();
    for k in ["schema_version", "tool", "connections", "findings"] {
        tail.remove(k);
    }
    assert_eq!(summary[0], Value::Object(tail));
    assert_eq!(
        lines.len(),
        doc["connections"].as_array().unwrap().len()
            + doc["findings"].as_array().unwrap().len()
            + 1
    );
}

#[test]
fn lines_are_the_json_reports_records_findings_and_tail() {
    let races = race_capture();
    check_against_the_json_report(&[&races]);
    // TLS, HTTP/2, a proxy with both legs, rotated files (frames cited per file).
    for f in [
        "tls-idle-race/capture.pcap",
        "h2c-goaway/capture.pcap",
        "nginx-go-proxy/capture.pcap",
    ] {
        check_against_the_json_report(&[&root().join("fixtures").join(f)]);
    }
    let rotated: Vec<_> = (1..=3)
        .map(|i| root().join(format!("fixtures/rotated/capture-{i}.pcap")))
        .collect();
    let rotated: Vec<&Path> = rotated.iter().map(|p| p.as_path()).collect();
    check_against_the_json_report(&rotated);
}

#[test]
fn race_fixture_lines_count_and_order() {
    // To a file (-o): standard output stays empty.
    let path = scratch("ndjson-output").join("lines.ndjson");
    let out = run(&[
        "analyze",
        "-f",
        "ndjson",
        "-o",
        path.to_str().unwrap(),
        race_capture().to_str().unwrap(),
    ]);
    assert!(out.status.success() && out.stdout.is_empty() && out.stderr.is_empty());
    let lines = parse_lines(&std::fs::read_to_string(&path).unwrap());
    let count = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    // fixtures/go-idle-race: 53 connections, 9 races and 44 idle closes.
    assert_eq!(count("connection"), 53);
    assert_eq!(count("finding"), 53);
    assert_eq!(count("summary"), 1);
    let races: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "idle_race").collect();
    assert_eq!(races.len(), race_frames().len());
    for (request, close) in race_frames() {
        assert!(races
            .iter()
            .any(|r| r["request"]["frame"]["number"] == request
                && r["close_frame"]["number"] == close));
    }
    // Streamed: a connection's findings come just before its record, not all at the end.
    let first_record = lines
        .iter()
        .position(|l| l["type"] == "connection")
        .unwrap();
    assert!(first_record < 5, "{first_record}");
    // Without --host, host is null (a file does not say where it was captured).
    assert!(lines.iter().all(|l| l["host"].is_null()));
    // Every finding's connection has a line with its id and the same Community ID.
    for f in lines.iter().filter(|l| l["type"] == "finding") {
        let c = lines
            .iter()
            .find(|c| c["type"] == "connection" && c["id"] == f["connection"])
            .unwrap();
        assert_eq!(c["community_id"], f["community_id"]);
    }
    let s = lines.last().unwrap();
    assert_eq!(s["type"], "summary");
    assert_eq!(s["summary"]["findings"]["idle_race"], 9);
    assert_eq!(s["servers"][0]["server"], "127.0.0.1:9000");
}

/// A character no line may hold raw: a control (Cc; the newline ends the line), format (Cf)
/// or separator (Zl, Zp) character.
fn dangerous(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
    )
}

#[test]
fn hostile_text_is_escaped_in_every_line() {
    let hostile = root().join("fixtures/hostile/capture.pcap");
    let (text, lines) = ndjson(&[&hostile], Some("host\u{202e}\u{1b}[2J\u{2028}"));
    let raw: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && dangerous(c))
        .collect();
    assert!(raw.is_empty(), "raw characters in the lines: {raw:?}");
    assert_eq!(text.lines().count(), lines.len(), "one object per line");
    // Escaped, not dropped: they read back as captured.
    assert_eq!(lines[0]["host"], "host\u{202e}\u{1b}[2J\u{2028}");
    let targets: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "finding")
        .map(|l| l["request"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 7);
    assert!(targets.iter().any(|t| t.contains('\u{202e}')));
    assert!(targets
        .iter()
        .any(|t| t.contains("\u{9b}31m") && t.contains('\u{1b}')));
    assert!(targets.iter().any(|t| t.contains("\u{2028}\u{2029}")));
    assert!(text.contains("\\u202e") && text.contains("\\u009b") && text.contains("\\u2028"));
    // The hostile file name, in the summary's inputs, too.
    let dir = scratch("ndjson-hostile-name");
    let named = dir.join("cap\u{202e}\u{1b}]0;x\u{7}.pcap");
    std::fs::copy(&hostile, &named).unwrap();
    let (text, lines) = ndjson(&[&named], None);
    assert!(!text.chars().any(|c| c != '\n' && dangerous(c)));
    assert_eq!(
        lines.last().unwrap()["inputs"][0]["path"],
        named.display().to_string()
    );
}

#[test]
fn host_is_written_only_in_ndjson() {
    let out = run(&[
        "analyze",
        "-f",
        "json",
        "--host",
        "a",
        race_capture().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--host is written only in NDJSON lines"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.get("host").is_none());
}

/// `live --format ndjson`: the same lines as `analyze`, as they happen; `host` is this
/// machine's name unless `--host` says otherwise. Needs root (CI runs as root); skipped
/// without it.
#[cfg(feature = "live")]
#[test]
fn live_writes_the_same_lines() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let root_user = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
    });
    if !root_user {
        eprintln!(
            "live_writes_the_same_lines: skipped, live capture needs root (CI runs it as root)"
        );
        return;
    }
    // Connections to a loopback port where nothing listens: each is refused, one finding
    // each. The port is away from tests/live.rs's.
    let port = 19_950 + (std::process::id() % 40) as u16;
    let dir = scratch("ndjson-live");
    let pcap = dir.join("live.pcap");
    let mut live = Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args([
            "live",
            "-i",
            "lo",
            "--format",
            "ndjson",
            "--until-findings",
            "3",
            "--duration",
            "30s",
            "-w",
            pcap.to_str().unwrap(),
            &format!("tcp port {port}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it captures (it says so on stderr), then connect.
    let mut stderr = live.stderr.take().unwrap();
    let mut said = Vec::new();
    let mut byte = [0u8; 1];
    while !said.ends_with(b"\n") && stderr.read(&mut byte).unwrap() == 1 {
        said.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&said).contains("capturing on"));
    for _ in 0..4 {
        let _ = std::net::TcpStream::connect(("127.0.0.1", port));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let out = live.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = parse_lines(&String::from_utf8(out.stdout).unwrap());
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = Value::from(hostname.trim());
    let heads = split_heads(&lines, &host);
    assert_eq!(heads.last().unwrap().0, "summary");
    let refused = heads
        .iter()
        .filter(|(k, l)| k == "finding" && l["kind"] == "refused")
        .count();
    assert!(refused >= 3, "{lines:?}");
    assert!(heads.iter().any(|(k, _)| k == "connection"));
    assert!(heads.last().unwrap().1["live_capture"].is_object());
    // The -w file, analysed offline, gives the same findings.
    let (_, offline) = ndjson(&[&pcap], None);
    let kinds = |ls: &[Value]| -> Vec<(Value, Value)> {
        ls.iter()
            .filter(|l| l["type"] == "finding")
            .map(|l| (l["kind"].clone(), l["community_id"].clone()))
            .collect()
    };
    assert_eq!(kinds(&offline), kinds(&lines));
}
