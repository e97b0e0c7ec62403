//! Stage 2, decode: from link-layer bytes to a TCP segment.
//!
//! Link types handled (pcap `LINKTYPE_*` numbers): Ethernet (1, with any number of 802.1Q,
//! 802.1ad and QinQ VLAN tags, MPLS label stacks and PPPoE sessions), Linux cooked capture
//! SLL (113) and SLL2 (276, what `tcpdump -i any` writes), raw IP (12, 14, 101, 228 IPv4, 229
//! IPv6), BSD loopback NULL (0) and LOOP (108). IPv4 and IPv6 with extension headers are
//! sliced by `etherparse`'s lax parser, so snaplen-cut packets still yield their TCP header
//! and the captured part of the payload. TCP carried in GRE (plain, transparent Ethernet,
//! ERSPAN types I–III, and Aruba's 802.11 encapsulation) is unwrapped.
//!
//! The stage hands on a [`TcpSegment`] borrowing the frame's bytes, or the reason the frame
//! carries no TCP segment we can use ([`Skip`]), which the caller counts.

mod link;

use etherparse::{EtherType, IpNumber, LaxIpPayloadSlice, LaxIpSlice, LenSource, TcpSlice};
use std::net::IpAddr;

/// TCP flag bits as they sit in the header's 13th byte.
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer field significant.
    pub const URG: u8 = 0x20;
}

/// One TCP segment as captured.
#[derive(Copy, Clone, Debug)]
pub struct TcpSegment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when the ACK flag is set).
    pub ack: u32,
    /// Flag bits, see [`flags`].
    pub flags: u8,
    /// Advertised window (unscaled).
    pub window: u16,
    /// IPv4 TTL or IPv6 hop limit, to tell injected resets from the peer's own.
    pub ttl: u8,
    /// The captured payload bytes (fewer than `payload_len` when the frame was cut).
    pub payload: &'a [u8],
    /// The payload length on the wire, from the IP length fields.
    pub payload_len: u32,
    /// The IPv4 identification (0 for IPv6) and the TCP checksum: two copies of one packet
    /// agree on them, a retransmission does not (a new IP ID, new timestamps).
    pub ident: u32,
}

impl TcpSegment<'_> {
    /// True if every bit of `mask` is set.
    pub fn has(&self, mask: u8) -> bool {
        self.flags & mask == mask
    }
    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        self.payload_len + self.has(flags::SYN) as u32 + self.has(flags::FIN) as u32
    }
}

/// Why a frame yields no TCP segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The link type is not one we decode.
    LinkType,
    /// Not IPv4 or IPv6 (ARP, LLDP, …).
    NotIp,
    /// IP, but not TCP (UDP, ICMP, …).
    NotTcp,
    /// An IP fragment (TCP over fragmented IP is not reassembled).
    Fragment,
    /// Headers cut by the snap length or damaged, so no TCP header could be read.
    Malformed,
}

/// The outcome of decoding one frame.
pub type Decoded<'a> = Result<TcpSegment<'a>, Skip>;

/// Decodes one frame captured on an interface of link type `linktype`.
pub fn decode(linktype: u32, data: &[u8]) -> Decoded<'_> {
    match linktype {
        1 => ethernet(data, 0),
        113 => link::sll(data).and_then(|(et, rest)| ether_type(et, rest, 0)),
        276 => link::sll2(data).and_then(|(et, rest)| ether_type(et, rest, 0)),
        0 => link::null(data, false).and_then(|rest| ip(rest, 0)),
        108 => link::null(data, true).and_then(|rest| ip(rest, 0)),
        12 | 14 | 101 | 228 | 229 => ip(data, 0),
        _ => Err(Skip::LinkType),
    }
}

/// How many tunnels deep we unwrap before giving up (a loop of GRE in GRE is hostile).
const MAX_DEPTH: u8 = 3;

/// An Ethernet II frame: destination, source, EtherType (the FCS, if captured, is beyond the
/// IP length and ignored).
fn ethernet(data: &[u8], depth: u8) -> Decoded<'_> {
    if data.len() < 14 {
        return Err(Skip::Malformed);
    }
    ether_type(u16::from_be_bytes([data[12], data[13]]), &data[14..], depth)
}

/// EtherTypes `etherparse` has no name for.
const MPLS_UNICAST: u16 = 0x8847;
const MPLS_MULTICAST: u16 = 0x8848;
const PPPOE_SESSION: u16 = 0x8864;

/// The payload of an EtherType: IP, or 802.1Q / QinQ tags (each four bytes: tag control,
/// then the next EtherType), an MPLS label stack or a PPPoE session header in front of it.
fn ether_type(et: u16, data: &[u8], depth: u8) -> Decoded<'_> {
    match et {
        MPLS_UNICAST | MPLS_MULTICAST => {
            return match link::mpls(data)? {
                link::Carried::Ip(rest) => ip(rest, depth),
                link::Carried::Other => Err(Skip::NotIp),
            }
        }
        PPPOE_SESSION => {
            return match link::pppoe_session(data)? {
                link::Carried::Ip(rest) => ip(rest, depth),
                link::Carried::Other => Err(Skip::NotIp),
            }
        }
        _ => {}
    }
    match EtherType(et) {
        EtherType::IPV4 | EtherType::IPV6 => ip(data, depth),
        EtherType::VLAN_TAGGED_FRAME
        | EtherType::PROVIDER_BRIDGING
        | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
            if data.len() < 4 {
                return Err(Skip::Malformed);
            }
            ether_type(u16::from_be_bytes([data[2], data[3]]), &data[4..], depth)
        }
        _ => Err(Skip::NotIp),
    }
}

/// An IPv4 or IPv6 packet, sliced by `etherparse` (lax: a cut payload is still sliced).
fn ip(data: &[u8], depth: u8) -> Decoded<'_> {
    let (slice, _) = LaxIpSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
    let (src, dst, ttl, claimed, payload, ip_id) = match &slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let claimed = (h.total_len() as usize).saturating_sub(h.ihl() as usize * 4);
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                claimed,
                v4.payload(),
                h.identification(),
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let claimed =
                (h.payload_length() as usize).saturating_sub(v6.extensions().slice().len());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                claimed,
                v6.payload(),
                0,
            )
        }
    };
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    match payload.ip_number {
        IpNumber::TCP => tcp(src, dst, ttl, ip_id, claimed, payload),
        IpNumber::GRE if depth < MAX_DEPTH => match link::gre(payload.payload) {
            Some(link::Inner::EtherType(et, rest)) => ether_type(et, rest, depth + 1),
            Some(link::Inner::Ethernet(rest)) => ethernet(rest, depth + 1),
            None => Err(Skip::NotTcp),
        },
        _ => Err(Skip::NotTcp),
    }
}

fn tcp<'a>(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    ip_id: u16,
    claimed_ip_payload: usize,
    payload: &LaxIpPayloadSlice<'a>,
) -> Decoded<'a> {
    let t = TcpSlice::from_slice(payload.payload).map_err(|_| Skip::Malformed)?;
    let header_len = t.data_offset() as usize * 4;
    let captured = t.payload();
    let on_wire = if payload.len_source == LenSource::Slice && !payload.incomplete {
        // No usable length field (e.g. TSO captures with total length 0): trust the slice.
        captured.len()
    } else {
        claimed_ip_payload
            .saturating_sub(header_len)
            .max(captured.len())
    };
    let bytes = t.header_slice();
    Ok(TcpSegment {
        src,
        dst,
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: bytes[13] & 0x3f,
        window: t.window_size(),
        ttl,
        payload: captured,
        payload_len: on_wire as u32,
        ident: (ip_id as u32) << 16 | t.checksum() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_bytes(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1000, 65535)
            .ack(77)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = tcp_bytes(b"GET / HTTP/1.1\r\n\r\n");
        let s = decode(1, &frame).unwrap();
        assert_eq!((s.sport, s.dport, s.seq, s.ack), (40000, 80, 1000, 77));
        assert!(s.has(flags::ACK | flags::PSH));
        assert_eq!(s.payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(s.payload_len, 18);
    }

    #[test]
    fn snaplen_cut_keeps_the_wire_length() {
        let frame = tcp_bytes(&[b'x'; 100]);
        let s = decode(1, &frame[..14 + 20 + 20 + 10]).unwrap();
        assert_eq!(s.payload.len(), 10);
        assert_eq!(s.payload_len, 100);
    }

    #[test]
    fn cut_inside_the_tcp_header_is_malformed() {
        let frame = tcp_bytes(b"");
        assert_eq!(
            decode(1, &frame[..14 + 20 + 8]).unwrap_err(),
            Skip::Malformed
        );
    }

    #[test]
    fn vlan_and_qinq_tags() {
        let frame = tcp_bytes(b"tagged");
        for tags in [
            &[0x81, 0x00, 0x00, 0x05][..],
            &[0x88, 0xa8, 0x00, 0x01, 0x81, 0x00, 0x00, 0x05][..],
        ] {
            let mut tagged = frame[..12].to_vec();
            tagged.extend_from_slice(tags);
            tagged.extend_from_slice(&frame[12..]);
            let s = decode(1, &tagged).unwrap();
            assert_eq!((s.sport, s.payload), (40000, &b"tagged"[..]));
        }
        let mut cut = frame[..12].to_vec();
        cut.extend_from_slice(&[0x81, 0x00, 0x00]);
        assert_eq!(decode(1, &cut).unwrap_err(), Skip::Malformed);
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(decode(1, &arp).unwrap_err(), Skip::NotIp);
    }

    /// The IPv4 packet of [`tcp_bytes`] behind `shim`, in an Ethernet frame of type `et`.
    fn wrapped(et: u16, shim: &[u8], payload: &[u8]) -> Vec<u8> {
        let frame = tcp_bytes(payload);
        let mut v = frame[..12].to_vec();
        v.extend_from_slice(&et.to_be_bytes());
        v.extend_from_slice(shim);
        v.extend_from_slice(&frame[14..]);
        v
    }

    fn ipv6_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6([0x20; 16], [0x21; 16], 64)
            .tcp(40001, 443, 5, 100)
            .ack(6);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn mpls_label_stacks() {
        // One label (bottom of stack), then two labels, unicast and multicast.
        let one = [0x00, 0x01, 0x01, 0x40];
        let two = [0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x3f];
        for (et, shim) in [(0x8847, &one[..]), (0x8847, &two[..]), (0x8848, &two[..])] {
            let frame = wrapped(et, shim, b"mpls");
            let s = decode(1, &frame).unwrap();
            assert_eq!((s.sport, s.dport, s.payload), (40000, 80, &b"mpls"[..]));
        }
        // IPv6 under a label, told by its first nibble.
        let mut v6 = vec![0; 12];
        v6.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x01, 0x40]);
        v6.extend_from_slice(&ipv6_tcp(b"six"));
        let s = decode(1, &v6).unwrap();
        assert_eq!((s.dport, s.payload), (443, &b"six"[..]));
        // Behind a VLAN tag too.
        let mut tagged = vec![0; 12];
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        tagged.extend_from_slice(&v6[12..]);
        assert_eq!(decode(1, &tagged).unwrap().payload, b"six");
        // A pseudowire (first nibble 0: control word) is not IP.
        let mut pw = vec![0; 12];
        pw.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x01, 0x40, 0x00, 0x00, 0x00, 0x00]);
        pw.extend_from_slice(&tcp_bytes(b"x"));
        assert_eq!(decode(1, &pw).unwrap_err(), Skip::NotIp);
        // No bottom of stack before the frame ends, or a stack that never ends.
        let cut = wrapped(0x8847, &[0x00, 0x01, 0x00, 0x40], b"");
        assert_eq!(decode(1, &cut[..18]).unwrap_err(), Skip::Malformed);
        let endless = wrapped(0x8847, &[0x00, 0x01, 0x00, 0x40].repeat(40), b"");
        assert_eq!(decode(1, &endless).unwrap_err(), Skip::Malformed);
    }

    #[test]
    fn pppoe_sessions() {
        let frame = tcp_bytes(b"ppp");
        let ip_len = (frame.len() - 14) as u16;
        let header = |proto: u16, len: u16| {
            let mut h = vec![0x11, 0x00, 0x12, 0x34];
            h.extend_from_slice(&len.to_be_bytes());
            h.extend_from_slice(&proto.to_be_bytes());
            h
        };
        let plain = wrapped(0x8864, &header(0x0021, ip_len + 2), b"ppp");
        let s = decode(1, &plain).unwrap();
        assert_eq!((s.sport, s.payload), (40000, &b"ppp"[..]));
        // Ethernet padding after the PPPoE length is not payload.
        let mut padded = wrapped(0x8864, &header(0x0021, ip_len + 2), b"ppp");
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(decode(1, &padded).unwrap().payload_len, 3);
        // IPv6 (PPP protocol 0x0057).
        let v6 = ipv6_tcp(b"v6");
        let mut f = vec![0; 12];
        f.extend_from_slice(&[0x88, 0x64]);
        f.extend_from_slice(&header(0x0057, v6.len() as u16 + 2));
        f.extend_from_slice(&v6);
        assert_eq!(decode(1, &f).unwrap().payload, b"v6");
        // LCP, discovery (code 0x09 PADI), and a cut header are not TCP.
        let lcp = wrapped(0x8864, &header(0xc021, ip_len + 2), b"");
        assert_eq!(decode(1, &lcp).unwrap_err(), Skip::NotIp);
        let mut padi = header(0x0021, ip_len + 2);
        padi[1] = 0x09;
        assert_eq!(
            decode(1, &wrapped(0x8864, &padi, b"")).unwrap_err(),
            Skip::NotIp
        );
        let short = wrapped(0x8864, &[0x11, 0x00, 0x00], b"");
        assert_eq!(decode(1, &short[..17]).unwrap_err(), Skip::Malformed);
    }

    /// An outer IPv4 GRE packet around `inner` with the given GRE flags and protocol.
    fn gre_frame(flags: u8, proto: u16, extra: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut gre = vec![flags, 0x00];
        gre.extend_from_slice(&proto.to_be_bytes());
        gre.extend_from_slice(extra);
        gre.extend_from_slice(inner);
        let b = PacketBuilder::ethernet2([3; 6], [4; 6]).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 63);
        let mut v = Vec::new();
        b.write(&mut v, IpNumber::GRE, &gre).unwrap();
        v
    }

    #[test]
    fn erspan_types_one_to_three() {
        let mirrored = tcp_bytes(b"mirrored");
        // Type I: no GRE sequence number, no ERSPAN header.
        let t1 = gre_frame(0x00, 0x88BE, &[], &mirrored);
        assert_eq!(decode(1, &t1).unwrap().payload, b"mirrored");
        // Type II: sequence number, then an eight-byte header of version 1.
        let mut ii = vec![0, 0, 0, 1]; // GRE sequence
        ii.extend_from_slice(&[0x10, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00]);
        let t2 = gre_frame(0x10, 0x88BE, &ii, &mirrored);
        let s = decode(1, &t2).unwrap();
        assert_eq!(
            (s.src.to_string().as_str(), s.payload),
            ("10.0.0.1", &b"mirrored"[..])
        );
        // Type III: twelve bytes of header, eight more with the O bit.
        let mut iii = vec![0, 0, 0, 1];
        iii.extend_from_slice(&[0x20, 0x00, 0x00, 0x07, 1, 2, 3, 4, 0, 0, 0, 0]);
        let t3 = gre_frame(0x10, 0x22EB, &iii, &mirrored);
        assert_eq!(decode(1, &t3).unwrap().payload, b"mirrored");
        let mut iii_o = iii.clone();
        iii_o[15] = 0x01;
        iii_o.extend_from_slice(&[0; 8]);
        let t3o = gre_frame(0x10, 0x22EB, &iii_o, &mirrored);
        assert_eq!(decode(1, &t3o).unwrap().payload, b"mirrored");
        // A wrong version is not decoded as a frame.
        ii[4] = 0x20;
        let bad = gre_frame(0x10, 0x88BE, &ii, &mirrored);
        assert_eq!(decode(1, &bad).unwrap_err(), Skip::NotTcp);
    }

    #[test]
    fn ipv6_with_an_extension_header() {
        let tcp = tcp_bytes(b"v6");
        let tcp = &tcp[14 + 20..]; // the TCP header and payload of the IPv4 frame
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((8 + tcp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 64]); // next header: hop-by-hop options; hop limit
        ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        ip.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        ip.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop: next TCP, PadN
        ip.extend_from_slice(tcp);
        let s = decode(101, &ip).unwrap();
        assert_eq!(
            (s.src.to_string().as_str(), s.sport, s.payload),
            ("fe80::1", 40000, &b"v6"[..])
        );
        assert_eq!(s.payload_len, 2);
    }

    #[test]
    fn unknown_link_type_is_skipped() {
        assert_eq!(decode(147, &[0; 60]).unwrap_err(), Skip::LinkType);
    }

    #[test]
    fn raw_ip_and_null_loopback() {
        let frame = tcp_bytes(b"hi");
        let ip = &frame[14..];
        assert_eq!(decode(101, ip).unwrap().payload, b"hi");
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert_eq!(decode(0, &null).unwrap().payload, b"hi");
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(ip);
        assert_eq!(decode(108, &lo).unwrap().payload, b"hi");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            for lt in [0, 1, 12, 101, 108, 113, 228, 229, 276] {
                let _ = decode(lt, &bytes);
            }
            // The same bytes behind each EtherType we unwrap.
            for et in [0x8100u16, 0x88a8, 0x8847, 0x8848, 0x8864] {
                let mut f = vec![0; 12];
                f.extend_from_slice(&et.to_be_bytes());
                f.extend_from_slice(&bytes);
                let _ = decode(1, &f);
            }
        }
    }
}
