//! Reports for tickets: the Markdown and HTML of the race fixture (snapshots, reviewed), the
//! hostile fixture's text made inert in every format, the extracted capture giving the same
//! findings (and tshark reading it), and the HTML rendering in headless Chromium without a
//! console message.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn report(format: &str, files: &[&Path]) -> String {
    analyze_as(format, files)
}

fn hostile() -> std::path::PathBuf {
    root().join("fixtures/hostile/capture.pcap")
}

#[test]
fn race_markdown_snapshot() {
    insta::assert_snapshot!("race_markdown", report("markdown", &[&race_capture()]));
}

#[test]
fn race_html_snapshot() {
    insta::assert_snapshot!("race_html", report("html", &[&race_capture()]));
}

#[test]
fn markdown_leads_with_the_verdict_and_cites_frames() {
    let md = report("markdown", &[&race_capture()]);
    let mut lines = md.lines().filter(|l| !l.is_empty());
    assert_eq!(lines.next(), Some("# resetscope report: capture.pcap"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("> **9 POST requests failed in keep-alive idle races"));
    for (request, close) in race_frames() {
        assert!(
            md.contains(&format!("(#{request})")) && md.contains(&format!(" #{close} |")),
            "{request}/{close}"
        );
    }
    assert_eq!(
        md.matches("Wireshark filter: `ip.addr == 127.0.0.1 && tcp.port == ")
            .count(),
        9
    );
    // Every ladder is a closed fence: 9 findings, 18 fence lines.
    assert_eq!(md.lines().filter(|l| l.starts_with("~~~")).count(), 18);
}

#[test]
fn hostile_text_is_inert_in_every_format() {
    let capture = hostile();
    let files = [capture.as_path()];
    let long = "A".repeat(200);

    let terminal = report("terminal", &files);
    assert!(
        terminal.contains("GET /rtl-\\u{202e}-gnp.exe"),
        "{terminal}"
    );
    assert!(!terminal.contains('\u{202e}') && !terminal.contains('\x1b'));
    assert!(!terminal.contains(&long), "long targets must be cut");

    let md = report("markdown", &files);
    assert!(!md.contains('\u{202e}') && !md.contains(&long));
    let row = md.lines().find(|l| l.starts_with("| [1]")).unwrap();
    assert!(
        row.contains(r"GET /a\|b\`c\`\<script\>alert(1)\</script\>\*\_\[x\](y)\~\~\~\&amp;\#h"),
        "{row}"
    );
    // Outside the ladders' fences nothing is raw; inside, nothing can close the fence.
    let mut fenced = false;
    for line in md.lines() {
        if line.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            assert!(
                !line.contains("<script>") && !line.contains("](y)")
                    || line.contains(r"\<script\>"),
                "{line}"
            );
        } else {
            assert!(!line.contains('`') && !line.contains("~~~"), "{line}");
        }
    }
    assert!(!fenced, "every fence is closed");

    let html = report("html", &files);
    assert!(
        !html.to_lowercase().contains("<script"),
        "no script element may appear"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains('\u{202e}') && !html.contains(&long));
    assert!(
        html.contains("default-src 'none'"),
        "the page forbids scripts and remote resources"
    );

    let doc: Value = serde_json::from_str(&report("json", &files)).unwrap();
    let targets: Vec<&str> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["requests"][0]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets[0], "/a|b`c`<script>alert(1)</script>*_[x](y)~~~&amp;#h",
        "JSON keeps the exact text"
    );
    assert!(targets[2].chars().count() <= 513 && targets[2].ends_with('…'));
}

/// The key of a finding that survives renumbering frames: what, who, which request, when.
/// The findings other than idle closes, as sorted keys (the JSON lists them in the order
/// they were decided, which depends on when each server's estimate became firm).
fn finding_keys(doc: &Value) -> Vec<String> {
    let mut keys: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| {
            format!(
                "{} {} {} {} {}",
                f["kind"], f["client"], f["variant"], f["request"]["method"], f["request"]["time"]
            )
        })
        .collect();
    keys.sort();
    keys
}

fn tshark_reads(path: &Path) {
    match Command::new("tshark")
        .args(["-r", path.to_str().unwrap(), "-q"])
        .output()
    {
        Ok(out) => assert!(
            out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("appears to"),
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("tshark not installed: extract not cross-checked")
        }
        Err(e) => panic!("tshark is needed in CI: {e}"),
    }
}

#[test]
fn extract_gives_the_same_findings() {
    let dir = scratch("extract");
    for (name, inputs) in [
        ("race", vec![race_capture()]),
        ("hostile", vec![hostile()]),
        // Two link types (Ethernet and Linux cooked v2): the extract is a pcapng.
        (
            "mixed",
            vec![
                race_capture(),
                root().join("fixtures/sll2-any/capture.pcap"),
            ],
        ),
    ] {
        let extract = dir.join(format!("{name}.pcap"));
        let mut args = vec![
            "analyze".to_string(),
            "-f".into(),
            "json".into(),
            "--extract".into(),
            extract.display().to_string(),
        ];
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let original: Value = serde_json::from_slice(&out.stdout).unwrap();
        let again = json(&[&extract]);
        assert!(!finding_keys(&original).is_empty());
        assert_eq!(finding_keys(&again), finding_keys(&original), "{name}");
        let connections = |d: &Value| d["connections"].as_array().unwrap().len();
        assert!(
            connections(&again) < connections(&original) || name == "hostile",
            "{name}: the extract is small"
        );
        let magic = std::fs::read(&extract).unwrap()[..4].to_vec();
        let pcapng = magic == [0x0a, 0x0d, 0x0d, 0x0a];
        assert_eq!(
            pcapng,
            name == "mixed",
            "{name}: pcap unless link types are mixed"
        );
        tshark_reads(&extract);
    }
}

#[test]
fn html_renders_in_chromium_without_console_messages() {
    let dir = scratch("chromium");
    let available = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
        eprintln!("chromium not installed: HTML rendering not checked");
        return;
    }
    for (name, capture) in [("race", race_capture()), ("hostile", hostile())] {
        let page = dir.join(format!("{name}.html"));
        let out = run(&[
            "analyze",
            "-f",
            "html",
            "-o",
            page.to_str().unwrap(),
            capture.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        let shot = dir.join(format!("{name}.png"));
        let check = Command::new(root().join("scripts/check-html.sh"))
            .arg(&page)
            .arg(&shot)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(
            std::fs::metadata(&shot).unwrap().len() > 10_000,
            "screenshot of the ladder"
        );
    }
}

/// The Markdown as a GitHub-flavoured Markdown parser reads it: captured text never becomes
/// HTML, a link, emphasis or code, and every findings row keeps its nine cells, the request
/// cell reading exactly the request as sent (GFM drops cells beyond the header's count, so a
/// stray pipe would show up here as a cut request, not as a tenth cell).
#[test]
fn markdown_parses_as_intended_even_with_hostile_text() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let hostile_target = "/a|b`c`<script>alert(1)</script>*_[x](y)~~~&amp;#h";
    for (capture, first_request) in [
        (race_capture(), "POST /test (#29)".to_string()),
        (hostile(), format!("GET {hostile_target} (#4)")),
    ] {
        let md = report("markdown", &[&capture]);
        let (mut in_table, mut in_head) = (false, false);
        let mut rows: Vec<Vec<String>> = Vec::new();
        for event in Parser::new_ext(&md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
            match event {
                Event::Html(h) | Event::InlineHtml(h) => {
                    // Only the anchors resetscope writes itself are HTML.
                    assert!(
                        h.starts_with("<a id=\"finding-") || h.as_ref() == "</a>",
                        "HTML from captured text: {h}"
                    )
                }
                Event::Start(Tag::Link { dest_url, .. }) => {
                    assert!(
                        dest_url.starts_with("#finding-"),
                        "link from captured text: {dest_url}"
                    )
                }
                Event::Start(Tag::Table(_)) => in_table = true,
                Event::End(TagEnd::Table) => in_table = false,
                Event::Start(Tag::TableHead) => in_head = true,
                Event::End(TagEnd::TableHead) => in_head = false,
                Event::Start(Tag::TableRow) if !in_head => rows.push(Vec::new()),
                Event::Start(Tag::TableCell) if in_table && !in_head => {
                    rows.last_mut().unwrap().push(String::new())
                }
                Event::Text(t) | Event::Code(t) if in_table && !in_head => {
                    if let Some(cell) = rows.last_mut().and_then(|r| r.last_mut()) {
                        cell.push_str(&t);
                    }
                }
                _ => {}
            }
        }
        let findings = md.lines().filter(|l| l.starts_with("| [")).count();
        assert!(findings > 0);
        assert!(
            rows.iter().all(|r| r.len() == 9),
            "{}: every row has its nine cells: {rows:?}",
            capture.display()
        );
        assert_eq!(rows.len(), findings);
        assert_eq!(
            rows[0][4],
            first_request,
            "{}: the request cell reads as sent",
            capture.display()
        );
    }
}
