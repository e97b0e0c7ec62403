//! Stage 5, diagnose: from finished connections to findings.
//!
//! [`Diagnoser::connection_done`] judges each connection as the flow table releases it
//! ([`verdict::judge`]), hands its findings to the caller's [`crate::pipeline::Sink`] the
//! moment they are decided and its [`ConnectionRecord`] back to the caller (which may stream
//! it out and drop it), keeps a bounded sample of findings for reports that list them, and
//! feeds the per-server tallies.
//! A race shown only by a RST (no FIN) is confirmed against the server's idle timeout as
//! estimated so far; one at another idle time is a `reset_in_flight`. [`Diagnoser::finish`]
//! settles the per-server estimates over the whole capture and hands on a [`Diagnosis`].

mod closes;
pub mod estimate;
pub mod finding;
mod race;
pub mod record;
pub mod verdict;

pub use finding::{Finding, FindingKind, RequestRef, Severity};
pub use record::{ConnectionRecord, Outcome};

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
    /// Per-server estimates and recommendations, servers with findings first.
    pub servers: Vec<ServerReport>,
    /// Connection counters.
    pub connections: ConnectionCounts,
}

/// Accumulates verdicts over a capture.
#[derive(Default)]
pub struct Diagnoser {
    findings: Vec<Finding>,
    findings_dropped: u64,
    info_kept: usize,
    by_kind: BTreeMap<FindingKind, u64>,
    servers: HashMap<SocketAddr, ServerTally>,
    counts: ConnectionCounts,
}

impl Diagnoser {
    /// Judges a connection released by the flow table; returns its record.
    pub fn connection_done(
        &mut self,
        c: Connection,
        released: Release,
        sink: &mut dyn crate::pipeline::Sink,
    ) -> ConnectionRecord {
        let mut v = verdict::judge(&c, released);
        self.confirm_rst_races(&mut v);
        let r = &v.record;
        let n = &mut self.counts;
        n.total += 1;
        n.mid_stream += r.roles_inferred as u64;
        match r.first_close.map(|f| f.how) {
            Some("FIN") => n.closed_by_fin += 1,
            Some(_) => n.closed_by_rst += 1,
            None => {}
        }
        n.open_at_end += (!r.closed && released == Release::EndOfCapture) as u64;
        n.http += (r.protocol == "http") as u64;
        n.tls += (r.protocol == "tls") as u64;
        n.http_requests += r.requests.len() as u64;
        n.failed_requests += r
            .requests
            .iter()
            .filter(|q| matches!(q.outcome, Outcome::Reset | Outcome::Unanswered))
            .count() as u64;
        n.with_gaps += (r.stream.gaps > 0) as u64;
        n.gap_bytes += r.stream.gap_bytes;
        n.cut_bytes += r.stream.cut_bytes;
        n.retransmissions += r.stream.retransmissions as u64;
        n.buffer_overflows += r.stream.buffer_overflows as u64;
        n.http_desyncs += r.stream.http_desyncs as u64;

        if self.servers.len() < MAX_SERVERS || self.servers.contains_key(&r.server) {
            let t = self.servers.entry(r.server).or_default();
            t.connections += 1;
            t.requests += r.requests.len() as u64;
            for a in &v.announced_timeouts {
                if !t.announced.contains(a) {
                    t.announced.push(*a);
                }
            }
            if let Some(o) = v.server_idle_close {
                t.observe(o.idle.as_millis_f64());
            }
            for f in v
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::IdleRace)
            {
                t.races += 1;
                t.races_not_idempotent += f.request.as_ref().is_some_and(|q| !q.idempotent) as u64;
            }
        }
        for f in v.findings {
            sink.finding(&f);
            *self.by_kind.entry(f.kind).or_default() += 1;
            let info = f.severity == Severity::Info;
            if self.findings.len() < MAX_FINDINGS && (!info || self.info_kept < MAX_INFO_FINDINGS) {
                self.info_kept += info as usize;
                self.findings.push(f);
            } else {
                self.findings_dropped += 1;
            }
        }
        v.record
    }

    /// Compares each race's idle time with the server's idle-timeout estimate so far (this
    /// connection not counted). A RST with no FIN right after a request is the idle race only
    /// if it came at that timeout: once the server has shown it (three idle closes or more),
    /// a reset at another idle time is a plain reset in flight.
    fn confirm_rst_races(&mut self, v: &mut verdict::Verdict) {
        for f in &mut v.findings {
            if f.kind != FindingKind::IdleRace {
                continue;
            }
            let Some(e) = self
                .servers
                .get_mut(&f.server)
                .and_then(|t| t.estimate_so_far())
            else {
                continue;
            };
            let Some(idle) = f.idle_ms else { continue };
            let matches = e.matches(idle);
            f.matches_server_timeout = Some(matches);
            if matches
                || e.observations < 3
                || !matches!(f.variant, Some("rst_no_fin" | "tls_unread"))
            {
                continue;
            }
            f.kind = FindingKind::ResetInFlight;
            f.severity = f.kind.severity();
            f.variant = None;
            f.sentence = format!(
                "The server reset the connection right after {} was sent, after {} ms idle, which is not this server's idle timeout (~{} ms); the request may or may not have been applied.",
                f.request.as_ref().map_or("a request".to_string(), |r| format!("{} {}", r.method, r.target)),
                idle.round(),
                e.median_ms.round()
            );
            v.server_idle_close = None;
        }
        v.record.findings = v.findings.iter().map(|f| f.kind).collect();
    }

    /// Settles the estimates and the findings that depend on them.
    pub fn finish(mut self) -> Diagnosis {
        self.findings
            .sort_by(|a, b| a.time.cmp(&b.time).then(a.connection.cmp(&b.connection)));
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
            servers,
            connections: self.counts,
        }
    }
}
