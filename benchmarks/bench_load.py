"""Load benchmark: parse a kube-proxy-sized iptables-save dump, against iptables-restore --test.

Generates a kube-proxy-shaped ruleset (``benchmarks/kubeproxy.py``, default 5000 services x 3
endpoints, about 60k rules), then measures:

* journey's ``parse_iptables_save`` on the text (median of several runs);
* ``iptables-restore --test`` on the same text, inside a throwaway network namespace
  (``ip netns exec jtpa-bench-*``, deleted afterwards; needs root, skipped otherwise): the real
  tool's own parse + validation of the same input, as a yardstick;
* a full snapshot load (``journey.snapshot.fileio.load_snapshot``) of a gzip snapshot holding
  that dump, when that module is there.

Usage: ``python -m benchmarks.bench_load [--services N] [--endpoints N] [--runs N]``
(from the repository root). Prints one line per figure and the ratio journey / iptables.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kubeproxy import generate
from journey.model.family import Family
from journey.model.ruleset import Backend
from journey.snapshot.iptables_save import parse_iptables_save


def _median(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    times: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_parse(text: str, runs: int) -> float:
    med, times = _median(lambda: parse_iptables_save(text, source="bench", family=Family.IPV4,
                                                     backend=Backend.NFT), runs)
    dump = parse_iptables_save(text, source="bench", family=Family.IPV4, backend=Backend.NFT)
    print(f"journey parse_iptables_save: {med * 1000:8.1f} ms median of {runs} "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) for {dump.rule_count} rules, "
          f"{len(text) / 1e6:.1f} MB, {sum(len(t.chains) for t in dump.tables)} chains")
    return med


def bench_restore(text: str, runs: int) -> float | None:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables-restore") is None:
        print("iptables-restore --test: skipped (needs root, ip and iptables-restore)")
        return None
    ns = f"jtpa-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        def once() -> None:
            res = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--test"],
                                 input=text, text=True, capture_output=True)
            if res.returncode != 0:
                raise RuntimeError(f"iptables-restore --test failed: {res.stderr.strip()[:300]}")

        med, times = _median(once, runs)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    print(f"iptables-restore --test:     {med * 1000:8.1f} ms median of {runs} "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) in netns {ns}")
    return med


def bench_snapshot_load(text: str, runs: int) -> float | None:
    try:
        from journey.snapshot import fileio
    except ImportError:
        print("snapshot load: skipped (journey.snapshot.fileio not there yet)")
        return None
    from journey.model.snapshot import HostSnapshot, PartState, PartStatus, Provenance

    dump = parse_iptables_save(text, source="iptables-save", family=Family.IPV4,
                               backend=Backend.NFT)
    prov = Provenance(hostname="bench", kernel="6.18", time="2026-11-24T00:00:00Z",
                      journey_version="0.1.0", uid=0, netns=None, origin="live",
                      parts=(PartStatus("iptables", PartState.COLLECTED),))
    snap = HostSnapshot(provenance=prov, iptables=(dump,))
    with tempfile.TemporaryDirectory(prefix="jtpa-bench-") as tmp:
        path = Path(tmp) / "kube.journey.json.gz"
        fileio.save_snapshot(snap, path)
        size = path.stat().st_size
        med, times = _median(lambda: fileio.load_snapshot(path), runs)
        loaded = fileio.load_snapshot(path)
    print(f"snapshot load (load_snapshot): {med * 1000:6.1f} ms median of {runs} "
          f"(min {min(times) * 1000:.1f}) for a {size / 1e6:.2f} MB gzip file, "
          f"{sum(d.rule_count for d in loaded.iptables)} rules")
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    text = generate(args.services, args.endpoints)
    print(f"generated {args.services} services x {args.endpoints} endpoints in "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    parse = bench_parse(text, args.runs)
    restore = bench_restore(text, max(1, args.runs // 2))
    if restore:
        print(f"ratio journey / iptables-restore --test: {parse / restore:.2f}")
    bench_snapshot_load(text, max(1, args.runs // 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
