//! Per-direction stream reassembly.
//!
//! A [`Reassembler`] turns the segments of one direction, in capture order, into the byte
//! stream the receiving application read: in-order payload is handed on without copying,
//! segments that arrive early are buffered (up to a cap) until the hole before them fills,
//! retransmitted and overlapping bytes are delivered once, and bytes that were never captured
//! become an explicit [`StreamEvent::Gap`]: when the receiver acknowledges data we never saw,
//! when the snap length cut a payload, when the buffer cap is reached, or at the end. Gaps are
//! counted, never a reason to stop.

use super::seq::SeqNumber;
use crate::source::FrameRef;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// Payload bytes of one segment, in stream order, with where they came from.
#[derive(Copy, Clone, Debug)]
pub struct Chunk<'a> {
    /// The bytes.
    pub data: &'a [u8],
    /// Sequence number of the first byte.
    pub seq: SeqNumber,
    /// The frame that carried them.
    pub frame: FrameRef,
    /// Its timestamp.
    pub ts: Timestamp,
    /// The acknowledgment number that segment carried (what its sender had received).
    pub ack: Option<SeqNumber>,
}

/// Where a segment came from.
#[derive(Copy, Clone, Debug, Default)]
pub struct Origin {
    /// Its frame.
    pub frame: FrameRef,
    /// Its timestamp.
    pub ts: Timestamp,
    /// Its acknowledgment number, if the ACK bit was set.
    pub ack: Option<SeqNumber>,
}

/// What the application layer is handed.
#[derive(Copy, Clone, Debug)]
pub enum StreamEvent<'a> {
    /// The next bytes of the stream.
    Data(Chunk<'a>),
    /// `len` bytes of the stream were not captured; the next event follows them.
    Gap {
        /// How many bytes are missing.
        len: u64,
        /// The frame at which the gap was noticed.
        frame: FrameRef,
        /// Its timestamp.
        ts: Timestamp,
    },
}

/// Counters kept per direction.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReassemblyStats {
    /// Segments whose bytes had all been seen before.
    pub retransmissions: u32,
    /// Segments that arrived before the bytes preceding them.
    pub out_of_order: u32,
    /// Number of gaps (bytes never captured).
    pub gaps: u32,
    /// Bytes never captured, in total.
    pub gap_bytes: u64,
    /// Payload bytes cut from frames by the snap length.
    pub cut_bytes: u64,
    /// Times the out-of-order buffer reached its cap and was given up as a gap.
    pub overflows: u32,
    /// Times the memory budget gave up the out-of-order buffer as a gap.
    #[serde(skip_serializing_if = "is_zero")]
    pub shed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What one buffered segment costs beyond its bytes: the entry, the tree's share of a node,
/// and the allocator's header. The buffer cap counts this too, so that a flood of 1-byte
/// (or snaplen-cut) segments cannot hold more memory than the cap says.
pub const ENTRY_COST: usize = std::mem::size_of::<Buffered>() + 8 + 48;

struct Buffered {
    data: Vec<u8>,
    /// Bytes on the wire (more than `data.len()` if the frame was cut).
    wire_len: u32,
    at: Origin,
}

/// Reassembly state of one direction of a connection.
#[derive(Default)]
pub struct Reassembler {
    /// Sequence number of the next byte to deliver, once known.
    next: Option<SeqNumber>,
    /// Absolute stream offset of `next` (never wraps).
    next_abs: u64,
    /// Early segments by absolute offset.
    pending: BTreeMap<u64, Buffered>,
    /// What `pending` costs: its bytes plus [`ENTRY_COST`] per segment.
    pending_bytes: usize,
    /// Counters.
    pub stats: ReassemblyStats,
}

impl Reassembler {
    /// The sequence number of the next byte expected, if known.
    pub fn next_seq(&self) -> Option<SeqNumber> {
        self.next
    }

    /// Memory held by segments waiting for a hole to fill (bytes and bookkeeping).
    pub fn heap_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Bytes of stream delivered or skipped as gaps so far.
    pub fn offset(&self) -> u64 {
        self.next_abs
    }

    /// Sets where the stream starts (the ISN + 1 after a SYN, or the first sequence number
    /// seen mid-connection). Ignored once set.
    pub fn start_at(&mut self, seq: SeqNumber) {
        if self.next.is_none() {
            self.next = Some(seq);
        }
    }

    /// Takes one segment's payload. `wire_len` is its length on the wire (more than
    /// `data.len()` when cut). `cap` bounds the bytes buffered out of order.
    pub fn segment(
        &mut self,
        seq: SeqNumber,
        data: &[u8],
        wire_len: u32,
        at: Origin,
        cap: usize,
        out: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let (frame, ts) = (at.frame, at.ts);
        if wire_len == 0 {
            return;
        }
        let next = match self.next {
            Some(n) => n,
            None => {
                self.next = Some(seq);
                seq
            }
        };
        let rel = seq.diff(next);
        let end = rel + wire_len as i64;
        if end <= 0 {
            self.stats.retransmissions += 1;
            return;
        }
        if rel > 0 {
            self.stats.out_of_order += 1;
            let abs = self.next_abs + rel as u64;
            if self.pending_bytes + data.len() + ENTRY_COST > cap {
                self.stats.overflows += 1;
                self.flush(frame, ts, out);
                // Everything before this segment is now given up; it becomes the stream.
                self.skip_to(abs, frame, ts, out);
                let skip = (self.next_abs - abs) as usize;
                if skip < wire_len as usize {
                    let data = data.get(skip..).unwrap_or(&[]);
                    self.deliver(data, wire_len - skip as u32, at, out);
                }
                return;
            }
            match self.pending.get(&abs) {
                Some(b) if b.wire_len >= wire_len => self.stats.retransmissions += 1,
                _ => {
                    self.pending_bytes += data.len() + ENTRY_COST;
                    if let Some(old) = self.pending.insert(
                        abs,
                        Buffered {
                            data: data.to_vec(),
                            wire_len,
                            at,
                        },
                    ) {
                        self.pending_bytes -= old.data.len() + ENTRY_COST;
                    }
                }
            }
            return;
        }
        // rel <= 0 < end: starts at or before `next`, brings new bytes.
        let skip = (-rel) as usize;
        if skip > 0 {
            self.stats.retransmissions += 1;
        }
        let data = data.get(skip..).unwrap_or(&[]);
        self.deliver(data, wire_len - skip as u32, at, out);
        self.drain(Some(at), out);
    }

    /// The peer acknowledged everything before `ack` (bounded by the FIN's number if one
    /// was seen): bytes before it that we never saw were lost by the capture, not the
    /// network, so they become a gap now instead of stalling the stream.
    pub fn acked(
        &mut self,
        ack: SeqNumber,
        frame: FrameRef,
        ts: Timestamp,
        out: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let Some(next) = self.next else { return };
        let ahead = ack.diff(next);
        if ahead <= 0 || ahead > (1 << 30) {
            return;
        }
        let target = self.next_abs + ahead as u64;
        // Deliver buffered segments up to the acknowledged point, with gaps between.
        while let Some((&abs, _)) = self.pending.first_key_value() {
            if abs >= target {
                break;
            }
            self.skip_to(abs, frame, ts, out);
            self.drain(None, out);
        }
        if self.next_abs < target {
            self.skip_to(target, frame, ts, out);
            self.drain(None, out);
        }
    }

    /// Memory budget: hands on what is buffered now, with gaps for the holes, as if the
    /// holes would never fill. Returns the bytes freed.
    pub fn shed(
        &mut self,
        frame: FrameRef,
        ts: Timestamp,
        out: &mut impl FnMut(StreamEvent<'_>),
    ) -> usize {
        let before = self.pending_bytes;
        if before > 0 {
            self.stats.shed += 1;
            self.flush(frame, ts, out);
        }
        before - self.pending_bytes
    }

    /// Hands on everything still buffered, with gaps for the holes (end of connection).
    pub fn flush(&mut self, frame: FrameRef, ts: Timestamp, out: &mut impl FnMut(StreamEvent<'_>)) {
        while let Some((&abs, _)) = self.pending.first_key_value() {
            self.skip_to(abs, frame, ts, out);
            self.drain(None, out);
        }
    }

    fn skip_to(
        &mut self,
        abs: u64,
        frame: FrameRef,
        ts: Timestamp,
        out: &mut impl FnMut(StreamEvent<'_>),
    ) {
        if abs <= self.next_abs {
            return;
        }
        let len = abs - self.next_abs;
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        out(StreamEvent::Gap { len, frame, ts });
        self.advance(len);
    }

    fn advance(&mut self, len: u64) {
        self.next_abs += len;
        if let Some(n) = self.next {
            self.next = Some(n.plus(len as u32));
        }
    }

    /// Delivers `data` at `next` (its first `data.len()` bytes captured, `wire_len` on the
    /// wire) and moves on.
    fn deliver(
        &mut self,
        data: &[u8],
        wire_len: u32,
        at: Origin,
        out: &mut impl FnMut(StreamEvent<'_>),
    ) {
        let seq = self.next.unwrap_or_default();
        let (frame, ts) = (at.frame, at.ts);
        if !data.is_empty() {
            out(StreamEvent::Data(Chunk {
                data,
                seq,
                frame,
                ts,
                ack: at.ack,
            }));
        }
        self.advance(data.len() as u64);
        let cut = wire_len as u64 - data.len() as u64;
        if cut > 0 {
            self.stats.cut_bytes += cut;
            self.stats.gaps += 1;
            self.stats.gap_bytes += cut;
            out(StreamEvent::Gap {
                len: cut,
                frame,
                ts,
            });
            self.advance(cut);
        }
    }

    /// Delivers buffered segments that have become contiguous. When `filled` (the segment
    /// that filled the hole before them) came later, they are handed on with its frame and
    /// time: that is when the receiver could first read them (a response is complete when
    /// its last hole is filled, not when its last segment was first captured).
    fn drain(&mut self, filled: Option<Origin>, out: &mut impl FnMut(StreamEvent<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            let abs = *entry.key();
            if abs > self.next_abs {
                break;
            }
            let b = entry.remove();
            self.pending_bytes -= b.data.len() + ENTRY_COST;
            let skip = (self.next_abs - abs) as usize;
            if skip >= b.wire_len as usize {
                self.stats.retransmissions += 1;
                continue;
            }
            let data = b.data.get(skip..).unwrap_or(&[]);
            let at = match filled {
                Some(f) if f.ts > b.at.ts => Origin { ack: b.at.ack, ..f },
                _ => b.at,
            };
            self.deliver(data, b.wire_len - skip as u32, at, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(frame: FrameRef) -> Origin {
        Origin {
            frame,
            ts: Timestamp(0),
            ack: None,
        }
    }

    fn run(segments: &[(u32, &[u8])], ack: Option<u32>) -> (String, ReassemblyStats) {
        let mut r = Reassembler::default();
        r.start_at(SeqNumber(100));
        let mut got = String::new();
        let mut out = |e: StreamEvent<'_>| match e {
            StreamEvent::Data(c) => got.push_str(std::str::from_utf8(c.data).unwrap()),
            StreamEvent::Gap { len, .. } => got.push_str(&format!("<gap {len}>")),
        };
        for (i, (seq, data)) in segments.iter().enumerate() {
            let f = FrameRef {
                file: 0,
                number: i as u64 + 1,
            };
            r.segment(
                SeqNumber(*seq),
                data,
                data.len() as u32,
                at(f),
                1 << 20,
                &mut out,
            );
        }
        if let Some(a) = ack {
            r.acked(SeqNumber(a), FrameRef::default(), Timestamp(0), &mut out);
        }
        r.flush(FrameRef::default(), Timestamp(0), &mut out);
        (got, r.stats)
    }

    #[test]
    fn in_order() {
        assert_eq!(run(&[(100, b"abc"), (103, b"def")], None).0, "abcdef");
    }

    #[test]
    fn out_of_order_and_retransmission() {
        let (s, st) = run(
            &[(103, b"def"), (100, b"abc"), (100, b"abc"), (106, b"g")],
            None,
        );
        assert_eq!(s, "abcdefg");
        assert_eq!(st.out_of_order, 1);
        assert_eq!(st.retransmissions, 1);
    }

    #[test]
    fn overlap_delivers_new_bytes_once() {
        assert_eq!(run(&[(100, b"abcd"), (102, b"cdef")], None).0, "abcdef");
    }

    #[test]
    fn hole_acked_by_peer_becomes_gap() {
        let (s, st) = run(&[(100, b"ab"), (105, b"fg")], Some(107));
        assert_eq!(s, "ab<gap 3>fg");
        assert_eq!((st.gaps, st.gap_bytes), (1, 3));
    }

    #[test]
    fn unacked_hole_is_flushed_at_the_end() {
        assert_eq!(run(&[(100, b"ab"), (110, b"z")], None).0, "ab<gap 8>z");
    }

    #[test]
    fn wraps_around_zero() {
        let mut r = Reassembler::default();
        r.start_at(SeqNumber(u32::MAX - 1));
        let mut got = Vec::new();
        let mut out = |e: StreamEvent<'_>| {
            if let StreamEvent::Data(c) = e {
                got.extend_from_slice(c.data)
            }
        };
        let f = FrameRef::default();
        r.segment(SeqNumber(0), b"cd", 2, at(f), 1024, &mut out);
        r.segment(SeqNumber(u32::MAX - 1), b"ab", 2, at(f), 1024, &mut out);
        assert_eq!(got, b"abcd");
        assert_eq!(r.next_seq(), Some(SeqNumber(2)));
    }

    #[test]
    fn cut_payload_is_a_gap() {
        let mut r = Reassembler::default();
        let mut got = String::new();
        let mut out = |e: StreamEvent<'_>| match e {
            StreamEvent::Data(c) => got.push_str(std::str::from_utf8(c.data).unwrap()),
            StreamEvent::Gap { len, .. } => got.push_str(&format!("<gap {len}>")),
        };
        r.segment(
            SeqNumber(1),
            b"GET",
            10,
            at(FrameRef::default()),
            1024,
            &mut out,
        );
        assert_eq!(got, "GET<gap 7>");
        assert_eq!(r.stats.cut_bytes, 7);
    }

    #[test]
    fn buffer_cap_gives_up_the_hole() {
        let mut r = Reassembler::default();
        r.start_at(SeqNumber(0));
        let mut events = 0;
        let mut out = |_: StreamEvent<'_>| events += 1;
        let f = FrameRef::default();
        let cap = ENTRY_COST + 10;
        r.segment(SeqNumber(10), &[1; 8], 8, at(f), cap, &mut out);
        r.segment(SeqNumber(30), &[1; 8], 8, at(f), cap, &mut out);
        assert_eq!(r.stats.overflows, 1);
        assert_eq!(r.offset(), 38);
        assert!(r.pending.is_empty());
    }

    #[test]
    fn the_cap_counts_bookkeeping_not_only_bytes() {
        // A hole, then a flood of segments cut to one captured byte each (1400 on the wire):
        // what is buffered stays within the cap, bookkeeping included.
        let mut r = Reassembler::default();
        r.start_at(SeqNumber(0));
        let mut out = |_: StreamEvent<'_>| {};
        let f = FrameRef::default();
        let cap = 64 * 1024;
        for i in 0..10_000u32 {
            r.segment(SeqNumber(1000 + i * 1400), b"x", 1400, at(f), cap, &mut out);
            assert!(
                r.heap_bytes() <= cap,
                "segment {i}: {} bytes",
                r.heap_bytes()
            );
        }
        assert!(r.stats.overflows > 0);
        assert!(r.pending.len() * (ENTRY_COST + 1) <= cap);
    }
}
