"""Trace benchmark: one packet through a kube-proxy-shaped host with ~60k iptables rules.

Builds a node snapshot in code (eth0 192.168.0.10/24 with a default route, cni0 for the pod
network 10.244.0.0/16, ip_forward on) whose iptables dump is ``benchmarks/kubeproxy.py``'s
kube-proxy-shaped ruleset (5000 services x 3 endpoints by default), saves it as a gzip snapshot,
then measures in one process:

* loading the snapshot file (``load_snapshot``), as a user of ``journey trace`` would;
* the first trace after load (compiles the chains it visits);
* repeated traces of packets to other services (median), each visiting chains not seen before
  (KUBE-SVC-*/KUBE-SEP-* of that service) and the shared KUBE-SERVICES dispatch;
* the same packet traced again (everything compiled).

The target from the issue: one trace in a few milliseconds after load, under 1/100 of the load
time. Usage: ``python -m benchmarks.bench_trace [--services N] [--runs N]`` from the repo root.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kubeproxy import generate
from journey.engine.simulate import simulate
from journey.model import (
    Address,
    Backend,
    Family,
    HostSnapshot,
    Interface,
    PartState,
    PartStatus,
    Provenance,
    Route,
    RouteType,
)
from journey.packets.spec import parse_spec
from journey.snapshot.fileio import load_snapshot, save_snapshot
from journey.snapshot.iptables_save import parse_iptables_save


def node_snapshot(services: int) -> HostSnapshot:
    text = generate(services)
    dump = parse_iptables_save(text, source="iptables-save", family=Family.IPV4, backend=Backend.NFT)
    ip = ipaddress.ip_address
    net = ipaddress.ip_network
    ifs = (
        Interface(1, "lo", mtu=65536, flags=("LOOPBACK", "UP", "LOWER_UP"), operstate="UNKNOWN"),
        Interface(2, "eth0", "veth", "02:00:00:00:00:10", 1500, ("BROADCAST", "MULTICAST", "UP", "LOWER_UP"), "UP"),
        Interface(3, "cni0", "bridge", "02:00:00:00:00:20", 1500, ("BROADCAST", "MULTICAST", "UP", "LOWER_UP"), "UP"),
    )
    addrs = (
        Address(1, "lo", ip("127.0.0.1"), 8, "host"),
        Address(2, "eth0", ip("192.168.0.10"), 24),
        Address(3, "cni0", ip("10.244.0.1"), 16),
    )
    v4 = Family.IPV4
    routes = (
        Route(v4, 254, net("0.0.0.0/0"), gateway=ip("192.168.0.1"), dev="eth0", protocol="static"),
        Route(v4, 254, net("192.168.0.0/24"), dev="eth0", scope="link", protocol="kernel", prefsrc=ip("192.168.0.10")),
        Route(v4, 254, net("10.244.0.0/16"), dev="cni0", scope="link", protocol="kernel", prefsrc=ip("10.244.0.1")),
        Route(v4, 255, net("192.168.0.10/32"), RouteType.LOCAL, dev="eth0", scope="host", protocol="kernel", prefsrc=ip("192.168.0.10")),
        Route(v4, 255, net("10.244.0.1/32"), RouteType.LOCAL, dev="cni0", scope="host", protocol="kernel", prefsrc=ip("10.244.0.1")),
        Route(v4, 255, net("127.0.0.0/8"), RouteType.LOCAL, dev="lo", scope="host", protocol="kernel", prefsrc=ip("127.0.0.1")),
    )
    prov = Provenance("k8s-node", "6.18", "2026-11-25T00:00:00Z", "bench", 0, None, "live",
                      (PartStatus("iptables-v4-nft", PartState.COLLECTED),))
    return HostSnapshot(prov, interfaces=ifs, addresses=addrs, routes=routes,
                        sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.forwarding": "1",
                                 "net.ipv4.conf.eth0.forwarding": "1", "net.ipv4.conf.cni0.forwarding": "1"},
                        iptables=(dump,))


def service_spec(i: int) -> str:
    cip = ipaddress.IPv4Network("10.96.0.0/12")[1 + i]
    return f"in eth0 tcp 192.168.0.77:{40000 + i % 20000} > {cip}:{80 + i % 7} flags S"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=50)
    args = ap.parse_args()

    snap = node_snapshot(args.services)
    rules = sum(d.rule_count for d in snap.iptables)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "node.json.gz"
        save_snapshot(snap, path)
        del snap
        gc.collect()
        t0 = time.perf_counter()
        loaded = load_snapshot(path)
        load_s = time.perf_counter() - t0
    print(f"snapshot: {rules} iptables rules; load_snapshot {load_s * 1000:.0f} ms")

    first_pkt = parse_spec(service_spec(0))
    t0 = time.perf_counter()
    j = simulate(loaded, first_pkt)
    first_s = time.perf_counter() - t0
    print(f"first trace after load: {first_s * 1000:.1f} ms  ({j.verdict.disposition} {j.verdict.code}, "
          f"{sum(len(s.rules) for s in j.stages)} rules evaluated, {len(j.rules_hit)} hit)")

    other: list[float] = []
    for i in range(1, args.runs + 1):
        pkt = parse_spec(service_spec(i * 97 % args.services))
        t0 = time.perf_counter()
        simulate(loaded, pkt)
        other.append(time.perf_counter() - t0)
    med_other = statistics.median(other)
    print(f"trace, another service each time: median {med_other * 1000:.2f} ms "
          f"(min {min(other) * 1000:.2f}, max {max(other) * 1000:.2f}, {args.runs} packets)")

    same: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        simulate(loaded, first_pkt)
        same.append(time.perf_counter() - t0)
    med_same = statistics.median(same)
    print(f"trace, same packet again: median {med_same * 1000:.2f} ms")
    print(f"ratio trace/load: first {first_s / load_s:.4f}, other services {med_other / load_s:.4f} "
          f"(target < 0.01)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
