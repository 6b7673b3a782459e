"""Benchmark: index a generated 100k-packet pcap (and pcapng) with ``journey.packets.pcap``.

Usage: ``python benchmarks/bench_pcap.py [--packets N] [--runs R]``. Prints packets/s (median).
The capture mixes IPv4/IPv6 TCP/UDP/ICMP over Ethernet, some with an 802.1Q tag, some IPv6
with a hop-by-hop header, and some IPv4 fragments; it is written with ``struct`` (no scapy).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import tempfile
import time
from pathlib import Path

from journey.packets.pcap import index_capture


def _frame(i: int) -> bytes:
    kind = i % 6
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02"
    if kind in (0, 1, 2, 5):
        proto = (6, 17, 1, 6)[(0, 1, 2, 5).index(kind)]
        if proto == 6:
            l4 = struct.pack("!HHIIBBHHH", 40000 + i % 20000, 443, i, 0, 0x50, 0x02, 65535, 0, 0)
        elif proto == 17:
            l4 = struct.pack("!HHHH", 5000 + i % 1000, 53, 8 + 12, 0) + b"x" * 12
        else:
            l4 = struct.pack("!BBHHH", 8, 0, 0, i & 0xFFFF, 1) + b"ping"
        frag = 0x2000 | 10 if kind == 5 and i % 12 == 5 else 0x4000
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, frag, 64, proto, 0,
                         socket.inet_aton(f"10.{i % 200}.{(i >> 8) % 250}.2"),
                         socket.inet_aton("192.0.2.10")) + l4
        if kind == 1:
            return eth + b"\x81\x00" + struct.pack("!H", 10) + b"\x08\x00" + ip
        return eth + b"\x08\x00" + ip
    proto = 6 if kind == 3 else 58
    l4 = (struct.pack("!HHIIBBHHH", 50000, 8080, i, 0, 0x50, 0x18, 65535, 0, 0) + b"GET /"
          if proto == 6 else struct.pack("!BBHHH", 128, 0, 0, 7, i & 0xFFFF))
    hbh = struct.pack("!BB6s", proto, 0, b"\x01\x04\x00\x00\x00\x00")
    ip6 = struct.pack("!IHBB16s16s", 0x60000000, len(hbh) + len(l4), 0, 64,
                      socket.inet_pton(socket.AF_INET6, "fd99::2"),
                      socket.inet_pton(socket.AF_INET6, "fd99::1")) + hbh + l4
    return eth + b"\x86\xdd" + ip6


def write_pcap(path: Path, n: int) -> None:
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(n):
            data = _frame(i)
            f.write(struct.pack("<IIII", 1_700_000_000 + i // 1000, i % 1000 * 1000, len(data), len(data)))
            f.write(data)


def write_pcapng(path: Path, n: int) -> None:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        length = len(body) + 12
        return struct.pack("<II", btype, length) + body + struct.pack("<I", length)

    with path.open("wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(1, struct.pack("<HHI", 1, 0, 65535)))
        for i in range(n):
            data = _frame(i)
            ts = (1_700_000_000 + i // 1000) * 1_000_000 + i % 1000 * 1000
            f.write(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data))


def bench(path: Path, runs: int) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        cap = index_capture(path)
        times.append(time.perf_counter() - t0)
        count = len(cap.frames)
    return statistics.median(times), count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for name, writer in (("pcap", write_pcap), ("pcapng", write_pcapng)):
            path = Path(d) / f"bench.{name}"
            writer(path, args.packets)
            secs, count = bench(path, args.runs)
            mb = path.stat().st_size / 1e6
            print(f"{name:7s} {count} packets ({mb:.1f} MB): median {secs * 1000:.0f} ms "
                  f"= {count / secs:,.0f} packets/s")


if __name__ == "__main__":
    main()
