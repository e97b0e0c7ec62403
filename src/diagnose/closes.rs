//! Resets that were not races (rules 3–5 of [`super::verdict`]: a reset with a request in
//! flight, a reset after that side had closed, an abort) and graceful idle closes (rule 6).

use super::finding::{Finding, FindingKind};
use super::race::{retry_advice, short};
use super::verdict::{before, ms, request_ref, FindingBase, IdleObservation, MIN_IDLE};
use crate::app::http::Request;
use crate::flows::{CloseEvent, CloseKind, Connection, Side};

/// RST rules 3–5.
pub(super) fn reset_finding(c: &Connection, requests: &[Request], rst: CloseEvent) -> Finding {
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
pub(super) fn idle_close(
    c: &Connection,
    requests: &[Request],
) -> Option<(Finding, Option<IdleObservation>)> {
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
