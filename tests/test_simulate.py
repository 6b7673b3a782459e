"""The engine core on snapshots built in code: every path and verdict code, flows across packets.

``build_snap()`` (also used by test_trace_cli.py and the golden files) is a small router:

    lo      127.0.0.1/8, ::1
    eth0    192.0.2.10/24, 2001:db8::10/64   (uplink; default via 192.0.2.1)
    eth1    10.0.0.1/24, fd00::1/64           (LAN; 10.0.0.5 runs a web server)
    eth2    down
    eth0.10 VLAN 10 on eth0, 172.16.10.1/24
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from journey.engine.simulate import conntrack_in_use, simulate, walk
from journey.model.family import Family
from journey.model.journey import Disposition, Journey, RunState, StageKind, StageResult
from journey.model.ruleset import Backend
from journey.model.snapshot import (
    Address,
    HostSnapshot,
    Interface,
    Neighbour,
    PolicyRule,
    Process,
    Provenance,
    Route,
    RouteType,
    Socket,
)
from journey.packets.spec import parse_spec
from journey.snapshot.iptables_save import parse_iptables_save

V4, V6 = Family.IPV4, Family.IPV6
ip = ipaddress.ip_address
net = ipaddress.ip_network

FILTER_V4 = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 23 -j DROP
-A INPUT -p tcp --dport 25 -j REJECT --reject-with tcp-reset
-A INPUT -p udp --dport 69 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p tcp --dport 5000 -j NFQUEUE --queue-num 1
-A FORWARD -d 10.0.0.99/32 -j DROP
-A OUTPUT -d 198.51.100.99/32 -j REJECT
COMMIT
"""

NAT_V4 = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
-A POSTROUTING -o eth0 -s 10.0.0.0/24 -j MASQUERADE
COMMIT
"""

MANGLE_V4 = """\
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A OUTPUT -p udp --dport 5353 -j MARK --set-mark 0x1
COMMIT
"""


def _iface(index: int, name: str, mac: str | None, *, up: bool = True, **kw: object) -> Interface:
    flags = ("BROADCAST", "MULTICAST", "UP", "LOWER_UP") if up else ("BROADCAST", "MULTICAST")
    return Interface(index=index, name=name, mac=mac, flags=flags,
                     operstate="UP" if up else "DOWN", **kw)  # type: ignore[arg-type]


def _local_routes(addr: str, dev: str) -> list[Route]:
    a = ip(addr)
    fam = Family.of(a)
    plen = 32 if fam is V4 else 128
    return [Route(family=fam, table=255, dst=net(f"{a}/{plen}"), type=RouteType.LOCAL, dev=dev,
                  prefsrc=a if fam is V4 else None, scope="host", protocol="kernel")]


def build_snap(*, forwarding: bool = True, rules: bool = True, sysctls: dict[str, str] | None = None,
               **overrides: object) -> HostSnapshot:
    interfaces = (
        Interface(index=1, name="lo", mac="00:00:00:00:00:00", mtu=65536,
                  flags=("LOOPBACK", "UP", "LOWER_UP"), operstate="UNKNOWN"),
        _iface(2, "eth0", "02:00:00:00:00:10"),
        _iface(3, "eth1", "02:00:00:00:01:01"),
        _iface(4, "eth2", "02:00:00:00:02:01", up=False),
        _iface(5, "eth0.10", "02:00:00:00:00:10", kind="vlan", link="eth0", vlan_id=10),
    )
    addresses = (
        Address(1, "lo", ip("127.0.0.1"), 8, scope="host"),
        Address(1, "lo", ip("::1"), 128, scope="host"),
        Address(2, "eth0", ip("192.0.2.10"), 24, broadcast=ip("192.0.2.255")),
        Address(2, "eth0", ip("2001:db8::10"), 64),
        Address(3, "eth1", ip("10.0.0.1"), 24, broadcast=ip("10.0.0.255")),
        Address(3, "eth1", ip("fd00::1"), 64),
        Address(5, "eth0.10", ip("172.16.10.1"), 24),
    )
    routes: list[Route] = [
        Route(family=V4, table=255, dst=net("127.0.0.0/8"), type=RouteType.LOCAL, dev="lo",
              prefsrc=ip("127.0.0.1"), scope="host", protocol="kernel"),
        *_local_routes("127.0.0.1", "lo"),
        *_local_routes("192.0.2.10", "eth0"),
        *_local_routes("10.0.0.1", "eth1"),
        *_local_routes("172.16.10.1", "eth0.10"),
        *_local_routes("::1", "lo"),
        *_local_routes("2001:db8::10", "eth0"),
        *_local_routes("fd00::1", "eth1"),
        Route(family=V4, table=255, dst=net("192.0.2.255/32"), type=RouteType.BROADCAST,
              dev="eth0", prefsrc=ip("192.0.2.10"), scope="link", protocol="kernel"),
        Route(family=V4, table=254, dst=net("192.0.2.0/24"), dev="eth0", prefsrc=ip("192.0.2.10"),
              scope="link", protocol="kernel"),
        Route(family=V4, table=254, dst=net("10.0.0.0/24"), dev="eth1", prefsrc=ip("10.0.0.1"),
              scope="link", protocol="kernel"),
        Route(family=V4, table=254, dst=net("172.16.10.0/24"), dev="eth0.10",
              prefsrc=ip("172.16.10.1"), scope="link", protocol="kernel"),
        Route(family=V4, table=254, dst=net("0.0.0.0/0"), gateway=ip("192.0.2.1"), dev="eth0"),
        Route(family=V4, table=254, dst=net("203.0.113.128/25"), type=RouteType.BLACKHOLE),
        Route(family=V4, table=254, dst=net("198.18.0.0/16"), type=RouteType.UNREACHABLE),
        Route(family=V4, table=254, dst=net("198.19.0.0/16"), type=RouteType.PROHIBIT),
        Route(family=V4, table=254, dst=net("10.9.0.0/24"), gateway=ip("10.0.0.9"), dev="eth1"),
        Route(family=V6, table=254, dst=net("2001:db8::/64"), dev="eth0", protocol="kernel",
              metric=256),
        Route(family=V6, table=254, dst=net("fd00::/64"), dev="eth1", protocol="kernel",
              metric=256),
        Route(family=V6, table=254, dst=net("::/0"), gateway=ip("2001:db8::1"), dev="eth0",
              metric=1024),
    ]
    policy = (
        PolicyRule(family=V4, priority=0, table=255),
        PolicyRule(family=V4, priority=32766, table=254),
        PolicyRule(family=V4, priority=32767, table=253),
        PolicyRule(family=V6, priority=0, table=255),
        PolicyRule(family=V6, priority=32766, table=254),
    )
    neighbours = (
        Neighbour(V4, ip("192.0.2.1"), "eth0", "02:00:00:00:00:01", ("REACHABLE",)),
        Neighbour(V4, ip("10.0.0.5"), "eth1", "02:00:00:00:01:05", ("PERMANENT",)),
        Neighbour(V4, ip("10.0.0.7"), "eth1", None, ("FAILED",)),
        Neighbour(V6, ip("2001:db8::1"), "eth0", "02:00:00:00:00:01", ("STALE",)),
    )
    sockets = (
        Socket("tcp", V4, "LISTEN", ip("0.0.0.0"), 22, processes=(Process(101, "sshd"),)),
        Socket("tcp", V6, "LISTEN", ip("::"), 22, v6only=True, processes=(Process(101, "sshd"),)),
        Socket("tcp", V6, "LISTEN", ip("::"), 443, v6only=False,
               processes=(Process(202, "nginx"),)),
        Socket("tcp", V4, "LISTEN", ip("127.0.0.1"), 631, processes=(Process(303, "cupsd"),)),
        Socket("tcp", V4, "ESTAB", ip("192.0.2.10"), 22, ip("198.51.100.7"), 50000,
               processes=(Process(150, "sshd"),)),
        Socket("udp", V4, "UNCONN", ip("0.0.0.0"), 53, processes=(Process(404, "dnsmasq"),)),
        Socket("udp", V4, "UNCONN", ip("10.0.0.1"), 53, processes=(Process(405, "unbound"),)),
        Socket("tcp", V4, "LISTEN", ip("0.0.0.0"), 3306, bound_dev="eth1",
               processes=(Process(505, "mysqld"),)),
    )
    sc = {
        "net.ipv4.ip_forward": "1" if forwarding else "0",
        "net.ipv4.conf.all.forwarding": "1" if forwarding else "0",
        "net.ipv4.conf.eth0.forwarding": "1" if forwarding else "0",
        "net.ipv4.conf.eth1.forwarding": "1" if forwarding else "0",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.eth0.rp_filter": "1",
        "net.ipv4.conf.eth1.rp_filter": "0",
        "net.ipv6.conf.all.forwarding": "1" if forwarding else "0",
        **(sysctls or {}),
    }
    dumps = ()
    if rules:
        dumps = (parse_iptables_save(FILTER_V4 + NAT_V4 + MANGLE_V4, source="iptables-save",
                                     family=V4, backend=Backend.NFT),)
    prov = Provenance(hostname="router1", kernel="6.18.0", time="2026-11-24T12:00:00Z",
                      journey_version="0.1.0", uid=0, netns=None, origin="live")
    snap = HostSnapshot(provenance=prov, interfaces=interfaces, addresses=addresses,
                        routes=tuple(routes), rules=policy, neighbours=neighbours,
                        sockets=sockets, sysctls=sc, iptables=dumps)
    return replace(snap, **overrides)  # type: ignore[arg-type]


SNAP = build_snap()


def run(spec: str, snap: HostSnapshot | None = None, flows: tuple = ()) -> Journey:  # type: ignore[type-arg]
    return simulate(snap or SNAP, parse_spec(spec), flows, spec)


def kinds(j: Journey) -> list[StageKind]:
    return [s.kind for s in j.stages]


# -- local delivery ----------------------------------------------------------------------------

def test_ssh_syn_is_delivered_to_sshd_with_syn_ack() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S")
    v = j.verdict
    assert (v.disposition, v.code) == (Disposition.DELIVERED, "delivered")
    assert v.socket is not None and v.socket.process == "sshd" and v.socket.pid == 101
    assert [r.kind for r in v.replies] == ["syn-ack"]
    syn_ack = v.replies[0].packet
    assert syn_ack is not None and syn_ack.local and syn_ack.tcp_flags == "SA"
    assert syn_ack.dst == ip("198.51.100.7") and syn_ack.dport == 40000
    assert kinds(j)[0] is StageKind.NIC
    assert StageKind.ROUTING in kinds(j) and StageKind.SOCKET in kinds(j)
    assert any(s.hook == "input" for s in j.stages)
    assert all(s.functions for s in j.stages if s.kind is not StageKind.NETFILTER)


def test_established_connection_beats_listener() -> None:
    j = run("in eth0 tcp 198.51.100.7:50000 > 192.0.2.10:22 flags A")
    assert j.verdict.code == "delivered"
    assert j.verdict.socket is not None and j.verdict.socket.pid == 150
    assert not j.verdict.replies


def test_v4_mapped_on_dual_stack_listener_but_not_v6only() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:443 flags S")
    assert j.verdict.socket is not None and j.verdict.socket.process == "nginx"


def test_exact_address_beats_wildcard_udp() -> None:
    j = run("in eth1 udp 10.0.0.5:4000 > 10.0.0.1:53")
    assert j.verdict.socket is not None and j.verdict.socket.process == "unbound"
    j2 = run("in eth0 udp 198.51.100.7:4000 > 192.0.2.10:53")
    assert j2.verdict.socket is not None and j2.verdict.socket.process == "dnsmasq"


def test_bound_device_socket() -> None:
    assert run("in eth1 tcp 10.0.0.5:4000 > 10.0.0.1:3306").verdict.code == "delivered"
    j = run("in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:3306")
    assert (j.verdict.code, j.verdict.disposition) == ("no-socket", Disposition.REJECTED)


def test_no_socket_tcp_rst_and_udp_port_unreachable() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:81 flags S")
    assert j.verdict.code == "no-socket"
    assert [r.kind for r in j.verdict.replies] == ["tcp-rst"]
    rst = j.verdict.replies[0].packet
    assert rst is not None and rst.tcp_flags == "RA" and rst.src == ip("192.0.2.10")
    u = run("in eth0 udp 198.51.100.7:40000 > 192.0.2.10:54")
    assert u.verdict.code == "no-socket"
    r = u.verdict.replies[0]
    assert (r.kind, r.type, r.code) == ("icmp", 3, 3)


def test_rst_to_closed_port_gets_no_answer() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:81 flags R")
    assert j.verdict.code == "no-socket" and not j.verdict.replies
    assert j.verdict.disposition is Disposition.DROPPED


def test_echo_request_answered() -> None:
    j = run("in eth0 icmp 198.51.100.7 > 192.0.2.10")
    assert j.verdict.code == "delivered"
    assert [(r.kind, r.type) for r in j.verdict.replies] == [("icmp", 0)]
    ign = run("in eth0 icmp 198.51.100.7 > 192.0.2.10",
              build_snap(sysctls={"net.ipv4.icmp_echo_ignore_all": "1"}))
    assert ign.verdict.code == "icmp-ignored"


def test_ipv6_delivery_and_v6only() -> None:
    j = run("in eth0 tcp [2001:db8::7]:40000 > [2001:db8::10]:22 flags S")
    assert j.verdict.code == "delivered" and j.verdict.socket is not None
    assert j.verdict.socket.addr == "::"
    e = run("in eth0 icmpv6 2001:db8::7 > 2001:db8::10")
    assert [(r.kind, r.type) for r in e.verdict.replies] == [("icmpv6", 129)]


# -- NIC / IP header ---------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "code"), [
    ("in eth9 tcp 198.51.100.7 > 192.0.2.10:22", "no-interface"),
    ("in eth2 tcp 198.51.100.7 > 192.0.2.10:22", "link-down"),
    ("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 mac 02:00:00:00:99:99", "not-for-us"),
    ("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 vlan 99", "no-interface"),
    ("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 badsum", "bad-header"),
    ("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 ihl 4", "bad-header"),
    ("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 version 6", "bad-header"),
])
def test_receive_drops(spec: str, code: str) -> None:
    j = run(spec)
    assert j.verdict.code == code
    assert j.verdict.disposition is Disposition.DROPPED
    assert j.stages[-1].result is StageResult.DROPPED


def test_vlan_tag_goes_to_vlan_interface() -> None:
    j = run("in eth0 tcp 172.16.10.5:4000 > 172.16.10.1:22 vlan 10")
    assert j.verdict.code == "delivered"
    nic = j.stages[0]
    assert any(c.field == "iif" and c.new == "eth0.10" for c in nic.changes)


def test_broadcast_mac_accepted() -> None:
    j = run("in eth0 tcp 198.51.100.7 > 192.0.2.10:22 mac ff:ff:ff:ff:ff:ff")
    assert j.verdict.code == "delivered"


def test_arrival_interface_inferred() -> None:
    j = run("tcp 10.0.0.5:4000 > 10.0.0.1:22")
    assert j.verdict.code == "delivered"
    assert any("inferred" in n for n in j.stages[0].notes)


# -- routing failures --------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "code", "reply"), [
    ("in eth1 tcp 10.0.0.5:4000 > 203.0.113.200:80", "blackhole", None),
    ("in eth1 tcp 10.0.0.5:4000 > 198.18.0.1:80", "unreachable-route", (3, 1)),
    ("in eth1 tcp 10.0.0.5:4000 > 198.19.0.1:80", "prohibit-route", (3, 13)),
])
def test_route_types(spec: str, code: str, reply: tuple[int, int] | None) -> None:
    j = run(spec)
    assert j.verdict.code == code
    assert j.verdict.disposition is Disposition.DROPPED
    if reply is None:
        assert not j.verdict.replies
    else:
        assert [(r.type, r.code) for r in j.verdict.replies] == [reply]


def test_no_route() -> None:
    snap = build_snap(routes=tuple(r for r in SNAP.routes if r.dst.prefixlen != 0))
    j = run("in eth1 tcp 10.0.0.5:4000 > 8.8.8.8:53", snap)
    assert j.verdict.code == "no-route"
    assert [(r.type, r.code) for r in j.verdict.replies] == [(3, 0)]


def test_rp_filter_strict_on_eth0() -> None:
    j = run("in eth0 tcp 10.0.0.50:4000 > 192.0.2.10:22")
    assert j.verdict.code == "rp-filter"
    assert j.verdict.hint and "rp_filter" in j.verdict.hint


def test_martian_source() -> None:
    j = run("in eth1 tcp 127.0.0.2:4000 > 10.0.0.1:22")
    assert j.verdict.code == "martian-source"


# -- forwarding --------------------------------------------------------------------------------

def test_forwarded_with_ttl_decrement_and_neighbour() -> None:
    j = run("in eth1 tcp 10.0.0.5:40000 > 93.184.216.34:443 flags S")
    v = j.verdict
    assert (v.disposition, v.code, v.egress) == (Disposition.FORWARDED, "forwarded", "eth0")
    fwd = next(s for s in j.stages if s.kind is StageKind.FORWARD)
    assert [(c.field, c.old, c.new) for c in fwd.changes] == [("ttl", "64", "63")]
    neigh = next(s for s in j.stages if s.kind is StageKind.NEIGHBOUR)
    assert neigh.detail is not None and "192.0.2.1" in str(neigh.detail)
    # MASQUERADE on eth0 rewrote the source
    assert v.packet is not None and v.packet.src == ip("192.0.2.10")
    assert [s.hook for s in j.stages if s.kind is StageKind.NETFILTER][-1] == "postrouting"


def test_forwarding_disabled() -> None:
    j = run("in eth1 tcp 10.0.0.5:40000 > 93.184.216.34:443", build_snap(forwarding=False))
    assert j.verdict.code == "forwarding-disabled"
    assert j.verdict.hint == "sysctl -w net.ipv4.ip_forward=1"
    assert not j.verdict.replies


def test_ttl_exceeded_before_forward_quotes_pre_dnat() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 ttl 1")
    assert j.verdict.code == "ttl-exceeded"
    assert not any(s.hook == "forward" for s in j.stages)
    (r,) = j.verdict.replies
    assert (r.type, r.code) == (11, 0)
    assert "192.0.2.10:8080" in r.reason
    assert r.packet is not None and r.packet.tos == 0xC0


def test_frag_needed_with_df() -> None:
    j = run("in eth1 udp 10.0.0.5:4000 > 93.184.216.34:53 len 1600 df")
    assert j.verdict.code == "frag-needed"
    assert [(r.type, r.code) for r in j.verdict.replies] == [(3, 4)]
    ok = run("in eth1 udp 10.0.0.5:4000 > 93.184.216.34:53 len 1600")
    assert ok.verdict.code == "forwarded"


def test_ipv6_packet_too_big() -> None:
    j = run("in eth1 udp [fd00::5]:4000 > [2001:db8:1::1]:53 len 1600")
    assert j.verdict.code == "frag-needed"
    assert [(r.kind, r.type) for r in j.verdict.replies] == [("icmpv6", 2)]


def test_neighbour_failed() -> None:
    j = run("in eth0 tcp 198.51.100.7:4000 > 10.0.0.7:80")
    assert j.verdict.code == "neighbour-failed"


def test_neighbour_missing_is_uncertain() -> None:
    j = run("in eth0 tcp 198.51.100.7:4000 > 10.0.0.8:80")
    assert j.verdict.code == "forwarded" and j.uncertain


def test_filter_drop_in_forward() -> None:
    j = run("in eth0 tcp 198.51.100.7:4000 > 10.0.0.99:80")
    assert j.verdict.code == "filter-drop"
    assert j.rules_hit and j.rules_hit[0].chain == "FORWARD"


def test_dnat_forwarded_to_lan_server() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags S")
    assert j.verdict.code == "forwarded" and j.verdict.egress == "eth1"
    assert j.verdict.packet is not None
    assert (j.verdict.packet.dst, j.verdict.packet.dport) == (ip("10.0.0.5"), 80)
    assert j.conntrack is not None and j.conntrack.state == "NEW"


# -- netfilter verdicts ------------------------------------------------------------------------

def test_input_drop_reject_and_queue() -> None:
    d = run("in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:23")
    assert (d.verdict.code, d.verdict.disposition) == ("filter-drop", Disposition.DROPPED)
    r = run("in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:25")
    assert (r.verdict.code, r.verdict.disposition) == ("reject", Disposition.REJECTED)
    assert [x.kind for x in r.verdict.replies] == ["tcp-rst"]
    u = run("in eth0 udp 198.51.100.7:4000 > 192.0.2.10:69")
    assert [(x.type, x.code) for x in u.verdict.replies] == [(3, 3)]
    q = run("in eth0 tcp 198.51.100.7:4000 > 192.0.2.10:5000")
    assert (q.verdict.code, q.verdict.disposition) == ("queued", Disposition.UNCERTAIN)


# -- locally generated -------------------------------------------------------------------------

def test_local_sent_with_source_selection() -> None:
    j = run("local udp > 93.184.216.34:53")
    assert (j.verdict.disposition, j.verdict.code, j.verdict.egress) == (
        Disposition.SENT, "sent", "eth0")
    assert j.verdict.packet is not None and j.verdict.packet.src == ip("192.0.2.10")
    assert any(s.hook == "output" for s in j.stages)
    assert any(s.hook == "postrouting" for s in j.stages)


def test_local_to_local_goes_through_loopback() -> None:
    j = run("local tcp > 127.0.0.1:631")
    assert j.verdict.code == "delivered"
    assert j.verdict.socket is not None and j.verdict.socket.process == "cupsd"
    assert StageKind.LOOPBACK in kinds(j)
    after = kinds(j)[kinds(j).index(StageKind.LOOPBACK):]
    assert StageKind.ROUTING not in after


def test_local_output_reject() -> None:
    j = run("local udp > 198.51.100.99:53")
    assert j.verdict.code == "reject"
    assert "EPERM" in j.verdict.reason


def test_local_unreachable_route_gives_errno_not_icmp() -> None:
    j = run("local tcp > 198.18.0.1:80")
    assert j.verdict.code == "unreachable-route" and not j.verdict.replies


def test_local_reroute_on_mark() -> None:
    base = build_snap()
    snap = replace(base,
                   routes=(*base.routes, Route(family=V4, table=100, dst=net("0.0.0.0/0"),
                                               gateway=ip("10.0.0.5"), dev="eth1")),
                   rules=(PolicyRule(family=V4, priority=100, fwmark=1, table=100), *base.rules))
    j = run("local udp > 93.184.216.34:5353", snap)
    assert StageKind.REROUTE in kinds(j)
    assert j.verdict.egress == "eth1"
    # the source chosen by the first lookup (eth0's) is kept
    assert j.verdict.packet is not None and j.verdict.packet.src == ip("192.0.2.10")


# -- flows across packets ----------------------------------------------------------------------

def test_syn_then_ack_is_established() -> None:
    syn = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags S")
    assert syn.flows
    ack = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags A", flows=syn.flows)
    # the reply direction must have been seen for ESTABLISHED; first the SYN-ACK comes back
    back = run("in eth1 tcp 10.0.0.5:80 > 198.51.100.7:40000 flags SA", flows=syn.flows)
    assert back.conntrack is not None and back.conntrack.state == "ESTABLISHED"
    assert back.verdict.packet is not None
    assert (back.verdict.packet.src, back.verdict.packet.sport) == (ip("192.0.2.10"), 8080)
    ack2 = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:8080 flags A", flows=back.flows)
    assert ack2.conntrack is not None and ack2.conntrack.state == "ESTABLISHED"
    # DNAT is applied from the flow (no nat rule evaluation needed) for later packets
    assert ack2.verdict.packet is not None and ack2.verdict.packet.dst == ip("10.0.0.5")
    assert ack2.verdict.code == "forwarded"
    # an ACK before the SYN-ACK came back is an invalid transition from SYN_SENT: not NATed
    assert ack.conntrack is not None and ack.conntrack.state == "INVALID"


def test_walk_is_lazy_and_matches_simulate() -> None:
    pkt = parse_spec("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S")
    it = walk(SNAP, pkt)
    first = next(it)
    assert first.kind is StageKind.NIC
    rest = list(it)
    j = simulate(SNAP, pkt)
    assert [s.name for s in (first, *rest)] == [s.name for s in j.stages]


def test_conntrack_skipped_without_rules() -> None:
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22", build_snap(rules=False))
    ct = next(s for s in j.stages if s.kind is StageKind.CONNTRACK)
    assert ct.result is StageResult.SKIPPED
    assert j.conntrack is None
    # no conntrack entry; the flows carry only the listener's pending connection (RunState)
    assert j.flows == (RunState("tcp-syn-recv", "198.51.100.7 40000 192.0.2.10 22"),)


def test_tc_ingress_and_xdp_are_uncertain() -> None:
    from journey.model.snapshot import RawDump

    qd = RawDump("tc -j qdisc show", '[{"kind":"clsact","dev":"eth0","handle":"ffff:"},'
                 '{"kind":"fq_codel","dev":"eth0","root":true}]', "tc -j qdisc show")
    ifaces = tuple(replace(i, xdp="prog id 7 (generic)") if i.name == "eth0" else i
                   for i in SNAP.interfaces)
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22", build_snap(raw=(qd,),
                                                                         interfaces=ifaces))
    tc = [s for s in j.stages if s.kind is StageKind.TC]
    assert [s.name for s in tc] == ["XDP", "tc ingress"]
    assert all(s.uncertain for s in tc)
    assert j.verdict.code == "delivered" and j.uncertain


def test_ipv6_forwarding_disabled() -> None:
    j = run("in eth1 udp [fd00::5]:4000 > [2001:db8:1::1]:53", build_snap(forwarding=False))
    assert j.verdict.code == "forwarding-disabled"
    assert j.verdict.hint == "sysctl -w net.ipv6.conf.all.forwarding=1"


# -- the stack's own answers in the flows, TCP handshakes across a run ---------------------------

STATEFUL_V4 = """\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT -p tcp --dport 81 -j ACCEPT
COMMIT
"""


def _stateful() -> HostSnapshot:
    return build_snap(iptables=(parse_iptables_save(STATEFUL_V4, source="iptables-save",
                                                    family=V4, backend=Backend.NFT),))


def _ct_flows(j: Journey) -> list[Any]:
    return [f for f in j.flows if not isinstance(f, RunState)]


def test_handshake_ack_after_the_hosts_syn_ack_is_established_and_delivered() -> None:
    snap = _stateful()
    syn = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S", snap)
    assert syn.verdict.code == "delivered" and [r.kind for r in syn.verdict.replies] == ["syn-ack"]
    entry = _ct_flows(syn)[0]
    # the SYN-ACK left through OUTPUT: conntrack saw the reply direction
    assert entry.tcp_state == "SYN_RECV" and "SEEN_REPLY" in entry.status
    assert "SYN_SENT -> SYN_RECV" in syn.verdict.replies[0].reason
    assert [(f.kind, f.key) for f in syn.flows if isinstance(f, RunState)] == [
        ("tcp-syn-recv", "198.51.100.7 40000 192.0.2.10 22")]
    ack = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags A", snap, syn.flows)
    assert ack.conntrack is not None and ack.conntrack.state == "ESTABLISHED"
    assert ack.verdict.disposition is Disposition.DELIVERED and not ack.verdict.replies
    assert [(r.chain, r.index) for r in ack.rules_hit] == [("INPUT", 1)]
    assert "completes the handshake" in ack.stages[-1].decision
    data = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags PA", snap, ack.flows)
    assert data.verdict.disposition is Disposition.DELIVERED
    assert "accepted earlier in this run" in data.stages[-1].decision
    # without the SYN first, the same ACK is a loose pick-up and the listener answers RST
    lone = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags A", snap)
    assert lone.verdict.code == "no-connection"


def test_rst_of_a_closed_port_deletes_the_entry() -> None:
    snap = _stateful()
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:81 flags S", snap)
    assert j.verdict.code == "no-socket" and _ct_flows(j) == []
    assert "deletes the entry" in j.verdict.replies[0].reason


def test_echo_reply_marks_the_flow_replied() -> None:
    snap = _stateful()
    j = run("in eth0 icmp 198.51.100.7 > 192.0.2.10 type echo-request id 9", snap)
    assert j.verdict.code == "delivered"
    assert "SEEN_REPLY" in _ct_flows(j)[0].status
    again = run("in eth0 icmp 198.51.100.7 > 192.0.2.10 type echo-request id 9", snap, j.flows)
    assert again.conntrack is not None and again.conntrack.state == "ESTABLISHED"


# -- rules hit in evaluation order, repeats included --------------------------------------------

def test_rules_hit_repeat_a_chain_walked_twice() -> None:
    text = """\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CHK - [0:0]
-A INPUT -p tcp -j CHK
-A INPUT -p tcp -j CHK
-A INPUT -j ACCEPT
-A CHK -s 198.51.100.7/32
-A CHK -j RETURN
COMMIT
"""
    snap = build_snap(iptables=(parse_iptables_save(text, source="iptables-save", family=V4,
                                                    backend=Backend.NFT),))
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S", snap)
    assert [(r.chain, r.index) for r in j.rules_hit] == [
        ("INPUT", 1), ("CHK", 1), ("CHK", 2), ("INPUT", 2), ("CHK", 1), ("CHK", 2), ("INPUT", 3)]


# -- limit buckets across a run ------------------------------------------------------------------

def test_limit_burst_across_the_packets_of_a_run() -> None:
    text = STATEFUL_V4.replace("-A INPUT -p icmp -j ACCEPT",
                               "-A INPUT -p udp -m limit --limit 1/min --limit-burst 1 -j ACCEPT")
    snap = build_snap(iptables=(parse_iptables_save(text, source="iptables-save", family=V4,
                                                    backend=Backend.NFT),))
    first = run("in eth0 udp 198.51.100.7:5000 > 192.0.2.10:53", snap)
    second = run("in eth0 udp 198.51.100.7:5001 > 192.0.2.10:53", snap, first.flows)
    assert first.verdict.code == "delivered" and second.verdict.code == "filter-drop"
    assert first.uncertain and second.uncertain  # back-to-back arrival is an assumption
    state = [f for f in second.flows if isinstance(f, RunState)]
    assert [(f.kind, f.count) for f in state] == [("limit", 1)]
    # a fresh run starts with a full bucket again
    assert run("in eth0 udp 198.51.100.7:5001 > 192.0.2.10:53", snap).verdict.code == "delivered"


# -- lone fragments ------------------------------------------------------------------------------

FRAG_FILTER = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p udp
-A FORWARD -p udp
COMMIT
"""


def _frag_snap(family: Family, ct: bool) -> HostSnapshot:
    text = FRAG_FILTER.replace("-A INPUT -p udp\n", "-A INPUT -p udp\n-A INPUT -m conntrack "
                                                   "--ctstate NEW\n" if ct else "-A INPUT -p udp\n")
    return build_snap(iptables=(parse_iptables_save(text, source="s", family=family,
                                                    backend=Backend.NFT),))


@pytest.mark.parametrize(("spec", "family", "ct", "code", "rules", "stage"), [
    # IPv4 without conntrack: held by ip_local_deliver before INPUT
    ("in eth0 udp 198.51.100.7:5000 > 192.0.2.10:53 frag 16", V4, False, "reassembly", [],
     "reassembly"),
    ("in eth0 udp 198.51.100.7:5000 > 192.0.2.10:53 mf", V4, False, "reassembly", [],
     "reassembly"),
    # IPv6 without conntrack: INPUT sees the fragment, reassembly comes after
    ("in eth0 udp [2001:db8::7]:5000 > [2001:db8::10]:53 frag 16", V6, False, "reassembly",
     [("INPUT", 1)], "reassembly"),
    # forwarded without conntrack: as is
    ("in eth0 udp 198.51.100.7:5000 > 10.0.0.5:53 frag 16", V4, False, "forwarded",
     [("FORWARD", 1)], "egress"),
    # conntrack in use: nf_defrag holds it before every table, local or forwarded
    ("in eth0 udp 198.51.100.7:5000 > 192.0.2.10:53 frag 16", V4, True, "reassembly", [],
     "defragmentation"),
    ("in eth0 udp 198.51.100.7:5000 > 10.0.0.5:53 mf", V4, True, "reassembly", [],
     "defragmentation"),
    ("in eth0 udp [2001:db8::7]:5000 > [fd00::5]:53 frag 16", V6, True, "reassembly", [],
     "defragmentation"),
    ("local udp 192.0.2.10:5000 > 10.0.0.5:53 frag 16", V4, True, "reassembly", [],
     "defragmentation"),
])
def test_lone_fragments(spec: str, family: Family, ct: bool, code: str,
                        rules: list[tuple[str, int]], stage: str) -> None:
    j = run(spec, _frag_snap(family, ct))
    assert j.verdict.code == code, j.verdict.reason
    assert [(r.chain, r.index) for r in j.rules_hit] == rules
    assert j.stages[-1].name == stage
    if code == "reassembly":
        assert j.verdict.disposition is Disposition.DROPPED and not j.uncertain
        assert j.verdict.reason == ("held for reassembly; the other fragments are not in this "
                                    "trace")


def test_conntrack_in_use_is_per_family() -> None:
    snap = _stateful()  # IPv4 rules with conntrack only
    assert conntrack_in_use(snap, V4) and not conntrack_in_use(snap, V6)
    assert conntrack_in_use(snap)
    j = run("in eth0 tcp [2001:db8::7]:40000 > [2001:db8::10]:443 flags S", snap)
    assert j.conntrack is None  # IPv6 conntrack is not registered by IPv4 rules


SNAT_ONE_PORT = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -p udp -j SNAT --to-source 192.0.2.10:61000
-A POSTROUTING -o eth0 -p tcp -j MASQUERADE
COMMIT
"""


def _nat_snap(text: str) -> HostSnapshot:
    return build_snap(iptables=(parse_iptables_save(text, source="iptables-save", family=V4,
                                                    backend=Backend.NFT),))


def test_snat_reply_tuple_clash_drops_or_is_uncertain() -> None:
    """Kernel q-nat-snat-collision: a new flow whose SNAT reply tuple is taken, with no other
    port in the range, is dropped at confirm (nat-clash) and leaves the first flow intact; with
    MASQUERADE (no port range) the kernel picks another port at random: uncertain."""
    snap = _nat_snap(SNAT_ONE_PORT)
    j1 = run("in eth1 udp 10.0.0.7:5000 > 198.51.100.1:53", snap)
    assert j1.verdict.code == "forwarded" and j1.verdict.packet.sport == 61000
    j2 = run("in eth1 udp 10.0.0.8:5000 > 198.51.100.1:53", snap, j1.flows)
    assert j2.verdict.code == "nat-clash" and str(j2.verdict.disposition) == "dropped"
    j3 = run("in eth1 udp 10.0.0.8:5000 > 198.51.100.2:53", snap, j2.flows)
    assert j3.verdict.code == "forwarded" and not j3.uncertain
    back = run("in eth0 udp 198.51.100.1:53 > 192.0.2.10:61000", snap, j3.flows)
    assert back.verdict.packet.dst == ip("10.0.0.7")
    t1 = run("in eth1 tcp 10.0.0.7:40000 > 198.51.100.1:80", snap)
    t2 = run("in eth1 tcp 10.0.0.8:40000 > 198.51.100.1:80", snap, t1.flows)
    assert t2.verdict.code == "forwarded" and t2.uncertain
    assert any(s.name == "conntrack confirm" and s.uncertain for s in t2.stages)


HAIRPIN = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
COMMIT
"""


def test_nat_drops_the_icmp_redirect_of_a_hairpin_flow() -> None:
    """Kernel q-nat-hairpin: the redirect for a packet sent back out of its interface is built
    (Icmp.OutRedirects) but nf_nat_icmp_reply_translation drops it: NAT not finished / NATed."""
    snap = _nat_snap(HAIRPIN)
    j = run("in eth1 tcp 10.0.0.7:40000 > 192.0.2.10:8080", snap)
    assert j.verdict.code == "forwarded" and j.verdict.egress == "eth1"
    assert j.verdict.replies == ()
    assert any("dropped by NAT" in n for s in j.stages for n in s.notes)
    plain = build_snap(rules=False)
    j2 = run("in eth1 tcp 10.0.0.7:40000 > 10.0.0.5:80", plain)
    assert j2.verdict.egress == "eth1"
    assert [r.type for r in j2.verdict.replies] == [5]


# -- forwarding and local-path details checked against the kernel (tests/kernel/scenarios_paths)


def _replies(j: Journey) -> list[tuple[str, int | None, int | None]]:
    return [(str(r.kind), r.type, r.code) for r in j.verdict.replies]


def test_redirect_only_to_an_on_link_sender() -> None:
    plain = build_snap(rules=False)  # no nat table: NAT would drop the redirect
    j = run("in eth1 udp 10.0.0.5:5000 > 10.9.0.5:53", plain)
    assert j.verdict.disposition is Disposition.FORWARDED and j.verdict.egress == "eth1"
    assert ("icmp", 5, 1) in _replies(j)
    far = run("in eth1 udp 198.51.100.7:5000 > 10.9.0.5:53", plain)
    assert far.verdict.disposition is Disposition.FORWARDED
    assert _replies(far) == []
    off = build_snap(rules=False, sysctls={"net.ipv4.conf.all.send_redirects": "0",
                                           "net.ipv4.conf.eth1.send_redirects": "0"})
    assert _replies(run("in eth1 udp 10.0.0.5:5000 > 10.9.0.5:53", off)) == []


def test_ipv6_redirect_needs_a_link_local_address() -> None:
    spec = "in eth1 udp [fd00::5]:5000 > [fd00::9]:53"
    assert _replies(run(spec)) == []
    ll = replace(SNAP, addresses=(
        *SNAP.addresses, Address(3, "eth1", ip("fe80::1"), 64, scope="link")))
    j = run(spec, ll)
    assert j.verdict.disposition is Disposition.FORWARDED
    assert _replies(j) == [("icmpv6", 137, 0)]


def test_ipv6_link_local_source_is_not_forwarded_to_another_link() -> None:
    j = run("in eth1 udp [fe80::5]:5000 > [2001:db8::99]:53")
    assert j.verdict.disposition is Disposition.DROPPED
    assert j.verdict.code == "beyond-scope"
    assert _replies(j) == [("icmpv6", 1, 2)]


def test_echo_to_a_broadcast_route_is_ignored_without_brd_on_the_address() -> None:
    addrs = tuple(replace(a, broadcast=None) for a in SNAP.addresses)
    j = run("in eth0 icmp 192.0.2.50 > 192.0.2.255 type echo-request mac ff:ff:ff:ff:ff:ff",
            replace(SNAP, addresses=addrs))
    assert j.verdict.disposition is Disposition.DROPPED
    assert j.verdict.code == "icmp-ignored"
    assert _replies(j) == []


def test_local_datagram_with_df_bigger_than_the_mtu_fails_with_emsgsize() -> None:
    j = run("local udp > 198.51.100.7:53 len 1600 df")
    assert j.verdict.disposition is Disposition.DROPPED
    assert j.verdict.code == "frag-needed"
    assert not any(s.kind is StageKind.NETFILTER for s in j.stages)
    assert run("local udp > 198.51.100.7:53 len 1600").verdict.disposition is Disposition.SENT


RPF_RAW = """\
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -i eth1 -m rpfilter {opts}--invert -j DROP
COMMIT
"""


@pytest.mark.parametrize(("opts", "src", "dropped"), [
    ("", "198.51.100.7", True),  # the route back leaves through eth0, not eth1
    ("", "10.9.0.5", False),
    ("--loose ", "198.51.100.7", False),
])
def test_rpfilter_match_reverse_lookup(opts: str, src: str, dropped: bool) -> None:
    dump = parse_iptables_save(RPF_RAW.format(opts=opts), source="iptables-save", family=V4,
                               backend=Backend.NFT)
    j = run(f"in eth1 udp {src}:5000 > 10.0.0.1:53", replace(SNAP, iptables=(dump,)))
    assert not j.uncertain
    assert (j.verdict.disposition is Disposition.DROPPED) is dropped


# -- the kernel's answers leave through OUTPUT; established / TIME-WAIT sockets ----------------

_OUT_DROP = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A OUTPUT -p tcp --sport 22 -j DROP
-A OUTPUT -p tcp --sport 81 -j DROP
-A OUTPUT -p icmp -j DROP
COMMIT
"""


def _out_drop_snap() -> HostSnapshot:
    dump = parse_iptables_save(_OUT_DROP, source="iptables-save", family=V4, backend=Backend.NFT)
    return build_snap(iptables=(dump,))


def test_syn_ack_dropped_in_output_is_not_a_reply() -> None:
    # kernel (t-reply-synack-output-drop): the listener takes the SYN, its SYN-ACK dies in OUTPUT
    j = run("in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22 flags S", _out_drop_snap())
    assert (j.verdict.disposition, j.verdict.code) == (Disposition.DELIVERED, "delivered")
    assert j.verdict.replies == ()
    assert "syn-ack answer is dropped by" in j.verdict.reason
    assert all(r.chain != "OUTPUT" for r in j.rules_hit)  # the answer's hits are not the SYN's


def test_refusal_whose_answer_is_dropped_is_a_drop() -> None:
    snap = _out_drop_snap()
    rst = run("in eth0 tcp 198.51.100.7:40001 > 192.0.2.10:81 flags S", snap)
    assert (rst.verdict.disposition, rst.verdict.code) == (Disposition.DROPPED, "no-socket")
    assert rst.verdict.replies == ()
    unreach = run("in eth0 udp 198.51.100.7:4000 > 192.0.2.10:54", snap)
    assert unreach.verdict.replies == ()
    assert unreach.verdict.disposition is Disposition.DROPPED
    # an answer OUTPUT lets through stays
    ok = run("in eth0 tcp 198.51.100.7:40002 > 192.0.2.10:82 flags S", snap)
    assert (ok.verdict.disposition, [r.kind for r in ok.verdict.replies]) == (
        Disposition.REJECTED, ["tcp-rst"])


def test_syn_on_established_connection_gets_challenge_ack() -> None:
    # kernel (t-sock-tcp-established): TcpExt.TCPSYNChallenge, nothing delivered
    j = run("in eth0 tcp 198.51.100.7:50000 > 192.0.2.10:22 flags S")
    assert (j.verdict.disposition, j.verdict.code) == (Disposition.DROPPED, "challenge-ack")
    assert j.verdict.socket is not None and j.verdict.socket.pid == 150
    assert not j.verdict.uncertain


def test_time_wait_match_is_uncertain() -> None:
    tw = Socket("tcp", V4, "TIME-WAIT", ip("192.0.2.10"), 9999, ip("198.51.100.7"), 50001)
    snap = build_snap(sockets=(*SNAP.sockets, tw))
    j = run("in eth0 tcp 198.51.100.7:50001 > 192.0.2.10:9999 flags S", snap)
    assert j.verdict.uncertain


def test_link_local_destination_without_scope_is_uncertain() -> None:
    """``local udp > [fe80::3]:53`` with fe80::/64 on two interfaces: the kernel takes whichever
    route was added first (link-up timing), so the engine must say it cannot know."""
    v6 = Family.IPV6
    snap = HostSnapshot(
        Provenance("h", "6.18", "2026-01-01T00:00:00Z", "0", 0, None, "live"),
        interfaces=(Interface(1, "lo", flags=("UP", "LOOPBACK"), operstate="UNKNOWN"),
                    _iface(2, "h0", "02:00:00:00:00:01"), _iface(3, "h1", "02:00:00:00:00:02")),
        addresses=(Address(2, "h0", ip("fe80::1"), 64, scope="link"),
                   Address(3, "h1", ip("fe80::11"), 64, scope="link")),
        routes=(Route(v6, 254, ipaddress.ip_network("fe80::/64"), dev="h0", metric=256, protocol="kernel"),
                Route(v6, 254, ipaddress.ip_network("fe80::/64"), dev="h1", metric=256, protocol="kernel")),
    )
    j = run("local udp > [fe80::3]:53", snap)
    assert j.verdict.egress in ("h0", "h1")
    assert j.uncertain
