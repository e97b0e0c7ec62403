//! Adversarial captures for issue 9 (one memory budget for the whole run): hand-built
//! traffic that no real stack sends at this scale or with these lies, written as classic pcap
//! (Ethernet, IPv4, TCP) straight to a file as it is produced, each with the ground truth the
//! analysis must still get right when it has to shed state. See fixtures/adversarial/NOTES.md.
//!
//! Every scenario takes its scale as parameters: [`Scenario::test_scale`] is what
//! tests/hostile.rs runs (each several times a 64 MiB budget in today's memory use),
//! [`Scenario::full_scale`] the figures of the issue (scripts/adversarial-full-scale.sh).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::Path;

/// The ten finding kinds, as `summary.findings` has them.
pub const FINDING_KINDS: [&str; 10] = [
    "abort",
    "closed_without_response",
    "connect_timeout",
    "idle_close",
    "idle_race",
    "lost_data",
    "refused",
    "reset_after_close",
    "reset_in_flight",
    "reset_mid_response",
];

/// 2026-03-02 09:00:00 UTC: the first packet of every scenario.
const BASE_US: u64 = 1_772_442_000 * 1_000_000;
/// A full-size segment's payload (Ethernet MTU, timestamps option: what Linux sends).
pub const MSS: usize = 1448;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// A classic little-endian microsecond pcap, written as packets come.
pub struct Writer {
    out: BufWriter<File>,
    /// Frames written (the number of the last one, as Wireshark counts).
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The time the next packet gets, in µs since the epoch.
    pub now: u64,
    /// What the clock moves on by after each packet.
    pub step: u64,
    ip_id: u16,
    buf: Vec<u8>,
}

impl Writer {
    pub fn create(path: &Path) -> Writer {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        out.write_all(&h).unwrap();
        Writer {
            out,
            frames: 0,
            bytes: 24,
            now: BASE_US,
            step: 20,
            ip_id: 1,
            buf: Vec::with_capacity(2048),
        }
    }

    /// Moves the clock on by `us`.
    pub fn wait(&mut self, us: u64) {
        self.now += us;
    }

    /// One TCP segment from `from` to `to`: `wire` payload bytes on the wire, of which the
    /// first `payload.len()` were captured (the rest cut by the snap length). Returns its
    /// frame number.
    #[allow(clippy::too_many_arguments)]
    pub fn segment(
        &mut self,
        from: Endpoint,
        to: Endpoint,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
        wire: usize,
    ) -> u64 {
        debug_assert!(payload.len() <= wire);
        let b = &mut self.buf;
        b.clear();
        // Ethernet: client MACs differ from the server's, IPv4.
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, to.mac()]);
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, from.mac()]);
        b.extend_from_slice(&[0x08, 0x00]);
        // IPv4, 20 bytes, DF, TTL 64, with its header checksum.
        let total = (20 + 20 + wire) as u16;
        let ip_start = b.len();
        b.extend_from_slice(&[0x45, 0]);
        b.extend_from_slice(&total.to_be_bytes());
        b.extend_from_slice(&self.ip_id.to_be_bytes());
        b.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]);
        b.extend_from_slice(&from.ip.octets());
        b.extend_from_slice(&to.ip.octets());
        let mut sum: u32 = b[ip_start..ip_start + 20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let csum = !(sum as u16);
        b[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);
        // TCP, 20 bytes, no options (checksum left 0: the analysis does not check it).
        b.extend_from_slice(&from.port.to_be_bytes());
        b.extend_from_slice(&to.port.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
        b.extend_from_slice(&[0x50, flags]);
        b.extend_from_slice(&64_240u16.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(payload);
        let orig = (14 + 20 + 20 + wire) as u32;
        let ts = self.now;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(b.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&rec).unwrap();
        self.out.write_all(b).unwrap();
        self.bytes += 16 + b.len() as u64;
        self.frames += 1;
        self.now += self.step;
        self.frames
    }

    pub fn finish(mut self) -> (u64, u64) {
        self.out.flush().unwrap();
        (self.frames, self.bytes)
    }
}

/// An IPv4 address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl Endpoint {
    /// The `i`th client: 10.x.y.z, 50,000 ports (20000–69999 wrapped to 20000–65535 and
    /// on to the next address) per address, so no two clients share a 4-tuple.
    pub fn client(i: u32) -> Endpoint {
        let per = 45_000;
        let host = 0x0a00_0002 + i / per;
        Endpoint {
            ip: Ipv4Addr::from(host),
            port: 20_000 + (i % per) as u16,
        }
    }

    /// The server everything is sent to.
    pub fn server() -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(192, 0, 2, 80),
            port: 80,
        }
    }

    fn mac(&self) -> u8 {
        if *self == Endpoint::server() {
            0xee
        } else {
            0x01
        }
    }
}

/// One TCP connection's state: both sides' next sequence numbers.
pub struct Conn {
    pub client: Endpoint,
    pub server: Endpoint,
    /// The client's next sequence number.
    pub c: u32,
    /// The server's next sequence number.
    pub s: u32,
}

impl Conn {
    pub fn new(i: u32) -> Conn {
        Conn::between(Endpoint::client(i), Endpoint::server(), i)
    }

    pub fn between(client: Endpoint, server: Endpoint, i: u32) -> Conn {
        Conn {
            client,
            server,
            c: 0x1000_0000u32.wrapping_add(i.wrapping_mul(7_919)),
            s: 0x8000_0000u32.wrapping_add(i.wrapping_mul(104_729)),
        }
    }

    /// The client's SYN.
    pub fn syn(&mut self, w: &mut Writer) -> u64 {
        let f = w.segment(self.client, self.server, self.c, 0, SYN, &[], 0);
        self.c = self.c.wrapping_add(1);
        f
    }

    /// SYN, SYN-ACK, ACK, 100 µs apart. Returns the SYN's frame.
    pub fn handshake(&mut self, w: &mut Writer) -> u64 {
        let f = self.syn(w);
        w.wait(100);
        w.segment(self.server, self.client, self.s, self.c, SYN | ACK, &[], 0);
        self.s = self.s.wrapping_add(1);
        w.wait(100);
        self.client_ack(w);
        f
    }

    /// The server's RST,ACK to a SYN (nothing listening).
    pub fn refuse(&mut self, w: &mut Writer) -> u64 {
        w.segment(self.server, self.client, 0, self.c, RST | ACK, &[], 0)
    }

    /// The client sends `data` (one segment, PSH) with all of it captured.
    pub fn client_data(&mut self, w: &mut Writer, data: &[u8]) -> u64 {
        let f = w.segment(
            self.client,
            self.server,
            self.c,
            self.s,
            PSH | ACK,
            data,
            data.len(),
        );
        self.c = self.c.wrapping_add(data.len() as u32);
        f
    }

    /// The client sends a segment of `wire` bytes of which only `captured` were captured.
    pub fn client_cut(&mut self, w: &mut Writer, captured: &[u8], wire: usize) -> u64 {
        let f = w.segment(
            self.client,
            self.server,
            self.c,
            self.s,
            ACK,
            captured,
            wire,
        );
        self.c = self.c.wrapping_add(wire as u32);
        f
    }

    /// The client's next `n` bytes go on the wire but are not captured (a hole).
    pub fn client_lost(&mut self, n: usize) {
        self.c = self.c.wrapping_add(n as u32);
    }

    pub fn client_ack(&mut self, w: &mut Writer) -> u64 {
        w.segment(self.client, self.server, self.c, self.s, ACK, &[], 0)
    }

    /// The server acknowledges the client's bytes up to `upto`.
    pub fn server_ack_to(&mut self, w: &mut Writer, upto: u32) -> u64 {
        w.segment(self.server, self.client, self.s, upto, ACK, &[], 0)
    }

    pub fn server_ack(&mut self, w: &mut Writer) -> u64 {
        let c = self.c;
        self.server_ack_to(w, c)
    }

    /// The server's FIN (repeated calls are retransmissions of the same FIN).
    pub fn server_fin(&mut self, w: &mut Writer, retransmission: bool) -> u64 {
        let seq = if retransmission {
            self.s.wrapping_sub(1)
        } else {
            self.s
        };
        let f = w.segment(self.server, self.client, seq, self.c, FIN | ACK, &[], 0);
        if !retransmission {
            self.s = self.s.wrapping_add(1);
        }
        f
    }

    /// The server's RST,ACK.
    pub fn server_rst(&mut self, w: &mut Writer) -> u64 {
        w.segment(self.server, self.client, self.s, self.c, RST | ACK, &[], 0)
    }
}

/// What the analysis of a scenario must find.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    /// Frames and bytes of the capture file.
    pub frames: u64,
    pub bytes: u64,
    /// `summary.connections.total`.
    pub connections: u64,
    /// `summary.findings`, exactly (kinds not named here: 0).
    pub findings: BTreeMap<&'static str, u64>,
    /// `summary.connections.http_requests`.
    pub http_requests: u64,
    /// `summary.connections.failed_requests`.
    pub failed_requests: u64,
    /// The one finding that must be listed (the evasion scenarios).
    pub evidence: Option<Evidence>,
}

/// A finding that must be listed: its kind (and variant), the frame of its request, and the
/// RST among its frames.
#[derive(Clone, Copy, Debug)]
pub struct Evidence {
    pub kind: &'static str,
    pub variant: Option<&'static str>,
    pub request_frame: u64,
    pub rst_frame: u64,
    /// What the request line starts with, as reports show it.
    pub request: &'static str,
}

impl Truth {
    /// Connections with a finding other than `idle_close` (the ones `--extract` writes).
    /// In every scenario here that is every connection, so an extract holds every frame.
    pub fn with_evidence(&self) -> u64 {
        self.findings
            .iter()
            .filter(|(k, _)| **k != "idle_close")
            .map(|(_, n)| n)
            .sum()
    }

    /// All findings, as `summary.findings` adds up.
    pub fn all_findings(&self) -> u64 {
        self.findings.values().sum()
    }

    /// The count `summary.findings` must have for `kind`.
    pub fn count(&self, kind: &str) -> u64 {
        self.findings.get(kind).copied().unwrap_or(0)
    }
}

/// The scenarios of issue 9, each with its scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// (#1, #2) `conns` connections, all open at once, each sending the first `head` bytes
    /// of a request head (no blank line yet) in full segments that the server acknowledges;
    /// 30 s later the server gives up on each with a RST.
    HalfHeads { conns: u32, head: usize },
    /// (#3) One POST whose body's first segment was never captured (a hole), followed by
    /// `segments` full-size segments of which the snap length kept only the headers (as
    /// `tcpdump -s 54` does; the out-of-order cap counts captured bytes, and there are none);
    /// then the server resets the connection.
    HoleThenCut { segments: u32 },
    /// (#4) `conns` connections at once, each pipelining `requests` GETs (packed into full
    /// segments) that the server acknowledges but never answers; then it resets each.
    Pipelined { conns: u32, requests: u32 },
    /// (#5) `conns` SYNs, each from its own port, each answered by RST, 100,000 a second.
    RefusedSyns { conns: u32 },
    /// (#6) `syns` SYNs on one 4-tuple (one client port, a new ISN each time), each
    /// answered by RST, 1 ms apart.
    PortReuse { syns: u32 },
    /// (#8) A GET, then the server's FIN sent `times` times (retransmissions), then its RST.
    RepeatedFin { times: u32 },
    /// (#8) An idle keep-alive connection the server closes (its FIN sent `times` times), a
    /// request written onto it after the FIN, and the server's RST: an idle race.
    RepeatedFinRace { times: u32 },
    /// (#8) A GET, then the server's RST sent `times` times, 1 ms apart.
    RepeatedRst { times: u32 },
    /// (#8) A GET retransmitted `times` times that the server never acknowledges, then its
    /// RST.
    RetransmittedRequest { times: u32 },
    /// (#8) A GET, then `probes` keep-alive probes from the client (pure ACKs one byte
    /// behind), each acknowledged by the server, then the server's RST.
    KeepAliveFlood { probes: u32 },
}

impl Scenario {
    /// The sizes tests/hostile.rs runs under `--memory 64M`: each several times 64 MiB in
    /// today's peak memory (fixtures/adversarial/NOTES.md has the figures), each small
    /// enough for the whole file to run in a few minutes on an unoptimised build.
    pub fn test_scale() -> Vec<Scenario> {
        vec![
            Scenario::HalfHeads {
                conns: 20_000,
                head: 4096,
            },
            Scenario::HalfHeads {
                conns: 3_000,
                head: 65_536,
            },
            Scenario::HoleThenCut {
                segments: 1_000_000,
            },
            Scenario::Pipelined {
                conns: 100,
                requests: 5_000,
            },
            Scenario::RefusedSyns { conns: 150_000 },
            Scenario::PortReuse { syns: 40_000 },
            Scenario::RepeatedFin { times: 1000 },
            Scenario::RepeatedFinRace { times: 1000 },
            Scenario::RepeatedRst { times: 1000 },
            Scenario::RetransmittedRequest { times: 1000 },
            Scenario::KeepAliveFlood { probes: 100_000 },
        ]
    }

    /// The sizes of the issue (the "before" figures), and for #1 and #2 also the largest
    /// that stay under 400 MB of capture.
    pub fn full_scale() -> Vec<Scenario> {
        vec![
            Scenario::HalfHeads {
                conns: 100_000,
                head: 4096,
            },
            Scenario::HalfHeads {
                conns: 80_000,
                head: 4096,
            },
            Scenario::HalfHeads {
                conns: 30_000,
                head: 65_536,
            },
            Scenario::HalfHeads {
                conns: 5_000,
                head: 65_536,
            },
            Scenario::HoleThenCut {
                segments: 3_000_000,
            },
            Scenario::Pipelined {
                conns: 500,
                requests: 10_000,
            },
            Scenario::Pipelined {
                conns: 1_000,
                requests: 10_000,
            },
            Scenario::RefusedSyns { conns: 2_000_000 },
            Scenario::PortReuse { syns: 80_000 },
            Scenario::RepeatedFin { times: 32 },
            Scenario::RepeatedFinRace { times: 32 },
            Scenario::RepeatedRst { times: 1000 },
            Scenario::RetransmittedRequest { times: 1000 },
            Scenario::KeepAliveFlood { probes: 100_000 },
        ]
    }

    /// The same scenarios, small enough that nothing needs shedding under any budget: what
    /// the analysis says of them when it has all its state (the ground truth, checked
    /// against today's binary by tests/hostile.rs).
    pub fn small_scale() -> Vec<Scenario> {
        vec![
            Scenario::HalfHeads {
                conns: 20,
                head: 4096,
            },
            Scenario::HalfHeads {
                conns: 3,
                head: 65_536,
            },
            Scenario::HoleThenCut { segments: 1000 },
            Scenario::Pipelined {
                conns: 3,
                requests: 100,
            },
            Scenario::RefusedSyns { conns: 300 },
            Scenario::PortReuse { syns: 80 },
            Scenario::RepeatedFin { times: 1 },
            Scenario::RepeatedFin { times: 31 },
            Scenario::RepeatedFinRace { times: 1 },
            Scenario::RepeatedFinRace { times: 31 },
            Scenario::RepeatedRst { times: 1 },
            Scenario::RetransmittedRequest { times: 1 },
            Scenario::KeepAliveFlood { probes: 1 },
        ]
    }

    /// A file name: the scenario and its scale.
    pub fn name(&self) -> String {
        match *self {
            Scenario::HalfHeads { conns, head } => format!("half-heads-{conns}x{head}"),
            Scenario::HoleThenCut { segments } => format!("hole-then-cut-{segments}"),
            Scenario::Pipelined { conns, requests } => format!("pipelined-{conns}x{requests}"),
            Scenario::RefusedSyns { conns } => format!("refused-syns-{conns}"),
            Scenario::PortReuse { syns } => format!("port-reuse-{syns}"),
            Scenario::RepeatedFin { times } => format!("repeated-fin-{times}"),
            Scenario::RepeatedFinRace { times } => format!("repeated-fin-race-{times}"),
            Scenario::RepeatedRst { times } => format!("repeated-rst-{times}"),
            Scenario::RetransmittedRequest { times } => format!("retransmitted-request-{times}"),
            Scenario::KeepAliveFlood { probes } => format!("keepalive-flood-{probes}"),
        }
    }

    /// The size of the capture, give or take a few bytes (before writing it).
    pub fn estimated_bytes(&self) -> u64 {
        // A record header and Ethernet, IPv4 and TCP headers: 70 bytes a packet.
        const P: u64 = 70;
        let segs = |n: usize| n.div_ceil(MSS) as u64;
        match *self {
            Scenario::HalfHeads { conns, head } => {
                u64::from(conns) * (4 * P + segs(head) * 2 * P + head as u64)
            }
            Scenario::HoleThenCut { segments } => {
                u64::from(segments) * P + u64::from(segments / 1000) * P + 6 * P + 76
            }
            Scenario::Pipelined { conns, requests } => {
                let stream = u64::from(requests) * 44;
                u64::from(conns) * (4 * P + stream + stream.div_ceil(MSS as u64) * 2 * P)
            }
            Scenario::RefusedSyns { conns } => u64::from(conns) * 2 * P,
            Scenario::PortReuse { syns } => u64::from(syns) * 2 * P,
            Scenario::RepeatedFin { times }
            | Scenario::RepeatedFinRace { times }
            | Scenario::RepeatedRst { times } => u64::from(times) * P + 10 * P,
            Scenario::RetransmittedRequest { times } => u64::from(times) * (P + 47) + 10 * P,
            Scenario::KeepAliveFlood { probes } => u64::from(probes) * 2 * P + 10 * P,
        }
    }

    /// Writes the capture to `path`; returns what its analysis must find.
    pub fn write(&self, path: &Path) -> Truth {
        let mut w = Writer::create(path);
        let mut t = match *self {
            Scenario::HalfHeads { conns, head } => half_heads(&mut w, conns, head),
            Scenario::HoleThenCut { segments } => hole_then_cut(&mut w, segments),
            Scenario::Pipelined { conns, requests } => pipelined(&mut w, conns, requests),
            Scenario::RefusedSyns { conns } => refused(&mut w, conns),
            Scenario::PortReuse { syns } => port_reuse(&mut w, syns),
            Scenario::RepeatedFin { times } => evasion(&mut w, Repeat::Fin, times),
            Scenario::RepeatedFinRace { times } => evasion(&mut w, Repeat::FinRace, times),
            Scenario::RepeatedRst { times } => evasion(&mut w, Repeat::Rst, times),
            Scenario::RetransmittedRequest { times } => evasion(&mut w, Repeat::Request, times),
            Scenario::KeepAliveFlood { probes } => evasion(&mut w, Repeat::Probe, probes),
        };
        (t.frames, t.bytes) = w.finish();
        t
    }
}

fn findings(kinds: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    kinds.iter().copied().filter(|(_, n)| *n > 0).collect()
}

/// The first `len` bytes of a request head that never ends (no blank line).
fn half_head(i: u32, len: usize) -> Vec<u8> {
    let mut h = format!(
        "GET /slow/{i} HTTP/1.1\r\nHost: victim.example\r\nUser-Agent: slowloris\r\nCookie: "
    )
    .into_bytes();
    h.resize(len, b'a');
    h
}

fn half_heads(w: &mut Writer, conns: u32, head: usize) -> Truth {
    let mut cs: Vec<Conn> = (0..conns).map(Conn::new).collect();
    w.step = 10;
    for c in &mut cs {
        c.handshake(w);
    }
    // One segment of every connection's head in turn, so that all of them are open, and
    // their heads half read, at once.
    let padding = half_head(0, head);
    for k in (0..head).step_by(MSS) {
        for (i, c) in cs.iter_mut().enumerate() {
            let mut seg = padding[k..(k + MSS).min(head)].to_vec();
            if k == 0 {
                let own = half_head(i as u32, seg.len());
                seg.copy_from_slice(&own);
            }
            c.client_data(w, &seg);
            c.server_ack(w);
        }
    }
    // The server's header timeout.
    w.wait(30_000_000);
    for c in &mut cs {
        c.server_rst(w);
    }
    // No request head was completed, so there is no request: the RST is an abort, and the
    // connections are HTTP not followed (app_note), as today's analysis says of them.
    Truth {
        connections: conns.into(),
        findings: findings(&[("abort", conns.into())]),
        ..Truth::default()
    }
}

fn hole_then_cut(w: &mut Writer, segments: u32) -> Truth {
    let mut c = Conn::new(0);
    c.handshake(w);
    w.wait(200);
    let request = c.client_data(
        w,
        b"POST /upload HTTP/1.1\r\nHost: victim.example\r\nContent-Length: 4000000000\r\n\r\n",
    );
    c.server_ack(w);
    let acked = c.c;
    c.client_lost(MSS);
    w.step = 5;
    for k in 0..segments {
        c.client_cut(w, b"", MSS);
        if k % 1000 == 999 {
            // The server keeps asking for the hole (duplicate ACKs).
            c.server_ack_to(w, acked);
        }
    }
    w.step = 20;
    w.wait(1_000_000);
    let rst = c.server_rst(w);
    Truth {
        connections: 1,
        findings: findings(&[("reset_in_flight", 1)]),
        http_requests: 1,
        failed_requests: 1,
        evidence: Some(Evidence {
            kind: "reset_in_flight",
            variant: None,
            request_frame: request,
            rst_frame: rst,
            request: "POST /upload",
        }),
        ..Truth::default()
    }
}

fn pipelined(w: &mut Writer, conns: u32, requests: u32) -> Truth {
    let mut cs: Vec<Conn> = (0..conns).map(Conn::new).collect();
    for c in &mut cs {
        c.handshake(w);
    }
    // Every connection's requests, packed into full segments (a request may straddle two),
    // one segment of each connection in turn.
    let mut stream = Vec::new();
    for j in 0..requests {
        stream.extend_from_slice(
            format!("GET /p/{j:05} HTTP/1.1\r\nHost: v.example\r\n\r\n").as_bytes(),
        );
    }
    w.step = 5;
    for k in (0..stream.len()).step_by(MSS) {
        let seg = &stream[k..(k + MSS).min(stream.len())];
        for c in &mut cs {
            c.client_data(w, seg);
            c.server_ack(w);
        }
    }
    w.step = 20;
    w.wait(5_000_000);
    for c in &mut cs {
        c.server_rst(w);
    }
    let n = u64::from(conns) * u64::from(requests);
    Truth {
        connections: conns.into(),
        findings: findings(&[("reset_in_flight", conns.into())]),
        http_requests: n,
        failed_requests: n,
        ..Truth::default()
    }
}

fn refused(w: &mut Writer, conns: u32) -> Truth {
    // 100,000 SYNs a second (a port scan): a second's worth linger in the flow table.
    w.step = 5;
    for i in 0..conns {
        let mut c = Conn::new(i);
        c.syn(w);
        c.refuse(w);
    }
    Truth {
        connections: conns.into(),
        findings: findings(&[("refused", conns.into())]),
        ..Truth::default()
    }
}

fn port_reuse(w: &mut Writer, syns: u32) -> Truth {
    w.step = 30;
    for i in 0..syns {
        let mut c = Conn::between(Endpoint::client(0), Endpoint::server(), i);
        c.syn(w);
        c.refuse(w);
        w.wait(1_000);
    }
    Truth {
        connections: syns.into(),
        findings: findings(&[("refused", syns.into())]),
        ..Truth::default()
    }
}

#[derive(Clone, Copy)]
enum Repeat {
    Fin,
    FinRace,
    Rst,
    Request,
    Probe,
}

fn evasion(w: &mut Writer, what: Repeat, times: u32) -> Truth {
    let mut c = Conn::new(7);
    c.handshake(w);
    w.wait(500);
    let get = b"GET /account HTTP/1.1\r\nHost: victim.example\r\n\r\n";
    let (request, rst, kind, variant);
    match what {
        Repeat::Fin => {
            request = c.client_data(w, get);
            c.server_ack(w);
            w.wait(10_000);
            c.server_fin(w, false);
            for _ in 1..times {
                w.wait(200_000);
                c.server_fin(w, true);
            }
            w.wait(200_000);
            rst = c.server_rst(w);
            (kind, variant) = ("reset_in_flight", None);
        }
        Repeat::FinRace => {
            // An answered exchange, 5 s idle, the server's idle close (its FIN, sent again
            // and again because the client does not acknowledge it), the client's next
            // request written after the FIN, and the server's RST answering it.
            c.client_data(w, get);
            c.server_ack(w);
            w.wait(2_000);
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            w.segment(c.server, c.client, c.s, c.c, PSH | ACK, ok, ok.len());
            c.s = c.s.wrapping_add(ok.len() as u32);
            c.client_ack(w);
            w.wait(5_000_000);
            c.server_fin(w, false);
            for _ in 1..times {
                w.wait(200);
                c.server_fin(w, true);
            }
            w.wait(300);
            request = c.client_data(w, get);
            w.wait(100);
            rst = c.server_rst(w);
            (kind, variant) = ("idle_race", Some("fin_then_rst"));
        }
        Repeat::Rst => {
            request = c.client_data(w, get);
            c.server_ack(w);
            w.wait(10_000);
            rst = c.server_rst(w);
            for _ in 1..times {
                w.wait(1_000);
                c.server_rst(w);
            }
            (kind, variant) = ("reset_in_flight", None);
        }
        Repeat::Request => {
            request = c.client_data(w, get);
            for _ in 1..times {
                w.wait(200_000);
                c.c = c.c.wrapping_sub(get.len() as u32);
                c.client_data(w, get);
            }
            w.wait(200_000);
            // The server never acknowledged the request: its RST does not either.
            c.c = c.c.wrapping_sub(get.len() as u32);
            rst = c.server_rst(w);
            (kind, variant) = ("reset_in_flight", None);
        }
        Repeat::Probe => {
            request = c.client_data(w, get);
            c.server_ack(w);
            for _ in 0..times {
                w.wait(1_000);
                let seq = c.c.wrapping_sub(1);
                w.segment(c.client, c.server, seq, c.s, ACK, &[], 0);
                c.server_ack(w);
            }
            w.wait(10_000);
            rst = c.server_rst(w);
            (kind, variant) = ("reset_in_flight", None);
        }
    }
    Truth {
        connections: 1,
        findings: findings(&[(kind, 1)]),
        // The race's connection had an answered request before.
        http_requests: if matches!(what, Repeat::FinRace) {
            2
        } else {
            1
        },
        failed_requests: 1,
        evidence: Some(Evidence {
            kind,
            variant,
            request_frame: request,
            rst_frame: rst,
            request: "GET /account",
        }),
        ..Truth::default()
    }
}
