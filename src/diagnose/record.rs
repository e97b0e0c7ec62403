//! The per-connection record that reports print and JSON carries (`connections[]`).

use crate::flows::Release;
use crate::flows::{CloseEvent, CloseKind, RoleSource, Side};
use crate::source::FrameRef;
use crate::time::Timestamp;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// What became of a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The whole response arrived.
    Answered,
    /// A RST ended the connection before any response began.
    Reset,
    /// A RST ended the connection while the response was arriving.
    ResetMidResponse,
    /// The connection was closed (FIN) with no response.
    Unanswered,
    /// The connection was closed (FIN) while the response was arriving.
    Incomplete,
    /// The capture ended while the request was still waiting.
    Pending,
}

impl Outcome {
    /// True for a request that got no complete response because the connection ended.
    pub fn failed(self) -> bool {
        !matches!(self, Outcome::Answered | Outcome::Pending)
    }
}

/// One request on a connection.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// 1-based position on the connection.
    pub index: usize,
    /// Method.
    pub method: Arc<str>,
    /// Target as sent (escape before printing).
    pub target: Arc<str>,
    /// Frame of its first byte.
    pub frame: FrameRef,
    /// Time of its first byte.
    pub time: Timestamp,
    /// Idempotent by method or idempotency key.
    pub idempotent: bool,
    /// Carried an `Idempotency-Key` header.
    pub idempotency_key: bool,
    /// The strict parser rejected its head and it was read tolerantly: what was wrong.
    pub malformed: Option<crate::app::tolerant::Malformed>,
    /// What became of it.
    pub outcome: Outcome,
    /// Response status, if one came.
    pub status: Option<u16>,
    /// Frame of the response's first byte.
    pub response_frame: Option<FrameRef>,
    /// Time of the response's first byte.
    pub response_time: Option<Timestamp>,
    /// The response was complete.
    pub response_complete: bool,
    /// Body bytes of the response seen.
    pub response_bytes: Option<u64>,
    /// The body length the response announced (`Content-Length`).
    pub response_announced: Option<u64>,
}

/// The first FIN or RST of a connection: who closed first, and how.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct FirstClose {
    /// Who sent it.
    pub by: Side,
    /// `FIN` or `RST`.
    pub how: &'static str,
    /// Finer kind.
    pub kind: CloseKind,
    /// Frame.
    pub frame: FrameRef,
    /// Time.
    pub time: Timestamp,
}

/// Per-connection counters of what the capture lost or repeated.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StreamCounters {
    /// Retransmitted segments.
    pub retransmissions: u32,
    /// Segments captured out of order.
    pub out_of_order: u32,
    /// Holes in the streams (bytes never captured).
    pub gaps: u32,
    /// Bytes never captured.
    pub gap_bytes: u64,
    /// Payload bytes cut by the snap length.
    pub cut_bytes: u64,
    /// Keep-alive probes.
    pub keepalives: u32,
    /// Zero-window advertisements.
    pub zero_windows: u32,
    /// Times the out-of-order buffer reached its cap (1 MiB per direction) and the bytes it
    /// waited for were given up as a gap.
    pub buffer_overflows: u32,
    /// Times the HTTP parser lost message boundaries.
    pub http_desyncs: u32,
    /// Frames that repeated one already seen (same bytes, same time): not analysed again.
    pub duplicates: u32,
}

/// What an HTTP/2 connection's frames said.
#[derive(Clone, Debug, Serialize)]
pub struct Http2Summary {
    /// Streams the client opened.
    pub streams: u64,
    /// The server's GOAWAY: its last-stream-id, error code name and frame.
    pub goaway: Option<(u32, &'static str, FrameRef)>,
    /// The framing of a side was lost (a gap, or bytes that are not HTTP/2).
    pub framing_lost: bool,
}

/// Packet or byte counts per side.
#[derive(Copy, Clone, Debug, Default, Serialize)]
pub struct PerSide {
    /// Sent by the client.
    pub client: u64,
    /// Sent by the server.
    pub server: u64,
}

/// Everything a report says about one connection.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    /// Sequential id, in order of first packet.
    pub id: u64,
    /// Community ID v1 of the connection (joins with Zeek, Suricata, Arkime records).
    pub community_id: crate::community_id::CommunityId,
    /// Client endpoint (`ip:port`).
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
    /// How the roles were decided.
    pub roles: RoleSource,
    /// The handshake was not captured and the roles were inferred.
    pub roles_inferred: bool,
    /// `http`, `tls`, `other` or `none` (no payload).
    pub protocol: &'static str,
    /// First frame.
    pub first_frame: FrameRef,
    /// Last frame.
    pub last_frame: FrameRef,
    /// Time of the first packet.
    pub start: Timestamp,
    /// Time of the last packet.
    pub end: Timestamp,
    /// Packets per side.
    pub packets: PerSide,
    /// Payload bytes per side.
    pub payload_bytes: PerSide,
    /// A RST was seen, or both sides sent FIN.
    pub closed: bool,
    /// Why the connection left the flow table.
    pub released: Release,
    /// Who closed first and how.
    pub first_close: Option<FirstClose>,
    /// Every FIN and RST (the first 32).
    pub closes: Vec<CloseEvent>,
    /// FIN and RST packets beyond the first 32, not listed.
    pub closes_dropped: u32,
    /// Idle time before the first close, in milliseconds: from the end of the last exchange
    /// that finished before it, or, without one, from the last payload before it.
    pub idle_before_close_ms: Option<f64>,
    /// Why the application protocol was not (or no longer) followed, when it was not:
    /// `http` whose client stream was not HTTP, a protocol resetscope does not read, or
    /// HTTP/2 over TLS, whose records are not requests.
    pub app_note: Option<String>,
    /// What the TLS hellos said (server name, ALPN, version), for TLS connections.
    pub tls: Option<crate::app::tls::HelloInfo>,
    /// TLS: requests built from the records (see `crate::app::tls`), and how many were
    /// answered.
    pub tls_requests: Option<PerSide>,
    /// HTTP/2: what the frames said (streams, the server's GOAWAY).
    pub http2: Option<Http2Summary>,
    /// HTTP requests in order.
    pub requests: Vec<RequestRecord>,
    /// Answered requests before these that the memory budget folded into this count (the
    /// first listed request's `index` follows them).
    #[serde(skip_serializing_if = "is_zero")]
    pub requests_folded: u64,
    /// Requests after these that were counted but not stored (more than 10,000 waiting
    /// for a response on one connection).
    #[serde(skip_serializing_if = "is_zero")]
    pub requests_dropped: u64,
    /// What the capture lost or repeated on this connection.
    pub stream: StreamCounters,
    /// Kinds of the findings about this connection.
    pub findings: Vec<crate::diagnose::FindingKind>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
