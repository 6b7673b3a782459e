"""The walker's lazy compilation (a chain's address index from a cheap scan, a rule compiled when
first evaluated, compiled matches shared between rules) gives exactly what compiling every rule
up front gives: same stages, rule evaluations, verdicts; and ``parse_net``'s fast path gives what
``ipaddress`` gives."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from benchmarks.bench_trace import node_snapshot, service_spec
from journey.engine.netfilter import Hook, HookContext, build_pipeline, run_hook
from journey.engine.netfilter.matches import BadOption, parse_net
from journey.engine.netfilter.walker import CTable, compile_eagerly
from journey.engine.simulate import simulate
from journey.model.family import Family
from journey.model.packet import Packet
from journey.model.ruleset import Backend
from journey.model.snapshot import HostSnapshot
from journey.packets.spec import parse_spec
from journey.snapshot.iptables_save import parse_iptables_save

Snaps = tuple[HostSnapshot, HostSnapshot, HostSnapshot]


def _refs(snap: HostSnapshot) -> Snaps:
    """(lazy, full compile with the address index (as before lazy compilation), full compile
    without index (every rule evaluated)): three snapshot objects, each with its own pipeline."""
    full = replace(snap)
    plain = replace(snap)
    assert full is not snap and plain is not snap
    compile_eagerly(full, build_pipeline(full))
    compile_eagerly(plain, build_pipeline(plain), index=False)
    return snap, full, plain


@pytest.fixture(scope="module")
def kube() -> Snaps:
    return _refs(node_snapshot(300))


KUBE_SPECS = [
    *(service_spec(i) for i in (0, 1, 2, 49, 99, 150, 257, 299)),  # ClusterIPs (49, 99: no endpoints)
    "in eth0 tcp 192.168.0.77:40000 > 10.96.0.2:81 flags S",  # ClusterIP, wrong port
    "in eth0 tcp 192.168.0.77:40000 > 10.96.0.1:80 flags A",  # not a first packet
    "in eth0 udp 192.168.0.77:40000 > 10.96.0.5:84",
    "in eth0 icmp 192.168.0.77 > 10.96.0.7 type echo-request",
    "in eth0 tcp 192.168.0.77:40000 > 203.0.113.1:80 flags S",  # LoadBalancer IP
    "in eth0 tcp 198.51.100.9:40000 > 203.0.113.2:80 flags S",  # allowed LB source range
    "in eth0 tcp 192.168.0.77:40000 > 192.168.0.10:30000 flags S",  # NodePort
    "in eth0 tcp 192.168.0.77:40000 > 192.168.0.10:30147 flags S",  # NodePort, no endpoints
    "in eth0 tcp 192.168.0.77:40000 > 192.168.0.10:22 flags S",  # the node itself
    "in cni0 tcp 10.244.0.2:40000 > 10.96.0.1:80 flags S",  # from a pod (hairpin: masquerade)
    "in eth0 tcp 192.168.0.77:40000 > 10.99.99.99:80 flags S",  # no such service
    "in eth0 tcp 192.168.0.77:40000 > 10.244.3.4:8080 flags S",  # straight to a pod
]


@pytest.mark.parametrize("spec", KUBE_SPECS)
def test_kube_proxy_lazy_equals_full_compile(kube: Snaps, spec: str) -> None:
    a = simulate(kube[0], parse_spec(spec))
    for ref in kube[1:]:
        b = simulate(ref, parse_spec(spec))
        assert [s.rules for s in a.stages] == [s.rules for s in b.stages]
        assert a.stages == b.stages
        assert a.verdict == b.verdict
        assert a.rules_hit == b.rules_hit
        assert a == b


def test_kube_proxy_sequence_and_repeat(kube: Snaps) -> None:
    """Later packets (memoised evaluations, compiled rules reused) stay identical too."""
    lazy, full, plain = kube
    for spec in [*KUBE_SPECS, *reversed(KUBE_SPECS)]:
        a = simulate(lazy, parse_spec(spec))
        assert a == simulate(full, parse_spec(spec)) == simulate(plain, parse_spec(spec))


def test_dispatch_chain_compiled_lazily() -> None:
    """One trace compiles only the rules it evaluates: not the 300 ClusterIP rules it skips."""
    snap = node_snapshot(300)
    simulate(snap, parse_spec(service_spec(150)))
    table = build_pipeline(snap).compiled[("ip", "nft", "nat")]
    assert isinstance(table, CTable)
    chain = table.compiled["KUBE-SERVICES"]
    assert chain.runs and len(chain.rules) > 300
    compiled = sum(r is not None for r in chain.rules)
    assert 1 <= compiled <= 3


# -- spellings the cheap scan must read exactly as compile_match does ----------------------------

def _runs(odd: list[str], normal: str, n: int) -> list[str]:
    """Each odd spelling inside a run of ordinary exact-host rules (where the index would use it)."""
    out: list[str] = []
    for o in odd:
        out += [f"-A INPUT {normal.format(k)}" for k in range(1, n + 1)]
        out.append(f"-A INPUT {o}")
        out += [f"-A INPUT {normal.format(k)}" for k in range(n, 0, -1)]
    return out


V4_ODD = ["-d 10.0.0.3", "-d 10.0.0.4/255.255.255.255", "-d 10.0.0.4/032", "-d 10.0.0.8/24",
          "-m comment --comment first -d 10.0.0.2/32", "-d 010.0.0.1/32", "! -d 10.0.0.5/32",
          "-d 10.0.0.6/32,10.0.0.7/32", "-p tcp -d 10.0.0.9/32", "-s 192.0.2.1/32",
          "-d 10.0.0.300/32", "-d 10.0.0.1/33", "-d 10.0.0.9/31", "-d 0.0.0.0/0",
          "-d 10.0.0.77/32 -p udp", "-d 10.0.0.2/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0x1",
          "-d 2001:db8::1/128", "-d 10.0.0.9/0.0.0.0", "-d 10.0.0.9/255.255.255.0"]
V4_RULES = [*_runs(V4_ODD, "-d 10.0.0.{}/32", 6), *_runs(["-s 192.0.2.5"], "-s 192.0.2.{}/32", 6),
            *(f"-A INPUT -s 192.0.2.{k}/32 -d 10.0.0.{k}/32" for k in range(1, 10))]
V6_ODD = ["-d 2001:DB8::2/128", "-d 2001:db8:0::3/128", "-d 2001:0db8::4", "-d ::ffff:10.0.0.1/128",
          "-d 2001:db8::5/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "-d 10.0.0.1/32",
          "-d 2001:db8::9/127", "-d 2001:db8::/64", "-d 2001:db8::3", "-d fe80::1%eth0/128"]
V6_RULES = _runs(V6_ODD, "-d 2001:db8::{}/128", 5)


def _edge_snaps() -> Snaps:
    base = node_snapshot(1)
    v4 = "*filter\n:INPUT ACCEPT [0:0]\n" + "\n".join(V4_RULES) + "\nCOMMIT\n"
    v6 = "*filter\n:INPUT ACCEPT [0:0]\n" + "\n".join(V6_RULES) + "\nCOMMIT\n"
    dumps = (parse_iptables_save(v4, source="iptables-save", family=Family.IPV4, backend=Backend.NFT),
             parse_iptables_save(v6, source="ip6tables-save", family=Family.IPV6, backend=Backend.NFT))
    return _refs(replace(base, iptables=dumps))


def _pkt(src: str, dst: str, proto: int = 6) -> Packet:
    fam = Family.IPV6 if ":" in dst else Family.IPV4
    ports = (40000, 80) if proto in (6, 17) else (None, None)
    return Packet(family=fam, proto=proto, src=ipaddress.ip_address(src), dst=ipaddress.ip_address(dst),
                  sport=ports[0], dport=ports[1], tcp_flags="S" if proto == 6 else "")


EDGE_PACKETS = [
    *(_pkt(f"192.0.2.{k}", f"10.0.0.{d}", p) for k in (1, 5, 50) for d in (1, 2, 3, 4, 5, 8, 9, 77)
      for p in (6, 17)),
    *(_pkt("2001:db8:9::1", f"2001:db8::{d}") for d in (1, 2, 3, 4, 5, 9)),
    _pkt("2001:db8:9::1", "::ffff:10.0.0.1"),
]


@pytest.mark.parametrize("pkt", EDGE_PACKETS, ids=lambda p: f"{p.src}>{p.dst}/{p.proto}")
def test_address_spellings_lazy_equals_full_compile(pkt: Packet) -> None:
    outs = []
    for snap in _edge_snaps():
        for _ in range(2):  # first walk and memoised walk
            ctx = HookContext(Hook.INPUT, "eth0", None, None)
            outs.append(run_hook(snap, build_pipeline(snap), pkt, ctx))
    assert outs[0].stages[0].rules == outs[2].stages[0].rules == outs[4].stages[0].rules
    assert all(o == outs[0] for o in outs)
    assert len(outs[0].stages[0].rules) == len(V6_RULES if pkt.family is Family.IPV6 else V4_RULES)


def _old_parse_net(s: str, family: Family) -> tuple[int, int]:
    """parse_net as it was before its fast path (ipaddress only)."""
    bits = 32 if family is Family.IPV4 else 128
    full = (1 << bits) - 1
    try:
        if "/" in s:
            a, m = s.split("/", 1)
            addr = ipaddress.ip_address(a)
            if m.isdigit():
                plen = int(m)
                mask = (full << (bits - plen)) & full if plen else 0
            else:
                mask = int(ipaddress.ip_address(m))
        else:
            addr = ipaddress.ip_address(s)
            mask = full
    except ValueError:
        raise BadOption(f"not an address: {s!r} (host names are not resolved)") from None
    if addr.version != family.version:
        raise BadOption(f"{s} is not an IPv{family.version} address")
    return int(addr) & mask, mask


NETS = ["10.0.0.1", "10.0.0.1/32", "10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "10.0.0.1/0",
        "255.255.255.255/32", "10.0.0.0/255.0.0.0", "10.0.0.0/255.0.255.0", "10.0.0.1/032",
        "10.0.0.1/33", "10.0.0.1/", "010.0.0.1", "10.0.0.256", "10.0.0", "10.0.0.1.2", " 10.0.0.1",
        "10.0.0.1 ", "1.2.3.4/24/1", "host.example", "", "/32", "10.0.0.1/255.255.255.256",
        "10.0.0.1/::ffff", "10.0.0.1/²", "१.2.3.4", "10.0.0.1/-1", "0x0a.0.0.1",
        "2001:db8::1", "2001:db8::1/128", "2001:DB8::1/64", "2001:db8:0:0:0:0:0:1", "::",
        "::/0", "::ffff:10.0.0.1", "::1.2.3.4", "fe80::1%eth0", "2001:db8::1/129",
        "2001:db8::/ffff::", "2001:db8:::1", "2001:0db8::1", "10.0.0.1/ffff::"]


@pytest.mark.parametrize("family", [Family.IPV4, Family.IPV6])
def test_parse_net_fast_path_equals_ipaddress(family: Family) -> None:
    for s in NETS:
        try:
            want: object = _old_parse_net(s, family)
        except BadOption as e:
            want = str(e)
        try:
            got: object = parse_net(s, family)
        except BadOption as e:
            got = str(e)
        assert got == want, s
