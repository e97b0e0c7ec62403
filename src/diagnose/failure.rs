//! What became of each request, and the finding for the first one that failed when it was
//! not an idle race (rule 4 of [`super::verdict`]):
//! - `reset_mid_response`: the response had begun when a RST ended the connection. The
//!   request was processed; the finding says who reset, how much of the response had arrived
//!   against what it announced, and how long the transfer had stalled.
//! - `reset_in_flight`: no response had begun when a RST ended the connection.
//! - `closed_without_response`: a FIN ended it with no (or an incomplete) response: the
//!   server closed after reading it (HAProxy's silent close of a reused connection, a
//!   server that drops it), the request was written after the server's FIN, or the client
//!   gave up waiting.
//!
//! Over TLS the same rules apply to the request built from the records (see
//! [`crate::app::tls`]), whose method cannot be seen.

use super::finding::{Finding, FindingKind, RequestRef};
use super::race::short;
use super::record::Outcome;
use super::retry::{advice, Processed};
use super::verdict::{before, ms, request_ref, FindingBase};
use crate::app::http::Request;
use crate::app::tls::Tls;
use crate::app::Mark;
use crate::flows::{CloseEvent, CloseKind, Connection, Release, Side};
use crate::report::words;
use crate::time::Nanos;

/// A client that closes sooner than this after its request did not wait for an answer (it
/// closed as it wrote), so it did not give up waiting.
const GAVE_UP_AFTER: Nanos = Nanos(1_000_000_000);

/// The first RST after `mark` (a RST before it, say one that ended a half-open attempt on
/// the same 4-tuple, did not end this request's wait).
fn rst_after(c: &Connection, mark: Mark, first_rst: Option<CloseEvent>) -> Option<CloseEvent> {
    first_rst?;
    c.closes
        .iter()
        .find(|e| {
            e.kind.is_rst()
                && before(mark, e.mark)
                && !(c.reopened && e.kind == CloseKind::RstRefusal)
        })
        .copied()
}

/// The first FIN of `side` after `mark`, if any.
fn fin_after(c: &Connection, side: Side, mark: Mark) -> Option<CloseEvent> {
    c.closes
        .iter()
        .find(|e| e.side == side && e.kind == CloseKind::Fin && before(mark, e.mark))
        .copied()
}

/// The first FIN of `side`, if any.
fn first_fin(c: &Connection, side: Side) -> Option<CloseEvent> {
    c.closes
        .iter()
        .find(|e| e.side == side && e.kind == CloseKind::Fin)
        .copied()
}

/// What became of request `r` on connection `c`.
pub(super) fn outcome(
    r: &Request,
    c: &Connection,
    first_rst: Option<CloseEvent>,
    released: Release,
) -> Outcome {
    // Whether a response came cannot be told with one direction missing from the capture.
    if c.dirs.iter().any(|d| d.packets == 0) {
        return Outcome::Pending;
    }
    let resp = r.response.as_ref();
    let rst_after = rst_after(c, r.start, first_rst);
    if let Some(x) = resp.filter(|x| x.end.is_some()) {
        // Complete on the wire; delivered only if the client acknowledged its last byte.
        let undelivered = rst_after.is_some()
            && x.end_seq
                .zip(c.dirs[Side::Client as usize].last_ack)
                .is_some_and(|(end, ack)| ack < end);
        return if undelivered {
            Outcome::ResetMidResponse
        } else {
            Outcome::Answered
        };
    }
    match (resp, rst_after) {
        (Some(_), Some(_)) => return Outcome::ResetMidResponse,
        (None, Some(_)) => return Outcome::Reset,
        _ => {}
    }
    let server_fin = first_fin(c, Side::Server);
    let client_gave_up = fin_after(c, Side::Client, r.start).is_some_and(|f| {
        f.mark.ts.since(r.start.ts) >= GAVE_UP_AFTER
            && (server_fin.is_some() || released != Release::EndOfCapture)
    });
    if server_fin.is_some() || client_gave_up {
        return if resp.is_some() {
            Outcome::Incomplete
        } else {
            Outcome::Unanswered
        };
    }
    Outcome::Pending
}

/// True if an earlier response on the connection announced `Connection: close`: the
/// server meant to read nothing after it (RFC 9112 §9.6), so request `k` was not processed.
pub(super) fn behind_close(requests: &[Request], k: usize) -> bool {
    requests[..k]
        .iter()
        .any(|q| q.response.as_ref().is_some_and(|x| x.connection_close))
}

/// Rule 4: the first failed request, when it was not an idle race.
pub(super) fn request_failure(
    c: &Connection,
    requests: &[Request],
    first_rst: Option<CloseEvent>,
    released: Release,
) -> Option<Finding> {
    // With one direction missing from the capture, whether a response came cannot be told.
    if c.dirs.iter().any(|d| d.packets == 0) {
        return None;
    }
    if let Some(t) = c.app.tls() {
        return tls_failure(c, t, first_rst, released);
    }
    let (k, r, result) = requests.iter().enumerate().find_map(|(k, r)| {
        let o = outcome(r, c, first_rst, released);
        o.failed().then_some((k, r, o))
    })?;
    let also = requests[k + 1..]
        .iter()
        .filter(|q| !matches!(outcome(q, c, first_rst, released), Outcome::Answered))
        .count() as u32;
    let req = request_ref(k, r);
    let base = FindingBase { c };
    let what = describe(&req);
    let not_processed = behind_close(requests, k);
    let processed = if not_processed {
        Processed::No("it was sent behind a response that announced Connection: close, after which the server reads nothing")
    } else {
        Processed::Unknown
    };
    let mut f = match result {
        Outcome::ResetMidResponse => {
            let rst = rst_after(c, r.start, first_rst)?;
            let resp = r.response.as_ref()?;
            let stall = rst.mark.ts.since(resp.last_byte.ts);
            let unacked = resp
                .end_seq
                .zip(c.dirs[Side::Client as usize].last_ack)
                .map(|(end, ack)| end.0.wrapping_sub(ack.0));
            let got = match resp.announced_len {
                Some(n) => format!(
                    "{} of the {} it announced",
                    words::count(resp.body_bytes),
                    words::plural(n, "body byte", "body bytes")
                ),
                None => words::plural(resp.body_bytes, "body byte", "body bytes"),
            };
            let sentence = match (resp.end, unacked) {
                (Some(_), Some(n)) => format!(
                    "The {} reset the connection {} after the server had sent the whole {} response to {what}, of which the client never acknowledged the last {} (it had stopped acknowledging: it vanished, or the path failed), so the response was not delivered. The server processed the request; {}",
                    rst.side.name(),
                    stall,
                    resp.status,
                    words::plural(n as u64, "byte", "bytes"),
                    advice(&req, Processed::Yes, true)
                ),
                _ => format!(
                    "The {} reset the connection while the {} response to {what} was arriving: {got} had come, the last of them {stall} before the reset; {}. The server processed the request (it answered); {}",
                    rst.side.name(),
                    resp.status,
                    match rst.side {
                        Side::Client => "the client gave up on it (a read timeout or a cancel; closing a socket with data unread, or with SO_LINGER 0, resets it)",
                        Side::Server => "the server aborted it mid-transfer",
                    },
                    advice(&req, Processed::Yes, true)
                ),
            };
            let mut f = base.make(
                FindingKind::ResetMidResponse,
                rst,
                vec![
                    r.start.frame,
                    resp.start.frame,
                    resp.last_byte.frame,
                    rst.mark.frame,
                ],
                Some(req.clone()),
                sentence,
            );
            f.response_bytes = Some(resp.body_bytes);
            f.response_announced = resp.announced_len;
            f.stall_ms = Some(ms(stall));
            f.processed = Some(true);
            f.retry_safe = Some(req.idempotent);
            f
        }
        Outcome::Reset => {
            let rst = rst_after(c, r.start, first_rst)?;
            let last_server = c.dirs[Side::Server as usize]
                .last_data
                .filter(|d| before(r.start, *d));
            let stall = rst.mark.ts.since(last_server.unwrap_or(r.start).ts);
            let mut f = base.make(
                FindingKind::ResetInFlight,
                rst,
                vec![r.start.frame, rst.mark.frame],
                Some(req.clone()),
                format!(
                    "The {} reset the connection while {what} was waiting for its response ({} after it was sent), before any response began; {}",
                    rst.side.name(),
                    rst.mark.ts.since(r.start.ts),
                    advice(&req, processed, true)
                ),
            );
            f.stall_ms = Some(ms(stall));
            f
        }
        Outcome::Unanswered | Outcome::Incomplete => closed_without_response(
            c,
            &base,
            &req,
            (r.start, r.seq),
            r.response.as_ref().map(|x| x.start),
            processed,
        )?,
        Outcome::Answered | Outcome::Pending => return None,
    };
    if f.processed.is_none() {
        f.processed = processed.known();
    }
    if f.retry_safe.is_none() {
        f.retry_safe = Some(processed.known() == Some(false) || req.idempotent);
    }
    f.also_unanswered = also;
    if also > 0 {
        f.sentence.push_str(&format!(
            " {also} more request{} pipelined behind it got no response either.",
            if also == 1 { "" } else { "s" }
        ));
    }
    Some(f)
}

/// A FIN ended the request's wait: who closed, and whether the request came after it.
fn closed_without_response(
    c: &Connection,
    base: &FindingBase<'_>,
    req: &RequestRef,
    (start, seq): (Mark, crate::flows::seq::SeqNumber),
    response: Option<Mark>,
    processed: Processed,
) -> Option<Finding> {
    let what = describe(req);
    let server_fin = first_fin(c, Side::Server);
    let client_fin = fin_after(c, Side::Client, start);
    let (fin, variant, how) = match (server_fin, client_fin) {
        (Some(fin), _) if before(fin.mark, start) => (
            fin,
            "after_close",
            format!(
                "{what} was written {} after the server had closed the connection (FIN), and got no response",
                start.ts.since(fin.mark.ts)
            ),
        ),
        (Some(fin), cf) if cf.is_none_or(|cf| before(fin.mark, cf.mark)) => {
            let delay = fin.mark.ts.since(start.ts);
            let read = fin
                .ack
                .is_some_and(|a| crate::flows::seq::SeqNumber(a) > seq);
            match response {
                Some(_) => (
                    fin,
                    "incomplete_response",
                    format!("the server closed the connection (FIN) {delay} after {what}, before its response was complete"),
                ),
                None => (
                    fin,
                    "server_closed",
                    format!(
                        "the server closed the connection (FIN) {delay} after {what} without answering{}",
                        if read {
                            " (its FIN acknowledges the request: it had received it); a client sees EOF, `server closed idle connection` or RemoteDisconnected"
                        } else {
                            ""
                        }
                    ),
                ),
            }
        }
        (_, Some(cf)) if cf.mark.ts.since(start.ts) >= GAVE_UP_AFTER => (
            cf,
            "client_gave_up",
            format!(
                "the client closed the connection (FIN) {} after {what} with no complete response: it gave up waiting (a client timeout or cancel)",
                cf.mark.ts.since(start.ts)
            ),
        ),
        _ => return None,
    };
    let mut frames = vec![start.frame, fin.mark.frame];
    frames.extend(response.map(|m| m.frame));
    let mut f = base.make(
        FindingKind::ClosedWithoutResponse,
        fin,
        frames,
        Some(req.clone()),
        format!(
            "{}; {}",
            super::finding::capitalise(&how),
            advice(req, processed, true)
        ),
    );
    f.variant = Some(variant);
    f.written_after_close = Some(variant == "after_close");
    Some(f)
}

/// `POST /test`, or `a request over TLS` when the method cannot be seen.
pub(super) fn describe(req: &RequestRef) -> String {
    if &*req.method == "TLS" {
        "a request over TLS".to_string()
    } else {
        format!("{} {}", req.method, short(&req.target))
    }
}

/// The request a TLS finding is about: its method cannot be seen.
pub(super) fn tls_request(t: &Tls, r: &crate::app::tls::TlsRequest) -> RequestRef {
    RequestRef {
        method: "TLS".into(),
        // The host the client asked for is what a ticket reader recognises.
        target: t
            .hello
            .sni
            .as_deref()
            .map_or_else(|| "application data".into(), Into::into),
        frame: r.start.frame,
        time: r.start.ts,
        idempotent: false,
        idempotency_key: false,
        index: t.exchanges as usize + 1,
        malformed: None,
    }
}

/// Rule 4 over TLS: the request built from the records got no answer.
fn tls_failure(
    c: &Connection,
    t: &Tls,
    first_rst: Option<CloseEvent>,
    released: Release,
) -> Option<Finding> {
    if super::race::h2_over_tls(t) {
        return None;
    }
    let r = t.unanswered()?;
    let req = tls_request(t, r);
    let base = FindingBase { c };
    if let Some(rst) = first_rst.filter(|e| before(r.start, e.mark)) {
        let mut f = base.make(
            FindingKind::ResetInFlight,
            rst,
            vec![r.start.frame, rst.mark.frame],
            Some(req.clone()),
            format!(
                "The {} reset the connection {} after the client wrote a request over TLS that got no answer; {}",
                rst.side.name(),
                rst.mark.ts.since(r.start.ts),
                advice(&req, Processed::Unknown, false)
            ),
        );
        f.retry_safe = None;
        return Some(f);
    }
    // A close_notify marks the close as well as a FIN.
    let server_closing = [
        t.close_notify[Side::Server as usize].map(|n| n.0),
        first_fin(c, Side::Server).map(|f| f.mark),
    ]
    .into_iter()
    .flatten()
    .min_by(super::verdict::capture_order);
    let server_fin = first_fin(c, Side::Server);
    let client_fin = fin_after(c, Side::Client, r.start);
    if server_fin.is_none() && (client_fin.is_none() || released == Release::EndOfCapture) {
        return None;
    }
    let mut f =
        closed_without_response(c, &base, &req, (r.start, r.seq), None, Processed::Unknown)?;
    if let (Some(closing), Some("after_close")) = (server_closing, f.variant) {
        f.sentence = format!(
            "A request over TLS was written {} after the server began closing (close_notify or FIN) and got no answer; {}",
            r.start.ts.since(closing.ts),
            advice(&req, Processed::Unknown, false)
        );
    }
    f.retry_safe = None;
    Some(f)
}
