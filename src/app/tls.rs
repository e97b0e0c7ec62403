//! TLS records, followed just far enough to see exchanges and closes through encryption.
//!
//! After the handshake every record is opaque, but its 5-byte header is not, and neither is
//! the conversation's shape. The tracker builds requests from that shape, not one per record:
//! - **A request** opens with a client application-data record after the previous one was
//!   answered. Client records that follow within [`CONTINUATION`] of the client's previous
//!   record belong to the same request (one flight, or a body written after an early
//!   answer, as Python's `http.client` does with a POST's head and body).
//! - **An answer** is a server application-data record whose segment acknowledges the
//!   request's first byte: the server must have received a request to answer it. Server
//!   records that do not (TLS 1.3 handshake messages and session tickets, sent before the
//!   server read anything) answer nothing.
//! - **TLS 1.3 handshake.** After a ServerHello that selects TLS 1.3 (its
//!   `supported_versions` extension; or, without a readable hello, a server data record
//!   before the client's second flight), the client's first application-data record is its
//!   encrypted Finished, not a request.
//! - **close_notify**, in either direction: an alert record (content type 21, TLS 1.2), or a
//!   record of exactly [`TLS13_ALERT_LEN`] bytes (TLS 1.3, where alerts are encrypted as
//!   application data: a two-byte alert, its inner content type and a 16-byte AEAD tag; no
//!   HTTP request or response is that short).
//! - **Names.** The ClientHello's server name (SNI) and offered ALPN protocols, and the
//!   protocol a TLS 1.2 ServerHello selected, are read from the hellos.
//!
//! What diagnosis reads: the request still waiting for an answer if any, when the last
//! exchange ended, how many were answered, and who sent close_notify when.

use super::Mark;
use crate::flows::reassembly::StreamEvent;
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use crate::time::Nanos;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// Length of a TLS 1.3 record carrying an encrypted alert (AES-GCM or ChaCha20-Poly1305).
pub const TLS13_ALERT_LEN: u16 = 19;
/// Client records closer than this to the client's previous record belong to one request.
pub const CONTINUATION: Nanos = Nanos(10_000_000);
/// Most bytes of a hello buffered to read its extensions.
const MAX_HELLO: usize = 16 * 1024;

/// Header parsing state of one direction.
#[derive(Clone, Debug, Default)]
struct Records {
    header: [u8; 5],
    header_len: u8,
    /// Where the record being read starts: frame, sequence number, and the ACK its segment
    /// carried.
    start: (Mark, SeqNumber, Option<SeqNumber>),
    body_left: u32,
    /// The body being read is a handshake record whose bytes the hello buffer wants.
    keep_body: bool,
    lost: bool,
    /// Handshake and change-cipher-spec records sent.
    handshake_records: u32,
    /// Content type of the previous record.
    previous: u8,
}

/// One request over TLS: a flight of client records, and the server's answer.
#[derive(Copy, Clone, Debug)]
pub struct TlsRequest {
    /// Its first record.
    pub start: Mark,
    /// Sequence number of its first byte.
    pub seq: SeqNumber,
    /// The acknowledgment its first segment carried (how much of the server's stream, and
    /// whether its FIN, the client had when it wrote it).
    pub ack: Option<SeqNumber>,
    /// Its last record so far.
    pub last_record: Mark,
    /// Records it took.
    pub records: u32,
    /// The first server record that answered it.
    pub answered: Option<Mark>,
    /// The last server record of the answer so far.
    pub answer_last: Option<Mark>,
}

/// What the hellos say.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HelloInfo {
    /// The server name the client asked for (SNI); escape before printing.
    pub sni: Option<String>,
    /// ALPN protocols the client offered (`h2`, `http/1.1`); escape before printing.
    pub alpn_offered: Vec<String>,
    /// The ALPN protocol a TLS 1.2 ServerHello selected (TLS 1.3 encrypts it).
    pub alpn_selected: Option<String>,
    /// The version the ServerHello selected: `1.3`, `1.2`, … (`None` when not seen).
    pub version: Option<&'static str>,
}

/// TLS state of one connection.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// A handshake record was seen.
    pub handshake_seen: bool,
    /// What the hellos say.
    pub hello: HelloInfo,
    /// Application-data records per side, `[client, server]` (alerts not counted).
    pub app_data: [u64; 2],
    /// Start of the last application-data record of each side (alerts excluded).
    pub last_data: [Option<Mark>; 2],
    /// Requests answered, the current one not counted.
    pub exchanges: u64,
    /// Requests seen in all.
    pub requests: u64,
    /// The current request: the latest one, answered or not.
    pub current: Option<TlsRequest>,
    /// The end of the last answered exchange before the current request.
    pub last_answer: Option<Mark>,
    /// The first close_notify of each side, `[client, server]`, with the acknowledgment its
    /// segment carried.
    pub close_notify: [Option<(Mark, Option<SeqNumber>)>; 2],
    /// TLS 1.3: the client's encrypted Finished was seen (so later records are data).
    client_finished: bool,
    /// TLS 1.3 was selected (hello or record pattern).
    tls13: bool,
    hello_buf: [Vec<u8>; 2],
    hello_done: [bool; 2],
    dirs: [Records; 2],
}

impl Tls {
    /// Memory this state holds on the heap (an estimate: the hellos being read and what
    /// they said).
    pub fn heap_bytes(&self) -> usize {
        self.hello_buf.iter().map(|b| b.capacity()).sum::<usize>() + 256
    }

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
        let s = side as usize;
        let mut i = 0;
        while i < c.data.len() {
            let d = &mut self.dirs[s];
            if d.lost {
                return;
            }
            if d.body_left > 0 {
                let take = (d.body_left as usize).min(c.data.len() - i);
                d.body_left -= take as u32;
                if d.keep_body {
                    self.hello_bytes(side, &c.data[i..i + take]);
                }
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
            d.keep_body = kind == HANDSHAKE && !self.hello_done[s];
            let start = d.start;
            self.record(side, kind, len, start);
            self.dirs[s].previous = kind;
        }
    }

    /// Buffers handshake bytes until the side's hello is whole, then reads it.
    fn hello_bytes(&mut self, side: Side, bytes: &[u8]) {
        let s = side as usize;
        let buf = &mut self.hello_buf[s];
        let room = MAX_HELLO.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if buf.len() < 4 {
            return;
        }
        let need = 4 + u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
        if buf.len() < need && buf.len() < MAX_HELLO {
            return;
        }
        let buf = std::mem::take(&mut self.hello_buf[s]);
        self.hello_done[s] = true;
        self.dirs[s].keep_body = false;
        super::hello::read(&buf, &mut self.hello);
        if self.hello.version == Some("1.3") {
            self.tls13 = true;
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
        let s = side as usize;
        if kind == HANDSHAKE || kind == CHANGE_CIPHER_SPEC {
            self.handshake_seen |= kind == HANDSHAKE;
            self.dirs[s].handshake_records += 1;
            return;
        }
        let close_notify = kind == ALERT || (kind == APPLICATION_DATA && len == TLS13_ALERT_LEN);
        if close_notify {
            self.close_notify[s].get_or_insert((mark, ack));
            return;
        }
        if kind != APPLICATION_DATA {
            return;
        }
        self.app_data[s] += 1;
        self.last_data[s] = Some(mark);
        match side {
            Side::Server => {
                // TLS 1.3 without a readable hello: the server sends encrypted handshake
                // records before the client's second flight (TLS 1.2 never does).
                if self.handshake_seen
                    && self.app_data[0] == 0
                    && self.dirs[0].handshake_records <= 1
                {
                    self.tls13 = true;
                }
                if let Some(r) = self.current.as_mut() {
                    // An answer needs the request: its segment acknowledges the request.
                    if ack.is_none_or(|a| a > r.seq) {
                        r.answered.get_or_insert(mark);
                        r.answer_last = Some(mark);
                    }
                }
            }
            Side::Client => {
                if self.tls13 && !self.client_finished {
                    self.client_finished = true;
                    return;
                }
                if let Some(r) = self.current.as_mut() {
                    let continues = mark.ts.since(r.last_record.ts) < CONTINUATION;
                    if continues || r.answered.is_none() {
                        r.records += 1;
                        r.last_record = mark;
                        return;
                    }
                    self.exchanges += 1;
                    self.last_answer = r.answer_last;
                }
                self.requests += 1;
                self.current = Some(TlsRequest {
                    start: mark,
                    seq,
                    ack,
                    last_record: mark,
                    records: 1,
                    answered: None,
                    answer_last: None,
                });
            }
        }
    }

    /// The request still waiting for its answer, if any.
    pub fn unanswered(&self) -> Option<&TlsRequest> {
        self.current.as_ref().filter(|r| r.answered.is_none())
    }

    /// Requests answered, the current one included.
    pub fn answered(&self) -> u64 {
        self.exchanges + self.current.is_some_and(|r| r.answered.is_some()) as u64
    }

    /// The end of the last answered exchange (the last record of its answer so far).
    pub fn last_exchange_end(&self) -> Option<Mark> {
        match self.current {
            Some(r) if r.answered.is_some() => r.answer_last,
            _ => self.last_answer,
        }
    }

    /// The end of the last exchange that finished before the current request.
    pub fn previous_exchange_end(&self) -> Option<Mark> {
        self.last_answer
    }

    /// The last application data of either side.
    pub fn last_data(&self) -> Option<Mark> {
        self.last_data[0].max(self.last_data[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::reassembly::Chunk;
    use crate::source::FrameRef;
    use crate::time::Timestamp;

    struct Feed {
        tls: Tls,
        seq: [u32; 2],
        frame: u64,
        now: i64,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                tls: Tls::default(),
                seq: [1, 1],
                frame: 0,
                now: 0,
            }
        }
        /// One record of `kind` and body length `len` from `side`, `after_ms` later.
        fn record(&mut self, side: Side, kind: u8, len: u16, after_ms: i64) {
            self.frame += 1;
            self.now += after_ms * 1_000_000;
            let mut data = vec![kind, 3, 3];
            data.extend_from_slice(&len.to_be_bytes());
            data.resize(5 + len as usize, 0);
            let i = side as usize;
            let peer = side.peer() as usize;
            let chunk = Chunk {
                data: &data,
                seq: SeqNumber(self.seq[i]),
                frame: FrameRef {
                    file: 0,
                    number: self.frame,
                },
                ts: Timestamp(self.now),
                ack: Some(SeqNumber(self.seq[peer])),
            };
            self.seq[i] += data.len() as u32;
            self.tls.on_event(side, StreamEvent::Data(chunk));
        }
    }

    #[test]
    fn head_and_body_records_after_an_early_answer_are_one_request() {
        let mut f = Feed::new();
        f.record(Side::Client, HANDSHAKE, 100, 0);
        f.record(Side::Server, HANDSHAKE, 100, 1);
        f.record(Side::Client, HANDSHAKE, 50, 1);
        f.record(Side::Server, HANDSHAKE, 50, 1);
        f.record(Side::Client, APPLICATION_DATA, 155, 1); // POST head
        f.record(Side::Server, APPLICATION_DATA, 179, 0); // early answer
        f.record(Side::Client, APPLICATION_DATA, 54, 0); // the body, 0 ms later
        assert_eq!(f.tls.requests, 1);
        assert!(f.tls.unanswered().is_none());
        f.record(Side::Client, APPLICATION_DATA, 155, 1000); // the next request
        assert_eq!((f.tls.requests, f.tls.exchanges), (2, 1));
        assert!(f.tls.unanswered().is_some());
    }

    #[test]
    fn tls13_finished_tickets_and_close_notify_answer_nothing() {
        let mut f = Feed::new();
        f.record(Side::Client, HANDSHAKE, 200, 0); // ClientHello
        f.record(Side::Server, HANDSHAKE, 90, 1); // ServerHello
        f.record(Side::Server, CHANGE_CIPHER_SPEC, 1, 0);
        f.record(Side::Server, APPLICATION_DATA, 900, 0); // encrypted handshake
        f.record(Side::Client, CHANGE_CIPHER_SPEC, 1, 1);
        f.record(Side::Client, APPLICATION_DATA, 53, 0); // Finished
        f.record(Side::Client, APPLICATION_DATA, 120, 0); // the request
                                                          // Session tickets, written before the server read the request.
        f.seq[0] -= 125;
        f.record(Side::Server, APPLICATION_DATA, 250, 0);
        f.seq[0] += 125;
        assert!(f.tls.unanswered().is_some(), "a ticket is no answer");
        f.record(Side::Server, APPLICATION_DATA, 300, 1); // the response
        assert_eq!((f.tls.requests, f.tls.answered()), (1, 1));
        f.record(Side::Server, APPLICATION_DATA, TLS13_ALERT_LEN, 1000); // close_notify
        f.record(Side::Client, APPLICATION_DATA, TLS13_ALERT_LEN, 0); // the client's own
        assert_eq!(f.tls.requests, 1, "a close_notify is no request");
        assert!(f.tls.close_notify[0].is_some() && f.tls.close_notify[1].is_some());
    }
}
