//! Issue 10: when there are more findings than a report lists, it says how many more, and
//! what all of them add up to: per minute of capture time (a sparkline) and per client
//! network (terminal, Markdown, HTML).

mod common;

use common::*;
use std::collections::BTreeMap;

#[test]
fn findings_beyond_the_limit_are_summed_up_by_minute_and_network() {
    let capture = race_capture();
    let out = run(&["analyze", capture.to_str().unwrap(), "--limit", "2"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();

    // Ground truth: the fixture's nine races (expected.json, from tshark and the client's
    // log), bucketed by the minute of their request frames' capture times.
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("fixtures/go-idle-race/expected.json")).unwrap(),
    )
    .unwrap();
    let pcap = Pcap::read(&capture);
    let mut per_minute: BTreeMap<u32, u64> = BTreeMap::new();
    let races = expected["findings"].as_array().unwrap();
    for f in races {
        let frame = f["request_frame"].as_u64().unwrap() as usize;
        *per_minute
            .entry(pcap.records[frame - 1].0 / 60)
            .or_default() += 1;
    }
    assert_eq!(races.len(), 9);
    let counts: Vec<u64> = per_minute.values().copied().collect();
    assert_eq!(
        counts,
        [4, 5],
        "the fixture's races fall 4 and 5 in two minutes"
    );

    assert!(
        text.contains(
            "… and 7 more (--limit 0 lists all, --format json has every one). All 9, listed or not:"
        ),
        "{text}"
    );
    // Eight levels scaled to the busiest minute: 4 of 5 is the seventh, 5 the eighth.
    assert!(
        text.contains("  per minute, 22:28–22:30 UTC: ▇█ (peak 5 at 22:29)"),
        "{text}"
    );
    assert!(
        text.contains("  by client network: 127.0.0.0/24 9\n"),
        "{text}"
    );
}

#[test]
fn markdown_and_html_sum_up_what_they_do_not_list() {
    let capture = race_capture();
    let path = capture.to_str().unwrap();
    let md = run(&["analyze", path, "--limit", "2", "--format", "markdown"]);
    let md = String::from_utf8(md.stdout).unwrap();
    assert!(
        md.contains(
            "Only the first 2 findings are listed; `--format json` has every one. All 9, listed or not:\n\n\
             - per minute, 22:28–22:30 UTC: ▇█ (peak 5 at 22:29)\n\
             - by client network: 127.0.0.0/24 9\n"
        ),
        "{md}"
    );
    let html = run(&["analyze", path, "--limit", "2", "--format", "html"]);
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(
        html.contains(
            "All 9, listed or not:</p>\n<ul class=\"muted\">\n\
             <li>per minute, 22:28–22:30 UTC: ▇█ (peak 5 at 22:29)</li>\n\
             <li>by client network: 127.0.0.0/24 9</li>\n</ul>"
        ),
        "{html}"
    );
}

#[test]
fn no_summary_when_every_finding_is_listed() {
    let capture = race_capture();
    let out = run(&["analyze", capture.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("listed or not"), "{text}");
    assert!(!text.contains("per minute"), "{text}");
}
