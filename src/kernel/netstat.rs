//! The kernel's TCP abort and listen counters (`TcpExt` in `/proc/net/netstat`).
//!
//! A live capture reads them when it starts and when it stops ([`read`]), and the report
//! shows the change of each, with what it counts ([`Counters::change`]). They count over
//! the whole network namespace, not only the captured traffic, so they are context beside
//! the verdicts, never evidence for one.

use serde::Serialize;
use std::path::Path;

/// The counters shown, with what each counts.
pub const COUNTERS: [(&str, &str); 7] = [
    (
        "TCPAbortOnData",
        "connections reset because data arrived after the application closed the socket (or it closed with SO_LINGER 0)",
    ),
    (
        "TCPAbortOnClose",
        "connections reset because the application closed the socket with data unread",
    ),
    (
        "TCPAbortOnMemory",
        "connections reset because the host was short of memory for closed sockets (too many orphans)",
    ),
    (
        "TCPAbortOnTimeout",
        "connections given up after retransmission, keep-alive or TCP_USER_TIMEOUT timeouts",
    ),
    (
        "TCPAbortOnLinger",
        "connections reset when a closed socket's FIN_WAIT2 time (TCP_LINGER2) ran out",
    ),
    (
        "ListenOverflows",
        "handshakes a listening socket could not take because its accept queue was full",
    ),
    (
        "ListenDrops",
        "SYNs and handshakes dropped at a listening socket (overflows included)",
    ),
];

/// One reading of the counters in [`COUNTERS`] (absent ones are `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<Option<u64>>);

/// The change of one counter over the capture.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CounterChange {
    /// The counter's name in `/proc/net/netstat` (`TcpExt:`).
    pub name: &'static str,
    /// What it counts.
    pub meaning: &'static str,
    /// Its value at the start.
    pub start: u64,
    /// Its increase by the stop.
    pub change: u64,
}

/// Reads `TcpExt` from `/proc/net/netstat` (or `path`): `None` when it cannot be read.
pub fn read(path: Option<&Path>) -> Option<Counters> {
    let text = std::fs::read_to_string(path.unwrap_or(Path::new("/proc/net/netstat"))).ok()?;
    parse(&text)
}

/// Parses the text of `/proc/net/netstat`: a `TcpExt:` line of names, then one of values.
pub fn parse(text: &str) -> Option<Counters> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
    Some(Counters(
        COUNTERS
            .iter()
            .map(|(c, _)| {
                let i = names.iter().position(|n| n == c)?;
                values.get(i)?.parse().ok()
            })
            .collect(),
    ))
}

impl Counters {
    /// The change of each counter from `self` (the start) to `end`; a counter missing from
    /// either reading is left out.
    pub fn change(&self, end: &Counters) -> Vec<CounterChange> {
        COUNTERS
            .iter()
            .zip(self.0.iter().zip(&end.0))
            .filter_map(|((name, meaning), (a, b))| {
                let (a, b) = ((*a)?, (*b)?);
                Some(CounterChange {
                    name,
                    meaning,
                    start: a,
                    change: b.saturating_sub(a),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_subtracts() {
        let a = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnData TCPAbortOnClose\nTcpExt: 0 1 2 3 4\nIpExt: InNoRoutes\nIpExt: 0\n";
        let b = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPAbortOnData TCPAbortOnClose\nTcpExt: 0 1 5 3 9\n";
        let c = parse(a).unwrap().change(&parse(b).unwrap());
        let get = |n: &str| c.iter().find(|x| x.name == n).map(|x| x.change);
        assert_eq!(get("TCPAbortOnClose"), Some(5));
        assert_eq!(get("ListenDrops"), Some(3));
        assert_eq!(get("ListenOverflows"), Some(0));
        assert_eq!(get("TCPAbortOnMemory"), None);
        assert!(parse("nothing").is_none());
    }

    #[test]
    fn this_host_has_them() {
        if let Some(c) = read(None) {
            assert!(c.0.iter().all(Option::is_some), "{c:?}");
        }
    }
}
