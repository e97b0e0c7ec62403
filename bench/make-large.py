#!/usr/bin/env python3
"""Build a large benchmark capture from repeated real traffic.

Reads one or more real classic-pcap captures and writes one classic pcap in
which their packets are replayed many times.  Each replay ("instance") is a
copy of one input capture with

  * every TCP connection's *client* address rewritten to an address that is
    unique to that instance (IPv4: 10.x.y.z, or 127.x.y.z when the original
    client was on loopback; IPv6: the low 32 bits of the address), so the
    server address and both ports are kept and no two instances share a
    4-tuple;
  * its timestamps shifted to the instance's start time.

Instances start `stagger` apart (plus a seeded jitter smaller than the
stagger), where stagger = mean input duration / --concurrency, so on average
about --concurrency instances - and several times that many TCP connections -
are live at once.  The output is a time-ordered merge of all instances (a
heap), written as it is produced; timestamps never go backwards.

Checksums: the IPv4 header checksum is recomputed; the TCP checksum is
updated incrementally (RFC 1624) for the changed address, so a segment whose
checksum was right in the input is right in the output, and one that was
wrong (e.g. checksum offload on the capturing host) stays wrong.

Inputs must be classic pcap (any byte order, micro- or nanosecond
timestamps).  Supported link types: NULL (0), Ethernet (1, with 802.1Q/QinQ
tags), raw IP (12, 14, 101), LOOP (108), Linux SLL (113), Linux SLL2 (276).
All inputs must share one link type; with the default inputs, captures of
another link type are skipped with a warning.  Packets that are not TCP over
IPv4/IPv6 (ARP, UDP, IP fragments, ...) are replayed unchanged apart from
their timestamps.

Output: little-endian classic pcap, microsecond timestamps unless an input
has nanosecond timestamps.  Exactly --packets packets are written (the last
instance is cut short).  The run is deterministic for a given set of inputs,
--seed and --concurrency; a different --packets keeps the same traffic mix
and concurrency and only changes the length of the capture.  A summary is printed to stderr and written as
JSON next to the output (OUT.meta.json).

Usage:
  bench/make-large.py [--out PATH] [--packets N] [--inputs FILE ...]
                      [--concurrency C] [--seed S]
"""

import argparse
import glob
import hashlib
import heapq
import json
import os
import random
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_INPUT_GLOBS = [
    "/work/shared/corpus/zeek/Traces/http/*.pcap",
    os.path.join(REPO, "fixtures", "*", "capture.pcap"),
]

LINKTYPE_NAMES = {0: "NULL", 1: "Ethernet", 12: "raw IP", 14: "raw IP",
                  101: "raw IP", 108: "LOOP", 113: "Linux SLL",
                  276: "Linux SLL2"}

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A


class InputError(Exception):
    pass


# --------------------------------------------------------------------------
# Reading

def read_pcap(path):
    """Return (linktype, snaplen, nanosecond, [(ts_ns, data, origlen), ...])."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 24:
        raise InputError(f"{path}: too short for a pcap header")
    magic_le = struct.unpack_from("<I", raw, 0)[0]
    magic_be = struct.unpack_from(">I", raw, 0)[0]
    if magic_le in (MAGIC_US, MAGIC_NS):
        endian, magic = "<", magic_le
    elif magic_be in (MAGIC_US, MAGIC_NS):
        endian, magic = ">", magic_be
    elif magic_le == PCAPNG_SHB:
        raise InputError(f"{path}: pcapng is not supported; convert with "
                         f"`editcap -F pcap {path} out.pcap`")
    else:
        raise InputError(f"{path}: not a classic pcap file "
                         f"(magic {magic_le:#010x})")
    nano = magic == MAGIC_NS
    _, _, _, _, snaplen, network = struct.unpack_from(endian + "HHiIII", raw, 4)
    linktype = network & 0xFFFF
    rec = struct.Struct(endian + "IIII")
    pkts = []
    off = 24
    n = len(raw)
    scale = 1 if nano else 1000
    while off + 16 <= n:
        sec, frac, incl, orig = rec.unpack_from(raw, off)
        off += 16
        if off + incl > n:
            print(f"warning: {path}: truncated last record ignored",
                  file=sys.stderr)
            break
        pkts.append((sec * 1_000_000_000 + frac * scale,
                     raw[off:off + incl], orig))
        off += incl
    return linktype, snaplen, nano, pkts


def l3_offset(linktype, d):
    """Offset of the IP header in frame d, or None if not IP."""
    if linktype == 1:  # Ethernet
        off = 12
        if len(d) < 14:
            return None
        et = (d[off] << 8) | d[off + 1]
        while et in (0x8100, 0x88A8, 0x9100) and len(d) >= off + 6:
            off += 4
            et = (d[off] << 8) | d[off + 1]
        return off + 2 if et in (0x0800, 0x86DD) else None
    if linktype in (12, 14, 101):  # raw IP
        return 0
    if linktype == 113:  # Linux cooked v1
        if len(d) < 16:
            return None
        et = (d[14] << 8) | d[15]
        return 16 if et in (0x0800, 0x86DD) else None
    if linktype == 276:  # Linux cooked v2
        if len(d) < 20:
            return None
        et = (d[0] << 8) | d[1]
        return 20 if et in (0x0800, 0x86DD) else None
    if linktype in (0, 108):  # BSD loopback: 4-byte address family
        if len(d) < 4:
            return None
        fam_le = struct.unpack_from("<I", d, 0)[0]
        fam_be = struct.unpack_from(">I", d, 0)[0]
        fams = (fam_be,) if linktype == 108 else (fam_le, fam_be)
        if any(f in (2, 24, 28, 30) for f in fams):
            return 4
        return None
    raise InputError(f"unsupported link type {linktype}")


def parse_tcp(linktype, d):
    """Return (ver, addr_off, addrlen, tcp_off, sport, dport, flags) or None.

    addr_off is the offset of the source address; the destination address
    follows it directly (IPv4: +4, IPv6: +16).
    """
    ip = l3_offset(linktype, d)
    if ip is None or len(d) < ip + 1:
        return None
    ver = d[ip] >> 4
    if ver == 4:
        if len(d) < ip + 20:
            return None
        ihl = (d[ip] & 0x0F) * 4
        if ihl < 20 or d[ip + 9] != 6:
            return None
        frag = ((d[ip + 6] << 8) | d[ip + 7]) & 0x1FFF
        if frag:
            return None
        tcp = ip + ihl
        addr_off, addrlen = ip + 12, 4
    elif ver == 6:
        if len(d) < ip + 40 or d[ip + 6] != 6:
            return None
        tcp = ip + 40
        addr_off, addrlen = ip + 8, 16
    else:
        return None
    if len(d) < tcp + 14:
        return None
    sport, dport = struct.unpack_from("!HH", d, tcp)
    return ver, ip, addr_off, addrlen, tcp, sport, dport, d[tcp + 13]


# --------------------------------------------------------------------------
# Templates

class Template:
    """One input capture, prepared for fast replay."""

    def __init__(self, path, linktype, pkts):
        self.path = path
        pkts = sorted(pkts, key=lambda p: p[0])  # stable: keeps ties in order
        t0 = self.first_ts = pkts[0][0]
        self.duration_ns = pkts[-1][0] - t0

        # Pass 1: decide the client endpoint of every TCP connection.
        # Priority: sender of a bare SYN (3) > receiver of a SYN/ACK (2) >
        # endpoint with the larger port (1).
        parsed = [parse_tcp(linktype, d) for _, d, _ in pkts]
        best = {}
        for (ts, d, orig), p in zip(pkts, parsed):
            if p is None:
                continue
            ver, ip, ao, al, tcp, sport, dport, flags = p
            src = (d[ao:ao + al], sport)
            dst = (d[ao + al:ao + 2 * al], dport)
            key = (src, dst) if src <= dst else (dst, src)
            syn, ack = flags & 0x02, flags & 0x10
            if syn and not ack:
                cand = (3, src)
            elif syn and ack:
                cand = (2, dst)
            elif sport != dport:
                cand = (1, src if sport > dport else dst)
            else:
                cand = (0, src)
            cur = best.get(key)
            if cur is None or cand[0] > cur[0]:
                best[key] = cand
        self.connections = len(best)

        # Distinct client addresses -> slot j (rewritten per instance).
        self.client_addrs = []          # list of original address bytes
        slot_of = {}
        for key in best:                # dict order = first appearance
            addr = best[key][1][0]
            if addr not in slot_of:
                slot_of[addr] = len(self.client_addrs)
                self.client_addrs.append(addr)

        # Pass 2: per-packet replay recipe.
        # (rel_ns, data, origlen, kind, ip_off, ihl, rw_off, csum_off, slot)
        #   kind 0: copy unchanged; 4: IPv4 TCP; 6: IPv6 TCP.
        #   rw_off: where the 4 bytes to replace start (IPv4: whole address,
        #   IPv6: low 32 bits of the address).
        self.recipe = []
        for (ts, d, orig), p in zip(pkts, parsed):
            rel = ts - t0
            if p is None:
                self.recipe.append((rel, d, orig, 0, 0, 0, 0, 0, 0))
                continue
            ver, ip, ao, al, tcp, sport, dport, flags = p
            src = (d[ao:ao + al], sport)
            dst = (d[ao + al:ao + 2 * al], dport)
            key = (src, dst) if src <= dst else (dst, src)
            client = best[key][1]
            if src == client:
                a_off = ao
            else:
                a_off = ao + al
            slot = slot_of[client[0]]
            rw_off = a_off if ver == 4 else a_off + 12
            csum_off = tcp + 16 if len(d) >= tcp + 18 else -1
            ihl = (d[ip] & 0x0F) * 4 if ver == 4 else 0
            self.recipe.append((rel, d, orig, ver, ip, ihl, rw_off, csum_off,
                                slot))
        self.packets = len(self.recipe)
        self.replays = 0          # filled in while writing
        self.cut_replays = 0


# --------------------------------------------------------------------------
# Address allocation

class AddressPool:
    """Hands out unique replacement client addresses."""

    def __init__(self, reserved4, reserved6_low):
        self.next = {"10": 0x0A000000, "127": 0x7F000000, "v6": 0x0A000000}
        self.reserved4 = reserved4
        self.reserved6_low = reserved6_low

    def take(self, orig):
        if len(orig) == 4:
            pool = "127" if orig[0] == 127 else "10"
            limit = 0x7FFFFFFF if pool == "127" else 0x0AFFFFFF
            reserved = self.reserved4
        else:
            pool, limit, reserved = "v6", 0xFFFFFFFF, self.reserved6_low
        a = self.next[pool]
        while True:
            a += 1
            if a > limit:
                raise SystemExit(f"error: address pool {pool} exhausted")
            if (a & 0xFF) in (0, 255):
                continue
            if a.to_bytes(4, "big") in reserved:
                continue
            break
        self.next[pool] = a
        return a.to_bytes(4, "big")


def csum_delta(old4, new4):
    """RFC 1624 delta for replacing 4 bytes old4 by new4 (two 16-bit words)."""
    o1, o2 = (old4[0] << 8) | old4[1], (old4[2] << 8) | old4[3]
    n1, n2 = (new4[0] << 8) | new4[1], (new4[2] << 8) | new4[3]
    return (o1 ^ 0xFFFF) + (o2 ^ 0xFFFF) + n1 + n2


# --------------------------------------------------------------------------
# Main

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Build a large pcap from repeated real traffic.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, ".cache", "large.pcap"),
                    help="output classic pcap")
    ap.add_argument("--packets", type=int, default=1_200_000,
                    help="number of packets to write (exact)")
    ap.add_argument("--inputs", nargs="+", metavar="FILE",
                    help="input classic pcap files (default: "
                         + " + ".join(DEFAULT_INPUT_GLOBS) + ")")
    ap.add_argument("--concurrency", type=int, default=200,
                    help="mean number of replayed input captures live at once")
    ap.add_argument("--seed", type=int, default=1,
                    help="seed for instance order and start-time jitter")
    ap.add_argument("--reuse", action="store_true",
                    help="do nothing if OUT exists and OUT.meta.json records "
                         "the same inputs (by content), settings and "
                         "generator version")
    return ap.parse_args(argv)


def load_inputs(args):
    explicit = args.inputs is not None
    if explicit:
        paths = list(args.inputs)
    else:
        paths = []
        for g in DEFAULT_INPUT_GLOBS:
            paths.extend(sorted(glob.glob(g)))
    if not paths:
        raise SystemExit("error: no input files")
    templates = []
    linktype = None
    nano = False
    snaplen = 0
    for path in paths:
        try:
            lt, sl, ns, pkts = read_pcap(path)
            if lt not in LINKTYPE_NAMES:
                raise InputError(f"{path}: unsupported link type {lt}")
            if linktype is not None and lt != linktype:
                raise InputError(
                    f"{path}: link type {lt} ({LINKTYPE_NAMES[lt]}) differs "
                    f"from {linktype} ({LINKTYPE_NAMES[linktype]}) of the "
                    f"first input")
            if not pkts:
                raise InputError(f"{path}: no packets")
        except (InputError, OSError) as e:
            if explicit:
                raise SystemExit(f"error: {e}")
            print(f"warning: skipping {e}", file=sys.stderr)
            continue
        linktype = lt
        nano = nano or ns
        snaplen = max(snaplen, sl)
        templates.append(Template(path, lt, pkts))
    if not templates:
        raise SystemExit("error: no usable input files")
    return templates, linktype, nano, snaplen


def cache_key(args, templates):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    for t in templates:
        with open(t.path, "rb") as f:
            h.update(t.path.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    h.update(f"{args.packets}/{args.concurrency}/{args.seed}".encode())
    return h.hexdigest()[:16]


def main(argv=None):
    args = parse_args(argv)
    if args.packets < 1:
        raise SystemExit("error: --packets must be positive")
    if args.concurrency < 1:
        raise SystemExit("error: --concurrency must be positive")
    t_start = time.monotonic()
    templates, linktype, nano, snaplen = load_inputs(args)
    key = cache_key(args, templates)
    if args.reuse and os.path.exists(args.out):
        try:
            with open(args.out + ".meta.json") as mf:
                old = json.load(mf)
        except (OSError, ValueError):
            old = {}
        if old.get("key") == key and old.get("bytes") == os.path.getsize(
                args.out):
            print(f"{args.out} is up to date ({old['packets']} packets)",
                  file=sys.stderr)
            return

    # Addresses that already occur in the inputs are never handed out.
    reserved4, reserved6 = set(), set()
    for t in templates:
        for r in t.recipe:
            if r[3] == 4:
                ao = r[4] + 12
                reserved4.add(bytes(r[1][ao:ao + 4]))
                reserved4.add(bytes(r[1][ao + 4:ao + 8]))
            elif r[3] == 6:
                ao = r[4] + 8
                reserved6.add(bytes(r[1][ao + 12:ao + 16]))
                reserved6.add(bytes(r[1][ao + 28:ao + 32]))
    pool = AddressPool(reserved4, reserved6)

    unit = 1 if nano else 1000          # output timestamp resolution, ns
    mean_dur = sum(t.duration_ns for t in templates) / len(templates)
    stagger = max(unit, int(mean_dur / args.concurrency) // unit * unit)
    # Start time: the earliest first timestamp of any input (a real epoch).
    base_ns = min(t.first_ts for t in templates) // unit * unit
    rng = random.Random(args.seed)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp_path = args.out + ".tmp"

    # Instance schedule: rounds of all templates in a seeded random order.
    deck = []

    def next_template():
        if not deck:
            order = list(range(len(templates)))
            rng.shuffle(order)
            deck.extend(reversed(order))
        return templates[deck.pop()]

    hdr = struct.Struct("<IIII")
    pack_hdr = hdr.pack
    unpack_words = {}
    heap = []
    push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
    instances = {}
    scheduled = 0
    written = 0
    connections = 0
    n_instances = 0
    peak_live = 0
    k = 0
    next_start = base_ns
    more = True
    N = args.packets

    def start_instance(k, start_ns):
        nonlocal scheduled, connections
        t = next_template()
        limit = min(t.packets, N - scheduled)
        t.replays += 1
        if limit < t.packets:
            t.cut_replays += 1
        scheduled += limit
        connections += t.connections
        new = [pool.take(a) for a in t.client_addrs]
        deltas = [csum_delta(a[-4:], b) for a, b in zip(t.client_addrs, new)]
        instances[k] = (t.recipe, new, deltas, start_ns, limit)
        return t.recipe[0][0] + start_ns

    with open(tmp_path, "wb", buffering=1 << 20) as f:
        w = f.write
        w(struct.pack("<IHHiIII", MAGIC_NS if nano else MAGIC_US, 2, 4, 0, 0,
                      snaplen or 262144, linktype))
        while True:
            # Start every instance whose start time is due.
            while more and (not heap or next_start <= heap[0][0]):
                t0 = start_instance(k, next_start)
                push(heap, (t0, k, 0))
                n_instances += 1
                k += 1
                if scheduled >= N:
                    more = False
                else:
                    next_start = (base_ns + k * stagger
                                  + rng.randrange(0, stagger, unit))
            if not heap:
                break
            if len(heap) > peak_live:
                peak_live = len(heap)
            ts, kk, i = heap[0]
            recipe, new, deltas, start_ns, limit = instances[kk]
            rel, d, orig, kind, ip, ihl, rw, co, slot = recipe[i]
            if kind:
                b = bytearray(d)
                b[rw:rw + 4] = new[slot]
                if co >= 0:
                    c = ((b[co] << 8) | b[co + 1]) ^ 0xFFFF
                    c += deltas[slot]
                    c = (c & 0xFFFF) + (c >> 16)
                    c = (c & 0xFFFF) + (c >> 16)
                    c ^= 0xFFFF
                    b[co] = c >> 8
                    b[co + 1] = c & 0xFF
                if kind == 4:
                    b[ip + 10] = 0
                    b[ip + 11] = 0
                    fmt = unpack_words.get(ihl)
                    if fmt is None:
                        fmt = unpack_words[ihl] = struct.Struct(
                            "!%dH" % (ihl // 2)).unpack_from
                    s = sum(fmt(b, ip))
                    s = (s & 0xFFFF) + (s >> 16)
                    s = (s & 0xFFFF) + (s >> 16)
                    s ^= 0xFFFF
                    b[ip + 10] = s >> 8
                    b[ip + 11] = s & 0xFF
                d = b
            sec, frac = divmod(ts, 1_000_000_000)
            w(pack_hdr(sec, frac // unit, len(d), orig))
            w(d)
            written += 1
            i += 1
            if i < limit:
                replace(heap, (start_ns + recipe[i][0], kk, i))
            else:
                pop(heap)
                del instances[kk]
    os.replace(tmp_path, args.out)

    elapsed = time.monotonic() - t_start
    span_ns = (next_start - base_ns) + max(t.duration_ns for t in templates)
    meta = {
        "output": os.path.abspath(args.out),
        "packets": written,
        "bytes": os.path.getsize(args.out),
        "inputs": [t.path for t in templates],
        "replays_per_input": {t.path: t.replays for t in templates},
        "cut_replay": next((t.path for t in templates if t.cut_replays), None),
        "input_packets": sum(t.packets for t in templates),
        "input_connections": sum(t.connections for t in templates),
        "link_type": linktype,
        "timestamp_resolution": "ns" if nano else "us",
        "instances": n_instances,
        "tcp_connections_approx": connections,
        "concurrency_target": args.concurrency,
        "peak_live_instances": peak_live,
        "stagger_us": stagger / 1000,
        "approx_span_s": round(span_ns / 1e9, 1),
        "seed": args.seed,
        "key": key,
        "generator_seconds": round(elapsed, 2),
    }
    with open(args.out + ".meta.json", "w") as mf:
        json.dump(meta, mf, indent=2)
        mf.write("\n")
    print(f"wrote {written} packets ({meta['bytes'] / 1e6:.1f} MB) to "
          f"{args.out} in {elapsed:.1f} s: {n_instances} replays of "
          f"{len(templates)} inputs, ~{connections} TCP connections, "
          f"peak {peak_live} replays live, stagger {stagger / 1e6:.3f} ms",
          file=sys.stderr)

if __name__ == "__main__":
    main()
