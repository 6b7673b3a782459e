"""Benchmark: a kube-proxy-sized native nft ruleset (~60k rules) — parse and trace times.

Translates helper A's kube-proxy-shaped iptables rules (``benchmarks/kubeproxy.py``,
``generate(services=N)``) with ``iptables-restore-translate -f FILE`` into an nft ruleset, loads
it into a throwaway namespace (``jtnt-...``, deleted afterwards), dumps ``nft -j list ruleset``
and measures:

- journey's parse of the JSON dump (``parse_nft_json``, with and without rendering rule text)
  vs ``nft -c -f FILE`` (nft's own parse + validation of the same ruleset, no commit);
- the per-packet trace time (``simulate`` on a snapshot holding only that native ruleset),
  for a packet to a ClusterIP near the end of KUBE-SERVICES, and for one matching nothing.

Needs root, iptables-restore-translate and nft.

    python benchmarks/bench_nft.py [--services 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _time(fn: object, runs: int) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    from benchmarks.kubeproxy import generate
    from tests.kernelutil import Netns

    ipt = generate(services=args.services)
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "kube.iptables"
        src.write_text(ipt)
        t = time.perf_counter()
        tr = subprocess.run(["iptables-restore-translate", "-f", str(src)], capture_output=True,
                            text=True, check=True)
        t_translate = time.perf_counter() - t
        # iptables-restore-translate 1.8.9 drops the "-p tcp" of kube-proxy's KUBE-SEP DNAT rules
        # ("-p tcp -m comment ... -m tcp -j DNAT --to-destination a:p" -> "counter dnat to a:p"),
        # which nft refuses ("transport protocol mapping is only valid after transport protocol
        # match"): put the protocol match back.
        nft_text = re.sub(r"^(add rule ip nat KUBE-SEP-\S+) counter dnat to",
                          r"\1 meta l4proto tcp counter dnat to", tr.stdout, flags=re.M)
        nft_file = Path(d) / "kube.nft"
        nft_file.write_text(nft_text)
        n_rules = sum(1 for ln in nft_text.splitlines() if ln.startswith("add rule"))
        untranslated = sum(1 for ln in nft_text.splitlines() if ln.startswith("# "))
        with Netns("nt") as ns:
            t = time.perf_counter()
            ns.exec(["nft", "-f", str(nft_file)], timeout=600)
            t_load = time.perf_counter() - t
            dump = ns.exec(["nft", "-j", "list", "ruleset"], timeout=600).stdout
            t_check = _time(lambda: ns.exec(["nft", "-c", "-f", str(nft_file)], timeout=600),
                            args.runs)
            from journey.snapshot.collect import collect

            snap = collect(netns=ns.name)
    from journey.engine.netfilter.nft_eval import native_ruleset
    from journey.engine.simulate import simulate
    from journey.model.snapshot import RawDump
    from journey.packets.spec import parse_spec
    from journey.snapshot.nft_json import parse_nft_json

    t_parse = _time(lambda: parse_nft_json(dump, render_text=False), args.runs)
    t_parse_text = _time(lambda: parse_nft_json(dump), args.runs)
    rs = parse_nft_json(dump, render_text=False)
    # the snapshot holds the translated tables as native tables (iptables-save does not see
    # them as its own: they were loaded with nft); drop iptables dumps so nothing is doubled
    from dataclasses import replace

    snap = replace(snap, iptables=(), raw=(*tuple(r for r in snap.raw if r.name != "nft -j list ruleset"), RawDump("nft -j list ruleset", dump, "nft -j list ruleset")))
    cips = re.findall(r"ip daddr (10\.\d+\.\d+\.\d+) .*jump KUBE-SVC", nft_text)
    target = cips[-1] if cips else "10.96.0.10"
    specs = [f"in lo tcp 10.244.1.5:40000 > {target}:80",
             "in lo tcp 10.244.1.5:40000 > 10.99.99.99:80"]
    t0 = time.perf_counter()
    native_ruleset(snap)
    t_first = time.perf_counter() - t0
    per: dict[str, float] = {}
    for spec in specs:
        pkt = parse_spec(spec)
        simulate(snap, pkt, spec=spec)  # compile the chains it visits
        per[spec] = _time(lambda pkt=pkt, spec=spec: simulate(snap, pkt, spec=spec), max(3, args.runs))
    j = simulate(snap, parse_spec(specs[0]), spec=specs[0])
    evaluated = sum(len(s.rules) for s in j.stages)
    print(f"services: {args.services}; iptables rules translated: {n_rules} nft rules "
          f"({untranslated} lines left as comments) in {t_translate:.2f} s")
    print(f"nft -f load: {t_load:.2f} s; nft -j dump: {len(dump) / 1e6:.1f} MB, "
          f"{rs.rule_count} rules in {len(rs.tables)} tables")
    print(f"nft -c -f (nft's parse + check): {t_check:.2f} s")
    print(f"journey parse_nft_json: {t_parse:.2f} s (with rule text: {t_parse_text:.2f} s)")
    print(f"first use in the engine (parse + table classification): {t_first:.2f} s")
    for spec, v in per.items():
        print(f"trace {spec!r}: {v * 1000:.1f} ms per packet")
    print(f"  ({evaluated} rules evaluated for the first packet; verdict "
          f"{j.verdict.disposition}, dst {j.verdict.packet.dst if j.verdict.packet else '-'})")
    _ = ipaddress
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
