//! Counts of the findings that are problems (idle closes aside) by minute of capture time
//! and by client network, kept for every finding whether or not a report lists it: what a
//! report shows when there are more findings than it lists.

use super::finding::{Finding, Severity};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Client networks counted one by one; beyond this, the rest are counted together.
const MAX_NETWORKS: usize = 4096;

/// The tallies.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Findings per minute of capture time, by the minute's start (seconds since the epoch).
    pub per_minute: BTreeMap<i64, u64>,
    /// Findings per client network: /24 for IPv4, /64 for IPv6.
    pub per_network: HashMap<Network, u64>,
    /// Findings from client networks beyond the first 4,096.
    pub other_networks: u64,
}

impl Tally {
    /// Counts `f` if it is a problem.
    pub fn add(&mut self, f: &Finding) {
        if f.severity == Severity::Info {
            return;
        }
        *self
            .per_minute
            .entry(f.time.0.div_euclid(60_000_000_000) * 60)
            .or_default() += 1;
        let net = network(f.client.ip());
        let room = self.per_network.len() < MAX_NETWORKS;
        match self.per_network.get_mut(&net) {
            Some(n) => *n += 1,
            None if room => {
                self.per_network.insert(net, 1);
            }
            None => self.other_networks += 1,
        }
    }

    /// The networks with the most findings first (ties: by name), at most `n`.
    pub fn top_networks(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .per_network
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }

    /// Memory held (for the budget).
    pub fn heap_bytes(&self) -> usize {
        self.per_minute.len() * 48 + self.per_network.capacity() * 64
    }
}

/// A client's network: its /24 (IPv4) or /64 (IPv6). Kept as numbers and written out only
/// for a report: a finding is counted without an allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Network {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first four groups of an IPv6 address.
    V6([u16; 4]),
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Network::V4([x, y, z]) => write!(f, "{x}.{y}.{z}.0/24"),
            Network::V6([a, b, c, d]) => {
                write!(f, "{}/64", std::net::Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        }
    }
}

fn network(ip: IpAddr) -> Network {
    match ip {
        IpAddr::V4(a) => {
            let [x, y, z, _] = a.octets();
            Network::V4([x, y, z])
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            Network::V6([s[0], s[1], s[2], s[3]])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn a_network_is_written_as_its_prefix() {
        assert_eq!(
            network("10.1.2.3".parse().unwrap()).to_string(),
            "10.1.2.0/24"
        );
        assert_eq!(
            network("2001:db8:0:7:1:2:3:4".parse().unwrap()).to_string(),
            "2001:db8:0:7::/64"
        );
        assert_eq!(network("::1".parse().unwrap()).to_string(), "::/64");
    }
}
