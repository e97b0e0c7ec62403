//! Stage 4, application: what the reassembled byte streams say.
//!
//! Each connection's two streams are handed, in order and with explicit gaps, to one
//! [`App`] chosen from the first bytes seen: HTTP/1.x ([`http::Http`], which pairs requests
//! with responses) or TLS ([`tls::Tls`], which follows records: application data and alerts
//! are what an idle race over TLS leaves visible). Anything else is only counted. The stage
//! hands on, inside the connection, the list of HTTP exchanges or the TLS record marks that
//! diagnosis reads.

mod framing;
pub mod h2;
mod hello;
pub mod http;
pub mod tls;
pub mod tolerant;

use crate::flows::reassembly::StreamEvent;
use crate::flows::Side;
use crate::source::FrameRef;
use crate::time::Timestamp;

/// A point in the capture: a frame and its time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Mark {
    /// The frame.
    pub frame: FrameRef,
    /// Its timestamp.
    #[serde(rename = "time")]
    pub ts: Timestamp,
}

/// Head bytes kept of a head being read when the memory budget cuts it short: the request
/// line and the first header lines.
pub const SHED_HEAD_KEEP: usize = 1024;
/// Requests kept per connection when the memory budget folds answered ones.
pub const SHED_KEEP_REQUESTS: usize = 16;

/// The application protocol of a connection, as far as we follow it.
#[derive(Default)]
pub enum App {
    /// No payload yet.
    #[default]
    Unknown,
    /// HTTP/1.x.
    Http(Box<http::Http>),
    /// TLS records.
    Tls(Box<tls::Tls>),
    /// HTTP/2 by prior knowledge (the client's preface).
    H2(Box<h2::H2>),
    /// Something else: bytes are counted, not parsed.
    Other,
}

impl App {
    /// Memory the protocol state holds on the heap (an estimate, for the memory budget).
    pub fn heap_bytes(&self) -> usize {
        match self {
            App::Http(h) => std::mem::size_of::<http::Http>() + h.heap_bytes(),
            App::Tls(t) => std::mem::size_of::<tls::Tls>() + t.heap_bytes(),
            App::H2(h) => std::mem::size_of::<h2::H2>() + h.heap_bytes(),
            App::Unknown | App::Other => 0,
        }
    }

    /// Memory budget: gives up the state that tells least (see [`http::Http::shed_heads`]
    /// and [`http::Http::fold_answered`]). Returns the heads cut and the requests folded.
    pub fn shed(&mut self) -> (u32, u64) {
        match self {
            App::Http(h) => (
                h.shed_heads(SHED_HEAD_KEEP),
                h.fold_answered(SHED_KEEP_REQUESTS),
            ),
            _ => (0, 0),
        }
    }

    /// Picks the protocol from the first payload bytes of `side`.
    pub fn detect(side: Side, data: &[u8]) -> App {
        if data.len() >= 3
            && (data[0] == 0x16 || data[0] == 0x17 || data[0] == 0x15)
            && data[1] == 0x03
            && data[2] <= 0x04
        {
            return App::Tls(Box::default());
        }
        if side == Side::Client
            && data.starts_with(&h2::PREFACE[..data.len().min(h2::PREFACE.len())])
        {
            return App::H2(Box::default());
        }
        let http = match side {
            Side::Client => http::looks_like_request(data),
            Side::Server => data.starts_with(b"HTTP/1."),
        };
        if http {
            App::Http(Box::default())
        } else {
            App::Other
        }
    }

    /// Hands one stream event of `side` to the protocol's parser.
    pub fn on_event(&mut self, side: Side, ev: StreamEvent<'_>) {
        match self {
            App::Unknown => {
                if let StreamEvent::Data(c) = ev {
                    // One byte says nothing of the protocol, and a capture that starts
                    // mid-stream often begins with a 1-byte keep-alive probe (an old byte
                    // sent again): decide on the next segment instead.
                    if c.data.len() <= 1 {
                        return;
                    }
                    *self = App::detect(side, c.data);
                    self.on_event(side, ev);
                }
            }
            App::Http(h) => h.on_event(side, ev),
            App::Tls(t) => t.on_event(side, ev),
            App::H2(h) => h.on_event(side, ev),
            App::Other => {}
        }
    }

    /// `side` sent its FIN at `mark` (ends bodies delimited by the close).
    pub fn on_fin(&mut self, side: Side, mark: Mark) {
        if let App::Http(h) = self {
            h.on_fin(side, mark);
        }
    }

    /// The HTTP exchanges, if this is HTTP.
    pub fn http(&self) -> Option<&http::Http> {
        match self {
            App::Http(h) => Some(h),
            _ => None,
        }
    }

    /// The HTTP/2 frames, by prior knowledge or after `Upgrade: h2c`.
    pub fn h2(&self) -> Option<&h2::H2> {
        match self {
            App::H2(h) => Some(h),
            App::Http(h) => h.h2.as_deref(),
            _ => None,
        }
    }

    /// The TLS record marks, if this is TLS.
    pub fn tls(&self) -> Option<&tls::Tls> {
        match self {
            App::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// A short name for reports: `http`, `tls`, `other`, or `none`.
    pub fn name(&self) -> &'static str {
        match self {
            App::Unknown => "none",
            App::Http(h) if h.h2.is_some() => "http2",
            App::Http(_) => "http",
            App::H2(_) => "http2",
            App::Tls(_) => "tls",
            App::Other => "other",
        }
    }
}
