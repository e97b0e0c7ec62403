//! Link-layer and tunnel headers that `etherparse` does not slice for us: Linux cooked
//! captures (SLL, SLL2), BSD loopback (NULL, LOOP), GRE and the 802.11 frames Aruba
//! controllers carry in GRE.

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
        0x8200..=0x8300 | 0x9000 => wlan(rest),
        _ => Some(Inner::EtherType(proto, rest)),
    }
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
