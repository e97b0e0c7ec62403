//! What diagnosis concludes: findings, each with a stable kind, the frames that prove it and
//! one plain sentence.

use crate::flows::Side;
use crate::source::FrameRef;
use crate::time::Timestamp;
use serde::Serialize;
use std::net::SocketAddr;

/// The kinds of finding. The snake_case names are part of the JSON schema.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A request written onto a reused keep-alive connection that the server was closing.
    IdleRace,
    /// A request was outstanding when a RST ended the connection (not an idle race).
    ResetInFlight,
    /// A SYN answered by RST.
    Refused,
    /// A RST answering data that arrived after that side had closed.
    ResetAfterClose,
    /// A RST with no request in flight.
    Abort,
    /// A graceful close (FIN) after the connection had been idle.
    IdleClose,
}

impl FindingKind {
    /// The JSON/CLI name.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::IdleRace => "idle_race",
            FindingKind::ResetInFlight => "reset_in_flight",
            FindingKind::Refused => "refused",
            FindingKind::ResetAfterClose => "reset_after_close",
            FindingKind::Abort => "abort",
            FindingKind::IdleClose => "idle_close",
        }
    }

    /// How much it matters.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::IdleRace | FindingKind::ResetInFlight => Severity::Error,
            FindingKind::Refused | FindingKind::ResetAfterClose | FindingKind::Abort => {
                Severity::Warning
            }
            FindingKind::IdleClose => Severity::Info,
        }
    }

    /// All kinds, in report order.
    pub const ALL: [FindingKind; 6] = [
        FindingKind::IdleRace,
        FindingKind::ResetInFlight,
        FindingKind::Refused,
        FindingKind::ResetAfterClose,
        FindingKind::Abort,
        FindingKind::IdleClose,
    ];
}

/// How much a finding matters.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A request failed.
    Error,
    /// A reset worth knowing about; no request was lost to it.
    Warning,
    /// Context (idle closes feed the idle-timeout estimate).
    Info,
}

/// The request a finding is about.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRef {
    /// Method (`POST`); a TLS race has `TLS` here, the request being encrypted.
    pub method: String,
    /// Target as sent (escape before printing).
    pub target: String,
    /// Frame of its first byte.
    pub frame: FrameRef,
    /// Time of its first byte.
    pub time: Timestamp,
    /// Idempotent by method (RFC 9110 §9.2.2) or by an idempotency key.
    pub idempotent: bool,
    /// Carried an `Idempotency-Key` header.
    pub idempotency_key: bool,
    /// Its position on the connection (1 = first request).
    pub index: usize,
}

/// One conclusion about one connection.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable identifier of the kind.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// The connection's id (see `connections[].id`).
    pub connection: u64,
    /// Client endpoint.
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
    /// When it happened (the close, or the request for a race).
    pub time: Timestamp,
    /// Which side closed or reset.
    pub by: Side,
    /// The frames that prove it, in capture order.
    pub frames: Vec<FrameRef>,
    /// The close that decided the finding: the closing side's FIN for an idle close, the
    /// server's FIN for a FIN-variant race, the RST otherwise.
    pub close_frame: FrameRef,
    /// The request in flight, if any.
    pub request: Option<RequestRef>,
    /// How long the connection had been idle: before the request for a race, before the
    /// close otherwise (milliseconds).
    pub idle_ms: Option<f64>,
    /// Race, FIN variant: time from the server's FIN to the request (negative when the
    /// request was captured first and crossed the FIN in flight), in milliseconds.
    pub fin_to_request_ms: Option<f64>,
    /// Race variant: `fin_then_rst`, `fin_no_response`, `rst_no_fin` or `tls_alert`.
    pub variant: Option<&'static str>,
    /// The request was written after the server's FIN was on the wire.
    pub written_after_close: Option<bool>,
    /// Race, FIN variant: the request acknowledged the server's FIN, so the client's kernel
    /// had it before the request was written (the client reused a connection it could have
    /// known was closing); `false`: request and FIN crossed in flight.
    pub client_had_fin: Option<bool>,
    /// The idle time matches the server's estimated idle timeout (set once the estimate is
    /// known; `null` when there is none).
    pub matches_server_timeout: Option<bool>,
    /// The request may be retried automatically: idempotent by method or idempotency key.
    /// `false` for a TLS race (the request cannot be seen).
    pub retry_safe: Option<bool>,
    /// One plain-language sentence.
    pub sentence: String,
}

impl Finding {
    /// `FIN` or `RST`: what kind of packet `close_frame` is. Idle closes and the FIN-variant
    /// races are decided by a FIN; every other finding by a RST.
    pub fn close_how(&self) -> &'static str {
        if self.kind == FindingKind::IdleClose || self.variant.is_some_and(|v| v.starts_with("fin"))
        {
            "FIN"
        } else {
            "RST"
        }
    }
}
