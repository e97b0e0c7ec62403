//! The source stage against inputs that lie or arrive awkwardly (issue 9, parts 3 and 4):
//! pcapng clocks the specification allows but nobody writes, drop counts that overflow,
//! pipes that must behave exactly like files, the second pass (ladders, `--extract`) over a
//! piped input, extracts with frames beyond 256 KiB, and many connections on one 4-tuple.
//!
//! Captures are generated here: cut from the fixtures, or pcapng blocks written by hand
//! (`common::Ng`) where no capture stack writes the bytes a test needs.

mod common;

use common::*;
use resetscope::source::file::CaptureFile;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
const SERVER: ([u8; 4], u16) = ([10, 0, 0, 2], 80);

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `analyze -f json PATH`, which must exit 0.
fn json_ok(path: &Path) -> Value {
    let out = run(&["analyze", "-f", "json", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The messages of the caveats of `kind`.
fn caveats(doc: &Value, kind: &str) -> Vec<String> {
    doc["caveats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .map(|c| c["message"].as_str().unwrap().to_string())
        .collect()
}

/// Every frame's time read back through the library: nanoseconds since the epoch.
fn times(path: &Path) -> Vec<i64> {
    let mut f = CaptureFile::open(path, 0).unwrap();
    let mut out = Vec::new();
    while let Some(p) = f.next_packet() {
        out.push(p.ts.0);
    }
    assert!(f.take_error().is_none());
    out
}

// ---- Timestamps (item 1) ------------------------------------------------------------------

/// Reported: an `if_tsoffset` near `i64::MAX` overflowed (a panic with overflow checks, as
/// this test binary has them; year-1677 dates without). Now the offset is left out and said.
/// (Fails without the fix: the program panics.)
#[test]
fn an_if_tsoffset_near_i64_max_is_a_caveat_not_an_overflow() {
    let dir = scratch("tsoffset-max");
    for be in [false, true] {
        let ng = Ng { be };
        let mut f = ng.shb();
        f.extend(ng.idb(1, &[ng.tsoffset(i64::MAX - 5)]));
        // 2023-11-14T22:13:20Z in microseconds, the offset aside.
        f.extend(ng.epb(
            0,
            1_700_000_000_000_000,
            &tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]),
        ));
        let path = write(&dir, &format!("offset-{be}.pcapng"), &f);
        let doc = json_ok(&path);
        let msgs = caveats(&doc, "timestamps");
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains(path.to_str().unwrap())
                && msgs[0].contains("interface 0")
                && msgs[0].contains(&format!("if_tsoffset {}", i64::MAX - 5)),
            "{}",
            msgs[0]
        );
        assert_eq!(doc["inputs"][0]["first_ts"], "2023-11-14T22:13:20.000000Z");
    }
}

/// A representable offset that carries some frames past 2262: those frames are named in a
/// caveat and given the time of the frame before them, not clamped to 2262 in silence.
/// (Fails without the fix: no caveat, and the last time read is 2262-04-11.)
#[test]
fn a_time_past_2262_is_a_caveat_naming_the_frame() {
    let dir = scratch("time-overflow");
    let ng = Ng { be: false };
    let mut f = ng.shb();
    // 9e9 s is 2255-03-14; seconds as units.
    f.extend(ng.idb(1, &[ng.tsresol(0), ng.tsoffset(9_000_000_000)]));
    let syn = tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]);
    for t in [100, 300_000_000, 200, 400_000_000] {
        f.extend(ng.epb(0, t, &syn));
    }
    let path = write(&dir, "overflow.pcapng", &f);
    let doc = json_ok(&path);
    let msgs = caveats(&doc, "timestamps");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("2 frames (the first is frame 2)") && msgs[0].contains("1677 to 2262"),
        "{}",
        msgs[0]
    );
    let base = 9_000_000_000i64 * 1_000_000_000;
    assert_eq!(
        times(&path),
        vec![
            base + 100_000_000_000,
            base + 100_000_000_000,
            base + 200_000_000_000,
            base + 200_000_000_000
        ]
    );
}

/// `if_tsresol` 10^-20 and 2^-64 and finer cannot be counted in 64 bits: a caveat names the
/// file and interface. (Fails without the fix: read as microseconds in silence.)
#[test]
fn unrepresentable_resolutions_are_caveats_naming_the_interface() {
    let dir = scratch("tsresol-bad");
    let ng = Ng { be: false };
    let mut f = ng.shb();
    for r in [6, 20, 0x80 | 64, 0xff] {
        f.extend(ng.idb(1, &[ng.tsresol(r)]));
    }
    for i in 0..4 {
        f.extend(ng.epb(
            i,
            1_700_000_000_000_000 + i as u64,
            &tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]),
        ));
    }
    let path = write(&dir, "tsresol.pcapng", &f);
    let doc = json_ok(&path);
    let msgs = caveats(&doc, "timestamps");
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    for (m, (id, r, name)) in msgs.iter().zip([
        (1, "0x14", "10^-20"),
        (2, "0xc0", "2^-64"),
        (3, "0xff", "2^-127"),
    ]) {
        assert!(
            m.contains(path.to_str().unwrap())
                && m.contains(&format!(
                    "interface {id} declares if_tsresol {r} (units of {name} s)"
                )),
            "{m}"
        );
    }
}

/// Every resolution the specification allows that fits 64 bits, decimal (10^-0 to 10^-19)
/// and binary (2^-0 to 2^-63), in both byte orders, with an `if_tsoffset`: the times are
/// exact to the nanosecond, and tshark reads the same. (Fails without the fix for the
/// big-endian file: `pcap-parser` reads `if_tsoffset` little-endian whatever the section.)
#[test]
fn every_resolution_and_offset_follows_the_specification() {
    let dir = scratch("tsresol-all");
    let offset = 1_600_000_000i64;
    let resolutions: Vec<u8> = (0..=19).chain((0..=63).map(|n| 0x80 | n)).collect();
    let units = |r: u8| -> u64 {
        if r & 0x80 == 0 {
            10u64.pow(r as u32)
        } else {
            1u64 << (r & 0x7f)
        }
    };
    // A quarter second and one unit past the offset (one unit for the coarsest).
    let raw = |r: u8| units(r) / 4 + 1;
    let expected: Vec<i64> = resolutions
        .iter()
        .map(|&r| {
            offset * 1_000_000_000 + (raw(r) as u128 * 1_000_000_000 / units(r) as u128) as i64
        })
        .collect();
    for be in [false, true] {
        let ng = Ng { be };
        let mut f = ng.shb();
        for &r in &resolutions {
            f.extend(ng.idb(1, &[ng.tsresol(r), ng.tsoffset(offset)]));
        }
        for (i, &r) in resolutions.iter().enumerate() {
            f.extend(ng.epb(
                i as u32,
                raw(r),
                &tcp_frame(CLIENT, SERVER, SYN, i as u32, 0, &[]),
            ));
        }
        let path = write(&dir, &format!("all-{be}.pcapng"), &f);
        assert_eq!(times(&path), expected, "big endian {be}");
        assert!(caveats(&json_ok(&path), "timestamps").is_empty());
        // tshark's frame.time_epoch, to the nanosecond where its own arithmetic is exact
        // (it warns that conversions finer than 2^32 units per second may not be).
        let out = std::process::Command::new("tshark")
            .args([
                "-r",
                path.to_str().unwrap(),
                "-T",
                "fields",
                "-e",
                "frame.time_epoch",
            ])
            .output();
        let Ok(out) = out else {
            eprintln!("tshark not installed: not compared");
            continue;
        };
        let tshark: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(tshark.len(), resolutions.len(), "{}", stderr(&out));
        for ((&r, want), got) in resolutions.iter().zip(&expected).zip(&tshark) {
            if units(r) > 1 << 32 {
                continue;
            }
            let want = format!("{}.{:09}", want / 1_000_000_000, want % 1_000_000_000);
            assert_eq!(got, &want, "if_tsresol {r:#04x}, big endian {be}");
        }
    }
}

/// Reported: an `isb_ifdrop` of `u64::MAX` overflowed the sum of drops (a panic with
/// overflow checks, "18446744073709551614 packets dropped" without). Now the caveat says the
/// count is implausible. (Fails without the fix: the program panics.)
#[test]
fn an_isb_drop_count_of_u64_max_is_implausible_not_an_overflow() {
    let dir = scratch("isb-drops");
    let ng = Ng { be: false };
    let mut f = ng.shb();
    f.extend(ng.idb(1, &[]));
    f.extend(ng.idb(1, &[]));
    f.extend(ng.epb(
        0,
        1_700_000_000_000_000,
        &tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]),
    ));
    f.extend(ng.isb_drops(0, u64::MAX));
    f.extend(ng.isb_drops(1, u64::MAX));
    let path = write(&dir, "drops.pcapng", &f);
    let doc = json_ok(&path);
    let msgs = caveats(&doc, "interface_drops");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("implausible")
            && msgs[0].contains(&format!(
                "{}: 18446744073709551615 on interface 0",
                path.display()
            )),
        "{}",
        msgs[0]
    );
    assert!(!msgs[0].contains("18446744073709551614"));
}

/// Drop counts are read in the section's byte order, and summed across files without
/// overflowing. (Fails without the fix: a big-endian 7 is read as 504403158265495552, and
/// four files of 2^62 drops each overflow the sum.)
#[test]
fn drop_counts_follow_the_byte_order_and_add_up_without_overflow() {
    let dir = scratch("isb-drops-be");
    let file = |be: bool, drops: u64, name: &str| {
        let ng = Ng { be };
        let mut f = ng.shb();
        f.extend(ng.idb(1, &[]));
        f.extend(ng.epb(
            0,
            1_700_000_000_000_000,
            &tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]),
        ));
        f.extend(ng.isb_drops(0, drops));
        write(&dir, name, &f)
    };
    let be = file(true, 7, "be.pcapng");
    let msgs = caveats(&json_ok(&be), "interface_drops");
    assert_eq!(
        msgs,
        vec!["the capturing interface reported 7 packets dropped (as the file's interface statistics claim)"]
    );
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| file(i % 2 == 0, 1 << 62, &format!("quarter-{i}.pcapng")))
        .collect();
    let mut args = vec!["analyze", "-f", "json"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let msgs = caveats(&doc, "interface_drops");
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("implausible") && msgs[0].contains("2^64"),
        "{}",
        msgs[0]
    );
}

// ---- Pipes behave like files (item 2) -----------------------------------------------------

/// What a run says, with the input's name (a path, or `-`) replaced so that file and pipe
/// compare.
fn normalised(out: &Output, name: &str) -> (Option<i32>, String, String) {
    let clean = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        if name == "-" {
            s.replace("\"-\"", "\"INPUT\"")
                .replace("\"-: ", "\"INPUT: ")
                .replace(" -: ", " INPUT: ")
        } else {
            s.replace(name, "INPUT")
        }
    };
    (out.status.code(), clean(&out.stdout), clean(&out.stderr))
}

/// The same bytes as a file and through a pipe (`/dev/stdin`, and `-`): the same report,
/// warnings and exit status.
fn same_from_file_and_pipe(dir: &Path, bytes: &[u8], what: &str) {
    same_through(dir, bytes, what, &["/dev/stdin", "-"]);
}

/// The same bytes as a file and through a pipe named each of `stdins`.
fn same_through(dir: &Path, bytes: &[u8], what: &str, stdins: &[&str]) {
    let path = write(dir, &what.replace(' ', "-"), bytes);
    let name = path.to_str().unwrap();
    let file = normalised(&run(&["analyze", "-f", "json", name]), name);
    for &stdin in stdins {
        let pipe = run_piped(&["analyze", "-f", "json", stdin], bytes.to_vec(), &[]);
        let pipe = normalised(&pipe, stdin);
        assert!(
            file == pipe,
            "{what} via {stdin}:\nfile {file:?}\npipe {pipe:?}"
        );
    }
    std::fs::remove_file(&path).unwrap();
}

/// Cuts at every byte of the headers and first records, and at points through the rest: a
/// capture cut inside its header is "truncated" (exit 0) from a pipe as from a file, and so
/// on for every other cut. (Fails without the fix: a pcapng cut inside its section header
/// is "unrecognised header", exit 1, from a pipe.)
#[test]
fn cut_captures_read_the_same_from_a_file_and_a_pipe() {
    let dir = scratch("cuts");
    let ng = Ng { be: true };
    let mut be = ng.shb();
    be.extend(ng.idb(1, &[ng.tsresol(9)]));
    for i in 0..3 {
        be.extend(ng.epb(
            0,
            1_700_000_000_000_000_000 + i,
            &tcp_frame(CLIENT, SERVER, SYN, i as u32, 0, &[]),
        ));
    }
    let captures = [
        (
            "pcapng-nano",
            std::fs::read(root().join("fixtures/pcapng-nano/capture.pcapng")).unwrap(),
        ),
        (
            "pcap-nano",
            std::fs::read(root().join("fixtures/pcap-nano/capture.pcap")).unwrap(),
        ),
        ("big-endian pcapng", be),
    ];
    let mut cases = Vec::new();
    for ((what, bytes), dense) in captures.iter().zip([180, 130, 160]) {
        // Every byte through the file header and the first record (the pcapng-nano
        // section header is 108 bytes and its interface 32; the pcap header 24 and a record
        // about 90), then a sample of the rest.
        let mut cuts: Vec<usize> = (0..=dense)
            .chain((dense..bytes.len()).step_by(53))
            .chain([bytes.len()])
            .collect();
        cuts.dedup();
        cases.extend(
            cuts.into_iter()
                .map(|cut| (format!("{what} cut at {cut}"), &bytes[..cut])),
        );
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((what, bytes)) = cases.get(i) else {
                    break;
                };
                // `-` and `/dev/stdin` open the same pipe; `-` is checked on a third.
                let stdins: &[&str] = if i % 3 == 0 {
                    &["/dev/stdin", "-"]
                } else {
                    &["/dev/stdin"]
                };
                same_through(&dir, bytes, what, stdins);
            });
        }
    });
}

/// Records of any size up to the limit work from a pipe as from a file: pcapng blocks of
/// 2 MiB + 3, 17 MiB and the largest accepted (Wireshark's 128 MiB + 128 KiB + 32), and
/// classic pcap records of 3 MiB and 20 MiB under a large snaplen; a block claiming one byte
/// more than the limit is damage, with the size it claims, from both. (Fails without the fix:
/// from a pipe, any record over about 2 MiB was "damaged (larger than 16 MiB)".)
#[test]
fn records_of_any_size_up_to_the_limit_read_from_a_pipe() {
    const MAX_BLOCK: usize = resetscope::source::file::MAX_BLOCK;
    let dir = scratch("big-records");
    let frame = |len: usize| {
        let mut f = tcp_frame(CLIENT, SERVER, ACK, 1, 1, &[]);
        f.resize(len, 0x61);
        f
    };
    let ng = Ng { be: false };
    let mut f = ng.shb();
    f.extend(ng.idb(1, &[]));
    // An EPB is 32 bytes and its frame padded to 32 bits.
    for len in [1000, (2 << 20) + 3, 17 << 20, MAX_BLOCK - 32] {
        f.extend(ng.epb(0, 1_700_000_000_000_000, &frame(len)));
    }
    assert_eq!(
        u32::from_le_bytes(f[f.len() - 4..].try_into().unwrap()) as usize,
        MAX_BLOCK
    );
    same_from_file_and_pipe(&dir, &f, "pcapng with large blocks");
    let path = write(&dir, "big.pcapng", &f);
    let doc = json_ok(&path);
    assert_eq!(doc["summary"]["packets"]["frames"], 4);
    assert!(
        doc["errors"].as_array().unwrap().is_empty(),
        "{}",
        doc["errors"]
    );

    // One byte more (a padded frame of MAX_BLOCK - 31 makes a block of MAX_BLOCK + 4).
    let mut over = ng.shb();
    over.extend(ng.idb(1, &[]));
    over.extend(ng.epb(0, 1_700_000_000_000_000, &frame(1000)));
    over.extend(ng.epb(0, 1_700_000_000_000_000, &frame(MAX_BLOCK - 31)));
    same_from_file_and_pipe(&dir, &over, "pcapng with a block over the limit");
    let out = run_piped(&["analyze", "-f", "json", "-"], over, &[]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = doc["errors"].to_string();
    assert!(
        errors.contains("frame 2 ")
            && errors.contains(&format!("block claims {} bytes", MAX_BLOCK + 4)),
        "{errors}"
    );
    drop(doc);

    // Classic pcap, snaplen 32 MiB.
    let records: Vec<(u32, u32, u32, Vec<u8>)> = [3 << 20, 20 << 20, 100]
        .iter()
        .enumerate()
        .map(|(i, &len)| (1_700_000_000 + i as u32, 0, len as u32, frame(len)))
        .collect();
    let pcap = Pcap {
        linktype: 1,
        snaplen: 32 << 20,
        records,
    };
    let path = dir.join("big.pcap");
    pcap.write(&path, 0..3, false, false);
    let bytes = std::fs::read(&path).unwrap();
    same_from_file_and_pipe(&dir, &bytes, "pcap with large records");
    assert_eq!(json_ok(&path)["summary"]["packets"]["frames"], 3);
}

// ---- The second pass over a piped input (item 3) ------------------------------------------

/// Markdown and HTML ladders and `--extract` from a pipe (`/dev/stdin`, `-`, a FIFO) are
/// those from the file: the input is kept in TMPDIR while the first pass reads it. (Fails
/// without the fix: the ladders came out empty, and the extract held a header only while
/// "9 connections written" was said.)
#[test]
fn ladders_and_extract_from_a_pipe_are_those_from_the_file() {
    let dir = scratch("pipe-evidence");
    let capture = race_capture();
    let bytes = std::fs::read(&capture).unwrap();
    let name = capture.to_str().unwrap();
    let title = |s: String| {
        let mut s = s;
        // `-` as Markdown shows it: escaped, so that it cannot start a list.
        for name in ["capture.pcap", "stdin", "fifo", "\\-", "-"] {
            s = s
                .replace(&format!("report: {name}"), "report: INPUT")
                .replace(&format!("{name}: 636 frames"), "INPUT: 636 frames");
        }
        s
    };
    for format in ["markdown", "html"] {
        let file = run(&["analyze", "-f", format, name]);
        assert!(file.status.success());
        let file = title(String::from_utf8(file.stdout).unwrap());
        assert!(file.contains("POST /test"), "a ladder");
        for stdin in ["/dev/stdin", "-"] {
            let out = run_piped(&["analyze", "-f", format, stdin], bytes.clone(), &[]);
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(
                title(String::from_utf8(out.stdout).unwrap()),
                file,
                "{format} {stdin}"
            );
        }
    }
    let reference = dir.join("file.pcap");
    let out = run(&["analyze", "--extract", reference.to_str().unwrap(), name]);
    assert!(stderr(&out).contains("9 connections with findings written"));
    let reference = std::fs::read(&reference).unwrap();
    for stdin in ["/dev/stdin", "-"] {
        let extract = dir.join("pipe.pcap");
        let out = run_piped(
            &["analyze", "--extract", extract.to_str().unwrap(), stdin],
            bytes.clone(),
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("9 connections with findings written"),
            "{}",
            stderr(&out)
        );
        assert!(
            std::fs::read(&extract).unwrap() == reference,
            "extract via {stdin}"
        );
    }
    // A FIFO, fed from another thread.
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let feeder = {
            let (fifo, bytes) = (fifo.clone(), bytes.clone());
            std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
        };
        let extract = dir.join("fifo.pcap");
        let out = run(&[
            "analyze",
            "-f",
            "markdown",
            "--extract",
            extract.to_str().unwrap(),
            fifo.to_str().unwrap(),
        ]);
        feeder.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("POST /test"));
        assert!(
            std::fs::read(&extract).unwrap() == reference,
            "extract via a FIFO"
        );
    }
    // Nothing is left in TMPDIR.
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = run_piped(
        &["analyze", "-f", "html", "-"],
        bytes,
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    assert!(out.status.success());
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// A scratch copy that cannot be created stops the command before the analysis, naming
/// TMPDIR; formats that need no second pass do not need one. (Fails without the fix: the
/// run "succeeded" with empty ladders.)
#[test]
fn no_scratch_copy_is_a_clear_error_before_the_analysis() {
    let bytes = std::fs::read(race_capture()).unwrap();
    let env = [("TMPDIR", "/nonexistent/resetscope-test")];
    for args in [
        &["analyze", "-f", "markdown", "-"][..],
        &["analyze", "--extract", "/dev/null", "/dev/stdin"][..],
    ] {
        let out = run_piped(args, bytes.clone(), &env);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "no report: {args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("TMPDIR (/nonexistent/resetscope-test)") && !err.contains("warning"),
            "{err}"
        );
    }
    // JSON needs no copy of the input, but its writer keeps a scratch file for the findings:
    // without TMPDIR it says so before writing anything.
    let out = run_piped(&["analyze", "-f", "json", "-"], bytes, &env);
    assert!(
        out.status.success() || (out.stdout.is_empty() && stderr(&out).contains("TMPDIR")),
        "{}",
        stderr(&out)
    );
}

/// Unmounts a scratch tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A scratch copy that stops short (a full disk) does not stop the analysis: the report is
/// complete, a caveat says the ladders and the extract are not, and the extract's count is
/// the connections actually written. Needs root (a 16 KiB tmpfs as TMPDIR).
/// (Fails without the fix: there was no copy and no caveat.)
#[test]
fn a_full_disk_under_the_scratch_copy_is_a_caveat() {
    let dir = scratch("full-disk");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&tmp)
        .output();
    if !mounted.is_ok_and(|o| o.status.success()) {
        eprintln!("cannot mount a tmpfs (needs root): full disk not checked");
        return;
    }
    let _mount = Mount(tmp.clone());
    let bytes = std::fs::read(race_capture()).unwrap();
    let extract = dir.join("extract.pcap");
    let out = run_piped(
        &[
            "analyze",
            "-f",
            "markdown",
            "--extract",
            extract.to_str().unwrap(),
            "-",
        ],
        bytes,
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("636 frames"), "the whole capture analysed");
    assert!(
        report.contains("the copy of this piped input kept in TMPDIR")
            && report.contains("bytes (No space left on device")
            && report.contains("hold only the packets before that point"),
        "{report}"
    );
    let err = stderr(&out);
    let written = err
        .split("only ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        written.is_some_and(|n| n < 9)
            && err.contains("of the 9 connections with findings written"),
        "{err}"
    );
}

// ---- The extract (item 4) -----------------------------------------------------------------

/// A connection with one frame of `big` bytes: handshake, a POST of that size, and the
/// server's RST with the request unanswered (a finding, so it is extracted).
fn big_frame_capture(big: usize) -> Vec<u8> {
    let ng = Ng { be: false };
    let mut f = ng.shb();
    f.extend(ng.idb(1, &[ng.tsresol(9)]));
    let t0 = 1_700_000_000_000_000_000u64;
    let head = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
    let mut body = head.to_vec();
    body.resize(big - 54, b'x');
    let n = body.len() as u32;
    for (i, frame) in [
        tcp_frame(CLIENT, SERVER, SYN, 100, 0, &[]),
        tcp_frame(SERVER, CLIENT, SYN | ACK, 500, 101, &[]),
        tcp_frame(CLIENT, SERVER, ACK, 101, 501, &[]),
        tcp_frame(CLIENT, SERVER, PSH | ACK, 101, 501, &body),
        tcp_frame(SERVER, CLIENT, RST | ACK, 501, 101 + n, &[]),
    ]
    .iter()
    .enumerate()
    {
        f.extend(ng.epb(0, t0 + i as u64 * 1_000_000, frame));
    }
    f
}

/// Reported: a 300 KB frame was copied under a 262144-byte snaplen header, which the
/// reader then rejected. The extract's snaplen now covers its largest frame: resetscope reads
/// it back to the same findings; tshark reads every frame up to its own 262144-byte limit
/// (it refuses longer ones on any link type, in pcap and pcapng alike, which is said).
/// (Fails without the fix: "record claims 300000 captured bytes (limit 262144)".)
#[test]
fn the_extract_holds_frames_longer_than_256_kib() {
    let dir = scratch("extract-big");
    for (big, tshark_reads) in [(300_000, false), (262_144, true)] {
        let input = write(&dir, &format!("in-{big}.pcapng"), &big_frame_capture(big));
        let extract = dir.join(format!("out-{big}.pcap"));
        let out = run(&[
            "analyze",
            "--extract",
            extract.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("1 connections with findings written"), "{err}");
        assert_eq!(
            err.contains("longer than 262144 bytes"),
            !tshark_reads,
            "{err}"
        );
        let original = json_ok(&input);
        let back = json_ok(&extract);
        assert!(
            back["errors"].as_array().unwrap().is_empty(),
            "{}",
            back["errors"]
        );
        assert_eq!(back["summary"]["packets"]["frames"], 5);
        assert_eq!(back["inputs"][0]["bytes"], original["inputs"][0]["bytes"]);
        let kinds = |d: &Value| {
            d["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["kind"].clone())
                .collect::<Vec<_>>()
        };
        assert!(!kinds(&original).is_empty());
        assert_eq!(kinds(&back), kinds(&original));
        let Ok(t) = std::process::Command::new("tshark")
            .args([
                "-r",
                extract.to_str().unwrap(),
                "-T",
                "fields",
                "-e",
                "frame.len",
            ])
            .output()
        else {
            eprintln!("tshark not installed: not checked");
            continue;
        };
        let lens = String::from_utf8_lossy(&t.stdout).lines().count();
        if tshark_reads {
            assert!(t.status.success(), "{}", stderr(&t));
            assert_eq!(lens, 5);
        } else {
            // Its own limit, not a snaplen the extract broke.
            assert!(
                stderr(&t).contains("bigger than maximum of 262144"),
                "{}",
                stderr(&t)
            );
            assert_eq!(lens, 3);
        }
    }
}

/// Times before 1970 (read from a pcapng that stores them as negative counts) do not fit a
/// classic pcap's unsigned seconds: the extract is then a pcapng, and reads back to the same
/// times. (Fails without the fix: the seconds wrapped to 2106.)
#[test]
fn an_extract_of_times_before_1970_keeps_them() {
    let dir = scratch("extract-1969");
    let ng = Ng { be: false };
    let mut f = ng.shb();
    f.extend(ng.idb(1, &[]));
    // 500 s and 499.9 s before the epoch, in microseconds, as negative numbers.
    f.extend(ng.epb(
        0,
        (-500_000_000i64) as u64,
        &tcp_frame(CLIENT, SERVER, SYN, 1, 0, &[]),
    ));
    f.extend(ng.epb(
        0,
        (-499_900_000i64) as u64,
        &tcp_frame(SERVER, CLIENT, RST | ACK, 0, 2, &[]),
    ));
    let input = write(&dir, "in.pcapng", &f);
    let extract = dir.join("out.pcap");
    let out = run(&[
        "analyze",
        "--extract",
        extract.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 connections with findings written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(times(&extract), vec![-500_000_000_000, -499_900_000_000]);
    assert_eq!(times(&input), times(&extract));
}

// ---- Many connections on one 4-tuple (item 5) ---------------------------------------------

/// 80 000 refused SYNs on the same ports (an 11 MB capture): HTML and `--extract` take about
/// as long as the terminal report, and find every connection. (Fails without the fix: each
/// packet was matched by a linear search over the 80 000 connections, minutes in this
/// debug build.)
#[test]
fn many_connections_on_one_four_tuple_are_gathered_quickly() {
    let dir = scratch("port-reuse");
    const N: u32 = 80_000;
    let mut records = Vec::with_capacity(2 * N as usize);
    for i in 0..N {
        let (s, us) = (1_700_000_000 + i / 100, (i % 100) * 10_000);
        let syn = tcp_frame(CLIENT, SERVER, SYN, i, 0, &[]);
        let rst = tcp_frame(SERVER, CLIENT, RST | ACK, 0, i + 1, &[]);
        records.push((s, us, syn.len() as u32, syn));
        records.push((s, us + 100, rst.len() as u32, rst));
    }
    let pcap = Pcap {
        linktype: 1,
        snaplen: 65535,
        records,
    };
    let input = dir.join("reuse.pcap");
    pcap.write(&input, 0..2 * N as usize, false, false);
    let input = input.to_str().unwrap();
    let timed = |args: &[&str]| {
        let start = Instant::now();
        let out = run(args);
        assert!(out.status.success(), "{}", stderr(&out));
        (start.elapsed().as_secs_f64(), out)
    };
    let (terminal, _) = timed(&["analyze", input]);
    let (html, out) = timed(&["analyze", "-f", "html", input]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    let extract = dir.join("extract.pcap");
    let (ex, out) = timed(&["analyze", "--extract", extract.to_str().unwrap(), input]);
    assert!(
        stderr(&out).contains(&format!(
            "{N} connections with findings written to {} ({} frames)",
            extract.display(),
            2 * N
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&extract).unwrap().len(),
        std::fs::metadata(input).unwrap().len() as usize
    );
    eprintln!("terminal {terminal:.2} s, html {html:.2} s, extract {ex:.2} s");
    for t in [html, ex] {
        assert!(
            t < 3.0 * terminal + 5.0,
            "terminal {terminal:.2} s, second pass {t:.2} s"
        );
    }
}
