//! Every fixture's expected verdict, as its `expected.json` writes it down (derived from
//! tshark and the client's own log, independently of resetscope; see fixtures/README.md):
//! who closed each connection first, how and in which frame; every finding other than the
//! informational idle closes, no more and no fewer, with its request and close frames; and
//! the server's idle timeout where the scenario set one.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The capture files of a fixture: `capture.pcap(ng)` alone, or every capture file in the
/// directory (rotated captures) in name order.
fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    all.sort();
    if let Some(c) = all
        .iter()
        .find(|p| p.file_stem().is_some_and(|s| s == "capture"))
    {
        return vec![c.clone()];
    }
    all
}

/// A frame in expected.json: a number, or {"file": NAME, "frame": N} for several files.
fn frame(v: &Value, files: &[PathBuf]) -> (u64, u64) {
    match v {
        Value::Number(n) => (0, n.as_u64().unwrap()),
        Value::Object(o) => {
            let name = o["file"].as_str().unwrap();
            let index = files
                .iter()
                .position(|f| f.file_name().unwrap() == name)
                .unwrap_or_else(|| panic!("no file {name}"));
            (index as u64, o["frame"].as_u64().unwrap())
        }
        other => panic!("bad frame {other}"),
    }
}

fn ours(v: &Value) -> (u64, u64) {
    (v["file"].as_u64().unwrap(), v["number"].as_u64().unwrap())
}

fn check(dir: &Path) -> Vec<String> {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let files = captures(dir);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let doc = json(&refs);
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    compare(&name, &expected, &doc, &files)
}

/// The differences between an expected verdict and our JSON report.
fn compare(name: &str, expected: &Value, doc: &Value, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    let conns = doc["connections"].as_array().unwrap();
    let mut used = std::collections::HashSet::new();
    for e in expected["connections"].as_array().unwrap() {
        let (c, s) = (e["client"].as_str().unwrap(), e["server"].as_str().unwrap());
        let Some(got) = conns.iter().find(|g| {
            !used.contains(&g["id"].as_u64()) && {
                let ends = [g["client"].as_str().unwrap(), g["server"].as_str().unwrap()];
                ends.contains(&c) && ends.contains(&s)
            }
        }) else {
            problems.push(format!("{name}: connection {c} → {s} not reported"));
            continue;
        };
        used.insert(got["id"].as_u64());
        if got["client"] != e["client"] {
            problems.push(format!(
                "{name}: {c} → {s}: we call {} the client",
                got["client"]
            ));
        }
        let want = &e["first_close"];
        let have = &got["first_close"];
        let ok = match (want.is_null(), have.is_null()) {
            (true, true) => true,
            (false, false) => {
                have["by"] == want["by"]
                    && have["how"] == want["kind"]
                    && ours(&have["frame"]) == frame(&want["frame"], files)
            }
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "{name}: {c} → {s}: first close expected {want}, got {have}"
            ));
        }
    }
    if used.len() != conns.len() {
        problems.push(format!(
            "{name}: {} connections reported, {} expected",
            conns.len(),
            used.len()
        ));
    }
    let got_findings: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "idle_close")
        .collect();
    let want_findings = expected["findings"].as_array().unwrap();
    for w in want_findings {
        let found = got_findings.iter().any(|g| {
            g["kind"] == w["kind"]
                && g["client"] == w["client"]
                && w.get("request_frame")
                    .is_none_or(|rf| ours(&g["request"]["frame"]) == frame(rf, files))
                && w.get("close_frame")
                    .is_none_or(|cf| ours(&g["close_frame"]) == frame(cf, files))
                && w.get("syn_frame").is_none_or(|sf| {
                    g["close_how"] == "SYN" && ours(&g["close_frame"]) == frame(sf, files)
                })
                && w.get("method").is_none_or(|m| g["request"]["method"] == *m)
                && w.get("variant").is_none_or(|v| g["variant"] == *v)
                && w.get("by").is_none_or(|b| g["by"] == *b)
                && w.get("rst_origin")
                    .is_none_or(|o| (o == "path") == (g["rst_from_path"] == true))
        });
        if !found {
            problems.push(format!("{name}: expected finding {w} not reported"));
        }
    }
    if got_findings.len() != want_findings.len() {
        let listed: Vec<String> = got_findings
            .iter()
            .map(|g| format!("{} {} {}", g["kind"], g["client"], g["close_frame"]))
            .collect();
        problems.push(format!(
            "{name}: {} findings reported, {} expected: {listed:?}",
            got_findings.len(),
            want_findings.len()
        ));
    }
    // A device on the path that forgets idle flows: the shortest silence it answered with
    // its own RST bounds its timeout from above.
    if let Some(t) = expected.get("path_idle_timeout_s").and_then(Value::as_f64) {
        let got = doc["path_resets"]["forgets_flows_idle_below_s"].as_f64();
        if !got.is_some_and(|g| g >= t && g <= t * 1.5) {
            problems.push(format!(
                "{name}: path idle timeout {t} s, reported below {got:?}"
            ));
        }
    }
    // Capture oddities (fixtures/oddities): repeated frames counted once, time running
    // backwards named by its first frame.
    if let Some(n) = expected.get("duplicate_frames").and_then(Value::as_u64) {
        let got = &doc["summary"]["connections"]["duplicate_frames"];
        if got.as_u64() != Some(n) {
            problems.push(format!("{name}: {n} duplicate frames expected, got {got}"));
        }
    }
    if let Some(want) = expected.get("time_backwards_frame") {
        let got = &doc["summary"]["packets"]["time_backwards_first"];
        let ok = match want.as_u64() {
            Some(n) => got["number"].as_u64() == Some(n),
            None => got.is_null(),
        };
        if !ok {
            problems.push(format!(
                "{name}: time runs backwards first at {want}, got {got}"
            ));
        }
    }
    if let Some(t) = expected
        .get("server_idle_timeout_ms")
        .and_then(Value::as_f64)
    {
        let est = doc["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|s| s["idle_timeout"]["median_ms"].as_f64());
        match est {
            Some(m) if m >= t * 0.95 && m <= t * 1.25 + 20.0 => {}
            other => problems.push(format!(
                "{name}: server idle timeout {t} ms, estimated {other:?}"
            )),
        }
    }
    problems
}

/// Every directory below `dir` with an expected.json (fixtures/oddities/ groups several).
fn fixture_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.join("expected.json").exists() {
                out.push(p.clone());
            }
            fixture_dirs(&p, out);
        }
    }
}

#[test]
fn every_fixture_gives_its_expected_verdict() {
    let root = root().join("fixtures");
    let mut dirs = Vec::new();
    fixture_dirs(&root, &mut dirs);
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures with expected.json");
    for name in [
        "go-idle-race",
        "tls13-go",
        "haproxy-node",
        "odd-http",
        "duplicated",
    ] {
        assert!(
            dirs.iter().any(|d| d.ends_with(name)),
            "fixture {name} must have an expected verdict"
        );
    }
    let problems: Vec<String> = dirs.iter().flat_map(|d| check(d)).collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `damaged/` holds separate files, each with its own verdict in expected-per-file.json:
/// what a damaged file still shows must be reported, and the damage named with its frame.
#[test]
fn damaged_files_give_their_expected_verdicts() {
    let dir = root().join("fixtures/damaged");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected-per-file.json")).unwrap())
            .unwrap();
    let mut problems = Vec::new();
    let files = expected["files"].as_object().unwrap();
    assert!(files.len() >= 5);
    for (file, want) in files {
        let path = dir.join(file);
        let out = run(&["analyze", "--format", "json", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let kind = want["error"]["kind"].as_str();
        if kind == Some("not_a_capture") {
            if out.status.code() != Some(1) || !err.contains("not a pcap or pcapng capture") {
                problems.push(format!(
                    "{file}: expected a clear error, got {:?}: {err}",
                    out.status.code()
                ));
            }
            continue;
        }
        if !out.status.success() {
            problems.push(format!("{file}: exit {:?}: {err}", out.status.code()));
            continue;
        }
        if let Some(frame) = want["error"]["frame"].as_u64() {
            let says = format!("frame {frame}");
            if !err.contains(file.as_str()) || !err.contains(&says) {
                problems.push(format!(
                    "{file}: the error should name the file and {says}: {err}"
                ));
            }
        }
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        problems.extend(compare(file, want, &doc, std::slice::from_ref(&path)));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Local ports of the requests the client's own log reports as failed (`event=fail ...
/// lport=N`), as `127.0.0.1:N`.
fn failed_clients(log: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("event=fail"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("lport=")))
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

/// The TLS idle race, where requests cannot be read: every request the client's own log says
/// failed is an `idle_race` on its connection, and nothing else is. Also the two captures
/// kept beside the TLS fixture: TLS 1.2 requests that reached nginx before its close_notify
/// (reset unread: frames 50/54 and 496/500, per its tshark review), and TLS 1.3, where the
/// close_notify is an opaque 19-byte application-data record.
#[test]
fn tls_races_match_the_client_log() {
    let dir = root().join("fixtures/tls-idle-race");
    for sub in ["", "unclassified", "tls13-sample"] {
        let d = dir.join(sub);
        let doc = json(&[&d.join("capture.pcap")]);
        let findings = doc["findings"].as_array().unwrap();
        let races: std::collections::BTreeSet<String> = findings
            .iter()
            .filter(|f| f["kind"] == "idle_race")
            .map(|f| f["client"].as_str().unwrap().to_string())
            .collect();
        let expected = failed_clients(&d.join("client.log"));
        assert!(!expected.is_empty(), "{sub}");
        assert_eq!(
            races, expected,
            "{sub}: idle races vs the client's failed requests"
        );
        let others: Vec<&Value> = findings
            .iter()
            .filter(|f| !["idle_race", "idle_close"].contains(&f["kind"].as_str().unwrap()))
            .collect();
        assert!(others.is_empty(), "{sub}: {others:?}");
        let server = &doc["servers"][0];
        let median = server["idle_timeout"]["median_ms"].as_f64().unwrap();
        assert!(
            (1000.0..1010.0).contains(&median),
            "{sub}: nginx keepalive_timeout 1s, estimated {median} ms"
        );
    }
    let doc = json(&[&dir.join("unclassified/capture.pcap")]);
    let mut unread: Vec<(u64, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["variant"] == "tls_unread")
        .map(|f| {
            (
                f["request"]["frame"]["number"].as_u64().unwrap(),
                f["close_frame"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    unread.sort();
    assert_eq!(unread, vec![(50, 54), (496, 500)]);
}

/// Proxy legs, against the proxies' own logs: nginx in front of Go (`proxy_links`, from
/// nginx's access and error logs: each 502 with the upstream race that caused it, and the
/// races nginx retried), and HAProxy in front of Node (its 10 502s and 10 silent closes, one
/// per upstream race, per its NOTES.md).
#[test]
fn proxies_link_client_outcomes_to_upstream_races() {
    let dir = root().join("fixtures/nginx-go-proxy");
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let doc = json(&[&dir.join("capture.pcap")]);
    let proxies = doc["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 1, "{proxies:?}");
    let p = &proxies[0];
    assert_eq!(p["proxy"], "127.0.0.1:9050");
    assert_eq!(p["upstreams"], serde_json::json!(["127.0.0.1:9051"]));
    let key = |c: &Value, cf: u64, u: &Value, uf: u64| format!("{c} #{cf} <- {u} #{uf}");
    let mut got: Vec<String> = p["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            key(
                &l["client"],
                l["client_frame"]["number"].as_u64().unwrap(),
                &l["upstream_client"],
                l["upstream_frame"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    let links = expected["proxy_links"].as_array().unwrap();
    let mut want: Vec<String> = links
        .iter()
        .filter(|l| l["retried"] == false)
        .map(|l| {
            key(
                &l["client"],
                l["client_frame"].as_u64().unwrap(),
                &l["upstream_client"],
                l["upstream_frame"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let retried: Vec<(String, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["retried_by_proxy"] == true)
        .map(|f| {
            (
                f["client"].as_str().unwrap().to_string(),
                f["request"]["frame"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut want_retried: Vec<(String, u64)> = links
        .iter()
        .filter(|l| l["retried"] == true)
        .map(|l| {
            (
                l["upstream_client"].as_str().unwrap().to_string(),
                l["upstream_frame"].as_u64().unwrap(),
            )
        })
        .collect();
    want_retried.sort();
    let mut retried = retried;
    retried.sort();
    assert_eq!(retried, want_retried);
    assert_eq!(p["retried"], want_retried.len());

    let doc = json(&[&root().join("fixtures/haproxy-node/capture.pcap")]);
    let p = &doc["proxies"][0];
    assert_eq!(p["proxy"], "127.0.0.1:9020");
    let outcomes: Vec<&str> = p["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["client_outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "502").count(), 10);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "closed_without_response")
            .count(),
        10
    );
    assert_eq!(p["retried"], 0);
    assert_eq!(p["unexplained"], 0);
    // No proxy where there is none.
    for plain in ["go-idle-race", "go-node", "tls13-go"] {
        let doc = json(&[&root().join(format!("fixtures/{plain}/capture.pcap"))]);
        assert_eq!(doc["proxies"], serde_json::json!([]), "{plain}");
    }
}
