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
//! first pass made of it (see [`crate::source::spool`]). The targets come in order of their
//! first packet, from memory or from the sorted runs of a [`super::targets::TargetSpool`],
//! and the pass holds only those whose span the capture's clock is in (see [`gather`]): a
//! 4-tuple that carries many connections (port reuse: thousands of refused SYNs on the same
//! ports) has only the few of the moment to look through, and memory does not grow with
//! the number of targets.

use super::pcap_writer::{PcapWriter, Shape, Written};
use crate::app::http::looks_like_request;
use crate::decode::{self, flags, TcpSegment};
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use crate::pipeline::narrow::{Narrow, Window};
use crate::source::merge::{CaptureSet, Input};
use crate::source::{FrameRef, SourceError};
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
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
    /// data`), cut, as captured: each format escapes it; empty without payload.
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

/// What the payload starts with, for a ladder: captured text, cut but not escaped (each
/// format escapes it as it writes it; escaped twice, a captured backslash would show as
/// four).
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
        return cut(&line, 48);
    }
    if p.starts_with(b"HTTP/1.") {
        return cut(&first_line(), 40);
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

/// `s` cut to `max` characters, with `…` when it was longer.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
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

/// A target the second pass is inside the span of.
struct Active {
    target: Target,
    found: bool,
    ladder: Option<Collecting>,
}

/// Reads `inputs` again and returns the ladder of every target that wants one (by connection
/// id); with `extract`, also writes every packet of the targets there, in a file whose header
/// fits `shape` (what the first pass read). `targets` must come in order of (start, id) (a
/// [`super::targets::TargetSpool`] gives them so). `behind`: the most the first pass saw a
/// frame's time behind the latest before it ([`crate::pipeline::PacketCounts::max_behind`]).
/// `narrow`: the first pass's narrowing and its window (the same frames are left out).
///
/// The pass follows the capture's clock (the latest frame time so far): a target is taken in
/// when the clock reaches its start, and let go when the clock has passed its end by more
/// than `behind`, after which none of its packets can come. So only the targets whose span
/// the clock is in are held, however many there are, and a packet belongs to the held
/// target on its 4-tuple whose span holds its time (the lowest id if spans overlap).
pub fn gather(
    inputs: Vec<Input>,
    shape: &Shape,
    targets: impl IntoIterator<Item = std::io::Result<Target>>,
    behind: crate::time::Nanos,
    extract: Option<&Path>,
    narrow: Option<(&Narrow, Window)>,
) -> std::io::Result<Gathered> {
    let mut targets = targets.into_iter();
    let mut next = targets.next().transpose()?;
    let mut active: FxHashMap<u64, Active> = FxHashMap::default();
    let mut by_key: FxHashMap<(SocketAddr, SocketAddr), Vec<u64>> = FxHashMap::default();
    let mut ends: BinaryHeap<Reverse<(Timestamp, u64)>> = BinaryHeap::new();
    let mut ladders = FxHashMap::default();
    let mut found = 0usize;
    let retire = |a: Active, found: &mut usize, ladders: &mut FxHashMap<u64, Ladder>| {
        *found += a.found as usize;
        if let Some(c) = a.ladder {
            ladders.insert(
                a.target.id,
                Ladder {
                    rows: c.rows.into(),
                    omitted: c.omitted,
                },
            );
        }
    };
    let mut writer = match extract {
        Some(p) => Some(PcapWriter::create(p, shape)?),
        None => None,
    };
    let mut clock = Timestamp(i64::MIN);
    let mut set = CaptureSet::open_inputs(inputs);
    while let Some(p) = set.next_packet() {
        clock = clock.max(p.ts);
        while let Some(t) = next.take_if(|t| t.start <= clock) {
            by_key
                .entry(key(t.client, t.server))
                .or_default()
                .push(t.id);
            ends.push(Reverse((t.end, t.id)));
            let ladder = t.ladder.then(Collecting::default);
            active.insert(
                t.id,
                Active {
                    target: t,
                    found: false,
                    ladder,
                },
            );
            next = targets.next().transpose()?;
        }
        while let Some(&Reverse((end, id))) = ends.peek() {
            if end.0.saturating_add(behind.0) >= clock.0 {
                break;
            }
            ends.pop();
            if let Some(a) = active.remove(&id) {
                let k = key(a.target.client, a.target.server);
                if let Some(ids) = by_key.get_mut(&k) {
                    ids.retain(|&i| i != id);
                    if ids.is_empty() {
                        by_key.remove(&k);
                    }
                }
                retire(a, &mut found, &mut ladders);
            }
        }
        if narrow.is_some_and(|(n, w)| !n.keeps(w, &p)) {
            continue;
        }
        let Ok(seg) = decode::decode(p.linktype, p.data) else {
            continue;
        };
        let src = SocketAddr::new(seg.src, seg.sport);
        let dst = SocketAddr::new(seg.dst, seg.dport);
        let Some(ids) = by_key.get(&key(src, dst)) else {
            continue;
        };
        let Some(id) = ids
            .iter()
            .copied()
            .filter(|id| {
                let t = &active[id].target;
                t.start <= p.ts && p.ts <= t.end
            })
            .min()
        else {
            continue;
        };
        let a = active.get_mut(&id).expect("held");
        a.found = true;
        if let Some(w) = writer.as_mut() {
            w.write(&p)?;
        }
        let t = &a.target;
        let Some(c) = a.ladder.as_mut() else {
            continue;
        };
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
    for (_, a) in active {
        retire(a, &mut found, &mut ladders);
    }
    // Targets the clock never reached: not found; their ladders are empty.
    for t in next.into_iter().map(Ok).chain(targets) {
        let t = t?;
        if t.ladder {
            ladders.insert(t.id, Ladder::default());
        }
    }
    let written = match writer {
        Some(w) => w.finish()?,
        None => Written::default(),
    };
    Ok(Gathered {
        ladders,
        found,
        written,
        errors: set.take_errors(),
    })
}

#[cfg(test)]
mod tests {
    use super::payload_summary;
    use crate::decode::TcpSegment;

    fn segment(payload: &[u8]) -> TcpSegment<'_> {
        TcpSegment {
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            sport: 40000,
            dport: 80,
            seq: 1,
            ack: 1,
            flags: 0x18,
            window: 512,
            ttl: 64,
            payload,
            payload_len: payload.len() as u32,
            ident: 0,
        }
    }

    /// The summary is the captured text, cut: escaping is the formats' (escaped here too, a
    /// captured backslash would be doubled twice in a ladder).
    #[test]
    fn a_summary_is_captured_text_cut_not_escaped() {
        let s = payload_summary(&segment(b"GET /a\\b\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(s, "GET /a\\b\u{1b}[2J");
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "é".repeat(60));
        assert_eq!(
            payload_summary(&segment(long.as_bytes())),
            format!("GET /{}…", "é".repeat(43))
        );
    }
}
