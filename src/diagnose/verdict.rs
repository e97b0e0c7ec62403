//! The verdict on one finished connection: its record, its findings, and the idle times at
//! which its server closed it (observations for the idle-timeout estimate).
//!
//! The rules, in order (see `docs/wire-signatures.md` in the shared notes for the packet
//! shapes). Every request left without a complete response has an outcome, and the first
//! one that failed gets the finding:
//! 1. `refused`: the server's first answer to the SYN was a RST (and no SYN-ACK followed).
//! 2. `connect_timeout`: SYNs the server never answered.
//! 3. `idle_race`: the first request left unanswered went onto a reused connection (an
//!    earlier exchange had finished) after an idle gap, and the server was closing it: its
//!    FIN (or TLS close_notify) was on the wire before the request or crossed it (the FIN
//!    does not acknowledge the request), or it answered with RST|ACK and no FIN right after
//!    the request (close() with the request unread). The RST variant is confirmed against
//!    the server's idle-timeout estimate so far when the connection is judged (see
//!    [`super::Diagnoser`]).
//! 4. Other failed requests (see `failure.rs`): `reset_mid_response` (the response had
//!    begun), `reset_in_flight` (it had not), `closed_without_response` (a FIN and no
//!    response).
//! 5. `reset_after_close`: the side that reset had sent its FIN, and the peer's data came
//!    after it.
//! 6. `lost_data`: data no request carried that the peer never acknowledged before the end.
//! 7. `abort`: any other RST.
//! 8. `idle_close`: the first close was a FIN (or close_notify) after at least one finished
//!    exchange, at least 10 ms after it, with nothing in flight and no `Connection: close`
//!    announced.

use super::closes::{connect_timeout, idle_close, reset_finding};
use super::failure::request_failure;
use super::finding::{Finding, FindingKind, RequestRef};
use super::race::race;
use super::record::{ConnectionRecord, FirstClose, PerSide, RequestRecord, StreamCounters};
use crate::app::http::Request;
use crate::app::Mark;
use crate::flows::{CloseEvent, CloseKind, Connection, Release, Side};
use crate::time::Nanos;

/// A FIN sooner than this after the last exchange closed the connection because of that
/// exchange (HTTP/1.0, a request limit, an application decision), not because an idle timer
/// ran out: it is no idle close and tells nothing of the idle timeout.
pub(super) const MIN_IDLE: Nanos = Nanos(10_000_000);

/// A server closed an idle connection after this long.
#[derive(Copy, Clone, Debug)]
pub struct IdleObservation {
    /// Idle time at the close.
    pub idle: Nanos,
}

/// Everything concluded about one connection.
pub struct Verdict {
    /// The record for reports.
    pub record: ConnectionRecord,
    /// Its findings.
    pub findings: Vec<Finding>,
    /// Idle times at which the server closed it (at most one).
    pub server_idle_close: Option<IdleObservation>,
    /// `Keep-Alive: timeout` values the server announced (seconds).
    pub announced_timeouts: Vec<u32>,
    /// Requests over TLS that got no answer because the connection ended (0 or 1).
    pub tls_failed: u32,
}

/// True if `a` was captured before `b` (frame order within a file, time across files).
pub fn before(a: Mark, b: Mark) -> bool {
    if a.frame.file == b.frame.file {
        a.frame.number < b.frame.number
    } else {
        a.ts < b.ts
    }
}

/// Orders marks in capture order (see [`before`]), for `max_by` and `min_by`.
pub fn capture_order(a: &Mark, b: &Mark) -> std::cmp::Ordering {
    if before(*a, *b) {
        std::cmp::Ordering::Less
    } else {
        std::cmp::Ordering::Greater
    }
}

pub(super) fn ms(n: Nanos) -> f64 {
    (n.as_millis_f64() * 1000.0).round() / 1000.0
}

/// Judges a finished connection.
pub fn judge(c: &Connection, released: Release) -> Verdict {
    let requests: &[Request] = c.app.http().map(|h| h.requests.as_slice()).unwrap_or(&[]);
    // A refusal that a retried SYN got past did not end the connection.
    let first_rst = c
        .closes
        .iter()
        .find(|e| e.kind.is_rst() && !(c.reopened && e.kind == CloseKind::RstRefusal))
        .copied();
    let server_fin = c
        .closes
        .iter()
        .find(|e| e.side == Side::Server && e.kind == CloseKind::Fin)
        .copied();
    // Answered requests the memory budget folded away still count in the positions.
    let folded = c.app.http().map_or(0, |h| h.folded);
    let records: Vec<RequestRecord> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| request_record(i + folded as usize, r, c, first_rst, released))
        .collect();

    let mut findings = Vec::new();
    let mut server_idle_close = None;
    let base = FindingBase { c };

    if let Some(h) = c.app.h2() {
        let (fs, obs) = super::h2::judge(c, h);
        findings.extend(fs);
        server_idle_close = obs;
        if findings.iter().all(|f| f.severity == super::Severity::Info) {
            if let Some(f) = first_rst.and_then(|rst| reset_finding(c, rst)) {
                findings.push(f);
            }
        }
    } else if let Some(f) = connect_timeout(c, released) {
        findings.push(f);
    } else if let Some(rst) = first_rst.filter(|r| r.kind == CloseKind::RstRefusal && !c.reopened) {
        findings.push(base.make(
            FindingKind::Refused,
            rst,
            vec![c.first.frame, rst.mark.frame],
            None,
            format!(
                "{} refused the connection from {}: its SYN was answered by RST (nothing listening, or a firewall rejecting).",
                c.server, c.client
            ),
        ));
    } else if let Some(f) = race(c, requests, first_rst, server_fin) {
        server_idle_close = f.1;
        findings.push(f.0);
    } else if let Some(f) = request_failure(c, requests, first_rst, released) {
        findings.push(f);
    } else if let Some(f) = first_rst.and_then(|rst| reset_finding(c, rst)) {
        findings.push(f);
    }
    // A graceful idle close is worth its own (informational) finding even when a reset
    // followed it, and it is always an observation of the server's idle timeout.
    if c.app.h2().is_none() && (server_idle_close.is_none() || findings.is_empty()) {
        if let Some((f, obs)) = idle_close(c, requests) {
            server_idle_close = server_idle_close.or(obs);
            findings.push(f);
        }
    }

    let first_close = c.first_close().map(|e| FirstClose {
        by: e.side,
        how: e.kind.short(),
        kind: e.kind,
        frame: e.mark.frame,
        time: e.mark.ts,
    });
    // Idle before the close: from the end of the last exchange that finished before it (the
    // response's last byte); without one (not HTTP, or nothing answered), from the last
    // payload either side sent.
    let idle_before_close_ms = c.first_close().and_then(|e| {
        let exchange_end = requests
            .iter()
            .filter_map(|r| r.response.as_ref()?.end)
            .filter(|end| before(*end, e.mark) || *end == e.mark)
            .max_by(capture_order);
        // A tunnel (CONNECT, Upgrade) carries data after its last exchange.
        let tunnel = c.app.http().is_some_and(|h| h.tunnel);
        let from = if tunnel {
            c.last_data_before_close.or(exchange_end)?
        } else {
            exchange_end.or(c.last_data_before_close)?
        };
        Some(ms(e.mark.ts.since(from.ts)))
    });
    let (d0, d1) = (&c.dirs[0], &c.dirs[1]);
    let http = c.app.http();
    let record = ConnectionRecord {
        id: c.id,
        community_id: crate::community_id::CommunityId(c.client, c.server),
        client: c.client,
        server: c.server,
        roles: c.roles,
        roles_inferred: c.roles.inferred(),
        protocol: c.app.name(),
        first_frame: c.first.frame,
        last_frame: c.last.frame,
        start: c.first.ts,
        end: c.last.ts,
        packets: PerSide {
            client: d0.packets,
            server: d1.packets,
        },
        payload_bytes: PerSide {
            client: d0.payload_bytes,
            server: d1.payload_bytes,
        },
        closed: c.is_closed(),
        released,
        first_close,
        closes: c.closes.clone(),
        closes_dropped: c.closes_dropped,
        idle_before_close_ms,
        app_note: app_note(c),
        http2: c.app.h2().map(|h| super::record::Http2Summary {
            streams: h.streams().len() as u64 + h.streams_dropped(),
            goaway: h.goaway().map(|g| {
                (
                    g.last_stream_id,
                    crate::app::h2::error_name(g.error_code),
                    g.mark.frame,
                )
            }),
            framing_lost: h.lost(),
        }),
        tls: c.app.tls().map(|t| t.hello.clone()),
        tls_requests: c.app.tls().map(|t| PerSide {
            client: t.requests,
            server: t.answered(),
        }),
        requests: records,
        requests_folded: folded,
        requests_dropped: c.app.http().map_or(0, |h| h.requests_dropped),
        stream: StreamCounters {
            retransmissions: d0.stream.stats.retransmissions + d1.stream.stats.retransmissions,
            out_of_order: d0.stream.stats.out_of_order + d1.stream.stats.out_of_order,
            gaps: d0.stream.stats.gaps + d1.stream.stats.gaps,
            gap_bytes: d0.stream.stats.gap_bytes + d1.stream.stats.gap_bytes,
            cut_bytes: d0.stream.stats.cut_bytes + d1.stream.stats.cut_bytes,
            keepalives: d0.keepalives + d1.keepalives,
            zero_windows: d0.zero_windows + d1.zero_windows,
            buffer_overflows: d0.stream.stats.overflows + d1.stream.stats.overflows,
            http_desyncs: http.map_or(0, |h| h.desyncs),
            duplicates: d0.duplicates + d1.duplicates,
        },
        findings: findings.iter().map(|f| f.kind).collect(),
    };
    let mut announced_timeouts: Vec<u32> = requests
        .iter()
        .filter_map(|r| r.response.as_ref()?.keep_alive_timeout)
        .collect();
    announced_timeouts.dedup();
    let tls_failed = c.app.tls().is_some_and(|t| {
        t.unanswered().is_some()
            && findings
                .iter()
                .any(|f| f.severity == super::Severity::Error)
    }) as u32;
    Verdict {
        record,
        findings,
        server_idle_close,
        announced_timeouts,
        tls_failed,
    }
}

/// Why the connection's application protocol was not followed, if it was not.
fn app_note(c: &Connection) -> Option<String> {
    use crate::app::App;
    match &c.app {
        App::Http(h) if h.not_http => Some(h.stopped.unwrap_or("not HTTP").to_string()),
        App::Http(h) if h.requests.is_empty() && c.dirs[0].payload_bytes > 0 => Some(
            "the client sent no request head that could be read (the capture may have started inside one)".to_string(),
        ),
        App::Tls(t) if super::race::h2_over_tls(t) => Some(
            "HTTP/2 over TLS (ALPN h2): its records carry frames of many streams, so requests cannot be told from them and were not judged".to_string(),
        ),
        App::Other => Some("not HTTP/1.x or TLS: the bytes were counted, not parsed".to_string()),
        _ => None,
    }
}

fn request_record(
    i: usize,
    r: &Request,
    c: &Connection,
    first_rst: Option<CloseEvent>,
    released: Release,
) -> RequestRecord {
    let resp = r.response.as_ref();
    RequestRecord {
        index: i + 1,
        method: r.method.clone(),
        target: r.target.clone(),
        frame: r.start.frame,
        time: r.start.ts,
        idempotent: r.idempotent(),
        idempotency_key: r.idempotency_key,
        malformed: r.malformed,
        outcome: super::failure::outcome(r, c, first_rst, released),
        status: resp.map(|x| x.status),
        response_frame: resp.map(|x| x.start.frame),
        response_time: resp.map(|x| x.start.ts),
        response_complete: resp.is_some_and(|x| x.end.is_some()),
        response_bytes: resp.map(|x| x.body_bytes),
        response_announced: resp.and_then(|x| x.announced_len),
    }
}

pub(super) fn request_ref(i: usize, r: &Request) -> RequestRef {
    RequestRef {
        method: r.method.clone(),
        target: r.target.clone(),
        frame: r.start.frame,
        time: r.start.ts,
        idempotent: r.idempotent(),
        idempotency_key: r.idempotency_key,
        index: i + 1,
        malformed: r.malformed,
    }
}

/// The TTL range of the claimed sender's other packets, when `close` is a RST whose TTL
/// falls outside it: a different hop distance, so most likely another device sent it
/// (Weaver, Sommer and Paxson, NDSS 2009). Two packets of the sender at least, or it
/// cannot be told.
pub(super) fn ttl_mismatch(c: &Connection, close: CloseEvent) -> Option<(u8, u8)> {
    let claimed = &c.dirs[close.side as usize];
    let (lo, hi) = claimed.ttl_range?;
    let others = claimed.packets.saturating_sub(1);
    (close.kind.is_rst() && others >= 2 && (close.ttl < lo || close.ttl > hi)).then_some((lo, hi))
}

pub(super) struct FindingBase<'a> {
    pub(super) c: &'a Connection,
}

impl FindingBase<'_> {
    /// A finding decided by `close` (a FIN or RST).
    pub(super) fn make(
        &self,
        kind: FindingKind,
        close: CloseEvent,
        frames: Vec<crate::source::FrameRef>,
        request: Option<RequestRef>,
        sentence: String,
    ) -> Finding {
        let mut f = self.make_at(
            kind,
            close.side,
            close.mark,
            close.kind.short(),
            frames,
            request,
            sentence,
        );
        if let Some((lo, hi)) = ttl_mismatch(self.c, close) {
            {
                f.rst_from_path = Some(true);
                f.path_silence_ms = self.c.silence_before_rst_trigger.map(ms);
                let side = close.side.name();
                f.sentence = f.sentence.replacen(
                    &format!("The {side} reset the connection"),
                    &format!("A RST claiming to come from the {side} ended the connection"),
                    1,
                );
                let seen = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                };
                // The IP ID as further evidence, where the sender's IDs count up.
                let ip_id = match self.c.dirs[close.side as usize].last_ip_id {
                    Some(last) if last != 0 && close.ip_id.wrapping_sub(last) > 64 => format!(
                        ", and its IP ID ({}) does not follow the {}'s ({} just before)",
                        close.ip_id,
                        close.side.name(),
                        last
                    ),
                    _ => String::new(),
                };
                f.sentence.push_str(&format!(
                    " The RST's TTL ({}) fits no other packet of the {} (TTL {seen}){ip_id}: it most likely came from a device on the path (a firewall, NAT or load balancer), not the {} itself.",
                    close.ttl,
                    close.side.name(),
                    close.side.name()
                ));
            }
        }
        f
    }

    /// A finding decided by the packet at `mark`, sent by `by`, of kind `how` (`FIN`,
    /// `RST`, `SYN`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_at(
        &self,
        kind: FindingKind,
        by: Side,
        mark: Mark,
        how: &'static str,
        mut frames: Vec<crate::source::FrameRef>,
        request: Option<RequestRef>,
        sentence: String,
    ) -> Finding {
        frames.sort();
        frames.dedup();
        Finding {
            kind,
            severity: kind.severity(),
            connection: self.c.id,
            span: (self.c.first, self.c.last),
            client: self.c.client,
            server: self.c.server,
            time: mark.ts,
            by,
            frames,
            close_frame: mark.frame,
            request,
            idle_ms: None,
            fin_to_request_ms: None,
            variant: None,
            written_after_close: None,
            client_had_fin: None,
            matches_server_timeout: None,
            retry_safe: None,
            processed: None,
            response_bytes: None,
            response_announced: None,
            stall_ms: None,
            also_unanswered: 0,
            rst_from_path: None,
            path_silence_ms: None,
            retried_by_proxy: None,
            server_name: self.c.app.tls().and_then(|t| t.hello.sni.clone()),
            kernel_reason: None,
            community_id: crate::community_id::CommunityId(self.c.client, self.c.server),
            close_how: how,
            sentence,
        }
    }
}
