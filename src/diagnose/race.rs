//! The keep-alive idle race: a request written onto a reused connection the server was
//! closing (rule 2 of [`super::verdict`]), over plain HTTP and over TLS.

use super::failure::{behind_close, tls_request};
use super::finding::{Finding, FindingKind};
use super::retry::{advice, Processed};
use super::verdict::{
    before, capture_order, ms, request_ref, FindingBase, IdleObservation, MIN_IDLE,
};
use crate::app::http::Request;
use crate::app::Mark;
use crate::flows::seq::SeqNumber;
use crate::flows::{CloseEvent, CloseKind, Connection, Side};
use crate::time::Nanos;

/// End of the last finished exchange before request `k` (its response's last byte).
fn previous_exchange_end(requests: &[Request], k: usize) -> Option<Mark> {
    requests[..k]
        .iter()
        .filter_map(|r| r.response.as_ref()?.end)
        .max_by(capture_order)
}

/// The idle-race rule. Returns the finding and the server's idle observation.
pub(super) fn race(
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
    // The first request of a connection is no reuse; one behind a `Connection: close`
    // response was not meant to be read (no idle timer was involved).
    if r.response.is_some() || k == 0 || behind_close(requests, k) {
        return None;
    }
    let prev_end = previous_exchange_end(requests, k)?;
    if !before(prev_end, r.start) && prev_end != r.start {
        return None;
    }
    let idle = r.start.ts.since(prev_end.ts);
    if idle < MIN_IDLE {
        return None;
    }
    let base = FindingBase { c };
    let req = request_ref(k, r);
    // A FIN from the server that came before the request, or crossed it: the FIN does not
    // acknowledge the request's first byte, so the server sent it before the request arrived.
    let fin_variant = server_fin.filter(|fin| {
        // The server's idle timer, not the exchange, closed it.
        if fin.mark.ts.since(prev_end.ts) < MIN_IDLE {
            return false;
        }
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
                "was written after the server's FIN had reached the client (the request acknowledges it; captured {gap} after the FIN): the client reused a connection it could have known was closing"
            ),
            (_, true) => format!(
                "crossed the server's FIN in flight (captured {gap} after the FIN, but it does not acknowledge it)"
            ),
            (_, false) => format!(
                "crossed the server's FIN in flight (captured {} before the FIN, which does not acknowledge it)",
                Nanos(-gap.0)
            ),
        };
        // A bare RST after the server's FIN comes from a socket already closed: no
        // application read the request.
        let processed = if rst.is_some_and(|e| e.kind == CloseKind::RstAnswer) {
            Processed::No(
                "the server had closed its socket: its kernel answered the request with a bare RST",
            )
        } else {
            Processed::Unknown
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
                advice(&req, processed, true)
            ),
        );
        f.processed = processed.known();
        f.client_had_fin = client_had_fin;
        f.time = r.start.ts;
        f.idle_ms = Some(ms(idle));
        f.fin_to_request_ms = Some(ms(gap));
        f.variant = Some(variant);
        f.written_after_close = Some(written_after);
        f.retry_safe = Some(processed.known() == Some(false) || req.idempotent);
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
    if delay > Nanos(200_000_000) {
        return None;
    }
    let mut f = base.make(
        FindingKind::IdleRace,
        rst,
        vec![prev_end.frame, r.start.frame, rst.mark.frame],
        Some(req.clone()),
        format!(
            "{} {} was sent on a connection idle for {}, and the server reset it {} later without a FIN: it closed the idle connection, most likely with the request unread (close() with unread data resets); {}",
            req.method,
            short(&req.target),
            idle,
            delay,
            advice(&req, Processed::Unknown, true)
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

/// True when the connection speaks HTTP/2 over TLS (ALPN `h2` selected, or the only
/// protocol offered): its records are frames of many streams, not one request each, so
/// requests cannot be told from them and are not judged.
pub(super) fn h2_over_tls(t: &crate::app::tls::Tls) -> bool {
    let h = &t.hello;
    h.alpn_selected.as_deref() == Some("h2")
        || (h.alpn_selected.is_none() && h.alpn_offered.len() == 1 && h.alpn_offered[0] == "h2")
}

/// The race over TLS, where requests cannot be read but exchanges can be followed (see
/// [`crate::app::tls`]): after at least one answered request and an idle gap, a request got
/// no answer because the server was closing. Either it came after the server's
/// close_notify or FIN, or crossed it (`tls_alert`), or it arrived first and the server
/// reset the connection right after, the request unread (`tls_unread`, the TLS form of
/// `rst_no_fin`).
fn tls_race(
    c: &Connection,
    t: &crate::app::tls::Tls,
    first_rst: Option<CloseEvent>,
    server_fin: Option<CloseEvent>,
) -> Option<(Finding, Option<IdleObservation>)> {
    if h2_over_tls(t) {
        return None;
    }
    let r = t.unanswered()?;
    let req = r.start;
    let prev = t.previous_exchange_end()?;
    if t.exchanges == 0 || !before(prev, req) {
        return None;
    }
    let idle = req.ts.since(prev.ts);
    if idle < MIN_IDLE {
        return None;
    }
    let rst = first_rst.filter(|e| e.side == Side::Server && before(req, e.mark));
    let fin = server_fin.filter(|f| before(prev, f.mark));
    let notify = t.close_notify[Side::Server as usize].filter(|n| before(prev, n.0));
    // The client's own close before the request means the client was closing, not the
    // server.
    let client_closed_first =
        t.close_notify[Side::Client as usize].is_some_and(|n| before(n.0, req));
    if client_closed_first {
        return None;
    }
    // The server's first sign of closing after its last answer: close_notify, or FIN.
    let closing = [notify.map(|n| n.0), fin.map(|f| f.mark)]
        .into_iter()
        .flatten()
        .min_by(capture_order);
    // A close_notify or FIN that does not acknowledge the request was sent before the
    // request arrived, whatever the capture's order: the two crossed.
    let crossed = [
        notify.and_then(|n| n.1),
        fin.and_then(|f| f.ack.map(SeqNumber)),
    ]
    .into_iter()
    .flatten()
    .any(|ack| ack <= r.seq);
    let (variant, decided, close) = match closing {
        Some(cl) if cl.ts.since(prev.ts) >= MIN_IDLE && (before(cl, req) || crossed) => {
            ("tls_alert", cl, rst.or(fin)?)
        }
        Some(cl) if cl.ts.since(prev.ts) < MIN_IDLE => return None,
        _ => {
            let rst = rst.filter(|r| r.mark.ts.since(req.ts) <= Nanos(200_000_000))?;
            ("tls_unread", closing.unwrap_or(rst.mark), rst)
        }
    };
    let request = tls_request(t, r);
    let mut frames = vec![prev.frame, req.frame, close.mark.frame];
    if let Some(n) = notify {
        frames.push(n.0.frame);
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
        Some(request.clone()),
        format!(
            "Over TLS, {how}; {}",
            advice(&request, Processed::Unknown, true)
        ),
    );
    f.time = req.ts;
    f.idle_ms = Some(ms(idle));
    f.fin_to_request_ms = (variant == "tls_alert").then(|| ms(req.ts.since(decided.ts)));
    f.variant = Some(variant);
    f.written_after_close = Some(before(decided, req));
    f.retry_safe = None;
    Some((
        f,
        Some(IdleObservation {
            idle: decided.ts.since(prev.ts),
        }),
    ))
}

/// A request target as quoted in a sentence: at most 80 characters.
pub(super) fn short(target: &str) -> String {
    match target.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &target[..i]),
        None => target.to_string(),
    }
}
