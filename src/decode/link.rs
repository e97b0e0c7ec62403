//! Link-layer and tunnel headers that `etherparse` does not slice for us: Linux cooked
//! captures (SLL, SLL2), BSD loopback (NULL, LOOP), MPLS label stacks, PPPoE sessions, GRE,
//! ERSPAN (types I, II and III, carried in GRE) and the 802.11 frames Aruba controllers carry
//! in GRE.

use super::Skip;

/// Linux cooked capture v1: 16-byte header, protocol type at offset 14.
pub fn sll(data: &[u8]) -> Result<(u16, &[u8]), Skip> {
    if data.len() < 16 {
        return Err(Skip::Malformed);
    }
    Ok((u16::from_be_bytes([data[14], data[15]]), &data[16..]))
}

/// Linux cooked capture v2 (`tcpdump -i any`): 20-byte header, protocol type first.
pub fn sll2(data: &[u8]) -> Result<(u16, &[u8]), Skip> {
    if data.len() < 20 {
        return Err(Skip::Malformed);
    }
    Ok((u16::from_be_bytes([data[0], data[1]]), &data[20..]))
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL and
/// in network order for LOOP. IPv6's family number differs between BSDs (24, 28, 30).
pub fn null(data: &[u8], network_order: bool) -> Result<&[u8], Skip> {
    if data.len() < 4 {
        return Err(Skip::Malformed);
    }
    let b = [data[0], data[1], data[2], data[3]];
    let family = if network_order {
        u32::from_be_bytes(b)
    } else {
        // The writer's byte order is unknown: the family is small, so whichever reading is
        // small is the right one.
        let le = u32::from_le_bytes(b);
        if le < 0x100 {
            le
        } else {
            u32::from_be_bytes(b)
        }
    };
    match family {
        2 | 10 | 24 | 28 | 30 => Ok(&data[4..]),
        _ => Err(Skip::NotIp),
    }
}

/// What an MPLS label stack or a PPPoE session carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Carried<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// Something else (MPLS: a pseudowire or an unknown payload; PPPoE: LCP, IPCP, …).
    Other,
}

/// The most labels we walk before calling the stack damaged (real stacks have a handful).
const MAX_LABELS: usize = 16;

/// An MPLS label stack (EtherType 0x8847 unicast, 0x8848 multicast; RFC 3032): four-byte
/// entries up to the one with the bottom-of-stack bit, then a payload with no type field,
/// told by its first nibble (4 IPv4, 6 IPv6), as Wireshark and routers do.
pub fn mpls(data: &[u8]) -> Result<Carried<'_>, Skip> {
    let mut at = 0;
    for _ in 0..MAX_LABELS {
        let entry = data.get(at..at + 4).ok_or(Skip::Malformed)?;
        at += 4;
        if entry[2] & 0x01 != 0 {
            let rest = &data[at..];
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Ok(Carried::Ip(rest)),
                Some(_) => Ok(Carried::Other),
                None => Err(Skip::Malformed),
            };
        }
    }
    Err(Skip::Malformed)
}

/// A PPPoE session frame (EtherType 0x8864; RFC 2516): version/type 0x11, code 0, session
/// id, length, then the PPP protocol number (0x0021 IPv4, 0x0057 IPv6).
pub fn pppoe_session(data: &[u8]) -> Result<Carried<'_>, Skip> {
    if data.len() < 8 {
        return Err(Skip::Malformed);
    }
    if data[0] != 0x11 || data[1] != 0x00 {
        return Err(Skip::NotIp); // not version 1 type 1, or not session data
    }
    // The PPPoE length counts the PPP protocol field and the payload; the frame may carry
    // Ethernet padding beyond it, which the IP length fields make harmless anyway.
    let len = u16::from_be_bytes([data[4], data[5]]) as usize;
    let end = (6 + len).min(data.len()).max(8);
    match u16::from_be_bytes([data[6], data[7]]) {
        0x0021 | 0x0057 => Ok(Carried::Ip(&data[8..end])),
        _ => Ok(Carried::Other),
    }
}

/// What a GRE packet carries.
pub enum Inner<'a> {
    /// A packet of this EtherType.
    EtherType(u16, &'a [u8]),
    /// A whole Ethernet frame (transparent Ethernet bridging, or 802.11 turned into one).
    Ethernet(&'a [u8]),
}

/// GRE (RFC 2784/2890), version 0: optional checksum, key and sequence words.
pub fn gre(data: &[u8]) -> Option<Inner<'_>> {
    if data.len() < 4 {
        return None;
    }
    let (f0, f1) = (data[0], data[1]);
    if f1 & 0x07 != 0 {
        return None; // version 1 (PPTP) carries PPP
    }
    let mut len = 4;
    for bit in [0x80, 0x20, 0x10] {
        if f0 & bit != 0 {
            len += 4;
        }
    }
    let proto = u16::from_be_bytes([data[2], data[3]]);
    let rest = data.get(len..)?;
    match proto {
        0x6558 => Some(Inner::Ethernet(rest)),
        0x88BE => erspan_ii(rest, f0 & 0x10 != 0),
        0x22EB => erspan_iii(rest),
        0x8200..=0x8300 | 0x9000 => wlan(rest),
        _ => Some(Inner::EtherType(proto, rest)),
    }
}

/// ERSPAN in GRE protocol 0x88BE: type I has no header of its own (and no GRE sequence
/// number), type II an eight-byte header whose first nibble is version 1; either way the
/// mirrored Ethernet frame follows.
fn erspan_ii(data: &[u8], gre_sequence: bool) -> Option<Inner<'_>> {
    if !gre_sequence {
        return Some(Inner::Ethernet(data)); // type I
    }
    let header = data.get(..8)?;
    (header[0] >> 4 == 1).then(|| Inner::Ethernet(&data[8..]))
}

/// ERSPAN type III in GRE protocol 0x22EB: a twelve-byte header (version 2), eight more
/// bytes of platform-specific subheader when its O bit is set, then the mirrored frame if
/// the frame type is Ethernet (0).
fn erspan_iii(data: &[u8]) -> Option<Inner<'_>> {
    let header = data.get(..12)?;
    if header[0] >> 4 != 2 {
        return None;
    }
    let frame_type = (header[10] >> 2) & 0x1f;
    if frame_type != 0 {
        return None;
    }
    let len = if header[11] & 0x01 != 0 { 20 } else { 12 };
    data.get(len..).map(Inner::Ethernet)
}

/// An IEEE 802.11 data frame with an LLC/SNAP header, as Aruba controllers tunnel them.
fn wlan(data: &[u8]) -> Option<Inner<'_>> {
    let fc0 = *data.first()?;
    let fc1 = *data.get(1)?;
    if (fc0 >> 2) & 0x3 != 2 || fc1 & 0x40 != 0 {
        return None; // not a data frame, or encrypted
    }
    let qos = fc0 & 0x80 != 0;
    let mut len = 24;
    if fc1 & 0x03 == 0x03 {
        len += 6; // four-address frame
    }
    if qos {
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let llc = data.get(len..len + 8)?;
    if llc[0] != 0xAA || llc[1] != 0xAA || llc[2] != 0x03 {
        return None;
    }
    Some(Inner::EtherType(
        u16::from_be_bytes([llc[6], llc[7]]),
        &data[len + 8..],
    ))
}
