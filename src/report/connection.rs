//! One connection in full (`analyze --connection`): what the analysis recorded of it, its
//! requests, every FIN and RST, its findings in full, and its packets, as text for a
//! terminal or as one JSON document.

use super::evidence::Ladder;
use super::{connection_filter, ladder, wireshark_filter, FrameNamer};
use crate::app::Mark;
use crate::diagnose::{ConnectionRecord, Finding};
use crate::escape;
use crate::flows::Side;
use serde_json::json;
use std::fmt::Write;

/// What is shown of one connection.
pub struct ConnectionView<'a> {
    /// Its record.
    pub record: &'a ConnectionRecord,
    /// Its findings, in time order.
    pub findings: &'a [&'a Finding],
    /// Its packets, read again from the capture (`None`: they could not be).
    pub ladder: Option<&'a Ladder>,
}

fn side(s: Side) -> &'static str {
    s.name()
}

/// The name the JSON report gives a value (`answered`, `rst_answer`).
fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The connection as text.
pub fn text(v: &ConnectionView<'_>, names: &FrameNamer) -> String {
    let r = v.record;
    let mut out = String::new();
    let dur = r.end.since(r.start);
    let _ = writeln!(
        out,
        "Connection {}: client {} → server {} ({}{})",
        r.id,
        r.client,
        r.server,
        r.protocol,
        if r.roles_inferred {
            "; roles inferred: the handshake was not captured"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "  frames {} to {}, {} to {} ({dur})",
        names.name(r.first_frame),
        names.name(r.last_frame),
        r.start.rfc3339(),
        r.end.rfc3339()
    );
    let _ = writeln!(
        out,
        "  packets: {} from the client, {} from the server; payload bytes: {} / {}",
        r.packets.client, r.packets.server, r.payload_bytes.client, r.payload_bytes.server
    );
    let _ = writeln!(out, "  community_id: {}", r.community_id);
    match &r.first_close {
        Some(c) => {
            let idle = r
                .idle_before_close_ms
                .map(|ms| format!(", after {} idle", crate::time::Nanos((ms * 1e6) as i64)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  closed first by the {} ({} {}){idle}",
                side(c.by),
                c.how,
                names.name(c.frame)
            );
        }
        None => {
            let _ = writeln!(out, "  no FIN or RST was captured");
        }
    }
    if let Some(note) = &r.app_note {
        let _ = writeln!(out, "  {}", escape::terminal_max(note, 400));
    }
    let s = &r.stream;
    let _ = writeln!(
        out,
        "  retransmissions {}, out of order {}, gaps {} ({} bytes), duplicates {}",
        s.retransmissions, s.out_of_order, s.gaps, s.gap_bytes, s.duplicates
    );
    let _ = writeln!(
        out,
        "  Wireshark: {}",
        escape::terminal(&connection_filter(
            r.client,
            r.server,
            Mark {
                frame: r.first_frame,
                ts: r.start
            },
            Mark {
                frame: r.last_frame,
                ts: r.end
            }
        ))
    );

    out.push_str("\nRequests\n");
    if r.requests.is_empty() {
        let _ = writeln!(out, "  none");
    }
    if r.requests_folded > 0 {
        let _ = writeln!(
            out,
            "  ({} answered requests before these were folded into this count by the memory budget)",
            r.requests_folded
        );
    }
    for q in &r.requests {
        let response = match (q.status, q.response_frame) {
            (Some(st), Some(f)) => format!(
                "{st} {}{}",
                names.name(f),
                if q.response_complete {
                    ""
                } else {
                    " (incomplete)"
                }
            ),
            _ => "no response".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:>3}. {} {} {} {}: {}, {}{}",
            q.index,
            q.time.rfc3339(),
            escape::terminal(&q.method),
            escape::terminal_max(&q.target, 200),
            names.name(q.frame),
            json_name(&q.outcome),
            response,
            if q.idempotent { "" } else { ", not idempotent" }
        );
    }
    if r.requests_dropped > 0 {
        let _ = writeln!(
            out,
            "  ({} more requests counted but not stored)",
            r.requests_dropped
        );
    }

    out.push_str("\nCloses (FIN and RST)\n");
    if r.closes.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for c in &r.closes {
        let _ = writeln!(
            out,
            "  {} {} {} {}{} ttl {}",
            names.name(c.mark.frame),
            c.mark.ts.rfc3339(),
            side(c.side),
            json_name(&c.kind),
            if c.retransmission {
                " (retransmission)"
            } else {
                ""
            },
            c.ttl
        );
        if let Some(k) = c.kernel_reason {
            let name = k.name().map(|n| format!(" {n}")).unwrap_or_default();
            let _ = writeln!(out, "    kernel: {}{name}: {}", k.event.name(), k.meaning());
        }
    }
    if r.closes_dropped > 0 {
        let _ = writeln!(
            out,
            "  ({} more FIN and RST packets not listed)",
            r.closes_dropped
        );
    }

    out.push_str("\nFindings\n");
    if v.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for f in v.findings {
        let _ = writeln!(
            out,
            "  {} ({}): {}",
            f.kind.name(),
            names.name(f.close_frame),
            escape::terminal_max(&f.sentence, 2000)
        );
        let _ = writeln!(
            out,
            "    Wireshark: {}",
            escape::terminal(&wireshark_filter(f))
        );
    }

    match v.ladder {
        Some(l) => {
            let _ = writeln!(out, "\nPackets ({})", l.rows.len() as u64 + l.omitted);
            let request = v.findings.iter().find_map(|f| f.request.as_ref());
            out.push_str(&ladder::text_of(l, (r.client, r.server), request, names));
        }
        None => out.push_str("\nPackets: the capture could not be read again for them\n"),
    }
    out
}

/// The connection as one JSON document: `connection` (as in `connections[]`), `findings`,
/// `packets` (frame, time, from, flags, relative seq and ack, len, summary) and
/// `packets_not_shown`.
pub fn json(v: &ConnectionView<'_>) -> serde_json::Value {
    let packets: Vec<serde_json::Value> = v
        .ladder
        .map(|l| {
            l.rows
                .iter()
                .map(|row| {
                    json!({
                        "frame": row.frame,
                        "time": row.ts,
                        "from": side(row.from),
                        "flags": row.flag_names(),
                        "seq": row.seq,
                        "ack": row.ack,
                        "len": row.len,
                        "summary": row.summary,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "connection": v.record,
        "findings": v.findings,
        "packets": packets,
        "packets_not_shown": v.ladder.map_or(0, |l| l.omitted),
    })
}
