//! The capture filter against tcpdump: for a table of expressions that covers every primitive
//! and combinator, on captures of every supported link type, the frames
//! `resetscope::filter::Filter` keeps are exactly those `tcpdump -r F -w - EXPR` writes.
//!
//! The captures: real ones from fixtures/ and tests/corpus/ (Ethernet, VLAN and QinQ, Linux
//! SLL and SLL2, raw IPv6, pcapng, a snaplen-cut capture, tunnels), and
//! tests/filter/mix.pcap (made by tests/filter/make.py: one frame of each kind the filter has
//! to tell apart: ARP, RARP, ICMP, IGMP, SCTP, IPv4 fragments and options, IPv6 extension
//! headers, IP-in-IP, 802.1Q, LLC, frames cut inside their headers), rewritten here into
//! every other link type (NULL, LOOP, raw IP 12 and 101, IPv4 228, IPv6 229, SLL, SLL2).
//!
//! tcpdump is required: without it the test fails in CI (which installs it) and is skipped
//! elsewhere with a message.

use resetscope::filter::Filter;
use resetscope::source::file::CaptureFile;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One frame as read: link type, captured bytes, length on the wire.
struct Frame {
    linktype: u32,
    data: Vec<u8>,
    orig_len: u32,
}

fn read(path: &Path) -> Vec<Frame> {
    let mut file = CaptureFile::open(path, 0).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(p) = file.next_packet() {
        out.push(Frame {
            linktype: p.linktype,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
        });
    }
    if let Some(e) = file.take_error() {
        panic!("{}: {e}", path.display());
    }
    out
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Whether tcpdump runs here; fails in CI when it does not.
fn tcpdump() -> bool {
    let here = Command::new("tcpdump").arg("--version").output().is_ok();
    if !here {
        assert!(std::env::var_os("CI").is_none(), "CI must have tcpdump");
        eprintln!("filter: skipped: tcpdump is not installed (apt-get install tcpdump)");
    }
    here
}

fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("resetscope-filter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{name}", N.fetch_add(1, Ordering::Relaxed)))
}

/// The 1-based numbers of the frames tcpdump keeps, or its message when it rejects the
/// expression.
fn tcpdump_keeps(path: &Path, frames: &[Frame], expr: &str) -> Result<BTreeSet<usize>, String> {
    let out = scratch("out.pcap");
    let o = Command::new("tcpdump")
        .arg("-r")
        .arg(path)
        .arg("-w")
        .arg(&out)
        .arg(expr)
        .output()
        .expect("tcpdump runs");
    if !o.status.success() {
        let _ = std::fs::remove_file(&out);
        let message = String::from_utf8_lossy(&o.stderr).into_owned();
        // libpcap's optimiser refuses a program that can only return false (`ip and ip6`,
        // `arp` on raw IP): it keeps nothing.
        if message.contains("expression rejects all packets") {
            return Ok(BTreeSet::new());
        }
        return Err(message);
    }
    let written = read(&out);
    std::fs::remove_file(&out).unwrap();
    // What tcpdump wrote is a subsequence of the input: find each in turn.
    let mut kept = BTreeSet::new();
    let mut next = 0;
    for w in &written {
        let at = frames[next..]
            .iter()
            .position(|f| f.data == w.data && f.orig_len == w.orig_len)
            .unwrap_or_else(|| panic!("{}: a frame tcpdump wrote is not in the input", expr));
        next += at + 1;
        kept.insert(next);
    }
    Ok(kept)
}

fn ours(frames: &[Frame], f: &Filter) -> BTreeSet<usize> {
    (1..=frames.len())
        .filter(|&n| f.matches(frames[n - 1].linktype, &frames[n - 1].data))
        .collect()
}

/// The expressions, with `{a}`/`{b}` an IPv4 source/destination of the capture, `{a6}`/`{b6}`
/// IPv6 ones, `{p}` a TCP or UDP port of it, `{a8}`/`{a16}`/`{a24}` the first one, two or
/// three parts of `{a}`, and `{n6}` the /48 of `{a6}`.
const TABLE: &[&str] = &[
    "",
    // protocols
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "sctp",
    "icmp",
    "icmp6",
    "igmp",
    "proto 17",
    "ip proto 4",
    "ip proto 41",
    "ip6 proto 58",
    // IPv4 hosts and nets
    "host {a}",
    "src host {a}",
    "dst host {a}",
    "src or dst host {a}",
    "src and dst host {a}",
    "ip host {a}",
    "arp host {a}",
    "src {a}",
    "dst {b}",
    "host {a} or {b}",
    "host {a} and {b}",
    "host {a24}",
    "net {a16}",
    "net {a16}.0.0/16",
    "net {a8}.0.0.0 mask 255.0.0.0",
    "net {a8}",
    "src net {a16}",
    "net 0.0.0.0/0",
    "dst net 192.168.0.0/16",
    "net 172.16.0.0/12",
    "net 10.0.0.0/8",
    // IPv6 hosts and nets
    "host {a6}",
    "src host {a6}",
    "dst host {b6}",
    "ip6 host {a6}",
    "host {a6} or {b6}",
    "ip6 net {n6}/48",
    "net fe80::/10",
    "ip6 net ::/0",
    "src or dst net 2001:db8::/32",
    "src and dst host ::1",
    // ports
    "port {p}",
    "src port {p}",
    "dst port {p}",
    "port 80",
    "port 443",
    "port 53",
    "port 0",
    "port 0x50",
    "tcp port 80",
    "udp port 53",
    "sctp port 80",
    "tcp src port 80",
    "udp dst port 53",
    "src or dst port 80",
    "src and dst port 1234",
    "port 80 or 443",
    "port 80 or 443 or 8080",
    "port http",
    "port https",
    "port domain",
    "tcp port https",
    "portrange 1-1023",
    "portrange 1024-65535",
    "tcp portrange 8000-8100",
    "udp portrange 50-60",
    "src portrange 80-90",
    "dst portrange 1024-2048",
    "portrange 90-80",
    "portrange http-https",
    "portrange 80",
    // combinations
    "tcp and port 80",
    "tcp or udp",
    "tcp or udp and port 53",
    "(tcp or udp) and port 53",
    "tcp or (udp and port 53)",
    "not tcp",
    "! ip",
    "not (tcp or udp)",
    "not port 80",
    "ip and not tcp",
    "ip6 && !tcp",
    "tcp || icmp",
    "icmp or icmp6 or arp",
    "ip and ip6",
    "not ip and not ip6",
    "host {a} and not port 22",
    "host {a} or port 80",
    "port 80 or host {a}",
    "not host {a} and not arp",
    "tcp and (port 80 or 443) and host {a}",
    "tcp port {p} and src {a}",
    "host {a} and (port 80) or 443",
    "host not {a}",
    "host {a} or not {b}",
    "host {a} and ({b} or 10.1.2.3)",
    "src host {a} and not ({b} or 10.1.2.3)",
    "udp port 53 or 5353",
    "src port 53 or 5353",
    "port 53 or 5353 or host {a}",
    "host {a} or port 53 or 5353",
    "tcp port 80 or udp port 53",
    "port 80 or portrange 5000-6000",
];

/// Addresses and a port to put in the table, from the capture's first IPv4 and IPv6 packets
/// and its first TCP or UDP one (the documentation addresses where it has none).
struct Subst {
    a: [u8; 4],
    b: [u8; 4],
    a6: std::net::Ipv6Addr,
    b6: std::net::Ipv6Addr,
    p: u16,
}

/// Where the network layer starts and what EtherType it has, for picking addresses only.
fn network(linktype: u32, d: &[u8]) -> Option<(u16, &[u8])> {
    let et = |at: usize| d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    match linktype {
        1 => Some((et(12)?, d.get(14..)?)),
        113 => Some((et(14)?, d.get(16..)?)),
        276 => Some((et(0)?, d.get(20..)?)),
        101 | 12 => match d.first()? >> 4 {
            4 => Some((0x0800, d)),
            6 => Some((0x86dd, d)),
            _ => None,
        },
        _ => None,
    }
}

fn subst(frames: &[Frame]) -> Subst {
    let mut s = Subst {
        a: [10, 0, 0, 5],
        b: [10, 0, 0, 6],
        a6: "2001:db8::5".parse().unwrap(),
        b6: "2001:db8:1::6".parse().unwrap(),
        p: 80,
    };
    let (mut v4, mut v6, mut port) = (false, false, false);
    for f in frames {
        let Some((et, ip)) = network(f.linktype, &f.data) else {
            continue;
        };
        if et == 0x0800 && ip.len() >= 24 {
            if !v4 {
                s.a.copy_from_slice(&ip[12..16]);
                s.b.copy_from_slice(&ip[16..20]);
                v4 = true;
            }
            let hl = 4 * (ip[0] & 15) as usize;
            if !port && matches!(ip[9], 6 | 17) && ip.len() >= hl + 4 {
                s.p = u16::from_be_bytes([ip[hl + 2], ip[hl + 3]]);
                port = true;
            }
        }
        if et == 0x86dd && ip.len() >= 40 && !v6 {
            s.a6 = <[u8; 16]>::try_from(&ip[8..24]).unwrap().into();
            s.b6 = <[u8; 16]>::try_from(&ip[24..40]).unwrap().into();
            v6 = true;
        }
    }
    s
}

fn fill(expr: &str, s: &Subst) -> String {
    let [a0, a1, a2, a3] = s.a;
    let [b0, b1, b2, b3] = s.b;
    let seg = s.a6.segments();
    expr.replace("{a}", &format!("{a0}.{a1}.{a2}.{a3}"))
        .replace("{b}", &format!("{b0}.{b1}.{b2}.{b3}"))
        .replace("{a24}", &format!("{a0}.{a1}.{a2}"))
        .replace("{a16}", &format!("{a0}.{a1}"))
        .replace("{a8}", &format!("{a0}"))
        .replace("{a6}", &s.a6.to_string())
        .replace("{b6}", &s.b6.to_string())
        .replace("{n6}", &format!("{:x}:{:x}:{:x}::", seg[0], seg[1], seg[2]))
        .replace("{p}", &s.p.to_string())
}

/// Every expression of the table on one capture: the frames kept are tcpdump's, and an
/// expression tcpdump rejects is rejected. Returns how many frames matched at all, and the
/// mismatches.
fn check(path: &Path, frames: &[Frame]) -> (usize, Vec<String>) {
    let s = subst(frames);
    let mut bad = Vec::new();
    let mut kept = 0;
    for raw in TABLE {
        let expr = fill(raw, &s);
        let theirs = tcpdump_keeps(path, frames, &expr);
        match (Filter::parse(&expr), theirs) {
            (Ok(f), Ok(theirs)) => {
                let mine = ours(frames, &f);
                kept += mine.len();
                if mine != theirs {
                    let extra: Vec<_> = mine.difference(&theirs).collect();
                    let missing: Vec<_> = theirs.difference(&mine).collect();
                    bad.push(format!(
                        "{}: {expr:?}: we keep {extra:?} tcpdump does not; tcpdump keeps \
                         {missing:?} we do not",
                        path.display()
                    ));
                }
            }
            (Err(e), Ok(_)) => bad.push(format!("{expr:?}: we reject it ({e}), tcpdump not")),
            (Ok(_), Err(e)) => bad.push(format!("{expr:?}: tcpdump rejects it ({e}), we not")),
            (Err(_), Err(_)) => {}
        }
    }
    (kept, bad)
}

/// Writes a classic pcap (microseconds) of this link type, in either byte order.
fn write_pcap(path: &Path, linktype: u32, big_endian: bool, frames: &[Frame]) {
    let mut out = Vec::new();
    let u32b = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    out.extend_from_slice(&u32b(0xa1b2_c3d4));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(65535));
    out.extend_from_slice(&u32b(linktype));
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&u32b(1_700_000_000 + i as u32));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u32b(f.data.len() as u32));
        out.extend_from_slice(&u32b(f.orig_len));
        out.extend_from_slice(&f.data);
    }
    std::fs::File::create(path)
        .unwrap()
        .write_all(&out)
        .unwrap();
}

/// The Ethernet frames of mix.pcap rewritten to another link type: its header, then the
/// Ethernet payload (cut where the original was cut). Frames the link type cannot carry
/// are left out. `big_endian`: the byte order of the file, which is NULL's.
fn rewrite(frames: &[Frame], linktype: u32, big_endian: bool) -> Vec<Frame> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if f.data.len() < 14 {
            continue;
        }
        let et = u16::from_be_bytes([f.data[12], f.data[13]]);
        let payload = &f.data[14..];
        let head: Vec<u8> = match linktype {
            // NULL in the file's byte order, LOOP in network order; IPv6 under each BSD
            // value and Linux's 10, which libpcap does not take for IPv6.
            0 | 108 => {
                let family: u32 = match et {
                    0x0800 => 2,
                    0x86dd => [24, 28, 30, 10][i % 4],
                    _ => continue,
                };
                if linktype == 0 && !big_endian {
                    family.to_le_bytes().to_vec()
                } else {
                    family.to_be_bytes().to_vec()
                }
            }
            12 | 101 => Vec::new(),
            228 | 229 if matches!(et, 0x0800 | 0x86dd) => Vec::new(),
            228 | 229 => continue,
            113 => {
                let mut h = vec![0, 0, 0, 1, 0, 6];
                h.extend_from_slice(&f.data[6..12]);
                h.extend_from_slice(&[0, 0]);
                h.extend_from_slice(&et.to_be_bytes());
                h
            }
            276 => {
                let mut h = et.to_be_bytes().to_vec();
                h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
                h.extend_from_slice(&f.data[6..12]);
                h.extend_from_slice(&[0, 0]);
                h
            }
            _ => unreachable!(),
        };
        let mut data = head.clone();
        data.extend_from_slice(payload);
        out.push(Frame {
            linktype,
            data,
            orig_len: f.orig_len - 14 + head.len() as u32,
        });
    }
    out
}

/// Real captures: one of each link type and of the oddities the filter must get right.
const CAPTURES: &[&str] = &[
    "fixtures/refused/capture.pcap",
    "fixtures/ipv6/capture.pcap",
    "fixtures/sll-any/capture.pcap",
    "fixtures/sll2-any/capture.pcap",
    "fixtures/pcapng-nano/capture.pcapng",
    "fixtures/damaged/snaplen.pcap",
    "fixtures/oddities/mpls/capture.pcap",
    "fixtures/oddities/pppoe/capture.pcap",
    "tests/corpus/public/pcpp-sll2.pcap",
    "tests/corpus/public/pcpp-four_ipv6_http_streams.pcap",
    "tests/corpus/public/zeek-vlan-qinqinq.pcap",
    "tests/corpus/public/zeek-http-qinq-0.pcap",
    "tests/corpus/public/cs-http_ip4and6.pcapng",
    "tests/corpus/public/zeek-nmap-vsn.pcap",
    "tests/corpus/public/zeek-erspan.pcap",
    "tests/corpus/public/tcpdump-bgp-bgpsec.pcap",
    "tests/corpus/public/pcpp-example.pcap",
    "tests/corpus/zeek/Traces/tunnels/Teredo.pcap",
    "tests/corpus/zeek/extra/Traces/var-services-std-ports.pcap",
];

fn report(results: Vec<(String, usize, usize, Vec<String>)>) {
    let mut bad = Vec::new();
    for (name, frames, kept, b) in results {
        eprintln!(
            "{name}: {frames} frames, {} expressions, {kept} frames kept in all, {} mismatches",
            TABLE.len(),
            b.len()
        );
        bad.extend(b);
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn real_captures_keep_what_tcpdump_keeps() {
    if !tcpdump() {
        return;
    }
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|half| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for rel in CAPTURES.iter().skip(half).step_by(2) {
                        let path = repo(rel);
                        let frames = read(&path);
                        let (kept, bad) = check(&path, &frames);
                        out.push((rel.to_string(), frames.len(), kept, bad));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    report(results);
}

#[test]
fn every_link_type_keeps_what_tcpdump_keeps() {
    if !tcpdump() {
        return;
    }
    let mix = repo("tests/filter/mix.pcap");
    let frames = read(&mix);
    let mut results = Vec::new();
    let (kept, bad) = check(&mix, &frames);
    results.push(("mix.pcap (Ethernet)".to_string(), frames.len(), kept, bad));
    for (linktype, big_endian) in [
        (0, false),
        (0, true),
        (108, false),
        (12, false),
        (101, false),
        (228, false),
        (229, false),
        (113, false),
        (276, true),
    ] {
        let derived = rewrite(&frames, linktype, big_endian);
        let path = scratch(&format!("mix-{linktype}.pcap"));
        write_pcap(&path, linktype, big_endian, &derived);
        let (kept, bad) = check(&path, &derived);
        let order = if big_endian { ", big-endian file" } else { "" };
        results.push((
            format!("mix.pcap as link type {linktype}{order}"),
            derived.len(),
            kept,
            bad,
        ));
        std::fs::remove_file(&path).unwrap();
    }
    report(results);
}

/// The libpcap behaviours the module documents, frame by frame of mix.pcap (these run
/// without tcpdump; the tests above check the same frames against it).
#[test]
fn libpcap_behaviours_on_mix() {
    let frames = read(&repo("tests/filter/mix.pcap"));
    let keeps = |expr: &str, n: usize| {
        let f = Filter::parse(expr).unwrap();
        f.matches(frames[n - 1].linktype, &frames[n - 1].data)
    };
    // 802.1Q: the EtherType at offset 12 is 0x8100, so neither ip nor ip6 nor tcp.
    for e in ["ip", "tcp", "host 10.0.0.5", "port 8080"] {
        assert!(!keeps(e, 30), "{e} keeps a VLAN-tagged IPv4 frame");
    }
    assert!(!keeps("ip6", 31));
    // IPv4 fragments: only the first has ports; the others are still tcp.
    assert!(keeps("port 80", 12));
    assert!(!keeps("port 80", 13) && keeps("tcp", 13));
    // IPv6: tcp is the next header, or the one after a fragment header, nothing further;
    // port only with the transport as next header.
    assert!(!keeps("tcp", 25) && !keeps("port 80", 25) && keeps("ip6 proto 0", 25));
    assert!(keeps("tcp", 26) && !keeps("port 80", 26));
    assert!(keeps("udp", 27));
    // IP-in-IP is not looked into.
    assert!(!keeps("tcp", 28) && keeps("ip proto 4", 28) && !keeps("host 192.168.1.10", 28));
    assert!(!keeps("ip6", 29) && keeps("ip proto 41", 29));
    // host without ip is also the addresses of ARP and RARP.
    assert!(keeps("host 10.0.0.6", 9) && keeps("host 10.0.0.6", 10));
    assert!(!keeps("ip host 10.0.0.6", 9) && keeps("arp host 10.0.0.6", 9));
    assert!(keeps("host 10.0.0.7", 11) && keeps("rarp", 11) && !keeps("arp", 11));
    // port is tcp, udp or sctp.
    assert!(keeps("port 80", 16) && keeps("sctp port 80", 16) && !keeps("tcp port 80", 16));
    // A read past the captured bytes rejects the frame, whatever else the expression says,
    // in the order libpcap reads.
    assert!(keeps("host 10.0.0.5", 36) && !keeps("port 80", 36) && !keeps("not port 80", 36));
    assert!(keeps("host 10.0.0.5 or port 80", 36) && !keeps("port 80 or host 10.0.0.5", 36));
    assert!(keeps("ip", 34) && keeps("net 0.0.0.0/0", 34) && !keeps("host 10.0.0.5", 34));
    assert!(!keeps("not host 10.0.0.5", 34));
    assert!(!keeps("udp port 53", 38) && keeps("udp port 53 or 5353", 38));

    // NULL: IPv6 is the BSD families, not Linux's 10; either byte order.
    let v6 = &frames[19].data[14..];
    let null = |family: [u8; 4]| [&family[..], v6].concat();
    let ip6 = Filter::parse("ip6").unwrap();
    assert!(ip6.matches(0, &null([30, 0, 0, 0])) && ip6.matches(0, &null([0, 0, 0, 24])));
    assert!(!ip6.matches(0, &null([10, 0, 0, 0])));
    assert!(ip6.matches(108, &null([0, 0, 0, 28])) && !ip6.matches(108, &null([28, 0, 0, 0])));
    // Raw IPv4 (228) takes its word for it: an IPv6 header there is still ip.
    assert!(Filter::parse("ip").unwrap().matches(228, v6));
    assert!(!ip6.matches(228, v6) && ip6.matches(229, v6) && ip6.matches(101, v6));
    // A link type the filter does not know keeps nothing.
    assert!(!Filter::parse("").unwrap().matches(105, v6));
    assert!(Filter::supports_linktype(276) && !Filter::supports_linktype(105));
}

/// A small deterministic generator (xorshift), for random expressions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A random expression from the grammar: primitives with random qualifiers and values
/// (some of them invalid, which both must reject), bare values after and/or, not, !,
/// parentheses, mixed and/or without parentheses.
fn random_expr(r: &mut Rng, depth: u32) -> String {
    let mut s = random_term(r, depth);
    for _ in 0..(r.next() % 3) {
        s.push(' ');
        s.push_str(r.pick(&["and", "or", "&&", "||"]));
        s.push(' ');
        if r.chance(30) {
            if r.chance(20) {
                s.push_str("not ");
            }
            s.push_str(random_value(r));
        } else {
            s.push_str(&random_term(r, depth));
        }
    }
    s
}

fn random_term(r: &mut Rng, depth: u32) -> String {
    if depth > 0 && r.chance(20) {
        return format!("({})", random_expr(r, depth - 1));
    }
    if depth > 0 && r.chance(15) {
        return format!("{} {}", r.pick(&["not", "!"]), random_term(r, depth - 1));
    }
    if r.chance(25) {
        return r
            .pick(&[
                "ip",
                "ip6",
                "arp",
                "tcp",
                "udp",
                "icmp",
                "icmp6",
                "sctp",
                "rarp",
                "igmp",
                "pim",
                "vrrp",
                "ah",
                "esp",
                "proto 17",
                "ip proto 1",
                "ip6 proto 58",
                "ip proto 4",
            ])
            .to_string();
    }
    let mut s = String::new();
    if r.chance(40) {
        s.push_str(r.pick(&["ip", "ip6", "tcp", "udp", "arp", "sctp", "icmp", "rarp"]));
        s.push(' ');
    }
    if r.chance(40) {
        s.push_str(r.pick(&["src", "dst", "src or dst", "src and dst"]));
        s.push(' ');
    }
    let aqual = r.pick(&["host", "net", "port", "portrange", ""]);
    if s.is_empty() && aqual.is_empty() {
        s.push_str("host ");
    } else if !aqual.is_empty() {
        s.push_str(aqual);
        s.push(' ');
    }
    // Mostly a value that fits the qualifier, sometimes any.
    let fitting: &[&'static str] = match aqual {
        "host" | "" => HOSTS,
        "net" => NETS,
        "port" => PORTS,
        _ => RANGES,
    };
    s.push_str(if r.chance(85) {
        r.pick(fitting)
    } else {
        random_value(r)
    });
    s
}

const HOSTS: &[&str] = &[
    "10.0.0.5",
    "10.0.0.6",
    "192.168.1.10",
    "10.1.2.3",
    "10.0.0.7",
    "10.1",
    "10",
    "2001:db8::5",
    "2001:db8:1::6",
    "::1",
];
const NETS: &[&str] = &[
    "10.0.0.0/8",
    "192.168.0.0/16",
    "10.0.0.0 mask 255.255.255.0",
    "10.1",
    "10",
    "2001:db8::/32",
    "fe80::/10",
];
const PORTS: &[&str] = &["80", "53", "8080", "5353", "443", "http", "domain", "0x50"];
const RANGES: &[&str] = &["1-1023", "8000-8100", "40000-40010", "80", "http-https"];

fn random_value(r: &mut Rng) -> &'static str {
    let class = r.pick(&["h", "n", "p", "r"]);
    r.pick(match class {
        "h" => HOSTS,
        "n" => NETS,
        "p" => PORTS,
        _ => RANGES,
    })
}

/// Random expressions give the same frames as tcpdump, or are rejected by both: parsing
/// (precedence, abbreviations, what is valid) as libpcap's grammar does. Compared on whole
/// frames; `FILTER_ALL=1` compares the frames cut inside their headers too (a few in a
/// hundred random combinations differ there, see the module documentation), `FILTER_SEED`
/// and `FILTER_N` pick other expressions.
#[test]
fn random_expressions_keep_what_tcpdump_keeps() {
    if !tcpdump() {
        return;
    }
    let mix = repo("tests/filter/mix.pcap");
    let frames = read(&mix);
    let mut r = Rng(std::env::var("FILTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f11e_7e57_0001));
    let mut bad = Vec::new();
    let (mut valid, mut rejected) = (0, 0);
    for _ in 0..std::env::var("FILTER_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(800)
    {
        let expr = random_expr(&mut r, 2);
        let theirs = tcpdump_keeps(&mix, &frames, &expr);
        match (Filter::parse(&expr), theirs) {
            (Ok(f), Ok(theirs)) => {
                valid += 1;
                let mine = ours(&frames, &f);
                // On frames cut inside their headers libpcap's optimiser decides which
                // reads happen (see the module documentation); compare the whole frames.
                let whole = |s: BTreeSet<usize>| -> BTreeSet<usize> {
                    s.into_iter()
                        .filter(|&n| frames[n - 1].data.len() == frames[n - 1].orig_len as usize)
                        .collect()
                };
                let (mine, theirs) = if std::env::var_os("FILTER_ALL").is_some() {
                    (mine, theirs)
                } else {
                    (whole(mine), whole(theirs))
                };
                if mine != theirs {
                    bad.push(format!("{expr:?}: we keep {mine:?}, tcpdump {theirs:?}"));
                }
            }
            (Err(e), Ok(_)) => bad.push(format!("{expr:?}: we reject it ({e}), tcpdump not")),
            (Ok(_), Err(e)) => bad.push(format!("{expr:?}: tcpdump rejects it ({e}), we not")),
            (Err(e), Err(_)) => {
                rejected += 1;
                if rejected % 40 == 0 {
                    eprintln!("both reject {expr:?}: {e}");
                }
            }
        }
    }
    eprintln!("random expressions: {valid} valid, {rejected} rejected by both");
    assert!(valid > 300, "too few valid expressions ({valid})");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// What tcpdump rejects, this rejects; what it takes and this does not cover, this says
/// is not supported (rather than a syntax error).
#[test]
fn rejects_what_tcpdump_rejects() {
    if !tcpdump() {
        return;
    }
    let mix = repo("tests/filter/mix.pcap");
    let frames = read(&mix);
    for expr in [
        "prot 80",
        "tcp prot 80",
        "host",
        "tcp and",
        "(tcp or udp",
        "tcp)",
        "port 70000",
        "net 10.0.0.1/8",
        "host 10.0.0.0/8",
        "host fe80::1/64",
        "tcp host 10.0.0.1",
        "ip6 host 10.0.0.1",
        "ip host ::1",
        "udp port http",
        "ip port 80",
        "icmp port 80",
        "host 256.1.1.1",
        "tcp or 80",
        "(10.0.0.1)",
        "not 10.0.0.1",
        "host 1.1.1.1 or ((2.2.2.2))",
        "net 10 mask 255.0.0.0",
        "src proto 6",
        "port 80-90",
        "port bogus",
        "portrange 1-70000",
        "net 10.0.0.0/33",
        "port 10.0.0.1",
        "portrange ::1",
        "and tcp",
        "tcp tcp",
        "host 00:11:22:33:44:55",
        "host 1.2.3.4 mask 255.255.255.0",
        "port 080",
        "portrange -80",
        "net 10.0.0.0/0",
        "src or dst or src 1.2.3.4",
    ] {
        assert!(
            tcpdump_keeps(&mix, &frames, expr).is_err(),
            "tcpdump takes {expr:?}"
        );
        let e = Filter::parse(expr).expect_err(expr);
        assert!(!e.is_unsupported(), "{expr:?}: {e}");
    }
    // Odd but valid.
    for expr in [
        "ip proto 256",
        "ip6 proto 300",
        "proto 0x6",
        "net 10.0.0.0 mask 255.0",
        "udp portrange http-https",
        "tcp portrange domain-http",
        "host 10.1.2.3 and src or dst 10.0.0.1",
        "host not 10.0.0.2",
        "net 0.0.0.0/0",
        "portrange 0-65535",
        "port 0",
        "host 0",
    ] {
        let theirs = tcpdump_keeps(&mix, &frames, expr).unwrap_or_else(|e| panic!("{e}"));
        let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ours(&frames, &f), theirs, "{expr}");
    }
    for expr in [
        "vlan and tcp",
        "ether host 02:00:00:00:00:01",
        "greater 100",
        "less 100",
        "tcp[13] & 2 != 0",
        "broadcast",
        "ip multicast",
        "mpls",
        "tcp and len > 100",
        "ip6 protochain 6",
    ] {
        assert!(
            tcpdump_keeps(&mix, &frames, expr).is_ok(),
            "tcpdump rejects {expr:?}"
        );
        let e = Filter::parse(expr).expect_err(expr);
        assert!(e.is_unsupported(), "{expr:?}: {e}");
    }
}

/// The table is not vacuous: on mix.pcap each expression keeps some frames and leaves some
/// (but the empty one, which keeps all, and `ip and ip6`, which keeps none).
#[test]
fn the_table_tells_frames_apart() {
    let frames = read(&repo("tests/filter/mix.pcap"));
    let s = subst(&frames);
    for raw in TABLE {
        let expr = fill(raw, &s);
        let kept = ours(&frames, &Filter::parse(&expr).unwrap()).len();
        match expr.as_str() {
            "" => assert_eq!(kept, frames.len()),
            "ip and ip6" => assert_eq!(kept, 0),
            _ => assert!(
                0 < kept && kept < frames.len(),
                "{expr:?} keeps {kept} of {} frames",
                frames.len()
            ),
        }
    }
}
