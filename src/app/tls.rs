//! TLS records, followed just far enough to see an idle race through encryption.
//!
//! After the handshake every record is opaque, but its 5-byte header is not. The tracker
//! follows exchanges: a client application-data record opens a request (several records in
//! a row are one request), and the server's next application-data record answers it. It
//! also notes the server's close_notify: an alert record (content type 21, TLS 1.2), or, in
//! TLS 1.3 where alerts are encrypted as application data, a server record of exactly
//! [`TLS13_ALERT_LEN`] bytes (a two-byte alert, its inner content type and a 16-byte AEAD
//! tag). What diagnosis reads: when the server last sent data, the request still waiting for
//! an answer if any, how many exchanges finished before it, and when the close_notify came.

use super::Mark;
use crate::flows::reassembly::StreamEvent;
use crate::flows::seq::SeqNumber;
use crate::flows::Side;

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Length of a TLS 1.3 record carrying an encrypted alert (AES-GCM or ChaCha20-Poly1305).
pub const TLS13_ALERT_LEN: u16 = 19;

/// Header parsing state of one direction.
#[derive(Clone, Debug, Default)]
struct Records {
    header: [u8; 5],
    header_len: u8,
    /// Where the record being read starts: frame, sequence number, and the ACK its segment
    /// carried.
    start: (Mark, SeqNumber, Option<SeqNumber>),
    body_left: u32,
    lost: bool,
}

/// TLS state of one connection.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// A handshake record was seen.
    pub handshake_seen: bool,
    /// Application-data records per side, `[client, server]`.
    pub app_data: [u64; 2],
    /// Start of the last application-data record of each side (the server's close_notify
    /// excluded).
    pub last_data: [Option<Mark>; 2],
    /// Exchanges that finished: a request answered by server data.
    pub exchanges: u64,
    /// The request waiting for an answer: the client's first record since the server last
    /// sent data.
    pub pending_request: Option<Mark>,
    /// Sequence number of the pending request's first byte.
    pub pending_request_seq: Option<SeqNumber>,
    /// The server's close_notify (the first one).
    pub server_close_notify: Option<Mark>,
    /// The acknowledgment number the close_notify's segment carried: how much of the client's
    /// stream the server had received when it decided to close.
    pub server_close_notify_ack: Option<SeqNumber>,
    dirs: [Records; 2],
}

impl Tls {
    /// Takes one stream event of `side`.
    pub fn on_event(&mut self, side: Side, ev: StreamEvent<'_>) {
        let c = match ev {
            StreamEvent::Data(c) => c,
            StreamEvent::Gap { .. } => {
                self.dirs[side as usize].lost = true;
                return;
            }
        };
        let mark = Mark {
            frame: c.frame,
            ts: c.ts,
        };
        let mut i = 0;
        while i < c.data.len() {
            let d = &mut self.dirs[side as usize];
            if d.lost {
                return;
            }
            if d.body_left > 0 {
                let take = (d.body_left as usize).min(c.data.len() - i);
                d.body_left -= take as u32;
                i += take;
                continue;
            }
            if d.header_len == 0 {
                d.start = (mark, c.seq.plus(i as u32), c.ack);
            }
            d.header[d.header_len as usize] = c.data[i];
            d.header_len += 1;
            i += 1;
            if d.header_len < 5 {
                continue;
            }
            d.header_len = 0;
            let kind = d.header[0];
            if !(20..=24).contains(&kind) || d.header[1] != 3 {
                d.lost = true;
                return;
            }
            let len = u16::from_be_bytes([d.header[3], d.header[4]]);
            d.body_left = len as u32;
            let start = d.start;
            self.record(side, kind, len, start);
        }
    }

    fn record(
        &mut self,
        side: Side,
        kind: u8,
        len: u16,
        start: (Mark, SeqNumber, Option<SeqNumber>),
    ) {
        let (mark, seq, ack) = start;
        let close_notify = kind == ALERT || (kind == APPLICATION_DATA && len == TLS13_ALERT_LEN);
        match (kind, side) {
            (HANDSHAKE, _) => self.handshake_seen = true,
            (_, Side::Server) if close_notify && self.server_close_notify.is_none() => {
                self.server_close_notify = Some(mark);
                self.server_close_notify_ack = ack;
            }
            // A later alert is not data either.
            (_, Side::Server) if close_notify => {}
            (APPLICATION_DATA, Side::Server) => {
                self.app_data[1] += 1;
                self.last_data[1] = Some(mark);
                if self.pending_request.take().is_some() {
                    self.exchanges += 1;
                }
            }
            (APPLICATION_DATA, Side::Client) => {
                self.app_data[0] += 1;
                self.last_data[0] = Some(mark);
                if self.pending_request.is_none() {
                    self.pending_request = Some(mark);
                    self.pending_request_seq = Some(seq);
                }
            }
            _ => {}
        }
    }

    /// The last application data of either side.
    pub fn last_data(&self) -> Option<Mark> {
        self.last_data[0].max(self.last_data[1])
    }
}
