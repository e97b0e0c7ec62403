//! The Wireshark filter of every finding, run through real tshark: it must match exactly the
//! frames of the finding's connection, never a later connection that reuses its addresses
//! and ports (issue 12). Skipped with a message where tshark is not installed (CI has it).

use resetscope::app::Mark;
use resetscope::diagnose::Finding;
use resetscope::pipeline::{self, Options, Sink};
use resetscope::source::merge::CaptureSet;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every finding, informational ones too (the report keeps only some of those).
#[derive(Default)]
struct AllFindings(Vec<Finding>);

impl Sink for AllFindings {
    fn finding(&mut self, f: &Finding) {
        self.0.push(f.clone());
    }
}

/// Whether tshark runs here; says so when it does not (the test is then skipped).
fn tshark() -> bool {
    let here = Command::new("tshark").arg("--version").output().is_ok();
    if !here {
        eprintln!("wireshark: skipped: tshark is not installed (apt-get install tshark)");
    }
    here
}

fn findings(files: &[PathBuf]) -> Vec<Finding> {
    let mut sink = AllFindings::default();
    let (_, errors) =
        pipeline::analyze_set(CaptureSet::open(files), &Options::default(), &mut sink);
    assert!(errors.is_empty(), "{errors:?}");
    sink.0
}

/// The frames of `files` that tshark keeps for `filter`, as (file index, frame number).
fn kept(files: &[PathBuf], filter: &str) -> BTreeSet<(u16, u64)> {
    let mut out = BTreeSet::new();
    for (i, f) in files.iter().enumerate() {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(f)
            .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
            .output()
            .expect("tshark runs");
        assert!(
            o.status.success(),
            "tshark -Y {filter:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            out.insert((i as u16, line.trim().parse().expect("a frame number")));
        }
    }
    out
}

fn between(f: (u16, u64), span: (Mark, Mark)) -> bool {
    let at = |m: Mark| (m.frame.file, m.frame.number);
    at(span.0) <= f && f <= at(span.1)
}

/// The filter of each finding keeps its connection's first and last frames, and only frames
/// of that 4-tuple between them; and it keeps fewer frames than the 4-tuple alone whenever
/// the ports were reused.
fn check(files: &[PathBuf]) -> (usize, usize) {
    let mut reused = 0;
    let mut all = findings(files);
    assert!(!all.is_empty(), "{files:?} has findings");
    // Two tshark runs per finding: the first few of each kind are enough.
    let mut per_kind = std::collections::BTreeMap::new();
    all.retain(|f| {
        let n = per_kind.entry(f.kind).or_insert(0);
        *n += 1;
        *n <= 3
    });
    for f in &all {
        let filter = resetscope::report::wireshark_filter(f);
        let got = kept(files, &filter);
        let (first, last) = (f.span.0.frame, f.span.1.frame);
        assert!(
            got.contains(&(first.file, first.number)),
            "{filter}: {got:?}"
        );
        assert!(got.contains(&(last.file, last.number)), "{filter}: {got:?}");
        // The addresses and ports alone: the frames of the connection and of any reuse.
        let tuple = filter
            .split(" && frame.")
            .next()
            .expect("the tuple part")
            .to_string();
        let same_tuple = kept(files, &tuple);
        let expected: BTreeSet<_> = same_tuple
            .iter()
            .copied()
            .filter(|&x| between(x, f.span))
            .collect();
        assert_eq!(got, expected, "{filter}");
        reused += (same_tuple.len() > got.len()) as usize;
    }
    (all.len(), reused)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

#[test]
fn filters_pin_connections_that_reuse_ports() {
    if !tshark() {
        return;
    }
    // Two refused connections from the same client port (the kernel reused it): frames 3-4
    // and 5-6 share the 4-tuple.
    let files = [fixture("refused").join("capture.pcap")];
    let all = findings(&files);
    let filters: Vec<String> = all
        .iter()
        .map(resetscope::report::wireshark_filter)
        .collect();
    let reuse: Vec<_> = filters.iter().filter(|f| f.contains("33551")).collect();
    assert_eq!(reuse.len(), 2, "{filters:?}");
    let sets: Vec<_> = reuse.iter().map(|f| kept(&files, f)).collect();
    assert_eq!(sets[0].len() + sets[1].len(), 4, "{sets:?}");
    assert!(sets[0].is_disjoint(&sets[1]), "{sets:?}");
    let (n, reused) = check(&files);
    assert_eq!((n, reused), (3, 2));
}

#[test]
fn filters_match_each_connection_exactly() {
    if !tshark() {
        return;
    }
    for name in ["go-idle-race", "ipv6", "abort-linger0"] {
        let dir = fixture(name);
        let files = [dir.join("capture.pcap")];
        let (n, _) = check(&files);
        assert!(n > 0, "{name}");
    }
}

#[test]
fn filters_pin_a_connection_across_rotated_files_by_time() {
    if !tshark() {
        return;
    }
    // Frame numbers start again in each file: a connection that spans files is pinned by the
    // times of its first and last packets.
    let dir = fixture("rotated");
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| dir.join(format!("capture-{i}.pcap")))
        .collect();
    let all = findings(&files);
    let spanning: Vec<_> = all
        .iter()
        .filter(|f| f.span.0.frame.file != f.span.1.frame.file)
        .collect();
    assert!(
        !spanning.is_empty(),
        "the rotated set has a connection across files"
    );
    for f in spanning {
        let filter = resetscope::report::wireshark_filter(f);
        assert!(filter.contains("frame.time_epoch in {"), "{filter}");
    }
    check(&files);
}
