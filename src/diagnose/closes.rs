//! Resets that no request explains (rules 5–7 of [`super::verdict`]: a reset after that
//! side had closed, data lost to a reset, an abort), SYNs never answered (rule 2), and
//! graceful idle closes (rule 8).

use super::finding::{Finding, FindingKind};
use super::verdict::{before, ms, FindingBase, IdleObservation, MIN_IDLE};
use crate::app::http::Request;
use crate::app::{App, Mark};
use crate::flows::{CloseEvent, CloseKind, Connection, PacketKind, Release, RoleSource, Side};
use crate::time::Nanos;

/// Whether the packets show that no request or data was lost when the connection ended:
/// `Some(true)`: nothing was in flight; `None`: it cannot be told (HTTP/2 over TLS, or an
/// unparsed protocol whose bytes were all acknowledged).
fn nothing_lost(c: &Connection) -> Option<bool> {
    match &c.app {
        App::Tls(t) if super::race::h2_over_tls(t) => None,
        App::Tls(t) => Some(t.unanswered().is_none()),
        App::Http(h) => Some(
            !h.requests
                .iter()
                .any(|r| r.response.as_ref().is_none_or(|x| x.end.is_none())),
        ),
        App::H2(h) => Some(
            h.streams()
                .iter()
                .all(|s| s.response_end.is_some() || s.reset.is_some()),
        ),
        App::Other => None,
        App::Unknown => Some(true),
    }
}

/// True when a RST only answered the peer's TLS close_notify, sent in reply to the
/// resetting side's own: the end of a graceful TLS close (TLS 1.3 clients answer a server's
/// close_notify with their own, and the server, already closed, resets). Nothing was lost.
fn answers_close_notify(c: &Connection, rst: CloseEvent) -> bool {
    let Some(t) = c.app.tls() else { return false };
    let (me, peer) = (rst.side as usize, rst.side.peer() as usize);
    match (t.close_notify[me], t.close_notify[peer]) {
        (Some(mine), Some(theirs)) => {
            before(mine.0, theirs.0)
                && t.unanswered().is_none()
                && c.dirs[peer].last_data == Some(theirs.0)
        }
        _ => false,
    }
}

/// A RST this soon after the peer's packet answers it; a later one answers nothing seen.
const ANSWER_WITHIN: Nanos = Nanos(1_000_000_000);

/// Unacknowledged this long before a reset, data was waited for: lost, not in flight.
const LOST_AFTER: Nanos = Nanos(200_000_000);

/// RST rules 5–7; `None` for the RST that ends a graceful TLS close (see
/// [`answers_close_notify`]).
pub(super) fn reset_finding(c: &Connection, rst: CloseEvent) -> Option<Finding> {
    if answers_close_notify(c, rst) {
        return None;
    }
    let base = FindingBase { c };
    let who = rst.side.name();
    let peer = rst.side.peer();
    let name = |m: Mark| super::finding::frame_name(m.frame);
    // Only one direction captured: what was in flight cannot be told.
    if let Some(silent) = [Side::Client, Side::Server]
        .into_iter()
        .find(|s| c.dirs[*s as usize].packets == 0)
    {
        return Some(base.make(
            FindingKind::Abort,
            rst,
            vec![rst.mark.frame],
            None,
            format!(
                "The {who} reset the connection; the capture holds no packet of the {}, so what was in flight cannot be told.",
                silent.name()
            ),
        ));
    }
    let own_fin = c
        .closes
        .iter()
        .find(|e| e.side == rst.side && e.kind == CloseKind::Fin && before(e.mark, rst.mark))
        .copied();
    let peer_fin = c
        .closes
        .iter()
        .find(|e| e.side == peer && e.kind == CloseKind::Fin && before(e.mark, rst.mark))
        .copied();
    // What the RST answered: the peer's last packet, if it came just before.
    let answered = c.dirs[peer as usize]
        .last_packet
        .filter(|(_, m)| before(*m, rst.mark) && rst.mark.ts.since(m.ts) < ANSWER_WITHIN);
    let peer_data_after = own_fin.and_then(|fin| {
        c.dirs[peer as usize]
            .last_data
            .filter(|d| before(fin.mark, *d))
    });
    if let (Some(fin), Some(data)) = (own_fin, peer_data_after) {
        let what = match &c.app {
            App::Tls(t)
                if t.close_notify[peer as usize].is_some_and(|n| !before(n.0, fin.mark)) =>
            {
                format!(
                    "the {}'s TLS close_notify, its answer to the close: no request was involved",
                    peer.name()
                )
            }
            _ => format!("the {}'s later data", peer.name()),
        };
        return Some(base.make(
            FindingKind::ResetAfterClose,
            rst,
            vec![fin.mark.frame, data.frame, rst.mark.frame],
            None,
            format!(
                "The {who} had closed its side (FIN {}) and answered {what} with RST.",
                name(fin.mark)
            ),
        ));
    }
    // Data of the peer that the resetting side never acknowledged (the RST's own ACK
    // counts): lost.
    let peer_dir = &c.dirs[peer as usize];
    let acked_by_rst = |end: Option<crate::flows::seq::SeqNumber>| {
        rst.ack
            .zip(end)
            .is_some_and(|(a, e)| crate::flows::seq::SeqNumber(a) >= e)
    };
    if let Some((_, at)) = peer_dir.unacked.filter(|(_, at)| {
        before(*at, rst.mark)
            && !acked_by_rst(peer_dir.sent_end)
            && (rst.kind == CloseKind::RstAnswer || rst.mark.ts.since(at.ts) >= LOST_AFTER)
    }) {
        let mut f = base.make(
            FindingKind::LostData,
            rst,
            vec![at.frame, rst.mark.frame],
            None,
            format!(
                "The {who} reset the connection {} after the {} sent data it never acknowledged (from {}): that data was lost{}.",
                rst.mark.ts.since(at.ts),
                peer.name(),
                name(at),
                match c.app {
                    App::Other => "; the protocol is not one resetscope reads, so what it carried cannot be told",
                    _ => "",
                }
            ),
        );
        f.idle_ms = Some(ms(rst.mark.ts.since(at.ts)));
        return Some(f);
    }
    // The resetting side's own data that the peer never acknowledged: it gave up on a peer
    // that had stopped answering.
    let own = &c.dirs[rst.side as usize];
    if let Some((from, at)) = own
        .unacked
        .filter(|(_, at)| rst.mark.ts.since(at.ts) >= LOST_AFTER)
    {
        let bytes = own.sent_end.map_or(0, |e| e.0.wrapping_sub(from.0));
        let mut f = base.make(
            FindingKind::LostData,
            rst,
            vec![at.frame, rst.mark.frame],
            None,
            format!(
                "The {who} reset the connection after {} it had sent (from {}) went unacknowledged for {}{}: the {} had stopped acknowledging (it vanished, or the path failed), and that data was never delivered.",
                crate::report::words::things(bytes as u64, "byte"),
                name(at),
                rst.mark.ts.since(at.ts),
                if own.retransmitted > 0 {
                    format!(
                        ", {} retransmitted",
                        crate::report::words::plural(own.retransmitted as u64, "segment", "segments")
                    )
                } else {
                    String::new()
                },
                peer.name()
            ),
        );
        f.idle_ms = Some(ms(rst.mark.ts.since(at.ts)));
        return Some(f);
    }
    let from_path = super::verdict::ttl_mismatch(c, rst).is_some();
    if from_path && answered.is_none() {
        let last = c.last_data_before_close.or(Some(c.first));
        let idle = last.map(|d| rst.mark.ts.since(d.ts));
        let mut f = base.make(
            FindingKind::Abort,
            rst,
            vec![rst.mark.frame],
            None,
            format!(
                "A RST claiming to come from the {who} arrived{}, answering no packet seen just before it; nothing was in flight.",
                idle.map(|i| format!(" {i} after the last data")).unwrap_or_default()
            ),
        );
        f.idle_ms = idle.map(ms);
        return Some(f);
    }
    if let (true, Some((kind, m))) = (from_path, answered) {
        // Not the endpoint's answer: say what it answered, claim nothing of the socket.
        let idle = c.last_data_before_close.map(|d| m.ts.since(d.ts));
        let mut f = base.make(
            FindingKind::Abort,
            rst,
            vec![m.frame, rst.mark.frame],
            None,
            format!(
                "A RST claiming to come from the {who} answered the {}'s {} ({}){}; nothing was in flight.",
                peer.name(),
                kind.name(),
                name(m),
                idle.map(|i| format!(" after {i} idle")).unwrap_or_default()
            ),
        );
        f.idle_ms = idle.map(ms);
        return Some(f);
    }
    // A bare RST answers a segment that reached no socket.
    if rst.kind == CloseKind::RstAnswer {
        if let Some((PacketKind::Syn, m)) = answered {
            return Some(base.make(
                FindingKind::Abort,
                rst,
                vec![m.frame, rst.mark.frame],
                None,
                format!(
                    "The {who} answered the {}'s SYN-ACK ({}) with a bare RST: the handshake was never completed (a half-open scan, or a {who} that had already given up); nothing was in flight.",
                    peer.name(),
                    name(m)
                ),
            ));
        }
        if let Some((kind, m)) = answered {
            let closed = match own_fin {
                Some(fin) => format!("had closed its side (FIN {})", name(fin.mark)),
                None => "no longer had a socket for this connection (closed without a FIN on the wire, or restarted)".to_string(),
            };
            return Some(base.make(
                FindingKind::ResetAfterClose,
                rst,
                vec![m.frame, rst.mark.frame],
                None,
                format!(
                    "The {who} {closed} and answered the {}'s {} ({}) with a bare RST; nothing was in flight.",
                    peer.name(),
                    kind.name(),
                    name(m)
                ),
            ));
        }
    }
    let idle = c.last_data_before_close.map(|d| rst.mark.ts.since(d.ts));
    let lost = match nothing_lost(c) {
        Some(true) => "; no request was lost to it",
        Some(false) => "",
        None if matches!(c.app, App::Tls(_)) => {
            "; this is HTTP/2 over TLS, where requests cannot be told from records, so whether one was in flight cannot be told"
        }
        None => "; every byte either side sent had been acknowledged",
    };
    let after_peer = match peer_fin {
        Some(fin) => format!(
            "The {} had closed its side (FIN {}); the {who} then reset the connection instead of closing gracefully",
            peer.name(),
            name(fin.mark)
        ),
        None => format!("The {who} aborted the connection with RST"),
    };
    let mut f = base.make(
        FindingKind::Abort,
        rst,
        vec![rst.mark.frame],
        None,
        match idle {
            Some(idle) => format!(
                "{after_peer} after {idle} idle, with nothing in flight (SO_LINGER 0, close with unread data, or an application abort){lost}."
            ),
            None => format!("{after_peer}, with nothing in flight{lost}."),
        },
    );
    f.idle_ms = idle.map(ms);
    Some(f)
}

/// Rule 2: SYNs the server never answered, retried by the client's kernel, given up by the
/// client (RST), or left unanswered until the connection was released for silence. A
/// SYN-ACK that came only after the client had given up (its kernel resets it) is part of
/// the same timeout; one answered at once and reset (a half-open scan) is not.
pub(super) fn connect_timeout(c: &Connection, released: Release) -> Option<Finding> {
    let (client, server) = (&c.dirs[0], &c.dirs[1]);
    if c.roles != RoleSource::Syn || client.payload_bytes > 0 || server.payload_bytes > 0 {
        return None;
    }
    let client_rsts = c
        .closes
        .iter()
        .filter(|e| e.side == Side::Client && e.kind.is_rst())
        .count() as u64;
    let client_rst = c
        .closes
        .iter()
        .find(|e| e.side == Side::Client && e.kind.is_rst());
    // The handshake never completed: the client sent only SYNs and resets, the server at
    // most SYN-ACKs.
    if client.packets != client.syns as u64 + client_rsts || server.packets != server.syns as u64 {
        return None;
    }
    if server.packets > 0 {
        let late = c
            .syn_ts
            .zip(c.synack_first)
            .is_some_and(|(syn, ack)| ack.since(syn) >= Nanos(1_000_000_000));
        if client_rst.is_none() || !(late || client.syns >= 2) {
            return None;
        }
    } else if client.syns < 2 && client_rst.is_none() && released != Release::Idle {
        return None;
    }
    let span = c.last.ts.since(c.first.ts);
    let ended = match client_rst {
        Some(r) => format!(
            ", then the client reset it ({})",
            super::finding::frame_name(r.mark.frame)
        ),
        None => String::new(),
    };
    let mut f = FindingBase { c }.make_at(
        FindingKind::ConnectTimeout,
        Side::Client,
        c.first,
        "SYN",
        vec![c.first.frame, c.last.frame],
        None,
        format!(
            "The client's SYN to {} was never answered ({} SYN{} over {span}{ended}){}. The server is down or unreachable, or a firewall drops the SYN without answering.",
            c.server,
            client.syns,
            if client.syns == 1 { "" } else { "s" },
            if client_rst.is_none() && server.packets == 0 && released == Release::EndOfCapture {
                "; the capture ends before the client got an answer or gave up, so whether it then gave up cannot be told"
            } else {
                ": a connect timeout"
            }
        ),
    );
    f.idle_ms = Some(ms(span));
    Some(f)
}

/// When and by whom the close began: the first FIN, or over TLS the first close_notify if
/// it came earlier (a close_notify is the decision to close; the FIN may follow late).
fn close_start(c: &Connection) -> Option<(Side, Mark)> {
    let first = c.first_close()?;
    let mut start = (first.side, first.mark);
    if let Some(t) = c.app.tls() {
        for (i, n) in t.close_notify.iter().enumerate() {
            if let Some((m, _)) = n {
                if before(*m, start.1) {
                    start = (if i == 0 { Side::Client } else { Side::Server }, *m);
                }
            }
        }
    }
    Some(start)
}

/// Rule 8: a graceful close after the connection had been idle. It is an observation of
/// the server's idle timeout only when the server started the close.
pub(super) fn idle_close(
    c: &Connection,
    requests: &[Request],
) -> Option<(Finding, Option<IdleObservation>)> {
    let first = *c.first_close()?;
    if first.kind != CloseKind::Fin {
        return None;
    }
    let (side, started) = close_start(c)?;
    let last_end = if let Some(t) = c.app.tls() {
        if t.answered() == 0 || t.unanswered().is_some() {
            return None;
        }
        t.last_exchange_end()
    } else {
        // A tunnel is no keep-alive connection; nothing else is an exchange to idle after.
        if requests.is_empty() || c.app.http().is_some_and(|h| h.tunnel) {
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
    if !before(last_end, started) {
        return None;
    }
    let idle = started.ts.since(last_end.ts);
    if idle < MIN_IDLE {
        // Closed as the exchange ended (no idle timer ran): not an idle close.
        return None;
    }
    let who = side.name();
    let how = if started == first.mark {
        "(FIN)"
    } else {
        "(close_notify, then FIN)"
    };
    let mut frames = vec![last_end.frame, first.mark.frame];
    frames.push(started.frame);
    let close = CloseEvent {
        side,
        mark: started,
        ..first
    };
    let mut f = FindingBase { c }.make(
        FindingKind::IdleClose,
        close,
        frames,
        None,
        format!("The {who} closed the keep-alive connection {how} after {idle} idle."),
    );
    f.close_how = "FIN";
    f.close_frame = first.mark.frame;
    f.by = side;
    f.idle_ms = Some(ms(idle));
    let obs = (side == Side::Server).then_some(IdleObservation { idle });
    Some((f, obs))
}
