//! HTTP/2 verdicts (RFC 9113), from the streams and GOAWAYs of [`crate::app::h2`]:
//! - a stream the client opened above the last-stream-id of the server's GOAWAY was not
//!   processed (§6.8) and is safe to retry whatever its method. After an idle GOAWAY
//!   (NO_ERROR, the connection idle at least [`MIN_IDLE`]) that is the HTTP/2 form of the
//!   keep-alive race: `idle_race`, variant `h2_goaway`; after any other GOAWAY,
//!   `closed_without_response`, same variant;
//! - a stream the server reset with REFUSED_STREAM was not processed either (§8.7):
//!   `reset_in_flight`, variant `h2_refused_stream`; another RST_STREAM from the server
//!   before any response: `reset_in_flight`, variant `h2_rst_stream`;
//! - an idle GOAWAY is the server's idle close: an `idle_close` finding and an observation
//!   of its idle timeout.

use super::finding::{Finding, FindingKind, RequestRef};
use super::race::short;
use super::verdict::{before, capture_order, ms, FindingBase, IdleObservation, MIN_IDLE};
use crate::app::h2::{error_name, Stream, H2};
use crate::app::Mark;
use crate::flows::{Connection, Side};

/// Findings about one stream, at most this many per connection.
const MAX_STREAM_FINDINGS: usize = 64;
/// REFUSED_STREAM (RFC 9113 §7).
const REFUSED_STREAM: u32 = 0x7;

fn request(s: &Stream) -> RequestRef {
    let method = s.method.clone().unwrap_or_else(|| "?".into());
    RequestRef {
        idempotent: crate::app::http::method_is_idempotent(&method),
        method: method.into(),
        target: s.path.as_deref().unwrap_or_default().into(),
        frame: s.headers_frame.frame,
        time: s.headers_frame.ts,
        idempotency_key: false,
        index: s.id as usize,
        malformed: None,
    }
}

/// The HTTP/2 rules: the findings, and the server's idle observation.
pub(super) fn judge(c: &Connection, h: &H2) -> (Vec<Finding>, Option<IdleObservation>) {
    let base = FindingBase { c };
    let mut out = Vec::new();
    let mut observation = None;
    let goaway = h.goaway().copied();
    // The end of the last stream the server answered before its GOAWAY.
    let last_end = |g: Mark| {
        h.streams()
            .iter()
            .filter_map(|s| s.response_end)
            .filter(|e| before(*e, g))
            .max_by(capture_order)
    };
    let idle = goaway.and_then(|g| Some(g.mark.ts.since(last_end(g.mark)?.ts)));
    let idle_goaway = goaway
        .filter(|g| g.error_code == 0)
        .zip(idle)
        .filter(|(_, i)| *i >= MIN_IDLE);
    if let Some((g, i)) = idle_goaway {
        observation = Some(IdleObservation { idle: i });
        let mut f = base.make_at(
            FindingKind::IdleClose,
            Side::Server,
            g.mark,
            "GOAWAY",
            vec![g.mark.frame],
            None,
            format!("The server closed the idle HTTP/2 connection (GOAWAY NO_ERROR, last-stream-id {}) after {i} idle.", g.last_stream_id),
        );
        f.idle_ms = Some(ms(i));
        out.push(f);
    }
    for s in h.streams() {
        if out.len() >= MAX_STREAM_FINDINGS {
            break;
        }
        let req = request(s);
        let what = format!("{} {} (stream {})", req.method, short(&req.target), s.id);
        if let Some(g) = goaway.filter(|g| s.id > g.last_stream_id) {
            let raced = idle_goaway.is_some();
            let when = if before(g.mark, s.headers_frame) {
                format!(
                    "was sent {} after the server's GOAWAY",
                    s.headers_frame.ts.since(g.mark.ts)
                )
            } else {
                "crossed the server's GOAWAY in flight".to_string()
            };
            let mut f = base.make_at(
                if raced { FindingKind::IdleRace } else { FindingKind::ClosedWithoutResponse },
                Side::Server,
                g.mark,
                "GOAWAY",
                vec![s.headers_frame.frame, g.mark.frame],
                Some(req.clone()),
                format!(
                    "{what} {when} (last-stream-id {}, {}){}: streams above the last-stream-id were not processed (RFC 9113 §6.8), so retrying it is safe whatever its method.",
                    g.last_stream_id,
                    error_name(g.error_code),
                    idle.filter(|_| raced).map(|i| format!(", which closed the connection after {i} idle")).unwrap_or_default()
                ),
            );
            f.time = s.headers_frame.ts;
            f.variant = Some("h2_goaway");
            f.idle_ms = idle.filter(|_| raced).map(ms);
            f.processed = Some(false);
            f.retry_safe = Some(true);
            f.written_after_close = Some(before(g.mark, s.headers_frame));
            out.push(f);
            continue;
        }
        if let Some((Side::Server, code, at)) = s.reset.filter(|_| s.response.is_none()) {
            let refused = code == REFUSED_STREAM;
            let mut f = base.make_at(
                FindingKind::ResetInFlight,
                Side::Server,
                at,
                "RST_STREAM",
                vec![s.headers_frame.frame, at.frame],
                Some(req.clone()),
                if refused {
                    format!("The server refused {what} with RST_STREAM REFUSED_STREAM before processing it (RFC 9113 §8.7), so retrying it is safe whatever its method.")
                } else {
                    format!("The server reset {what} with RST_STREAM {} before any response; the request may or may not have been applied.", error_name(code))
                },
            );
            f.time = s.headers_frame.ts;
            f.variant = Some(if refused {
                "h2_refused_stream"
            } else {
                "h2_rst_stream"
            });
            f.processed = refused.then_some(false);
            f.retry_safe = Some(refused || req.idempotent);
            out.push(f);
        }
    }
    (out, observation)
}
