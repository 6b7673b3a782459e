"""The routing engine against the kernel: ``ip -j route get`` in a namespace is the judge.

A router namespace gets five veths (one with no carrier), several tables, policy rules with
every selector and action, special route types, IPv4 and IPv6, and per-interface rp_filter /
forwarding / accept_local settings. The snapshot is taken with ``journey.snapshot.collect``;
then each query is asked of the kernel (``ip -j route get ...``) and of ``route_input`` /
``route_output``, and the answers are compared: error, route type, output device, gateway,
source address (output) and table. A second phase changes sysctls and compares again.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kernelutil import Netns, namespaces, require_kernel, veth

from journey.engine.routing import (
    RouteDecision,
    RouteKind,
    route_input,
    route_output,
    select_source,
)
from journey.model.family import Family
from journey.model.packet import Packet
from journey.model.snapshot import HostSnapshot, table_name

pytestmark = pytest.mark.kernel

ERRORS = {
    "Network is unreachable": "ENETUNREACH",
    "No route to host": "EHOSTUNREACH",
    "Permission denied": "EACCES",
    "Invalid argument": "EINVAL",
    "No such device": "ENODEV",
}

SETUP_V4 = """
ip addr add 10.10.0.1/24 dev v0
ip addr add 10.11.0.1/24 dev v1
ip addr add 10.11.0.9/24 dev v1
ip addr add 192.168.77.1/24 dev v1
ip addr add 10.12.0.1/24 dev v2
ip addr add 10.13.0.1/24 dev v3
ip addr add 10.14.0.1/24 dev v4
ip route add default via 10.10.0.2 dev v0
ip route add 10.50.0.0/16 via 10.11.0.2
ip route add 10.50.1.0/24 via 10.10.0.2 metric 50
ip route add 10.50.1.0/24 via 10.11.0.2 metric 10
ip route add 10.60.0.0/16 tos 0x10 via 10.11.0.2
ip route add 10.60.0.0/16 via 10.10.0.2
ip route add blackhole 10.66.0.0/16
ip route add unreachable 10.67.0.0/16
ip route add prohibit 10.68.0.0/16
ip route add 10.70.0.0/16 nexthop via 10.10.0.2 weight 1 nexthop via 10.11.0.2 weight 2
ip route add 10.30.0.0/16 via 10.13.0.2 dev v3 metric 100
ip route add 10.30.0.0/16 via 10.10.0.2 metric 200
ip route add 10.80.0.0/16 dev v1
ip route add 10.81.0.0/16 via 192.168.77.2 dev v1
ip route add 10.82.0.0/16 via 10.10.0.2 src 10.11.0.1
ip route add 10.90.0.0/16 via 10.12.0.2
ip route add 10.50.0.0/16 via 10.12.0.2 table 100
ip route add default via 10.12.0.2 table 100
ip route add throw 10.50.9.0/24 table 100
ip route add prohibit 10.55.0.0/16 table 200
ip route add 10.56.0.0/16 via 10.12.0.2 table 200
ip route add default via 10.11.0.2 table 200
ip route add 10.57.0.0/16 via 10.11.0.2 table 300
ip route add 10.58.0.0/16 via 10.12.0.2 table 400
ip route add default via 10.12.0.2 table 400
ip rule add pref 100 from 10.12.0.0/24 lookup 100
ip rule add pref 110 to 10.50.5.0/24 lookup 100
ip rule add pref 120 fwmark 0x10/0xff lookup 200
ip rule add pref 130 iif v2 lookup 100
ip rule add pref 140 oif v1 lookup 300
ip rule add pref 145 iif lo to 10.57.128.0/17 lookup 100
ip rule add pref 150 ipproto tcp dport 443 lookup 200
ip rule add pref 155 ipproto udp sport 1000-2000 lookup 300
ip rule add pref 160 uidrange 1000-1999 lookup 200
ip rule add pref 170 tos 0x10 lookup 300
ip rule add pref 180 not to 10.0.0.0/8 lookup 200
ip rule add pref 190 to 10.51.0.0/16 goto 250
ip rule add pref 200 to 10.51.0.0/16 lookup 200
ip rule add pref 250 to 10.51.0.0/16 lookup 100
ip rule add pref 260 to 10.52.0.0/16 nop
ip rule add pref 270 to 10.53.0.0/16 blackhole
ip rule add pref 280 to 10.54.0.0/16 unreachable
ip rule add pref 290 to 10.59.0.0/16 prohibit
ip rule add pref 300 lookup 400 suppress_prefixlength 0
ip rule add pref 310 from 10.10.0.0/25 lookup 100
"""

SETUP_V6 = """
ip -6 addr add fd10::1/64 dev v0 nodad
ip -6 addr add fd11::1/64 dev v1 nodad
ip -6 addr add fd12::1/64 dev v2 nodad
ip -6 route add default via fd10::2 dev v0
ip -6 route add fd50::/48 via fd11::2
ip -6 route add fd50:1::/64 via fd10::2 metric 50
ip -6 route add fd50:1::/64 via fd11::2 metric 10
ip -6 route add blackhole fd66::/48
ip -6 route add unreachable fd67::/48
ip -6 route add prohibit fd68::/48
ip -6 route add throw fd51:9::/64 table 100
ip -6 route add fd51::/48 via fd12::2 table 100
ip -6 route add default via fd12::2 table 100
ip -6 rule add pref 100 to fd51::/48 lookup 100
ip -6 rule add pref 120 fwmark 0x20 lookup 100
ip -6 rule add pref 130 from fd10::/120 lookup 100
ip -6 rule add pref 140 to fd53::/48 unreachable
ip -6 rule add pref 150 ipproto tcp dport 22 lookup 100
ip -6 rule add pref 160 iif v2 lookup 100
"""

SYSCTLS = {
    "net.ipv4.conf.all.forwarding": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv4.conf.v4.forwarding": "0",
    "net.ipv4.conf.v1.rp_filter": "1",
    "net.ipv4.conf.v2.rp_filter": "2",
}

# (query as `ip route get` takes it) - phase 1
CASES_1 = [
    # output, IPv4
    "10.50.1.1", "10.50.5.5", "10.50.7.7", "10.50.8.8 from 10.10.0.1", "10.50.9.9 from 10.10.0.1",
    "10.50.9.9 from 10.11.0.1", "10.60.1.1", "10.60.1.1 tos 0x10", "10.56.1.1 mark 0x10",
    "10.56.1.1 mark 0x110", "10.56.1.1 mark 0x11", "10.55.1.1 mark 0x10",
    "10.56.1.1 ipproto tcp dport 443", "10.56.1.1 ipproto tcp dport 80",
    "10.57.1.1 ipproto udp sport 1500", "10.57.1.1 ipproto udp sport 999",
    "10.56.1.1 uid 1500", "10.56.1.1 uid 0", "10.57.1.1 oif v1", "10.57.1.1 oif v0",
    "10.57.1.1 oif v2", "10.57.200.1", "10.51.1.1", "10.52.1.1", "10.53.1.1", "10.54.1.1",
    "10.59.1.1", "10.66.1.1", "10.67.1.1", "10.68.1.1", "10.58.1.1", "10.99.1.1", "8.8.8.8",
    "10.70.1.1", "10.30.1.1", "10.80.1.1", "10.81.1.1", "10.82.1.1", "10.10.0.1", "10.10.0.255",
    "127.0.0.5", "10.11.0.9", "10.50.1.1 from 10.99.99.99", "255.255.255.255", "224.1.2.3",
    "10.12.0.7 from 10.12.0.1", "192.168.77.5", "10.66.1.1 oif v0",
    "10.50.1.1 from 10.11.0.9", "10.20.0.1 oif v4", "10.55.1.1 mark 0x10 oif v0",
    "10.14.0.9 oif v0", "10.50.1.1 from 127.0.0.1", "224.0.0.5 oif v2", "224.0.0.5",
    # input, IPv4
    "10.50.1.1 from 10.10.0.200 iif v0", "10.50.8.8 from 10.10.0.2 iif v0",
    "10.50.9.9 from 10.10.0.2 iif v0", "10.50.5.5 from 10.10.0.200 iif v0",
    "10.10.0.1 from 10.10.0.200 iif v0", "10.11.0.1 from 10.10.0.200 iif v0",
    "10.10.0.255 from 10.10.0.200 iif v0", "255.255.255.255 from 10.10.0.200 iif v0",
    "10.66.1.1 from 10.10.0.200 iif v0", "10.67.1.1 from 10.10.0.200 iif v0",
    "10.68.1.1 from 10.10.0.200 iif v0", "10.53.1.1 from 10.10.0.200 iif v0",
    "10.54.1.1 from 10.10.0.200 iif v0", "10.59.1.1 from 10.10.0.200 iif v0",
    "10.56.1.1 from 10.10.0.200 iif v0 mark 0x10", "10.51.1.1 from 10.10.0.200 iif v0",
    "10.57.200.1 from 10.10.0.200 iif v0", "10.50.1.1 from 10.12.0.2 iif v2",
    "10.50.1.1 from 10.14.0.2 iif v4", "10.14.0.1 from 10.14.0.2 iif v4",
    "10.50.1.1 from 10.10.0.5 iif v1", "10.50.1.1 from 10.11.0.5 iif v1",
    "10.11.0.1 from 10.10.0.5 iif v1", "10.50.1.1 from 10.10.0.5 iif v2",
    "10.50.1.1 from 10.66.0.5 iif v2", "10.50.1.1 from 172.31.0.5 iif v2",
    "10.10.0.1 from 10.10.0.1 iif v0", "10.10.0.1 from 10.11.0.1 iif v0",
    "10.10.0.1 from 127.0.0.1 iif v0", "127.0.0.1 from 10.10.0.200 iif v0",
    "10.10.0.1 from 224.0.0.5 iif v0", "0.1.2.3 from 10.10.0.200 iif v0",
    "10.10.0.1 from 0.1.2.3 iif v0", "10.50.1.1 from 10.10.0.200 iif v0 ipproto tcp dport 443",
    "10.56.1.1 from 10.10.0.200 iif v0 uid 1500", "10.60.1.1 from 10.10.0.200 iif v0 tos 0x10",
    "10.10.0.7 from 10.10.0.200 iif v0", "10.70.1.1 from 10.12.0.2 iif v0",
    "10.10.0.1 from 10.10.0.255 iif v0", "10.50.1.1 from 10.99.0.5 iif v1 mark 0x10",
    "224.0.0.1 from 10.10.0.200 iif v0",
    "10.50.1.1 from 10.10.0.200 iif v0 tos 0x10", "10.11.0.255 from 10.10.0.200 iif v0",
    # IPv6 output
    "fd50:1::1", "fd50:2::1", "fd51::1", "fd51:9::1", "fd66::1", "fd67::1", "fd68::1", "fd53::1",
    "2001:db8::1", "fd10::1", "fd11::5", "fd99::1 mark 0x20", "2001:db8::1 from fd10::1",
    "2001:db8::1 ipproto tcp dport 22", "2001:db8::1 ipproto tcp dport 23", "fd12::7 oif v2",
    "::1", "fe80::1 oif v1", "ff02::1 oif v0", "2001:db8::1 oif v1", "fd11::5 oif v1",
    "2001:db8::1 oif v0", "fd50:2::1 from fd11::1",
    # IPv6 input
    "fd11::5 from fd10::2 iif v0", "fd51:9::1 from fd10::2 iif v0",
    "fd11::5 from fd10::1:2 iif v0", "fd10::1 from fd10::1:2 iif v0", "fd66::1 from fd10::1:2 iif v0",
    "fd67::1 from fd10::1:2 iif v0", "fd53::1 from fd10::1:2 iif v0", "2001:db8::1 from fd12::2 iif v2",
    "fd11::1 from fd12::2 iif v2",
]

SYSCTLS_2 = {
    "net.ipv4.conf.v3.ignore_routes_with_linkdown": "1",
    "net.ipv4.conf.v0.accept_local": "1",
    "net.ipv4.conf.v1.src_valid_mark": "1",
    "net.ipv4.conf.v0.route_localnet": "1",
    "net.ipv4.conf.all.rp_filter": "1",
}
CASES_2 = [
    "127.0.0.1 from 10.10.0.200 iif v0", "127.0.0.1 from 10.11.0.2 iif v1",
    "10.10.0.1 from 127.0.0.1 iif v0", "10.50.1.1 from 127.0.0.1",
    "10.50.1.1 from 10.99.0.5 iif v1 mark 0x10", "10.11.0.1 from 10.99.0.5 iif v1 mark 0x10",
    "10.11.0.1 from 10.99.0.5 iif v1", "10.50.1.1 from 10.11.0.5 iif v1",
    "10.30.1.1", "10.10.0.1 from 10.10.0.1 iif v0", "10.50.1.1 from 10.10.0.5 iif v1",
    "10.50.1.1 from 10.10.0.5 iif v2", "10.50.1.1 from 10.10.0.2 iif v0",
    "10.11.0.1 from 10.10.0.5 iif v0", "10.50.1.1 from 172.31.0.5 iif v0",
    "10.50.1.1 from 10.12.0.2 iif v0", "10.12.0.1 from 10.10.0.2 iif v0",
]


@dataclass
class Topo:
    router: Netns
    snaps: dict[int, HostSnapshot]


def _build(r: Netns, peer: Netns, down: Netns) -> None:
    for i in (0, 1, 2, 4):
        veth(r, f"v{i}", peer, f"p{i}")
    veth(r, "v3", down, "p3")
    down.ip("link set p3 down")  # v3 keeps IFF_UP but loses carrier: its routes are linkdown
    r.sysctl({"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0"})
    r.sysctl(SYSCTLS)
    r.sh(SETUP_V4 + SETUP_V6)


@pytest.fixture(scope="module")
def topo() -> Iterator[Topo]:
    require_kernel("ip")
    from journey.snapshot.collect import collect

    with namespaces("ro", 3) as (r, peer, down):
        _build(r, peer, down)
        snaps = {1: collect(netns=r.name)}
        yield Topo(r, snaps)


def _kernel(r: Netns, query: str) -> tuple[str | None, dict[str, object]]:
    fam = "-6" if ":" in query.split()[0] else "-4"
    res = r.exec(["ip", fam, "-j", "route", "get", *query.split()], check=False)
    if res.returncode != 0:
        msg = res.stderr.strip()
        for text, errno in ERRORS.items():
            if text in msg:
                return errno, {}
        return f"?{msg}", {}
    data = json.loads(res.stdout)
    return None, data[0]


def _engine(snap: HostSnapshot, query: str) -> tuple[RouteDecision, bool]:
    words = query.split()
    dst = ipaddress.ip_address(words[0])
    opts = dict(zip(words[1::2], words[2::2], strict=True))
    proto = {"tcp": 6, "udp": 17, "icmp": 1}.get(opts.get("ipproto", ""), 0)
    src = ipaddress.ip_address(opts["from"]) if "from" in opts else None
    pkt = Packet(
        family=Family.of(dst), proto=proto, dst=dst, src=src,
        sport=int(opts["sport"]) if "sport" in opts else None,
        dport=int(opts["dport"]) if "dport" in opts else None,
        mark=int(opts.get("mark", "0"), 0), tos=int(opts.get("tos", "0"), 0),
        iif=opts.get("iif"), local="iif" not in opts,
        uid=int(opts["uid"]) if "uid" in opts else None,
    )
    if "iif" in opts:
        return route_input(snap, pkt), True
    return route_output(snap, pkt, oif=opts.get("oif")), False


_TYPE = {RouteKind.LOCAL: "local", RouteKind.UNICAST: "unicast",
         RouteKind.FORWARDING_DISABLED: "unicast", RouteKind.BROADCAST: "broadcast",
         RouteKind.MULTICAST: "multicast"}


def compare(snap: HostSnapshot, r: Netns, query: str) -> list[str]:
    """Differences between the kernel's and the engine's answers ([] = agreement)."""
    k_err, k = _kernel(r, query)
    dec, is_input = _engine(snap, query)
    diffs: list[str] = []
    if k_err != dec.errno:
        return [f"errno kernel={k_err} engine={dec.errno} ({dec.kind}: {dec.reason})"]
    if k_err is not None:
        return []
    ktype = str(k.get("type", "unicast"))
    etype = _TYPE.get(dec.kind, str(dec.kind))
    if ktype != etype:
        diffs.append(f"type kernel={ktype} engine={etype}")
    edev = dec.oif
    if is_input and dec.kind in (RouteKind.LOCAL, RouteKind.BROADCAST, RouteKind.MULTICAST):
        edev = "lo"
    k_gw = k.get("gateway")
    if dec.alternatives:
        choices = {(str(nh.gateway) if nh.gateway else None, nh.dev) for nh in dec.alternatives}
        if (k_gw, k.get("dev")) not in choices:
            diffs.append(f"multipath kernel=({k_gw}, {k.get('dev')}) not in {choices}")
    else:
        if k.get("dev") != edev:
            diffs.append(f"dev kernel={k.get('dev')} engine={edev}")
        e_gw = str(dec.gateway) if dec.gateway is not None else None
        if k_gw != e_gw:
            diffs.append(f"gateway kernel={k_gw} engine={e_gw}")
    # `ip -6 route get X from S` prints the source the route would select, not S
    v6_from = ":" in query and " from " in query
    if not is_input and "prefsrc" in k and not v6_from:
        e_srcs = {str(dec.source) if dec.source is not None else None}
        if dec.alternatives and dec.route is not None:  # the source follows the nexthop
            e_srcs = {str(select_source(snap, dec.route.family, dec.route.dst.network_address,
                                        nh.dev, dec.route)) for nh in dec.alternatives}
        if k["prefsrc"] not in e_srcs:
            diffs.append(f"source kernel={k['prefsrc']} engine={e_srcs}")
    if "table" in k and dec.table is not None:
        if k["table"] != table_name(dec.table):
            diffs.append(f"table kernel={k['table']} engine={table_name(dec.table)}")
    elif "table" not in k and dec.table not in (None, 254) and ktype == "unicast":
        diffs.append(f"table kernel=main engine={dec.table}")
    return diffs


def _run(topo: Topo, phase: int, cases: list[str]) -> None:
    snap = topo.snaps[phase]
    bad: list[str] = []
    for q in cases:
        d = compare(snap, topo.router, q)
        if d:
            bad.append(f"{q}: {'; '.join(d)}")
    agree = len(cases) - len(bad)
    print(f"\nphase {phase}: {agree}/{len(cases)} queries agree with the kernel")
    assert not bad, "engine disagrees with the kernel:\n" + "\n".join(bad)


def test_phase1_agrees_with_kernel(topo: Topo) -> None:
    _run(topo, 1, CASES_1)


def test_phase2_sysctls_agree_with_kernel(topo: Topo) -> None:
    from journey.snapshot.collect import collect

    topo.router.sysctl(SYSCTLS_2)
    topo.snaps[2] = collect(netns=topo.router.name)
    _run(topo, 2, CASES_2)
