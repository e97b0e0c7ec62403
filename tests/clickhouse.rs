//! The NDJSON lines in a real ClickHouse engine (chdb, which embeds ClickHouse: `pip install
//! chdb`, which `.ci/run` does): the statements of docs/ndjson.md's ClickHouse section, taken
//! from the document as written, create the table, load the lines of four captures as four
//! hosts with `FORMAT JSONEachRow`, and run the documented queries, whose results must be
//! exactly what the fixtures' ground truth says (their expected.json, derived with tshark
//! and the clients' logs, and the capture files' own timestamps):
//!
//! - hosts `a` and `b`: fixtures/go-idle-race (Go) and fixtures/tls-idle-race (nginx, TLS);
//! - hosts `tv-cli` and `tv-srv`: fixtures/two-vantage, one run captured at both ends of the
//!   wire, whose connections join on `community_id`.
//!
//! Without python3 and chdb the test says so and passes (CI installs chdb).

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs SQL statements in one chdb session, in order; prints, for each named one, its
/// columns and rows (ClickHouse's JSONCompact, 64-bit integers as numbers) as one JSON
/// object keyed by name.
const DRIVER: &str = r#"
import json, sys
from chdb import session
job = json.load(sys.stdin)
s = session.Session(job["path"])
out = {}
for step in job["steps"]:
    sql = step["sql"]
    if step.get("name") is None:
        s.query(sql)
        continue
    res = json.loads(s.query(sql + " SETTINGS output_format_json_quote_64bit_integers = 0", "JSONCompact").bytes())
    out[step["name"]] = {"columns": [m["name"] for m in res["meta"]], "rows": res["data"]}
print(json.dumps(out))
"#;

fn chdb_available() -> Result<String, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import chdb; print(chdb.__version__, chdb.engine_version)",
        ])
        .output()
        .map_err(|e| format!("python3 cannot be run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "chdb is not installed ({})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The SQL blocks of docs/ndjson.md, by the name in the `<!-- clickhouse: NAME -->` comment
/// before each (`create`, `load` and `query NAME`), with the `text` block that follows a
/// query: its documented result.
fn documented_sql() -> BTreeMap<String, (String, Option<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/ndjson.md")).unwrap();
    let mut out = BTreeMap::new();
    let mut rest = doc.as_str();
    while let Some(at) = rest.find("<!-- clickhouse: ") {
        rest = &rest[at + "<!-- clickhouse: ".len()..];
        let (name, after) = rest.split_once(" -->\n```sql\n").expect("a sql block");
        let (sql, after) = after.split_once("\n```\n").unwrap();
        let text = after
            .strip_prefix("```text\n")
            .map(|t| t.split_once("\n```").unwrap().0.to_string());
        out.insert(name.to_string(), (sql.to_string(), text));
        rest = after;
    }
    out
}

/// A result as the documentation prints it: the column names, then each row, as words.
fn as_words(result: &Value) -> Vec<Vec<String>> {
    let word = |v: &Value| match v {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| format!("'{}'", x.as_str().unwrap()))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    };
    let mut out = vec![result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(word)
        .collect::<Vec<_>>()];
    for row in result["rows"].as_array().unwrap() {
        let text: Vec<String> = row.as_array().unwrap().iter().map(word).collect();
        out.push(
            text.join(" ")
                .split_whitespace()
                .map(String::from)
                .collect(),
        );
    }
    out
}

/// The statements of a block: split where a line ends with `;`, which is dropped.
fn statements(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in block.lines() {
        cur.push_str(line);
        cur.push('\n');
        if line.trim_end().ends_with(';') {
            let s = cur.trim().trim_end_matches(';').to_string();
            out.push(s);
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `analyze --format ndjson --host HOST FILE` into `dir/HOST.ndjson`; its number of lines.
fn lines_of(dir: &Path, host: &str, capture: &Path) -> (PathBuf, usize) {
    let path = dir.join(format!("{host}.ndjson"));
    let out = run(&[
        "analyze",
        "--format",
        "ndjson",
        "--host",
        host,
        "-o",
        path.to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = std::fs::read_to_string(&path).unwrap().lines().count();
    (path, n)
}

fn expected(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("fixtures").join(rel)).unwrap()).unwrap()
}

/// Microseconds since the epoch of frame `n` (1-based) of a capture, from its record header.
fn frame_micros(pcap: &Pcap, n: u64) -> i64 {
    let (s, us, _, _) = &pcap.records[n as usize - 1];
    *s as i64 * 1_000_000 + *us as i64
}

/// `"1796188500.613262"` as microseconds.
fn decimal_micros(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap();
    assert_eq!(frac.len(), 6);
    secs.parse::<i64>().unwrap() * 1_000_000 + frac.parse::<i64>().unwrap()
}

fn hour_of(micros: i64) -> String {
    let t = chrono::DateTime::from_timestamp(micros.div_euclid(1_000_000), 0).unwrap();
    t.format("%Y-%m-%d %H:00:00").to_string()
}

/// The races of an expected.json: (server, client, request frame, variant).
fn races(e: &Value) -> Vec<(String, String, u64, String)> {
    let server_of: BTreeMap<&str, &str> = e["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["client"].as_str().unwrap(), c["server"].as_str().unwrap()))
        .collect();
    expected_races(e)
        .map(|f| {
            let client = f["client"].as_str().unwrap();
            (
                server_of[client].to_string(),
                client.to_string(),
                f["request_frame"].as_u64().unwrap(),
                f["variant"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn documented_queries_give_the_ground_truth_in_clickhouse() {
    let version = match chdb_available() {
        Ok(v) => v,
        Err(why) => {
            eprintln!(
                "clickhouse: skipped: {why}; install it with `pip install chdb` (.ci/run does)"
            );
            return;
        }
    };
    eprintln!("clickhouse: chdb {version}");
    let dir = scratch("clickhouse");
    let fixtures = root().join("fixtures");
    let hosts = [
        (
            "a",
            "go-idle-race/capture.pcap",
            "go-idle-race/expected.json",
        ),
        (
            "b",
            "tls-idle-race/capture.pcap",
            "tls-idle-race/expected.json",
        ),
        (
            "tv-cli",
            "two-vantage/client-side/capture.pcap",
            "two-vantage/client-side/expected.json",
        ),
        (
            "tv-srv",
            "two-vantage/server-side/capture.pcap",
            "two-vantage/server-side/expected.json",
        ),
    ];

    // The documented statements, the load once per host with its file.
    let sql = documented_sql();
    let mut steps = Vec::new();
    for s in statements(&sql["create"].0) {
        steps.push(json!({ "sql": s }));
    }
    let load = statements(&sql["load"].0);
    assert_eq!(load.len(), 1);
    assert!(load[0].contains("'web-7.ndjson'"), "{}", load[0]);
    let mut total_lines = 0;
    for (host, capture, _) in hosts {
        let (path, n) = lines_of(&dir, host, &fixtures.join(capture));
        total_lines += n;
        let quoted = format!("'{}'", path.display());
        steps.push(json!({ "sql": load[0].replace("'web-7.ndjson'", &quoted) }));
    }
    let queries: Vec<&str> = sql
        .keys()
        .filter_map(|k| k.strip_prefix("query "))
        .collect();
    assert_eq!(
        queries.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "connections_from_both_ends",
            "idle_timeout_per_host",
            "race_from_both_ends",
            "races_per_server_hour",
            "times_agree",
        ])
    );
    for q in &queries {
        let s = statements(&sql[&format!("query {q}")].0);
        assert_eq!(s.len(), 1);
        steps.push(json!({ "name": q, "sql": s[0] }));
    }

    let mut child = Command::new("python3")
        .args(["-c", DRIVER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job = json!({ "path": dir.join("chdb").display().to_string(), "steps": steps });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("clickhouse: {results}");
    let rows = |name: &str| results[name]["rows"].clone();
    // The documentation shows what the queries return.
    for q in &queries {
        let text = sql[&format!("query {q}")]
            .1
            .as_ref()
            .expect("a documented result");
        let shown: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect();
        assert_eq!(
            shown,
            as_words(&results[*q]),
            "docs/ndjson.md, the result of {q}"
        );
    }

    // (0) Every line loaded, and its two times agree to the microsecond.
    assert_eq!(rows("times_agree"), json!([[total_lines, 0]]));

    // The ground truth of each host.
    let truth: Vec<(&str, Value, Pcap)> = hosts
        .iter()
        .map(|(h, capture, e)| (*h, expected(e), Pcap::read(&fixtures.join(capture))))
        .collect();

    // (a) Races per server per hour, across hosts: the races of every expected.json, in the
    // hour of their request frame's own timestamp, the connections counted once however
    // many hosts saw them.
    /// Per (server, hour): races, their clients, the hosts that saw them.
    type Tally<'a> = (u64, BTreeSet<String>, BTreeSet<&'a str>);
    let mut want: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (host, e, pcap) in &truth {
        for (server, client, frame, _) in races(e) {
            let hour = hour_of(frame_micros(pcap, frame));
            let w = want.entry((server, hour)).or_default();
            w.0 += 1;
            w.1.insert(client);
            w.2.insert(host);
        }
    }
    let want: Vec<Value> = want
        .into_iter()
        .map(|((server, hour), (n, clients, hosts))| {
            json!([
                server,
                hour,
                n,
                clients.len(),
                hosts.into_iter().collect::<Vec<_>>()
            ])
        })
        .collect();
    assert_eq!(want.len(), 3, "{want:?}");
    assert_eq!(rows("races_per_server_hour"), Value::Array(want));

    // (b) The same race from both ends: the client end's races in time order, each with the
    // server end's race on the same connection (Community IDs computed by derive.py from the
    // 4-tuple), the request's transit from tshark's times at the two ends, and the time from
    // the server's FIN to the request at each end, from the capture files' timestamps.
    let (client_end, client_pcap) = (&truth[2].1, &truth[2].2);
    let (server_end, server_pcap) = (&truth[3].1, &truth[3].2);
    let race_list = |e: &Value| -> Vec<Value> { expected_races(e).cloned().collect() };
    let fin_to_request = |f: &Value, pcap: &Pcap| -> Value {
        if f["variant"] == "fin_then_rst" {
            let us = frame_micros(pcap, f["request_frame"].as_u64().unwrap())
                - frame_micros(pcap, f["close_frame"].as_u64().unwrap());
            json!(us as f64 / 1000.0)
        } else {
            Value::Null
        }
    };
    let mut client_races = race_list(client_end);
    client_races.sort_by_key(|f| decimal_micros(f["request_time"].as_str().unwrap()));
    let server_races = race_list(server_end);
    let want: Vec<Value> = client_races
        .iter()
        .map(|c| {
            let s = server_races
                .iter()
                .find(|s| s["community_id"] == c["community_id"])
                .expect("the race at the server end too");
            let transit = decimal_micros(s["request_time"].as_str().unwrap())
                - decimal_micros(c["request_time"].as_str().unwrap());
            json!([
                c["community_id"],
                c["client"],
                c["variant"],
                s["variant"],
                transit,
                fin_to_request(c, client_pcap),
                fin_to_request(s, server_pcap),
            ])
        })
        .collect();
    assert_eq!(want.len(), 3);
    let got = rows("race_from_both_ends");
    // Floats compared to the microsecond (they are milliseconds with 3 decimals).
    assert_eq!(got.as_array().unwrap().len(), want.len(), "{got}");
    for (g, w) in got.as_array().unwrap().iter().zip(&want) {
        for (i, (gv, wv)) in g
            .as_array()
            .unwrap()
            .iter()
            .zip(w.as_array().unwrap())
            .enumerate()
        {
            match (gv.as_f64(), wv.as_f64()) {
                (Some(a), Some(b)) if i >= 5 => assert!((a - b).abs() < 1e-9, "{g} vs {w}"),
                _ => assert_eq!(gv, wv, "{g} vs {w}"),
            }
        }
    }

    // Every connection from both ends: those of the two expected.json with the same
    // Community ID, and whether their first closes agree.
    let first_closes = |e: &Value| -> BTreeMap<String, Value> {
        e["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["community_id"].as_str().unwrap().to_string(),
                    json!([c["first_close"]["by"], c["first_close"]["kind"]]),
                )
            })
            .collect()
    };
    let (fc, fs) = (first_closes(client_end), first_closes(server_end));
    let both: Vec<&String> = fc.keys().filter(|k| fs.contains_key(*k)).collect();
    let same = both.iter().filter(|k| fc[**k] == fs[**k]).count();
    assert_eq!(both.len(), 42);
    assert_eq!(
        rows("connections_from_both_ends"),
        json!([[both.len(), same]])
    );

    // Each host's estimate of each server's idle timeout: what resetscope's JSON report says
    // (the figures travel unchanged), within the timeout the fixture's server was given (Go
    // 300 ms, nginx 1 s), from its idle closes, and the races of expected.json.
    let got = rows("idle_timeout_per_host");
    assert_eq!(got.as_array().unwrap().len(), 4, "{got}");
    for ((host, capture, _), (_, e, _), row) in zip3(&hosts, &truth, got.as_array().unwrap()) {
        let doc = json(&[&fixtures.join(capture)]);
        let server = &doc["servers"][0];
        let median = server["idle_timeout"]["median_ms"].as_f64().unwrap();
        let configured = e["server_idle_timeout_ms"].as_f64().unwrap();
        assert!(
            median >= configured && median <= configured * 1.01,
            "{host}: {median} ms for {configured} ms"
        );
        assert_eq!(
            row,
            &json!([
                host,
                server["server"],
                median,
                server["idle_timeout"]["observations"],
                races(e).len()
            ])
        );
    }
}

/// Zips the hosts, their ground truth and the rows of a query ordered by host (the hosts are
/// listed in that order).
fn zip3<'a, A, B, C>(a: &'a [A], b: &'a [B], c: &'a [C]) -> Vec<(&'a A, &'a B, &'a C)> {
    a.iter()
        .zip(b)
        .zip(c)
        .map(|((x, y), z)| (x, y, z))
        .collect()
}
