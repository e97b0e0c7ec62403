//! Input and output as a user meets them (issue 12): `-` for standard input, for `-o` and
//! for `--extract`; gzip, zstd and xz captures, from a file and through a pipe, told by
//! their magic bytes; and inputs that cannot be used, alone or beside good ones.
//!
//! The compressed captures are made here, from the fixtures, with the `gzip`, `zstd` and
//! `xz` command-line tools (.ci/run installs them).

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `file` compressed by `tool` (`gzip`, `zstd`, `xz`) into `dir`, named `name`.
fn compress(tool: &str, file: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = Command::new(tool)
        .arg("-c")
        .arg(file)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{tool} is needed for this test (.ci/run installs it): {e}"));
    assert!(out.status.success(), "{tool} failed");
    let path = dir.join(name);
    std::fs::write(&path, out.stdout).unwrap();
    path
}

/// The JSON report in `out`, which must have succeeded, with each input's path replaced by
/// `INPUT` (the only place a readable input's name appears).
fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    for input in doc["inputs"].as_array_mut().unwrap() {
        input["path"] = "INPUT".into();
    }
    doc
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The JSON report of the race fixture, read as a plain file.
fn plain_report() -> Value {
    report(&run(&["analyze", "-f", "json", path_str(&race_capture())]))
}

#[test]
fn standard_input_gives_the_same_report_as_the_file() {
    let bytes = std::fs::read(race_capture()).unwrap();
    let piped = report(&run_piped(&["analyze", "-f", "json", "-"], bytes, &[]));
    assert_eq!(piped, plain_report());
    assert_eq!(piped["summary"]["findings"]["idle_race"], 9);
}

#[test]
fn compressed_files_and_pipes_give_the_same_report_as_the_plain_file() {
    let dir = scratch("input-compressed");
    let plain = plain_report();
    // Names that say nothing of the compression: the magic bytes tell.
    for (tool, name) in [
        ("gzip", "capture.pcap.gz"),
        ("zstd", "capture.zst"),
        ("xz", "capture-xz.pcap"),
    ] {
        let file = compress(tool, &race_capture(), &dir, name);
        let from_file = report(&run(&["analyze", "-f", "json", path_str(&file)]));
        assert_eq!(from_file, plain, "{tool} file");
        let bytes = std::fs::read(&file).unwrap();
        let from_pipe = report(&run_piped(&["analyze", "-f", "json", "-"], bytes, &[]));
        assert_eq!(from_pipe, plain, "{tool} through a pipe");
    }
}

/// gzip members, zstd frames and xz streams one after the other (`cat a.gz b.gz`, `pigz`,
/// `zstd -T`) are one capture; so are zstd frames with a skippable frame between them
/// (as `pzstd` writes).
#[test]
fn concatenated_members_frames_and_streams_are_one_capture() {
    let dir = scratch("input-members");
    let bytes = std::fs::read(race_capture()).unwrap();
    // Split mid-record, as `split -b` would.
    let (a, b) = bytes.split_at(bytes.len() / 2 + 7);
    let first = dir.join("a");
    let second = dir.join("b");
    std::fs::write(&first, a).unwrap();
    std::fs::write(&second, b).unwrap();
    let plain = plain_report();
    for tool in ["gzip", "zstd", "xz"] {
        let mut both = std::fs::read(compress(tool, &first, &dir, "a.z")).unwrap();
        if tool == "zstd" {
            // A skippable frame (magic 0x184D2A5?, length, payload).
            both.extend([0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0, 1, 2, 3, 4, 5]);
        }
        both.extend(std::fs::read(compress(tool, &second, &dir, "b.z")).unwrap());
        let path = dir.join(format!("both.{tool}"));
        std::fs::write(&path, both).unwrap();
        assert_eq!(
            report(&run(&["analyze", "-f", "json", path_str(&path)])),
            plain,
            "{tool}"
        );
    }
}

/// zstd and xz decode in blocks: a capture cut mid-stream is analysed up to the last whole
/// block, and the error names the file and the frame after the last one read.
#[test]
fn cut_zstd_and_xz_streams_are_analysed_up_to_the_cut() {
    let dir = scratch("input-cut-streams");
    let capture = root().join("tests/corpus/public/pcpp-example.pcap");
    let all = report(&run(&["analyze", "-f", "json", path_str(&capture)]));
    let total = all["summary"]["packets"]["frames"].as_u64().unwrap();
    for tool in ["zstd", "xz", "gzip"] {
        let bytes = std::fs::read(compress(tool, &capture, &dir, "c")).unwrap();
        let cut = dir.join(format!("cut-{tool}"));
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let out = run(&["analyze", "-f", "json", path_str(&cut)]);
        assert_eq!(out.status.code(), Some(0), "{tool}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let frames = doc["summary"]["packets"]["frames"].as_u64().unwrap();
        assert!(frames > 0 && frames < total, "{tool}: {frames} of {total}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}: the {tool} compressed data stops at frame {}",
                path_str(&cut),
                frames + 1
            )),
            "{tool}: {err}"
        );
    }
}

/// Markdown reads the input twice (packet ladders): a compressed pipe is kept compressed in
/// the spool and decompressed again; a compressed file is decompressed again.
#[test]
fn the_second_pass_reads_compressed_input_again() {
    let dir = scratch("input-second-pass");
    let plain_bytes = std::fs::read(race_capture()).unwrap();
    let md = |out: Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = md(run_piped(
        &["analyze", "-f", "markdown", "-"],
        plain_bytes,
        &[],
    ));
    let ladders = plain.matches("~~~").count();
    assert!(ladders > 0, "{plain}");
    // The same file name in two folders: the reports differ only by the folder.
    std::fs::create_dir_all(dir.join("plain")).unwrap();
    let plain_file = dir.join("plain/capture");
    std::fs::copy(race_capture(), &plain_file).unwrap();
    let plain_from_file = md(run(&["analyze", "-f", "markdown", path_str(&plain_file)]));
    for tool in ["gzip", "zstd", "xz"] {
        std::fs::create_dir_all(dir.join(tool)).unwrap();
        let file = compress(tool, &race_capture(), &dir.join(tool), "capture");
        let piped = md(run_piped(
            &["analyze", "-f", "markdown", "-"],
            std::fs::read(&file).unwrap(),
            &[],
        ));
        same_text(&piped, &plain, &format!("{tool} through a pipe"));
        let from_file = md(run(&["analyze", "-f", "markdown", path_str(&file)]));
        let from_file = from_file.replace(&format!("/{tool}/capture"), "/plain/capture");
        same_text(&from_file, &plain_from_file, &format!("{tool} file"));
    }
}

/// Fails on the first line where `got` and `want` differ (reports are long).
fn same_text(got: &str, want: &str, what: &str) {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{what}: line {}", i + 1);
    }
    assert_eq!(got.lines().count(), want.lines().count(), "{what}");
}

#[test]
fn dash_output_is_standard_output() {
    let dir = scratch("input-dash-output");
    let out = Command::new(env!("CARGO_BIN_EXE_resetscope"))
        .args([
            "analyze",
            "-f",
            "json",
            "-o",
            "-",
            path_str(&race_capture()),
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(report(&out), plain_report());
    assert!(!dir.join("-").exists(), "no file named -");
}

/// The findings of a JSON report as (kind, client, server, method and path of the request),
/// idle closes aside (an extract holds only the connections with other findings).
fn finding_keys(doc: &Value) -> Vec<(String, String, String, String)> {
    let mut keys: Vec<_> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "idle_close")
        .map(|f| {
            (
                f["kind"].to_string(),
                f["client"].to_string(),
                f["server"].to_string(),
                format!("{} {}", f["request"]["method"], f["request"]["path"]),
            )
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn extract_to_standard_output_pipes_into_analyze() {
    let dir = scratch("input-extract");
    let gz = compress("gzip", &race_capture(), &dir, "c.gz");
    let plain = plain_report();
    let expected = finding_keys(&plain);
    assert_eq!(expected.len(), 9);
    for (what, args, stdin) in [
        ("file", vec![path_str(&race_capture()).to_string()], None),
        (
            "compressed pipe",
            vec!["-".to_string()],
            Some(std::fs::read(&gz).unwrap()),
        ),
    ] {
        let mut full = vec!["analyze", "--extract", "-"];
        full.extend(args.iter().map(String::as_str));
        let out = match stdin {
            Some(bytes) => run_piped(&full, bytes, &[]),
            None => run(&full),
        };
        assert!(out.status.success(), "{what}");
        // The report went to standard error, the pcap to standard output.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("idle races"), "{what}: {err}");
        assert!(err.contains("written to standard output"), "{what}: {err}");
        let extract = out.stdout;
        assert_eq!(
            &extract[..4],
            &0xa1b2_3c4du32.to_le_bytes(),
            "{what}: a pcap"
        );
        let again = report(&run_piped(&["analyze", "-f", "json", "-"], extract, &[]));
        assert_eq!(finding_keys(&again), expected, "{what}");
    }
    // A report file beside it is fine; both on standard output is a usage error.
    let report_file = dir.join("r.json");
    let out = run(&[
        "analyze",
        "-f",
        "json",
        "-o",
        path_str(&report_file),
        "--extract",
        "-",
        path_str(&race_capture()),
    ]);
    assert!(out.status.success());
    assert!(!out.stdout.is_empty());
    let doc: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    assert_eq!(doc["summary"]["findings"]["idle_race"], 9);
    let out = run(&[
        "analyze",
        "-o",
        "-",
        "--extract",
        "-",
        path_str(&race_capture()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("standard output"), "{err}");
}

#[test]
fn an_unusable_input_alone_gets_its_error_and_no_report() {
    let dir = scratch("input-unusable");
    let missing = dir.join("nonexist.pcap");
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"not a capture at all\n").unwrap();
    // A gzip stream cut inside its own header: nothing of the capture can be read.
    let gz = compress("gzip", &race_capture(), &dir, "c.gz");
    let cut = dir.join("cut.gz");
    std::fs::write(&cut, &std::fs::read(&gz).unwrap()[..10]).unwrap();
    // gzip of nothing, and of text.
    let nothing = compress("gzip", &empty, &dir, "nothing.gz");
    let text = compress("gzip", &garbage, &dir, "text.gz");
    for (path, says) in [
        (&missing, "cannot read"),
        (&empty, "the file is empty"),
        (&garbage, "not a pcap or pcapng capture"),
        (&cut, "the gzip compressed data stops at frame 1"),
        (&nothing, "the file's gzip compressed data holds nothing"),
        (&text, "inside the gzip compression"),
    ] {
        for format in ["terminal", "json", "markdown"] {
            let out = run(&["analyze", "-f", format, path_str(path)]);
            assert_eq!(out.status.code(), Some(1), "{path:?} {format}");
            assert!(out.stdout.is_empty(), "{path:?} {format}: no report");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(path_str(path)) && err.contains(says),
                "{path:?} {format}: {err}"
            );
        }
    }
}

#[test]
fn a_good_input_is_reported_and_the_bad_one_named() {
    let dir = scratch("input-mixed");
    let missing = dir.join("nonexist.pcap");
    let race = race_capture();
    let files = [path_str(&race), path_str(&missing)];
    let out = run(&["analyze", files[0], files[1]]);
    assert_eq!(out.status.code(), Some(1));
    // Sentences are wrapped to the width: read them flat.
    let text = flat(&String::from_utf8_lossy(&out.stdout));
    assert!(text.contains("9 POST requests failed"), "{text}");
    assert!(
        text.contains(&format!(
            "1 of the 2 inputs was left out, as it could not be read: {}",
            files[1]
        )),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(files[1]));
    for format in ["markdown", "html"] {
        let out = run(&["analyze", "-f", format, files[0], files[1]]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("left out") && text.contains("nonexist.pcap"),
            "{format}"
        );
    }
    let out = run(&["analyze", "-f", "json", files[0], files[1]]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["left_out"], serde_json::json!([files[1]]));
    assert_eq!(doc["summary"]["findings"]["idle_race"], 9);
    // With every input read, there is no such field.
    assert!(plain_report()["summary"].get("left_out").is_none());
}

#[test]
fn a_truncated_gzip_is_analysed_up_to_the_cut() {
    let dir = scratch("input-truncated-gz");
    let gz = std::fs::read(compress("gzip", &race_capture(), &dir, "c.gz")).unwrap();
    let cut = dir.join("cut.pcap.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    for (what, out) in [
        ("file", run(&["analyze", "-f", "json", path_str(&cut)])),
        (
            "pipe",
            run_piped(
                &["analyze", "-f", "json", "-"],
                gz[..gz.len() / 2].to_vec(),
                &[],
            ),
        ),
    ] {
        let name = if what == "file" { path_str(&cut) } else { "-" };
        // As a plain capture cut short: a warning and the report of what was read.
        assert_eq!(out.status.code(), Some(0), "{what}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{name}: the gzip compressed data stops at frame "))
                && err.contains("cut short"),
            "{what}: {err}"
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let frames = doc["summary"]["packets"]["frames"].as_u64().unwrap();
        assert!(frames > 100 && frames < 636, "{what}: {frames} frames");
        // The error names the frame after the last one read.
        assert!(
            err.contains(&format!("stops at frame {}", frames + 1)),
            "{what}: {err}"
        );
        assert!(doc["summary"]["findings"]["idle_race"].as_u64().unwrap() >= 2);
        assert!(
            doc["caveats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["kind"] == "input_error"
                    && c["message"].as_str().unwrap().contains("gzip"))
        );
    }
}
