//! Verdicts do not depend on the order connections leave the flow table: with the flow cap
//! just above the number of connections open at once (so closed ones are pushed out early,
//! in another order) every fixture gives the same findings and the same connection records
//! as with no pressure at all. (findings[] and connections[] are listed in the order they
//! were decided, so they are compared as sets.)

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let capture = p.join("capture.pcap");
            if p.join("expected.json").exists() && capture.exists() {
                out.push(capture);
            }
            fixtures(&p, out);
        }
    }
}

fn analyze(capture: &Path, max_flows: Option<u64>) -> Value {
    // One flow table: with several, each has the whole cap (see tests/threads.rs).
    let mut args = vec![
        "analyze".to_string(),
        "--format".into(),
        "json".into(),
        "--threads".into(),
        "1".into(),
    ];
    if let Some(m) = max_flows {
        args.extend(["--max-flows".to_string(), m.to_string()]);
    }
    args.push(capture.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The items as sorted strings, without `released` (why a connection left the table is
/// the table's business, not a verdict).
fn sorted(v: &Value) -> Vec<String> {
    let mut all: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut x = x.clone();
            if let Some(o) = x.as_object_mut() {
                o.remove("released");
            }
            x.to_string()
        })
        .collect();
    all.sort();
    all
}

#[test]
fn findings_do_not_depend_on_release_order() {
    let mut captures = Vec::new();
    fixtures(&root().join("fixtures"), &mut captures);
    captures.sort();
    assert!(captures.len() >= 30, "{} fixtures", captures.len());
    let mut pressed = 0;
    for capture in &captures {
        let free = analyze(capture, None);
        let table = &free["summary"]["flow_table"];
        let open = table["peak_open"].as_u64().unwrap();
        let cap = (open + 1).max(2);
        if table["peak_flows"].as_u64().unwrap() <= cap {
            continue; // nothing would be pushed out early
        }
        pressed += 1;
        let tight = analyze(capture, Some(cap));
        let name = capture.display();
        assert!(
            tight["summary"]["flow_table"]["evicted"] == 0,
            "{name}: open connections were evicted"
        );
        assert_eq!(
            sorted(&free["findings"]),
            sorted(&tight["findings"]),
            "{name}: findings"
        );
        assert_eq!(
            sorted(&free["connections"]),
            sorted(&tight["connections"]),
            "{name}: connection records"
        );
        assert_eq!(
            free["servers"], tight["servers"],
            "{name}: server estimates"
        );
    }
    assert!(
        pressed >= 10,
        "only {pressed} fixtures put the table under pressure"
    );
}
