#!/usr/bin/env python3
"""dns_answer.py ADDR NAME=IPV4...: a minimal DNS name server for tests.

Listens on ADDR:53 (UDP) inside the test's own network namespace and
answers A queries for the given names; every other query gets NXDOMAIN
(AAAA for a known name: no error, no answer). It prints "dns ready" once
bound, one line per query, and exits after 600 s or when killed."""
import socket
import struct
import sys
import time


def parse_name(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels).lower(), off + 1


def answer(msg, table):
    qid, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1 or flags & 0x8000:
        return None
    name, off = parse_name(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    known = name in table
    rcode = 0 if known else 3
    ans = b""
    if known and qtype == 1 and qclass == 1:
        ans = (b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) +
               socket.inet_aton(table[name]))
    head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 1 if ans else 0, 0, 0)
    return name, qtype, head + question + ans


def main():
    addr = sys.argv[1]
    table = dict(a.lower().split("=", 1) for a in sys.argv[2:])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    s.settimeout(1.0)
    print("dns ready", flush=True)
    end = time.monotonic() + 600
    while time.monotonic() < end:
        try:
            msg, peer = s.recvfrom(512)
        except socket.timeout:
            continue
        try:
            r = answer(msg, table)
        except (IndexError, struct.error):
            continue
        if r is not None:
            print(f"query {r[0]} type {r[1]}", flush=True)
            s.sendto(r[2], peer)


if __name__ == "__main__":
    main()
