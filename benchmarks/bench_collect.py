"""Benchmark: live collection of a namespace holding 10 000 iptables rules (target < 2 s).

Builds a throwaway namespace (name ``jtco-...``, deleted afterwards) with ``--rules`` iptables-nft
rules (v4, spread over user chains, with a mix of matches) plus 1 000 ip6tables rules, a few
routes and a socket, then times ``collect(netns=...)`` (median of ``--runs``). Needs root.

    python benchmarks/bench_collect.py [--rules 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def ruleset(n: int, family: int) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    chains = max(1, n // 500)
    lines += [f":C{c} - [0:0]" for c in range(chains)]
    lines += [f"-A INPUT -j C{c}" for c in range(chains)]
    for i in range(n - chains):
        c = i % chains
        if family == 4:
            src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}/32"
        else:
            src = f"fd00::{i:x}/128"
        kind = i % 4
        if kind == 0:
            lines.append(f"-A C{c} -s {src} -p tcp -m tcp --dport {1 + i % 65000} -j ACCEPT")
        elif kind == 1:
            lines.append(f"-A C{c} -s {src} -p udp -m udp --sport {1 + i % 65000} -j DROP")
        elif kind == 2:
            lines.append(f'-A C{c} -s {src} -m comment --comment "rule {i}" -j RETURN')
        else:
            lines.append(f"-A C{c} -s {src} -p tcp -m multiport --dports 80,443,{1 + i % 60000}"
                         " -m conntrack --ctstate NEW -j ACCEPT")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_collect: needs root (network namespaces)", file=sys.stderr)
        return 2
    from kernelutil import Netns

    from journey.snapshot.collect import collect

    with Netns("co") as ns:
        ns.ip("link add va0 type veth peer name vb0")
        ns.ip("link set va0 up")
        ns.ip("addr add 10.99.0.1/24 dev va0")
        t = time.perf_counter()
        ns.restore("iptables-restore", ruleset(args.rules, 4))
        ns.restore("ip6tables-restore", ruleset(1000, 6))
        print(f"loaded {args.rules} + 1000 rules in {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        collect(ns.name)  # first run: includes importing pyroute2 and the parsers
        first = time.perf_counter() - t
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            snap = collect(ns.name)
            times.append(time.perf_counter() - t)
        rules = sum(d.rule_count for d in snap.iptables)
        bad = [p for p in snap.provenance.parts if p.state.value != "collected"]
        print(f"collect(netns) with {rules} iptables rules: median {statistics.median(times):.3f} s"
              f" (min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs; first run with"
              f" imports {first:.3f} s)")
        if bad:
            print("not collected:", ", ".join(f"{p.name} ({p.reason})" for p in bad))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
