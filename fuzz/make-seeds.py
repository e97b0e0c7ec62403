#!/usr/bin/env python3
"""Writes the seed corpus fuzz/seeds/<target>/ from the repository's real captures.

Run from the repository root: python3 fuzz/make-seeds.py (needs tshark for the HTTP, TLS and
HTTP/2 conversations). Each seed is in the input format of its target (see fuzz/src/lib.rs):

- pcap: one byte choosing the magic, then the file after its magic (captures over 60 KiB
  are cut to their first frames);
- pcapng: the file after its first four bytes;
- pipe, analyzer: whole files of either format;
- decode: one byte choosing the link type, then one frame (the first frames of captures of
  every link type and encapsulation the fixtures have);
- reassembly: a few hand-made operation lists;
- http, tls, h2: the TCP payloads of one connection as a conversation of records
  (control byte, u16 length, bytes), taken with tshark from the fixtures.
"""

import glob
import os
import random
import shutil
import struct
import subprocess
import sys

ROOT = os.getcwd()
OUT = os.path.join(ROOT, "fuzz", "seeds")
LIMIT = 60 * 1024
PCAP_MAGICS = [0xA1B2C3D4, 0xD4C3B2A1, 0xA1B23C4D, 0x4D3CB2A1, 0xA1B2CD34, 0x34CDB2A1]
LINKTYPES = [1, 113, 276, 0, 108, 12, 14, 101, 228, 229]


def captures():
    paths = sorted(
        glob.glob("fixtures/**/*.pcap", recursive=True)
        + glob.glob("fixtures/**/*.pcapng", recursive=True)
        + glob.glob("tests/corpus/**/*.pcap", recursive=True)
        + glob.glob("tests/corpus/**/*.pcapng", recursive=True)
    )
    seen = set()
    for p in paths:
        data = open(p, "rb").read()
        if data in seen or "/source." in p:
            continue
        seen.add(data)
        yield p, data


def pcap_records(data):
    """(endian, linktype, header, [record bytes]) of a classic pcap, or None."""
    if len(data) < 24:
        return None
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in PCAP_MAGICS:
        return None
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34) else ">"
    linktype = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
    recs, pos = [], 24
    extra = 8 if magic in (0xA1B2CD34, 0x34CDB2A1) else 0
    while pos + 16 <= len(data):
        incl = struct.unpack(e + "I", data[pos + 8 : pos + 12])[0]
        end = pos + 16 + extra + incl
        if end > len(data):
            break
        recs.append(data[pos:end])
        pos = end
    return e, linktype, data[:24], recs, extra


def cut(data):
    """The capture, cut to its first frames so that it fits the targets' max_len."""
    if len(data) <= LIMIT:
        return data
    parsed = pcap_records(data)
    if not parsed:
        return None
    _, _, head, recs, _ = parsed
    out = bytearray(head)
    for r in recs:
        if len(out) + len(r) > LIMIT:
            break
        out += r
    return bytes(out)


def name(path):
    return path.replace("/", "_").replace("fixtures_", "").replace("tests_corpus_", "")


def write(target, fname, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data)


def files():
    budget = {"pcap": 0, "pcapng": 0, "pipe": 0, "analyzer": 0}
    for path, data in captures():
        small = cut(data)
        if small is None or len(small) > LIMIT:
            continue
        n = name(path)
        magic = struct.unpack("<I", small[:4])[0]
        if magic in PCAP_MAGICS and budget["pcap"] < 400_000:
            write("pcap", n, bytes([PCAP_MAGICS.index(magic)]) + small[4:])
            budget["pcap"] += len(small)
        if magic == 0x0A0D0D0A and budget["pcapng"] < 400_000:
            write("pcapng", n, small[4:])
            budget["pcapng"] += len(small)
        # pipe and analyzer: the smaller files of both formats.
        for t in ("pipe", "analyzer"):
            if len(small) <= 24 * 1024 and budget[t] < 200_000:
                write(t, n, small)
                budget[t] += len(small)


def frames():
    by_kind = {}
    for path, data in captures():
        parsed = pcap_records(data)
        if not parsed:
            continue
        _, linktype, _, recs, extra = parsed
        if linktype not in LINKTYPES:
            continue
        for r in recs[:6]:
            frame = r[16 + extra :]
            # One seed per (link type, first bytes after the link header).
            key = (linktype, frame[12:14] if linktype == 1 else frame[:2], len(frame) > 100)
            if key in by_kind:
                continue
            by_kind[key] = bytes([LINKTYPES.index(linktype)]) + frame
    for i, (key, seed) in enumerate(sorted(by_kind.items())):
        write("decode", "frame-%03d-lt%d" % (i, key[0]), seed)
    # filter: an expression, a NUL, then a frame as for decode.
    exprs = [
        "tcp port 80", "host 127.0.0.1 and not port 9000", "src net 10.0.0.0/8 or dst portrange 1-1024",
        "ip6 and (udp or icmp6)", "not (tcp[13] & 2 != 0)", "net 10.1 mask 255.255.0.0", "arp or rarp",
        "ip proto 6 && !src host ::1", "port http or 443 or domain", "(((tcp)))",
    ]
    for i, (key, seed) in enumerate(sorted(by_kind.items())):
        write("filter", "expr-%03d-lt%d" % (i, key[0]), exprs[i % len(exprs)].encode() + b"\0" + seed)


def reassembly():
    rnd = random.Random(9)
    for i in range(24):
        isn = rnd.choice([0, 1000, 0xFFFFFF00, 0x7FFFFFFF, rnd.getrandbits(32)]) & ~1
        cap = rnd.choice([0, 64, 1024, 65535])
        ops = bytearray(struct.pack("<IH", isn | (i % 5 == 4), cap))
        off = 0
        for _ in range(rnd.randint(2, 30)):
            k = rnd.random()
            if k < 0.7:
                ln = rnd.randint(0, 255)
                o = off + rnd.choice([0, 0, 0, ln, -ln // 2, 300])
                cutb = rnd.choice([0, 0, 0, 10])
                op = rnd.randint(0, 4) | (0x40 if cutb else 0)
                ops += bytes([op]) + struct.pack("<hBB", max(-32768, min(32767, o)), ln, cutb)
                off = max(off, o + ln)
            elif k < 0.9:
                ops += bytes([5]) + struct.pack("<h", max(-32768, min(32767, off + rnd.randint(-50, 400))))
            else:
                ops += bytes([7])
        write("reassembly", "ops-%02d" % i, bytes(ops))


def conversations():
    """tcp payloads by connection, as records, from tshark."""
    sources = {
        "http": [
            "fixtures/keepalive-clean/capture.pcap",
            "fixtures/pipelined/capture.pcap",
            "fixtures/chunked/capture.pcap",
            "fixtures/odd-http/capture.pcap",
            "fixtures/hostile/capture.pcap",
            "fixtures/go-idle-race/capture.pcap",
            "fixtures/midstream/capture.pcap",
            "tests/corpus/zeek/Traces/http/http-desync-request-response-5.pcap",
            "tests/corpus/zeek/Traces/http/http-non-printable-characters.pcap",
            "tests/corpus/zeek/Traces/websocket/wstunnel-http.pcap",
            "tests/corpus/zeek/Traces/http/pipelined-requests.pcap",
        ],
        "tls": [
            "fixtures/tls13-go/capture.pcap",
            "fixtures/tls13-python/capture.pcap",
            "fixtures/tls12-python-split/capture.pcap",
            "fixtures/tls-idle-race/capture.pcap",
            "fixtures/tls-idle-race/tls13-sample/capture.pcap",
        ],
        "h2": ["fixtures/h2c-goaway/capture.pcap"],
    }
    for target, paths in sources.items():
        total = 0
        for path in paths:
            out = subprocess.run(
                [
                    "tshark", "-n", "-r", path, "-o", "tcp.desegment_tcp_streams:FALSE",
                    "-Y", "tcp", "-T", "fields", "-E", "separator=;",
                    "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.flags.syn",
                    "-e", "tcp.flags.ack", "-e", "tcp.flags.fin", "-e", "frame.time_relative",
                    "-e", "tcp.payload",
                ],
                capture_output=True, text=True, check=True,
            ).stdout
            convs = {}
            for line in out.splitlines():
                stream, sport, syn, ack, fin, t, payload = line.split(";")
                c = convs.setdefault(stream, {"client": None, "recs": bytearray(), "t": None, "first": b""})
                if c["client"] is None and (syn in ("1", "True") and ack in ("0", "False") or payload):
                    c["client"] = sport
                side = 0 if sport == c["client"] else 1
                t = float(t)
                ms = 0 if c["t"] is None else min(31, int((t - c["t"]) * 1000))
                c["t"] = t
                if payload:
                    b = bytes.fromhex(payload.replace(":", ""))
                    if not c["first"]:
                        c["first"] = b
                    c["recs"] += bytes([side | (ms << 3)]) + struct.pack("<H", len(b)) + b
                if fin in ("1", "True"):
                    c["recs"] += bytes([side | 6 | (ms << 3)]) + struct.pack("<H", 0)
            for stream, c in sorted(convs.items(), key=lambda kv: int(kv[0])):
                first = c["first"]
                is_tls = first[:1] in (b"\x16", b"\x17", b"\x15") and first[1:2] == b"\x03"
                is_h2 = first.startswith(b"PRI * HTTP/2.0")
                kind = "tls" if is_tls else "h2" if is_h2 else "http" if first else None
                # h2c upgrades start as HTTP/1.1: they are HTTP seeds as well as HTTP/2 ones.
                if kind != target and not (target == "h2" and kind == "http"):
                    continue
                recs = bytes(c["recs"][:16 * 1024])
                if not recs or total > 300_000:
                    continue
                write(target, "%s-%s" % (name(path), stream), recs)
                if target == "h2" and kind == "http":
                    write("http", "%s-%s" % (name(path), stream), recs)
                total += len(recs)


def escapes():
    samples = [
        "GET", "/index.html?a=1&b=<2>", "/adm\u200bin", "/a\x1b[2J\r\n\u202eb", "a|b`c`*_[x](y)#~&",
        "\"'<>&", "\u2028\u2029\u061c\u00ad\ufeff", "x" * 300, "/\U000e0041\U0001d173", "caf\u00e9 \u65e5\u672c",
    ]
    for i, s in enumerate(samples):
        write("escape", "text-%02d" % i, bytes([0]) + s.encode())
        cps = b"".join(struct.pack("<I", ord(c))[:3] for c in s)
        write("escape", "cps-%02d" % i, bytes([1 | (7 << 1)]) + cps)


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    files()
    frames()
    reassembly()
    conversations()
    escapes()
    for t in sorted(os.listdir(OUT)):
        d = os.path.join(OUT, t)
        n = os.listdir(d)
        print("%-10s %3d seeds %7d bytes" % (t, len(n), sum(os.path.getsize(os.path.join(d, f)) for f in n)))


if __name__ == "__main__":
    sys.exit(main())
