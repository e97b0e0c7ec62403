#!/usr/bin/env python3
"""Writes mix.pcap: one Ethernet frame of each kind the capture filter has to classify
(tests/filter.rs derives the other link types from it and compares with tcpdump).
Checksums are left zero: no filter primitive reads them."""
import ipaddress
import struct

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def v4(a):
    return ipaddress.IPv4Address(a).packed


def v6(a):
    return ipaddress.IPv6Address(a).packed


def eth(ethertype, payload, vlan=None):
    head = MAC_B + MAC_A
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + payload


def ip4(src, dst, proto, payload, frag=0, mf=False, options=b"", ihl=None):
    if ihl is None:
        ihl = 5 + len(options) // 4
    flags = (0x2000 if mf else 0) | frag
    total = 20 + len(options) + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, flags, 64, proto, 0,
                       v4(src), v4(dst)) + options + payload


def ip6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, v6(src), v6(dst)) + payload


def tcp(sport, dport, flags=0x02, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, 1000, 0, 0x50, flags, 65535, 0, 0) + data


def udp(sport, dport, data=b"hello"):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def sctp(sport, dport):
    return struct.pack("!HHII", sport, dport, 0, 0)


def icmp(t=8):
    return struct.pack("!BBHHH", t, 0, 0, 1, 1) + b"ping"


def arp(op, sha, spa, tha, tpa):
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, v4(spa), tha, v4(tpa))


A, B, C, D, E = "10.0.0.5", "10.0.0.6", "10.1.2.3", "192.168.1.10", "172.16.5.4"
A6, B6, L6 = "2001:db8::5", "2001:db8:1::6", "fe80::1"

frames = [
    # (frame, bytes kept of it or None for all)
    (eth(0x0800, ip4(A, B, 6, tcp(40000, 8080))), None),
    (eth(0x0800, ip4(B, A, 6, tcp(8080, 40000, 0x12))), None),
    (eth(0x0800, ip4(C, D, 6, tcp(443, 51000, 0x10, b"x" * 20))), None),
    (eth(0x0800, ip4(D, A, 6, tcp(80, 33000, 0x14))), None),
    (eth(0x0800, ip4(A, "10.0.0.53", 17, udp(5353, 53))), None),
    (eth(0x0800, ip4("10.0.0.53", A, 17, udp(53, 5353))), None),
    (eth(0x0800, ip4(A, E, 1, icmp())), None),
    (eth(0x0800, ip4(E, A, 1, icmp(0))), None),
    (eth(0x0806, arp(1, MAC_A, A, b"\0" * 6, B)), None),
    (eth(0x0806, arp(2, MAC_B, B, MAC_A, A)), None),
    (eth(0x8035, arp(3, MAC_A, "0.0.0.0", MAC_A, "10.0.0.7")), None),
    # IPv4 fragments of a TCP segment to port 80: the first has the ports, the second has
    # bytes where ports would be that read 80
    (eth(0x0800, ip4(A, B, 6, tcp(40001, 80, 0x18, b"y" * 16), mf=True)), None),
    (eth(0x0800, ip4(A, B, 6, struct.pack("!HH", 80, 80) + b"z" * 20, frag=5)), None),
    # IPv4 with options (IHL 6)
    (eth(0x0800, ip4(C, A, 6, tcp(8081, 22), options=b"\x01\x01\x01\x00")), None),
    # a bogus IHL of 4: libpcap still reads the ports at 4*IHL
    (eth(0x0800, ip4(C, A, 17, udp(53, 53), ihl=4)), None),
    (eth(0x0800, ip4(A, B, 132, sctp(80, 9999))), None),
    (eth(0x0800, ip4(A, "224.0.0.1", 2, b"\x11\x64\0\0\0\0\0\0")), None),
    (eth(0x0800, ip4(A, A, 6, tcp(1234, 1234))), None),
    (eth(0x0800, ip4("0.0.0.10", C, 17, udp(123, 123))), None),
    # IPv6
    (eth(0x86DD, ip6(A6, B6, 6, tcp(40000, 80))), None),
    (eth(0x86DD, ip6(B6, A6, 6, tcp(80, 40000, 0x12))), None),
    (eth(0x86DD, ip6(L6, "ff02::1:2", 17, udp(546, 547))), None),
    (eth(0x86DD, ip6(A6, "2001:db8::6", 58, icmp(128))), None),
    (eth(0x86DD, ip6("::1", "::1", 17, udp(53, 5353))), None),
    # hop-by-hop options, then TCP to port 80
    (eth(0x86DD, ip6(A6, B6, 0, bytes([6, 0, 1, 4, 0, 0, 0, 0]) + tcp(40002, 80))), None),
    # a fragment header, then TCP to port 80 (first fragment), then UDP
    (eth(0x86DD, ip6(A6, B6, 44, bytes([6, 0, 0, 1, 0, 0, 0, 7]) + tcp(40003, 80))), None),
    (eth(0x86DD, ip6(B6, A6, 44, bytes([17, 0, 0, 0, 0, 0, 0, 8]) + udp(53, 40004))), None),
    # IP-in-IP and IPv6-in-IPv4: never looked into
    (eth(0x0800, ip4(A, B, 4, ip4(D, E, 6, tcp(80, 1025)))), None),
    (eth(0x0800, ip4(A, B, 41, ip6(A6, B6, 6, tcp(80, 1026)))), None),
    # 802.1Q-tagged IPv4 and IPv6: not ip/ip6 without 'vlan'
    (eth(0x0800, ip4(A, B, 6, tcp(40005, 8080)), vlan=100), None),
    (eth(0x86DD, ip6(A6, B6, 6, tcp(40006, 80)), vlan=100), None),
    # an 802.3 frame with an LLC header (length, not EtherType)
    (MAC_B + MAC_A + struct.pack("!H", 7) + b"\x42\x42\x03" + b"\0" * 43, None),
    # cut by snaplen: inside the ethertype, inside the IPv4 source, before the
    # destination, before the ports, between source and destination port
    (eth(0x0800, ip4(A, B, 6, tcp(40007, 80))), 13),
    (eth(0x0800, ip4(A, B, 6, tcp(40007, 80))), 28),
    (eth(0x0800, ip4(A, B, 6, tcp(40007, 80))), 30),
    (eth(0x0800, ip4(A, B, 6, tcp(40007, 80))), 34),
    (eth(0x0800, ip4(A, B, 6, tcp(80, 40007))), 36),
    (eth(0x0800, ip4(A, B, 17, udp(5353, 53))), 36),
    (eth(0x0800, ip4(A, B, 6, tcp(443, 40010))), 36),
    (eth(0x86DD, ip6(A6, B6, 17, udp(5353, 53))), 56),
    # IPv6 cut before the next header, inside the source, before the ports
    (eth(0x86DD, ip6(A6, B6, 6, tcp(40008, 80))), 19),
    (eth(0x86DD, ip6(A6, B6, 6, tcp(40008, 80))), 30),
    (eth(0x86DD, ip6(A6, B6, 6, tcp(40008, 80))), 54),
    (eth(0x86DD, ip6(A6, B6, 44, bytes([6, 0, 0, 1, 0, 0, 0, 7]) + tcp(40009, 80))), 54),
    (eth(0x0806, arp(1, MAC_A, A, b"\0" * 6, B)), 32),
    # port numbers at the edges of the ranges tested
    (eth(0x0800, ip4(D, C, 6, tcp(1023, 1024))), None),
    (eth(0x0800, ip4(D, C, 6, tcp(65535, 0))), None),
    (eth(0x0800, ip4(D, C, 17, udp(67, 68))), None),
]

with open("mix.pcap", "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, (frame, cut) in enumerate(frames):
        if len(frame) < 60 and cut is None:
            frame += b"\0" * (60 - len(frame))  # Ethernet padding
        data = frame[:cut] if cut is not None else frame
        f.write(struct.pack("<IIII", 1700000000 + i, 0, len(data), len(frame)))
        f.write(data)
