//! Community ID v1 of every connection agrees with tshark's own (`--enable-protocol
//! communityid`) on real captures, IPv4 and IPv6. (The spec's published vectors are checked
//! by the unit test in src/community_id.rs.)

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn community_ids_agree_with_tshark() {
    for fixture in ["go-idle-race", "ipv6", "tls13-go"] {
        let capture = root().join(format!("fixtures/{fixture}/capture.pcap"));
        let out = match Command::new("tshark")
            .args([
                "-r",
                capture.to_str().unwrap(),
                "--enable-protocol",
                "communityid",
            ])
            .args(["-T", "fields", "-e", "communityid"])
            .output()
        {
            Ok(o) if o.status.success() => o,
            _ => {
                assert!(std::env::var_os("CI").is_none(), "CI must have tshark");
                eprintln!("tshark not available: skipped (CI installs it)");
                return;
            }
        };
        let theirs: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let doc = json(&[&capture]);
        let ours: BTreeSet<String> = doc["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["community_id"].as_str().unwrap().to_string())
            .collect();
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "{fixture}");
    }
}
