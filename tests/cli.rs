//! The command line as a user meets it: reports, exit status, damaged input, several files,
//! every pcap byte order and resolution, closed pipes, and hostile captured text.

mod common;

use common::*;
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn race_fixture_terminal_report_states_the_verdict() {
    let out = run(&["analyze", race_capture().to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The sentences as they read, wherever the report wrapped them.
    let words = flat(&text);
    let races = race_frames();
    assert_eq!(races.len(), 9);
    assert!(
        words.contains("9 POST requests failed in keep-alive idle races"),
        "{text}"
    );
    assert!(
        words.contains("the server at 127.0.0.1:9000 closes idle connections after ~301 ms"),
        "{text}"
    );
    // Each race a row of the table (its cells wrapped as the width needs): the request
    // and the close that decided it.
    let rows = table_rows(&text);
    for (request, close) in races {
        let (req, by) = (format!("POST /test #{request}"), format!("server #{close}"));
        assert!(
            rows.iter()
                .any(|r| r.len() == 8 && r[4] == req && r[5] == by),
            "{req}/{by} missing:\n{text}"
        );
    }
    assert!(
        words.contains("must use an idle timeout below ~300 ms"),
        "{text}"
    );
    assert!(words.contains("must not be retried blindly"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when NO_COLOR is set or stdout is not a terminal"
    );
}

#[test]
fn fail_on_findings_sets_the_exit_status() {
    let race = race_capture();
    let out = run(&["analyze", "--fail-on-findings", race.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let out = run(&[
        "analyze",
        "--fail-on-findings=error",
        race.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let clean = root().join("tests/corpus/zeek/Traces/http/concurrent-range-requests.pcap");
    let out = run(&["analyze", "--fail-on-findings", clean.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn output_file_gets_the_report() {
    let dir = scratch("output");
    let path = dir.join("r.json");
    let out = run(&[
        "analyze",
        "-f",
        "json",
        "-o",
        path.to_str().unwrap(),
        race_capture().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 2);
}

#[test]
fn garbage_empty_and_missing_files_are_clear_errors() {
    let dir = scratch("garbage");
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture at all, just text\n").unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    for (path, says) in [
        (&garbage, "not a pcap or pcapng capture"),
        (&empty, "empty"),
        (&dir.join("nope.pcap"), "cannot read"),
    ] {
        let out = run(&["analyze", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(says),
            "{err}"
        );
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn unusable_file_beside_a_good_one_still_reports_the_good_one() {
    let dir = scratch("mixed");
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, [0u8; 64]).unwrap();
    let out = run(&[
        "analyze",
        race_capture().to_str().unwrap(),
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("idle races"));
}

#[test]
fn truncated_file_is_analysed_up_to_the_cut() {
    let pcap = Pcap::read(&race_capture());
    let full = std::fs::read(race_capture()).unwrap();
    // Cut in the middle of record 300 (frame 301): the races whose frames all come before
    // it must still be found.
    let cut_at = pcap.offset_of(300) + 20;
    let before = race_frames()
        .into_iter()
        .filter(|(r, c)| r.max(c) + 1 < 301)
        .count();
    assert!(before >= 2);
    let dir = scratch("truncated");
    let path = dir.join("truncated.pcap");
    std::fs::write(&path, &full[..cut_at]).unwrap();
    let out = run(&["analyze", "-f", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("truncated.pcap")
            && err.contains("frame 301")
            && err.contains("300 frames before it"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["packets"]["frames"], 300);
    assert_eq!(
        findings(&doc).iter().filter(|f| f.0 == "idle_race").count(),
        before
    );
    let caveats = doc["caveats"].as_array().unwrap();
    assert!(caveats.iter().any(
        |c| c["kind"] == "input_error" && c["message"].as_str().unwrap().contains("frame 301")
    ));
}

#[test]
fn damaged_record_header_names_the_frame() {
    let pcap = Pcap::read(&race_capture());
    let mut bytes = std::fs::read(race_capture()).unwrap();
    let at = pcap.offset_of(99); // record of frame 100
    bytes[at + 8..at + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let dir = scratch("badrecord");
    let path = dir.join("bad.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&["analyze", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("damaged record at frame 100") && err.contains("bad.pcap"),
        "{err}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("99 frames") && text.contains("Caveats"),
        "{text}"
    );
}

#[test]
fn every_byte_order_and_resolution_gives_the_same_findings() {
    let pcap = Pcap::read(&race_capture());
    let reference = findings(&json(&[&race_capture()]));
    assert_eq!(
        reference.iter().filter(|f| f.0 == "idle_race").count(),
        race_frames().len()
    );
    let dir = scratch("variants");
    for (be, ns) in [(true, false), (false, true), (true, true)] {
        let path = dir.join(format!("be{be}-ns{ns}.pcap"));
        pcap.write(&path, 0..pcap.records.len(), be, ns);
        assert_eq!(
            findings(&json(&[&path])),
            reference,
            "big-endian {be}, nanoseconds {ns}"
        );
    }
}

#[test]
fn rotated_files_are_one_capture_with_frames_cited_per_file() {
    let pcap = Pcap::read(&race_capture());
    let n = pcap.records.len();
    let dir = scratch("rotated");
    let (a, b, c) = (
        dir.join("rot-1.pcap"),
        dir.join("rot-2.pcap"),
        dir.join("rot-3.pcap"),
    );
    // Split between a race's FIN (frame 248) and its request (frame 249).
    assert_eq!(race_frames()[3], (249, 248));
    pcap.write(&a, 0..248, false, false);
    pcap.write(&b, 248..268, false, false);
    pcap.write(&c, 268..n, false, false);
    // Given out of order (input indexes: c 0, a 1, b 2): the merge is by time.
    let doc = json(&[&c, &a, &b]);
    let mut races: Vec<_> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "idle_race")
        .collect();
    // JSON lists findings in the order they were decided; order them by time here.
    races.sort_by_key(|f| f["request"]["time"].as_str().unwrap().to_string());
    assert_eq!(races.len(), race_frames().len());
    // Frame 249 of the whole capture is frame 1 of rot-2.pcap; 248 is the last of rot-1.pcap.
    assert_eq!(
        races[3]["request"]["frame"],
        serde_json::json!({"file": 2, "number": 1})
    );
    assert_eq!(
        races[3]["close_frame"],
        serde_json::json!({"file": 1, "number": 248})
    );
    let out = run(&[
        "analyze",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("POST /test rot-2.pcap#1") && text.contains("server rot-1.pcap#248"),
        "{text}"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    for format in ["json", "ndjson"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_resetscope"))
            .args(["analyze", "-f", format, race_capture().to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        run(&["analyze", "--format", "yaml", "x.pcap"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn live_without_the_feature_says_how_to_build_it() {
    if cfg!(feature = "live") {
        return;
    }
    let out = run(&["live", "-i", "lo"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--features live") && err.contains("libpcap-dev"),
        "{err}"
    );
}

/// Whether the client had the server's FIN when it wrote the request, as the fixture's
/// NOTES.md reads it off the wire with tshark: frames 28/29 and 248/249 acknowledge the FIN
/// (the pool reused a closing connection); 268/269 and 557/558 crossed it in flight.
#[test]
fn race_says_whether_the_client_had_the_fin() {
    let doc = json(&[&race_capture()]);
    let mut had: Vec<(u64, Value)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["variant"] == "fin_then_rst")
        .map(|f| {
            (
                f["close_frame"]["number"].as_u64().unwrap(),
                f["client_had_fin"].clone(),
            )
        })
        .collect();
    had.sort_by_key(|h| h.0);
    assert_eq!(
        had,
        vec![
            (28, Value::Bool(true)),
            (248, Value::Bool(true)),
            (269, Value::Bool(false)),
            (557, Value::Bool(false))
        ]
    );
    let crossing = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["close_frame"]["number"] == 269)
        .unwrap();
    assert_eq!(crossing["written_after_close"], false);
    assert!(crossing["sentence"]
        .as_str()
        .unwrap()
        .contains("crossed the server's FIN in flight"));
}

/// Runs `resetscope analyze -f json /dev/stdin` with `input` piped in: a pipe cannot be
/// mapped, so this reads through the streaming path.
fn analyze_pipe(input: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args(["analyze", "-f", "json", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn a_capture_piped_in_gives_the_same_findings() {
    let reference = findings(&json(&[&race_capture()]));
    let out = analyze_pipe(std::fs::read(race_capture()).unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings(&doc), reference);
    for pcapng in [
        "fixtures/pcapng-nano/capture.pcapng",
        "fixtures/pcap-nano/capture.pcap",
    ] {
        let path = root().join(pcapng);
        let out = analyze_pipe(std::fs::read(&path).unwrap());
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(findings(&doc), findings(&json(&[&path])), "{pcapng}");
    }
}

#[test]
fn a_truncated_capture_piped_in_names_the_frame() {
    let pcap = Pcap::read(&race_capture());
    let full = std::fs::read(race_capture()).unwrap();
    let out = analyze_pipe(full[..pcap.offset_of(300) + 20].to_vec());
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("frame 301") && err.contains("300 frames before it"),
        "{err}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["packets"]["frames"], 300);
}

/// Colour only on a terminal, and never with NO_COLOR: run under `script`, which gives the
/// program a pseudo-terminal.
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let has_script = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("script (util-linux) not installed: colour not checked");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_resetscope");
    let capture = race_capture();
    let on_tty = |no_color: bool| {
        let cmd = format!(
            "{} {bin} analyze {}",
            if no_color {
                "NO_COLOR=1"
            } else {
                "env -u NO_COLOR"
            },
            capture.display()
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("\x1b[1mresetscope\x1b[0m"), "{coloured}");
    assert!(
        coloured.contains("\x1b[1;31midle_race\x1b[0m"),
        "{coloured}"
    );
    assert!(!on_tty(true).contains('\x1b'));
}

#[test]
fn all_and_limit_choose_the_rows() {
    let race = race_capture();
    let rows = |args: &[&str]| {
        let mut a = vec!["analyze"];
        a.extend_from_slice(args);
        a.push(race.to_str().unwrap());
        let out = run(&a);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        // Table rows have the column separator (the kind padded to the widest); the numbered
        // sentences below the table do not.
        let count = |kind: &str| {
            text.lines()
                .filter(|l| l.contains('┆') && l.contains(kind))
                .count()
        };
        let (races, idle_closes) = (count("┆ idle_race "), count("┆ idle_close "));
        (races, idle_closes, flat(&text))
    };
    let (races, idle, text) = rows(&[]);
    assert_eq!((races, idle), (9, 0));
    assert!(
        text.contains("44 idle closes (informational) are not listed; --all lists them."),
        "{text}"
    );
    let (races, idle, _) = rows(&["--all", "--limit", "0"]);
    assert_eq!((races, idle), (9, 44));
    let (races, _, text) = rows(&["--limit", "3"]);
    assert_eq!(races, 3);
    assert!(
        text.contains("… and 6 more (--limit 0 lists all, --format json has every one)"),
        "{text}"
    );
}
