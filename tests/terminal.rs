//! The terminal report as a user sees it: run on a real pseudo-terminal (`script`, from
//! util-linux/bsdutils, with `stty cols`) at 80 and 200 columns, and through a pipe and
//! into a file. No line is wider than the terminal, no word of the findings table is
//! broken, the sentences are wrapped, escapes of captured text stay whole, and files get
//! the same fixed width (100) wherever they are written. `-q` prints only the summary.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join("capture.pcap")
}

/// `script` must be there: CI installs it (.ci/run), and a terminal test that skips
/// silently tests nothing.
fn require_script() {
    let found = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`script` (util-linux; Debian's bsdutils) is needed to run the report on a terminal: install it (.ci/run does)"
    );
}

/// Runs `resetscope ARGS...` on a pseudo-terminal `cols` wide (50 rows), `env` set before
/// it; returns what the terminal showed, without carriage returns or colours.
fn on_terminal(cols: u16, env: &str, args: &[&str]) -> String {
    require_script();
    let bin = env!("CARGO_BIN_EXE_resetscope");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let cmd = format!(
        "stty rows 50 cols {cols} && env -u COLUMNS NO_COLOR=1 {env} {bin} {}",
        quoted.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 report");
    assert!(!text.contains('\x1b'), "colour despite NO_COLOR: {text}");
    text.replace('\r', "")
}

/// The widest line, in columns (every character of these reports is one column wide:
/// ASCII, box drawing, arrows, `…`, `µ`, `§`).
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The lines of the findings table (those with a column separator).
fn table(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains('┆')).collect()
}

const WIDTHS: [u16; 2] = [80, 200];

#[test]
fn no_line_is_wider_than_the_terminal() {
    for name in [
        "go-idle-race",
        "reset-kinds",
        "hostile",
        "nginx-go-proxy",
        "ipv6",
        "refused",
    ] {
        let capture = fixture(name);
        for cols in WIDTHS {
            let text = on_terminal(cols, "", &["analyze", "--all", capture.to_str().unwrap()]);
            assert!(
                widest(&text) <= cols as usize,
                "{name} at {cols} columns: a line of {}:\n{text}",
                widest(&text)
            );
        }
    }
}

#[test]
fn the_terminal_s_own_width_wins_over_columns() {
    // The user's bug: $COLUMNS (here a wrong 300) was all that was read.
    let capture = race_capture();
    let text = on_terminal(80, "COLUMNS=300", &["analyze", capture.to_str().unwrap()]);
    assert!(widest(&text) <= 80, "{text}");
}

#[test]
fn table_cells_break_between_words_only() {
    let race = race_capture();
    let kinds = fixture("reset-kinds");
    for cols in WIDTHS {
        let text = on_terminal(cols, "", &["analyze", race.to_str().unwrap()]);
        let rows = table(&text);
        // Every kind and every address whole, once per finding.
        assert_eq!(
            rows.iter().filter(|l| l.contains("idle_race")).count(),
            9,
            "{cols}:\n{text}"
        );
        for (request, close) in race_frames() {
            assert!(
                rows.iter().any(|l| l.contains(&format!("#{request}"))),
                "request #{request} at {cols}:\n{text}"
            );
            assert!(
                rows.iter().any(|l| l.contains(&format!("server #{close}"))),
                "close #{close} at {cols}:\n{text}"
            );
        }
        assert!(rows.iter().any(|l| l.contains("127.0.0.1:54110")), "{text}");
        assert!(rows.iter().any(|l| l.contains("127.0.0.1:9000")), "{text}");
        assert!(
            rows.iter()
                .all(|l| !l.contains("idle_rac ") && !l.contains("idle_rac┆")),
            "{text}"
        );

        let text = on_terminal(cols, "", &["analyze", kinds.to_str().unwrap()]);
        let rows = table(&text);
        for kind in ["reset_in_flight", "reset_after_close"] {
            assert_eq!(
                rows.iter().filter(|l| l.contains(kind)).count(),
                1,
                "{kind} at {cols}:\n{text}"
            );
        }
        assert!(rows.iter().any(|l| l.contains("GET /slow #4")), "{text}");
    }
    // Wide enough, a finding is one row of the table; at 80 columns its cells wrap (or the
    // finding is stacked) without breaking a word.
    let wide = on_terminal(200, "", &["analyze", race.to_str().unwrap()]);
    assert!(
        table(&wide)
            .iter()
            .any(|l| l.contains("127.0.0.1:54110 → 127.0.0.1:9000")
                && l.contains("POST /test #29")
                && l.contains("#26, #28, #29, #30")),
        "{wide}"
    );
}

#[test]
fn sentences_are_wrapped_to_the_width() {
    let race = race_capture();
    let headline = "9 POST requests failed in keep-alive idle races: the server at 127.0.0.1:9000 closes idle connections after ~301 ms, and the client reused connections at that moment.";
    let narrow = on_terminal(80, "", &["analyze", race.to_str().unwrap()]);
    // Not on one line, but all there, word for word.
    assert!(!narrow.lines().any(|l| l == headline), "{narrow}");
    assert!(flat(&narrow).contains(headline), "{narrow}");
    // A numbered sentence continues under its text, not under its number.
    let first = narrow
        .lines()
        .position(|l| l.starts_with("  1. idle_race "))
        .expect("sentence 1");
    let next = narrow.lines().nth(first + 1).unwrap();
    assert!(
        next.starts_with("     ") && !next.starts_with("      "),
        "{next:?}"
    );
    let wide = on_terminal(200, "", &["analyze", race.to_str().unwrap()]);
    assert!(wide.lines().any(|l| l == headline), "{wide}");
}

#[test]
fn escapes_of_captured_text_stay_whole_when_wrapped() {
    let hostile = fixture("hostile");
    for cols in WIDTHS {
        let text = on_terminal(cols, "", &["analyze", hostile.to_str().unwrap()]);
        for line in text.lines() {
            // An escape opened on a line is closed on it.
            let open = line.rfind("\\u{");
            assert!(
                open.is_none_or(|at| line[at..].contains('}')),
                "{cols}: {line:?}"
            );
            assert!(!line.ends_with('\\'), "{cols}: {line:?}");
        }
        for escape in ["/adm\\u{200b}in", "\\u{202e}", "\\x9b31m", "\\x1b[2J"] {
            assert!(text.contains(escape), "{escape} at {cols}:\n{text}");
        }
    }
}

#[test]
fn files_and_pipes_get_a_fixed_width() {
    let race = race_capture();
    let piped = |env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_resetscope"))
            .args(["analyze", race.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .env_remove("COLUMNS")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let text = piped(&[]);
    assert!(widest(&text) <= 100 && widest(&text) > 90, "{text}");
    // $COLUMNS, when set, is what a pipe is told.
    let text = piped(&[("COLUMNS", "120")]);
    assert!(widest(&text) <= 120 && widest(&text) > 100, "{text}");
    // A file written from a terminal is the same as one written anywhere.
    let dir = scratch("terminal-width");
    let file = dir.join("report.txt");
    on_terminal(
        200,
        "",
        &[
            "analyze",
            "-o",
            file.to_str().unwrap(),
            race.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), piped(&[]));
}

#[test]
fn quiet_prints_the_summary_only() {
    let race = race_capture();
    let text = on_terminal(80, "", &["analyze", "-q", race.to_str().unwrap()]);
    let words = flat(&text);
    assert!(
        words.starts_with("resetscope ") && words.contains("636 frames"),
        "{text}"
    );
    assert!(
        words.contains("9 POST requests failed in keep-alive idle races"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "Findings: 9 idle_race, 44 idle_close"),
        "{text}"
    );
    assert!(!text.contains('┆') && !text.contains("Servers"), "{text}");
    assert!(widest(&text) <= 80, "{text}");
    // Another format: an error, not a silently different report.
    let out = run(&["analyze", "-q", "-f", "json", race.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--quiet applies to the terminal report"),
        "{err}"
    );
}

/// Every capture in `fixtures/` (the directories with a `capture.pcap`).
fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join("capture.pcap"))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    assert!(out.len() > 10, "{out:?}");
    out
}

/// The text of an HTML page, its tags made spaces (the style sheet and the SVG's numbers
/// dropped with them).
fn without_tags(html: &str) -> String {
    let body = html.split("</style>").nth(1).unwrap_or(html);
    let mut out = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The prose of a JSON report: its sentences, recommendations and caveats, one a line.
fn prose_of(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let mut walk = vec![v];
    while let Some(v) = walk.pop() {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        (
                            "sentence" | "recommendation" | "message",
                            serde_json::Value::String(s),
                        ) => {
                            out.push_str(s);
                            out.push('\n');
                        }
                        _ => walk.push(v),
                    }
                }
            }
            serde_json::Value::Array(a) => walk.extend(a),
            _ => {}
        }
    }
    out
}

#[test]
fn counts_agree_with_their_nouns_and_are_grouped_by_thousands() {
    let nouns = [
        "connection",
        "request",
        "frame",
        "packet",
        "race",
        "close",
        "finding",
        "byte",
        "observation",
        "reset",
        "link",
        "failure",
        "time",
        "RST",
        "segment",
    ];
    for capture in fixtures() {
        for format in ["terminal", "markdown", "html", "json"] {
            let text = analyze_with(&["--all", "-f", format], &[capture.as_path()]);
            let text = match format {
                "html" => without_tags(&text),
                "json" => prose_of(&serde_json::from_str(&text).unwrap()),
                _ => text,
            };
            // Wireshark filters are for Wireshark: ports and frame numbers as it reads them.
            let text: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("Wireshark filter:"))
                .map(|l| format!("{l}\n"))
                .collect();
            let words: Vec<&str> = text.split_whitespace().collect();
            for pair in words.windows(3) {
                let noun = pair[1].trim_end_matches([',', '.', ';', ':', ')']);
                // "1 idle race", "1 TCP connection": the noun may follow one word.
                for (n, w) in [
                    (pair[0], noun),
                    (pair[0], pair[2].trim_end_matches([',', '.', ';', ':', ')'])),
                ] {
                    let n = n.trim_start_matches(['(', '*']);
                    if n == "1" {
                        let plural = nouns.iter().any(|x| w == format!("{x}s"));
                        assert!(
                            !plural,
                            "{}, {format}: \"{}\"",
                            capture.display(),
                            pair.join(" ")
                        );
                    }
                }
            }
            assert!(
                !flat(&text).contains("1 of the 1 "),
                "{}",
                capture.display()
            );
            // Counts of four digits or more are grouped ("1,007"); frame numbers (#1007),
            // ports (:54110), dates and RFC numbers are not counts.
            for pair in words.windows(2) {
                let n = pair[1].trim_matches(|c: char| "()*,.;:".contains(c));
                if n.len() >= 4
                    && n.chars().all(|c| c.is_ascii_digit())
                    && pair[0].trim_start_matches('(') != "RFC"
                {
                    panic!(
                        "{}, {format}: \"{}\" ungrouped",
                        capture.display(),
                        pair.join(" ")
                    );
                }
            }
        }
    }
}

/// Pieces of captured text: words, spaces, the characters the escaper shows as escapes
/// (C0, C1, bidi, zero-width, tags), wide characters and the punctuation long words break
/// after.
fn captured() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        "[a-z]{1,12}",
        Just(" ".to_string()),
        Just("  ".to_string()),
        Just("/".to_string()),
        Just(":".to_string()),
        Just("\u{1b}[2J".to_string()),
        Just("\u{9b}".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{e0001}".to_string()),
        Just("\\".to_string()),
        Just("日本".to_string()),
        "[A]{20,90}",
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|v| v.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Wrapping escaped text: no line wider than the width (at least the indent and the
    /// widest escape, `\u{e0001}`), nothing lost or added but the line breaks, and no
    /// escape split across lines.
    #[test]
    fn wrapped_escaped_text_keeps_its_escapes_whole(s in captured(), width in 13usize..120) {
        use resetscope::report::wrap;
        let text = resetscope::escape::terminal_max(&s, usize::MAX);
        let lines = wrap::wrap(&text, width, "  - ", "    ");
        for line in &lines {
            proptest::prop_assert!(wrap::width(line) <= width, "{:?} at {}", line, width);
            // Every escape the escaper wrote is on one line: `\u{` closed, `\x` with its
            // two digits.
            if let Some(at) = line.rfind("\\u{") {
                proptest::prop_assert!(line[at..].contains('}'), "{:?}", lines);
            }
        }
        let joined: String = lines.iter().map(|l| l.trim_start()).collect::<Vec<_>>().join("");
        proptest::prop_assert_eq!(
            joined.replace(' ', "").replace("-", ""),
            text.replace(' ', "").replace("-", "")
        );
        // The escapes are all there, whole, in the order they were: read from the left, a
        // backslash starts `\\` (a captured backslash), `\xHH` or `\u{…}`, and no line ends
        // inside one.
        let escapes = |t: &str| -> Option<usize> {
            let b = t.as_bytes();
            let (mut i, mut n) = (0, 0);
            while i < b.len() {
                if b[i] != b'\\' {
                    i += 1;
                    continue;
                }
                let rest = &t[i + 1..];
                let hex2 = rest.get(1..3).is_some_and(|d| d.bytes().all(|c| c.is_ascii_hexdigit()));
                if rest.starts_with('\\') {
                    i += 2;
                } else if rest.starts_with('x') && hex2 {
                    (i, n) = (i + 4, n + 1);
                } else if let Some(end) = rest.strip_prefix("u{").and_then(|r| r.find('}')) {
                    // `\`, `u{`, the digits, `}`.
                    (i, n) = (i + 3 + end + 1, n + 1);
                } else {
                    return None;
                }
            }
            Some(n)
        };
        let per_line: Option<Vec<usize>> = lines.iter().map(|l| escapes(l)).collect();
        proptest::prop_assert!(per_line.is_some(), "a line ends inside an escape: {:?}", lines);
        proptest::prop_assert_eq!(per_line.map(|v| v.iter().sum::<usize>()), escapes(&text));
    }
}

/// The case the property test above found: a captured backslash before an `x` is doubled,
/// so that it cannot be read as the start of an escape, and the pair stays whole on a line;
/// the escape `\x1b` stays whole too.
#[test]
fn a_captured_backslash_is_doubled_and_kept_whole() {
    use resetscope::report::wrap;
    let text = resetscope::escape::terminal_max("/\u{202e} 日本//\u{1b}[2J\\x", usize::MAX);
    assert_eq!(text, "/\\u{202e} 日本//\\x1b[2J\\\\x");
    // The captured text `\x1b` and the escape of ESC no longer read the same.
    assert_eq!(resetscope::escape::terminal("\\x1b"), "\\\\x1b");
    assert_eq!(resetscope::escape::terminal("\u{1b}"), "\\x1b");
    let lines = wrap::wrap(&text, 18, "  - ", "    ");
    assert_eq!(lines, ["  - /\\u{202e}", "    日本//\\x1b[2J", "    \\\\x"]);
}
