//! The kernel's reason for one RST, and the table of them by frame.
//!
//! Linux (6.10 and later) gives every RST it sends a reason, `enum sk_rst_reason`, in the
//! `tcp:tcp_send_reset` tracepoint; `tcp:tcp_receive_reset` marks one it took in. A
//! [`KernelReason`] is one of three things said of a RST on the wire: this host's kernel sent
//! it, for reason `NAME`; this host's kernel received it; or, on a host where the events
//! were read and the RST's source is one of its own addresses, no event matched it, so this
//! host's TCP stack did not send it.
//!
//! Names are the kernel's, read from the event's `format` file (they change between
//! kernels), and kept here in a small interner so that a reason is four bytes and `Copy`.
//! [`meaning`] has plain words for the common ones; an unknown name is shown as it is.
//!
//! A live capture with `-w` writes each RST's reason as the pcapng packet comment
//! ([`KernelReason::comment`]), which Wireshark shows as `frame.comment`; `analyze` reads
//! it back ([`KernelReason::from_comment`]). Either way the reasons land in a
//! [`ReasonTable`] by frame, which the diagnosis joins to its findings and closes.

use crate::flows::Side;
use crate::source::FrameRef;
use rustc_hash::FxHashMap;
use serde::ser::SerializeStruct;
use std::sync::{Arc, Mutex, OnceLock};

/// What the kernel said of a RST.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelEvent {
    /// `tcp:tcp_send_reset`: this host's kernel sent it (with a reason).
    Sent,
    /// `tcp:tcp_receive_reset`: this host's kernel took it in.
    Received,
    /// Its source is this host's address, events were read, and none matched it.
    NotSent,
}

impl KernelEvent {
    /// The JSON name: the tracepoint's, or `none`.
    pub fn name(self) -> &'static str {
        match self {
            KernelEvent::Sent => "tcp_send_reset",
            KernelEvent::Received => "tcp_receive_reset",
            KernelEvent::NotSent => "none",
        }
    }
}

/// The kernel's word on one RST (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelReason {
    /// Which event, if any.
    pub event: KernelEvent,
    /// Index of the reason's name in the interner (`NO_NAME`: none).
    name: u16,
}

const NO_NAME: u16 = u16::MAX;
/// Distinct names kept; a hostile file with more gets `OTHER` for the rest.
const MAX_NAMES: usize = 1024;

fn names() -> &'static Mutex<Vec<&'static str>> {
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    NAMES.get_or_init(|| Mutex::new(Vec::new()))
}

/// A reason name as the kernel spells them: capitals, digits and `_`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn intern(name: &str) -> u16 {
    let mut v = names().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(i) = v.iter().position(|n| *n == name) {
        return i as u16;
    }
    if v.len() >= MAX_NAMES {
        drop(v);
        return if name == "OTHER" {
            NO_NAME
        } else {
            intern_other()
        };
    }
    v.push(Box::leak(name.to_string().into_boxed_str()));
    (v.len() - 1) as u16
}

fn intern_other() -> u16 {
    let v = names().lock().unwrap_or_else(|e| e.into_inner());
    v.iter()
        .position(|n| *n == "OTHER")
        .map_or(NO_NAME, |i| i as u16)
}

impl KernelReason {
    /// Sent by this host's kernel for the reason `name` (a name that is not spelled like the
    /// kernel's is kept as `OTHER`).
    pub fn sent(name: &str) -> KernelReason {
        let name = if valid_name(name) {
            intern(name)
        } else {
            intern("OTHER")
        };
        KernelReason {
            event: KernelEvent::Sent,
            name,
        }
    }

    /// Received by this host's kernel.
    pub fn received() -> KernelReason {
        KernelReason {
            event: KernelEvent::Received,
            name: NO_NAME,
        }
    }

    /// Its source is this host, and its kernel did not send it.
    pub fn not_sent() -> KernelReason {
        KernelReason {
            event: KernelEvent::NotSent,
            name: NO_NAME,
        }
    }

    /// The reason's `enum sk_rst_reason` name (only for [`KernelEvent::Sent`]).
    pub fn name(&self) -> Option<&'static str> {
        if self.name == NO_NAME {
            return None;
        }
        names()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(self.name as usize)
            .copied()
    }

    /// Plain words for what happened (see [`meaning`]).
    pub fn meaning(&self) -> String {
        match self.event {
            KernelEvent::Sent => match self.name().and_then(meaning) {
                Some(m) => format!("this host's kernel sent it because {m}"),
                None => format!(
                    "this host's kernel sent it, for the reason {}",
                    self.name().unwrap_or("OTHER")
                ),
            },
            KernelEvent::Received => {
                "this host's kernel received it (tcp_receive_reset); it did not send it".into()
            }
            KernelEvent::NotSent => NOT_SENT.into(),
        }
    }

    /// The sentence for a finding whose reset `by` sent: "the server's kernel reset it
    /// because the application closed the socket with the request unread
    /// (TCP_ABORT_ON_CLOSE)". `request`: a request was in flight.
    pub fn sentence(&self, by: Side, request: bool) -> String {
        let who = match by {
            Side::Client => "the client's",
            Side::Server => "the server's",
        };
        match self.event {
            KernelEvent::Sent => {
                let name = self.name().unwrap_or("OTHER");
                match meaning(name) {
                    Some(m) => {
                        let m = if request && name == "TCP_ABORT_ON_CLOSE" {
                            "the application closed the socket with the request unread"
                        } else {
                            m
                        };
                        format!("{who} kernel reset it because {m} ({name})")
                    }
                    None => format!("{who} kernel reset it, for the reason {name}"),
                }
            }
            KernelEvent::Received => {
                "this host's kernel received the reset (tcp_receive_reset) and did not send it"
                    .into()
            }
            KernelEvent::NotSent => NOT_SENT.into(),
        }
    }

    /// The pcapng packet comment that keeps it with the capture (read back by
    /// [`KernelReason::from_comment`]).
    pub fn comment(&self) -> String {
        match self.event {
            KernelEvent::Sent => format!(
                "{COMMENT_PREFIX}tcp_send_reset reason={}: {}",
                self.name().unwrap_or("OTHER"),
                self.meaning()
            ),
            KernelEvent::Received => {
                format!("{COMMENT_PREFIX}tcp_receive_reset: {}", self.meaning())
            }
            KernelEvent::NotSent => format!("{COMMENT_PREFIX}no tcp_send_reset: {NOT_SENT}"),
        }
    }

    /// Reads a comment written by [`KernelReason::comment`]; `None` for any other comment.
    pub fn from_comment(comment: &str) -> Option<KernelReason> {
        let rest = comment.strip_prefix(COMMENT_PREFIX)?;
        let (head, _) = rest.split_once(':')?;
        let mut words = head.split(' ');
        match (words.next()?, words.next()) {
            ("tcp_send_reset", Some(r)) => Some(KernelReason::sent(r.strip_prefix("reason=")?)),
            ("tcp_receive_reset", None) => Some(KernelReason::received()),
            ("no", Some("tcp_send_reset")) => Some(KernelReason::not_sent()),
            _ => None,
        }
    }
}

/// What every packet comment of a kernel reason starts with.
pub const COMMENT_PREFIX: &str = "resetscope kernel: ";

const NOT_SENT: &str = "not sent by this host's kernel (no tcp_send_reset event matched it): a device on the path or another host sent it, or a packet filter here (e.g. REJECT --reject-with tcp-reset), or, seen from a container's network namespace, the host or another namespace behind a NAT";

impl serde::Serialize for KernelReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KernelReason", 3)?;
        st.serialize_field("event", self.event.name())?;
        st.serialize_field("reason", &self.name())?;
        st.serialize_field("meaning", &self.meaning())?;
        st.end()
    }
}

/// Plain words for the common `enum sk_rst_reason` names (include/net/rstreason.h), as the
/// clause after "because"; `None` for a name not known here.
pub fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        "NOT_SPECIFIED" => "of a reason it did not specify",
        "NO_SOCKET" => {
            "no socket was open for the packet it answered (closed already, or never listening)"
        }
        "TCP_INVALID_ACK_SEQUENCE" => {
            "the packet it answered acknowledged a sequence number that is not acceptable"
        }
        "TCP_RFC7323_PAWS" => "the packet it answered failed the timestamp check (PAWS, RFC 7323)",
        "TCP_TOO_OLD_ACK" => "the packet it answered acknowledged data too old",
        "TCP_ACK_UNSENT_DATA" => "the packet it answered acknowledged data not yet sent",
        "TCP_FLAGS" => "the packet it answered had invalid flags",
        "TCP_OLD_ACK" => "the packet it answered acknowledged old data",
        "TCP_ABORT_ON_DATA" => "data arrived on a socket the application had already closed",
        "TCP_TIMEWAIT_SOCKET" => "the packet it answered reached a connection in TIME_WAIT",
        "INVALID_SYN" => "the packet it answered was an invalid SYN",
        "TCP_ABORT_ON_CLOSE" => "the application closed the socket with data unread",
        "TCP_ABORT_ON_LINGER" => "the closed socket's FIN_WAIT2 time (TCP_LINGER2) ran out",
        "TCP_ABORT_ON_MEMORY" => {
            "the host was short of memory for closed sockets (too many orphans)"
        }
        "TCP_STATE" => {
            "the application aborted the open connection (e.g. a close with SO_LINGER of 0)"
        }
        "TCP_KEEPALIVE_TIMEOUT" => {
            "the peer stopped answering (keep-alive probes or TCP_USER_TIMEOUT ran out)"
        }
        "TCP_DISCONNECT_WITH_DATA" => {
            "the application disconnected the socket with data not yet sent"
        }
        "ERROR" => "of an unexpected error",
        n if n.starts_with("MPTCP_") => "of an MPTCP subflow reset",
        _ => return None,
    })
}

/// Kernel reasons by frame, shared by the packet front (which reads them from packet
/// comments) and the diagnosis (which joins them to findings and closes). Cloning shares
/// the table.
#[derive(Clone, Default)]
pub struct ReasonTable(Arc<Mutex<Table>>);

#[derive(Default)]
struct Table {
    by_frame: FxHashMap<FrameRef, KernelReason>,
    /// Reasons beyond [`MAX_FRAMES`], not kept.
    dropped: u64,
}

/// Frames whose reason is kept (a hostile file could comment every frame).
const MAX_FRAMES: usize = 1 << 20;

impl std::fmt::Debug for ReasonTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReasonTable")
    }
}

impl ReasonTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `frame`'s reason.
    pub fn insert(&self, frame: FrameRef, reason: KernelReason) {
        let mut t = self.lock();
        if t.by_frame.len() < MAX_FRAMES || t.by_frame.contains_key(&frame) {
            t.by_frame.insert(frame, reason);
        } else {
            t.dropped += 1;
        }
    }

    /// `frame`'s reason, if any.
    pub fn get(&self, frame: FrameRef) -> Option<KernelReason> {
        self.lock().by_frame.get(&frame).copied()
    }

    /// True when no frame has a reason.
    pub fn is_empty(&self) -> bool {
        self.lock().by_frame.is_empty()
    }

    /// How many RSTs had each reason, in a stable order.
    pub fn counts(&self) -> Vec<(KernelReason, u64)> {
        let mut m: std::collections::BTreeMap<KernelReason, u64> = Default::default();
        for r in self.lock().by_frame.values() {
            *m.entry(*r).or_default() += 1;
        }
        m.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip() {
        for r in [
            KernelReason::sent("TCP_ABORT_ON_CLOSE"),
            KernelReason::sent("SOMETHING_NEW_7"),
            KernelReason::received(),
            KernelReason::not_sent(),
        ] {
            assert_eq!(
                KernelReason::from_comment(&r.comment()),
                Some(r),
                "{}",
                r.comment()
            );
        }
        assert_eq!(
            KernelReason::from_comment("a comment of someone else"),
            None
        );
        assert_eq!(KernelReason::sent("bad name!").name(), Some("OTHER"));
    }

    #[test]
    fn sentences() {
        let r = KernelReason::sent("TCP_ABORT_ON_CLOSE");
        assert_eq!(
            r.sentence(Side::Server, true),
            "the server's kernel reset it because the application closed the socket with the request unread (TCP_ABORT_ON_CLOSE)"
        );
        assert_eq!(
            KernelReason::sent("NO_SOCKET").sentence(Side::Client, false),
            "the client's kernel reset it because no socket was open for the packet it answered (closed already, or never listening) (NO_SOCKET)"
        );
        assert_eq!(
            KernelReason::sent("BRAND_NEW").sentence(Side::Server, false),
            "the server's kernel reset it, for the reason BRAND_NEW"
        );
    }

    #[test]
    fn table_counts() {
        let t = ReasonTable::default();
        let f = |n| FrameRef { file: 0, number: n };
        t.insert(f(1), KernelReason::sent("NO_SOCKET"));
        t.insert(f(2), KernelReason::sent("NO_SOCKET"));
        t.insert(f(3), KernelReason::not_sent());
        assert_eq!(t.get(f(2)), Some(KernelReason::sent("NO_SOCKET")));
        assert_eq!(t.counts().iter().map(|c| c.1).sum::<u64>(), 3);
    }
}
