//! The evidence behind findings: the packets of the connections that have them.
//!
//! Reports for tickets show a packet ladder per finding, and `--extract` writes those
//! connections' packets to a small capture. Neither is worth keeping per flow while the whole
//! capture streams by, so once the analysis is done, [`gather`] reads the inputs a second
//! time and picks out only the packets of the [`Target`] connections (their 4-tuple, between
//! their first and last packet): one [`LadderRow`] per packet (the last [`MAX_ROWS`] of
//! each connection), and every original frame to the extract writer.
//!
//! An input that cannot be read twice (a pipe) is read the second time from the copy the
//! first pass made of it (see [`crate::source::spool`]). A 4-tuple may carry many
//! connections (port reuse: thousands of refused SYNs on the same ports), so each packet
//! finds its connection by a binary search over that 4-tuple's connections sorted by start
//! time (`Candidates`), not by trying each in turn.

use super::pcap_writer::{PcapWriter, Shape, Written};
use crate::app::http::looks_like_request;
use crate::decode::{self, flags, TcpSegment};
use crate::escape;
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use crate::pipeline::narrow::{Narrow, Window};
use crate::source::merge::{CaptureSet, Input};
use crate::source::{FrameRef, SourceError};
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;

/// Packets shown per connection (the last ones: that is where it died).
pub const MAX_ROWS: usize = 24;

/// A connection whose packets are wanted.
#[derive(Clone, Debug)]
pub struct Target {
    /// Connection id.
    pub id: u64,
    /// Client endpoint.
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
    /// Its first packet's time.
    pub start: Timestamp,
    /// Its last packet's time.
    pub end: Timestamp,
    /// Keep its ladder (only the findings a report lists need one).
    pub ladder: bool,
    /// The most packets its ladder keeps (the last ones): [`MAX_ROWS`] in reports.
    pub max_rows: usize,
}

/// One packet of a ladder.
#[derive(Clone, Debug)]
pub struct LadderRow {
    /// Where it is.
    pub frame: FrameRef,
    /// When.
    pub ts: Timestamp,
    /// Who sent it.
    pub from: Side,
    /// TCP flags.
    pub flags: u8,
    /// Sequence number relative to the sender's initial one (as Wireshark shows it).
    pub seq: u32,
    /// Acknowledgment number relative to the receiver's initial one, if ACK is set.
    pub ack: Option<u32>,
    /// Payload length on the wire.
    pub len: u32,
    /// What the payload starts with (`POST /test`, `HTTP/1.1 200 OK`, `TLS application
    /// data`), made safe for a terminal; empty without payload.
    pub summary: String,
}

impl LadderRow {
    /// `SYN`, `FIN,ACK`, `RST`, … in Wireshark's order.
    pub fn flag_names(&self) -> String {
        let names = [
            (flags::SYN, "SYN"),
            (flags::FIN, "FIN"),
            (flags::RST, "RST"),
            (flags::PSH, "PSH"),
            (flags::ACK, "ACK"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.flags & b != 0)
            .map(|(_, n)| *n)
            .collect();
        v.join(",")
    }
    /// True for FIN.
    pub fn is_fin(&self) -> bool {
        self.flags & flags::FIN != 0
    }
    /// True for RST.
    pub fn is_rst(&self) -> bool {
        self.flags & flags::RST != 0
    }
}

/// The packets found for one target.
#[derive(Clone, Debug, Default)]
pub struct Ladder {
    /// The last packets, in capture order.
    pub rows: Vec<LadderRow>,
    /// Earlier packets not shown.
    pub omitted: u64,
}

#[derive(Default)]
struct Collecting {
    rows: VecDeque<LadderRow>,
    omitted: u64,
    /// Base sequence numbers per side (ISN, or first seen minus one).
    base: [Option<u32>; 2],
}

fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// What the payload starts with, for a ladder.
pub fn payload_summary(seg: &TcpSegment<'_>) -> String {
    let p = seg.payload;
    if seg.payload_len == 0 {
        return String::new();
    }
    let first_line = || {
        let end = p
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(p.len());
        String::from_utf8_lossy(&p[..end]).into_owned()
    };
    if looks_like_request(p) {
        let line = first_line();
        let line = line
            .strip_suffix(" HTTP/1.1")
            .or_else(|| line.strip_suffix(" HTTP/1.0"))
            .unwrap_or(&line)
            .to_string();
        return escape::terminal_max(&line, 48);
    }
    if p.starts_with(b"HTTP/1.") {
        return escape::terminal_max(&first_line(), 40);
    }
    if p.len() >= 3 && (20..=24).contains(&p[0]) && p[1] == 3 {
        let kind = match p[0] {
            20 => "change cipher spec",
            21 => "alert",
            22 => "handshake",
            23 => "application data",
            _ => "heartbeat",
        };
        return format!("TLS {kind}");
    }
    super::words::plural(seg.payload_len as u64, "byte", "bytes")
}

/// The connections of one 4-tuple, sorted by start time, to find the one a packet belongs
/// to: a binary search for those that started by then, and a tree of the latest end over
/// ranges of them that leads straight to those that had not ended. A lookup costs
/// O((k + 1) log n) for k connections whose spans hold the time, k being 1 but for
/// overlapping spans (time running backwards).
#[derive(Debug, Default)]
struct Candidates {
    /// (start, target index), sorted.
    starts: Vec<(Timestamp, usize)>,
    /// Leaves from `size` on: each connection's end in `starts` order; inner node `i`: the
    /// latest end under it.
    max_end: Vec<Timestamp>,
    size: usize,
}

impl Candidates {
    fn new(mut of: Vec<usize>, targets: &[Target]) -> Candidates {
        of.sort_unstable_by_key(|&i| (targets[i].start, i));
        let size = of.len().next_power_of_two();
        let mut max_end = vec![Timestamp(i64::MIN); 2 * size];
        for (j, &i) in of.iter().enumerate() {
            max_end[size + j] = targets[i].end;
        }
        for n in (1..size).rev() {
            max_end[n] = max_end[2 * n].max(max_end[2 * n + 1]);
        }
        Candidates {
            starts: of.iter().map(|&i| (targets[i].start, i)).collect(),
            max_end,
            size,
        }
    }

    /// The target a packet at `ts` belongs to: of those whose span holds `ts`, the first in
    /// `targets` (as a search through them in order would find).
    fn find(&self, ts: Timestamp) -> Option<usize> {
        let started = self.starts.partition_point(|&(start, _)| start <= ts);
        let mut best = None;
        self.visit(1, 0, self.size, started, ts, &mut best);
        best
    }

    /// Looks under tree node `node` (covering positions `lo..hi`) for connections among the
    /// first `started` whose end is at or after `ts`.
    fn visit(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        started: usize,
        ts: Timestamp,
        best: &mut Option<usize>,
    ) {
        if lo >= started || self.max_end[node] < ts {
            return;
        }
        if hi - lo == 1 {
            let i = self.starts[lo].1;
            if best.is_none_or(|b| i < b) {
                *best = Some(i);
            }
            return;
        }
        let mid = (lo + hi) / 2;
        self.visit(2 * node, lo, mid, started, ts, best);
        self.visit(2 * node + 1, mid, hi, started, ts, best);
    }
}

/// What the second pass found.
#[derive(Debug, Default)]
pub struct Gathered {
    /// The ladder of every target that wants one, by connection id.
    pub ladders: FxHashMap<u64, Ladder>,
    /// Targets at least one packet of which was found (and, with an extract, written).
    pub found: usize,
    /// What was written to the extract.
    pub written: Written,
    /// Errors met reading the inputs again (the first pass met most of them too).
    pub errors: Vec<SourceError>,
}

/// Reads `inputs` again and returns the ladder of every target (by connection id); with
/// `extract`, also writes every packet of the targets there, in a file whose header fits
/// `shape` (what the first pass read). `narrow`: the first pass's narrowing and its window
/// (the same frames are left out).
pub fn gather(
    inputs: Vec<Input>,
    shape: &Shape,
    targets: &[Target],
    extract: Option<&Path>,
    narrow: Option<(&Narrow, Window)>,
) -> std::io::Result<Gathered> {
    let mut by_key: FxHashMap<(SocketAddr, SocketAddr), Vec<usize>> = FxHashMap::default();
    for (i, t) in targets.iter().enumerate() {
        by_key.entry(key(t.client, t.server)).or_default().push(i);
    }
    let by_key: FxHashMap<(SocketAddr, SocketAddr), Candidates> = by_key
        .into_iter()
        .map(|(k, v)| (k, Candidates::new(v, targets)))
        .collect();
    let mut state: Vec<Collecting> = targets.iter().map(|_| Collecting::default()).collect();
    let mut found = vec![false; targets.len()];
    let mut writer = match extract {
        Some(p) => Some(PcapWriter::create(p, shape)?),
        None => None,
    };
    let mut set = CaptureSet::open_inputs(inputs);
    while let Some(p) = set.next_packet() {
        if narrow.is_some_and(|(n, w)| !n.keeps(w, &p)) {
            continue;
        }
        let Ok(seg) = decode::decode(p.linktype, p.data) else {
            continue;
        };
        let src = SocketAddr::new(seg.src, seg.sport);
        let dst = SocketAddr::new(seg.dst, seg.dport);
        let Some(candidates) = by_key.get(&key(src, dst)) else {
            continue;
        };
        let Some(i) = candidates.find(p.ts) else {
            continue;
        };
        found[i] = true;
        if let Some(w) = writer.as_mut() {
            w.write(&p)?;
        }
        let t = &targets[i];
        if !t.ladder {
            continue;
        }
        let c = &mut state[i];
        let from = if src == t.client {
            Side::Client
        } else {
            Side::Server
        };
        let me = from as usize;
        let base = *c.base[me].get_or_insert(if seg.has(flags::SYN) {
            seg.seq
        } else {
            seg.seq.wrapping_sub(1)
        });
        let peer_base = c.base[1 - me];
        let row = LadderRow {
            frame: p.frame,
            ts: p.ts,
            from,
            flags: seg.flags,
            seq: SeqNumber(seg.seq).diff(SeqNumber(base)) as u32,
            ack: (seg.has(flags::ACK)).then(|| match peer_base {
                Some(b) => SeqNumber(seg.ack).diff(SeqNumber(b)) as u32,
                None => seg.ack,
            }),
            len: seg.payload_len,
            summary: payload_summary(&seg),
        };
        if c.rows.len() >= t.max_rows.max(1) {
            c.rows.pop_front();
            c.omitted += 1;
        }
        c.rows.push_back(row);
    }
    let written = match writer {
        Some(w) => w.finish()?,
        None => Written::default(),
    };
    let ladders = targets
        .iter()
        .zip(state)
        .filter(|(t, _)| t.ladder)
        .map(|(t, c)| {
            (
                t.id,
                Ladder {
                    rows: c.rows.into(),
                    omitted: c.omitted,
                },
            )
        })
        .collect();
    Ok(Gathered {
        ladders,
        found: found.iter().filter(|f| **f).count(),
        written,
        errors: set.take_errors(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: u64, start: i64, end: i64) -> Target {
        Target {
            id,
            client: "10.0.0.1:1000".parse().unwrap(),
            server: "10.0.0.2:80".parse().unwrap(),
            start: Timestamp(start),
            end: Timestamp(end),
            ladder: false,
            max_rows: MAX_ROWS,
        }
    }

    /// The search the candidates replace: the first target in order whose span holds `ts`.
    fn linear(targets: &[Target], ts: Timestamp) -> Option<usize> {
        (0..targets.len()).find(|&i| targets[i].start <= ts && ts <= targets[i].end)
    }

    #[test]
    fn candidates_find_what_a_linear_search_finds() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..200 {
            // Mostly disjoint spans in release order (a 4-tuple reused), some overlapping,
            // some out of order, some single instants.
            let n = 1 + next(40) as usize;
            let mut t = 0i64;
            let mut targets = Vec::new();
            for id in 0..n {
                let start = match next(4) {
                    0 => t - next(50) as i64,
                    _ => t + next(30) as i64,
                };
                let end = start + next(if round % 2 == 0 { 20 } else { 200 }) as i64;
                t = end;
                targets.push(target(id as u64, start, end));
            }
            if next(3) == 0 {
                targets.reverse();
            }
            let c = Candidates::new((0..n).collect(), &targets);
            for ts in -60..t + 60 {
                let ts = Timestamp(ts);
                assert_eq!(c.find(ts), linear(&targets, ts), "round {round} at {ts:?}");
            }
        }
    }

    #[test]
    fn a_long_span_still_lets_the_short_ones_be_found() {
        // One connection spanning everything (its clock jumped), then many short ones.
        let mut targets = vec![target(0, 0, i64::MAX)];
        targets.extend((1..10_000).map(|i| target(i, i as i64 * 100, i as i64 * 100 + 10)));
        let c = Candidates::new((0..targets.len()).collect(), &targets);
        assert_eq!(c.find(Timestamp(500_005)), Some(0));
        let c = Candidates::new((1..targets.len()).collect(), &targets);
        assert_eq!(c.find(Timestamp(500_005)), Some(5_000));
        assert_eq!(c.find(Timestamp(500_050)), None);
    }

    #[test]
    fn candidates_of_a_reused_port_look_at_few_spans() {
        // 80 000 refused connections on one 4-tuple, each a SYN and a RST 1 µs apart.
        let targets: Vec<Target> = (0..80_000)
            .map(|i| target(i, i as i64 * 10_000, i as i64 * 10_000 + 1_000))
            .collect();
        let c = Candidates::new((0..targets.len()).collect(), &targets);
        for (i, t) in targets.iter().enumerate().step_by(997) {
            assert_eq!(c.find(t.start), Some(i));
            assert_eq!(c.find(t.end), Some(i));
            assert_eq!(c.find(Timestamp(t.end.0 + 1)), None);
        }
    }
}
