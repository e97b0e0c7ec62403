//! The verdict on one finished connection: its record, its findings, and the idle times at
//! which its server closed it (observations for the idle-timeout estimate).
//!
//! The rules, in order (the first RST decides the reset kind; see
//! `docs/wire-signatures.md` in the shared notes for the packet shapes):
//! 1. `refused`: the server's first answer to the SYN was a RST.
//! 2. `idle_race`: the first request left unanswered went onto a reused connection (an
//!    earlier exchange had finished) and the server was closing it: its FIN was on the wire
//!    before the request or crossed it (the FIN does not acknowledge the request), or it
//!    answered with RST|ACK and no FIN right after the request (close() with the request
//!    unread), the connection having been idle. The RST variant is confirmed against the
//!    server's idle-timeout estimate so far when the connection is judged (see
//!    [`super::Diagnoser`]).
//! 3. `reset_in_flight`: a request was outstanding at the first RST.
//! 4. `reset_after_close`: the side that reset had sent its FIN, and the peer's data came
//!    after it.
//! 5. `abort`: any other RST.
//! 6. `idle_close`: the first close was a FIN after at least one finished HTTP exchange (or
//!    TLS data), at least 10 ms after it, with nothing in flight and no `Connection: close`
//!    announced.

use super::finding::{Finding, FindingKind, RequestRef};
use super::record::{
    ConnectionRecord, FirstClose, Outcome, PerSide, RequestRecord, StreamCounters,
};
use crate::app::http::Request;
use crate::app::Mark;
use crate::flows::{CloseEvent, CloseKind, Connection, Release, Side};
use crate::time::Nanos;

/// A FIN sooner than this after the last exchange closed the connection because of that
/// exchange (HTTP/1.0, a request limit, an application decision), not because an idle timer
/// ran out: it is no idle close and tells nothing of the idle timeout.
const MIN_IDLE: Nanos = Nanos(10_000_000);

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
}

/// True if `a` was captured before `b` (frame order within a file, time across files).
pub fn before(a: Mark, b: Mark) -> bool {
    if a.frame.file == b.frame.file {
        a.frame.number < b.frame.number
    } else {
        a.ts < b.ts
    }
}

fn ms(n: Nanos) -> f64 {
    (n.as_millis_f64() * 1000.0).round() / 1000.0
}

/// Judges a finished connection.
pub fn judge(c: &Connection, released: Release) -> Verdict {
    let requests: &[Request] = c.app.http().map(|h| h.requests.as_slice()).unwrap_or(&[]);
    let first_rst = c.closes.iter().find(|e| e.kind.is_rst()).copied();
    let server_fin = c
        .closes
        .iter()
        .find(|e| e.side == Side::Server && e.kind == CloseKind::Fin)
        .copied();
    let records: Vec<RequestRecord> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| request_record(i, r, c, first_rst))
        .collect();

    let mut findings = Vec::new();
    let mut server_idle_close = None;
    let base = FindingBase { c };

    if let Some(rst) = first_rst.filter(|r| r.kind == CloseKind::RstRefusal) {
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
    } else if let Some(rst) = first_rst {
        findings.push(reset_finding(c, requests, rst));
    }
    // A graceful idle close is worth its own (informational) finding even when a reset
    // followed it, and it is always an observation of the server's idle timeout.
    if server_idle_close.is_none() || findings.is_empty() {
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
    let idle_before_close_ms = match (c.first_close(), c.last_data_before_close) {
        (Some(e), Some(d)) => Some(ms(e.mark.ts.since(d.ts))),
        _ => None,
    };
    let (d0, d1) = (&c.dirs[0], &c.dirs[1]);
    let http = c.app.http();
    let record = ConnectionRecord {
        id: c.id,
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
        requests: records,
        stream: StreamCounters {
            retransmissions: d0.stream.stats.retransmissions + d1.stream.stats.retransmissions,
            out_of_order: d0.stream.stats.out_of_order + d1.stream.stats.out_of_order,
            gaps: d0.stream.stats.gaps + d1.stream.stats.gaps,
            gap_bytes: d0.stream.stats.gap_bytes + d1.stream.stats.gap_bytes,
            cut_bytes: d0.stream.stats.cut_bytes + d1.stream.stats.cut_bytes,
            keepalives: d0.keepalives + d1.keepalives,
            zero_windows: d0.zero_windows + d1.zero_windows,
            http_desyncs: http.map_or(0, |h| h.desyncs),
        },
        findings: findings.iter().map(|f| f.kind).collect(),
    };
    let mut announced_timeouts: Vec<u32> = requests
        .iter()
        .filter_map(|r| r.response.as_ref()?.keep_alive_timeout)
        .collect();
    announced_timeouts.dedup();
    Verdict {
        record,
        findings,
        server_idle_close,
        announced_timeouts,
    }
}

fn request_record(
    i: usize,
    r: &Request,
    c: &Connection,
    first_rst: Option<CloseEvent>,
) -> RequestRecord {
    let resp = r.response.as_ref();
    let complete = resp.is_some_and(|x| x.end.is_some());
    let reset_after = first_rst.is_some_and(|e| before(r.start, e.mark));
    let outcome = match resp {
        Some(x) if x.end.is_some() || !reset_after => Outcome::Answered,
        _ if reset_after => Outcome::Reset,
        _ if c
            .closes
            .iter()
            .any(|e| before(r.start, e.mark) || e.side == Side::Server) =>
        {
            Outcome::Unanswered
        }
        _ => Outcome::Pending,
    };
    RequestRecord {
        index: i + 1,
        method: r.method.to_string(),
        target: r.target.to_string(),
        frame: r.start.frame,
        time: r.start.ts,
        idempotent: r.idempotent(),
        idempotency_key: r.idempotency_key,
        outcome,
        status: resp.map(|x| x.status),
        response_frame: resp.map(|x| x.start.frame),
        response_time: resp.map(|x| x.start.ts),
        response_complete: complete,
    }
}

fn request_ref(i: usize, r: &Request) -> RequestRef {
    RequestRef {
        method: r.method.to_string(),
        target: r.target.to_string(),
        frame: r.start.frame,
        time: r.start.ts,
        idempotent: r.idempotent(),
        idempotency_key: r.idempotency_key,
        index: i + 1,
    }
}

struct FindingBase<'a> {
    c: &'a Connection,
}

impl FindingBase<'_> {
    fn make(
        &self,
        kind: FindingKind,
        close: CloseEvent,
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
            client: self.c.client,
            server: self.c.server,
            time: close.mark.ts,
            by: close.side,
            frames,
            close_frame: close.mark.frame,
            request,
            idle_ms: None,
            fin_to_request_ms: None,
            variant: None,
            written_after_close: None,
            client_had_fin: None,
            matches_server_timeout: None,
            retry_safe: None,
            sentence,
        }
    }
}

/// End of the last finished exchange before request `k` (its response's last byte).
fn previous_exchange_end(requests: &[Request], k: usize) -> Option<Mark> {
    requests[..k]
        .iter()
        .filter_map(|r| r.response.as_ref()?.end)
        .max_by(|a, b| {
            if before(*a, *b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
}

/// The idle-race rule. Returns the finding and the server's idle observation.
fn race(
    c: &Connection,
    requests: &[Request],
    first_rst: Option<CloseEvent>,
    server_fin: Option<CloseEvent>,
) -> Option<(Finding, Option<IdleObservation>)> {
    if let Some(t) = c.app.tls() {
        return tls_race(c, t, first_rst, server_fin);
    }
    // The first request with no complete response, on a reused connection.
    let k = requests.iter().position(|r| {
        r.response
            .as_ref()
            .is_none_or(|x| x.end.is_none() && x.status >= 100)
    })?;
    let r = &requests[k];
    if r.response.is_some() || k == 0 {
        return None;
    }
    let prev_end = previous_exchange_end(requests, k)?;
    if !before(prev_end, r.start) && prev_end != r.start {
        return None;
    }
    let idle = r.start.ts.since(prev_end.ts);
    let base = FindingBase { c };
    let req = request_ref(k, r);
    // A FIN from the server that came before the request, or crossed it: the FIN does not
    // acknowledge the request's first byte, so the server sent it before the request arrived.
    let fin_variant = server_fin.filter(|fin| {
        let fin_first = before(fin.mark, r.start);
        let crossed = fin
            .ack
            .is_some_and(|a| crate::flows::seq::SeqNumber(a) <= r.seq);
        fin_first || crossed
    });
    if let Some(fin) = fin_variant {
        let gap = r.start.ts.since(fin.mark.ts);
        let written_after = before(fin.mark, r.start);
        let mut frames = vec![prev_end.frame, fin.mark.frame, r.start.frame];
        let rst = first_rst.filter(|e| e.side == Side::Server && before(r.start, e.mark));
        if let Some(rst) = rst {
            frames.push(rst.mark.frame);
        }
        let server_idle = fin.mark.ts.since(prev_end.ts);
        let variant = if rst.is_some() {
            "fin_then_rst"
        } else {
            "fin_no_response"
        };
        let outcome = if rst.is_some() {
            "was answered by RST"
        } else {
            "got no response"
        };
        // Did the client's kernel have the FIN when the request was written? Its ACK says.
        let fin_seq = c.dirs[Side::Server as usize].fin_seq;
        let client_had_fin = match (r.ack, fin_seq) {
            (Some(ack), Some(fin)) => Some(ack > fin),
            _ => None,
        };
        let how = match (client_had_fin, written_after) {
            (Some(true), _) => format!(
                "was written {gap} after the server's FIN had reached the client (the request acknowledges it): the client reused a connection it could have known was closing"
            ),
            (_, true) => format!(
                "crossed the server's FIN in flight (captured {gap} after the FIN, but it does not acknowledge it)"
            ),
            (_, false) => format!(
                "crossed the server's FIN in flight (captured {} before the FIN, which does not acknowledge it)",
                Nanos(-gap.0)
            ),
        };
        let mut f = base.make(
            FindingKind::IdleRace,
            fin,
            frames,
            Some(req.clone()),
            format!(
                "{} {} {how}, after {} idle, and {outcome}; {}",
                req.method,
                short(&req.target),
                idle,
                retry_advice(&req)
            ),
        );
        f.client_had_fin = client_had_fin;
        f.time = r.start.ts;
        f.idle_ms = Some(ms(idle));
        f.fin_to_request_ms = Some(ms(gap));
        f.variant = Some(variant);
        f.written_after_close = Some(written_after);
        f.retry_safe = Some(req.idempotent);
        return Some((f, Some(IdleObservation { idle: server_idle })));
    }
    // RST|ACK from the server, no FIN, right after the request: the server's close() found
    // the request unread.
    let rst = first_rst.filter(|e| {
        e.side == Side::Server
            && e.kind == CloseKind::RstAbort
            && before(r.start, e.mark)
            && server_fin.is_none_or(|fin| before(e.mark, fin.mark))
    })?;
    let delay = rst.mark.ts.since(r.start.ts);
    if delay > Nanos(200_000_000) || idle <= Nanos(0) {
        return None;
    }
    let mut f = base.make(
        FindingKind::IdleRace,
        rst,
        vec![prev_end.frame, r.start.frame, rst.mark.frame],
        Some(req.clone()),
        format!(
            "{} {} was sent on a connection idle for {}, and the server reset it {} later without a FIN: it closed the idle connection with the request unread; {}",
            req.method,
            short(&req.target),
            idle,
            delay,
            retry_advice(&req)
        ),
    );
    f.time = r.start.ts;
    f.idle_ms = Some(ms(idle));
    f.variant = Some("rst_no_fin");
    f.written_after_close = Some(false);
    f.retry_safe = Some(req.idempotent);
    Some((
        f,
        Some(IdleObservation {
            idle: rst.mark.ts.since(prev_end.ts),
        }),
    ))
}

/// The race over TLS: the server's alert (encrypted close_notify) after an idle gap, the
/// The race over TLS, where requests cannot be read but exchanges can be followed: after at
/// least one answered request and an idle gap, a request got no answer because the server
/// was closing. Either it came after the server's close_notify or FIN (`tls_alert`), or it
/// arrived first and the server reset the connection right after, the request unread
/// (`tls_unread`, the TLS form of `rst_no_fin`).
fn tls_race(
    c: &Connection,
    t: &crate::app::tls::Tls,
    first_rst: Option<CloseEvent>,
    server_fin: Option<CloseEvent>,
) -> Option<(Finding, Option<IdleObservation>)> {
    let req = t.pending_request?;
    let prev = t.last_data[Side::Server as usize]?;
    if t.exchanges == 0 || !before(prev, req) {
        return None;
    }
    let idle = req.ts.since(prev.ts);
    if idle < MIN_IDLE {
        return None;
    }
    let rst = first_rst.filter(|e| e.side == Side::Server && before(req, e.mark));
    let fin = server_fin.filter(|f| before(prev, f.mark));
    // The server's first sign of closing after its last answer: close_notify, or FIN.
    let closing = [
        t.server_close_notify.filter(|n| before(prev, *n)),
        fin.map(|f| f.mark),
    ]
    .into_iter()
    .flatten()
    .min_by(|a, b| {
        if before(*a, *b) {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        }
    });
    // A close_notify that does not acknowledge the request was sent before the request
    // arrived, whatever the capture's order: the two crossed.
    let crossed = match (t.server_close_notify_ack, t.pending_request_seq) {
        (Some(ack), Some(seq)) => {
            t.server_close_notify.is_some_and(|n| before(prev, n)) && ack <= seq
        }
        _ => false,
    };
    let (variant, decided, close) = match closing {
        Some(cl) if before(cl, req) || crossed => ("tls_alert", cl, rst.or(fin)?),
        _ => {
            let rst = rst.filter(|r| r.mark.ts.since(req.ts) <= Nanos(200_000_000))?;
            ("tls_unread", closing.unwrap_or(rst.mark), rst)
        }
    };
    let request = RequestRef {
        method: "TLS".into(),
        target: "application data".into(),
        frame: req.frame,
        time: req.ts,
        idempotent: false,
        idempotency_key: false,
        index: t.exchanges as usize + 1,
    };
    let mut frames = vec![prev.frame, req.frame, close.mark.frame];
    if let Some(n) = t.server_close_notify {
        frames.push(n.frame);
    }
    let how = if variant == "tls_alert" && before(decided, req) {
        format!(
            "the server began closing (close_notify or FIN) after {} idle and the client wrote a request {} later",
            decided.ts.since(prev.ts),
            req.ts.since(decided.ts)
        )
    } else if variant == "tls_alert" {
        format!(
            "a request the client wrote after {} idle crossed the server's close_notify in flight (captured {} before it, which does not acknowledge it)",
            idle,
            Nanos(-req.ts.since(decided.ts).0)
        )
    } else {
        format!(
            "the client wrote a request after {} idle and the server reset the connection {} later without answering, closing it with the request unread",
            idle,
            close.mark.ts.since(req.ts)
        )
    };
    let mut f = FindingBase { c }.make(
        FindingKind::IdleRace,
        close,
        frames,
        Some(request),
        format!(
            "Over TLS, {how}; the request inside cannot be seen, so treat it as failed and retry it only if it is idempotent."
        ),
    );
    f.time = req.ts;
    f.idle_ms = Some(ms(idle));
    f.fin_to_request_ms = (variant == "tls_alert").then(|| ms(req.ts.since(decided.ts)));
    f.variant = Some(variant);
    f.written_after_close = Some(before(decided, req));
    f.retry_safe = Some(false);
    Some((
        f,
        Some(IdleObservation {
            idle: decided.ts.since(prev.ts),
        }),
    ))
}

/// A request target as quoted in a sentence: at most 80 characters.
fn short(target: &str) -> String {
    match target.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &target[..i]),
        None => target.to_string(),
    }
}

fn retry_advice(r: &RequestRef) -> String {
    if r.idempotency_key {
        format!(
            "{} carries an Idempotency-Key, so it can be retried safely.",
            r.method
        )
    } else if r.idempotent {
        format!("{} is idempotent, so a retry is safe.", r.method)
    } else {
        format!(
            "{} is not idempotent: nobody knows whether it was applied, so it must not be retried blindly (RFC 9110 §9.2.2).",
            r.method
        )
    }
}

/// RST rules 3–5.
fn reset_finding(c: &Connection, requests: &[Request], rst: CloseEvent) -> Finding {
    let base = FindingBase { c };
    let in_flight = requests.iter().enumerate().find(|(_, r)| {
        before(r.start, rst.mark)
            && r.response
                .as_ref()
                .is_none_or(|x| x.end.is_none_or(|e| before(rst.mark, e)))
    });
    let who = rst.side.name();
    if let Some((k, r)) = in_flight {
        let req = request_ref(k, r);
        let mut f = base.make(
            FindingKind::ResetInFlight,
            rst,
            vec![r.start.frame, rst.mark.frame],
            Some(req.clone()),
            format!(
                "The {who} reset the connection while {} {} was waiting for its response ({} after it was sent); it may or may not have been applied. {}",
                req.method,
                short(&req.target),
                rst.mark.ts.since(r.start.ts),
                retry_advice(&req)
            ),
        );
        f.retry_safe = Some(req.idempotent);
        return f;
    }
    let own_fin = c
        .closes
        .iter()
        .find(|e| e.side == rst.side && e.kind == CloseKind::Fin && before(e.mark, rst.mark));
    let peer_data_after = own_fin.and_then(|fin| {
        let peer = &c.dirs[rst.side.peer() as usize];
        peer.last_data.filter(|d| before(fin.mark, *d))
    });
    if let (Some(fin), Some(data)) = (own_fin, peer_data_after) {
        let peer = rst.side.peer().name();
        return base.make(
            FindingKind::ResetAfterClose,
            rst,
            vec![fin.mark.frame, data.frame, rst.mark.frame],
            None,
            format!(
                "The {who} had closed its side (FIN) and answered the {peer}'s later data with RST."
            ),
        );
    }
    let idle = c.last_data_before_close.map(|d| rst.mark.ts.since(d.ts));
    let mut f = base.make(
        FindingKind::Abort,
        rst,
        vec![rst.mark.frame],
        None,
        match idle {
            Some(idle) => format!(
                "The {who} aborted the connection with RST after {idle} idle, with no request in flight (SO_LINGER 0, close with unread data, or an application abort); no request was lost to it."
            ),
            None => format!("The {who} aborted the connection with RST, with no request in flight; no request was lost to it."),
        },
    );
    f.idle_ms = idle.map(ms);
    f
}

/// Rule 6.
fn idle_close(c: &Connection, requests: &[Request]) -> Option<(Finding, Option<IdleObservation>)> {
    let first = *c.first_close()?;
    if first.kind != CloseKind::Fin {
        return None;
    }
    let last_end = if let Some(t) = c.app.tls() {
        if t.exchanges == 0 || t.pending_request.is_some() {
            return None;
        }
        t.last_data()
    } else {
        if requests.is_empty() {
            return None;
        }
        let done: Vec<&Request> = requests
            .iter()
            .filter(|r| before(r.start, first.mark))
            .collect();
        let last = done.last()?;
        let resp = last.response.as_ref()?;
        let end = resp.end?;
        if resp.connection_close || last.connection_close {
            return None;
        }
        Some(end)
    }?;
    if !before(last_end, first.mark) {
        return None;
    }
    let idle = first.mark.ts.since(last_end.ts);
    if idle < MIN_IDLE {
        // Closed as the exchange ended (no idle timer ran): not an idle close.
        return None;
    }
    let who = first.side.name();
    let mut f = FindingBase { c }.make(
        FindingKind::IdleClose,
        first,
        vec![last_end.frame, first.mark.frame],
        None,
        format!("The {who} closed the keep-alive connection (FIN) after {idle} idle."),
    );
    f.idle_ms = Some(ms(idle));
    let obs = (first.side == Side::Server).then_some(IdleObservation { idle });
    Some((f, obs))
}
