"""Load benchmark: parse and load a kube-proxy-sized iptables-save dump, against
``iptables-restore --test`` on the same text, in one run.

Generates a kube-proxy-shaped ruleset (``benchmarks/kubeproxy.py``, default 5000 services x 3
endpoints, about 60k rules), then measures, in rounds (one of each per round, so that a busy
machine slows all three alike), and reports medians:

* journey's ``parse_iptables_save`` on the text;
* a full snapshot load (``journey.snapshot.fileio.load_snapshot``) of a gzip snapshot holding
  that dump (read, gunzip, JSON, decode, parse);
* ``iptables-restore --test`` on the same text, inside a throwaway network namespace (named
  ``<prefix>-<random>``, deleted afterwards; needs root, skipped otherwise): the real tool's own
  parse + validation of the same input, the yardstick;

and the ratios parse / restore and load / restore (the target: load no slower than restore).
Each result is kept alive until its time is taken (freeing the previous one is not counted).

Usage: ``python -m benchmarks.bench_load [--services N] [--endpoints N] [--runs N]
[--netns-prefix P]`` (from the repository root).
"""

from __future__ import annotations

import argparse
import functools
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
from journey.model.snapshot import HostSnapshot, PartState, PartStatus, Provenance
from journey.snapshot import fileio
from journey.snapshot.iptables_save import parse_iptables_save


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    del result  # freed after the clock stopped
    return elapsed


def _parse(text: str) -> object:
    return parse_iptables_save(text, source="bench", family=Family.IPV4, backend=Backend.NFT)


def _write_snapshot(text: str, path: Path) -> None:
    dump = parse_iptables_save(text, source="iptables-save", family=Family.IPV4,
                               backend=Backend.NFT)
    prov = Provenance(hostname="bench", kernel="6.18", time="2026-11-24T00:00:00Z",
                      journey_version="0.1.0", uid=0, netns=None, origin="live",
                      parts=(PartStatus("iptables", PartState.COLLECTED),))
    fileio.save_snapshot(HostSnapshot(provenance=prov, iptables=(dump,)), path)


class _Restore:
    """``iptables-restore --test`` in a namespace of its own (None when not possible)."""

    def __init__(self, prefix: str) -> None:
        self.ns: str | None = None
        if os.geteuid() != 0 or shutil.which("ip") is None or \
                shutil.which("iptables-restore") is None:
            return
        self.ns = f"{prefix}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)

    def run(self, text: str, ns: str) -> None:
        res = subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--test"],
                             input=text, text=True, capture_output=True)
        if res.returncode != 0:
            raise RuntimeError(f"iptables-restore --test failed: {res.stderr.strip()[:300]}")

    def close(self) -> None:
        if self.ns is not None:
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def _line(what: str, times: list[float], extra: str = "") -> float:
    med = statistics.median(times)
    print(f"{what:28s} {med * 1000:8.1f} ms median of {len(times)} "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}){extra}")
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    ap.add_argument("--netns-prefix", default="jtpa-bench",
                    help="name prefix of the throwaway namespace (default jtpa-bench)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    text = generate(args.services, args.endpoints)
    print(f"generated {args.services} services x {args.endpoints} endpoints in "
          f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    dump = parse_iptables_save(text, source="bench", family=Family.IPV4, backend=Backend.NFT)
    rules = dump.rule_count
    shape = (f" for {rules} rules, {sum(len(t.chains) for t in dump.tables)} chains, "
             f"{len(text) / 1e6:.1f} MB")
    del dump

    parse_t: list[float] = []
    load_t: list[float] = []
    restore_t: list[float] = []
    restore = _Restore(args.netns_prefix)
    try:
        with tempfile.TemporaryDirectory(prefix="journey-bench-") as tmp:
            path = Path(tmp) / "kube.journey.json.gz"
            _write_snapshot(text, path)
            size = path.stat().st_size
            loaded = fileio.load_snapshot(path)  # warm-up, and a check of what it holds
            if sum(d.rule_count for d in loaded.iptables) != rules:
                raise RuntimeError("the loaded snapshot does not hold the rules it was saved with")
            del loaded
            for _ in range(args.runs):
                parse_t.append(_timed(lambda: _parse(text)))
                load_t.append(_timed(lambda: fileio.load_snapshot(path)))
                if restore.ns is not None:
                    restore_t.append(_timed(functools.partial(restore.run, text, restore.ns)))
    finally:
        restore.close()

    parse = _line("journey parse_iptables_save", parse_t, shape)
    load = _line("journey load_snapshot", load_t, f" for a {size / 1e6:.2f} MB gzip file")
    if not restore_t:
        print("iptables-restore --test      skipped (needs root, ip and iptables-restore)")
        return 0
    rest = _line("iptables-restore --test", restore_t, f" in netns {restore.ns}")
    # of medians (the figure); of minimums too, steadier on a busy machine
    print(f"ratio parse / iptables-restore --test: {parse / rest:.2f} "
          f"(of minimums {min(parse_t) / min(restore_t):.2f})")
    print(f"ratio load_snapshot / iptables-restore --test: {load / rest:.2f} "
          f"(of minimums {min(load_t) / min(restore_t):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
