//! HTTP/1.x exchanges: requests paired with responses, in order.
//!
//! Message heads are parsed by `httparse`; body framing follows RFC 9112 §6.3: no body for
//! responses to HEAD, for 1xx, 204 and 304; a tunnel after a 2xx to CONNECT or a 101;
//! `Transfer-Encoding: chunked`; `Content-Length`; otherwise a response runs until the server
//! closes (a request without a length has no body). Pipelined requests queue up and responses
//! are matched in order; interim 1xx responses do not consume a request. After a gap (bytes
//! never captured) a body with a known length just counts the missing bytes; otherwise the
//! parser resynchronises at the next segment that starts a message.

use super::framing::{chunked, find_head_end, Chunked, Framing};
use super::tolerant::{self, Malformed};
use super::Mark;
use crate::flows::reassembly::{Chunk, StreamEvent};
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use std::collections::VecDeque;
use std::sync::Arc;

/// Longest message head we buffer before giving up on the stream.
const MAX_HEAD: usize = 64 * 1024;
/// Longest target kept (the rest is replaced by `…`).
const MAX_TARGET: usize = 512;
/// Header fields parsed without allocating; a head with more is parsed again.
const MOST_HEADERS: usize = 40;
/// Header fields accepted at most (a 64 KiB head holds no more than this many useful ones).
const MAX_HEADERS: usize = 2048;
/// Requests kept per connection; beyond it answered ones are folded into a count, and
/// only if none can be are new ones counted, not stored.
const MAX_REQUESTS: usize = 10_000;

/// One HTTP request and, if seen, its response.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method token (`GET`, `POST`, …).
    pub method: Arc<str>,
    /// The request target as sent, cut to a bounded length; escape before printing.
    pub target: Arc<str>,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Frame and time of the request's first byte.
    pub start: Mark,
    /// Sequence number of its first byte.
    pub seq: SeqNumber,
    /// Acknowledgment number of the segment that carried its first byte: how much of the
    /// server's stream (and whether its FIN) the client had received when it wrote it.
    pub ack: Option<SeqNumber>,
    /// Frame and time of its last byte, once the whole request (head and body) was sent.
    pub end: Option<Mark>,
    /// Sequence number just after its last byte, once known.
    pub end_seq: Option<SeqNumber>,
    /// Carries an `Idempotency-Key` or `X-Idempotency-Key` header.
    pub idempotency_key: bool,
    /// Asked for `Connection: close`.
    pub connection_close: bool,
    /// Asked to switch to HTTP/2 (`Upgrade: h2c`).
    pub upgrade_h2c: bool,
    /// The strict parser rejected the head and it was read tolerantly: what was wrong.
    pub malformed: Option<Malformed>,
    /// The response, if one started.
    pub response: Option<Response>,
}

impl Request {
    /// Idempotent by method (RFC 9110 §9.2.2), or made so by an idempotency key.
    pub fn idempotent(&self) -> bool {
        method_is_idempotent(&self.method) || self.idempotency_key
    }
}

/// True for the methods RFC 9110 §9.2.2 defines as idempotent.
pub fn method_is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// A response to a request.
#[derive(Clone, Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Minor version.
    pub version: u8,
    /// Frame and time of its first byte.
    pub start: Mark,
    /// Frame and time of its last byte, once complete.
    pub end: Option<Mark>,
    /// The `timeout` of a `Keep-Alive` header, in seconds.
    pub keep_alive_timeout: Option<u32>,
    /// Announced the connection would close (`Connection: close`, or HTTP/1.0 without
    /// keep-alive).
    pub connection_close: bool,
    /// The body length it announced (`Content-Length`), if any.
    pub announced_len: Option<u64>,
    /// Body bytes seen so far (the capture's gaps counted as seen).
    pub body_bytes: u64,
    /// Frame and time of the last byte of it seen so far (head or body).
    pub last_byte: Mark,
    /// The strict parser rejected the head and it was read tolerantly.
    pub malformed: Option<Malformed>,
    /// Sequence number just past its last byte, once complete: whether the client
    /// acknowledged it says whether it was delivered.
    pub end_seq: Option<SeqNumber>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    Chunked(Chunked),
    UntilClose,
    Tunnel,
    Resync,
    Off,
}

struct Parser {
    state: State,
    head: Vec<u8>,
    head_start: Option<(Mark, SeqNumber, Option<SeqNumber>)>,
    /// Message whose body is being read (request index), if any.
    message: Option<usize>,
    /// Head bytes not kept because the memory budget cut the head short (0 while the whole
    /// head is kept): the parser only looks for the head's end, with `tail` the last bytes
    /// seen so that an end split across segments is found.
    skipped: u64,
    tail: [u8; 3],
    tail_len: u8,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Head,
            head: Vec::new(),
            head_start: None,
            message: None,
            skipped: 0,
            tail: [0; 3],
            tail_len: 0,
        }
    }
}

/// HTTP/1.x state of one connection.
#[derive(Default)]
pub struct Http {
    /// Requests in the order the client sent them.
    pub requests: Vec<Request>,
    /// Requests beyond the storage cap.
    pub requests_dropped: u64,
    /// Responses that matched no request (capture started mid-exchange).
    pub orphan_responses: u32,
    /// Times a parser lost the message boundaries (gap or malformed message).
    pub desyncs: u32,
    /// The connection became a tunnel (CONNECT or Upgrade); parsing stopped there.
    pub tunnel: bool,
    /// The client's stream did not parse as HTTP.
    pub not_http: bool,
    /// Why parsing stopped, when it did: the stream's first bytes were not a request
    /// line, or a later head was neither HTTP nor readable tolerantly.
    pub stopped: Option<&'static str>,
    /// Requests whose head only the tolerant reading accepted.
    pub malformed_requests: u32,
    /// Heads cut short (snap length, capture loss) and recorded from what was left.
    pub cut_heads: u32,
    /// The connection switched to HTTP/2 after `Upgrade: h2c` and a 101: its frames.
    pub h2: Option<Box<super::h2::H2>>,
    /// Answered requests at the start of the connection that the memory budget folded into
    /// this count (they are no longer in `requests`; their positions still count).
    pub folded: u64,
    /// The decoded `HTTP2-Settings` of an `Upgrade: h2c` request, until the 101 comes.
    h2_settings: Vec<u8>,
    /// Bytes of the methods and targets stored.
    text_bytes: usize,
    client: Parser,
    server: Parser,
    awaiting: VecDeque<usize>,
}

/// Cheap check that `data` starts like an HTTP request line: a method token and a space.
pub fn looks_like_request(data: &[u8]) -> bool {
    let data = trim_leading_newlines(data);
    let token = data
        .iter()
        .take(24)
        .take_while(|b| b.is_ascii_uppercase() || **b == b'-' || **b == b'_')
        .count();
    token >= 3 && data.get(token) == Some(&b' ')
}

fn trim_leading_newlines(mut data: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = data {
        data = rest;
    }
    data
}

impl Http {
    /// Takes one stream event of `side`.
    pub fn on_event(&mut self, side: Side, ev: StreamEvent<'_>) {
        match ev {
            StreamEvent::Data(c) => self.on_data(side, c),
            StreamEvent::Gap { len, frame, ts } => self.on_gap(side, len, Mark { frame, ts }),
        }
    }

    /// `side` closed its stream: a response delimited by the close is complete.
    pub fn on_fin(&mut self, side: Side, mark: Mark) {
        let p = self.parser(side);
        if p.state == State::UntilClose {
            if let Some(i) = p.message.take() {
                p.state = State::Off;
                if let Some(r) = self.requests.get_mut(i).and_then(|r| r.response.as_mut()) {
                    r.end = Some(mark);
                }
            }
        }
    }

    /// `n` more body bytes of message `index` were seen (at `mark`, or lost in a gap).
    fn body_seen(&mut self, side: Side, index: Option<usize>, n: u64, mark: Option<Mark>) {
        if side != Side::Server {
            return;
        }
        if let Some(r) = index
            .and_then(|i| self.requests.get_mut(i))
            .and_then(|r| r.response.as_mut())
        {
            r.body_bytes += n;
            if let Some(m) = mark {
                r.last_byte = m;
            }
        }
    }

    fn parser(&mut self, side: Side) -> &mut Parser {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn on_gap(&mut self, side: Side, len: u64, mark: Mark) {
        let p = self.parser(side);
        match p.state {
            State::Body(remaining) if len < remaining => {
                p.state = State::Body(remaining - len);
                let current = p.message;
                self.body_seen(side, current, len, None);
            }
            State::Body(remaining) if len == remaining => {
                let msg = p.message.take();
                p.state = State::Head;
                self.body_seen(side, msg, len, None);
                self.message_done(side, msg, mark, None);
            }
            State::Head if p.head.is_empty() => p.state = State::Resync,
            State::Head => {
                // A head cut by the snap length or a capture loss: keep what it shows.
                let head = std::mem::take(&mut p.head);
                let start = p.head_start.take().unwrap_or_default();
                p.state = State::Resync;
                self.cut_head(side, &head, start, mark);
            }
            State::Tunnel => {
                if let Some(h2) = self.h2.as_mut() {
                    h2.on_event(
                        side,
                        StreamEvent::Gap {
                            len,
                            frame: mark.frame,
                            ts: mark.ts,
                        },
                    );
                }
            }
            State::UntilClose | State::Off | State::Resync => {}
            _ => {
                p.state = State::Resync;
                p.head.clear();
                p.head_start = None;
                p.message = None;
                self.desyncs += 1;
            }
        }
    }

    fn on_data(&mut self, side: Side, c: Chunk<'_>) {
        let mut pos = 0usize;
        while pos < c.data.len() {
            let p = self.parser(side);
            let rest = &c.data[pos..];
            match p.state {
                State::UntilClose => {
                    let current = p.message;
                    let mark = Mark {
                        frame: c.frame,
                        ts: c.ts,
                    };
                    self.body_seen(side, current, rest.len() as u64, Some(mark));
                    return;
                }
                State::Tunnel => {
                    // After `Upgrade: h2c` and its 101, the rest is HTTP/2.
                    if let Some(h2) = self.h2.as_mut() {
                        h2.on_event(
                            side,
                            StreamEvent::Data(Chunk {
                                data: rest,
                                seq: c.seq.plus(pos as u32),
                                ..c
                            }),
                        );
                    }
                    return;
                }
                State::Off => return,
                State::Resync => {
                    let starts = match side {
                        Side::Client => looks_like_request(rest),
                        Side::Server => rest.starts_with(b"HTTP/1."),
                    };
                    if pos == 0 && starts {
                        p.state = State::Head;
                    } else {
                        return;
                    }
                }
                State::Head => pos += self.head_bytes(side, &c, pos),
                State::Body(remaining) => {
                    let take = remaining.min(rest.len() as u64);
                    pos += take as usize;
                    let mark = Mark {
                        frame: c.frame,
                        ts: c.ts,
                    };
                    let current = p.message;
                    if take == remaining {
                        let msg = p.message.take();
                        p.state = State::Head;
                        let end_seq = c.seq.plus(pos as u32);
                        self.body_seen(side, current, take, Some(mark));
                        self.message_done(
                            side,
                            msg,
                            Mark {
                                frame: c.frame,
                                ts: c.ts,
                            },
                            Some(end_seq),
                        );
                    } else {
                        p.state = State::Body(remaining - take);
                        self.body_seen(side, current, take, Some(mark));
                    }
                }
                State::Chunked(st) => {
                    let (used, next) = chunked(st, rest);
                    pos += used;
                    let current = p.message;
                    let mark = Mark {
                        frame: c.frame,
                        ts: c.ts,
                    };
                    self.body_seen(side, current, used as u64, Some(mark));
                    let p = self.parser(side);
                    match next {
                        Some(st) => p.state = State::Chunked(st),
                        None => {
                            let msg = p.message.take();
                            p.state = State::Head;
                            let end_seq = c.seq.plus(pos as u32);
                            self.message_done(
                                side,
                                msg,
                                Mark {
                                    frame: c.frame,
                                    ts: c.ts,
                                },
                                Some(end_seq),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Consumes head bytes from `c.data[pos..]`; parses the head once complete.
    fn head_bytes(&mut self, side: Side, c: &Chunk<'_>, pos: usize) -> usize {
        let p = self.parser(side);
        let mut rest = &c.data[pos..];
        let mut used = 0;
        if p.head.is_empty() {
            // Stray CRLFs between messages are allowed (RFC 9112 §2.2).
            let trimmed = trim_leading_newlines(rest);
            used = rest.len() - trimmed.len();
            rest = trimmed;
            if rest.is_empty() {
                return used;
            }
            let at = pos + used;
            p.head_start = Some((
                Mark {
                    frame: c.frame,
                    ts: c.ts,
                },
                c.seq.plus(at as u32),
                c.ack,
            ));
            // The whole head in this segment (the usual case): parse it where it lies.
            if let Some(end) = find_head_end(rest, 0).filter(|&end| end <= MAX_HEAD) {
                let start = p.head_start.take().unwrap_or_default();
                used += end;
                let end_seq = c.seq.plus((pos + used) as u32);
                self.parse_head(
                    side,
                    &rest[..end],
                    start,
                    Mark {
                        frame: c.frame,
                        ts: c.ts,
                    },
                    end_seq,
                );
                return used;
            }
        }
        if p.skipped > 0 {
            return used + self.skip_head_bytes(side, c, pos + used);
        }
        let searched_from = p.head.len().saturating_sub(3);
        let take = rest
            .len()
            .min(MAX_HEAD + 4 - p.head.len().min(MAX_HEAD + 4));
        p.head.extend_from_slice(&rest[..take]);
        match find_head_end(&p.head, searched_from) {
            Some(end) => {
                let consumed_here = end - (p.head.len() - take);
                p.head.truncate(end);
                used += consumed_here;
                let head = std::mem::take(&mut p.head);
                let start = p.head_start.take().unwrap_or_default();
                let end_seq = c.seq.plus((pos + used) as u32);
                self.parse_head(
                    side,
                    &head,
                    start,
                    Mark {
                        frame: c.frame,
                        ts: c.ts,
                    },
                    end_seq,
                );
                let p = self.parser(side);
                // Reuse the buffer, but do not keep a large one for the connection's life.
                if head.capacity() <= 1024 {
                    p.head = head;
                    p.head.clear();
                }
                used
            }
            None if p.head.len() > MAX_HEAD => {
                p.head.clear();
                p.head_start = None;
                p.state = State::Resync;
                self.desyncs += 1;
                used + take
            }
            None => used + take,
        }
    }

    fn parse_head(
        &mut self,
        side: Side,
        head: &[u8],
        start: (Mark, SeqNumber, Option<SeqNumber>),
        end: Mark,
        end_seq: SeqNumber,
    ) {
        match side {
            Side::Client => self.request_head(head, start, end, end_seq),
            Side::Server => self.response_head(head, start.0, end, end_seq),
        }
    }

    /// Stores a request. Most connections carry one or two: grow the list from one, not from
    /// the usual four (memory per open connection matters on busy captures).
    fn push_request(&mut self, r: Request) {
        if self.requests.capacity() == self.requests.len() {
            self.requests.reserve_exact(self.requests.len().max(1));
        }
        self.text_bytes += r.method.len() + r.target.len();
        self.requests.push(r);
    }

    /// True if one more request can be stored: at the cap, the answered requests at the
    /// start are folded into [`Http::folded`] first, so that a long connection keeps its
    /// latest requests (the ones in flight when it ends), not its first.
    fn has_room(&mut self) -> bool {
        if self.requests.len() >= MAX_REQUESTS {
            self.fold_answered(super::SHED_KEEP_REQUESTS);
        }
        self.requests.len() < MAX_REQUESTS
    }

    /// Memory this connection's HTTP state holds on the heap (an estimate that counts what
    /// grows: requests, heads being read, HTTP/2 state).
    pub fn heap_bytes(&self) -> usize {
        self.requests.capacity() * std::mem::size_of::<Request>()
            + self.text_bytes
            + self.client.head.capacity()
            + self.server.head.capacity()
            + self.awaiting.capacity() * std::mem::size_of::<usize>()
            + self.h2_settings.capacity()
            + self.h2.as_ref().map_or(0, |h| h.heap_bytes())
    }

    /// Memory budget: cuts every head being read that is longer than `keep` bytes to its
    /// complete lines within `keep`; the parser goes on looking for the head's end and then
    /// reads what was kept (counted in `cut_heads`). Returns how many heads were cut.
    pub fn shed_heads(&mut self, keep: usize) -> u32 {
        let mut cut_now = 0;
        for side in [Side::Client, Side::Server] {
            let p = self.parser(side);
            if p.state != State::Head || p.skipped > 0 || p.head.len() <= keep {
                continue;
            }
            let n = p.head.len();
            p.tail_len = n.min(3) as u8;
            p.tail[..n.min(3)].copy_from_slice(&p.head[n - n.min(3)..]);
            let cut = p.head[..keep]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(keep, |i| i + 1);
            p.skipped = (n - cut) as u64;
            p.head.truncate(cut);
            p.head.shrink_to_fit();
            cut_now += 1;
        }
        cut_now
    }

    /// Memory budget: folds the answered requests at the start of the list into
    /// [`Http::folded`], keeping the last `keep_last` and every request still waiting or
    /// being read. Returns how many were folded.
    pub fn fold_answered(&mut self, keep_last: usize) -> u64 {
        let busy = [
            self.awaiting.front().copied(),
            self.client.message,
            self.server.message,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(usize::MAX);
        let limit = self.requests.len().saturating_sub(keep_last).min(busy);
        let n = self.requests[..limit]
            .iter()
            .position(|r| r.response.as_ref().is_none_or(|x| x.end.is_none()) || r.upgrade_h2c)
            .unwrap_or(limit);
        if n == 0 {
            return 0;
        }
        for r in self.requests.drain(..n) {
            self.text_bytes -= r.method.len() + r.target.len();
        }
        self.requests.shrink_to(self.requests.len() * 2);
        for i in self.awaiting.iter_mut() {
            *i -= n;
        }
        for p in [&mut self.client, &mut self.server] {
            if let Some(m) = p.message.as_mut() {
                *m -= n;
            }
        }
        self.folded += n as u64;
        n as u64
    }

    /// Consumes the bytes of a head the memory budget cut short: looks for its end only;
    /// once found, reads the lines that were kept. Returns the bytes used.
    fn skip_head_bytes(&mut self, side: Side, c: &Chunk<'_>, pos: usize) -> usize {
        let rest = &c.data[pos..];
        let p = self.parser(side);
        let tl = p.tail_len as usize;
        let k = rest.len().min(3);
        let mut joint = [0u8; 6];
        joint[..tl].copy_from_slice(&p.tail[..tl]);
        joint[tl..tl + k].copy_from_slice(&rest[..k]);
        let end = find_head_end(&joint[..tl + k], 0)
            .map(|e| e - tl)
            .or_else(|| find_head_end(rest, 0));
        let Some(end) = end else {
            p.skipped += rest.len() as u64;
            let mut last = [0u8; 6];
            let all = tl + rest.len().min(3);
            last[..tl].copy_from_slice(&p.tail[..tl]);
            last[tl..all].copy_from_slice(&rest[rest.len() - rest.len().min(3)..]);
            let keep = all.min(3);
            p.tail[..keep].copy_from_slice(&last[all - keep..all]);
            p.tail_len = keep as u8;
            return rest.len();
        };
        p.skipped = 0;
        p.tail_len = 0;
        let mut head = std::mem::take(&mut p.head);
        let start = p.head_start.take().unwrap_or_default();
        let mark = Mark {
            frame: c.frame,
            ts: c.ts,
        };
        let end_seq = c.seq.plus((pos + end) as u32);
        self.cut_heads += 1;
        if head.contains(&b'\n') {
            head.extend_from_slice(b"\r\n");
            self.parse_head(side, &head, start, mark, end_seq);
        } else {
            self.cut_head(side, &head, start, mark);
        }
        end
    }

    /// Records what a head cut short still says: the request line's method and the start
    /// of its target, or the status line's code. The rest of the message is lost, so its end
    /// is taken to be the segment that carried the head.
    fn cut_head(
        &mut self,
        side: Side,
        head: &[u8],
        start: (Mark, SeqNumber, Option<SeqNumber>),
        mark: Mark,
    ) {
        let line = head
            .split(|&b| b == b'\r' || b == b'\n')
            .next()
            .unwrap_or(&[]);
        let mut words = line.split(|&b| b == b' ');
        match side {
            Side::Client => {
                if !looks_like_request(head) {
                    return;
                }
                let method = String::from_utf8_lossy(words.next().unwrap_or(&[])).into_owned();
                let target = words
                    .next()
                    .map(|t| String::from_utf8_lossy(t).into_owned())
                    .unwrap_or_default();
                let complete_target = line.iter().filter(|&&b| b == b' ').count() >= 2;
                let target = if complete_target {
                    target
                } else {
                    format!("{target}…")
                };
                if !self.has_room() {
                    self.requests_dropped += 1;
                    return;
                }
                self.push_request(Request {
                    method: method.into(),
                    target: cut(&target).into(),
                    version: 1,
                    start: start.0,
                    seq: start.1,
                    ack: start.2,
                    end: None,
                    end_seq: None,
                    idempotency_key: false,
                    connection_close: false,
                    upgrade_h2c: false,
                    malformed: None,
                    response: None,
                });
                self.awaiting.push_back(self.requests.len() - 1);
                self.cut_heads += 1;
            }
            Side::Server => {
                if !line.starts_with(b"HTTP/1.") {
                    return;
                }
                let status = words
                    .nth(1)
                    .and_then(|c| std::str::from_utf8(c).ok())
                    .and_then(|c| c.parse::<u16>().ok());
                let Some(status) = status.filter(|s| (100..1000).contains(s)) else {
                    return;
                };
                if (100..200).contains(&status) && status != 101 {
                    return;
                }
                self.cut_heads += 1;
                match self.awaiting.pop_front() {
                    Some(i) => {
                        self.requests[i].response = Some(Response {
                            status,
                            version: 1,
                            start: start.0,
                            end: Some(mark),
                            keep_alive_timeout: None,
                            connection_close: false,
                            announced_len: None,
                            body_bytes: 0,
                            last_byte: mark,
                            malformed: None,
                            end_seq: None,
                        })
                    }
                    None => self.orphan_responses += 1,
                }
            }
        }
    }

    fn fail(&mut self, side: Side) {
        let first = self.requests.is_empty() && side == Side::Client;
        let p = self.parser(side);
        p.state = if first { State::Off } else { State::Resync };
        if first {
            self.not_http = true;
            self.stopped = Some("the client's first message is not an HTTP/1.x request");
        } else {
            self.desyncs += 1;
        }
    }

    fn request_head(
        &mut self,
        head: &[u8],
        start: (Mark, SeqNumber, Option<SeqNumber>),
        end: Mark,
        end_seq: SeqNumber,
    ) {
        // Most heads fit the small array (zeroed for every message); a longer one is parsed
        // again with room for more.
        let mut headers = [httparse::EMPTY_HEADER; MOST_HEADERS];
        let mut more;
        let mut req = httparse::Request::new(&mut headers);
        let mut parsed = req.parse(head);
        if parsed == Err(httparse::Error::TooManyHeaders) {
            more = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            req = httparse::Request::new(&mut more);
            parsed = req.parse(head);
        }
        let loose;
        let (method, target, version, fields, malformed): (
            &[u8],
            &[u8],
            u8,
            &[httparse::Header<'_>],
            _,
        ) = if matches!(parsed, Ok(httparse::Status::Complete(_))) {
            (
                req.method.unwrap_or("").as_bytes(),
                req.path.unwrap_or("").as_bytes(),
                req.version.unwrap_or(1),
                req.headers,
                None,
            )
        } else {
            // A real server may still have answered it: read it the lenient way.
            let Some(h) = tolerant::parse(head, true) else {
                return self.fail(Side::Client);
            };
            loose = h;
            self.malformed_requests += 1;
            (
                loose.method,
                loose.target,
                loose.version,
                &loose.headers[..],
                Some(loose.malformed),
            )
        };
        let method = String::from_utf8_lossy(method);
        let target = cut(&String::from_utf8_lossy(target));
        let fr = Framing::of(fields);
        let request = Request {
            method: method.into(),
            target: target.into(),
            version,
            start: start.0,
            seq: start.1,
            ack: start.2,
            end: None,
            end_seq: None,
            idempotency_key: fields.iter().any(|h| {
                h.name.eq_ignore_ascii_case("idempotency-key")
                    || h.name.eq_ignore_ascii_case("x-idempotency-key")
            }),
            connection_close: fr.close,
            upgrade_h2c: fields.iter().any(|h| {
                h.name.eq_ignore_ascii_case("upgrade")
                    && std::str::from_utf8(h.value)
                        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c")))
            }),
            malformed,
            response: None,
        };
        if request.upgrade_h2c {
            use base64::Engine;
            let settings = fields
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("http2-settings"))
                .map(|h| h.value.trim_ascii())
                .unwrap_or_default();
            self.h2_settings = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&settings[..settings.len().min(1024)])
                .unwrap_or_default();
        }
        let index = if self.has_room() {
            self.push_request(request);
            self.awaiting.push_back(self.requests.len() - 1);
            Some(self.requests.len() - 1)
        } else {
            self.requests_dropped += 1;
            None
        };
        let state = if fr.chunked {
            State::Chunked(Chunked::Size {
                value: 0,
                digits: 0,
                ext: false,
            })
        } else {
            match fr.length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Head,
            }
        };
        self.client.message = index;
        self.client.state = state;
        if state == State::Head {
            let msg = self.client.message.take();
            self.message_done(Side::Client, msg, end, Some(end_seq));
        }
    }

    fn response_head(&mut self, head: &[u8], start: Mark, end: Mark, end_seq: SeqNumber) {
        let mut headers = [httparse::EMPTY_HEADER; MOST_HEADERS];
        let mut more;
        let mut resp = httparse::Response::new(&mut headers);
        let mut parsed = resp.parse(head);
        if parsed == Err(httparse::Error::TooManyHeaders) {
            more = vec![httparse::EMPTY_HEADER; MAX_HEADERS];
            resp = httparse::Response::new(&mut more);
            parsed = resp.parse(head);
        }
        let loose;
        let (status, version, fields, malformed): (u16, u8, &[httparse::Header<'_>], _) =
            if matches!(parsed, Ok(httparse::Status::Complete(_))) {
                (
                    resp.code.unwrap_or(0),
                    resp.version.unwrap_or(1),
                    resp.headers,
                    None,
                )
            } else {
                let Some(h) = tolerant::parse(head, false) else {
                    return self.fail(Side::Server);
                };
                loose = h;
                (
                    loose.status,
                    loose.version,
                    &loose.headers[..],
                    Some(loose.malformed),
                )
            };
        let fr = Framing::of(fields);
        if (100..200).contains(&status) && status != 101 {
            return; // interim response: the final one follows
        }
        let index = self.awaiting.pop_front();
        if index.is_none() {
            self.orphan_responses += 1;
        }
        let method = index.map_or("", |i| &*self.requests[i].method);
        let (connect, head) = (method == "CONNECT", method == "HEAD");
        let response = Response {
            status,
            version,
            start,
            end: None,
            keep_alive_timeout: fr.keep_alive_timeout,
            connection_close: fr.close || (version == 0 && !fr.keep_alive),
            announced_len: fr.length.filter(|_| !fr.chunked),
            body_bytes: 0,
            last_byte: end,
            malformed,
            end_seq: None,
        };
        if let Some(i) = index {
            self.requests[i].response = Some(response);
        }
        let tunnel = status == 101 || (connect && (200..300).contains(&status));
        let state = if tunnel {
            State::Tunnel
        } else if head || status == 204 || status == 304 {
            State::Head
        } else if fr.chunked {
            State::Chunked(Chunked::Size {
                value: 0,
                digits: 0,
                ext: false,
            })
        } else if fr.transfer_encoding {
            State::UntilClose
        } else {
            match fr.length {
                Some(0) => State::Head,
                Some(n) => State::Body(n),
                None => State::UntilClose,
            }
        };
        self.server.message = index;
        self.server.state = state;
        if tunnel {
            self.tunnel = true;
            self.client.state = State::Tunnel;
            let upgraded = index.filter(|_| status == 101).map(|i| &self.requests[i]);
            if let Some(r) = upgraded.filter(|r| r.upgrade_h2c) {
                let mut h2 = Box::<super::h2::H2>::default();
                h2.on_upgrade(
                    super::h2::Stream {
                        id: 1,
                        method: Some(r.method.to_string()),
                        path: Some(r.target.to_string()),
                        headers_frame: r.start,
                        seq: r.seq,
                        ack: r.ack,
                        end_stream_sent: r.end,
                        response: None,
                        status: None,
                        response_end: None,
                        reset: None,
                    },
                    &std::mem::take(&mut self.h2_settings),
                );
                self.h2 = Some(h2);
            }
        }
        if state == State::Head || tunnel {
            let msg = self.server.message.take();
            self.message_done(Side::Server, msg, end, Some(end_seq));
        }
    }

    fn message_done(
        &mut self,
        side: Side,
        index: Option<usize>,
        end: Mark,
        end_seq: Option<SeqNumber>,
    ) {
        let Some(r) = index.and_then(|i| self.requests.get_mut(i)) else {
            return;
        };
        match side {
            Side::Client => {
                r.end = Some(end);
                r.end_seq = end_seq;
            }
            Side::Server => {
                if let Some(resp) = r.response.as_mut() {
                    resp.end = Some(end);
                    resp.end_seq = end_seq;
                }
            }
        }
    }
}

/// The target, cut to [`MAX_TARGET`] bytes (on a character boundary) with `…`.
fn cut(target: &str) -> String {
    if target.len() <= MAX_TARGET {
        return target.to_string();
    }
    let mut end = MAX_TARGET;
    while !target.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &target[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FrameRef;
    use crate::time::Timestamp;

    struct Feed {
        http: Http,
        seq: [u32; 2],
        frame: u64,
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                http: Http::default(),
                seq: [1, 1],
                frame: 0,
            }
        }
        fn send(&mut self, side: Side, data: &[u8]) -> u64 {
            self.frame += 1;
            let i = side as usize;
            let chunk = Chunk {
                data,
                seq: SeqNumber(self.seq[i]),
                frame: FrameRef {
                    file: 0,
                    number: self.frame,
                },
                ts: Timestamp(self.frame as i64 * 1000),
                ack: None,
            };
            self.seq[i] += data.len() as u32;
            self.http.on_event(side, StreamEvent::Data(chunk));
            self.frame
        }
        fn statuses(&self) -> Vec<(String, Option<u16>, bool)> {
            self.http
                .requests
                .iter()
                .map(|r| {
                    (
                        r.method.to_string(),
                        r.response.as_ref().map(|x| x.status),
                        r.response.as_ref().is_some_and(|x| x.end.is_some()),
                    )
                })
                .collect()
        }
    }

    #[test]
    fn keep_alive_exchanges_pair_in_order() {
        let mut f = Feed::new();
        f.send(
            Side::Client,
            b"POST /test HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
        );
        f.send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5, max=100\r\n\r\ntest\n",
        );
        f.send(Side::Client, b"GET /a HTTP/1.1\r\n\r\n");
        f.send(
            Side::Server,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            f.statuses(),
            vec![
                ("POST".into(), Some(200), true),
                ("GET".into(), Some(404), true)
            ]
        );
        let r = &f.http.requests[0];
        assert_eq!(r.response.as_ref().unwrap().keep_alive_timeout, Some(5));
        assert!(!r.idempotent());
        assert!(f.http.requests[1].idempotent());
        assert_eq!(r.end.unwrap().frame.number, 1);
    }

    #[test]
    fn pipelined_requests_in_one_segment() {
        let mut f = Feed::new();
        f.send(
            Side::Client,
            b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nHEAD /3 HTTP/1.1\r\n\r\n",
        );
        f.send(Side::Server, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        f.send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n",
        );
        assert_eq!(
            f.statuses().iter().map(|s| s.2).collect::<Vec<_>>(),
            vec![true, true, true]
        );
        assert_eq!(&*f.http.requests[1].target, "/2");
    }

    #[test]
    fn chunked_split_across_segments_with_trailer() {
        let mut f = Feed::new();
        f.send(Side::Client, b"GET / HTTP/1.1\r\n\r\n");
        f.send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
        );
        f.send(Side::Server, b"lo\r\n0\r\nX-T: 1\r\n");
        assert!(!f.statuses()[0].2);
        f.send(Side::Server, b"\r\n");
        assert!(f.statuses()[0].2);
        f.send(Side::Client, b"GET /next HTTP/1.1\r\n\r\n");
        f.send(Side::Server, b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(f.statuses()[1], ("GET".into(), Some(204), true));
    }

    #[test]
    fn interim_and_until_close() {
        let mut f = Feed::new();
        f.send(
            Side::Client,
            b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        );
        f.send(Side::Server, b"HTTP/1.1 100 Continue\r\n\r\n");
        f.send(Side::Client, b"abc");
        f.send(Side::Server, b"HTTP/1.0 200 OK\r\n\r\nbody until close");
        assert_eq!(f.statuses(), vec![("PUT".into(), Some(200), false)]);
        f.http.on_fin(Side::Server, Mark::default());
        assert!(f.statuses()[0].2);
        assert!(
            f.http.requests[0]
                .response
                .as_ref()
                .unwrap()
                .connection_close
        );
    }

    #[test]
    fn gap_inside_a_sized_body_keeps_sync() {
        let mut f = Feed::new();
        f.send(Side::Client, b"GET / HTTP/1.1\r\n\r\n");
        f.send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12",
        );
        f.http.on_event(
            Side::Server,
            StreamEvent::Gap {
                len: 5,
                frame: FrameRef::default(),
                ts: Timestamp(0),
            },
        );
        f.send(Side::Server, b"890");
        assert!(f.statuses()[0].2);
        assert_eq!(f.http.desyncs, 0);
    }

    #[test]
    fn gap_in_a_head_resyncs_at_the_next_message() {
        let mut f = Feed::new();
        f.send(Side::Client, b"GET /1 HTTP/1.1\r\nHo");
        f.http.on_event(
            Side::Client,
            StreamEvent::Gap {
                len: 50,
                frame: FrameRef::default(),
                ts: Timestamp(0),
            },
        );
        f.send(Side::Client, b"junk\r\n\r\n");
        f.send(Side::Client, b"GET /2 HTTP/1.1\r\n\r\n");
        // The cut request is kept from its request line; the junk after the gap is skipped.
        assert_eq!(f.http.requests.len(), 2);
        assert_eq!(&*f.http.requests[0].target, "/1");
        assert_eq!(&*f.http.requests[1].target, "/2");
        assert_eq!(f.http.cut_heads, 1);
    }

    #[test]
    fn heads_cut_by_the_snap_length_still_pair() {
        let mut f = Feed::new();
        let gap = |f: &mut Feed, side| {
            f.http.on_event(
                side,
                StreamEvent::Gap {
                    len: 100,
                    frame: FrameRef::default(),
                    ts: Timestamp(0),
                },
            );
        };
        f.send(Side::Client, b"POST /te");
        gap(&mut f, Side::Client);
        f.send(Side::Server, b"HTTP/1.1 200 O");
        gap(&mut f, Side::Server);
        f.send(Side::Client, b"GET /next HTTP/1.1\r\nHost: a");
        gap(&mut f, Side::Client);
        assert_eq!(
            f.statuses(),
            vec![
                ("POST".into(), Some(200), true),
                ("GET".into(), None, false)
            ]
        );
        assert_eq!(&*f.http.requests[0].target, "/te…");
        assert_eq!(&*f.http.requests[1].target, "/next");
        assert_eq!(f.http.cut_heads, 3);
        assert_eq!(f.http.desyncs, 0);
    }

    #[test]
    fn heads_with_many_headers_still_parse() {
        let mut f = Feed::new();
        let mut head = String::from("GET /many HTTP/1.1\r\n");
        for i in 0..300 {
            head.push_str(&format!("X-H{i}: {i}\r\n"));
        }
        head.push_str("Content-Length: 2\r\n\r\nok");
        f.send(Side::Client, head.as_bytes());
        f.send(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(f.statuses(), vec![("GET".into(), Some(200), true)]);
    }

    #[test]
    fn connect_tunnel_stops_parsing() {
        let mut f = Feed::new();
        f.send(Side::Client, b"CONNECT h:443 HTTP/1.1\r\n\r\n");
        f.send(Side::Server, b"HTTP/1.1 200 Connection established\r\n\r\n");
        f.send(Side::Client, b"GET /not-parsed HTTP/1.1\r\n\r\n");
        assert!(f.http.tunnel);
        assert_eq!(f.http.requests.len(), 1);
    }

    #[test]
    fn idempotency_key_makes_post_retry_safe() {
        let mut f = Feed::new();
        f.send(
            Side::Client,
            b"POST /pay HTTP/1.1\r\nIdempotency-Key: 8e03\r\n\r\n",
        );
        assert!(f.http.requests[0].idempotent());
    }

    #[test]
    fn not_http_stops() {
        let mut f = Feed::new();
        f.send(Side::Client, b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(f.http.not_http);
        assert!(!looks_like_request(b"SSH-2.0-OpenSSH_9"));
        assert!(looks_like_request(b"\r\nGET / HTTP/1.1"));
    }
}
