//! Who-closed-first against captures written by others: every connection of every capture in
//! the Zeek and public corpora (`tests/corpus/zeek`, `tests/corpus/public`, copied from the
//! team's shared corpus) must agree with its `.truth.tsv` (derived with tshark): the endpoint
//! that sent the first FIN or RST, which of the two it was, and its frame number.

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

/// Truth-file rows that the packets contradict, each with the reason (see the comment on
/// each entry): `(capture path under tests/corpus, stream, corrected first close as
/// (who, FIN/RST, frame), or None for no close)`. The row is then checked against the
/// correction instead of the truth file, so it is still checked.
type Correction = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str, u64)>,
);
const TRUTH_CORRECTIONS: &[Correction] = &[];

/// Every capture under `dir` must have a truth file beside it.
fn captures_without_truth(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.to_string_lossy().to_string();
        if p.is_dir() {
            captures_without_truth(&p, out);
        } else if (name.ends_with(".pcap") || name.ends_with(".pcapng"))
            && !Path::new(&format!("{name}.truth.tsv")).exists()
        {
            out.push(p);
        }
    }
}

/// Checks every row of every truth file under `tests/corpus/<corpus>`: returns the rows
/// checked and the disagreements.
fn check_corpus(corpus: &str) -> (usize, usize, Vec<String>) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let root = base.join(corpus);
    let mut missing = Vec::new();
    captures_without_truth(&root, &mut missing);
    assert!(
        missing.is_empty(),
        "captures without a truth file: {missing:?}"
    );
    let mut files = Vec::new();
    truth_files(&root, &mut files);
    files.sort();
    let mut rows_checked = 0;
    let mut disagreements = Vec::new();
    for truth in &files {
        let capture = PathBuf::from(truth.to_string_lossy().trim_end_matches(".truth.tsv"));
        let rel = capture
            .strip_prefix(&base)
            .unwrap()
            .to_string_lossy()
            .to_string();
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
            let stream = f[col("stream")];
            let name = format!("{rel} stream {stream}");
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
            let who_is = |side: &str| {
                if side == "client" {
                    client.clone()
                } else {
                    server.clone()
                }
            };
            let by = f[col("first_close_by")];
            let expected = match TRUTH_CORRECTIONS
                .iter()
                .find(|(c, s, _)| *c == rel && *s == stream)
            {
                Some((_, _, fixed)) => {
                    fixed.map(|(by, kind, frame)| (who_is(by), kind.to_string(), frame))
                }
                None => (by != "-").then(|| {
                    let kind = f[col("first_close_kind")];
                    let frame_col = if kind == "FIN" {
                        "first_fin_frame"
                    } else {
                        "first_rst_frame"
                    };
                    (
                        who_is(by),
                        kind.to_string(),
                        f[col(frame_col)].parse::<u64>().unwrap(),
                    )
                }),
            };
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
    eprintln!(
        "{corpus}: {} truth files, {rows_checked} rows checked",
        files.len()
    );
    (files.len(), rows_checked, disagreements)
}

#[test]
fn who_closed_first_agrees_with_every_zeek_truth_file() {
    let (files, rows_checked, disagreements) = check_corpus("zeek");
    assert!(files >= 30, "corpus incomplete: {files} truth files");
    assert!(
        rows_checked >= 189,
        "only {rows_checked} connections checked"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The `public/` corpus (PcapPlusPlus, tcpdump, Zeek and Chris Sanders' captures): other
/// link types and encapsulations (raw IP, SLL2, QinQ, triple VLAN, ERSPAN, two-interface
/// pcapng), mid-stream connections, scans and refusals.
#[test]
fn who_closed_first_agrees_with_every_public_truth_file() {
    let (files, rows_checked, disagreements) = check_corpus("public");
    assert!(files >= 20, "corpus incomplete: {files} truth files");
    assert!(
        rows_checked >= 313,
        "only {rows_checked} connections checked"
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The idle timeouts the corpus manifests state for their servers (`zeek/extra/MANIFEST.tsv`
/// and `public/MANIFEST.tsv`, written from the captures by others, and checked against the
/// truth files' `idle_before_close_s`): the estimate must find them, and must find none where
/// the server only ever closed right after its response, or never closed an idle connection
/// itself (`zeek-workshop_2011_browse`: Apache announces timeout=5 but every connection is
/// closed by the client after 10-15 s; `pcpp-four_ipv6_http_streams`: nothing closes).
#[test]
fn idle_timeout_estimates_agree_with_the_manifest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    // (capture, server, idle timeout in ms per the manifest, announced Keep-Alive timeout)
    let cases: [(&str, &str, Option<f64>, &[u32]); 12] = [
        (
            "zeek/extra/Traces/http/bro.org.pcap",
            "192.150.187.43:80",
            Some(5_000.0),
            &[5],
        ),
        (
            "zeek/extra/Traces/http/206_example_c.pcap",
            "129.174.93.170:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "zeek/extra/Traces/http/cooper-grill-dvwa.pcapng",
            "192.168.111.154:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "zeek/extra/Traces/var-services-std-ports.pcap",
            "172.16.238.131:80",
            Some(15_000.0),
            &[15],
        ),
        (
            "zeek/extra/Traces/http/missing-zlib-header.pcap",
            "79.218.110.244:80",
            Some(8_800.0),
            &[],
        ),
        (
            "zeek/extra/Traces/http/http-body-match.pcap",
            "192.88.99.42:80",
            None,
            &[5],
        ),
        // Two keep-alive connections closed by the server 5,418 and 5,542 ms after the
        // last response (frames 210-214 and 217-219).
        (
            "public/pcpp-http-packets2.pcap",
            "216.185.152.111:80",
            Some(5_480.0),
            &[],
        ),
        // One connection each, closed by the server 15.19 s (frame 498) and 70.73 s
        // (frame 531) after its response.
        (
            "public/cs-http_espn_fail.pcapng",
            "72.21.91.8:80",
            Some(15_189.0),
            &[],
        ),
        (
            "public/cs-http_espn_fail.pcapng",
            "72.246.56.35:80",
            Some(70_734.0),
            &[],
        ),
        (
            "public/zeek-workshop_2011_browse.pcap",
            "192.150.187.43:80",
            None,
            &[5],
        ),
        (
            "public/pcpp-four_ipv6_http_streams.pcap",
            "[2001:618:1:8000::5]:80",
            None,
            &[15],
        ),
        (
            "public/cs-tcp_ports.pcapng",
            "67.228.110.120:80",
            None,
            &[15],
        ),
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
