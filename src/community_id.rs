//! Community ID v1 (corelight/community-id-spec): one flow hash that Zeek, Suricata, Arkime
//! and others compute the same way, so that resetscope's connections and findings join with
//! their records.
//!
//! The hash is SHA-1 over: the seed (16 bits, big-endian), the two addresses and ports
//! ordered so that the smaller (address, port) comes first, the protocol number and one
//! zero byte of padding; base64 of it, prefixed with the version: `1:LQU9qZlK+B5F…`.
//! Computed once per connection, never per packet.

use base64::Engine;
use sha1::{Digest, Sha1};
use std::net::{IpAddr, SocketAddr};

/// IP protocol number of TCP.
const TCP: u8 = 6;

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The Community ID v1 of a TCP connection between `a` and `b` (either order), with `seed`
/// (0 by default in every tool).
pub fn tcp(a: SocketAddr, b: SocketAddr, seed: u16) -> String {
    let (mut s, mut d) = ((octets(a.ip()), a.port()), (octets(b.ip()), b.port()));
    if s > d {
        std::mem::swap(&mut s, &mut d);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&s.0);
    h.update(&d.0);
    h.update([TCP, 0]);
    h.update(s.1.to_be_bytes());
    h.update(d.1.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

/// A connection's Community ID, computed only when it is written out (JSON), so that
/// reports that do not show it cost nothing per connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CommunityId(pub SocketAddr, pub SocketAddr);

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&tcp(self.0, self.1, 0))
    }
}

impl serde::Serialize for CommunityId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    /// The spec's published baseline (baseline/baseline_deflt.json), both directions.
    #[test]
    fn spec_test_vectors() {
        for (a, b, want) in [
            (
                "128.232.110.120:34855",
                "66.35.250.204:80",
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                "[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943",
                "[2607:f8b0:400c:c03::1a]:25",
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
        ] {
            let (a, b) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(super::tcp(a, b, 0), want);
            assert_eq!(super::tcp(b, a, 0), want);
        }
    }
}
