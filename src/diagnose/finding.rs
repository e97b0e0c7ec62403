//! What diagnosis concludes: findings, each with a stable kind, the frames that prove it and
//! one plain sentence.

use crate::flows::Side;
use crate::source::FrameRef;
use crate::time::Timestamp;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;

/// The kinds of finding. The snake_case names are part of the JSON schema.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A request written onto a reused keep-alive connection that the server was closing.
    IdleRace,
    /// A request was outstanding when a RST ended the connection (not an idle race).
    ResetInFlight,
    /// A response had begun but was incomplete when a RST ended the connection.
    ResetMidResponse,
    /// A request got no response and the connection was closed with a FIN (not an idle
    /// race).
    ClosedWithoutResponse,
    /// Data that the peer never acknowledged before the connection ended (no request
    /// carried it).
    LostData,
    /// A SYN never answered.
    ConnectTimeout,
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
            FindingKind::ResetMidResponse => "reset_mid_response",
            FindingKind::ClosedWithoutResponse => "closed_without_response",
            FindingKind::LostData => "lost_data",
            FindingKind::ConnectTimeout => "connect_timeout",
            FindingKind::Refused => "refused",
            FindingKind::ResetAfterClose => "reset_after_close",
            FindingKind::Abort => "abort",
            FindingKind::IdleClose => "idle_close",
        }
    }

    /// How much it matters.
    pub fn severity(self) -> Severity {
        match self {
            FindingKind::IdleRace
            | FindingKind::ResetInFlight
            | FindingKind::ResetMidResponse
            | FindingKind::ClosedWithoutResponse
            | FindingKind::LostData => Severity::Error,
            FindingKind::Refused
            | FindingKind::ResetAfterClose
            | FindingKind::Abort
            | FindingKind::ConnectTimeout => Severity::Warning,
            FindingKind::IdleClose => Severity::Info,
        }
    }

    /// All kinds, in report order.
    pub const ALL: [FindingKind; 10] = [
        FindingKind::IdleRace,
        FindingKind::ResetInFlight,
        FindingKind::ResetMidResponse,
        FindingKind::ClosedWithoutResponse,
        FindingKind::LostData,
        FindingKind::ConnectTimeout,
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
    /// Method (`POST`); a request over TLS has `TLS` here, the request being encrypted.
    pub method: Arc<str>,
    /// Target as sent (escape before printing); over TLS, the server name the client asked
    /// for (SNI), or `application data`.
    pub target: Arc<str>,
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
    /// The strict parser rejected its head and it was read tolerantly: what was wrong.
    pub malformed: Option<crate::app::tolerant::Malformed>,
}

/// One conclusion about one connection.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable identifier of the kind.
    pub kind: FindingKind,
    /// The connection's first and last packets, frame and time: where its packets are found
    /// again, and what tells it from other connections on its addresses and ports (port
    /// reuse), e.g. in a Wireshark filter.
    #[serde(skip)]
    pub span: (crate::app::Mark, crate::app::Mark),
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
    /// Variant. Races: `fin_then_rst`, `fin_no_response`, `rst_no_fin`, `tls_alert`,
    /// `tls_unread`. Closed without response: `server_closed`, `client_gave_up`,
    /// `after_close` (written after the server's FIN), `incomplete_response`.
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
    /// The request may be retried automatically: it was not processed, or it is idempotent
    /// by method or idempotency key. `null` when that cannot be told (over TLS the method
    /// cannot be seen).
    pub retry_safe: Option<bool>,
    /// Whether the server processed the request: `false` when the packets prove it did not
    /// (sent behind a `Connection: close` response, or answered by the kernel after the
    /// socket was closed), `true` when it began answering, `null` when nobody can tell.
    pub processed: Option<bool>,
    /// Reset mid-response: body bytes of the response that arrived, and the length it
    /// announced (`null`: chunked or until close).
    pub response_bytes: Option<u64>,
    /// Reset mid-response: the `Content-Length` the response announced.
    pub response_announced: Option<u64>,
    /// Reset mid-response or in flight: time from the last byte the server sent to the
    /// reset, in milliseconds (how long the transfer had stalled).
    pub stall_ms: Option<f64>,
    /// Requests on the same connection after this one that also got no response (pipelined
    /// behind it).
    pub also_unanswered: u32,
    /// The deciding RST's TTL fits no other packet of its claimed sender: it most likely came
    /// from a device on the path. `null`: nothing says so (which does not prove the
    /// endpoint sent it).
    pub rst_from_path: Option<bool>,
    /// A RST from the path: how long the flow had been silent when the packet it answered
    /// came, in milliseconds (the device forgets flows idle less long than that).
    pub path_silence_ms: Option<f64>,
    /// An upstream race that the proxy in front retried: no client saw it (see the
    /// report's `proxies`).
    pub retried_by_proxy: Option<bool>,
    /// Community ID v1 of the connection, to join with Zeek, Suricata or Arkime records.
    pub community_id: crate::community_id::CommunityId,
    /// TLS: the server name the client asked for (SNI), escape before printing.
    pub server_name: Option<String>,
    /// What this host's kernel said of the deciding RST (live capture with kernel events,
    /// or a pcapng one wrote): `null` when nothing is known.
    pub kernel_reason: Option<crate::kernel::reason::KernelReason>,
    /// What the close that decided it was: `FIN`, `RST`, or `SYN` (a connect timeout).
    pub close_how: &'static str,
    /// One plain-language sentence.
    pub sentence: String,
}

/// The sentence with its first letter in upper case.
pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// How a sentence names a frame: `#N`.
pub(crate) fn frame_name(f: crate::source::FrameRef) -> String {
    format!("#{}", f.number)
}

impl Finding {
    /// `FIN`, `RST` or `SYN`: what kind of packet `close_frame` is.
    pub fn close_how(&self) -> &'static str {
        self.close_how
    }
}
