//! `analyze --connection`: one connection in full, by id or by address and port, from a file
//! and from a pipe; its packets are the frames tshark's filter for it finds.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn one_connection_in_full_by_id_or_endpoint() {
    let race = race_capture();
    let file = race.to_str().unwrap();
    let by_port = run(&["analyze", "--connection", "127.0.0.1:54110", file]);
    assert!(
        by_port.status.success(),
        "{}",
        String::from_utf8_lossy(&by_port.stderr)
    );
    let text = String::from_utf8(by_port.stdout).unwrap();
    let by_id = run(&["analyze", "--connection", "3", file]);
    assert_eq!(text, String::from_utf8(by_id.stdout).unwrap());
    for want in [
        "Connection 3: client 127.0.0.1:54110 → server 127.0.0.1:9000 (http)",
        "closed first by the server (FIN #28), after 301 ms idle",
        "1. 2026-11-20T22:28:49.730740Z POST /test #24: answered, 200 #26",
        "2. 2026-11-20T22:28:50.031830Z POST /test #29: reset, no response, not idempotent",
        "#28 2026-11-20T22:28:50.031780Z server fin",
        "#30 2026-11-20T22:28:50.031872Z server rst_answer",
        "idle_race (#28): POST /test was written after the server's FIN",
        "Packets (10)",
        "◀ the request (not idempotent)",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // The Wireshark filter it prints finds the packets it lists, and no other.
    let filter = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Wireshark: "))
        .unwrap()
        .to_string();
    let out = run(&["analyze", "--connection", "3", "-f", "json", file]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<u64> = doc["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["frame"]["number"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, (21..=30).collect::<Vec<u64>>());
    assert_eq!(doc["packets_not_shown"], 0);
    assert_eq!(doc["connection"]["id"], 3);
    assert_eq!(doc["connection"]["requests"].as_array().unwrap().len(), 2);
    let kinds: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["idle_race"]);
    if let Some(frames) = tshark_frames(file, &filter) {
        assert_eq!(frames, listed, "{filter}");
    }
    // From a pipe: the same.
    let piped = run_piped(
        &["analyze", "--connection", "3", "-"],
        std::fs::read(&race).unwrap(),
        &[],
    );
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let piped = String::from_utf8(piped.stdout).unwrap();
    assert!(
        piped.contains("Packets (10)") && piped.contains("idle_race (#28)"),
        "{piped}"
    );
}

#[test]
fn none_or_several_matching_is_said() {
    let race = race_capture();
    let file = race.to_str().unwrap();
    // The server's endpoint: every connection; the ids are listed to choose from.
    let out = run(&["analyze", "--connection", "127.0.0.1:9000", file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("53 connections are at 127.0.0.1:9000"),
        "{err}"
    );
    assert!(
        err.contains("--connection 1 ") && err.contains("… and 32 more"),
        "{err}"
    );
    // None.
    let out = run(&["analyze", "--connection", "999", file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no connection in the capture is number 999")
    );
    // Not a connection; not with a ticket format.
    let out = run(&["analyze", "--connection", "port 80", file]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["analyze", "--connection", "3", "-f", "html", file]);
    assert_eq!(out.status.code(), Some(2));
}
