//! HTTP/2 (RFC 9113) over one TCP connection: frames, streams, resets and GOAWAYs.
//!
//! The two reassembled byte streams are read frame by frame, in order, like
//! [`super::http`] and [`super::tls`] read theirs. The client's stream starts with the
//! 24-byte connection preface (prior knowledge, or after an HTTP/1.1 `Upgrade: h2c` exchange,
//! in which case the caller starts feeding at the preface and may record the upgraded request
//! as stream 1 with [`H2::on_upgrade`]); each side's first frame must be SETTINGS.
//!
//! - **Framing.** 9-byte frame headers may be split across segments. DATA payloads (and
//!   frames of unknown type) are skipped, not buffered, and a capture gap inside one is
//!   skipped too; any other gap, a length over the peer's SETTINGS_MAX_FRAME_SIZE, a fixed-size
//!   frame of the wrong size or a header block interrupted by anything but CONTINUATION loses
//!   the framing of that side: parsing stops there ([`H2::lost`]).
//! - **Header blocks.** HEADERS (with its padding and PRIORITY fields), PUSH_PROMISE and their
//!   CONTINUATION frames are buffered up to [`MAX_BLOCK`] and decoded with HPACK (RFC 7541:
//!   static table, Huffman, one dynamic table per direction, size updates checked against
//!   the receiver's SETTINGS_HEADER_TABLE_SIZE). Only `:method`, `:path` and `:status` are
//!   kept, cut to [`MAX_VALUE`] bytes. A block that cannot be decoded (too long, malformed)
//!   leaves that direction's dynamic table unknown: its HPACK is lost for good, but frames are
//!   still followed and streams still recorded, without method, path or status.
//! - **Streams** are recorded at the client's first HEADERS on an odd stream id, in that
//!   order, up to [`MAX_STREAMS`] (the rest are counted): the request's HEADERS frame, its
//!   END_STREAM, the server's first HEADERS and its END_STREAM, and the first RST_STREAM of
//!   either side with its error code.
//! - **Connection**: the first GOAWAY of each side (last-stream-id, error code), PING and
//!   SETTINGS counts.
//!
//! What it hands on: the streams and GOAWAYs diagnosis reads to tell which requests a GOAWAY
//! or RST_STREAM cut off (a stream above a GOAWAY's last-stream-id was not processed).

use super::Mark;
use crate::flows::reassembly::{Chunk, StreamEvent};
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::OnceLock;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Streams kept per connection; more are counted, not stored.
pub const MAX_STREAMS: usize = 10_000;
/// Longest header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs) buffered; a longer
/// one is skipped, and its direction's HPACK state is lost.
pub const MAX_BLOCK: usize = 64 * 1024;
/// Longest `:method`, `:path` or `:status` value kept, in bytes.
pub const MAX_VALUE: usize = 512;
/// Largest HPACK dynamic table followed; a size update beyond it loses the direction's HPACK.
const MAX_TABLE: u32 = 1 << 20;
/// SETTINGS_MAX_FRAME_SIZE before any SETTINGS (RFC 9113 §6.5.2).
const DEFAULT_MAX_FRAME: u32 = 16_384;
/// SETTINGS_HEADER_TABLE_SIZE before any SETTINGS.
const DEFAULT_TABLE_SIZE: u32 = 4096;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// One stream the client opened with HEADERS: a request and what became of it.
#[derive(Clone, Debug)]
pub struct Stream {
    /// The stream identifier (odd: client-initiated).
    pub id: u32,
    /// The `:method` pseudo-header, cut to [`MAX_VALUE`] bytes; `None` if the client's HPACK
    /// state was lost. Escape before printing.
    pub method: Option<String>,
    /// The `:path` pseudo-header, cut to [`MAX_VALUE`] bytes; escape before printing.
    pub path: Option<String>,
    /// Frame and time of the first byte of the stream's first HEADERS frame.
    pub headers_frame: Mark,
    /// Sequence number of that HEADERS frame's first byte.
    pub seq: SeqNumber,
    /// The acknowledgment number its segment carried: how much of the server's stream (a
    /// GOAWAY, say) the client had received when it wrote the request.
    pub ack: Option<SeqNumber>,
    /// Where the client ended its side of the stream (END_STREAM on HEADERS or DATA: the
    /// segment holding that frame's last byte).
    pub end_stream_sent: Option<Mark>,
    /// The start of the server's first HEADERS frame on the stream.
    pub response: Option<Mark>,
    /// The response's `:status` (the final one when interim 1xx responses came first).
    pub status: Option<u16>,
    /// Where the server ended its side of the stream (END_STREAM).
    pub response_end: Option<Mark>,
    /// The first RST_STREAM on the stream: who sent it, its error code (see [`error_name`])
    /// and where.
    pub reset: Option<(Side, u32, Mark)>,
}

/// A GOAWAY frame (RFC 9113 §6.8).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// The highest stream id its sender may have processed; streams above it were not.
    pub last_stream_id: u32,
    /// Its error code (see [`error_name`]).
    pub error_code: u32,
    /// Frame and time of its first byte.
    pub mark: Mark,
    /// The acknowledgment number its segment carried.
    pub ack: Option<SeqNumber>,
}

/// The RFC 9113 §7 name of an HTTP/2 error code, `UNKNOWN` for unassigned ones.
pub fn error_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "UNKNOWN",
    }
}

/// Where a frame starts.
#[derive(Copy, Clone, Debug, Default)]
struct Start {
    mark: Mark,
    seq: SeqNumber,
    ack: Option<SeqNumber>,
}

/// A frame header.
#[derive(Copy, Clone, Debug)]
struct Head {
    len: u32,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// A header block started by HEADERS or PUSH_PROMISE, waiting for its END_HEADERS.
#[derive(Copy, Clone, Debug)]
struct Pending {
    kind: u8,
    stream: u32,
    end_stream: bool,
    start: Start,
}

/// Framing state of one direction.
#[derive(Default)]
struct Dir {
    /// Preface bytes matched so far (client only).
    preface: u8,
    header: [u8; 9],
    header_len: u8,
    /// Where the frame being read starts.
    start: Start,
    /// The frame whose payload is being read.
    frame: Option<Head>,
    /// Payload bytes of it still to come.
    left: u32,
    /// Part of the payload was never captured: its content is unknown.
    damaged: bool,
    /// The head of a RST_STREAM or GOAWAY payload, or the setting being read.
    small: [u8; 8],
    small_len: u8,
    /// The header block being buffered.
    block: Vec<u8>,
    /// The block is not decodable (over [`MAX_BLOCK`], bad padding, bytes missing).
    block_over: bool,
    pending: Option<Pending>,
    /// Frames read.
    frames: u64,
    /// The largest SETTINGS_MAX_FRAME_SIZE the peer announced.
    max_frame: u32,
    lost: bool,
}

/// HTTP/2 state of one connection.
#[derive(Default)]
pub struct H2 {
    streams: Vec<Stream>,
    by_id: FxHashMap<u32, usize>,
    /// Highest client stream id that opened a stream.
    max_client_stream: u32,
    streams_dropped: u64,
    goaway: Option<GoAway>,
    client_goaway: Option<GoAway>,
    pings: u32,
    settings_frames: [u32; 2],
    dirs: [Dir; 2],
    hpack: [Decoder; 2],
}

impl H2 {
    /// Memory this state holds on the heap (an estimate: streams, the id index, header
    /// blocks being buffered and the HPACK tables).
    pub fn heap_bytes(&self) -> usize {
        self.streams.capacity() * (std::mem::size_of::<Stream>() + 48)
            + self.by_id.capacity() * 16
            + self.dirs.iter().map(|d| d.block.capacity()).sum::<usize>()
            + self
                .hpack
                .iter()
                .map(|h| h.size + h.table.capacity() * 16)
                .sum::<usize>()
    }

    /// Feeds one stream event of `side` (client = [`Side::Client`]). The client's stream
    /// starts with the 24-byte connection preface (prior knowledge) or, after an HTTP/1.1
    /// `Upgrade: h2c` exchange, the caller starts feeding at the preface too (and the server's
    /// stream right after its `101` response).
    pub fn on_event(&mut self, side: Side, ev: StreamEvent<'_>) {
        match ev {
            StreamEvent::Data(c) => self.on_data(side, c),
            StreamEvent::Gap { len, frame, ts } => self.on_gap(side, len, Mark { frame, ts }),
        }
    }

    /// Records the HTTP/1.1 request of an `Upgrade: h2c` exchange (RFC 7540 §3.2) as stream 1:
    /// the server answers it on stream 1 with HEADERS. `request.id` is forced to 1; its
    /// `end_stream_sent` should be where the HTTP/1.1 request ended, if it was whole.
    /// `http2_settings` is the decoded (base64url) `HTTP2-Settings` payload, applied as the
    /// client's SETTINGS. Call before feeding the streams.
    pub fn on_upgrade(&mut self, mut request: Stream, http2_settings: &[u8]) {
        for s in http2_settings.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            self.setting(Side::Client, id, value);
        }
        if self.by_id.contains_key(&1) || self.streams.len() >= MAX_STREAMS {
            return;
        }
        request.id = 1;
        self.by_id.insert(1, self.streams.len());
        self.streams.push(request);
        self.max_client_stream = self.max_client_stream.max(1);
    }

    /// The streams the client opened, in order of their first HEADERS frame, up to
    /// [`MAX_STREAMS`].
    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    /// Streams opened beyond [`MAX_STREAMS`]: counted, not stored.
    pub fn streams_dropped(&self) -> u64 {
        self.streams_dropped
    }

    /// The first GOAWAY from the server.
    pub fn goaway(&self) -> Option<&GoAway> {
        self.goaway.as_ref()
    }

    /// The first GOAWAY from the client.
    pub fn client_goaway(&self) -> Option<&GoAway> {
        self.client_goaway.as_ref()
    }

    /// PING frames sent by either side, acknowledgments not counted.
    pub fn pings(&self) -> u32 {
        self.pings
    }

    /// SETTINGS frames sent, `[client, server]`, acknowledgments not counted.
    pub fn settings_frames(&self) -> [u32; 2] {
        self.settings_frames
    }

    /// The framing of either side was lost (a gap between frames, or bytes that are not
    /// HTTP/2): that side is no longer parsed.
    pub fn lost(&self) -> bool {
        self.dirs[0].lost || self.dirs[1].lost
    }

    /// The framing of `side` was lost.
    pub fn lost_side(&self, side: Side) -> bool {
        self.dirs[side as usize].lost
    }

    /// The HPACK state of what `side` sends was lost (a header block could not be decoded):
    /// its later header blocks are not decoded.
    pub fn hpack_lost(&self, side: Side) -> bool {
        self.hpack[side as usize].lost
    }

    fn on_data(&mut self, side: Side, c: Chunk<'_>) {
        let s = side as usize;
        let mark = Mark {
            frame: c.frame,
            ts: c.ts,
        };
        let mut i = 0;
        while i < c.data.len() {
            let rest = &c.data[i..];
            let d = &mut self.dirs[s];
            if d.lost {
                return;
            }
            if side == Side::Client && usize::from(d.preface) < PREFACE.len() {
                let want = &PREFACE[usize::from(d.preface)..];
                let n = want.len().min(rest.len());
                if rest[..n] != want[..n] {
                    d.lost = true;
                    return;
                }
                d.preface += n as u8;
                i += n;
                continue;
            }
            match d.frame {
                None => {
                    if d.header_len == 0 {
                        d.start = Start {
                            mark,
                            seq: c.seq.plus(i as u32),
                            ack: c.ack,
                        };
                    }
                    let have = usize::from(d.header_len);
                    let n = (9 - have).min(rest.len());
                    d.header[have..have + n].copy_from_slice(&rest[..n]);
                    d.header_len += n as u8;
                    i += n;
                    if d.header_len == 9 {
                        d.header_len = 0;
                        self.begin_frame(side);
                        let d = &self.dirs[s];
                        if d.frame.is_some() && d.left == 0 {
                            self.end_frame(side, mark);
                        }
                    }
                }
                Some(head) => {
                    let n = (d.left as usize).min(rest.len());
                    d.left -= n as u32;
                    i += n;
                    self.payload(side, head, &rest[..n]);
                    if self.dirs[s].left == 0 {
                        self.end_frame(side, mark);
                    }
                }
            }
        }
    }

    fn on_gap(&mut self, side: Side, len: u64, mark: Mark) {
        let s = side as usize;
        let d = &mut self.dirs[s];
        if d.lost {
            return;
        }
        let in_preface = side == Side::Client && usize::from(d.preface) < PREFACE.len();
        match d.frame {
            // A gap inside a frame's payload: the frame boundaries are still known.
            Some(head) if !in_preface && len <= u64::from(d.left) => {
                d.left -= len as u32;
                d.damaged = true;
                if matches!(head.kind, HEADERS | PUSH_PROMISE | CONTINUATION) {
                    d.block_over = true;
                    d.block.clear();
                }
                if head.kind == SETTINGS {
                    // A table size setting may be in the missing bytes: accept any update.
                    self.hpack[side.peer() as usize].set_limit(MAX_TABLE);
                }
                if self.dirs[s].left == 0 {
                    self.end_frame(side, mark);
                }
            }
            _ => d.lost = true,
        }
    }

    /// The 9-byte header is complete: checks it and starts the payload.
    fn begin_frame(&mut self, side: Side) {
        let d = &mut self.dirs[side as usize];
        let h = d.header;
        let head = Head {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        };
        let (len, on_stream) = (head.len, head.stream != 0);
        let valid = match head.kind {
            DATA | HEADERS | CONTINUATION => on_stream,
            PUSH_PROMISE => on_stream && len >= 4,
            PRIORITY => on_stream && len == 5,
            RST_STREAM => on_stream && len == 4,
            SETTINGS => !on_stream && len % 6 == 0 && (head.flags & FLAG_ACK == 0 || len == 0),
            PING => !on_stream && len == 8,
            GOAWAY => !on_stream && len >= 8,
            WINDOW_UPDATE => len == 4,
            _ => true,
        };
        let first_ok = d.frames > 0 || head.kind == SETTINGS;
        let sequence_ok = match d.pending {
            Some(p) => head.kind == CONTINUATION && head.stream == p.stream,
            None => head.kind != CONTINUATION,
        };
        if len > d.max_frame.max(DEFAULT_MAX_FRAME) || !valid || !first_ok || !sequence_ok {
            d.lost = true;
            return;
        }
        d.frames += 1;
        d.frame = Some(head);
        d.left = len;
        d.damaged = false;
        d.small_len = 0;
        if head.kind == HEADERS || head.kind == PUSH_PROMISE {
            d.block.clear();
            d.block_over = false;
        }
    }

    /// Payload bytes of the current frame.
    fn payload(&mut self, side: Side, head: Head, bytes: &[u8]) {
        let s = side as usize;
        let d = &mut self.dirs[s];
        if d.damaged {
            return;
        }
        match head.kind {
            HEADERS | PUSH_PROMISE | CONTINUATION => {
                if d.block_over {
                } else if d.block.len() + bytes.len() > MAX_BLOCK {
                    d.block_over = true;
                    d.block.clear();
                } else {
                    d.block.extend_from_slice(bytes);
                }
            }
            RST_STREAM | GOAWAY => {
                let have = usize::from(d.small_len);
                let n = (8 - have).min(bytes.len());
                d.small[have..have + n].copy_from_slice(&bytes[..n]);
                d.small_len += n as u8;
            }
            SETTINGS => {
                for &b in bytes {
                    let d = &mut self.dirs[s];
                    d.small[usize::from(d.small_len)] = b;
                    d.small_len += 1;
                    if d.small_len == 6 {
                        d.small_len = 0;
                        let m = d.small;
                        let id = u16::from_be_bytes([m[0], m[1]]);
                        let value = u32::from_be_bytes([m[2], m[3], m[4], m[5]]);
                        self.setting(side, id, value);
                    }
                }
            }
            _ => {}
        }
    }

    /// One setting announced by `side`: it constrains what the peer sends.
    fn setting(&mut self, side: Side, id: u16, value: u32) {
        let peer = side.peer() as usize;
        match id {
            SETTINGS_HEADER_TABLE_SIZE => self.hpack[peer].set_limit(value),
            SETTINGS_MAX_FRAME_SIZE => {
                let d = &mut self.dirs[peer];
                d.max_frame = d.max_frame.max(value.min(0x00ff_ffff));
            }
            _ => {}
        }
    }

    /// The current frame ended; its last byte was in `mark`.
    fn end_frame(&mut self, side: Side, mark: Mark) {
        let s = side as usize;
        let d = &mut self.dirs[s];
        let Some(head) = d.frame.take() else {
            return;
        };
        let start = d.start;
        let damaged = d.damaged;
        match head.kind {
            DATA if head.flags & FLAG_END_STREAM != 0 => {
                self.end_stream(side, head.stream, mark);
            }
            HEADERS | PUSH_PROMISE => {
                let extra = match head.kind {
                    HEADERS if head.flags & FLAG_PRIORITY != 0 => 5,
                    HEADERS => 0,
                    _ => 4,
                };
                if !d.block_over && !strip(&mut d.block, head.flags & FLAG_PADDED != 0, extra) {
                    d.block_over = true;
                }
                let p = Pending {
                    kind: head.kind,
                    stream: head.stream,
                    end_stream: head.kind == HEADERS && head.flags & FLAG_END_STREAM != 0,
                    start,
                };
                if head.flags & FLAG_END_HEADERS != 0 {
                    self.finish_block(side, p, mark);
                } else {
                    d.pending = Some(p);
                }
            }
            CONTINUATION if head.flags & FLAG_END_HEADERS != 0 => {
                if let Some(p) = d.pending.take() {
                    self.finish_block(side, p, mark);
                }
            }
            RST_STREAM if !damaged => {
                let m = d.small;
                let code = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
                if let Some(&i) = self.by_id.get(&head.stream) {
                    self.streams[i]
                        .reset
                        .get_or_insert((side, code, start.mark));
                }
            }
            GOAWAY if !damaged => {
                let m = d.small;
                let g = GoAway {
                    last_stream_id: u32::from_be_bytes([m[0], m[1], m[2], m[3]]) & 0x7fff_ffff,
                    error_code: u32::from_be_bytes([m[4], m[5], m[6], m[7]]),
                    mark: start.mark,
                    ack: start.ack,
                };
                match side {
                    Side::Server => self.goaway.get_or_insert(g),
                    Side::Client => self.client_goaway.get_or_insert(g),
                };
            }
            PING if head.flags & FLAG_ACK == 0 => self.pings = self.pings.saturating_add(1),
            SETTINGS if head.flags & FLAG_ACK == 0 => {
                self.settings_frames[s] = self.settings_frames[s].saturating_add(1);
            }
            _ => {}
        }
    }

    /// A header block is complete (its last byte in `end`): decodes it and records it.
    fn finish_block(&mut self, side: Side, p: Pending, end: Mark) {
        let s = side as usize;
        let d = &mut self.dirs[s];
        d.pending = None;
        let fields = if d.block_over {
            self.hpack[s].lose();
            None
        } else {
            self.hpack[s].decode(&d.block)
        };
        d.block.clear();
        d.block_over = false;
        if p.kind != HEADERS {
            return;
        }
        let fields = fields.unwrap_or_default();
        match side {
            Side::Client => {
                if p.stream % 2 == 0 {
                    return;
                }
                let i = match self.by_id.get(&p.stream) {
                    Some(&i) => i,
                    None if p.stream <= self.max_client_stream => return,
                    None => {
                        self.max_client_stream = p.stream;
                        if self.streams.len() >= MAX_STREAMS {
                            self.streams_dropped += 1;
                            return;
                        }
                        self.by_id.insert(p.stream, self.streams.len());
                        self.streams.push(Stream {
                            id: p.stream,
                            method: fields.method,
                            path: fields.path,
                            headers_frame: p.start.mark,
                            seq: p.start.seq,
                            ack: p.start.ack,
                            end_stream_sent: None,
                            response: None,
                            status: None,
                            response_end: None,
                            reset: None,
                        });
                        self.streams.len() - 1
                    }
                };
                if p.end_stream {
                    self.streams[i].end_stream_sent.get_or_insert(end);
                }
            }
            Side::Server => {
                let Some(&i) = self.by_id.get(&p.stream) else {
                    return;
                };
                let st = &mut self.streams[i];
                st.response.get_or_insert(p.start.mark);
                if let Some(code) = fields.status {
                    if st.status.is_none_or(|c| c < 200) {
                        st.status = Some(code);
                    }
                }
                if p.end_stream {
                    st.response_end.get_or_insert(end);
                }
            }
        }
    }

    /// END_STREAM from `side` on `stream`, in a frame that ended in `mark`.
    fn end_stream(&mut self, side: Side, stream: u32, mark: Mark) {
        let Some(&i) = self.by_id.get(&stream) else {
            return;
        };
        let st = &mut self.streams[i];
        match side {
            Side::Client => st.end_stream_sent.get_or_insert(mark),
            Side::Server => st.response_end.get_or_insert(mark),
        };
    }
}

/// Removes the pad length, `extra` leading bytes (priority fields, promised stream id) and
/// the trailing padding from a buffered HEADERS or PUSH_PROMISE payload. False if they do
/// not fit in it.
fn strip(block: &mut Vec<u8>, padded: bool, extra: usize) -> bool {
    let (pad, lead) = match (padded, block.first()) {
        (false, _) => (0, 0),
        (true, Some(&p)) => (usize::from(p), 1),
        (true, None) => return false,
    };
    let skip = lead + extra;
    if skip + pad > block.len() {
        return false;
    }
    block.truncate(block.len() - pad);
    block.drain(..skip);
    true
}

/// The pseudo-headers kept from a header block.
#[derive(Default)]
struct Fields {
    method: Option<String>,
    path: Option<String>,
    status: Option<u16>,
}

impl Fields {
    fn take(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":method" if self.method.is_none() => self.method = Some(cut(value)),
            b":path" if self.path.is_none() => self.path = Some(cut(value)),
            b":status"
                if self.status.is_none()
                    && value.len() == 3
                    && value.iter().all(u8::is_ascii_digit) =>
            {
                self.status = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }
}

/// `value` as text, at most [`MAX_VALUE`] bytes of it.
fn cut(value: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(&value[..value.len().min(MAX_VALUE)]).into_owned();
    if s.len() > MAX_VALUE {
        let mut end = MAX_VALUE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A dynamic table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// HPACK decoder of one direction (RFC 7541).
struct Decoder {
    /// Dynamic table, newest entry first.
    table: VecDeque<Entry>,
    /// Its size as RFC 7541 §4.1 counts it.
    size: usize,
    /// Its maximum size, as the last size update set it.
    max_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE of the receiver, and the value before it (an update sent
    /// before the encoder saw the new setting may still use the old one).
    limit: u32,
    prev_limit: u32,
    lost: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
            prev_limit: DEFAULT_TABLE_SIZE,
            lost: false,
        }
    }
}

/// A malformed header block.
struct Malformed;

impl Decoder {
    fn set_limit(&mut self, value: u32) {
        self.prev_limit = self.limit;
        self.limit = value;
    }

    fn lose(&mut self) {
        self.lost = true;
        self.table = VecDeque::new();
        self.size = 0;
    }

    /// Decodes one header block; `None` (and the state lost) if it is malformed or the
    /// state was already lost.
    fn decode(&mut self, block: &[u8]) -> Option<Fields> {
        if self.lost {
            return None;
        }
        match self.try_decode(block) {
            Ok(f) => Some(f),
            Err(Malformed) => {
                self.lose();
                None
            }
        }
    }

    fn try_decode(&mut self, b: &[u8]) -> Result<Fields, Malformed> {
        let mut f = Fields::default();
        let mut pos = 0;
        while let Some(&first) = b.get(pos) {
            if first & 0x80 != 0 {
                // Indexed header field (§6.1).
                let index = int(b, &mut pos, 7)?;
                let (name, value) = self.get(index)?;
                f.take(name, value);
            } else if first & 0xc0 == 0x40 {
                // Literal with incremental indexing (§6.2.1).
                let (name, value) = self.literal(b, &mut pos, 6)?;
                f.take(&name, &value);
                self.insert(name, value);
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                let size = int(b, &mut pos, 5)?;
                if size > self.limit.max(self.prev_limit) || size > MAX_TABLE {
                    return Err(Malformed);
                }
                self.max_size = size;
                self.evict(0);
            } else {
                // Literal without indexing or never indexed (§6.2.2, §6.2.3).
                let (name, value) = self.literal(b, &mut pos, 4)?;
                f.take(&name, &value);
            }
        }
        Ok(f)
    }

    fn literal(
        &self,
        b: &[u8],
        pos: &mut usize,
        prefix: u32,
    ) -> Result<(Vec<u8>, Vec<u8>), Malformed> {
        let index = int(b, pos, prefix)?;
        let name = match index {
            0 => string(b, pos)?,
            i => self.get(i)?.0.to_vec(),
        };
        let value = string(b, pos)?;
        Ok((name, value))
    }

    /// Entry `index` of the static table followed by the dynamic one (§2.3.3).
    fn get(&self, index: u32) -> Result<(&[u8], &[u8]), Malformed> {
        let i = index as usize;
        match i {
            0 => Err(Malformed),
            1..=61 => {
                let (n, v) = STATIC_TABLE[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .table
                .get(i - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(Malformed),
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let size = name.len() + value.len() + 32;
        if size > self.max_size as usize {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table
            .push_front((name.into_boxed_slice(), value.into_boxed_slice()));
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size as usize {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }
}

/// An integer with an N-bit prefix (RFC 7541 §5.1), at most 2^32 - 1.
fn int(b: &[u8], pos: &mut usize, prefix: u32) -> Result<u32, Malformed> {
    let mask = (1u32 << prefix) - 1;
    let first = u32::from(*b.get(*pos).ok_or(Malformed)?) & mask;
    *pos += 1;
    if first < mask {
        return Ok(first);
    }
    let mut value = u64::from(mask);
    let mut shift = 0;
    loop {
        let byte = *b.get(*pos).ok_or(Malformed)?;
        *pos += 1;
        value += u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(Malformed);
        }
    }
    u32::try_from(value).map_err(|_| Malformed)
}

/// A string literal (RFC 7541 §5.2), Huffman-decoded if so flagged.
fn string(b: &[u8], pos: &mut usize) -> Result<Vec<u8>, Malformed> {
    let huffman = *b.get(*pos).ok_or(Malformed)? & 0x80 != 0;
    let len = int(b, pos, 7)? as usize;
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= b.len())
        .ok_or(Malformed)?;
    let raw = &b[*pos..end];
    *pos = end;
    if huffman {
        huffman_decode(raw)
    } else {
        Ok(raw.to_vec())
    }
}

/// Marks a leaf in the Huffman decoding tree: the rest is the symbol.
const LEAF: u16 = 0x8000;

/// The Huffman code as a binary tree: node 0 is the root, each node's two children are
/// another node's index or `LEAF | symbol`.
fn huffman_tree() -> &'static [[u16; 2]] {
    static TREE: OnceLock<Vec<[u16; 2]>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut nodes = vec![[0u16; 2]];
        for (sym, &(code, len)) in HUFFMAN_CODES.iter().enumerate() {
            let mut n = 0;
            for i in (0..len).rev() {
                let bit = ((code >> i) & 1) as usize;
                if i == 0 {
                    nodes[n][bit] = LEAF | sym as u16;
                } else {
                    if nodes[n][bit] == 0 {
                        nodes.push([0; 2]);
                        nodes[n][bit] = (nodes.len() - 1) as u16;
                    }
                    n = usize::from(nodes[n][bit]);
                }
            }
        }
        nodes
    })
}

/// Decodes a Huffman-coded string (RFC 7541 §5.2): padding must be at most 7 bits, all ones,
/// and EOS must not appear.
fn huffman_decode(raw: &[u8]) -> Result<Vec<u8>, Malformed> {
    let tree = huffman_tree();
    let mut out = Vec::with_capacity(raw.len() * 8 / 5 + 1);
    let (mut node, mut depth, mut ones) = (0usize, 0u32, true);
    for &byte in raw {
        for i in (0..8).rev() {
            let bit = (byte >> i) & 1;
            let next = tree[node][usize::from(bit)];
            depth += 1;
            ones &= bit == 1;
            if next & LEAF != 0 {
                let sym = next & !LEAF;
                if sym == 256 {
                    return Err(Malformed);
                }
                out.push(sym as u8);
                (node, depth, ones) = (0, 0, true);
            } else if next == 0 {
                return Err(Malformed);
            } else {
                node = usize::from(next);
            }
        }
    }
    if depth > 7 || !ones {
        return Err(Malformed);
    }
    Ok(out)
}

/// The static table (RFC 7541 Appendix A), index 1 first.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The Huffman code (RFC 7541 Appendix B): `(code, length in bits)` of symbols 0–255 and EOS.
#[rustfmt::skip]
const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28),
    (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24),
    (0x3ffffffc, 30), (0xfffffe9, 28), (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28),
    (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28),
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), (0xffffff4, 28),
    (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
    (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10), (0xf9, 8),
    (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), (0x0, 5), (0x1, 5), (0x2, 5),
    (0x19, 6), (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7),
    (0xfb, 8), (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
    (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), (0x63, 7), (0x64, 7),
    (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7),
    (0x6d, 7), (0x6e, 7), (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
    (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), (0x7ffd, 15),
    (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), (0x27, 6),
    (0x6, 5), (0x74, 7), (0x75, 7), (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6),
    (0x76, 7), (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), (0x79, 7),
    (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13),
    (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22),
    (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23),
    (0xffffeb, 24), (0x7fffdf, 23), (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22),
    (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23),
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), (0x3fffd9, 22),
    (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21),
    (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23),
    (0x1fffde, 21), (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24),
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21),
    (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), (0x7fffed, 23), (0x3fffe1, 22),
    (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22),
    (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22),
    (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26),
    (0x3ffffe4, 26), (0x7ffffde, 27), (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24),
    (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27),
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), (0x1fffe4, 21),
    (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27),
    (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20),
    (0x1fffe6, 21), (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23),
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24),
    (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), (0x3ffffeb, 26), (0x7ffffe6, 27),
    (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27),
    (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FrameRef;
    use crate::time::Timestamp;

    /// RFC 7541 C.4.1: `:method GET, :scheme http, :path /, :authority www.example.com`.
    const C41: &[u8] = &[
        0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
        0xf4, 0xff,
    ];
    /// C.4.2, on the table C.4.1 left: `... :path /, ..., cache-control: no-cache`.
    const C42: &[u8] = &[
        0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
    ];
    /// C.4.3: `:method GET, :scheme https, :path /index.html, ..., custom-key: custom-value`.
    const C43: &[u8] = &[
        0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f, 0x89,
        0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
    ];
    /// `:status 200` from the static table.
    const STATUS_200: &[u8] = &[0x88];

    struct Feed {
        h2: H2,
        seq: [u32; 2],
        frame: u64,
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
        let mut p = Vec::new();
        for &(id, v) in entries {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        frame(SETTINGS, 0, 0, &p)
    }

    fn headers(stream: u32, flags: u8, block: &[u8]) -> Vec<u8> {
        frame(HEADERS, flags | FLAG_END_HEADERS, stream, block)
    }

    fn mark(frame: u64) -> Mark {
        Mark {
            frame: FrameRef {
                file: 0,
                number: frame,
            },
            ts: Timestamp(frame as i64 * 1000),
        }
    }

    impl Feed {
        fn new() -> Feed {
            Feed {
                h2: H2::default(),
                seq: [1000, 5000],
                frame: 0,
            }
        }

        /// Preface and SETTINGS both ways.
        fn opened() -> Feed {
            let mut f = Feed::new();
            let mut c = PREFACE.to_vec();
            c.extend(settings(&[]));
            f.send(Side::Client, &c);
            f.send(Side::Server, &settings(&[(3, 100)]));
            f
        }

        /// One segment of `side`; returns its frame number.
        fn send(&mut self, side: Side, data: &[u8]) -> u64 {
            self.frame += 1;
            let i = side as usize;
            let m = mark(self.frame);
            let chunk = Chunk {
                data,
                seq: SeqNumber(self.seq[i]),
                frame: m.frame,
                ts: m.ts,
                ack: Some(SeqNumber(self.seq[side.peer() as usize])),
            };
            self.seq[i] = self.seq[i].wrapping_add(data.len() as u32);
            self.h2.on_event(side, StreamEvent::Data(chunk));
            self.frame
        }

        fn gap(&mut self, side: Side, len: u32) {
            self.frame += 1;
            self.seq[side as usize] = self.seq[side as usize].wrapping_add(len);
            let m = mark(self.frame);
            self.h2.on_event(
                side,
                StreamEvent::Gap {
                    len: len.into(),
                    frame: m.frame,
                    ts: m.ts,
                },
            );
        }
    }

    #[test]
    fn request_and_response_with_rfc7541_blocks() {
        let mut f = Feed::opened();
        let req = f.send(Side::Client, &headers(1, FLAG_END_STREAM, C41));
        let resp = f.send(Side::Server, &headers(1, 0, STATUS_200));
        let body = f.send(Side::Server, &frame(DATA, FLAG_END_STREAM, 1, b"hello"));
        f.send(Side::Client, &headers(3, FLAG_END_STREAM, C42));
        f.send(Side::Client, &headers(5, FLAG_END_STREAM, C43));
        let h = &f.h2;
        assert!(!h.lost() && !h.hpack_lost(Side::Client) && !h.hpack_lost(Side::Server));
        assert_eq!(h.settings_frames(), [1, 1]);
        let s = h.streams();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].id, s[0].method.as_deref()), (1, Some("GET")));
        assert_eq!(s[0].path.as_deref(), Some("/"));
        assert_eq!(s[0].headers_frame, mark(req));
        assert_eq!(s[0].end_stream_sent, Some(mark(req)));
        assert_eq!(s[0].response, Some(mark(resp)));
        assert_eq!(s[0].status, Some(200));
        assert_eq!(s[0].response_end, Some(mark(body)));
        assert_eq!(s[1].path.as_deref(), Some("/"));
        assert_eq!((s[2].id, s[2].path.as_deref()), (5, Some("/index.html")));
        assert_eq!(s[2].response, None);
        // C.4.3 leaves three entries in the client's dynamic table, 164 bytes.
        assert_eq!(h.hpack[0].table.len(), 3);
        assert_eq!(h.hpack[0].size, 164);
    }

    #[test]
    fn huffman_responses_with_eviction() {
        // RFC 7541 C.6.1 and C.6.2, after a size update to 256 (the example's table size).
        let mut c61 = vec![0x3f, 0xe1, 0x01];
        c61.extend_from_slice(&[
            0x48, 0x82, 0x64, 0x02, 0x58, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b, 0x61, 0x96, 0xd0,
            0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b, 0x81,
            0x66, 0xe0, 0x82, 0xa6, 0x2d, 0x1b, 0xff, 0x6e, 0x91, 0x9d, 0x29, 0xad, 0x17, 0x18,
            0x63, 0xc7, 0x8f, 0x0b, 0x97, 0xc8, 0xe9, 0xae, 0x82, 0xae, 0x43, 0xd3,
        ]);
        let c62 = [0x48, 0x83, 0x64, 0x0e, 0xff, 0xc1, 0xc0, 0xbf];
        let mut d = Decoder::default();
        let f = d.decode(&c61).expect("C.6.1 decodes");
        assert_eq!(f.status, Some(302));
        assert_eq!(d.size, 222);
        let f = d.decode(&c62).expect("C.6.2 decodes");
        assert_eq!(f.status, Some(307));
        assert_eq!((d.table.len(), d.size), (4, 222));
        assert_eq!(&d.table[0].1[..], b"307");
    }

    #[test]
    fn frames_split_anywhere() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(settings(&[(SETTINGS_HEADER_TABLE_SIZE, 8192)]));
        let first = bytes.len();
        bytes.extend(headers(1, 0, C41));
        bytes.extend(frame(DATA, FLAG_END_STREAM, 1, &[7; 100]));
        for split in 1..bytes.len() {
            let mut f = Feed::new();
            f.send(Side::Server, &settings(&[]));
            let a = f.send(Side::Client, &bytes[..split]);
            // The rest one byte a segment: every header byte in its own segment.
            let mut last = a;
            for b in &bytes[split..] {
                last = f.send(Side::Client, std::slice::from_ref(b));
            }
            let s = &f.h2.streams()[0];
            assert!(!f.h2.lost(), "split at {split}");
            assert_eq!(s.method.as_deref(), Some("GET"));
            assert_eq!(s.seq, SeqNumber(1000 + first as u32));
            let starts_in_first = split > first;
            let expect = if starts_in_first {
                a
            } else {
                a + 1 + (first - split) as u64
            };
            assert_eq!(s.headers_frame, mark(expect), "split at {split}");
            assert_eq!(s.end_stream_sent, Some(mark(last)));
        }
    }

    #[test]
    fn padding_priority_and_continuation() {
        let mut f = Feed::opened();
        // HEADERS padded (3 bytes) with priority fields, the block split over CONTINUATION.
        let mut p = vec![3];
        p.extend_from_slice(&[0x80, 0, 0, 0, 15]);
        p.extend_from_slice(&C41[..5]);
        p.extend_from_slice(&[0, 0, 0]);
        let mut bytes = frame(HEADERS, FLAG_PADDED | FLAG_PRIORITY, 1, &p);
        bytes.extend(frame(CONTINUATION, 0, 1, &C41[5..9]));
        bytes.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &C41[9..]));
        let at = f.send(Side::Client, &bytes);
        let s = &f.h2.streams()[0];
        assert_eq!(s.method.as_deref(), Some("GET"));
        assert_eq!(s.headers_frame, mark(at));
        // A frame interrupting a header block is a protocol error: framing is lost.
        let mut f = Feed::opened();
        f.send(Side::Client, &frame(HEADERS, 0, 1, &C41[..5]));
        f.send(Side::Client, &frame(DATA, 0, 1, b"x"));
        assert!(f.h2.lost_side(Side::Client) && f.h2.streams().is_empty());
    }

    #[test]
    fn lying_lengths() {
        // A frame claiming 16 MiB: over the max frame size, framing is lost, nothing kept.
        let mut f = Feed::opened();
        let mut huge = frame(DATA, 0, 1, b"abc");
        huge[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
        f.send(Side::Client, &huge);
        assert!(f.h2.lost_side(Side::Client) && !f.h2.lost_side(Side::Server));
        f.send(Side::Client, &headers(1, 0, C41));
        assert!(f.h2.streams().is_empty());

        // Padding longer than the frame: the block is skipped, the stream still recorded,
        // the client's HPACK lost, framing kept.
        let mut f = Feed::opened();
        f.send(
            Side::Client,
            &frame(HEADERS, FLAG_PADDED | FLAG_END_HEADERS, 1, &[200, 0x82]),
        );
        f.send(Side::Client, &headers(3, 0, C41));
        assert!(!f.h2.lost());
        assert!(f.h2.hpack_lost(Side::Client));
        let s = f.h2.streams();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].method.as_ref(), s[1].method.as_ref()), (None, None));

        // A string literal longer than its block, a huge integer, an index past the tables.
        for block in [
            &[0x41, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0xc0],
            &[0x40, 0x05, b'a'],
        ] {
            assert!(Decoder::default().decode(block).is_none(), "{block:x?}");
        }

        // A RST_STREAM of the wrong size, and a GOAWAY on a stream, are not HTTP/2.
        let mut f = Feed::opened();
        f.send(Side::Server, &frame(RST_STREAM, 0, 1, &[0; 5]));
        assert!(f.h2.lost_side(Side::Server));
        let mut f = Feed::opened();
        f.send(Side::Server, &frame(GOAWAY, 0, 1, &[0; 8]));
        assert!(f.h2.lost_side(Side::Server));
    }

    #[test]
    fn header_block_over_the_cap_is_skipped() {
        let mut f = Feed::opened();
        f.send(
            Side::Client,
            &settings(&[(SETTINGS_MAX_FRAME_SIZE, 1 << 20)]),
        );
        f.send(
            Side::Server,
            &settings(&[(SETTINGS_MAX_FRAME_SIZE, 1 << 20)]),
        );
        let mut block = C41.to_vec();
        block.resize(MAX_BLOCK + 1, 0x82);
        f.send(Side::Client, &headers(1, FLAG_END_STREAM, &block));
        f.send(Side::Server, &headers(1, FLAG_END_STREAM, STATUS_200));
        assert!(!f.h2.lost() && f.h2.hpack_lost(Side::Client));
        let s = &f.h2.streams()[0];
        assert_eq!((s.method.as_deref(), s.status), (None, Some(200)));
        assert!(s.end_stream_sent.is_some() && s.response_end.is_some());
    }

    #[test]
    fn goaway_last_stream_5_no_error() {
        let mut f = Feed::opened();
        for id in [1, 3, 5] {
            f.send(Side::Client, &headers(id, FLAG_END_STREAM, C41));
        }
        let mut p = 5u32.to_be_bytes().to_vec();
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(b"idle");
        let server_seq = f.seq[1];
        let at = f.send(Side::Server, &frame(GOAWAY, 0, 0, &p));
        f.send(Side::Client, &headers(7, FLAG_END_STREAM, C42));
        let g = *f.h2.goaway().expect("a GOAWAY");
        assert_eq!(
            (g.last_stream_id, error_name(g.error_code)),
            (5, "NO_ERROR")
        );
        assert_eq!(g.mark, mark(at));
        assert!(f.h2.client_goaway().is_none());
        let s = f.h2.streams();
        let after: Vec<_> = s.iter().filter(|s| s.id > g.last_stream_id).collect();
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].id, after[0].path.as_deref()), (7, Some("/")));
        // The client had received the GOAWAY's bytes when it wrote stream 7.
        assert!(after[0].ack.is_some_and(|a| a > SeqNumber(server_seq)));
        f.send(Side::Client, &frame(PING, 0, 0, &[0; 8]));
        f.send(Side::Server, &frame(PING, FLAG_ACK, 0, &[0; 8]));
        assert_eq!(f.h2.pings(), 1);
    }

    #[test]
    fn rst_stream_refused() {
        let mut f = Feed::opened();
        f.send(Side::Client, &headers(1, FLAG_END_STREAM, C41));
        f.send(Side::Client, &headers(3, FLAG_END_STREAM, C42));
        let at = f.send(Side::Server, &frame(RST_STREAM, 0, 3, &7u32.to_be_bytes()));
        f.send(Side::Client, &frame(RST_STREAM, 0, 3, &8u32.to_be_bytes()));
        let s = f.h2.streams();
        assert_eq!(s[0].reset, None);
        let (by, code, m) = s[1].reset.expect("reset");
        assert_eq!(
            (by, error_name(code), m),
            (Side::Server, "REFUSED_STREAM", mark(at))
        );
        assert_eq!(error_name(8), "CANCEL");
        assert_eq!(error_name(0xff), "UNKNOWN");
    }

    #[test]
    fn table_size_updates_follow_settings() {
        let mut f = Feed::opened();
        // The server allows the client a 8192-byte table: an update to 8192 is fine.
        f.send(
            Side::Server,
            &settings(&[(SETTINGS_HEADER_TABLE_SIZE, 8192)]),
        );
        let mut b = vec![0x3f, 0xe1, 0x3f]; // size update 8192
        b.extend_from_slice(C41);
        f.send(Side::Client, &headers(1, 0, &b));
        assert!(!f.h2.hpack_lost(Side::Client));
        assert_eq!(f.h2.hpack[0].max_size, 8192);
        // 16384 was never allowed.
        f.send(Side::Client, &headers(3, 0, &[0x3f, 0xe1, 0x7f, 0x82]));
        assert!(f.h2.hpack_lost(Side::Client));
        assert_eq!(f.h2.streams().len(), 2);
    }

    #[test]
    fn gaps() {
        // Inside a DATA payload: skipped, END_STREAM still seen.
        let mut f = Feed::opened();
        f.send(Side::Client, &headers(1, 0, C41));
        let data = frame(DATA, FLAG_END_STREAM, 1, &[0; 1000]);
        f.send(Side::Client, &data[..100]);
        f.gap(Side::Client, 800);
        let end = f.send(Side::Client, &data[900..]);
        f.send(Side::Client, &headers(3, 0, C42));
        assert!(!f.h2.lost());
        assert_eq!(f.h2.streams()[0].end_stream_sent, Some(mark(end)));
        assert_eq!(f.h2.streams()[1].path.as_deref(), Some("/"));
        // Between frames: the framing is lost.
        f.gap(Side::Client, 10);
        assert!(f.h2.lost_side(Side::Client));
        // Inside a header block: framing kept, HPACK lost.
        let mut f = Feed::opened();
        let h = headers(1, 0, C41);
        f.send(Side::Client, &h[..12]);
        f.gap(Side::Client, 3);
        f.send(Side::Client, &h[15..]);
        assert!(!f.h2.lost() && f.h2.hpack_lost(Side::Client));
        assert_eq!(f.h2.streams().len(), 1);
    }

    #[test]
    fn not_http2() {
        let mut f = Feed::new();
        f.send(Side::Client, b"GET / HTTP/1.1\r\n\r\n");
        assert!(f.h2.lost_side(Side::Client));
        let mut f = Feed::new();
        f.send(Side::Server, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(f.h2.lost_side(Side::Server));
    }

    #[test]
    fn upgrade_records_stream_1() {
        let mut f = Feed::new();
        let request = Stream {
            id: 0,
            method: Some("GET".into()),
            path: Some("/hello".into()),
            headers_frame: mark(1),
            seq: SeqNumber(1),
            ack: None,
            end_stream_sent: Some(mark(1)),
            response: None,
            status: None,
            response_end: None,
            reset: None,
        };
        f.h2.on_upgrade(request, &[0, SETTINGS_MAX_FRAME_SIZE as u8, 0, 1, 0, 0]);
        let mut c = PREFACE.to_vec();
        c.extend(settings(&[]));
        f.send(Side::Client, &c);
        f.send(Side::Server, &settings(&[]));
        let resp = f.send(Side::Server, &headers(1, FLAG_END_STREAM, STATUS_200));
        // The client's HTTP2-Settings allowed the server 64 KiB frames.
        f.send(Side::Server, &frame(DATA, 0, 1, &[0; 40_000]));
        f.send(Side::Client, &headers(3, FLAG_END_STREAM, C41));
        let s = f.h2.streams();
        assert!(!f.h2.lost());
        assert_eq!(
            (s[0].id, s[0].status, s[0].response),
            (1, Some(200), Some(mark(resp)))
        );
        assert_eq!((s[1].id, s[1].method.as_deref()), (3, Some("GET")));
    }

    #[test]
    fn stream_cap() {
        let mut f = Feed::opened();
        let mut bytes = Vec::new();
        for i in 0..MAX_STREAMS as u32 + 5 {
            bytes.extend(headers(2 * i + 1, FLAG_END_STREAM, &[0x82, 0x84]));
        }
        f.send(Side::Client, &bytes);
        assert_eq!(f.h2.streams().len(), MAX_STREAMS);
        assert_eq!(f.h2.streams_dropped(), 5);
    }

    /// xorshift64*: deterministic noise.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut good = PREFACE.to_vec();
        good.extend(settings(&[(1, 0xffff_ffff), (5, 0xffff_ffff)]));
        good.extend(headers(1, 0, C41));
        good.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, C43));
        good.extend(frame(
            HEADERS,
            FLAG_PADDED | FLAG_PRIORITY | FLAG_END_HEADERS,
            3,
            &[1; 9],
        ));
        good.extend(frame(RST_STREAM, 0, 3, &[0, 0, 0, 8]));
        good.extend(frame(GOAWAY, 0, 0, &[0; 12]));
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for round in 0..3000 {
            let mut bytes = good.clone();
            let flips = 1 + rng(&mut state) % 8;
            for _ in 0..flips {
                let at = (rng(&mut state) as usize) % bytes.len();
                bytes[at] = rng(&mut state) as u8;
            }
            if round % 3 == 0 {
                bytes.truncate(PREFACE.len());
                bytes.extend((0..rng(&mut state) % 300).map(|_| rng(&mut state) as u8));
            }
            let mut f = Feed::new();
            let mut rest = &bytes[..];
            let mut server = settings(&[]);
            server.extend((0..rng(&mut state) % 64).map(|_| rng(&mut state) as u8));
            f.send(Side::Server, &server);
            while !rest.is_empty() {
                let n = 1 + (rng(&mut state) as usize) % rest.len();
                f.send(Side::Client, &rest[..n]);
                rest = &rest[n..];
                if rng(&mut state) % 16 == 0 {
                    f.gap(Side::Client, (rng(&mut state) % 40) as u32);
                }
            }
            let _ = (f.h2.streams().len(), f.h2.goaway(), f.h2.lost());
        }
        for _ in 0..20_000 {
            let len = (rng(&mut state) % 40) as usize;
            let block: Vec<u8> = (0..len).map(|_| rng(&mut state) as u8).collect();
            let _ = Decoder::default().decode(&block);
            let _ = huffman_decode(&block);
        }
    }

    #[test]
    fn huffman_table_is_complete() {
        let sum: f64 = HUFFMAN_CODES
            .iter()
            .map(|&(_, l)| 0.5f64.powi(l.into()))
            .sum();
        assert!((sum - 1.0).abs() < 1e-12);
        assert_eq!(huffman_tree().len(), 256);
        // "no-cache" from C.4.2; a padding of 8 bits is refused.
        assert_eq!(
            huffman_decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]).ok(),
            Some(b"no-cache".to_vec())
        );
        assert!(huffman_decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf, 0xff]).is_err());
    }
}
