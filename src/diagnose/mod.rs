//! Stage 5, diagnose: from finished connections to findings.
//!
//! [`judge`] judges each connection as the flow table releases it ([`verdict::judge`]),
//! on the thread that held it; [`Diagnoser::take`] takes the verdicts in the order the
//! connections were released, hands their findings to the caller's
//! [`crate::pipeline::Sink`] the moment they are decided and their [`ConnectionRecord`]s
//! after them (the caller may stream them out and drop them), keeps a bounded sample of
//! findings for reports that list them, and feeds the per-server tallies.
//! A race shown only by a RST (no FIN) is confirmed against the server's idle timeout as
//! estimated so far; one at another idle time is a `reset_in_flight`. [`Diagnoser::finish`]
//! settles the per-server estimates over the whole capture and hands on a [`Diagnosis`].

mod closes;
pub mod correlate;
pub mod estimate;
mod failure;
pub mod finding;
mod h2;
mod race;
pub mod record;
mod retry;
pub mod tally;
pub mod verdict;

pub use finding::{Finding, FindingKind, RequestRef, Severity};
pub use record::{ConnectionRecord, Outcome, RequestRecord};

use crate::flows::{Connection, Release};
use estimate::{ServerReport, ServerTally};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Findings kept in memory for reports that list them (the terminal, Markdown and HTML
/// list 50 by default); beyond this they are counted, and still handed to the sink.
const MAX_FINDINGS: usize = 5_000;
/// Informational findings (idle closes) kept in memory: they are context, and one per
/// keep-alive connection would make memory grow with the capture.
const MAX_INFO_FINDINGS: usize = 500;
/// Servers tallied; beyond this new servers are counted only.
const MAX_SERVERS: usize = 100_000;

/// Connection-level counters for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ConnectionCounts {
    /// Connections analysed.
    pub total: u64,
    /// Whose handshake was not captured (roles inferred).
    pub mid_stream: u64,
    /// Closed by FIN first.
    pub closed_by_fin: u64,
    /// Closed by RST first.
    pub closed_by_rst: u64,
    /// Still open when the capture ended.
    pub open_at_end: u64,
    /// HTTP connections.
    pub http: u64,
    /// TLS connections.
    pub tls: u64,
    /// HTTP requests.
    pub http_requests: u64,
    /// Requests over TLS, built from the records (see `crate::app::tls`).
    pub tls_requests: u64,
    /// HTTP/2 connections (prior knowledge or `Upgrade: h2c`).
    pub http2: u64,
    /// Streams the clients opened on them.
    pub http2_streams: u64,
    /// Requests that got no complete response because of a reset or close.
    pub failed_requests: u64,
    /// Connections with bytes never captured.
    pub with_gaps: u64,
    /// Bytes never captured, in total.
    pub gap_bytes: u64,
    /// Payload bytes cut by the snap length.
    pub cut_bytes: u64,
    /// Retransmitted segments.
    pub retransmissions: u64,
    /// Times a reassembly buffer reached its cap.
    pub buffer_overflows: u64,
    /// Times an HTTP parser lost message boundaries.
    pub http_desyncs: u64,
    /// Requests whose head only the tolerant reading accepted (see `requests[].malformed`).
    pub malformed_requests: u64,
    /// HTTP connections whose parsing stopped (see `connections[].app_note`).
    pub not_followed: u64,
    /// Frames that repeated one already seen (same bytes, same time), not analysed again.
    pub duplicate_frames: u64,
    /// Connections whose every packet repeated an earlier connection's (not counted in
    /// `total`).
    pub replayed_connections: u64,
    /// Requests and failures the correlation stage could not keep (bounded memory).
    pub correlation_overflow: u64,
    /// Connections with payload whose packets were captured in one direction only.
    pub one_sided: u64,
    /// Connections whose races were judged before the end of the capture because too many
    /// waited (their verdict may depend on the order connections were released).
    pub decided_early: u64,
}

/// Everything diagnosis concluded about a capture.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// Findings in order of time.
    pub findings: Vec<Finding>,
    /// Findings not kept because of the memory cap.
    pub findings_dropped: u64,
    /// Findings per kind, kept or not.
    pub counts: BTreeMap<FindingKind, u64>,
    /// Problems (idle closes aside) by minute and by client network, kept or not.
    #[serde(skip)]
    pub tally: tally::Tally,
    /// Per-server estimates and recommendations, servers with findings first.
    pub servers: Vec<ServerReport>,
    /// Connection counters.
    pub connections: ConnectionCounts,
    /// Proxies seen, with the client-leg outcomes their upstream failures caused.
    pub proxies: Vec<correlate::ProxyReport>,
    /// Resets from a device on the path, if any.
    pub path: Option<correlate::PathReport>,
}

/// Connections held back because a race shown only by a RST waits for its server's
/// idle-timeout estimate; beyond this many they are decided at once.
const MAX_HELD: usize = 10_000;
/// Idle closes of a server that make its estimate firm enough to confirm a RST race.
const CONFIRM_AFTER: u64 = 3;

/// What a kept finding's text costs beyond its struct (sentence and advice), roughly.
const FINDING_TEXT: usize = 640;

/// What a held verdict costs (an estimate, for the memory budget).
fn verdict_bytes(v: &verdict::Verdict) -> usize {
    std::mem::size_of::<verdict::Verdict>()
        + v.record.requests.len() * (std::mem::size_of::<RequestRecord>() + 48)
        + v.findings.len() * (std::mem::size_of::<Finding>() + FINDING_TEXT)
}

/// Accumulates verdicts over a capture.
#[derive(Default)]
pub struct Diagnoser {
    /// Idle-close observations kept across all servers.
    observations: usize,
    findings: Vec<Finding>,
    findings_dropped: u64,
    info_kept: usize,
    by_kind: BTreeMap<FindingKind, u64>,
    /// Problems by minute and client network, listed or not.
    tally: tally::Tally,
    servers: HashMap<SocketAddr, ServerTally>,
    counts: ConnectionCounts,
    /// Verdicts waiting for their server's estimate (see [`Diagnoser::take`]).
    held: Vec<verdict::Verdict>,
    /// Hold every verdict whose findings depend on an estimate until the capture ends.
    hold_until_end: bool,
    /// Verdicts decided before the end because the hold was full.
    decided_early: u64,
    /// Memory held by `held` (an estimate).
    held_bytes: usize,
    /// Verdicts the memory budget made decide before the end.
    shed_held: u64,
    /// Cross-connection evidence (proxies).
    correlator: correlate::Correlator,
    proxies: Vec<correlate::ProxyReport>,
    path: Option<correlate::PathReport>,
    /// The kernel's reasons for RSTs by frame, joined to closes and findings.
    kernel: crate::kernel::reason::ReasonTable,
}

/// A connection as [`judge`] leaves it for [`Diagnoser::take`].
pub enum Judged {
    /// Every packet repeated one already analysed: a replay, not a connection.
    Replay {
        /// Its frames, all repeats.
        duplicates: u64,
    },
    /// A connection's verdict.
    Verdict(Box<verdict::Verdict>),
}

impl Judged {
    /// Gives the connection the id it has in reports (in the record and its findings).
    pub fn set_id(&mut self, id: u64) {
        if let Judged::Verdict(v) = self {
            v.record.id = id;
            for f in &mut v.findings {
                f.connection = id;
            }
        }
    }

    /// Memory it holds beyond its own size (an estimate, for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Judged::Replay { .. } => 0,
            Judged::Verdict(v) => verdict_bytes(v),
        }
    }
}

/// Judges one connection released by the flow table: what depends on that connection
/// alone, so it can run on the thread that held the connection.
pub fn judge(c: &Connection, released: Release) -> Judged {
    if c.dirs.iter().all(|d| d.packets == 0) {
        Judged::Replay {
            duplicates: c.dirs.iter().map(|d| d.duplicates as u64).sum(),
        }
    } else {
        Judged::Verdict(Box::new(verdict::judge(c, released)))
    }
}

/// True for a race shown only by a RST right after the request: it is an idle race only if
/// the idle time is the server's idle timeout, which other connections must show.
fn needs_estimate(f: &Finding) -> bool {
    f.kind == FindingKind::IdleRace && matches!(f.variant, Some("rst_no_fin" | "tls_unread"))
}

impl Diagnoser {
    /// A diagnoser. `hold_until_end`: judge races against the estimates of the whole
    /// capture (offline), so that findings do not depend on the order connections are
    /// released; otherwise as soon as each server's estimate is firm (live).
    pub fn new(hold_until_end: bool) -> Diagnoser {
        Diagnoser {
            hold_until_end,
            ..Diagnoser::default()
        }
    }

    /// Joins the kernel's reasons in `kernel` to the RSTs of every connection and to the
    /// findings they decide.
    pub fn with_kernel(mut self, kernel: crate::kernel::reason::ReasonTable) -> Diagnoser {
        self.kernel = kernel;
        self
    }

    /// Gives each RST close its kernel reason, and each finding that of the RST that decided
    /// it: its close frame, else the first RST among its frames that has one.
    fn join_kernel(&self, v: &mut verdict::Verdict) {
        if self.kernel.is_empty() {
            return;
        }
        for c in v.record.closes.iter_mut() {
            if c.kind != crate::flows::CloseKind::Fin {
                c.kernel_reason = self.kernel.get(c.mark.frame);
            }
        }
        let closes = &v.record.closes;
        for f in v.findings.iter_mut() {
            f.kernel_reason = self.kernel.get(f.close_frame).or_else(|| {
                closes
                    .iter()
                    .filter(|c| f.frames.contains(&c.mark.frame))
                    .find_map(|c| c.kernel_reason)
            });
            if let Some(r) = f.kernel_reason {
                let words = r.sentence(f.by, f.request.is_some());
                let mut chars = words.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                let sep = if f.sentence.ends_with('.') || f.sentence.is_empty() {
                    " "
                } else {
                    ". "
                };
                f.sentence = format!(
                    "{}{sep}{}{}.",
                    f.sentence,
                    first.into_iter().collect::<String>(),
                    chars.as_str()
                )
                .trim_start()
                .to_string();
            }
        }
    }

    /// Takes a connection judged by [`judge`] (perhaps on another thread; verdicts must come
    /// in the order the connections were released), and hands its findings and record to
    /// `sink`. A connection whose race is shown only by a RST is held until its server's
    /// idle-timeout estimate rests on enough idle closes (or the capture ends), so that the
    /// race is confirmed against it, not guessed.
    pub fn take(&mut self, judged: Judged, sink: &mut dyn crate::pipeline::Sink) {
        let v = match judged {
            Judged::Replay { duplicates } => {
                self.counts.duplicate_frames += duplicates;
                self.counts.replayed_connections += 1;
                return;
            }
            Judged::Verdict(v) => *v,
        };
        self.count(&v);
        let server = v.record.server;
        let depends = if self.hold_until_end {
            v.findings.iter().any(|f| f.kind == FindingKind::IdleRace)
        } else {
            v.findings.iter().any(needs_estimate) && !self.firm_estimate(server)
        };
        if depends {
            if self.held.len() < MAX_HELD {
                self.held_bytes += verdict_bytes(&v);
                self.held.push(v);
                return;
            }
            self.decided_early += 1;
        }
        self.settle(v, false, sink);
        if self.hold_until_end {
            return;
        }
        if self.firm_estimate(server) && self.held.iter().any(|h| h.record.server == server) {
            let (ready, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|h| h.record.server == server);
            self.held = rest;
            for h in &ready {
                self.held_bytes = self.held_bytes.saturating_sub(verdict_bytes(h));
            }
            for h in ready {
                self.settle(h, false, sink);
            }
        }
    }

    /// Memory held (an estimate, for the memory budget): verdicts held for their server's
    /// estimate, findings kept for reports, per-server tallies and cross-connection
    /// evidence.
    pub fn heap_bytes(&self) -> usize {
        self.held_bytes
            + self.held.capacity() * std::mem::size_of::<verdict::Verdict>()
            + self.findings.capacity() * (std::mem::size_of::<Finding>() + FINDING_TEXT)
            + self.servers.capacity() * (std::mem::size_of::<ServerTally>() + 64)
            + self.observations * 24
            + self.correlator.heap_bytes()
            + self.tally.heap_bytes()
    }

    /// Memory budget: decides the held verdicts now, against the estimates so far (as a
    /// live capture does), and forgets the requests sampled for finding proxies.
    pub fn shed(&mut self, sink: &mut dyn crate::pipeline::Sink) {
        let held = std::mem::take(&mut self.held);
        self.held_bytes = 0;
        self.shed_held += held.len() as u64;
        self.decided_early += held.len() as u64;
        for h in held {
            self.settle(h, false, sink);
        }
        self.correlator.shed();
    }

    /// Connections judged so far, and the requests in them that failed.
    pub fn so_far(&self) -> (u64, u64) {
        (self.counts.total, self.counts.failed_requests)
    }

    /// Verdicts the memory budget made decide before the end of the capture.
    pub fn shed_held(&self) -> u64 {
        self.shed_held
    }

    /// True once the server's estimate rests on enough idle closes to confirm a race.
    fn firm_estimate(&self, server: SocketAddr) -> bool {
        self.servers
            .get(&server)
            .is_some_and(|t| t.observations.len() as u64 + t.observations_dropped >= CONFIRM_AFTER)
    }

    /// Connection counters, kept the moment a connection is judged.
    fn count(&mut self, v: &verdict::Verdict) {
        let r = &v.record;
        let n = &mut self.counts;
        n.total += 1;
        n.mid_stream += r.roles_inferred as u64;
        match r.first_close.map(|f| f.how) {
            Some("FIN") => n.closed_by_fin += 1,
            Some(_) => n.closed_by_rst += 1,
            None => {}
        }
        n.open_at_end += (!r.closed && r.released == Release::EndOfCapture) as u64;
        n.http += (r.protocol == "http") as u64;
        n.tls += (r.protocol == "tls") as u64;
        n.http2 += (r.protocol == "http2") as u64;
        n.http2_streams += r.http2.as_ref().map_or(0, |h| h.streams);
        n.http_requests += r.requests.len() as u64 + r.requests_folded + r.requests_dropped;
        n.tls_requests += r.tls_requests.map_or(0, |t| t.client);
        n.failed_requests +=
            r.requests.iter().filter(|q| q.outcome.failed()).count() as u64 + v.tls_failed as u64;
        n.malformed_requests += r.requests.iter().filter(|q| q.malformed.is_some()).count() as u64;
        n.with_gaps += (r.stream.gaps > 0) as u64;
        n.gap_bytes += r.stream.gap_bytes;
        n.cut_bytes += r.stream.cut_bytes;
        n.retransmissions += r.stream.retransmissions as u64;
        n.buffer_overflows += r.stream.buffer_overflows as u64;
        n.http_desyncs += r.stream.http_desyncs as u64;
        n.duplicate_frames += r.stream.duplicates as u64;
        n.one_sided += (r.packets.client == 0 || r.packets.server == 0) as u64
            * (r.payload_bytes.client + r.payload_bytes.server > 0) as u64;
        n.not_followed += r.app_note.is_some() as u64;
    }

    /// Confirms the verdict's RST races against the server's estimate, feeds the server's
    /// tallies, and hands on its findings and record. `last`: the capture is over, so the
    /// estimate is as good as it will get.
    fn settle(
        &mut self,
        mut v: verdict::Verdict,
        last: bool,
        sink: &mut dyn crate::pipeline::Sink,
    ) {
        let e = |d: &mut Diagnoser, server: SocketAddr| {
            d.servers.get_mut(&server).and_then(|t| t.estimate_so_far())
        };
        confirm_rst_races(&mut v, last, |server| e(self, server));
        self.emit(v, sink);
    }

    /// Feeds the server's tallies with a confirmed verdict and hands on its findings and
    /// record.
    fn emit(&mut self, v: verdict::Verdict, sink: &mut dyn crate::pipeline::Sink) {
        self.correlator.connection(&v.record, &v.findings);
        self.emit_fed(v, sink);
    }

    /// [`Diagnoser::emit`] for a verdict the correlator has already seen.
    fn emit_fed(&mut self, mut v: verdict::Verdict, sink: &mut dyn crate::pipeline::Sink) {
        self.join_kernel(&mut v);
        let r = &v.record;
        if self.servers.len() < MAX_SERVERS || self.servers.contains_key(&r.server) {
            let t = self.servers.entry(r.server).or_default();
            t.connections += 1;
            t.requests += r.requests.len() as u64 + r.requests_folded + r.requests_dropped;
            for a in &v.announced_timeouts {
                if !t.announced.contains(a) {
                    t.announced.push(*a);
                }
            }
            if let Some(o) = v.server_idle_close {
                let n = t.observations.len();
                t.observe(o.idle.as_millis_f64(), r.id);
                self.observations += t.observations.len() - n;
            }
            for f in v
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::IdleRace)
            {
                t.races += 1;
                match f.retry_safe {
                    Some(false) => t.races_not_idempotent += 1,
                    None => t.races_retry_unknown += 1,
                    Some(true) => {}
                }
            }
        }
        for f in std::mem::take(&mut v.findings) {
            sink.finding(&f);
            *self.by_kind.entry(f.kind).or_default() += 1;
            self.tally.add(&f);
            let info = f.severity == Severity::Info;
            // A plain push: the list's spare room is counted in the budget (heap_bytes), and
            // a list grown to exactly MAX_FINDINGS (push_within) left the refused_syns memory
            // test 5 MiB higher, at its limit, as the budget then shed later.
            if self.findings.len() < MAX_FINDINGS && (!info || self.info_kept < MAX_INFO_FINDINGS) {
                self.info_kept += info as usize;
                self.findings.push(f);
            } else {
                self.findings_dropped += 1;
            }
        }
        sink.record(&v.record);
    }

    /// Settles the estimates and the findings that depend on them.
    pub fn finish(mut self, sink: &mut dyn crate::pipeline::Sink) -> Diagnosis {
        // Decided against the whole capture's estimates, fed first by every held verdict's
        // own idle close, in connection order: nothing depends on the release order.
        let mut held = std::mem::take(&mut self.held);
        sort_by_key_in_place(&mut held, |h| h.record.id);
        // The idle closes that need no confirmation count first; then every held race is
        // confirmed against the same estimates.
        for h in &mut held {
            if !h.findings.iter().any(needs_estimate) {
                if let Some(o) = h.server_idle_close.take() {
                    self.servers
                        .entry(h.record.server)
                        .or_default()
                        .observe(o.idle.as_millis_f64(), h.record.id);
                }
            }
        }
        let estimates: HashMap<SocketAddr, estimate::Estimate> = self
            .servers
            .iter()
            .filter_map(|(s, t)| Some((*s, t.estimate()?)))
            .collect();
        for h in &mut held {
            confirm_rst_races(h, true, |s| estimates.get(&s).cloned());
            self.correlator.connection(&h.record, &h.findings);
        }
        // Proxies: an upstream race that no client saw was retried by the proxy.
        let (proxies, retried) = self.correlator.finish();
        for h in held {
            let mut h = h;
            if retried.contains(&h.record.id) {
                for f in h
                    .findings
                    .iter_mut()
                    .filter(|f| f.kind == FindingKind::IdleRace)
                {
                    f.retried_by_proxy = Some(true);
                    f.sentence
                        .push_str(" The proxy retried it upstream; no client saw this failure.");
                }
            }
            self.emit_fed(h, sink);
        }
        self.proxies = proxies;
        self.path = self.correlator.path();
        self.counts.correlation_overflow = self.correlator.overflow;
        self.counts.decided_early = self.decided_early;
        sort_by_key_in_place(&mut self.findings, |f| (f.time, f.connection));
        let mut servers: Vec<ServerReport> = self
            .servers
            .iter()
            .filter(|(_, t)| t.races > 0 || !t.observations.is_empty() || !t.announced.is_empty())
            .map(|(s, t)| estimate::server_report(*s, t))
            .collect();
        servers.sort_by(|a, b| {
            b.idle_races
                .cmp(&a.idle_races)
                .then(b.connections.cmp(&a.connections))
                .then(a.server.cmp(&b.server))
        });
        Diagnosis {
            findings: self.findings,
            findings_dropped: self.findings_dropped,
            counts: self.by_kind,
            tally: self.tally,
            servers,
            connections: self.counts,
            proxies: self.proxies,
            path: self.path,
        }
    }
}

/// Compares each RST race's idle time with the server's idle-timeout estimate (this
/// connection not counted). A RST with no FIN right after a request is the idle race
/// only if it came at that timeout. Once the server has shown it (three idle closes or
/// more), a reset at another idle time is a plain reset in flight; at the end of the
/// capture, a server that showed no idle close at all cannot confirm the race either.
fn confirm_rst_races(
    v: &mut verdict::Verdict,
    last: bool,
    mut estimate: impl FnMut(SocketAddr) -> Option<estimate::Estimate>,
) {
    for f in &mut v.findings {
        if f.kind != FindingKind::IdleRace {
            continue;
        }
        let e = estimate(f.server);
        let Some(idle) = f.idle_ms else { continue };
        let matches = e.as_ref().map(|e| e.matches(idle));
        f.matches_server_timeout = matches;
        if !needs_estimate(f) {
            continue;
        }
        let firm = e.as_ref().is_some_and(|e| e.observations >= CONFIRM_AFTER);
        let keep = match matches {
            Some(true) => true,
            Some(false) => !firm && !last,
            None => !last,
        };
        if keep {
            continue;
        }
        let what = f.request.as_ref().map_or("a request".to_string(), |r| {
            if &*r.method == "TLS" {
                "a request over TLS".to_string()
            } else {
                format!("{} {}", r.method, race::short(&r.target))
            }
        });
        let why = match &e {
                Some(e) => format!(
                    "which is not this server's idle timeout (~{})",
                    estimate::human_ms(e.median_ms)
                ),
                None => "and the capture shows no idle close of this server that would confirm an idle timeout there".to_string(),
            };
        let advice = f
            .request
            .as_ref()
            .map(|r| retry::advice(r, retry::Processed::Unknown, true))
            .unwrap_or_default();
        f.kind = FindingKind::ResetInFlight;
        f.severity = f.kind.severity();
        f.variant = None;
        f.sentence = format!(
                "The server reset the connection right after {what} was sent (no FIN, no response), after {} idle, {why}; the request may or may not have been applied. {advice}",
                estimate::human_ms(idle),
            );
        v.server_idle_close = None;
    }
    v.record.findings = v.findings.iter().map(|f| f.kind).collect();
}

/// Pushes `item` onto `items` unless it holds `max` already (then gives it back). The
/// capacity doubles as a vector's does, but never past `max`: a list capped at 5,000 would
/// otherwise end with room for 8,192, and its memory would go on growing with the capture
/// after the list stopped (the correlator's failures).
pub(crate) fn push_within<T>(items: &mut Vec<T>, item: T, max: usize) -> Result<(), T> {
    if items.len() >= max {
        return Err(item);
    }
    if items.len() == items.capacity() {
        let room = (items.capacity() * 2).clamp(16, max);
        items.reserve_exact(room - items.len());
    }
    items.push(item);
    Ok(())
}

/// Sorts `items` stably by `key`, moving each item a bounded number of times: the keys are
/// sorted with the items' positions, then the items are permuted in place, cycle by cycle.
/// Verdicts and findings are hundreds of bytes each, and a sort that moves them at every
/// step spent most of its time copying them. The only extra memory is the keys.
fn sort_by_key_in_place<T, K: Ord>(items: &mut [T], key: impl Fn(&T) -> K) {
    let mut order: Vec<(K, usize)> = items.iter().enumerate().map(|(i, t)| (key(t), i)).collect();
    // The position breaks ties, so the unstable sort keeps equal keys in their order.
    order.sort_unstable();
    // from[k]: the position of the item that goes to position k.
    let mut from: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
    const DONE: usize = usize::MAX;
    for start in 0..from.len() {
        let mut at = start;
        while from[at] != DONE {
            let source = from[at];
            from[at] = DONE;
            if source == start {
                break;
            }
            items.swap(at, source);
            at = source;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_key_moves_items_into_stable_order() {
        // Every permutation of a few keys with ties, against the standard stable sort.
        let keys = [3u8, 1, 2, 1, 0, 3, 2, 2];
        for rotate in 0..keys.len() {
            let mut items: Vec<(u8, usize)> = keys.iter().copied().zip(0..).collect();
            items.rotate_left(rotate);
            let mut expected = items.clone();
            expected.sort_by_key(|p| p.0);
            sort_by_key_in_place(&mut items, |p| p.0);
            assert_eq!(items, expected, "rotated by {rotate}");
        }
        let mut none: Vec<u8> = Vec::new();
        sort_by_key_in_place(&mut none, |b| *b);
        assert!(none.is_empty());
    }

    #[test]
    fn a_capped_list_never_has_room_past_its_cap() {
        let mut items = Vec::new();
        for i in 0..5_000 {
            assert_eq!(push_within(&mut items, i, 5_000), Ok(()));
        }
        assert_eq!(push_within(&mut items, 5_000, 5_000), Err(5_000));
        assert_eq!((items.len(), items.capacity()), (5_000, 5_000));
        assert_eq!(items[4_999], 4_999);
    }
}
