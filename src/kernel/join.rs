//! Joins the kernel's reset events to the RSTs captured on the wire (feature `live`).
//!
//! A RST packet from `src` to `dst` at time `t` (wall clock) matches a `tcp_send_reset`
//! event with the same source and destination, or a `tcp_receive_reset` event of the socket
//! at `dst` whose peer is `src`, whose mapped time is within [`WINDOW_NS`] of `t`; the
//! closest one wins. A sent event says why (its reason), and is preferred on loopback, where
//! both sides' events come for one packet.
//!
//! The one negative verdict, [`KernelReason::not_sent`], is given only when it must be true:
//! the RST's source is one of this host's addresses, events were being read when it was
//! captured, none were lost, a sync mark from after the end of its window has been read
//! back (so every event of that window has been read: [`Joiner::sync`]), and no
//! `tcp_send_reset` event matched it.

use super::reason::KernelReason;
use super::tracefs::ResetEvent;
use crate::time::Timestamp;
use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

/// How far apart in time an event and its packet may be, after mapping: 50 ms.
pub const WINDOW_NS: i64 = 50_000_000;

/// How long events are kept after their time (a packet may be read a little late).
const KEEP_NS: i64 = 5_000_000_000;

/// Recent events, and what tells this host's own addresses.
pub struct Joiner {
    events: VecDeque<ResetEvent>,
    local: HashSet<IpAddr>,
    /// When events began to be read (packets before it get no negative verdict).
    since: Timestamp,
    /// Events were lost: no negative verdict from then on.
    lost: bool,
    /// Every event up to this time has been read (the latest sync mark read back).
    synced: Option<Timestamp>,
}

impl Joiner {
    /// A joiner for events read from `since` on a host with the addresses `local`.
    pub fn new(local: HashSet<IpAddr>, since: Timestamp) -> Joiner {
        Joiner {
            events: VecDeque::new(),
            local,
            since,
            lost: false,
            synced: None,
        }
    }

    /// Takes events as they are read.
    pub fn add(&mut self, events: impl IntoIterator<Item = ResetEvent>) {
        for e in events {
            let newest = e.ts;
            self.events.push_back(e);
            while self
                .events
                .front()
                .is_some_and(|f| newest.0.saturating_sub(f.ts.0) > KEEP_NS)
            {
                self.events.pop_front();
            }
        }
    }

    /// Every event up to `ts` has been read (a sync mark came back).
    pub fn sync(&mut self, ts: Timestamp) {
        self.synced = self.synced.max(Some(ts));
    }

    /// True when every event that could match a RST captured at `ts` has been read.
    pub fn synced_past(&self, ts: Timestamp) -> bool {
        self.synced
            .is_some_and(|s| s.0 >= ts.0.saturating_add(WINDOW_NS))
    }

    /// The kernel lost events: no negative verdict from now on.
    pub fn set_lost(&mut self) {
        self.lost = true;
    }

    fn closest(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        ts: Timestamp,
        sent: bool,
    ) -> Option<&ResetEvent> {
        self.events
            .iter()
            .filter(|e| e.sent.is_some() == sent && e.src == src && e.dst == dst)
            .filter(|e| (e.ts.0 - ts.0).abs() <= WINDOW_NS)
            .min_by_key(|e| (e.ts.0 - ts.0).abs())
    }

    /// Whether the source of a RST is one of this host's addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local.contains(&ip.to_canonical())
    }

    /// True when waiting longer cannot change the RST's reason: a sent event matched, or
    /// its source is not this host and a received event matched.
    pub fn complete(&self, src: SocketAddr, dst: SocketAddr, ts: Timestamp) -> bool {
        self.closest(src, dst, ts, true).is_some()
            || (!self.is_local(src.ip()) && self.closest(src, dst, ts, false).is_some())
    }

    /// The kernel's word on a RST from `src` to `dst` captured at `ts`. Before the packet
    /// is `settled` (held long enough for its event to come), only a match is returned; the
    /// negative verdict needs [`Joiner::synced_past`] too.
    pub fn reason(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        ts: Timestamp,
        settled: bool,
    ) -> Option<KernelReason> {
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        let dst = SocketAddr::new(dst.ip().to_canonical(), dst.port());
        if let Some(e) = self.closest(src, dst, ts, true) {
            return Some(KernelReason::sent(e.sent.as_deref().unwrap_or("")));
        }
        if !settled {
            return None;
        }
        if self.is_local(src.ip()) {
            return (!self.lost && ts.0 >= self.since.0 && self.synced_past(ts))
                .then(KernelReason::not_sent);
        }
        self.closest(src, dst, ts, false)
            .map(|_| KernelReason::received())
    }
}

/// This host's addresses (of every interface, loopback included), from `getifaddrs(3)`.
pub fn local_addresses() -> HashSet<IpAddr> {
    let mut out = HashSet::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that freeifaddrs releases; every node and
    // its address are read only while the list lives.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(a as *const libc::sockaddr_in);
                        out.insert(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(a as *const libc::sockaddr_in6);
                        out.insert(IpAddr::from(sin6.sin6_addr.s6_addr).to_canonical());
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(sent: Option<&str>, src: &str, dst: &str, ms: i64) -> ResetEvent {
        ResetEvent {
            sent: sent.map(str::to_string),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ts: Timestamp(ms * 1_000_000),
        }
    }

    #[test]
    fn joins_by_tuple_and_time() {
        let local: HashSet<IpAddr> = ["127.0.0.1".parse().unwrap()].into();
        let mut j = Joiner::new(local, Timestamp(0));
        j.add([
            ev(None, "127.0.0.1:80", "127.0.0.1:5000", 1000),
            ev(
                Some("TCP_ABORT_ON_CLOSE"),
                "127.0.0.1:80",
                "127.0.0.1:5000",
                1001,
            ),
            ev(None, "10.9.9.9:80", "127.0.0.1:5001", 2000),
        ]);
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let t = |ms: i64| Timestamp(ms * 1_000_000);
        // The sent event wins over the received one for the same packet.
        assert_eq!(
            j.reason(a("127.0.0.1:80"), a("127.0.0.1:5000"), t(1010), false),
            Some(KernelReason::sent("TCP_ABORT_ON_CLOSE"))
        );
        // Out of the window: nothing matched; local source, settled and synced past its
        // window: not sent here.
        assert_eq!(
            j.reason(a("127.0.0.1:80"), a("127.0.0.1:5000"), t(1200), false),
            None
        );
        j.sync(t(1240));
        assert_eq!(
            j.reason(a("127.0.0.1:80"), a("127.0.0.1:5000"), t(1200), true),
            None
        );
        j.sync(t(1250));
        assert_eq!(
            j.reason(a("127.0.0.1:80"), a("127.0.0.1:5000"), t(1200), true),
            Some(KernelReason::not_sent())
        );
        // A remote source: received at most, never "not sent".
        assert!(j.complete(a("10.9.9.9:80"), a("127.0.0.1:5001"), t(2001)));
        assert_eq!(
            j.reason(a("10.9.9.9:80"), a("127.0.0.1:5001"), t(2001), true),
            Some(KernelReason::received())
        );
        assert_eq!(
            j.reason(a("10.9.9.9:80"), a("127.0.0.1:5002"), t(2001), true),
            None
        );
        // Lost events: no negative verdict.
        j.set_lost();
        assert_eq!(
            j.reason(a("127.0.0.1:80"), a("127.0.0.1:5000"), t(1200), true),
            None
        );
    }

    #[test]
    fn this_host_has_loopback() {
        assert!(local_addresses().contains(&"127.0.0.1".parse::<IpAddr>().unwrap()));
    }
}
