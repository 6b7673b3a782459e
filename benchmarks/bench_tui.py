"""Benchmark the TUI: first frame time, and stage stepping latency (small and 60k-rule snapshots).

Usage: ``python benchmarks/bench_tui.py [--runs N] [--snapshot FILE]``

1. First frame: a fresh ``python`` process opens a bundled snapshot headlessly; measured from
   just before the process is spawned to (a) ``on_ready`` (first interactive frame) and (b) the
   snapshot shown on the Host screen. Median of ``--runs``.
2. Stepping: in-process (``run_test``), a journey simulated by the real engine is stepped
   with next/previous; the time of ``show()`` plus the refresh it triggers, median and max.
   Also on a snapshot whose iptables rules come from ``benchmarks/kubeproxy.py`` (~60k+ rules).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SNAPSHOT = ROOT / "captures" / "web01.json.gz"


def child_first_frame(snapshot: str) -> None:
    """Runs in the child process: print wall-clock times of on_ready and snapshot shown."""
    from journey.app import JourneyApp

    marks: dict[str, float] = {}

    class BenchApp(JourneyApp):
        def on_ready(self) -> None:
            marks["ready"] = time.time()
            self.watch(self, "snapshot", self._shown, init=True)

        def _shown(self, snap: object) -> None:
            if snap is not None:
                self.call_after_refresh(self._done)

        def _done(self) -> None:
            marks["shown"] = time.time()
            self.exit(0)

    BenchApp(snapshot).run(headless=True, size=(80, 24))
    print(json.dumps(marks))


def first_frame(snapshot: Path, runs: int) -> tuple[list[float], list[float]]:
    ready: list[float] = []
    shown: list[float] = []
    for _ in range(runs + 1):  # first run warms the .pyc / disk caches
        t0 = time.time()
        out = subprocess.run([sys.executable, __file__, "--child", str(snapshot)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        marks = json.loads(out.stdout.strip().splitlines()[-1])
        ready.append(marks["ready"] - t0)
        shown.append(marks["shown"] - t0)
    return ready[1:], shown[1:]


def kube_snapshot(base: object) -> tuple[object, str]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.kubeproxy import generate
    from journey.model.family import Family
    from journey.model.ruleset import Backend
    from journey.snapshot.iptables_save import parse_iptables_save

    text = generate(services=5000)
    dump = parse_iptables_save(text, source="kube-proxy (generated)", family=Family.IPV4,
                               backend=Backend.NFT)
    snap = dataclasses.replace(base, iptables=(dump,))  # type: ignore[type-var]
    svc = next(line for line in text.splitlines()
               if line.startswith("-A KUBE-SERVICES -d ") and "no endpoints" not in line)
    words = svc.split()
    dst = words[words.index("-d") + 1].split("/")[0]
    dport = words[words.index("--dport") + 1]
    return snap, f"{dst}:{dport}"


async def stepping(snap: object, spec: str, label: str) -> None:
    from journey.app import JourneyApp
    from journey.engine.simulate import simulate
    from journey.messages import Run
    from journey.packets.spec import parse_spec
    from journey.screens import JourneyScreen

    t0 = time.perf_counter()
    j = simulate(snap, parse_spec(spec), spec=spec)  # type: ignore[arg-type]
    sim = time.perf_counter() - t0
    rules = sum(d.rule_count for d in snap.iptables)  # type: ignore[attr-defined]
    app = JourneyApp(snapshot=snap, run=Run((j,)))  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        t1 = time.perf_counter()
        await pilot.press("3")
        await pilot.pause()
        open_s = time.perf_counter() - t1
        screen = app.screen
        assert isinstance(screen, JourneyScreen)
        times: list[float] = []
        n = len(j.stages)
        for rnd in range(3):
            order = list(range(n)) if rnd % 2 == 0 else list(reversed(range(n)))
            for i in order:
                t = time.perf_counter()
                screen.show(i)
                await pilot.pause()
                times.append(time.perf_counter() - t)
    print(f"{label}: {rules} rules, {n} stages; simulate {sim * 1000:.1f} ms; "
          f"open journey screen (precompute + first paint) {open_s * 1000:.0f} ms; "
          f"step median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"({len(times)} steps)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_first_frame(args.child)
        return
    ready, shown = first_frame(args.snapshot, args.runs)
    print(f"first frame ({args.snapshot.name}, {args.runs} runs): on_ready median "
          f"{statistics.median(ready) * 1000:.0f} ms (min {min(ready) * 1000:.0f}, max "
          f"{max(ready) * 1000:.0f}); snapshot shown median {statistics.median(shown) * 1000:.0f} ms")

    from journey.snapshot.fileio import load_snapshot

    base = load_snapshot(args.snapshot)
    addrs = [a for a in base.addresses if a.family.version == 4 and not a.address.is_loopback]
    iif = addrs[0].ifname if addrs else "eth0"
    dst = addrs[0].address if addrs else "192.0.2.10"
    asyncio.run(stepping(base, f"in {iif} tcp 198.51.100.7:40000 > {dst}:80", args.snapshot.name))
    kube, target = kube_snapshot(base)
    asyncio.run(stepping(kube, f"in {iif} tcp 10.244.1.5:40000 > {target}", "kube-proxy 5000 services"))


if __name__ == "__main__":
    main()
