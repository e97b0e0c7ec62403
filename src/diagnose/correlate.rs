//! Stage 6, correlate: judgements that need more than one connection. Proxies.
//!
//! A proxy is a host that is the server of some connections and the client of others, and
//! forwards requests from one to the other: the same method and target on its upstream
//! leg within `FORWARD_WITHIN` (100 ms) of the client's request. In production the keep-alive race
//! happens on that upstream leg, and the client sees only the proxy's answer: a 502/503/504,
//! or a connection closed with no response (HAProxy's silent close). Each such client-leg
//! outcome is linked to the upstream failure that caused it (the same request, forwarded,
//! failed in between), with both frames; upstream failures no client saw were retried by the
//! proxy. Memory is bounded: at most `MAX_SAMPLED` requests and `MAX_EVENTS` failures are
//! kept, and what did not fit is counted.

use super::finding::{Finding, FindingKind, Severity};
use super::record::ConnectionRecord;
use crate::source::FrameRef;
use crate::time::{Nanos, Timestamp};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;

/// A forwarded request leaves the proxy within this of the client's.
const FORWARD_WITHIN: Nanos = Nanos(100_000_000);
/// Requests sampled to recognise forwarding.
const MAX_SAMPLED: usize = 50_000;
/// Failures and proxy answers kept for linking. Each costs about 350 bytes, and linking
/// compares every client-leg outcome at a proxy with every upstream failure; what does not
/// fit is counted and named in the caveats. (At 20,000 a capture of 9.6 M packets held
/// 6 MiB more than one of 1.2 M.)
const MAX_EVENTS: usize = 5_000;
/// Forwarded requests that make a server a proxy.
const MIN_FORWARDED: u64 = 3;

/// A request seen, for recognising forwarding.
#[derive(Clone, Debug)]
struct Seen {
    time: Timestamp,
    client: SocketAddr,
    server: SocketAddr,
}

/// A failed request, or a proxy's error answer.
#[derive(Clone, Debug)]
struct Event {
    /// When the request was sent, and where it ended (the 502, the close, the reset).
    request_time: Timestamp,
    end: Timestamp,
    frame: FrameRef,
    request_frame: FrameRef,
    client: SocketAddr,
    server: SocketAddr,
    /// The request line ([`request_line`]).
    request: Box<str>,
    /// `502`, `503`, `504`, or the finding kind.
    what: &'static str,
    /// The connection id and finding kind, for an upstream failure.
    upstream: Option<(u64, FindingKind)>,
}

/// One client-leg outcome and the upstream failure that caused it.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyLink {
    /// The client of the proxy.
    pub client: SocketAddr,
    /// What the client got: `502`, `503`, `504`, or the finding kind.
    pub client_outcome: String,
    /// The frame of that answer or close.
    pub client_frame: FrameRef,
    /// The proxy's upstream connection (its local end).
    pub upstream_client: SocketAddr,
    /// The upstream server.
    pub upstream_server: SocketAddr,
    /// The upstream request that failed.
    pub upstream_frame: FrameRef,
    /// The upstream finding's kind.
    pub upstream_kind: FindingKind,
    /// Method and target of the request (escape before printing).
    pub request: String,
}

/// A proxy and what went wrong through it.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyReport {
    /// The endpoint clients connect to.
    pub proxy: SocketAddr,
    /// The servers it forwards to.
    pub upstreams: Vec<SocketAddr>,
    /// Requests seen forwarded (same method and target upstream within 100 ms).
    pub forwarded: u64,
    /// Client-leg outcomes linked to the upstream failure that caused them.
    pub links: Vec<ProxyLink>,
    /// Upstream failures no client saw: the proxy retried them.
    pub retried: u64,
    /// Client-leg failures through it that no upstream failure explains.
    pub unexplained: u64,
    /// What to change.
    pub recommendation: String,
}

/// Resets from a device on the path (their TTL fits no packet of their claimed sender),
/// and how long the flows they ended had been silent.
#[derive(Clone, Debug, Serialize)]
pub struct PathReport {
    /// Such resets.
    pub resets: u64,
    /// The shortest silence after which the path answered a packet with its own RST, in
    /// seconds: the device forgets flows idle less long than this.
    pub forgets_flows_idle_below_s: Option<f64>,
    /// The servers whose connections it reset.
    pub servers: Vec<SocketAddr>,
    /// A well-known idle timeout that fits, as a hint (never a verdict).
    pub hint: Option<String>,
}

/// Well-known idle timeouts of devices on the path, in seconds.
const KNOWN_IDLE_TIMEOUTS: [(f64, &str); 6] = [
    (350.0, "AWS NLB and NAT gateway (350 s)"),
    (240.0, "Azure Load Balancer (4 min)"),
    (600.0, "GCP load balancing and firewall (600 s)"),
    (60.0, "AWS ALB (60 s)"),
    (3600.0, "many firewalls' default of 1 hour"),
    (432_000.0, "Linux conntrack's established timeout (5 days)"),
];

/// The bounded evidence correlation works on.
#[derive(Default)]
pub struct Correlator {
    path_resets: u64,
    path_silence_ms: Option<f64>,
    path_servers: Vec<SocketAddr>,
    /// By request line ([`request_line`]).
    seen: rustc_hash::FxHashMap<Box<str>, Vec<Seen>>,
    /// A request line being looked up in `seen` (kept: a line is allocated only the first
    /// time it is seen).
    line: String,
    sampled: usize,
    events: Vec<Event>,
    /// Requests and failures that did not fit.
    pub overflow: u64,
    /// Memory held by `seen` and `events` (an estimate).
    bytes: usize,
    /// The memory budget made it stop sampling requests.
    stopped: bool,
}

/// What one sampled request costs beyond its method and target.
const ENTRY_COST: usize = 128;
/// What one failure costs, its request line included (with the allocator's overhead).
fn event_cost(e: &Event) -> usize {
    std::mem::size_of::<Event>() + e.request.len() + 16
}

/// `METHOD target`, which says which request it is: a method is a token, with no space.
fn request_line(method: &str, target: &str) -> Box<str> {
    let mut line = String::with_capacity(method.len() + 1 + target.len());
    push_request_line(&mut line, method, target);
    line.into_boxed_str()
}

/// Appends [`request_line`]'s line to `to`.
fn push_request_line(to: &mut String, method: &str, target: &str) {
    to.push_str(method);
    to.push(' ');
    to.push_str(target);
}

impl Correlator {
    /// Takes a connection's record and findings.
    pub fn connection(&mut self, r: &ConnectionRecord, findings: &[Finding]) {
        if r.protocol != "http" {
            return;
        }
        for q in &r.requests {
            if self.sampled < MAX_SAMPLED && !self.stopped {
                self.sampled += 1;
                self.bytes += ENTRY_COST + q.method.len() + q.target.len();
                let seen = Seen {
                    time: q.time,
                    client: r.client,
                    server: r.server,
                };
                self.line.clear();
                push_request_line(&mut self.line, &q.method, &q.target);
                match self.seen.get_mut(self.line.as_str()) {
                    Some(list) => list.push(seen),
                    None => {
                        self.seen.insert(self.line.as_str().into(), vec![seen]);
                    }
                }
            } else {
                self.overflow += 1;
            }
            if let (Some(s @ 502..=504), Some(frame), Some(t)) =
                (q.status, q.response_frame, q.response_time)
            {
                self.push(Event {
                    request_time: q.time,
                    end: t,
                    frame,
                    request_frame: q.frame,
                    client: r.client,
                    server: r.server,
                    request: request_line(&q.method, &q.target),
                    what: match s {
                        502 => "502",
                        503 => "503",
                        _ => "504",
                    },
                    upstream: None,
                });
            }
        }
        for f in findings.iter().filter(|f| f.rst_from_path == Some(true)) {
            self.path_resets += 1;
            if let Some(s) = f.path_silence_ms {
                self.path_silence_ms = Some(self.path_silence_ms.map_or(s, |m: f64| m.min(s)));
            }
            if self.path_servers.len() < 16 && !self.path_servers.contains(&f.server) {
                self.path_servers.push(f.server);
            }
        }
        for f in findings.iter().filter(|f| f.severity == Severity::Error) {
            let Some(q) = &f.request else { continue };
            self.push(Event {
                request_time: q.time,
                end: f.time.max(q.time),
                frame: f.close_frame,
                request_frame: q.frame,
                client: f.client,
                server: f.server,
                request: request_line(&q.method, &q.target),
                what: f.kind.name(),
                upstream: Some((f.connection, f.kind)),
            });
        }
    }

    /// Memory held (an estimate, for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// Memory budget: forgets the sampled requests and samples no more (proxies are then
    /// found only from what was linked before); what is forgotten counts as overflow.
    pub fn shed(&mut self) {
        let forgotten: usize = self.seen.values().map(Vec::len).sum();
        self.overflow += forgotten as u64;
        self.seen = Default::default();
        self.stopped = true;
        self.bytes = self.events.iter().map(event_cost).sum();
    }

    fn push(&mut self, e: Event) {
        let cost = event_cost(&e);
        if super::push_within(&mut self.events, e, MAX_EVENTS).is_ok() {
            self.bytes += cost;
        } else {
            self.overflow += 1;
        }
    }

    /// What the resets from the path say, if there were any.
    pub fn path(&self) -> Option<PathReport> {
        if self.path_resets == 0 {
            return None;
        }
        let below = self.path_silence_ms.map(|ms| (ms / 10.0).round() / 100.0);
        // A hint only where the shortest silence is just above a known timeout.
        let hint = below.and_then(|s| {
            KNOWN_IDLE_TIMEOUTS
                .iter()
                .find(|(t, _)| s >= *t && s <= t * 1.25)
                .map(|(_, name)| format!("the silence fits {name}; a hint, not a verdict"))
        });
        let mut servers = self.path_servers.clone();
        servers.sort();
        Some(PathReport {
            resets: self.path_resets,
            forgets_flows_idle_below_s: below,
            servers,
            hint,
        })
    }

    /// The proxies, and the ids of the upstream failures they retried.
    pub fn finish(&mut self) -> (Vec<ProxyReport>, Vec<u64>) {
        // Forwarding: a request to S followed within 100 ms by the same request from S's
        // host to another server T.
        let mut forwarded: HashMap<(SocketAddr, SocketAddr), u64> = HashMap::new();
        for list in self.seen.values_mut() {
            list.sort_by_key(|s| s.time);
            for (i, a) in list.iter().enumerate() {
                if let Some(b) = list[i + 1..]
                    .iter()
                    .take_while(|b| b.time.since(a.time) <= FORWARD_WITHIN)
                    .find(|b| {
                        b.client.ip() == a.server.ip()
                            && b.server != a.server
                            && b.client != a.client
                    })
                {
                    *forwarded.entry((a.server, b.server)).or_default() += 1;
                }
            }
        }
        let mut proxies: HashMap<SocketAddr, ProxyReport> = HashMap::new();
        for ((p, up), n) in &forwarded {
            // A pair forwarding both ways is two servers' clients interleaved, not a proxy:
            // keep the stronger direction.
            if *n < MIN_FORWARDED || forwarded.get(&(*up, *p)).is_some_and(|m| m >= n) {
                continue;
            }
            let r = proxies.entry(*p).or_insert_with(|| ProxyReport {
                proxy: *p,
                upstreams: Vec::new(),
                forwarded: 0,
                links: Vec::new(),
                retried: 0,
                unexplained: 0,
                recommendation: String::new(),
            });
            r.upstreams.push(*up);
            r.forwarded += n;
        }
        // Links: each client-leg outcome at a proxy to the upstream failure of the same
        // request between the client's request and its outcome.
        self.events.sort_by_key(|e| e.request_time);
        let mut used = vec![false; self.events.len()];
        let mut retried = Vec::new();
        for r in proxies.values_mut() {
            r.upstreams.sort();
            for i in 0..self.events.len() {
                let e = &self.events[i];
                if e.server != r.proxy {
                    continue;
                }
                let from = e.request_time;
                let to = e.end.max(e.request_time);
                let cause = (0..self.events.len()).find(|&j| {
                    let u = &self.events[j];
                    !used[j]
                        && u.upstream.is_some()
                        && u.request == e.request
                        && u.client.ip() == r.proxy.ip()
                        && r.upstreams.contains(&u.server)
                        && u.request_time >= from
                        && u.request_time <= to
                });
                match cause {
                    Some(j) => {
                        used[j] = true;
                        let u = &self.events[j];
                        r.links.push(ProxyLink {
                            client: e.client,
                            client_outcome: e.what.to_string(),
                            client_frame: e.frame,
                            upstream_client: u.client,
                            upstream_server: u.server,
                            upstream_frame: u.request_frame,
                            upstream_kind: u.upstream.expect("upstream").1,
                            request: e.request.to_string(),
                        });
                    }
                    None => r.unexplained += 1,
                }
            }
            for (j, u) in self.events.iter().enumerate() {
                if !used[j]
                    && u.upstream.is_some_and(|(_, k)| k == FindingKind::IdleRace)
                    && u.client.ip() == r.proxy.ip()
                    && r.upstreams.contains(&u.server)
                {
                    r.retried += 1;
                    retried.push(u.upstream.expect("upstream").0);
                }
            }
            r.links.sort_by_key(|l| l.client_frame);
            r.recommendation = recommend(r);
        }
        let mut out: Vec<ProxyReport> = proxies.into_values().collect();
        out.sort_by_key(|p| p.proxy);
        (out, retried)
    }
}

fn recommend(r: &ProxyReport) -> String {
    let ups = r
        .upstreams
        .iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let caused = r.links.len();
    let mut s = format!(
        "{} is a proxy in front of {ups}: the client to change is the proxy's upstream connection pool, whose idle timeout must be below the upstream server's (nginx: `keepalive_timeout` in the `upstream` block; HAProxy: `timeout http-keep-alive`, with `retry-on conn-failure empty-response` to retry safely; Node as a client: the agent's idle timeout below the server's `keepAliveTimeout`; Go: `Transport.IdleConnTimeout`).",
        r.proxy
    );
    if caused > 0 {
        s.push_str(&format!(
            " {} from upstream races",
            crate::report::words::plural(
                caused as u64,
                "client-visible failure came",
                "client-visible failures came"
            )
        ));
        if r.retried > 0 {
            s.push_str(&format!(
                "; {} more the proxy retried",
                crate::report::words::count(r.retried)
            ));
        }
        s.push('.');
    } else if r.retried > 0 {
        s.push_str(&format!(
            " It retried {}; no client saw {}.",
            crate::report::words::plural(r.retried, "upstream race", "upstream races"),
            crate::report::words::agree(r.retried, "it", "them")
        ));
    }
    s
}
