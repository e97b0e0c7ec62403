//! One TCP connection as seen on the wire.
//!
//! A passive observer cannot run RFC 9293's state machine for either end, but it can keep
//! what the ends told each other: the SYN and SYN-ACK (which side is the client, the
//! initial sequence numbers), each direction's byte stream ([`Reassembler`]), and every FIN
//! and RST with the sequence and acknowledgment numbers that say what kind of close it was
//! (see [`CloseKind`]). The application parser ([`App`]) rides on the two streams.

use super::reassembly::{Origin, Reassembler, StreamEvent};
use super::seq::SeqNumber;
use super::Side;
use crate::app::{App, Mark};
use crate::decode::{flags, TcpSegment};
use crate::time::{Nanos, Timestamp};
use serde::Serialize;
use std::net::SocketAddr;

/// How a FIN or RST closed (or tried to close) a direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// A FIN: orderly close of the sender's direction.
    Fin,
    /// `RST|ACK` whose sequence number continues the sender's stream: a live socket aborted
    /// (`SO_LINGER` 0, close() with unread data, process killed).
    RstAbort,
    /// A bare `RST` (no ACK bit) whose sequence number is the acknowledgment of the segment
    /// that triggered it (RFC 9293 §3.5.2): data reached a socket that was gone or closing.
    RstAnswer,
    /// `RST|ACK` answering a SYN (acknowledging ISN + 1): nothing listens (refused).
    RstRefusal,
    /// A reset whose numbers fit none of the above (out of window, or injected).
    RstOther,
}

impl CloseKind {
    /// True for any kind of RST.
    pub fn is_rst(self) -> bool {
        self != CloseKind::Fin
    }
    /// `FIN` or `RST`, for tables.
    pub fn short(self) -> &'static str {
        if self.is_rst() {
            "RST"
        } else {
            "FIN"
        }
    }
}

/// One FIN or RST packet.
#[derive(Copy, Clone, Debug, Serialize)]
pub struct CloseEvent {
    /// Who sent it.
    #[serde(rename = "by")]
    pub side: Side,
    /// Where and when.
    #[serde(flatten)]
    pub mark: Mark,
    /// What kind of close.
    pub kind: CloseKind,
    /// Its raw sequence number.
    pub seq: u32,
    /// Its raw acknowledgment number, if the ACK bit was set.
    pub ack: Option<u32>,
    /// A retransmission of a FIN already seen.
    pub retransmission: bool,
    /// IP TTL / hop limit of the packet.
    pub ttl: u8,
    /// IPv4 identification (0 for IPv6).
    #[serde(skip)]
    pub ip_id: u16,
    /// A RST: what this host's kernel said of it (live capture, or a pcapng it wrote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_reason: Option<crate::kernel::reason::KernelReason>,
}

/// How the client/server roles were decided.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The client sent the SYN.
    Syn,
    /// Only the SYN-ACK was captured; its receiver is the client.
    SynAck,
    /// No handshake captured: the side using the well-known or non-ephemeral port is the
    /// server.
    Ports,
    /// No handshake captured: the side that sent an HTTP request is the client.
    Request,
    /// No handshake captured and no better clue: the first sender is the client.
    FirstSender,
}

impl RoleSource {
    /// True when the roles were inferred because the handshake was not captured.
    pub fn inferred(self) -> bool {
        !matches!(self, RoleSource::Syn | RoleSource::SynAck)
    }
}

/// What a packet carried, for saying what a RST answered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// A SYN or SYN-ACK.
    Syn,
    /// Payload.
    Data,
    /// A FIN (maybe with payload).
    Fin,
    /// A keep-alive probe.
    Probe,
    /// A bare acknowledgment.
    Ack,
    /// A RST.
    Rst,
}

impl PacketKind {
    /// How a sentence names it.
    pub fn name(self) -> &'static str {
        match self {
            PacketKind::Syn => "SYN",
            PacketKind::Data => "data",
            PacketKind::Fin => "FIN",
            PacketKind::Probe => "keep-alive probe",
            PacketKind::Ack => "ACK",
            PacketKind::Rst => "RST",
        }
    }
}

/// What identifies one segment: sequence, acknowledgment, flags, length, IP ID and checksum.
type Fingerprint = (u32, u32, u8, u32, u32);

/// State of one direction.
#[derive(Default)]
pub struct Direction {
    /// The byte stream.
    pub stream: Reassembler,
    /// Initial sequence number, if the SYN was seen.
    pub isn: Option<SeqNumber>,
    /// Sequence number of the FIN, once sent.
    pub fin_seq: Option<SeqNumber>,
    /// Highest acknowledgment number sent (of the other direction's stream).
    pub last_ack: Option<SeqNumber>,
    /// Packets sent.
    pub packets: u64,
    /// Payload bytes sent on the wire (retransmissions included).
    pub payload_bytes: u64,
    /// Last packet carrying payload.
    pub last_data: Option<Mark>,
    /// Keep-alive probes (zero or one byte just below the next sequence number).
    pub keepalives: u32,
    /// Segments advertising a zero window.
    pub zero_windows: u32,
    /// SYNs sent (more than one: retransmitted).
    pub syns: u32,
    /// Frames that repeat one already seen, byte for byte and at the same time (a capture
    /// that holds packets twice): counted, not analysed again.
    pub duplicates: u32,
    /// Just past the highest sequence number this side sent data up to.
    pub sent_end: Option<SeqNumber>,
    /// The first byte this side sent that the peer has not acknowledged yet, and the
    /// segment that carried it.
    pub unacked: Option<(SeqNumber, Mark)>,
    /// Lowest and highest IP TTL of its packets other than RSTs: a RST outside that range
    /// did not come from the same hop distance.
    pub ttl_range: Option<(u8, u8)>,
    /// What its last packet was, and where.
    pub last_packet: Option<(PacketKind, Mark)>,
    /// IPv4 identification of its last packet other than a RST.
    pub last_ip_id: Option<u16>,
    /// Segments that repeated data already sent (retransmissions).
    pub retransmitted: u32,
    /// The previous segment: sequence, acknowledgment, flags, length, IP ID and checksum,
    /// and time, to recognise a repeat.
    last_segment: Option<(Fingerprint, Timestamp)>,
}

/// A repeat of the sender's previous segment this soon is a copy made by the capture, not a
/// retransmission (Linux waits at least 10 ms to probe, 200 ms to retransmit).
const DUPLICATE_WITHIN: Nanos = Nanos(1_000_000);

/// Retransmitted FINs recorded per connection (more are only counted): a stack or an
/// attacker repeating its FIN must not push out the RST that follows.
const MAX_FIN_RETRANSMISSIONS: usize = 4;
/// RSTs recorded per connection; beyond it the latest replaces the last one recorded, so
/// the first RSTs and the last are always on record.
const MAX_RSTS: usize = 16;

/// What [`Connection::shed`] gave up.
#[derive(Copy, Clone, Debug, Default)]
pub struct Shed {
    /// Out-of-order buffers given up as gaps.
    pub buffers: u32,
    /// Heads cut to their first lines.
    pub heads: u32,
    /// Answered requests folded into counts.
    pub folded: u64,
}

/// A TCP connection: one 4-tuple from its SYN (or first packet seen) until it is released.
pub struct Connection {
    /// Sequential number in order of first packet (1-based).
    pub id: u64,
    /// The side that opened the connection (or was inferred to).
    pub client: SocketAddr,
    /// The side that accepted it.
    pub server: SocketAddr,
    /// How the roles were decided.
    pub roles: RoleSource,
    /// First packet.
    pub first: Mark,
    /// Last packet.
    pub last: Mark,
    /// `[client, server]`.
    pub dirs: [Direction; 2],
    /// Every FIN and RST, in capture order (up to a cap).
    pub closes: Vec<CloseEvent>,
    /// FIN/RST packets beyond the cap.
    pub closes_dropped: u32,
    /// A SYN-ACK was seen.
    pub synack_seen: bool,
    /// The acknowledgment number of the SYN-ACK (the client's ISN + 1), when it was seen.
    pub synack_ack: Option<SeqNumber>,
    /// Time of the first SYN-ACK.
    pub synack_first: Option<Timestamp>,
    /// A SYN answered by RST was retried and then accepted (the refusal did not end it).
    pub reopened: bool,
    /// The capture is replaying this connection's packets (its first SYN seen again, same
    /// ISN, same time: a capture holding packets twice, such as files joined end to end):
    /// packets up to this time are repeats, counted and not analysed again.
    pub replay_until: Option<Timestamp>,
    /// Time of the client's first SYN.
    pub syn_ts: Option<Timestamp>,
    /// The latest timestamp seen on the connection.
    pub latest: Timestamp,
    /// The silence before the latest packet (time since the one before it).
    pub last_gap: Nanos,
    /// The silence before the packet the first RST answered: how long the flow had been
    /// quiet when that packet came (a middlebox that forgot the flow answers it).
    pub silence_before_rst_trigger: Option<Nanos>,
    /// The last packet with payload, either side, before the first FIN or RST.
    pub last_data_before_close: Option<Mark>,
    /// Application protocol state.
    pub app: App,
    /// Cap on out-of-order bytes buffered per direction.
    buffer_cap: usize,
    /// Its heap state as the flow table last counted it ([`Connection::heap_bytes`] after
    /// the last segment filed or state shed), so that filing a segment measures it once,
    /// not before and after.
    pub(crate) counted: usize,
}

impl Connection {
    /// Starts a connection from its first packet.
    pub fn new(id: u64, seg: &TcpSegment<'_>, mark: Mark, buffer_cap: usize) -> Connection {
        let src = SocketAddr::new(seg.src, seg.sport);
        let dst = SocketAddr::new(seg.dst, seg.dport);
        let (client, server, roles) = if seg.has(flags::SYN) && !seg.has(flags::ACK) {
            (src, dst, RoleSource::Syn)
        } else if seg.has(flags::SYN | flags::ACK) {
            (dst, src, RoleSource::SynAck)
        } else if let Some(src_is_server) = server_by_ports(seg.sport, seg.dport) {
            if src_is_server {
                (dst, src, RoleSource::Ports)
            } else {
                (src, dst, RoleSource::Ports)
            }
        } else {
            (src, dst, RoleSource::FirstSender)
        };
        Connection {
            id,
            client,
            server,
            roles,
            first: mark,
            last: mark,
            dirs: Default::default(),
            closes: Vec::new(),
            closes_dropped: 0,
            synack_seen: false,
            synack_ack: None,
            synack_first: None,
            reopened: false,
            replay_until: None,
            silence_before_rst_trigger: None,
            last_gap: Nanos(0),
            syn_ts: None,
            latest: mark.ts,
            last_data_before_close: None,
            app: App::Unknown,
            buffer_cap,
            counted: 0,
        }
    }

    /// Which side sent `seg`.
    pub fn side_of(&self, seg: &TcpSegment<'_>) -> Side {
        if seg.sport == self.client.port() && seg.src == self.client.ip() {
            Side::Client
        } else {
            Side::Server
        }
    }

    /// True once a RST was seen or both directions sent a FIN.
    pub fn is_closed(&self) -> bool {
        self.closes
            .iter()
            .any(|c| c.kind.is_rst() && !(self.reopened && c.kind == CloseKind::RstRefusal))
            || (self.dirs[0].fin_seq.is_some() && self.dirs[1].fin_seq.is_some())
    }

    /// True if a new SYN with this sequence number starts a new connection on the 4-tuple
    /// (port reuse), rather than retransmitting this one's SYN. A SYN captured after its
    /// own SYN-ACK (multi-queue capture) belongs to the connection the SYN-ACK started.
    pub fn is_reused_by(&self, seg: &TcpSegment<'_>) -> bool {
        let side = self.side_of(seg);
        let client = &self.dirs[Side::Client as usize];
        if side == Side::Client
            && client.isn.is_none()
            && self.synack_ack == Some(SeqNumber(seg.seq).plus(1))
        {
            return false;
        }
        side == Side::Server || client.isn != Some(SeqNumber(seg.seq))
    }

    /// True when `seg` at `mark` repeats what this connection already saw: the previous
    /// segment of its sender again (the same numbers, IP ID and checksum) within
    /// [`DUPLICATE_WITHIN`] (no stack retransmits that fast), or a FIN/RST on record at the
    /// same time.
    fn is_duplicate(&self, side: Side, seg: &TcpSegment<'_>, mark: Mark) -> bool {
        let fp = (seg.seq, seg.ack, seg.flags, seg.payload_len, seg.ident);
        if let Some((last, at)) = self.dirs[side as usize].last_segment {
            let dt = mark.ts.since(at);
            if last == fp && dt >= Nanos(0) && dt <= DUPLICATE_WITHIN {
                return true;
            }
        }
        seg.flags & (flags::FIN | flags::RST) != 0
            && self
                .closes
                .iter()
                .any(|c| c.side == side && c.seq == seg.seq && c.mark.ts == mark.ts)
    }

    /// The first FIN or RST, if any.
    pub fn first_close(&self) -> Option<&CloseEvent> {
        self.closes
            .iter()
            .find(|c| !(self.reopened && c.kind == CloseKind::RstRefusal))
    }

    /// Takes one packet of this connection.
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, mark: Mark) {
        let sender = self.side_of(seg);
        let is_syn = seg.has(flags::SYN) && !seg.has(flags::ACK);
        if is_syn && self.syn_ts == Some(mark.ts) && self.dirs[0].isn == Some(SeqNumber(seg.seq)) {
            // The first SYN again, at the same time: the capture replays the connection.
            self.replay_until = Some(self.latest);
        }
        if let Some(until) = self.replay_until {
            if mark.ts <= until {
                self.dirs[sender as usize].duplicates += 1;
                return;
            }
            self.replay_until = None;
        }
        if self.is_duplicate(sender, seg, mark) {
            self.dirs[sender as usize].duplicates += 1;
            return;
        }
        if is_syn && sender == Side::Client {
            self.syn_ts.get_or_insert(mark.ts);
        }
        self.latest = self.latest.max(mark.ts);
        // The packet just before the first RST is what it answered, if it came soon after.
        if seg.has(flags::RST)
            && !self.closes.iter().any(|c| c.kind.is_rst())
            && mark.ts.since(self.last.ts) < Nanos(1_000_000_000)
        {
            self.silence_before_rst_trigger = Some(self.last_gap);
        }
        self.last_gap = mark.ts.since(self.last.ts);
        self.dirs[sender as usize].last_segment = Some((
            (seg.seq, seg.ack, seg.flags, seg.payload_len, seg.ident),
            mark.ts,
        ));
        self.last = mark;
        if self.closes.is_empty() && seg.flags & (flags::FIN | flags::RST) != 0 {
            // The closing segment's own payload is the last data before the close.
            self.last_data_before_close = if seg.payload_len > 0 {
                Some(mark)
            } else {
                self.dirs[0].last_data.max(self.dirs[1].last_data)
            };
        }
        let mut side = self.side_of(seg);
        if seg.payload_len > 0 && matches!(self.app, App::Unknown) && self.roles.inferred() {
            side = self.check_roles_by_payload(side, seg.payload);
        }
        let i = side as usize;
        let seq = SeqNumber(seg.seq);
        {
            let d = &mut self.dirs[i];
            if !seg.has(flags::RST) {
                d.last_ip_id = Some((seg.ident >> 16) as u16);
                d.ttl_range = Some(d.ttl_range.map_or((seg.ttl, seg.ttl), |(lo, hi)| {
                    (lo.min(seg.ttl), hi.max(seg.ttl))
                }));
            }
            let kind = if seg.has(flags::RST) {
                PacketKind::Rst
            } else if seg.has(flags::SYN) {
                PacketKind::Syn
            } else if seg.has(flags::FIN) {
                PacketKind::Fin
            } else if seg.payload_len > 1 {
                PacketKind::Data
            } else if d.stream.next_seq().is_some_and(|n| seq.plus(1) == n) {
                PacketKind::Probe
            } else if seg.payload_len == 1 {
                PacketKind::Data
            } else {
                PacketKind::Ack
            };
            d.last_packet = Some((kind, mark));
            if seg.payload_len > 0 && d.sent_end.is_some_and(|e| seq.plus(seg.payload_len) <= e) {
                d.retransmitted += 1;
            }
            d.packets += 1;
            d.payload_bytes += seg.payload_len as u64;
            if seg.window == 0 && !seg.has(flags::RST) {
                d.zero_windows += 1;
            }
        }
        if seg.has(flags::SYN) {
            let d = &mut self.dirs[i];
            d.syns += 1;
            d.isn.get_or_insert(seq);
            d.stream.start_at(seq.plus(1));
            if seg.has(flags::ACK) && side == Side::Server {
                self.synack_seen = true;
                self.synack_ack.get_or_insert(SeqNumber(seg.ack));
                self.synack_first.get_or_insert(mark.ts);
                // A refused SYN retried and accepted: the refusal did not end it.
                if self.closes.iter().any(|c| c.kind == CloseKind::RstRefusal) {
                    self.reopened = true;
                }
            }
        } else if !seg.has(flags::RST) {
            // A RST's sequence number need not be in the stream (a refusal's is 0).
            self.dirs[i].stream.start_at(seq);
        }
        if seg.has(flags::RST) {
            let kind = self.classify_rst(side, seg);
            self.record_close(side, mark, kind, seg, false);
            return;
        }
        if seg.has(flags::ACK) {
            self.on_ack(side, SeqNumber(seg.ack), mark);
        }
        // A keep-alive probe: zero bytes (Linux) or one byte (others) one below the next
        // sequence number, so that the peer answers with an ACK.
        let probe = seg.payload_len <= 1 && seg.flags & (flags::SYN | flags::FIN | flags::RST) == 0;
        if probe
            && self.dirs[i]
                .stream
                .next_seq()
                .is_some_and(|n| seq.plus(1) == n)
        {
            self.dirs[i].keepalives += 1;
            return;
        }
        if seg.payload_len > 0 {
            let data_seq = if seg.has(flags::SYN) {
                seq.plus(1)
            } else {
                seq
            };
            let end = data_seq.plus(seg.payload_len);
            let peer_ack = self.dirs[side.peer() as usize].last_ack;
            let d = &mut self.dirs[i];
            d.last_data = Some(mark);
            d.sent_end = Some(d.sent_end.map_or(end, |e| e.max(end)));
            if d.unacked.is_none() && peer_ack.is_none_or(|a| a < end) {
                let from = peer_ack.map_or(data_seq, |a| a.max(data_seq));
                d.unacked = Some((from, mark));
            }
            let app = &mut self.app;
            let at = Origin {
                frame: mark.frame,
                ts: mark.ts,
                ack: seg.has(flags::ACK).then_some(SeqNumber(seg.ack)),
            };
            self.dirs[i].stream.segment(
                data_seq,
                seg.payload,
                seg.payload_len,
                at,
                self.buffer_cap,
                &mut |ev: StreamEvent<'_>| app.on_event(side, ev),
            );
        }
        if seg.has(flags::FIN) {
            let fin_seq = seq.plus(seg.payload_len);
            let retransmission = self.dirs[i].fin_seq.is_some();
            self.dirs[i].fin_seq.get_or_insert(fin_seq);
            self.record_close(side, mark, CloseKind::Fin, seg, retransmission);
            if !retransmission {
                self.app.on_fin(side, mark);
            }
        }
    }

    /// End of the connection's life in the table: hand on what is still buffered.
    pub fn finish(&mut self) {
        let last = self.last;
        for side in [Side::Client, Side::Server] {
            let app = &mut self.app;
            self.dirs[side as usize]
                .stream
                .flush(last.frame, last.ts, &mut |ev| app.on_event(side, ev));
        }
    }

    fn on_ack(&mut self, side: Side, ack: SeqNumber, mark: Mark) {
        let peer = side.peer() as usize;
        let d = &mut self.dirs[side as usize];
        d.last_ack = Some(d.last_ack.map_or(ack, |a| a.max(ack)));
        let p = &mut self.dirs[peer];
        if let Some((first, at)) = p.unacked {
            if p.sent_end.is_some_and(|end| ack >= end) {
                p.unacked = None;
            } else if ack > first {
                p.unacked = Some((ack, at));
            }
        }
        // Bytes the peer's stream acknowledges but we never captured: the capture lost them.
        let limit = match self.dirs[peer].fin_seq {
            Some(fin) if ack > fin => fin,
            _ => ack,
        };
        let app = &mut self.app;
        let peer_side = side.peer();
        self.dirs[peer]
            .stream
            .acked(limit, mark.frame, mark.ts, &mut |ev| {
                app.on_event(peer_side, ev)
            });
    }

    fn classify_rst(&self, side: Side, seg: &TcpSegment<'_>) -> CloseKind {
        if !seg.has(flags::ACK) {
            return CloseKind::RstAnswer;
        }
        let client_isn = self.dirs[Side::Client as usize].isn;
        if side == Side::Server
            && !self.synack_seen
            && client_isn.is_some_and(|isn| isn.plus(1) == SeqNumber(seg.ack))
        {
            return CloseKind::RstRefusal;
        }
        let me = &self.dirs[side as usize];
        let next = match me.fin_seq {
            Some(fin) => Some(fin.plus(1)),
            None => me.stream.next_seq(),
        };
        let seq = SeqNumber(seg.seq);
        match next {
            Some(n) if n == seq || me.fin_seq == Some(seq) => CloseKind::RstAbort,
            _ if seg.seq == 0 => CloseKind::RstAnswer,
            None => CloseKind::RstAbort,
            _ => CloseKind::RstOther,
        }
    }

    fn record_close(
        &mut self,
        side: Side,
        mark: Mark,
        kind: CloseKind,
        seg: &TcpSegment<'_>,
        retransmission: bool,
    ) {
        // Each side's first FIN is always recorded (there is one per side); what can be
        // repeated is capped so that it cannot push out what follows it.
        let event = CloseEvent {
            side,
            mark,
            kind,
            seq: seg.seq,
            ack: seg.has(flags::ACK).then_some(seg.ack),
            retransmission,
            ttl: seg.ttl,
            ip_id: (seg.ident >> 16) as u16,
            kernel_reason: None,
        };
        if retransmission
            && self.closes.iter().filter(|c| c.retransmission).count() >= MAX_FIN_RETRANSMISSIONS
        {
            self.closes_dropped += 1;
            return;
        }
        if kind.is_rst() && self.closes.iter().filter(|c| c.kind.is_rst()).count() >= MAX_RSTS {
            self.closes_dropped += 1;
            if let Some(last) = self.closes.iter_mut().rev().find(|c| c.kind.is_rst()) {
                *last = event;
            }
            return;
        }
        if self.closes.capacity() == self.closes.len() {
            // Usually two FINs, or one RST: grow from two, not the usual four.
            self.closes.reserve_exact(self.closes.len().max(2));
        }
        self.closes.push(event);
    }

    /// Before any payload was parsed, a connection whose roles were guessed can be set
    /// right by what its first payload says. Returns the sender's side after the check.
    fn check_roles_by_payload(&mut self, side: Side, payload: &[u8]) -> Side {
        let says_client = crate::app::http::looks_like_request(payload);
        let says_server = payload.starts_with(b"HTTP/1.");
        let wrong = (says_client && side == Side::Server) || (says_server && side == Side::Client);
        if wrong {
            std::mem::swap(&mut self.client, &mut self.server);
            self.dirs.swap(0, 1);
            for c in &mut self.closes {
                c.side = c.side.peer();
            }
        }
        if says_client || says_server {
            self.roles = RoleSource::Request;
        }
        if wrong {
            side.peer()
        } else {
            side
        }
    }

    /// Memory the connection holds on the heap beyond its own struct (an estimate, for the
    /// memory budget): buffered segments, the application state, the close list.
    pub fn heap_bytes(&self) -> usize {
        self.dirs[0].stream.heap_bytes()
            + self.dirs[1].stream.heap_bytes()
            + self.app.heap_bytes()
            + self.closes.capacity() * std::mem::size_of::<CloseEvent>()
    }

    /// Memory budget: gives up what tells least while the connection goes on: segments
    /// waiting for a hole (they become a gap now), the tail of a long head being read, and
    /// answered requests at the start. Returns what was given up.
    pub fn shed(&mut self) -> Shed {
        let last = self.last;
        let mut shed = Shed::default();
        for side in [Side::Client, Side::Server] {
            let app = &mut self.app;
            let freed = self.dirs[side as usize]
                .stream
                .shed(last.frame, last.ts, &mut |ev| app.on_event(side, ev));
            shed.buffers += (freed > 0) as u32;
        }
        (shed.heads, shed.folded) = self.app.shed();
        shed
    }

    /// Time of the last packet.
    pub fn last_ts(&self) -> Timestamp {
        self.last.ts
    }
}

/// Guesses from ports alone which side is the server: `Some(true)` if the source port is
/// the server's. A well-known port (< 1024) beats a registered one; a non-ephemeral port
/// (< 32768) beats an ephemeral one.
pub fn server_by_ports(sport: u16, dport: u16) -> Option<bool> {
    let rank = |p: u16| match p {
        0..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    };
    match rank(sport).cmp(&rank(dport)) {
        std::cmp::Ordering::Less => Some(true),
        std::cmp::Ordering::Greater => Some(false),
        std::cmp::Ordering::Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::flags::*;
    use crate::source::FrameRef;

    const CLIENT: &str = "10.0.0.1";
    const SERVER: &str = "10.0.0.2";

    struct Wire {
        conn: Option<Connection>,
        frame: u64,
    }

    impl Wire {
        fn new() -> Wire {
            Wire {
                conn: None,
                frame: 0,
            }
        }
        /// Sends one segment from the client (`true`) or the server.
        fn send(&mut self, from_client: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]) {
            self.frame += 1;
            let (src, dst, sport, dport) = if from_client {
                (CLIENT, SERVER, 40000, 80)
            } else {
                (SERVER, CLIENT, 80, 40000)
            };
            let seg = TcpSegment {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport,
                dport,
                seq,
                ack,
                flags,
                window: 1000,
                ttl: 64,
                payload,
                payload_len: payload.len() as u32,
                ident: self.frame as u32,
            };
            let mark = Mark {
                frame: FrameRef {
                    file: 0,
                    number: self.frame,
                },
                ts: Timestamp(self.frame as i64),
            };
            match self.conn.as_mut() {
                Some(c) => c.on_segment(&seg, mark),
                None => {
                    let mut c = Connection::new(1, &seg, mark, 1 << 20);
                    c.on_segment(&seg, mark);
                    self.conn = Some(c);
                }
            }
        }
        fn handshake(&mut self) {
            self.send(true, SYN, 100, 0, b"");
            self.send(false, SYN | ACK, 500, 101, b"");
            self.send(true, ACK, 101, 501, b"");
        }
        fn kinds(&self) -> Vec<(Side, CloseKind)> {
            self.conn
                .as_ref()
                .unwrap()
                .closes
                .iter()
                .map(|c| (c.side, c.kind))
                .collect()
        }
    }

    #[test]
    fn repeated_fins_and_rsts_cannot_push_out_the_last_rst() {
        // A server that retransmits its FIN 40 times, then resets twice 100 times over: the
        // first FIN, the first RSTs and the last RST stay on record; the rest is counted.
        let mut w = Wire::new();
        w.handshake();
        w.send(false, FIN | ACK, 501, 101, b"");
        for _ in 0..40 {
            w.send(false, FIN | ACK, 501, 101, b"");
        }
        w.send(true, PSH | ACK, 101, 502, b"POST / HTTP/1.1\r\n\r\n");
        for i in 0..200 {
            w.send(false, RST, 502 + (i % 2), 0, b"");
        }
        let c = w.conn.as_ref().unwrap();
        let fins = c.closes.iter().filter(|e| e.kind == CloseKind::Fin).count();
        let rsts: Vec<&CloseEvent> = c.closes.iter().filter(|e| e.kind.is_rst()).collect();
        assert_eq!(fins, 1 + MAX_FIN_RETRANSMISSIONS);
        assert!(!c.closes[0].retransmission && c.closes[0].kind == CloseKind::Fin);
        assert_eq!(rsts.len(), MAX_RSTS);
        assert_eq!(rsts[0].mark.frame.number, 46, "the first RST");
        assert_eq!(
            rsts.last().unwrap().mark.frame.number,
            w.frame,
            "the last RST"
        );
        assert_eq!(
            c.closes_dropped as usize,
            40 - MAX_FIN_RETRANSMISSIONS + 200 - MAX_RSTS
        );
    }

    #[test]
    fn refused_syn() {
        let mut w = Wire::new();
        w.send(true, SYN, 100, 0, b"");
        w.send(false, RST | ACK, 0, 101, b"");
        assert_eq!(w.kinds(), vec![(Side::Server, CloseKind::RstRefusal)]);
    }

    #[test]
    fn abort_continues_the_senders_sequence() {
        let mut w = Wire::new();
        w.handshake();
        w.send(true, PSH | ACK, 101, 501, b"GET / HTTP/1.1\r\n\r\n");
        w.send(false, RST | ACK, 501, 119, b"");
        assert_eq!(w.kinds(), vec![(Side::Server, CloseKind::RstAbort)]);
    }

    #[test]
    fn bare_rst_answers_data_after_close() {
        let mut w = Wire::new();
        w.handshake();
        w.send(false, FIN | ACK, 501, 101, b"");
        w.send(true, PSH | ACK, 101, 502, b"POST / HTTP/1.1\r\n\r\n");
        // The answer of a socket that is gone: seq = the trigger's ACK, no ACK bit.
        w.send(false, RST, 502, 0, b"");
        assert_eq!(
            w.kinds(),
            vec![
                (Side::Server, CloseKind::Fin),
                (Side::Server, CloseKind::RstAnswer)
            ]
        );
        let c = w.conn.as_ref().unwrap();
        assert_eq!(c.dirs[Side::Server as usize].fin_seq, Some(SeqNumber(501)));
        assert!(c.is_closed());
    }

    #[test]
    fn keepalive_probes_of_zero_and_one_byte() {
        let mut w = Wire::new();
        w.handshake();
        w.send(true, ACK, 100, 501, b"");
        w.send(true, ACK, 100, 501, b"x");
        let c = w.conn.as_ref().unwrap();
        assert_eq!(c.dirs[Side::Client as usize].keepalives, 2);
        assert_eq!(
            c.dirs[Side::Client as usize].stream.stats.retransmissions,
            0
        );
        assert!(
            c.dirs[Side::Client as usize].last_data.is_none(),
            "a probe is not data"
        );
    }

    #[test]
    fn roles_inferred_mid_stream_are_corrected_by_the_first_request() {
        let mut w = Wire::new();
        // Both ports ephemeral: the first sender (the server here) is guessed as client …
        w.frame += 1;
        let seg = TcpSegment {
            src: SERVER.parse().unwrap(),
            dst: CLIENT.parse().unwrap(),
            sport: 40001,
            dport: 40000,
            seq: 500,
            ack: 100,
            flags: ACK,
            window: 1000,
            ttl: 64,
            payload: b"",
            payload_len: 0,
            ident: 0,
        };
        let mark = Mark {
            frame: FrameRef { file: 0, number: 1 },
            ts: Timestamp(1),
        };
        let mut c = Connection::new(1, &seg, mark, 1 << 20);
        c.on_segment(&seg, mark);
        assert_eq!(c.roles, RoleSource::FirstSender);
        // … until the other side sends a request.
        let req = TcpSegment {
            src: CLIENT.parse().unwrap(),
            dst: SERVER.parse().unwrap(),
            sport: 40000,
            dport: 40001,
            seq: 100,
            ack: 500,
            payload: b"GET / HTTP/1.1\r\n\r\n",
            payload_len: 18,
            flags: PSH | ACK,
            ..seg
        };
        c.on_segment(
            &req,
            Mark {
                frame: FrameRef { file: 0, number: 2 },
                ts: Timestamp(2),
            },
        );
        assert_eq!(c.roles, RoleSource::Request);
        assert_eq!(c.client.to_string(), "10.0.0.1:40000");
        assert_eq!(c.app.http().unwrap().requests.len(), 1);
    }
}
