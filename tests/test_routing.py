"""Pure tests of journey.engine.routing and journey.engine.sysctl on snapshots built in code."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from journey.engine import sysctl
from journey.engine.routing import (
    RouteDecision,
    RouteKind,
    fib_lookup,
    is_local,
    route_input,
    route_output,
    routing_index,
    select_source,
)
from journey.model.family import Family
from journey.model.packet import Packet
from journey.model.snapshot import (
    Address,
    HostSnapshot,
    Interface,
    Nexthop,
    PolicyRule,
    PortRange,
    Provenance,
    Route,
    RouteType,
    RuleAction,
)

V4, V6 = Family.IPV4, Family.IPV6
ip = ipaddress.ip_address
net = ipaddress.ip_network
PROV = Provenance(hostname="t", kernel="6.18", time="2026-01-01T00:00:00Z",
                  journey_version="0", uid=0, netns=None, origin="test")

IFACES = (
    Interface(1, "lo", flags=("LOOPBACK", "UP", "LOWER_UP"), mtu=65536),
    Interface(2, "eth0", flags=("BROADCAST", "UP", "LOWER_UP")),
    Interface(3, "eth1", flags=("BROADCAST", "UP", "LOWER_UP"), mtu=9000),
    Interface(4, "eth2", flags=("BROADCAST", "UP", "LOWER_UP"), group=7),
)


def A(ifname: str, cidr: str, **kw: Any) -> Address:
    i = ipaddress.ip_interface(cidr)
    index = {i.name: i.index for i in IFACES}[ifname]
    return Address(index, ifname, i.ip, i.network.prefixlen, **kw)


def R(dst: str, *, table: int = 254, **kw: Any) -> Route:
    n = net("0.0.0.0/0" if dst == "default" else ("::/0" if dst == "default6" else dst))
    fam = Family.of(n)
    for key in ("gateway", "prefsrc"):
        if isinstance(kw.get(key), str):
            kw[key] = ip(str(kw[key]))
    return Route(family=fam, table=table, dst=n, **kw)


def rule(prio: int, *, family: Family = V4, **kw: Any) -> PolicyRule:
    for key in ("src", "dst"):
        if isinstance(kw.get(key), str):
            kw[key] = net(str(kw[key]))
    return PolicyRule(family=family, priority=prio, **kw)


DEFAULT_V4 = (rule(0, table=255), rule(32766, table=254), rule(32767, table=253))
DEFAULT_V6 = (rule(0, family=V6, table=255), rule(32766, family=V6, table=254))

ADDRS = (
    A("lo", "127.0.0.1/8", scope="host"),
    A("lo", "::1/128", scope="host"),
    A("eth0", "10.0.0.1/24"),
    A("eth0", "10.0.0.9/24", flags=("secondary",)),
    A("eth1", "192.0.2.1/24"),
    A("eth1", "198.51.100.1/24"),
    A("eth0", "2001:db8:0::1/64"),
    A("eth0", "fe80::1/64", scope="link"),
    A("eth1", "2001:db8:1::1/64"),
    A("eth1", "fd00:1::1/64"),
    A("eth1", "fe80::2/64", scope="link"),
)
BASE_ROUTES = (
    R("10.0.0.0/24", dev="eth0", scope="link", protocol="kernel", prefsrc="10.0.0.1"),
    R("192.0.2.0/24", dev="eth1", scope="link", protocol="kernel", prefsrc="192.0.2.1"),
    R("198.51.100.0/24", dev="eth1", scope="link", protocol="kernel", prefsrc="198.51.100.1"),
    R("default", gateway="10.0.0.254", dev="eth0"),
    R("2001:db8::/64", dev="eth0", metric=256, protocol="kernel"),
    R("2001:db8:1::/64", dev="eth1", metric=256, protocol="kernel"),
    R("fd00:1::/64", dev="eth1", metric=256, protocol="kernel"),
    R("fe80::/64", dev="eth0", metric=256, protocol="kernel"),
    R("fe80::/64", dev="eth1", metric=256, protocol="kernel"),
    R("::/0", gateway="2001:db8::fe", dev="eth0", metric=1024),
)


def mksnap(routes: Iterable[Route] = (), rules: Iterable[PolicyRule] = (), *,
           sysctls: Mapping[str, str] | None = None, addrs: Iterable[Address] = ADDRS,
           base: bool = True, ifaces: Iterable[Interface] = IFACES) -> HostSnapshot:
    return HostSnapshot(
        provenance=PROV, interfaces=tuple(ifaces), addresses=tuple(addrs),
        routes=(BASE_ROUTES if base else ()) + tuple(routes),
        rules=DEFAULT_V4 + DEFAULT_V6 + tuple(rules),
        sysctls=dict(sysctls or {"net.ipv4.conf.all.forwarding": "1",
                                  "net.ipv4.conf.eth0.forwarding": "1",
                                  "net.ipv4.conf.eth1.forwarding": "1",
                                  "net.ipv4.conf.eth2.forwarding": "1",
                                  "net.ipv6.conf.all.forwarding": "1"}),
    )


def out(snap: HostSnapshot, dst: str, *, oif: str | None = None, **kw: Any) -> RouteDecision:
    d = ip(dst)
    src = kw.pop("src", None)
    pkt = Packet(family=Family.of(d), proto=int(kw.pop("proto", 6)), dst=d,
                 src=ip(str(src)) if src else None, local=True, **kw)
    return route_output(snap, pkt, oif=oif)


def inp(snap: HostSnapshot, dst: str, src: str, iif: str, **kw: Any) -> RouteDecision:
    d = ip(dst)
    pkt = Packet(family=Family.of(d), proto=int(kw.pop("proto", 6)), dst=d, src=ip(src),
                 iif=iif, **kw)
    return route_input(snap, pkt)


# -- FIB: prefix, metric, tos, types -------------------------------------------------------------

def test_longest_prefix_wins_and_candidates_explain() -> None:
    s = mksnap([R("10.9.0.0/16", gateway="192.0.2.2", dev="eth1"),
                R("10.9.8.0/24", gateway="10.0.0.2", dev="eth0")])
    d = out(s, "10.9.8.7")
    assert (d.kind, d.oif, str(d.gateway), str(d.source)) == (RouteKind.UNICAST, "eth0",
                                                              "10.0.0.2", "10.0.0.1")
    assert d.table == 254 and d.route is not None and d.route.dst == net("10.9.8.0/24")
    chosen = [c for c in d.detail.candidates if c.chosen]
    assert len(chosen) == 1 and "/24" in chosen[0].reason
    assert any("shorter" in c.reason for c in d.detail.candidates if not c.chosen)
    assert out(s, "10.9.1.1").oif == "eth1"
    assert any(c.kind == "route" and "10.9.8.0/24" in c.text for c in d.config)


def test_lowest_metric_wins() -> None:
    s = mksnap([R("10.9.0.0/16", gateway="192.0.2.2", dev="eth1", metric=100),
                R("10.9.0.0/16", gateway="10.0.0.2", dev="eth0", metric=20)])
    assert out(s, "10.9.1.1").oif == "eth0"


def test_route_tos_is_matched_with_the_legacy_mask() -> None:
    s = mksnap([R("10.9.0.0/16", gateway="192.0.2.2", dev="eth1", tos=0x10),
                R("10.9.0.0/16", gateway="10.0.0.2", dev="eth0")])
    assert out(s, "10.9.1.1").oif == "eth0"
    assert out(s, "10.9.1.1", tos=0x10).oif == "eth1"
    assert out(s, "10.9.1.1", tos=0x13).oif == "eth1"  # ECN bits ignored
    assert out(s, "10.9.1.1", tos=0x08).oif == "eth0"


@pytest.mark.parametrize("rtype,kind,errno", [
    (RouteType.BLACKHOLE, RouteKind.BLACKHOLE, "EINVAL"),
    (RouteType.UNREACHABLE, RouteKind.UNREACHABLE, "EHOSTUNREACH"),
    (RouteType.PROHIBIT, RouteKind.PROHIBIT, "EACCES"),
])
def test_error_route_types(rtype: RouteType, kind: RouteKind, errno: str) -> None:
    s = mksnap([R("10.66.0.0/16", type=rtype), R("10.66.0.0/24", type=rtype, table=9)])
    d = out(s, "10.66.1.1")
    assert (d.kind, d.errno, d.oif) == (kind, errno, None)
    assert not d.ok
    # the forwarded packet gets the ICMP error of ip_error (none for blackhole)
    f = inp(s, "10.66.1.1", "192.0.2.7", "eth1")
    assert f.errno == errno
    assert f.icmp == {"EINVAL": None, "EHOSTUNREACH": (3, 1), "EACCES": (3, 13)}[errno]


def test_no_route_is_enetunreach() -> None:
    s = mksnap(base=False, routes=[R("10.0.0.0/24", dev="eth0", scope="link", protocol="kernel",
                                     prefsrc="10.0.0.1")])
    d = out(s, "8.8.8.8")
    assert (d.kind, d.errno) == (RouteKind.NO_ROUTE, "ENETUNREACH")
    assert [e.matched for e in d.detail.rules] == [True, True, True]
    assert all("no route" in e.reason or "does not exist" in e.reason for e in d.detail.rules)
    assert inp(s, "8.8.8.8", "10.0.0.5", "eth0").icmp == (3, 0)


def test_linkdown_routes_are_used_unless_ignored() -> None:
    routes = [R("10.30.0.0/16", gateway="192.0.2.2", dev="eth1", metric=10, flags=("linkdown",)),
              R("10.30.0.0/16", gateway="10.0.0.2", dev="eth0", metric=20)]
    assert out(mksnap(routes), "10.30.1.1").oif == "eth1"
    s = mksnap(routes, sysctls={"net.ipv4.conf.eth1.ignore_routes_with_linkdown": "1"})
    d = out(s, "10.30.1.1")
    assert d.oif == "eth0"
    assert any("linkdown" in c.reason for c in d.detail.candidates)
    dead = [R("10.30.0.0/16", gateway="192.0.2.2", dev="eth1", metric=10, flags=("dead",)),
            routes[1]]
    assert out(mksnap(dead), "10.30.1.1").oif == "eth0"


def test_multipath_is_uncertain_and_lists_nexthops() -> None:
    mp = R("10.70.0.0/16", nexthops=(Nexthop(ip("10.0.0.2"), "eth0", 1),
                                     Nexthop(ip("192.0.2.2"), "eth1", 2)))
    s = mksnap([mp])
    d = out(s, "10.70.1.1")
    assert d.uncertain and len(d.alternatives) == 2
    assert d.oif == "eth0" and d.nexthop_index == 0
    assert any("hash" in n for n in d.notes)
    # bound to eth1: the kernel takes the nexthop on eth1, no hashing
    b = out(s, "10.70.1.1", oif="eth1")
    assert (b.oif, str(b.gateway), b.uncertain) == ("eth1", "192.0.2.2", False)
    # one dead nexthop: no choice left
    mp2 = R("10.70.0.0/16", nexthops=(Nexthop(ip("10.0.0.2"), "eth0", 1, ("dead",)),
                                      Nexthop(ip("192.0.2.2"), "eth1", 2)))
    d2 = out(mksnap([mp2]), "10.70.1.1")
    assert (d2.oif, d2.uncertain) == ("eth1", False)


def test_equal_default_routes_are_uncertain() -> None:
    s = mksnap([R("default", gateway="192.0.2.254", dev="eth1")])
    d = out(s, "8.8.8.8")
    assert d.uncertain and any("fib_select_default" in n for n in d.notes)
    s2 = mksnap([R("default", gateway="192.0.2.254", dev="eth1", metric=10)])
    assert not out(s2, "8.8.8.8").uncertain


# -- policy rules ---------------------------------------------------------------------------------

T100 = [R("default", gateway="192.0.2.2", dev="eth1", table=100)]


@pytest.mark.parametrize("sel,match,nomatch", [
    ({"src": "10.0.0.0/24"}, {"src": "10.0.0.9"}, {"src": "192.0.2.1"}),
    ({"dst": "8.8.0.0/16"}, {}, {"dst": "9.9.9.9"}),
    ({"fwmark": 0x10, "fwmask": 0xFF}, {"mark": 0x110}, {"mark": 0x11}),
    ({"fwmark": 0x10}, {"mark": 0x10}, {"mark": 0x110}),
    ({"tos": 0x10}, {"tos": 0x10}, {"tos": 0x08}),
    ({"ipproto": 17}, {"proto": 17}, {"proto": 6}),
    ({"ipproto": 6, "dport": PortRange(443, 443)}, {"dport": 443}, {"dport": 80}),
    ({"sport": PortRange(1000, 2000)}, {"sport": 1500}, {"sport": 999}),
    ({"uidrange": PortRange(1000, 1999)}, {"uid": 1500}, {"uid": 0}),
    ({"oif": "eth1"}, {"oif": "eth1"}, {}),
    ({"iif": "lo"}, {}, {"_iif": "eth0"}),
    ({"invert": True, "dst": "10.0.0.0/8"}, {}, {"dst": "10.1.1.1"}),
])
def test_rule_selectors(sel: dict[str, Any], match: dict[str, Any],
                        nomatch: dict[str, Any]) -> None:
    s = mksnap(T100, [rule(100, table=100, **sel)])

    def run(kw: dict[str, Any]) -> str | None:
        kw = dict(kw)
        dst = str(kw.pop("dst", "8.8.8.8"))
        d = inp(s, dst, "10.0.0.5", str(kw.pop("_iif"))) if "_iif" in kw else out(s, dst, **kw)
        return d.oif

    assert run(match) == "eth1", f"{sel} should match {match}"
    assert run(nomatch) == "eth0", f"{sel} should not match {nomatch}"


def test_rule_tos_uses_masked_tos_and_reasons_are_given() -> None:
    s = mksnap(T100, [rule(100, table=100, tos=0x10)])
    d = out(s, "8.8.8.8", tos=0x08)
    first = d.detail.rules[1]
    assert not first.matched and "tos" in first.reason


def test_output_from_rule_does_not_match_before_source_is_chosen() -> None:
    s = mksnap(T100, [rule(100, table=100, src="10.0.0.0/24")])
    d = out(s, "8.8.8.8")  # saddr is 0.0.0.0 at the lookup
    assert d.oif == "eth0" and str(d.source) == "10.0.0.1"
    assert "not chosen yet" in d.detail.rules[1].reason


def test_input_uid_is_zero() -> None:
    s = mksnap(T100, [rule(100, table=100, uidrange=PortRange(0, 0))])
    assert inp(s, "8.8.8.8", "192.0.2.7", "eth1").oif == "eth1"


def test_rule_actions() -> None:
    s = mksnap(T100, [rule(100, action=RuleAction.BLACKHOLE, dst="10.53.0.0/16"),
                      rule(101, action=RuleAction.UNREACHABLE, dst="10.54.0.0/16"),
                      rule(102, action=RuleAction.PROHIBIT, dst="10.59.0.0/16"),
                      rule(103, action=RuleAction.NOP, dst="10.52.0.0/16")])
    assert (out(s, "10.53.1.1").kind, out(s, "10.53.1.1").errno) == (RouteKind.BLACKHOLE, "EINVAL")
    u = out(s, "10.54.1.1")
    assert (u.kind, u.errno) == (RouteKind.UNREACHABLE, "ENETUNREACH")  # rule: net unreachable
    assert out(s, "10.59.1.1").errno == "EACCES"
    n = out(s, "10.52.1.1")
    assert n.kind is RouteKind.UNICAST and "nop" in n.detail.rules[4].reason
    assert u.rule is not None and u.rule.priority == 101
    assert any(c.kind == "rule" for c in u.config)


def test_goto_skips_rules_and_missing_target_is_ignored() -> None:
    routes = [*T100, R("default", gateway="10.0.0.3", dev="eth0", table=200)]
    s = mksnap(routes, [rule(90, action=RuleAction.GOTO, goto=150, dst="10.51.0.0/16"),
                        rule(100, table=200, dst="10.51.0.0/16"),
                        rule(150, table=100, dst="10.51.0.0/16"),
                        rule(160, action=RuleAction.GOTO, goto=170, dst="10.52.0.0/16"),
                        rule(165, table=200, dst="10.52.0.0/16")])
    d = out(s, "10.51.1.1")
    assert (d.oif, d.table) == ("eth1", 100)
    assert all("100:" not in e.text for e in d.detail.rules)  # rule 100 never evaluated
    g = out(s, "10.52.1.1")
    assert (str(g.gateway), g.table) == ("10.0.0.3", 200)
    assert any("no rule has that priority" in e.reason for e in g.detail.rules)


def test_throw_continues_with_next_rule() -> None:
    routes = [R("10.50.0.0/16", gateway="192.0.2.2", dev="eth1", table=100),
              R("10.50.9.0/24", type=RouteType.THROW, table=100),
              R("10.50.0.0/16", gateway="10.0.0.7", dev="eth0")]
    s = mksnap(routes, [rule(100, table=100)])
    assert out(s, "10.50.8.8").oif == "eth1"
    d = out(s, "10.50.9.9")
    assert (d.oif, d.table) == ("eth0", 254)
    assert "throw" in d.detail.rules[1].reason


def test_missing_table_continues() -> None:
    s = mksnap([], [rule(100, table=123)])
    d = out(s, "8.8.8.8")
    assert d.table == 254 and "does not exist" in d.detail.rules[1].reason


def test_suppress_prefixlength_and_ifgroup() -> None:
    routes = [R("default", gateway="192.0.2.2", dev="eth1", table=100),
              R("10.58.0.0/16", gateway="192.0.2.3", dev="eth1", table=100),
              R("10.57.0.0/16", gateway="10.0.0.3", dev="eth2", table=101)]
    s = mksnap(routes, [rule(100, table=100, suppress_prefixlength=0),
                        rule(101, table=101, suppress_ifgroup=7)])
    assert str(out(s, "10.58.1.1").gateway) == "192.0.2.3"
    d = out(s, "8.8.8.8")
    assert d.table == 254 and "suppress" in d.detail.rules[1].reason
    g = out(s, "10.57.1.1")
    assert g.table == 254 and "suppress_ifgroup" in g.detail.rules[2].reason


def test_l3mdev_rule_is_uncertain() -> None:
    s = mksnap([], [rule(1000, l3mdev=True)])
    d = out(s, "8.8.8.8")
    assert d.uncertain and d.kind is RouteKind.UNICAST


def test_missing_rules_assume_kernel_defaults() -> None:
    s = HostSnapshot(provenance=PROV, interfaces=IFACES, addresses=ADDRS, routes=BASE_ROUTES)
    d = out(s, "8.8.8.8")
    assert d.oif == "eth0" and any("default rules" in n for n in d.notes)


# -- local, broadcast, output specials ------------------------------------------------------------

def test_local_and_broadcast_output() -> None:
    s = mksnap()
    loc = out(s, "10.0.0.1")
    assert (loc.kind, loc.oif, str(loc.source), loc.table) == (RouteKind.LOCAL, "lo",
                                                              "10.0.0.1", 255)
    sec = out(s, "10.0.0.9")  # secondary: local, source = its prefsrc (primary)
    assert sec.kind is RouteKind.LOCAL
    b = out(s, "10.0.0.255")
    assert (b.kind, b.oif, b.gateway) == (RouteKind.BROADCAST, "eth0", None)
    assert out(s, "127.0.0.5").oif == "lo"
    assert any("derived from the addresses" in n for n in loc.notes)
    assert is_local(s, ip("127.0.0.5")) and is_local(s, ip("10.0.0.9"))
    assert is_local(s, ip("2001:db8::1")) and not is_local(s, ip("10.0.0.2"))


def test_output_source_checks() -> None:
    s = mksnap()
    assert out(s, "8.8.8.8", src="10.0.0.77").errno == "ENETUNREACH"  # not local
    assert out(s, "8.8.8.8", src="224.0.0.1").errno == "EINVAL"
    assert out(s, "8.8.8.8", src="127.0.0.1").kind is RouteKind.MARTIAN_SOURCE
    ok = out(s, "8.8.8.8", src="192.0.2.1")
    assert ok.kind is RouteKind.UNICAST and str(ok.source) == "192.0.2.1"


def test_output_bound_interface_falls_back_to_on_link() -> None:
    s = mksnap([R("10.66.0.0/16", type=RouteType.BLACKHOLE)])
    d = out(s, "8.8.8.8", oif="eth1")  # default route is on eth0: not usable
    assert (d.kind, d.oif, d.gateway, str(d.source)) == (RouteKind.UNICAST, "eth1", None,
                                                         "192.0.2.1")
    assert out(s, "10.66.1.1", oif="eth0").kind is RouteKind.UNICAST
    assert out(s, "8.8.8.8", oif="nope").errno == "ENODEV"
    assert out(s, "224.0.0.5", oif="eth1").kind is RouteKind.MULTICAST


def test_mtu_from_route_or_interface() -> None:
    s = mksnap([R("10.9.0.0/16", gateway="192.0.2.2", dev="eth1", mtu=1400)])
    assert out(s, "10.9.1.1").mtu == 1400
    assert out(s, "192.0.2.9").mtu == 9000


# -- source selection -------------------------------------------------------------------------------

def test_select_source_v4() -> None:
    s = mksnap([R("10.80.0.0/16", dev="eth1", scope="link"),
                R("10.81.0.0/16", gateway="198.51.100.2", dev="eth1"),
                R("10.82.0.0/16", gateway="10.0.0.2", dev="eth0", prefsrc="192.0.2.1")])
    assert str(out(s, "10.80.1.1").source) == "192.0.2.1"  # first primary of eth1
    assert str(out(s, "10.81.1.1").source) == "198.51.100.1"  # on the gateway's subnet
    assert str(out(s, "10.82.1.1").source) == "192.0.2.1"  # prefsrc
    # eth2 has no address: any other device's global address
    assert str(select_source(s, V4, ip("10.7.7.7"), "eth2")) == "10.0.0.1"


def test_select_source_v6_rfc6724() -> None:
    s = mksnap()
    assert str(select_source(s, V6, ip("2001:db8:5::1"), "eth0")) == "2001:db8::1"
    # rule 8 (longest prefix) within the oif; rule 6 label: fd00::/7 prefers the ULA source
    assert str(select_source(s, V6, ip("2001:db8:1::77"), "eth1")) == "2001:db8:1::1"
    assert str(select_source(s, V6, ip("fd00:1::99"), "eth1")) == "fd00:1::1"
    # rule 2: link-local destination takes the link-local source of the oif
    assert str(select_source(s, V6, ip("fe80::99"), "eth1")) == "fe80::2"
    # rule 3: a deprecated address loses
    addrs = (*ADDRS[:6], A("eth0", "2001:db8::1/64", flags=("deprecated",)),
             A("eth0", "2001:db8::2/64"))
    s2 = mksnap(addrs=addrs)
    assert str(select_source(s2, V6, ip("2001:db8:9::1"), "eth0")) == "2001:db8::2"
    # tentative addresses are not candidates
    s3 = mksnap(addrs=(*ADDRS[:6], A("eth0", "2001:db8::1/64", flags=("tentative",)),
                       A("eth0", "2001:db8::3/64")))
    assert str(select_source(s3, V6, ip("2001:db8:9::1"), "eth0")) == "2001:db8::3"


# -- input: martians, rp_filter, forwarding ---------------------------------------------------

def test_input_local_forward_and_broadcast() -> None:
    s = mksnap()
    loc = inp(s, "10.0.0.1", "10.0.0.5", "eth0")
    assert (loc.kind, loc.oif, loc.ok) == (RouteKind.LOCAL, None, True)
    assert inp(s, "192.0.2.1", "10.0.0.5", "eth0").kind is RouteKind.LOCAL  # any local address
    f = inp(s, "8.8.8.8", "192.0.2.5", "eth1")
    assert (f.kind, f.oif, str(f.gateway), f.redirect) == (RouteKind.UNICAST, "eth0",
                                                           "10.0.0.254", False)
    hair = inp(s, "8.8.8.8", "10.0.0.5", "eth0")
    assert hair.redirect and any("redirect" in n for n in hair.notes)
    b = inp(s, "10.0.0.255", "10.0.0.5", "eth0")
    assert b.kind is RouteKind.BROADCAST and b.is_local_delivery
    assert inp(s, "255.255.255.255", "10.0.0.5", "eth0").kind is RouteKind.BROADCAST
    mc = inp(s, "224.0.0.1", "10.0.0.5", "eth0")
    assert mc.kind is RouteKind.MULTICAST and not mc.uncertain
    assert inp(s, "239.1.1.1", "10.0.0.5", "eth0").uncertain


@pytest.mark.parametrize("dst,src,kind", [
    ("10.0.0.1", "127.0.0.1", RouteKind.MARTIAN_SOURCE),
    ("127.0.0.1", "10.0.0.5", RouteKind.MARTIAN_DESTINATION),
    ("10.0.0.1", "224.0.0.5", RouteKind.MARTIAN_SOURCE),
    ("10.0.0.1", "255.255.255.255", RouteKind.MARTIAN_SOURCE),
    ("10.0.0.1", "0.0.0.0", RouteKind.MARTIAN_SOURCE),
    ("0.0.0.0", "10.0.0.5", RouteKind.MARTIAN_DESTINATION),
    ("10.0.0.1", "10.0.0.1", RouteKind.MARTIAN_SOURCE),  # own address, accept_local off
    ("10.0.0.1", "192.0.2.1", RouteKind.MARTIAN_SOURCE),
])
def test_martians(dst: str, src: str, kind: RouteKind) -> None:
    d = inp(mksnap(), dst, src, "eth0")
    assert (d.kind, d.errno) == (kind, "EINVAL")


def test_zeronet_other_than_zero_is_ordinary() -> None:
    # since Linux 5.3 only 0.0.0.0 itself is a zeronet martian
    assert inp(mksnap(), "10.0.0.1", "0.1.2.3", "eth0").kind is RouteKind.LOCAL


def test_route_localnet_is_or_of_all_and_iface() -> None:
    s = mksnap(sysctls={"net.ipv4.conf.all.route_localnet": "1"})
    assert inp(s, "127.0.0.1", "10.0.0.5", "eth0").kind is RouteKind.LOCAL
    s2 = mksnap(sysctls={"net.ipv4.conf.eth0.route_localnet": "1"})
    assert inp(s2, "127.0.0.1", "10.0.0.5", "eth0").kind is RouteKind.LOCAL
    assert inp(s2, "127.0.0.1", "192.0.2.5", "eth1").kind is RouteKind.MARTIAN_DESTINATION


def test_accept_local() -> None:
    s = mksnap(sysctls={"net.ipv4.conf.eth0.accept_local": "1"})
    assert inp(s, "10.0.0.1", "10.0.0.1", "eth0").kind is RouteKind.LOCAL
    strict = mksnap(sysctls={"net.ipv4.conf.all.accept_local": "1",
                             "net.ipv4.conf.all.rp_filter": "1"})
    assert inp(strict, "10.0.0.1", "10.0.0.1", "eth0").kind is RouteKind.LOCAL
    assert inp(strict, "10.0.0.1", "10.0.0.1", "eth1").kind is RouteKind.RP_FILTER


def test_rp_filter_strict_and_loose() -> None:
    routes = [R("10.66.0.0/16", type=RouteType.BLACKHOLE)]
    strict = mksnap(routes, sysctls={"net.ipv4.conf.all.forwarding": "1",
                                     "net.ipv4.conf.eth1.forwarding": "1",
                                     "net.ipv4.conf.eth1.rp_filter": "1"})
    bad = inp(strict, "8.8.8.8", "10.0.0.5", "eth1")  # the way back is eth0
    assert (bad.kind, bad.errno) == (RouteKind.RP_FILTER, "EINVAL")
    assert "strict" in bad.reason and bad.reverse is not None
    assert any("rp_filter" in c.text for c in bad.config)
    assert inp(strict, "8.8.8.8", "192.0.2.5", "eth1").kind is RouteKind.UNICAST
    assert inp(strict, "192.0.2.1", "10.0.0.5", "eth1").kind is RouteKind.RP_FILTER  # local too
    loose = mksnap(routes, sysctls={"net.ipv4.conf.all.forwarding": "1",
                                    "net.ipv4.conf.eth1.forwarding": "1",
                                    "net.ipv4.conf.all.rp_filter": "2",
                                    "net.ipv4.conf.eth1.rp_filter": "1"})  # max(2, 1) = loose
    assert inp(loose, "8.8.8.8", "10.0.0.5", "eth1").kind is RouteKind.UNICAST
    nb = inp(loose, "8.8.8.8", "10.66.0.5", "eth1")  # no route back: blackhole
    assert nb.kind is RouteKind.RP_FILTER and "no route back" in nb.reason


def test_rp_filter_reverse_lookup_uses_mark_only_with_src_valid_mark() -> None:
    routes = [R("default", gateway="192.0.2.2", dev="eth1", table=100)]
    base = {"net.ipv4.conf.all.forwarding": "1", "net.ipv4.conf.eth1.forwarding": "1",
            "net.ipv4.conf.eth1.rp_filter": "1"}
    rules = [rule(100, table=100, fwmark=0x10, fwmask=0xFF)]
    s = mksnap(routes, rules, sysctls=base)
    assert inp(s, "10.0.0.1", "8.8.4.4", "eth1", mark=0x10).kind is RouteKind.RP_FILTER
    s2 = mksnap(routes, rules, sysctls={**base, "net.ipv4.conf.eth1.src_valid_mark": "1"})
    assert inp(s2, "10.0.0.1", "8.8.4.4", "eth1", mark=0x10).kind is RouteKind.LOCAL


def test_forwarding_disabled() -> None:
    s = mksnap(sysctls={"net.ipv4.conf.eth1.forwarding": "0"})
    d = inp(s, "8.8.8.8", "192.0.2.5", "eth1")
    assert (d.kind, d.errno, d.icmp, d.ok) == (RouteKind.FORWARDING_DISABLED, "EHOSTUNREACH",
                                                None, False)
    assert any("forwarding" in c.text for c in d.config)
    assert inp(s, "10.0.0.1", "192.0.2.5", "eth1").kind is RouteKind.LOCAL
    nr = mksnap(base=False, sysctls={"net.ipv4.ip_forward": "0"})
    assert inp(nr, "8.8.8.8", "192.0.2.5", "eth1").errno == "EHOSTUNREACH"


def test_unknown_input_interface() -> None:
    d = inp(mksnap(), "10.0.0.1", "10.0.0.5", "nope")
    assert d.uncertain and d.errno == "ENODEV"


# -- IPv6 -----------------------------------------------------------------------------------------

def test_ipv6_output_and_local() -> None:
    s = mksnap([R("2001:db8:66::/48", type=RouteType.UNREACHABLE, dev="lo"),
                R("2001:db8:67::/48", type=RouteType.PROHIBIT, dev="lo")])
    d = out(s, "2001:db8:99::1")
    assert (d.oif, str(d.gateway), str(d.source)) == ("eth0", "2001:db8::fe", "2001:db8::1")
    c = out(s, "2001:db8:1::5")
    assert (c.oif, c.gateway, str(c.source)) == ("eth1", None, "2001:db8:1::1")
    assert out(s, "2001:db8:66::1").errno == "EHOSTUNREACH"
    assert out(s, "2001:db8:67::1").errno == "EACCES"
    loc = out(s, "2001:db8::1")
    assert (loc.kind, loc.oif) == (RouteKind.LOCAL, "lo")
    assert out(s, "::1").kind is RouteKind.LOCAL


def test_ipv6_link_local_needs_the_interface() -> None:
    s = mksnap()
    d = out(s, "fe80::99")
    assert d.uncertain  # two fe80::/64 routes, no interface given
    e = out(s, "fe80::99", oif="eth1")
    assert (e.oif, str(e.source), e.uncertain) == ("eth1", "fe80::2", False)
    i = inp(s, "fe80::99", "fe80::5", "eth1")
    assert i.oif == "eth1"


def test_ipv6_rules_and_input() -> None:
    routes = [R("default6", gateway="2001:db8:1::2", dev="eth1", table=100, metric=1024)]
    rules = [rule(100, family=V6, table=100, src="2001:db8::/64"),
             rule(110, family=V6, action=RuleAction.UNREACHABLE, dst="2001:db8:53::/48")]
    s = mksnap(routes, rules)
    assert out(s, "2001:db8:99::1").oif == "eth0"  # no source yet: from-rule does not match
    assert out(s, "2001:db8:99::1", src="2001:db8::1").oif == "eth1"
    assert out(s, "2001:db8:53::1").errno == "ENETUNREACH"
    f = inp(s, "2001:db8:99::1", "2001:db8::5", "eth0")
    assert (f.kind, f.oif) == (RouteKind.UNICAST, "eth1")
    assert inp(s, "2001:db8:1::1", "2001:db8::5", "eth0").kind is RouteKind.LOCAL
    assert inp(s, "ff02::1", "fe80::5", "eth0").kind is RouteKind.MULTICAST
    assert inp(s, "::1", "2001:db8::5", "eth0").kind is RouteKind.MARTIAN_DESTINATION
    assert inp(s, "2001:db8::1", "ff02::1", "eth0").kind is RouteKind.MARTIAN_SOURCE
    off = mksnap(routes, rules, sysctls={"net.ipv6.conf.all.forwarding": "0"})
    d = inp(off, "2001:db8:99::1", "2001:db8:1::5", "eth1")
    assert d.kind is RouteKind.FORWARDING_DISABLED and d.errno is None


def test_ipv6_metric_and_backtrack() -> None:
    s = mksnap([R("2001:db8:50::/48", gateway="2001:db8:1::2", dev="eth1", metric=10,
                  flags=("dead",)),
                R("2001:db8:50::/48", gateway="2001:db8::2", dev="eth0", metric=20)])
    assert out(s, "2001:db8:50::1").oif == "eth0"


# -- fib_lookup directly, sysctl accessors, performance -------------------------------------------

def test_fib_lookup_raw() -> None:
    s = mksnap(T100, [rule(100, table=100, iif="eth1")])
    d = fib_lookup(s, family=V4, dst=ip("8.8.8.8"), src=ip("192.0.2.7"), iif="eth1")
    assert (d.oif, d.table, d.rule.priority if d.rule else None) == ("eth1", 100, 100)
    assert fib_lookup(s, family=V4, dst="8.8.8.8").oif == "eth0"
    assert fib_lookup(s, family=V6, dst="2001:db8:1::9").oif == "eth1"


def test_sysctl_accessors() -> None:
    s = mksnap(sysctls={"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.eth0.rp_filter": "2",
                        "net.ipv4.conf.default.accept_local": "1",
                        "net.ipv4.conf.eth0.100.rp_filter": "2",
                        "net.ipv4.conf.all.bc_forwarding": "1",
                        "net.ipv4.conf.eth0.bc_forwarding": "0",
                        "net.ipv4.ip_forward": "1"})
    rp = sysctl.rp_filter(s, "eth0")
    assert rp.value == 2 and not rp.assumed and "max(all=1, eth0=2)" in rp.text()
    assert [c.text for c in rp.config] == ["net.ipv4.conf.all.rp_filter = 1",
                                           "net.ipv4.conf.eth0.rp_filter = 2"]
    assert sysctl.rp_filter(s, "eth1").value == 1
    assert sysctl.rp_filter(s, "eth0.100").value == 2
    al = sysctl.accept_local(s, "eth1")  # falls back to conf.default
    assert al.value == 1 and al.assumed
    assert sysctl.bc_forwarding(s, "eth0").value == 0  # AND
    assert sysctl.ip_forward(s, V4).value == 1
    fwd = sysctl.iface_forwarding(s, V4, "eth0")
    assert fwd.value == 0 and fwd.assumed  # key missing: kernel default 0
    assert sysctl.send_redirects(s, "eth0").value == 1
    assert sysctl.tcp_loose(s).value == 1 and sysctl.tcp_loose(s).assumed
    assert not sysctl.route_localnet(s, "eth0")
    s6 = mksnap(sysctls={"net.ipv6.conf.all.forwarding": "0",
                         "net.ipv6.conf.eth0.force_forwarding": "1"})
    assert sysctl.iface_forwarding(s6, V6, "eth0").value == 1
    assert sysctl.iface_forwarding(s6, V6, "eth1").value == 0


def test_index_is_cached_and_lookups_are_fast() -> None:
    routes = [R(f"10.{i // 256}.{i % 256}.0/24", gateway="10.0.0.2", dev="eth0", table=100)
              for i in range(5000)]
    routes += [R(f"172.16.{i % 256}.{(i // 256) * 16}/28", gateway="192.0.2.2", dev="eth1")
               for i in range(3000)]
    rules = [rule(1000 + i, table=100, fwmark=i + 1) for i in range(200)]
    rules.append(rule(5000, table=100, dst="10.0.0.0/8"))
    s = mksnap(routes, rules)
    t0 = time.perf_counter()
    first = out(s, "10.3.4.5")
    assert routing_index(s) is routing_index(s)
    for i in range(1000):
        d = out(s, f"10.{1 + i % 18}.{i % 256}.9")
        assert d.oif == "eth0" and d.table == 100
    elapsed = time.perf_counter() - t0
    assert first.table == 100
    assert str(out(s, "172.16.5.3").gateway) == "192.0.2.2"
    assert elapsed < 5.0, f"1000 lookups over 8000 routes / 200 rules took {elapsed:.2f}s"
