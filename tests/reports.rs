//! Reports for tickets: the Markdown and HTML of the race fixture (snapshots, reviewed), the
//! hostile fixture's text made inert in every format, the extracted capture giving the same
//! findings (and tshark reading it), and the HTML rendering in headless Chromium without a
//! console message.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
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

/// Control (Cc), format (Cf, the bidi controls among them), line and paragraph separator
/// characters, by the Unicode character database; none may reach a report raw (JSON
/// escapes them, the other formats show them escaped). A newline is only ever ours.
fn dangerous_raw(report: &str) -> Vec<String> {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    report
        .chars()
        .filter(|&c| c != '\n')
        .filter(|c| {
            matches!(
                c.general_category(),
                G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator
            )
        })
        .map(|c| format!("U+{:04X}", c as u32))
        .collect()
}

/// The hostile fixture's targets as the terminal escape shows them (the 3000-byte one
/// aside).
const SHOWN: [&str; 6] = [
    "/a|b`c`<script>alert(1)</script>*_[x](y)~~~&amp;#h",
    r"/rtl-\u{202e}-gnp.exe",
    r"/adm\u{200b}in/\u{200d}\u{2060}\u{61c}\u{2028}\u{2029}\xad",
    r"/c1-\x9b31m-red-\x1b[2J",
    "http://evil.example/x",
    "/www.evil.example/mail@evil.example/<http://evil.example/>/javascript:alert(1)",
];

#[test]
fn hostile_text_is_inert_in_every_format() {
    let capture = hostile();
    let files = [capture.as_path()];
    let long = "A".repeat(200);

    let terminal = report("terminal", &files);
    for target in SHOWN {
        let cut: String = target.chars().take(40).collect();
        assert!(
            terminal.contains(&format!("GET {cut}")),
            "{cut}: {terminal}"
        );
    }
    assert_eq!(dangerous_raw(&terminal), Vec::<String>::new());
    assert!(!terminal.contains(&long), "long targets must be cut");

    let md = report("markdown", &files);
    assert_eq!(dangerous_raw(&md), Vec::<String>::new());
    assert!(!md.contains(&long));
    let row = |n: usize| {
        md.lines()
            .find(|l| l.starts_with(&format!("| [{n}]")))
            .unwrap()
            .to_string()
    };
    assert!(
        row(1).contains(r"GET /a\|b\`c\`\<script\>alert(1)\</script\>\*\_\[x\](y)\~\~\~\&amp;#h"),
        "{}",
        row(1)
    );
    assert!(
        row(4).contains(
            r"GET /adm\\u{200b}in/\\u{200d}\\u{2060}\\u{61c}\\u{2028}\\u{2029}\\xad (#22)"
        ),
        "{}",
        row(4)
    );
    assert!(
        row(5).contains(r"GET /c1-\\x9b31m-red-\\x1b\[2J (#28)"),
        "{}",
        row(5)
    );
    // No URL can become a link: a `:` after a scheme, a `.` after `www`, an `@`, a `<` are
    // escaped (markdown_parses_as_intended_even_with_hostile_text parses it).
    assert!(
        row(6).contains(r"GET http\://evil.example/x (#34)"),
        "{}",
        row(6)
    );
    assert!(
        row(7).contains(r"GET /www\.evil.example/mail\@evil.example/\<http\://evil.example/\>"),
        "{}",
        row(7)
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
            assert!(
                !line.contains("http://") && !line.contains("www."),
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
    assert_eq!(dangerous_raw(&html), Vec::<String>::new());
    assert!(!html.contains(&long));
    assert!(html
        .contains(r"<code>GET /adm\u{200b}in/\u{200d}\u{2060}\u{61c}\u{2028}\u{2029}\xad</code>"));
    assert!(html.contains("<code>GET http://evil.example/x</code>"));
    assert!(html.contains("&lt;http://evil.example/&gt;"));
    // The only links are the page's own, to its findings.
    let links: Vec<&str> = html.split("<a ").skip(1).collect();
    assert!(!links.is_empty());
    for l in links {
        assert!(l.starts_with("href=\"#finding-"), "{l}");
    }
    assert!(
        html.contains("default-src 'none'"),
        "the page forbids scripts and remote resources"
    );

    let raw = report("json", &files);
    assert_eq!(dangerous_raw(&raw), Vec::<String>::new());
    for escaped in [
        r"\u202e", r"\u200b", r"\u200d", r"\u2060", r"\u061c", r"\u2028", r"\u2029", r"\u00ad",
        r"\u009b", r"\u001b",
    ] {
        assert!(raw.contains(escaped), "{escaped}");
    }
    let doc: Value = serde_json::from_str(&raw).unwrap();
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
    assert_eq!(targets[1], "/rtl-\u{202e}-gnp.exe");
    assert!(targets[2].chars().count() <= 513 && targets[2].ends_with('…'));
    assert_eq!(
        targets[3],
        "/adm\u{200b}in/\u{200d}\u{2060}\u{61c}\u{2028}\u{2029}\u{ad}"
    );
    assert_eq!(targets[4], "/c1-\u{9b}31m-red-\u{1b}[2J");
    assert_eq!(targets[5], "http://evil.example/x");
    assert_eq!(targets[6], SHOWN[5]);
}

/// A capture file name built to break every format: a table pipe, a backtick, an HTML
/// element with a script in an attribute, and a right-to-left override.
const HOSTILE_NAME: &str = "h|`<img src=x onerror=alert(1)>\u{202e}gnp";

/// File names are escaped like captured text: in the title, the inputs, the frame names of
/// several files, and the error a damaged file gives (which quotes its path), in every
/// format and on stderr.
#[test]
fn hostile_file_names_are_inert_in_every_format() {
    let dir = scratch("hostile-names");
    let first = dir.join(format!("{HOSTILE_NAME}-1.pcap"));
    let second = dir.join(format!("{HOSTILE_NAME}-2.pcap"));
    std::fs::copy(hostile(), &first).unwrap();
    // The race capture, cut in its last record: a truncation error that quotes the path.
    let race = std::fs::read(race_capture()).unwrap();
    std::fs::write(&second, &race[..race.len() - 7]).unwrap();
    let files = [first.as_path(), second.as_path()];
    let name = |n: u32| format!("h|`<img src=x onerror=alert(1)>\\u{{202e}}gnp-{n}.pcap");
    let run_as = |format: &str| {
        let mut args = vec!["analyze", "-f", format];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("truncated"), "{stderr}");
        assert_eq!(
            dangerous_raw(&stderr),
            Vec::<String>::new(),
            "{format}: stderr"
        );
        assert!(stderr.contains(&name(2)), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    };

    let terminal = run_as("terminal");
    assert_eq!(dangerous_raw(&terminal), Vec::<String>::new());
    // The summary names both files (wrapped at the spaces the names hold, which wrapping
    // makes line breaks; their escapes stay whole).
    let head = flat(terminal.split("\n\n").next().unwrap());
    assert!(head.contains(&name(1)) && head.contains(&name(2)), "{head}");

    let md = run_as("markdown");
    assert_eq!(dangerous_raw(&md), Vec::<String>::new());
    // Outside the ladders' fences (code, where `<img` is text) every `<` is escaped.
    let mut fenced = false;
    for line in md.lines() {
        if line.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            assert_eq!(
                line.matches('<').count(),
                line.matches(r"\<").count()
                    + line.matches("<a id=").count()
                    + line.matches("</a>").count(),
                "{line}"
            );
        }
    }
    assert!(md.contains(r"\<img src=x onerror=alert(1)\>"));
    let title = md.lines().next().unwrap();
    assert_eq!(
        title,
        r"# resetscope report: h\|\`\<img src=x onerror=alert(1)\>\\u{202e}gnp-1.pcap + h\|\`\<img src=x onerror=alert(1)\>\\u{202e}gnp-2.pcap"
    );
    let parsed = parse_markdown(&md);
    assert_eq!(
        parsed.title,
        format!("resetscope report: {} + {}", name(1), name(2))
    );
    assert!(!parsed.rows.is_empty());
    for row in &parsed.rows {
        assert_eq!(row.len(), 9, "{row:?}");
        assert!(
            row[8].contains(&format!("{}#", name(1))) || row[8].contains(&format!("{}#", name(2))),
            "{row:?}"
        );
    }
    assert!(
        parsed
            .caveats
            .iter()
            .any(|c| c.contains(&name(2)) && c.contains("truncated")),
        "{:?}",
        parsed.caveats
    );

    let html = run_as("html");
    assert_eq!(dangerous_raw(&html), Vec::<String>::new());
    assert!(!html.contains("<img"));
    assert!(html.contains(r"h|`&lt;img src=x onerror=alert(1)&gt;\u{202e}gnp-2.pcap"));

    let raw = run_as("json");
    assert_eq!(dangerous_raw(&raw), Vec::<String>::new());
    assert!(raw.contains(r"gnp-1.pcap") && raw.contains(r"\u202egnp"));
    let doc: Value = serde_json::from_str(&raw).unwrap();
    let paths: Vec<&str> = doc["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [first.to_str().unwrap(), second.to_str().unwrap()],
        "JSON keeps the exact path"
    );
    let errors = doc["errors"].as_array().unwrap();
    assert!(errors[0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}: truncated", second.display())));
}

/// The JSON report needs a scratch file for its findings; a temporary directory that cannot
/// take one is an error before any of the report is written, saying what to do.
#[test]
fn an_unwritable_tmpdir_fails_before_the_json_report_starts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(["analyze", "-f", "json", hostile().to_str().unwrap()])
        .env("TMPDIR", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("/nonexistent")
            && stderr.contains("TMPDIR")
            && stderr.contains("set TMPDIR to a writable directory"),
        "{stderr}"
    );
    // The other formats need no scratch file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(["analyze", "-f", "markdown", hostile().to_str().unwrap()])
        .env("TMPDIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success());
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

/// The HTML reports of the race and hostile fixtures, written in a scratch directory named
/// `dir`, for the checks in headless Chromium: `None` (and a message saying what was not
/// checked) where Chromium is not installed, which CI does not allow.
fn html_pages_for_chromium(dir: &str, unchecked: &str) -> Option<Vec<(&'static str, PathBuf)>> {
    let available = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium");
        eprintln!("chromium not installed: {unchecked} not checked");
        return None;
    }
    let dir = scratch(dir);
    let mut pages = Vec::new();
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
        pages.push((name, page));
    }
    Some(pages)
}

#[test]
fn html_renders_in_chromium_without_console_messages() {
    let Some(pages) = html_pages_for_chromium("chromium", "HTML rendering") else {
        return;
    };
    for (name, page) in pages {
        let shot = page.with_file_name(format!("{name}.png"));
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

/// The Markdown as GitHub reads it, through a CommonMark parser with GFM's extensions.
struct ParsedMarkdown {
    /// The text of the title.
    title: String,
    /// The findings table's rows, each cell's text.
    rows: Vec<Vec<String>>,
    /// The text of each caveat.
    caveats: Vec<String>,
}

/// A text run with one of GFM's extended autolinks, which pulldown-cmark does not
/// implement: `www.`, `http://`, `https://`, `ftp://`, `mailto:`, `xmpp:` or an e-mail
/// address. As in GitHub's cmark-gfm, an escape (`http\://`) ends one run and starts the next,
/// so an escaped one is no link.
fn extended_autolink(run: &str) -> bool {
    let l = run.to_ascii_lowercase();
    let b = run.as_bytes();
    ["www.", "http://", "https://", "ftp://", "mailto:", "xmpp:"]
        .iter()
        .any(|p| l.contains(p))
        || (1..b.len().saturating_sub(1)).any(|i| {
            b[i] == b'@'
                && (b[i - 1].is_ascii_alphanumeric() || b"._+-".contains(&b[i - 1]))
                && b[i + 1].is_ascii_alphanumeric()
        })
}

/// Parses a Markdown report as GitHub would (tables, strike-through, task lists,
/// footnotes, alerts, math; extended autolinks checked by hand), failing on anything
/// captured text could have made: HTML, a link, an image, math, a footnote, a task box,
/// strike-through or an autolink outside code blocks. The only HTML and links are the
/// report's own anchors.
fn parse_markdown(md: &str) -> ParsedMarkdown {
    use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
    let options = gfm();
    let mut parsed = ParsedMarkdown {
        title: String::new(),
        rows: Vec::new(),
        caveats: Vec::new(),
    };
    let (mut in_table, mut in_head, mut in_code, mut in_title) = (false, false, false, false);
    let (mut section, mut in_section_heading, mut in_item) = (String::new(), false, false);
    for event in Parser::new_ext(md, options) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => {
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
            Event::Start(
                t @ (Tag::Image { .. } | Tag::Strikethrough | Tag::FootnoteDefinition(_)),
            ) => panic!("{t:?} from captured text"),
            e @ (Event::InlineMath(_)
            | Event::DisplayMath(_)
            | Event::FootnoteReference(_)
            | Event::TaskListMarker(_)) => panic!("{e:?} from captured text"),
            Event::Start(Tag::CodeBlock(_)) => in_code = true,
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Start(Tag::Heading { level, .. }) => {
                in_title = level == HeadingLevel::H1;
                in_section_heading = level == HeadingLevel::H2;
                if in_section_heading {
                    section.clear();
                }
            }
            Event::End(TagEnd::Heading(_)) => (in_title, in_section_heading) = (false, false),
            Event::Start(Tag::Item) if section == "Caveats" => {
                in_item = true;
                parsed.caveats.push(String::new());
            }
            Event::End(TagEnd::Item) => in_item = false,
            Event::Start(Tag::Table(_)) => in_table = true,
            Event::End(TagEnd::Table) => in_table = false,
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableRow) if !in_head => parsed.rows.push(Vec::new()),
            Event::Start(Tag::TableCell) if in_table && !in_head => {
                parsed.rows.last_mut().unwrap().push(String::new())
            }
            Event::Text(t) | Event::Code(t) => {
                assert!(
                    in_code || !extended_autolink(&t),
                    "extended autolink in {t:?}"
                );
                if in_title {
                    parsed.title.push_str(&t);
                } else if in_section_heading {
                    section.push_str(&t);
                } else if in_item {
                    parsed.caveats.last_mut().unwrap().push_str(&t);
                } else if in_table && !in_head {
                    if let Some(cell) = parsed.rows.last_mut().and_then(|r| r.last_mut()) {
                        cell.push_str(&t);
                    }
                }
            }
            _ => {}
        }
    }
    parsed
}

/// The Markdown as a GitHub-flavoured Markdown parser reads it: captured text never becomes
/// HTML, a link, an image, emphasis or code, and every findings row keeps its nine cells,
/// the request cell reading exactly the request as sent, as the terminal escape shows it
/// (GFM drops cells beyond the header's count, so a stray pipe would show up here as a cut
/// request, not as a tenth cell).
#[test]
fn markdown_parses_as_intended_even_with_hostile_text() {
    let mut hostile_requests: Vec<String> = SHOWN
        .iter()
        .zip([4, 10, 22, 28, 34, 40])
        .map(|(target, frame)| {
            let cut: String = target.chars().take(60).collect();
            let cut = if cut.chars().count() < target.chars().count() {
                format!("{cut}…")
            } else {
                cut
            };
            format!("GET {cut} (#{frame})")
        })
        .collect();
    hostile_requests.insert(2, format!("GET /{}… (#16)", "A".repeat(59)));
    for (capture, requests) in [
        (race_capture(), vec!["POST /test (#29)".to_string()]),
        (hostile(), hostile_requests),
    ] {
        let md = report("markdown", &[&capture]);
        let parsed = parse_markdown(&md);
        let findings = md.lines().filter(|l| l.starts_with("| [")).count();
        assert!(findings > 0);
        assert!(
            parsed.rows.iter().all(|r| r.len() == 9),
            "{}: every row has its nine cells: {:?}",
            capture.display(),
            parsed.rows
        );
        assert_eq!(parsed.rows.len(), findings);
        for (row, request) in parsed.rows.iter().zip(&requests) {
            assert_eq!(
                &row[4],
                request,
                "{}: the request cell reads as sent",
                capture.display()
            );
        }
    }
}

/// The Markdown reads cleanly in plain CommonMark as in GFM (issue 12): every backslash the
/// report writes is an escape both consume, so none shows (these captures quote no
/// backslash), and our own sentences carry none in the source either where no markup could
/// start (`~301 ms`, `#28`, `idle_race`).
#[test]
fn markdown_shows_no_backslash_in_commonmark_or_gfm() {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    for name in ["go-idle-race", "refused", "tls-idle-race", "nginx-go-proxy"] {
        let capture = root().join("fixtures").join(name).join("capture.pcap");
        let md = report("markdown", &[&capture]);
        for source in md.lines() {
            for needless in [r"\~3", r"\#", r"\_"] {
                assert!(!source.contains(needless), "{name}: {needless} in {source}");
            }
        }
        for (flavour, options) in [("CommonMark", Options::empty()), ("GFM", gfm())] {
            let mut in_code = false;
            for event in Parser::new_ext(&md, options) {
                match event {
                    Event::Start(Tag::CodeBlock(_)) => in_code = true,
                    Event::End(TagEnd::CodeBlock) => in_code = false,
                    Event::Text(t) if !in_code => {
                        assert!(
                            !t.contains('\\'),
                            "{name}, {flavour}: a backslash shows in {t:?}"
                        )
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The HTML uses the page's width on a desktop and stacks the findings on a phone (issue
/// 12), as laid out by headless Chromium at 1280 and 390 CSS pixels
/// (`scripts/html-layout.sh`). The screenshots are kept in `$TMPDIR` for a look
/// (`RESETSCOPE_KEEP_SHOTS=DIR` copies them there).
#[test]
fn html_uses_the_width_of_a_desktop_and_of_a_phone() {
    let Some(pages) = html_pages_for_chromium("layout", "HTML layout") else {
        return;
    };
    for (name, page) in pages {
        for width in [1280, 390] {
            let shot = page.with_file_name(format!("{name}-{width}.png"));
            let o = Command::new(root().join("scripts/html-layout.sh"))
                .arg(&page)
                .arg(width.to_string())
                .arg(&shot)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(
                o.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&o.stderr)
            );
            let get = |k: &str| -> i64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .unwrap_or_else(|| panic!("{k} in {text}"))
                    .trim()
                    .parse()
                    .unwrap()
            };
            assert_eq!(get("viewport"), width, "{name} at {width}: {text}");
            assert_eq!(get("page_overflow"), 0, "{name} at {width}: {text}");
            assert_eq!(get("wrapped_cells"), 0, "{name} at {width}: {text}");
            assert_eq!(get("table_overflow"), 0, "{name} at {width}: {text}");
            if width == 1280 {
                assert_eq!(get("stacked"), 0, "{name} at {width}: {text}");
                assert!(get("table_width") >= 1200, "{name} at {width}: {text}");
            } else {
                assert_eq!(get("stacked"), 1, "{name} at {width}: {text}");
                assert!(get("table_width") <= 390, "{name} at {width}: {text}");
            }
            assert!(
                std::fs::metadata(&shot).unwrap().len() > 10_000,
                "{name} at {width}"
            );
            if let Some(keep) = std::env::var_os("RESETSCOPE_KEEP_SHOTS") {
                std::fs::copy(&shot, Path::new(&keep).join(shot.file_name().unwrap())).unwrap();
            }
        }
    }
}
