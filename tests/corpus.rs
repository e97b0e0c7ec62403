//! Who-closed-first against captures written by others: every connection of every capture in
//! the Zeek corpus (`tests/corpus/`, copied from the team's shared corpus) must agree with
//! its `.truth.tsv` (derived with tshark): the endpoint that sent the first FIN or RST, which
//! of the two it was, and its frame number.

use resetscope::diagnose::ConnectionRecord;
use resetscope::pipeline::{analyze_files, Options};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn truth_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            truth_files(&p, out);
        } else if p.to_string_lossy().ends_with(".truth.tsv") {
            out.push(p);
        }
    }
}

fn endpoint(s: &std::net::SocketAddr) -> String {
    format!("{}:{}", s.ip(), s.port())
}

#[test]
fn who_closed_first_agrees_with_every_truth_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/zeek");
    let mut files = Vec::new();
    truth_files(&root, &mut files);
    files.sort();
    assert!(
        files.len() >= 30,
        "corpus incomplete: {} truth files",
        files.len()
    );
    let mut rows_checked = 0;
    let mut disagreements = Vec::new();
    for truth in &files {
        let capture = PathBuf::from(truth.to_string_lossy().trim_end_matches(".truth.tsv"));
        let mut records: Vec<ConnectionRecord> = Vec::new();
        let (_, errors) = analyze_files(
            std::slice::from_ref(&capture),
            &Options::default(),
            &mut |r: &ConnectionRecord| records.push(r.clone()),
        );
        assert!(errors.is_empty(), "{}: {errors:?}", capture.display());
        let text = std::fs::read_to_string(truth).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let mut used = HashSet::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            rows_checked += 1;
            let f: Vec<&str> = line.split('\t').collect();
            let client = format!("{}:{}", f[col("client_ip")], f[col("client_port")]);
            let server = format!("{}:{}", f[col("server_ip")], f[col("server_port")]);
            let name = format!(
                "{} stream {}",
                capture.file_name().unwrap().to_string_lossy(),
                f[col("stream")]
            );
            let Some(rec) = records.iter().find(|r| {
                !used.contains(&r.id) && {
                    let ends = [endpoint(&r.client), endpoint(&r.server)];
                    ends.contains(&client) && ends.contains(&server)
                }
            }) else {
                disagreements.push(format!("{name}: connection {client} - {server} not found"));
                continue;
            };
            used.insert(rec.id);
            let by = f[col("first_close_by")];
            let expected = (by != "-").then(|| {
                let kind = f[col("first_close_kind")];
                let frame_col = if kind == "FIN" {
                    "first_fin_frame"
                } else {
                    "first_rst_frame"
                };
                let who = if by == "client" {
                    client.clone()
                } else {
                    server.clone()
                };
                (
                    who,
                    kind.to_string(),
                    f[col(frame_col)].parse::<u64>().unwrap(),
                )
            });
            let ours = rec.first_close.map(|c| {
                let who = if c.by == resetscope::flows::Side::Client {
                    rec.client
                } else {
                    rec.server
                };
                (endpoint(&who), c.how.to_string(), c.frame.number)
            });
            if ours != expected {
                disagreements.push(format!("{name}: truth {expected:?}, resetscope {ours:?}"));
            }
        }
        // Every connection we report must be one tshark reports too.
        let extra: Vec<_> = records
            .iter()
            .filter(|r| !used.contains(&r.id))
            .map(|r| (r.client, r.server, r.first_frame.number))
            .collect();
        if !extra.is_empty() {
            disagreements.push(format!(
                "{}: connections tshark does not have: {extra:?}",
                capture.display()
            ));
        }
    }
    assert!(
        rows_checked >= 180,
        "only {rows_checked} connections checked"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The idle timeouts the corpus manifest states for its servers (`extra/MANIFEST.tsv`,
/// written from the captures by others): the estimate must find them, and must find none
/// where the server only ever closed right after its response.
#[test]
fn idle_timeout_estimates_agree_with_the_manifest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/zeek/extra/Traces");
    // (capture, server, idle timeout in ms per the manifest, announced Keep-Alive timeout)
    let cases: [(&str, &str, Option<f64>, &[u32]); 6] = [
        (
            "http/bro.org.pcap",
            "192.150.187.43:80",
            Some(5_000.0),
            &[5],
        ),
        (
            "http/206_example_c.pcap",
            "129.174.93.170:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "http/cooper-grill-dvwa.pcapng",
            "192.168.111.154:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "var-services-std-ports.pcap",
            "172.16.238.131:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "http/missing-zlib-header.pcap",
            "79.218.110.244:80",
            Some(8_800.0),
            &[],
        ),
        ("http/http-body-match.pcap", "192.88.99.42:80", None, &[5]),
    ];
    for (capture, server, timeout, announced) in cases {
        let path = root.join(capture);
        let (analysis, _) = analyze_files(
            std::slice::from_ref(&path),
            &Options::default(),
            &mut |_: &ConnectionRecord| {},
        );
        let s = analysis
            .diagnosis
            .servers
            .iter()
            .find(|s| s.server.to_string() == server)
            .unwrap_or_else(|| panic!("{capture}: no estimate for {server}"));
        let median = s.idle_timeout.as_ref().map(|e| e.median_ms);
        match (timeout, median) {
            (Some(t), Some(m)) => assert!(
                (m - t).abs() <= t * 0.05,
                "{capture}: {m} ms, the manifest says ~{t} ms"
            ),
            (None, None) => {}
            (t, m) => panic!("{capture}: manifest {t:?}, estimate {m:?}"),
        }
        assert_eq!(s.announced_keep_alive_timeout_s, announced, "{capture}");
    }
}
