//! The evidence behind findings: the packets of the connections that have them.
//!
//! Reports for tickets show a packet ladder per finding, and `--extract` writes those
//! connections' packets to a small capture. Neither is worth keeping per flow while the whole
//! capture streams by, so once the analysis is done, [`gather`] reads the inputs a second
//! time and picks out only the packets of the [`Target`] connections (their 4-tuple, between
//! their first and last packet): one [`LadderRow`] per packet (the last [`MAX_ROWS`] of
//! each connection), and every original frame to the extract writer.

use super::pcap_writer::PcapWriter;
use crate::app::http::looks_like_request;
use crate::decode::{self, flags, TcpSegment};
use crate::escape;
use crate::flows::seq::SeqNumber;
use crate::flows::Side;
use crate::source::merge::CaptureSet;
use crate::source::FrameRef;
use crate::time::Timestamp;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    format!("{} bytes", seg.payload_len)
}

/// Reads `paths` again and returns the ladder of every target (by connection id); with
/// `extract`, also writes every packet of the targets there. Errors reading the inputs were
/// reported by the first pass; here they only end the pass early.
/// `linktypes` are the inputs' link types (they decide the extract's format).
pub fn gather(
    paths: &[PathBuf],
    linktypes: &[u32],
    targets: &[Target],
    extract: Option<&Path>,
) -> std::io::Result<FxHashMap<u64, Ladder>> {
    let mut by_key: FxHashMap<(SocketAddr, SocketAddr), Vec<usize>> = FxHashMap::default();
    for (i, t) in targets.iter().enumerate() {
        by_key.entry(key(t.client, t.server)).or_default().push(i);
    }
    let mut state: Vec<Collecting> = targets.iter().map(|_| Collecting::default()).collect();
    let mut writer = match extract {
        Some(p) => Some(PcapWriter::create(p, linktypes)?),
        None => None,
    };
    let mut set = CaptureSet::open(paths);
    while let Some(p) = set.next_packet() {
        let Ok(seg) = decode::decode(p.linktype, p.data) else {
            continue;
        };
        let src = SocketAddr::new(seg.src, seg.sport);
        let dst = SocketAddr::new(seg.dst, seg.dport);
        let Some(candidates) = by_key.get(&key(src, dst)) else {
            continue;
        };
        let Some(&i) = candidates
            .iter()
            .find(|&&i| targets[i].start <= p.ts && p.ts <= targets[i].end)
        else {
            continue;
        };
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
        if c.rows.len() == MAX_ROWS {
            c.rows.pop_front();
            c.omitted += 1;
        }
        c.rows.push_back(row);
    }
    if let Some(w) = writer {
        w.finish()?;
    }
    Ok(targets
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
        .collect())
}
