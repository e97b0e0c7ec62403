//! The keep-alive idle race: a request written onto a reused connection the server was
//! closing (rule 2 of [`super::verdict`]), over plain HTTP and over TLS.

use super::finding::{Finding, FindingKind, RequestRef};
use super::verdict::{
    before, capture_order, ms, request_ref, FindingBase, IdleObservation, MIN_IDLE,
};
use crate::app::http::Request;
use crate::app::Mark;
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
    .min_by(capture_order);
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
pub(super) fn short(target: &str) -> String {
    match target.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &target[..i]),
        None => target.to_string(),
    }
}

pub(super) fn retry_advice(r: &RequestRef) -> String {
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
