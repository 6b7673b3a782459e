"""Routing decisions on a HostSnapshot: policy rules, FIB lookup, rp_filter, source selection.

Models the kernel's ``fib_rules_lookup`` (every rule selector and action, goto, nop,
suppress_prefixlength/ifgroup), ``fib_table_lookup`` (longest prefix, tos, metric, error route
types, throw, linkdown/dead nexthops, oif), ``ip_route_input_slow`` (martians, local /
broadcast / forward, ``fib_validate_source`` with rp_filter and accept_local),
``ip_route_output_key_hash_rcu`` (source checks, oif, source selection with
``inet_select_addr``), and the IPv6 counterparts (``ip6_pol_route``, RFC 6724 source selection).
Whatever cannot be decided exactly (multipath hash, several equal default routes, multicast
group membership, l3mdev rules) is marked ``uncertain`` with a note that says why.

Pure: no I/O, no printing, no textual or rich. Indexes are built once per snapshot and cached.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from journey.engine import sysctl
from journey.engine.cache import per_snapshot
from journey.model.family import Family, IPAddress
from journey.model.journey import ConfigRef, PolicyRuleEval, RouteCandidate, RoutingDetail
from journey.model.packet import Packet, proto_name
from journey.model.snapshot import (
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    Address,
    HostSnapshot,
    Interface,
    Nexthop,
    PolicyRule,
    Route,
    RouteType,
    RuleAction,
    table_name,
)

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address


class RouteKind(enum.StrEnum):
    """What the routing decision is."""

    LOCAL = "local"  # delivered to this host
    UNICAST = "unicast"  # sent / forwarded out of ``oif``
    BROADCAST = "broadcast"
    MULTICAST = "multicast"
    BLACKHOLE = "blackhole"
    UNREACHABLE = "unreachable"
    PROHIBIT = "prohibit"
    NO_ROUTE = "no-route"
    RP_FILTER = "rp-filter"
    MARTIAN_SOURCE = "martian-source"
    MARTIAN_DESTINATION = "martian-destination"
    FORWARDING_DISABLED = "forwarding-disabled"  # would be forwarded, but forwarding is off


#: kinds after which the packet goes on (is delivered, sent or forwarded)
PASSING_KINDS = frozenset({RouteKind.LOCAL, RouteKind.UNICAST, RouteKind.BROADCAST,
                           RouteKind.MULTICAST})


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The outcome of a routing decision, with everything needed to explain it."""

    kind: RouteKind
    reason: str  # a sentence a person understands
    route: Route | None = None  # the FIB entry chosen
    rule: PolicyRule | None = None  # the policy rule whose table produced it
    table: int | None = None
    oif: str | None = None  # output interface (None for input local delivery / errors)
    gateway: IPAddress | None = None  # nexthop gateway; None = directly connected
    source: IPAddress | None = None  # the source address the kernel selects (output)
    mtu: int | None = None  # route mtu or the oif's MTU
    detail: RoutingDetail = field(default_factory=lambda: RoutingDetail(direction="lookup"))
    config: tuple[ConfigRef, ...] = ()  # the rule and route lines (and sysctls) that decided
    notes: tuple[str, ...] = ()
    uncertain: bool = False
    errno: str | None = None  # what `ip route get` answers: EHOSTUNREACH, ENETUNREACH, EACCES, EINVAL
    # additions beyond the brief:
    icmp: tuple[int, int] | None = None  # (type, code) the kernel sends back (input decisions)
    nexthop_index: int | None = None  # which nexthop of a multipath route
    alternatives: tuple[Nexthop, ...] = ()  # other nexthops the multipath hash may pick
    reverse: RoutingDetail | None = None  # the rp_filter reverse lookup, when one was made
    redirect: bool = False  # forwarded out of the interface it came in on (ICMP redirect sent)

    @property
    def ok(self) -> bool:
        """The packet goes on (delivered locally, sent or forwarded)."""
        return self.kind in PASSING_KINDS

    @property
    def is_local_delivery(self) -> bool:
        return self.kind in (RouteKind.LOCAL, RouteKind.BROADCAST) or (
            self.kind is RouteKind.MULTICAST and self.oif is None)


# -- address helpers ---------------------------------------------------------------------------

_SCOPES = {"universe": 0, "global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST = 0, 253, 254


def _scope_num(scope: str) -> int:
    if scope in _SCOPES:
        return _SCOPES[scope]
    try:
        return int(scope)
    except ValueError:
        return 0


_NET_LOOP = ipaddress.IPv4Network("127.0.0.0/8")
_NET_MCAST = ipaddress.IPv4Network("224.0.0.0/4")
_NET_LOCAL_MCAST = ipaddress.IPv4Network("224.0.0.0/24")
_LBCAST = IPv4("255.255.255.255")
_V4_ANY = IPv4("0.0.0.0")
_V6_ANY = IPv6("::")


def _v4_multicast(a: IPAddress) -> bool:
    return isinstance(a, IPv4) and a in _NET_MCAST


def _v4_zeronet(a: IPAddress) -> bool:
    # ipv4_is_zeronet() is ``addr == 0`` since Linux 5.3 ("Allow 0.0.0.0/8 as a valid address
    # range"): 0.1.2.3 is an ordinary address (verified with ip route get on 6.18)
    return isinstance(a, IPv4) and a == _V4_ANY


def _v4_loopback(a: IPAddress) -> bool:
    return isinstance(a, IPv4) and a in _NET_LOOP


def _addr(value: object) -> IPAddress:
    if isinstance(value, IPv4 | IPv6):
        return value
    return ipaddress.ip_address(str(value))


# IPv6 address scopes (RFC 4291 / the kernel's __ipv6_addr_type)
_V6_SCOPE_NODE, _V6_SCOPE_LINK, _V6_SCOPE_SITE, _V6_SCOPE_GLOBAL = 0x1, 0x2, 0x5, 0xE


def _v6_scope(a: IPv6) -> int:
    if a.is_multicast:
        return int(a.packed[1]) & 0x0F
    if a == IPv6("::1"):
        return _V6_SCOPE_LINK  # the kernel treats ::1 as link-local scope (addr-select 3.4)
    if a in _V6_LL:
        return _V6_SCOPE_LINK
    if a in _V6_SITE:
        return _V6_SCOPE_SITE
    return _V6_SCOPE_GLOBAL


_V6_LL = ipaddress.IPv6Network("fe80::/10")
_V6_SITE = ipaddress.IPv6Network("fec0::/10")
# ip6addrlbl_init_table: the kernel's default address label table (differs from RFC 6724)
_V6_LABELS: tuple[tuple[ipaddress.IPv6Network, int], ...] = tuple(sorted(
    ((ipaddress.IPv6Network(p), lbl) for p, lbl in (
        ("::/0", 1), ("fc00::/7", 5), ("fec0::/10", 11), ("2002::/16", 2), ("3ffe::/16", 12),
        ("2001::/32", 6), ("2001:10::/28", 7), ("::ffff:0:0/96", 4), ("::/96", 3), ("::1/128", 0),
    )), key=lambda x: -x[0].prefixlen))


def _v6_label(a: IPv6) -> int:
    for net, label in _V6_LABELS:
        if a in net:
            return label
    return 1


def _v6_need_strict(a: IPv6) -> bool:
    return a.is_multicast or a in _V6_LL or a == IPv6("::1")


# -- per-snapshot index ------------------------------------------------------------------------

_ERROR_TYPES = {RouteType.BLACKHOLE: "EINVAL", RouteType.UNREACHABLE: "EHOSTUNREACH",
                RouteType.PROHIBIT: "EACCES", RouteType.NAT: "EINVAL",
                RouteType.XRESOLVE: "EINVAL"}
_ERRNO_TEXT = {"ENETUNREACH": "Network is unreachable", "EHOSTUNREACH": "No route to host",
               "EACCES": "Permission denied", "EINVAL": "Invalid argument",
               "ENODEV": "No such device"}
_DEFAULT_RULES = {
    Family.IPV4: ((0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN), (32767, RT_TABLE_DEFAULT)),
    Family.IPV6: ((0, RT_TABLE_LOCAL), (32766, RT_TABLE_MAIN)),
}


class _Table:
    """One routing table of one family, indexed for longest-prefix match."""

    __slots__ = ("by_len", "count_default", "id", "lens", "maxlen")

    def __init__(self, tid: int, family: Family, routes: Sequence[Route]) -> None:
        self.id = tid
        self.maxlen = 32 if family is Family.IPV4 else 128
        by_len: dict[int, dict[int, list[Route]]] = {}
        for r in routes:
            by_len.setdefault(r.dst.prefixlen, {}).setdefault(int(r.dst.network_address), []).append(r)
        for bucket in by_len.values():
            for lst in bucket.values():
                # fib alias order: tos descending, then priority (metric) ascending
                lst.sort(key=lambda r: (-r.tos, r.metric))
        self.by_len = by_len
        self.lens = sorted(by_len, reverse=True)
        self.count_default = sum(1 for r in routes if r.dst.prefixlen == 0)

    def matching(self, dst: IPAddress) -> Iterator[tuple[int, list[Route]]]:
        """(prefixlen, routes) of every prefix containing ``dst``, longest first."""
        d = int(dst)
        for plen in self.lens:
            shift = self.maxlen - plen
            key = (d >> shift) << shift if shift < self.maxlen else 0
            lst = self.by_len[plen].get(key)
            if lst:
                yield plen, lst


class RoutingIndex:
    """Lookup structures built once per snapshot (tables by prefix length, rules in order)."""

    def __init__(self, snap: HostSnapshot) -> None:
        self.snap = snap
        self.ifaces: dict[str, Interface] = {i.name: i for i in snap.interfaces}
        self.ifaces_in_order = sorted(snap.interfaces, key=lambda i: i.index)
        self.loopback = next((i.name for i in snap.interfaces if i.is_loopback), "lo")
        self.notes: dict[Family, list[str]] = {Family.IPV4: [], Family.IPV6: []}
        self.addrs_by_if: dict[str, list[Address]] = {}
        self.local_addrs: dict[IPAddress, Address] = {}
        for a in snap.addresses:
            self.addrs_by_if.setdefault(a.ifname, []).append(a)
            self.local_addrs.setdefault(a.address, a)
        routes: dict[Family, dict[int, list[Route]]] = {Family.IPV4: {}, Family.IPV6: {}}
        for r in snap.routes:
            routes[r.family].setdefault(r.table, []).append(r)
        for fam in (Family.IPV4, Family.IPV6):
            if RT_TABLE_LOCAL not in routes[fam] and any(
                    a.family is fam for a in snap.addresses):
                routes[fam][RT_TABLE_LOCAL] = self._synth_local(fam)
                self.notes[fam].append(
                    "the snapshot has no local table: it was derived from the addresses")
        self.tables: dict[Family, dict[int, _Table]] = {
            fam: {tid: _Table(tid, fam, rs) for tid, rs in per.items()}
            for fam, per in routes.items()
        }
        self.rules: dict[Family, list[PolicyRule]] = {}
        self.custom_rules: dict[Family, bool] = {}
        for fam in (Family.IPV4, Family.IPV6):
            rules = sorted((r for r in snap.rules if r.family is fam), key=lambda r: r.priority)
            if not rules:
                rules = [PolicyRule(family=fam, priority=p, table=t)
                         for p, t in _DEFAULT_RULES[fam]]
                if snap.routes:
                    self.notes[fam].append(
                        "the snapshot has no policy rules: the kernel's default rules were assumed")
            self.rules[fam] = rules
            default = {(p, t) for p, t in _DEFAULT_RULES[fam]}
            self.custom_rules[fam] = any(
                (r.priority, r.table) not in default or r.action is not RuleAction.LOOKUP
                or r.src or r.dst or r.iif or r.oif or r.fwmark or r.invert
                for r in rules)
        # fib_has_custom_local_routes: a local route added by hand (not by the kernel)
        self.custom_local_routes = any(
            r.type is RouteType.LOCAL and (r.protocol != "kernel" or r.table != RT_TABLE_LOCAL)
            for r in snap.routes if r.family is Family.IPV4)
        self.uses_uidrange = {fam: any(r.uidrange is not None for r in self.rules[fam])
                              for fam in (Family.IPV4, Family.IPV6)}

    def _synth_local(self, fam: Family) -> list[Route]:
        out: list[Route] = []
        for a in self.snap.addresses:
            if a.family is not fam:
                continue
            maxlen = 32 if fam is Family.IPV4 else 128
            out.append(Route(family=fam, table=RT_TABLE_LOCAL,
                             dst=ipaddress.ip_network(f"{a.address}/{maxlen}"),
                             type=RouteType.LOCAL, dev=a.ifname,
                             prefsrc=a.address if fam is Family.IPV4 else None,
                             scope="host", protocol="kernel"))
            if fam is Family.IPV4 and a.prefixlen < 31:
                out.append(Route(family=fam, table=RT_TABLE_LOCAL,
                                 dst=ipaddress.ip_network(f"{a.network.broadcast_address}/32"),
                                 type=RouteType.BROADCAST, dev=a.ifname, prefsrc=a.address,
                                 scope="link", protocol="kernel"))
        if fam is Family.IPV4 and any(i.is_loopback for i in self.snap.interfaces):
            out.append(Route(family=fam, table=RT_TABLE_LOCAL,
                             dst=ipaddress.IPv4Network("127.0.0.0/8"), type=RouteType.LOCAL,
                             dev=self.loopback, prefsrc=IPv4("127.0.0.1"), scope="host",
                             protocol="kernel"))
        return out

    def table(self, family: Family, tid: int) -> _Table | None:
        return self.tables[family].get(tid)

    def primaries(self, ifname: str, family: Family) -> list[Address]:
        return [a for a in self.addrs_by_if.get(ifname, ())
                if a.family is family and "secondary" not in a.flags]

    def goto_target(self, family: Family, prio: int) -> int | None:
        for i, r in enumerate(self.rules[family]):
            if r.priority == prio:
                return i
        return None


@per_snapshot(size=8)
def routing_index(snap: HostSnapshot) -> RoutingIndex:
    """The index of ``snap``, built on first use and cached per snapshot."""
    return RoutingIndex(snap)


# -- flows, rule matching, table lookups ---------------------------------------------------------

@dataclass(slots=True)
class _Flow:
    family: Family
    dst: IPAddress
    src: IPAddress | None  # None: no source yet (saddr 0 / no RT6_LOOKUP_F_HAS_SADDR)
    iif: str | None  # flowi_iif as a name ("lo" for output lookups)
    oif: str | None
    mark: int = 0
    tos: int = 0
    proto: int = 0
    sport: int = 0
    dport: int = 0
    uid: int = 0


@dataclass(slots=True)
class _Hit:
    status: str  # "route" | "error" | "throw" | "none" | "missing"
    route: Route | None = None
    nh: int = 0
    prefixlen: int = 0
    uncertain: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    """The result of a policy-rule walk."""

    hit: _Hit | None = None  # the successful table lookup (route or error route)
    rule: PolicyRule | None = None
    table: int | None = None
    errno: str | None = None  # None: a usable route
    kind: RouteKind = RouteKind.NO_ROUTE
    evals: list[PolicyRuleEval] = field(default_factory=list)
    cands: list[RouteCandidate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uncertain: bool = False


def _nexthops(r: Route) -> tuple[Nexthop, ...]:
    if r.nexthops:
        return r.nexthops
    return (Nexthop(gateway=r.gateway, dev=r.dev, weight=1, flags=r.flags),)


def _nh_text(nh: Nexthop) -> str:
    if nh.gateway is not None:
        return f"via {nh.gateway} dev {nh.dev}" if nh.dev else f"via {nh.gateway}"
    return f"dev {nh.dev} (directly connected)" if nh.dev else "(no nexthop)"


def _rule_where(rule: PolicyRule) -> str:
    return "ip rule" if rule.family is Family.IPV4 else "ip -6 rule"


def _route_ref(r: Route) -> ConfigRef:
    return ConfigRef(kind="route", text=r.text(), where=f"table {table_name(r.table)}")


def _rule_ref(rule: PolicyRule) -> ConfigRef:
    return ConfigRef(kind="rule", text=rule.text(), where=_rule_where(rule))


def _rule_match(rule: PolicyRule, flow: _Flow) -> tuple[bool, str, bool]:
    """(matches, why, uncertain) following fib_rule_match + fib4/fib6_rule_match."""
    ok, why, unc = _rule_selectors(rule, flow)
    if rule.invert:
        return (not ok, ("'not': " + why) if ok else f"'not' of a selector that failed ({why})",
                unc)
    return ok, why, unc


def _rule_selectors(rule: PolicyRule, flow: _Flow) -> tuple[bool, str, bool]:
    if rule.iif is not None and rule.iif != flow.iif:
        have = flow.iif or "none"
        return False, f"iif {rule.iif} does not match the packet's input interface {have}", False
    if rule.oif is not None and rule.oif != flow.oif:
        have = flow.oif or "none (no bound / requested output interface)"
        return False, f"oif {rule.oif} does not match {have}", False
    if rule.fwmark is not None:
        mask = rule.fwmask if rule.fwmask is not None else (0xFFFFFFFF if rule.fwmark else 0)
        if (rule.fwmark ^ flow.mark) & mask:
            return False, f"fwmark {rule.fwmark:#x}/{mask:#x} does not match mark {flow.mark:#x}", \
                False
    if rule.l3mdev:
        return False, "l3mdev (VRF) rules are not modelled", True
    if rule.uidrange is not None and flow.uid not in rule.uidrange:
        return False, f"uid {flow.uid} is not in uidrange {rule.uidrange.text()}", False
    if rule.src is not None and rule.src.prefixlen > 0:
        if flow.family is Family.IPV4:
            src = flow.src if flow.src is not None else _V4_ANY
            if src not in rule.src:
                what = f"source {src}" if flow.src is not None else \
                    "source 0.0.0.0 (not chosen yet at this lookup)"
                return False, f"{what} is not in {rule.src}", False
        else:
            if flow.src is None:
                return False, f"from {rule.src}: the lookup has no source address yet", False
            if flow.src not in rule.src:
                return False, f"source {flow.src} is not in {rule.src}", False
    if rule.dst is not None and rule.dst.prefixlen > 0 and flow.dst not in rule.dst:
        return False, f"destination {flow.dst} is not in {rule.dst}", False
    if rule.tos:
        if flow.family is Family.IPV4:
            masked = flow.tos & 0x1C  # IPTOS_RT_MASK / INET_DSCP_LEGACY_TOS_MASK
            if rule.tos != masked:
                return False, f"tos {rule.tos:#x} does not match the packet's {flow.tos:#x} " \
                              f"(compared as {masked:#x})", False
        elif (rule.tos & 0xFC) != (flow.tos & 0xFC):
            return False, f"dsfield {rule.tos:#x} does not match traffic class {flow.tos:#x}", False
    if rule.ipproto is not None and rule.ipproto != flow.proto:
        return False, f"ipproto {proto_name(rule.ipproto)} does not match " \
                      f"{proto_name(flow.proto) if flow.proto else 'none'}", False
    if rule.sport is not None and flow.sport not in rule.sport:
        return False, f"sport {rule.sport.text()} does not match {flow.sport}", False
    if rule.dport is not None and flow.dport not in rule.dport:
        return False, f"dport {rule.dport.text()} does not match {flow.dport}", False
    return True, "all selectors match", False


def _nh_problem(idx: RoutingIndex, family: Family, nh: Nexthop, route: Route, oif: str | None,
                ignore_linkstate: bool) -> str | None:
    """Why the kernel would not use this nexthop (fib_lookup_good_nhc), or None."""
    flags = set(nh.flags) | set(route.flags)
    if "dead" in flags:
        return f"nexthop {_nh_text(nh)} is dead"
    if "linkdown" in flags and nh.dev and not ignore_linkstate and \
            sysctl.ignore_routes_with_linkdown(idx.snap, family, nh.dev).value:
        return f"dev {nh.dev} has no carrier (linkdown) and ignore_routes_with_linkdown is set"
    if oif is not None and nh.dev != oif:
        return f"dev {nh.dev or 'none'} is not the output interface {oif}"
    return None


def _lookup_table_v4(idx: RoutingIndex, tid: int, flow: _Flow, cands: list[RouteCandidate],
                     ignore_linkstate: bool = False) -> _Hit:
    """fib_table_lookup: longest prefix; within it tos, then metric; error types end it."""
    table = idx.table(Family.IPV4, tid)
    if table is None:
        return _Hit("missing")
    found: _Hit | None = None
    tos = flow.tos & 0x1C
    shown = 0
    for plen, routes in table.matching(flow.dst):
        for r in routes:
            if found is not None:
                if shown < 12:
                    chosen_metric = found.route.metric if found.route is not None else 0
                    why = (f"prefix /{plen} is shorter than the chosen /{found.prefixlen}"
                           if plen < found.prefixlen else
                           f"same prefix, metric {r.metric} is not lower than {chosen_metric}")
                    cands.append(RouteCandidate(r.text(), tid, False, why))
                    shown += 1
                continue
            if r.tos and r.tos != tos:
                cands.append(RouteCandidate(r.text(), tid, False,
                                            f"tos {r.tos:#x} does not match {flow.tos:#x}"))
                continue
            if r.type is RouteType.THROW:
                cands.append(RouteCandidate(r.text(), tid, True,
                                            f"longest prefix /{plen}: throw, leave this table"))
                found = _Hit("throw", r, prefixlen=plen)
                continue
            if r.type in _ERROR_TYPES:
                cands.append(RouteCandidate(r.text(), tid, True,
                                            f"longest prefix /{plen}: {r.type} route"))
                found = _Hit("error", r, prefixlen=plen)
                continue
            problems = []
            for i, nh in enumerate(_nexthops(r)):
                bad = _nh_problem(idx, Family.IPV4, nh, r, flow.oif, ignore_linkstate)
                if bad is None:
                    metric = f", metric {r.metric}" if r.metric else ""
                    cands.append(RouteCandidate(r.text(), tid, True,
                                                f"longest prefix /{plen} containing {flow.dst}"
                                                f"{metric}"))
                    found = _Hit("route", r, nh=i, prefixlen=plen)
                    break
                problems.append(bad)
            if found is None:
                cands.append(RouteCandidate(r.text(), tid, False, "; ".join(problems)))
    return found if found is not None else _Hit("none")


def _lookup_table_v6(idx: RoutingIndex, tid: int, flow: _Flow, cands: list[RouteCandidate],
                     score_oif: str | None, strict_iface: bool,
                     ignore_linkstate: bool = False) -> _Hit:
    """fib6_table_lookup + rt6_select: longest prefix, lowest metric group, device score."""
    table = idx.table(Family.IPV6, tid)
    if table is None:
        return _Hit("missing")
    found: _Hit | None = None
    shown = 0
    for plen, routes in table.matching(flow.dst):
        if found is not None:
            for r in routes:
                if shown < 12:
                    cands.append(RouteCandidate(r.text(), tid, False,
                                                f"prefix /{plen} is shorter than the chosen "
                                                f"/{found.prefixlen}"))
                    shown += 1
            continue
        metrics = sorted({r.metric for r in routes})
        for metric in metrics:
            if found is not None:
                break
            best: list[tuple[int, Route, int]] = []
            for r in routes:
                if r.metric != metric:
                    continue
                dev_ok: list[tuple[int, int]] = []
                problems: list[str] = []
                for i, nh in enumerate(_nexthops(r)):
                    dev = nh.dev or idx.loopback
                    why = _nh_problem(idx, Family.IPV6, Nexthop(nh.gateway, dev, nh.weight, nh.flags),
                                      r, None, ignore_linkstate)
                    if why is not None:
                        problems.append(why)
                        continue
                    score = 2 if (score_oif is None or dev == score_oif) else 0
                    if score == 0 and strict_iface:
                        problems.append(f"dev {dev} is not the interface {score_oif} this "
                                        "lookup is bound to")
                        continue
                    dev_ok.append((score, i))
                if not dev_ok:
                    cands.append(RouteCandidate(r.text(), tid, False, "; ".join(problems)))
                    continue
                score, i = max(dev_ok, key=lambda x: x[0])
                best.append((score, r, i))
            if not best:
                continue
            top = max(s for s, _, _ in best)
            winners = [(r, i) for s, r, i in best if s == top]
            r, i = winners[0]
            hit = _Hit("route", r, nh=i, prefixlen=plen)
            if r.type is RouteType.THROW:
                hit.status = "throw"
            elif r.type in _ERROR_TYPES:
                hit.status = "error"
            if len(winners) > 1:
                hit.uncertain = True
                hit.notes.append(
                    f"{len(winners)} routes to {r.dst} share metric {metric}: the kernel picks "
                    "by neighbour reachability and round-robin (rt6_select); the first is shown")
            why = f"longest prefix /{plen} containing {flow.dst}, lowest usable metric {metric}"
            if score_oif is not None and top == 2 and len(best) > 1:
                why += f", via the interface {score_oif}"
            cands.append(RouteCandidate(r.text(), tid, True, why))
            for s, other, _ in best:
                if other is not r and shown < 12:
                    cands.append(RouteCandidate(other.text(), tid, False,
                                                "same prefix and metric, not preferred" if s == top
                                                else f"not via the interface {score_oif}"))
                    shown += 1
            found = hit
        if found is not None and found.route is not None:
            chosen_metric = found.route.metric
            for r in routes:
                if r.metric > chosen_metric and shown < 12:
                    cands.append(RouteCandidate(r.text(), tid, False, f"metric {r.metric} is "
                                                f"higher than the chosen {chosen_metric}"))
                    shown += 1
    return found if found is not None else _Hit("none")


def _walk_rules(idx: RoutingIndex, flow: _Flow,
                lookup: Callable[[int, list[RouteCandidate]], _Hit]) -> _Walk:
    """fib_rules_lookup: rules in priority order; goto, nop, actions, suppress."""
    fam = flow.family
    rules = idx.rules[fam]
    w = _Walk()
    w.notes.extend(idx.notes[fam])
    i = 0
    steps = 0
    while i < len(rules) and steps < 10000:
        steps += 1
        rule = rules[i]
        text = rule.text()
        ok, why, unc = _rule_match(rule, flow)
        if unc:
            w.uncertain = True
            w.notes.append(f"rule {rule.priority}: {why}")
        if not ok:
            w.evals.append(PolicyRuleEval(text, False, why))
            i += 1
            continue
        if rule.action is RuleAction.GOTO:
            target = idx.goto_target(fam, rule.goto) if rule.goto is not None else None
            if target is None or target <= i:
                w.evals.append(PolicyRuleEval(text, True, f"goto {rule.goto}: no rule has that "
                                              "priority, the rule is skipped"))
                i += 1
                continue
            w.evals.append(PolicyRuleEval(text, True, f"goto the rule with priority {rule.goto}"))
            i = target
            continue
        if rule.action is RuleAction.NOP:
            w.evals.append(PolicyRuleEval(text, True, "nop: go on with the next rule"))
            i += 1
            continue
        if rule.action in (RuleAction.BLACKHOLE, RuleAction.UNREACHABLE, RuleAction.PROHIBIT):
            w.evals.append(PolicyRuleEval(text, True, f"action {rule.action}: the lookup ends"))
            w.rule = rule
            w.errno = {RuleAction.BLACKHOLE: "EINVAL", RuleAction.UNREACHABLE: "ENETUNREACH",
                       RuleAction.PROHIBIT: "EACCES"}[rule.action]
            w.kind = {RuleAction.BLACKHOLE: RouteKind.BLACKHOLE,
                      RuleAction.UNREACHABLE: RouteKind.UNREACHABLE,
                      RuleAction.PROHIBIT: RouteKind.PROHIBIT}[rule.action]
            return w
        tid = rule.table if rule.table is not None else RT_TABLE_MAIN
        hit = lookup(tid, w.cands)
        if hit.uncertain:
            w.uncertain = True
        w.notes.extend(hit.notes)
        tname = table_name(tid)
        if hit.status == "missing":
            w.evals.append(PolicyRuleEval(text, True, f"table {tname} does not exist (empty): "
                                          "go on with the next rule"))
            i += 1
            continue
        if hit.status == "none":
            w.evals.append(PolicyRuleEval(text, True, f"no route to {flow.dst} in table {tname}: "
                                          "go on with the next rule"))
            i += 1
            continue
        if hit.status == "throw":
            w.evals.append(PolicyRuleEval(text, True, f"throw route in table {tname}: go on with "
                                          "the next rule"))
            i += 1
            continue
        if hit.status == "route" and hit.route is not None:
            if rule.suppress_prefixlength is not None and \
                    hit.prefixlen <= rule.suppress_prefixlength:
                w.evals.append(PolicyRuleEval(
                    text, True, f"route /{hit.prefixlen} in table {tname} is suppressed "
                    f"(suppress_prefixlength {rule.suppress_prefixlength}): go on"))
                i += 1
                continue
            if rule.suppress_ifgroup is not None:
                dev = _nexthops(hit.route)[0].dev
                iface = idx.ifaces.get(dev) if dev else None
                if iface is not None and iface.group == rule.suppress_ifgroup:
                    w.evals.append(PolicyRuleEval(
                        text, True, f"route via {dev} (group {iface.group}) is suppressed "
                        f"(suppress_ifgroup {rule.suppress_ifgroup}): go on"))
                    i += 1
                    continue
        w.hit, w.rule, w.table = hit, rule, tid
        r = hit.route
        if hit.status == "error" and r is not None:
            w.errno = _ERROR_TYPES.get(r.type, "EINVAL")
            w.kind = {RouteType.BLACKHOLE: RouteKind.BLACKHOLE,
                      RouteType.UNREACHABLE: RouteKind.UNREACHABLE,
                      RouteType.PROHIBIT: RouteKind.PROHIBIT}.get(r.type, RouteKind.BLACKHOLE)
            w.evals.append(PolicyRuleEval(text, True, f"table {tname}: {r.type} route {r.dst}"))
        else:
            w.errno = None
            w.kind = RouteKind.UNICAST
            w.evals.append(PolicyRuleEval(text, True, f"table {tname}: route {r.text() if r else ''}"))
        return w
    w.errno = "ENETUNREACH"
    w.kind = RouteKind.NO_ROUTE
    return w


def _v4_walk(idx: RoutingIndex, flow: _Flow, ignore_linkstate: bool = False) -> _Walk:
    return _walk_rules(idx, flow, lambda tid, cands: _lookup_table_v4(
        idx, tid, flow, cands, ignore_linkstate))


def _v6_walk(idx: RoutingIndex, flow: _Flow, score_oif: str | None, strict: bool) -> _Walk:
    return _walk_rules(idx, flow, lambda tid, cands: _lookup_table_v6(
        idx, tid, flow, cands, score_oif, strict))


# -- source selection ----------------------------------------------------------------------------

def _inet_select_addr(idx: RoutingIndex, dev: str | None, dst: IPv4 | None,
                      scope: int) -> IPv4 | None:
    """inet_select_addr: a primary address of ``dev`` in ``scope`` (on dst's subnet first),
    else any device's non-link-scope primary address."""
    if dev is not None:
        localnet = RT_SCOPE_LINK if sysctl.route_localnet(idx.snap, dev).value else RT_SCOPE_HOST
        first: IPv4 | None = None
        for a in idx.primaries(dev, Family.IPV4):
            if min(_scope_num(a.scope), localnet) > scope:
                continue
            if not isinstance(a.address, IPv4):
                continue
            if dst is None or dst in a.network:
                return a.address
            if first is None:
                first = a.address
        if first is not None:
            return first
    for iface in idx.ifaces_in_order:
        for a in idx.primaries(iface.name, Family.IPV4):
            s = _scope_num(a.scope)
            if s != RT_SCOPE_LINK and s <= scope and isinstance(a.address, IPv4):
                return a.address
    return None


def _v6_candidates(idx: RoutingIndex, dev: str | None, dst: IPv6) -> list[Address]:
    restrict = dev is not None and (
        dst.is_multicast or _v6_scope(dst) <= _V6_SCOPE_LINK
        or sysctl.use_oif_addrs_only(idx.snap, dev).value)
    names = [dev] if restrict and dev is not None else \
        ([dev] if dev else []) + [i.name for i in idx.ifaces_in_order if i.name != dev]
    out: list[Address] = []
    for name in names:
        iface = idx.ifaces.get(name)
        if iface is not None and not iface.is_up:
            continue
        for a in idx.addrs_by_if.get(name, ()):
            if a.family is not Family.IPV6:
                continue
            if ("tentative" in a.flags and "optimistic" not in a.flags) or "dadfailed" in a.flags:
                continue
            out.append(a)
    return out


def _ipv6_dev_get_saddr(idx: RoutingIndex, dev: str | None, dst: IPv6) -> IPv6 | None:
    """ipv6_dev_get_saddr: RFC 6724 source address selection as the kernel orders its rules."""
    dscope = _v6_scope(dst)
    dlabel = _v6_label(dst)

    def key(a: Address) -> tuple[int, ...]:
        addr = a.address
        assert isinstance(addr, IPv6)
        same = 1 if addr == dst else 0  # rule 1
        s = _v6_scope(addr)
        scope_score = -s if s >= dscope else s - 128  # rule 2
        preferred = 0 if "deprecated" in a.flags else 1  # rule 3
        oif = 1 if dev is None or a.ifname == dev else 0  # rule 5
        label = 1 if _v6_label(addr) == dlabel else 0  # rule 6
        tmp_pref = 1 if sysctl.use_tempaddr(idx.snap, a.ifname).value >= 2 else 0
        privacy = (0 if "temporary" in a.flags else 1) ^ tmp_pref  # rule 7
        common = 128 - (int(addr) ^ int(dst)).bit_length()
        prefix = min(common, a.prefixlen)  # rule 8
        not_opt = 0 if "optimistic" in a.flags else 1
        return (same, scope_score, preferred, oif, label, privacy, prefix, not_opt)

    best: Address | None = None
    best_key: tuple[int, ...] | None = None
    for a in _v6_candidates(idx, dev, dst):
        k = key(a)
        if best_key is None or k > best_key:
            best, best_key = a, k
    if best is None or not isinstance(best.address, IPv6):
        return None
    return best.address


def select_source(snap: HostSnapshot, family: Family, dst: object, oif: str | None,
                  route: Route | None = None) -> IPAddress | None:
    """The source address the kernel picks for a packet to ``dst`` leaving ``oif``.

    The route's ``prefsrc`` wins; IPv4 then uses ``inet_select_addr`` (an address of the
    output interface within the route's scope, on the gateway's subnet first), IPv6 the RFC 6724
    rules of ``ipv6_dev_get_saddr``.
    """
    idx = routing_index(snap)
    d = _addr(dst)
    if route is not None and route.prefsrc is not None:
        return route.prefsrc
    if family is Family.IPV4:
        gw: IPv4 | None = None
        scope = RT_SCOPE_LINK
        if route is not None:
            nhs = _nexthops(route)
            nh = next((n for n in nhs if oif is not None and n.dev == oif), nhs[0])
            gw = nh.gateway if isinstance(nh.gateway, IPv4) else None
            scope = _scope_num(route.scope)
            oif = oif or nh.dev
        return _inet_select_addr(idx, oif, gw, scope)
    if route is not None and oif is None:
        oif = _nexthops(route)[0].dev
    return _ipv6_dev_get_saddr(idx, oif, d) if isinstance(d, IPv6) else None


def is_local(snap: HostSnapshot, addr: object) -> bool:
    """The address belongs to this host: configured on an interface, or (IPv4) of type local in
    the local table (``__ip_dev_find``, e.g. all of 127.0.0.0/8)."""
    idx = routing_index(snap)
    a = _addr(addr)
    if a in idx.local_addrs:
        return True
    fam = Family.of(a)
    for tid in (RT_TABLE_LOCAL,) if fam is Family.IPV4 else tuple(idx.tables[fam]):
        table = idx.table(fam, tid)
        if table is None:
            continue
        for _plen, routes in table.matching(a):
            if any(r.type is RouteType.LOCAL for r in routes):
                return True
            break
    return False


def _local_dev(idx: RoutingIndex, a: IPAddress) -> str | None:
    addr = idx.local_addrs.get(a)
    if addr is not None:
        return addr.ifname
    table = idx.table(Family.of(a), RT_TABLE_LOCAL)
    if table is not None:
        for _plen, routes in table.matching(a):
            for r in routes:
                if r.type is RouteType.LOCAL:
                    return r.dev
            break
    return None


# -- building decisions ------------------------------------------------------------------------

def _mtu(idx: RoutingIndex, route: Route | None, oif: str | None) -> int | None:
    if route is not None and route.mtu:
        return route.mtu
    iface = idx.ifaces.get(oif) if oif else None
    return iface.mtu if iface is not None else None


def _detail(direction: str, w: _Walk | None, *, oif: str | None = None,
            source: IPAddress | None = None, nexthop: str | None = None,
            route_type: str | None = None) -> RoutingDetail:
    route = w.hit.route if (w is not None and w.hit is not None) else None
    return RoutingDetail(
        direction=direction,
        rules=tuple(w.evals) if w else (),
        candidates=tuple(w.cands) if w else (),
        table=w.table if w else None,
        route=route.text() if route is not None else None,
        route_type=route_type or (str(route.type) if route is not None else None),
        nexthop=nexthop,
        source=str(source) if source is not None else None,
        oif=oif,
    )


def _walk_config(w: _Walk | None) -> tuple[ConfigRef, ...]:
    if w is None:
        return ()
    out: list[ConfigRef] = []
    if w.rule is not None:
        out.append(_rule_ref(w.rule))
    if w.hit is not None and w.hit.route is not None:
        out.append(_route_ref(w.hit.route))
    return tuple(out)


def _error_decision(direction: str, w: _Walk, flow: _Flow, *, errno: str | None = None,
                    extra_notes: Sequence[str] = (), icmp: tuple[int, int] | None = None,
                    reason: str | None = None, config: Sequence[ConfigRef] = ()) -> RouteDecision:
    route = w.hit.route if w.hit is not None else None
    if reason is None:
        if w.kind is RouteKind.NO_ROUTE:
            reason = f"no route to {flow.dst}: no policy rule's table has a matching route"
        elif route is not None:
            reason = (f"the route {route.text()} in table {table_name(route.table)} is of type "
                      f"{route.type}")
        elif w.rule is not None:
            reason = f"policy rule '{w.rule.text()}' has action {w.rule.action}"
        else:
            reason = "the lookup failed"
        e = errno or w.errno
        if e:
            reason += f" ({_ERRNO_TEXT.get(e, e)})"
    return RouteDecision(
        kind=w.kind, reason=reason, route=route, rule=w.rule, table=w.table,
        detail=_detail(direction, w), config=_walk_config(w) + tuple(config),
        notes=tuple(w.notes) + tuple(extra_notes), uncertain=w.uncertain,
        errno=errno or w.errno, icmp=icmp)


def _multipath_choice(idx: RoutingIndex, w: _Walk, flow: _Flow,
                      oif_given: bool) -> tuple[int, tuple[Nexthop, ...], list[str], bool]:
    """(nexthop index, alternatives, notes, uncertain) for the route found by ``w``."""
    hit = w.hit
    assert hit is not None and hit.route is not None
    r = hit.route
    nhs = _nexthops(r)
    if len(nhs) <= 1 or oif_given:
        return hit.nh, (), [], False
    usable = [i for i, nh in enumerate(nhs)
              if _nh_problem(idx, flow.family, nh, r, None, False) is None]
    if len(usable) <= 1:
        return (usable[0] if usable else hit.nh), (), [], False
    pol = sysctl.multipath_hash_policy(idx.snap, flow.family)
    alts = tuple(nhs[i] for i in usable)
    weights = ", ".join(f"{_nh_text(nhs[i])} weight {nhs[i].weight}" for i in usable)
    what = {0: "source and destination addresses (L3)", 1: "the 5-tuple (L4)",
            2: "inner L3 headers", 3: "custom fields"}.get(pol.value, f"policy {pol.value}")
    note = (f"multipath route: the kernel hashes {what} (fib_multipath_hash_policy="
            f"{pol.value}) with a per-boot random seed to choose among {weights}; "
            f"the first ({_nh_text(nhs[usable[0]])}) is shown")
    return usable[0], alts, [note], True


# -- public lookups ----------------------------------------------------------------------------

def fib_lookup(snap: HostSnapshot, *, family: Family, dst: object, src: object | None = None,
               iif: str | None = None, oif: str | None = None, mark: int = 0, tos: int = 0,
               proto: int | None = None, sport: int | None = None, dport: int | None = None,
               uid: int | None = None) -> RouteDecision:
    """The policy-rule walk and FIB lookup alone (``fib_lookup`` / ``fib6_rule_lookup``).

    No martian, rp_filter or forwarding checks: see ``route_input`` / ``route_output`` for the
    full decisions. ``iif`` None means no input interface (flowi iif 0).
    """
    idx = routing_index(snap)
    flow = _Flow(family, _addr(dst), _addr(src) if src is not None else None, iif, oif, mark,
                 tos, proto or 0, sport or 0, dport or 0, uid or 0)
    if family is Family.IPV4:
        w = _v4_walk(idx, flow)
    else:
        strict = oif is not None or (isinstance(flow.dst, IPv6) and _v6_need_strict(flow.dst))
        w = _v6_walk(idx, flow, oif or iif, strict)
    if w.errno is not None or w.hit is None or w.hit.route is None:
        return _error_decision("lookup", w, flow)
    return _route_decision(idx, "lookup", w, flow, oif_given=oif is not None,
                           source=flow.src, src_given=flow.src is not None)


def _route_decision(idx: RoutingIndex, direction: str, w: _Walk, flow: _Flow, *, oif_given: bool,
                    source: IPAddress | None, src_given: bool, notes: Sequence[str] = (),
                    kind: RouteKind | None = None, oif_override: str | None = None,
                    no_gateway: bool = False) -> RouteDecision:
    hit = w.hit
    assert hit is not None and hit.route is not None
    r = hit.route
    nh_i, alts, mp_notes, mp_unc = _multipath_choice(idx, w, flow, oif_given)
    nh = _nexthops(r)[nh_i]
    rtype = r.type
    if kind is None:
        kind = {RouteType.LOCAL: RouteKind.LOCAL, RouteType.BROADCAST: RouteKind.BROADCAST,
                RouteType.MULTICAST: RouteKind.MULTICAST,
                RouteType.ANYCAST: RouteKind.LOCAL}.get(rtype, RouteKind.UNICAST)
    oif = oif_override or nh.dev
    gateway = None if (no_gateway or rtype in (RouteType.LOCAL, RouteType.BROADCAST)) \
        else nh.gateway
    if source is None and not src_given:
        if r.prefsrc is not None:
            source = r.prefsrc
        elif flow.family is Family.IPV4:
            gw = nh.gateway if isinstance(nh.gateway, IPv4) else None
            source = _inet_select_addr(idx, nh.dev, gw, _scope_num(r.scope))
        elif isinstance(flow.dst, IPv6):
            source = _ipv6_dev_get_saddr(idx, nh.dev, flow.dst)
    ttext = table_name(w.table) if w.table is not None else "?"
    via = f"via {gateway} " if gateway is not None else ""
    if kind is RouteKind.LOCAL:
        reason = f"{flow.dst} is a local address (table {ttext}: {r.text()})"
    elif kind is RouteKind.BROADCAST:
        reason = f"{flow.dst} is a broadcast address of {nh.dev} (table {ttext})"
    else:
        reason = f"{kind} {via}dev {oif} using table {ttext}: {r.text()}"
    if w.rule is not None and w.rule.priority not in (0, 32766, 32767):
        reason += f" (selected by policy rule {w.rule.priority})"
    all_notes = list(w.notes) + mp_notes + list(notes)
    return RouteDecision(
        kind=kind, reason=reason, route=r, rule=w.rule, table=w.table, oif=oif,
        gateway=gateway, source=source, mtu=_mtu(idx, r, oif),
        detail=_detail(direction, w, oif=oif, source=source, nexthop=_nh_text(nh)),
        config=_walk_config(w), notes=tuple(all_notes), uncertain=w.uncertain or mp_unc,
        errno=None, nexthop_index=nh_i if r.nexthops else None, alternatives=alts)


def _pkt_flow(pkt: Packet, iif: str | None, oif: str | None, *, uid: int,
              src: IPAddress | None) -> _Flow:
    return _Flow(pkt.family, pkt.dst, src, iif, oif, pkt.mark, pkt.tos, pkt.proto,
                 pkt.sport or 0, pkt.dport or 0, uid)


# -- output ------------------------------------------------------------------------------------

def route_output(snap: HostSnapshot, pkt: Packet, *, oif: str | None = None) -> RouteDecision:
    """The routing decision for a locally generated packet (``ip_route_output_key`` /
    ``ip6_route_output``): policy rules with iif lo, the socket's mark and uid, the bound
    interface ``oif``; selects the source address when ``pkt.src`` is None."""
    idx = routing_index(snap)
    notes: list[str] = []
    uid = pkt.uid if pkt.uid is not None else 0
    if pkt.uid is None and idx.uses_uidrange[pkt.family]:
        notes.append("the packet's uid is unknown: uid 0 (root) assumed for uidrange rules")
    if pkt.family is Family.IPV4:
        return _output_v4(idx, pkt, oif, uid, notes)
    return _output_v6(idx, pkt, oif, uid, notes)


def _simple(kind: RouteKind, reason: str, direction: str, *, errno: str | None = None,
            notes: Sequence[str] = (), oif: str | None = None, source: IPAddress | None = None,
            config: Sequence[ConfigRef] = (), uncertain: bool = False,
            icmp: tuple[int, int] | None = None, mtu: int | None = None,
            reverse: RoutingDetail | None = None) -> RouteDecision:
    return RouteDecision(kind=kind, reason=reason, oif=oif, source=source, mtu=mtu,
                         detail=RoutingDetail(direction=direction, oif=oif,
                                              source=str(source) if source else None),
                         config=tuple(config), notes=tuple(notes), uncertain=uncertain,
                         errno=errno, icmp=icmp, reverse=reverse)


def _output_v4(idx: RoutingIndex, pkt: Packet, oif: str | None, uid: int,
               notes: list[str]) -> RouteDecision:
    dst = pkt.dst
    saddr = pkt.src
    d = "output"
    if saddr is not None and isinstance(saddr, IPv4):
        if _v4_multicast(saddr) or saddr == _LBCAST or _v4_zeronet(saddr):
            return _simple(RouteKind.MARTIAN_SOURCE, f"source {saddr} cannot be used to send "
                           "(multicast, broadcast or 0.0.0.0) (Invalid argument)", d,
                           errno="EINVAL", notes=notes)
        if oif is None and (_v4_multicast(dst) or dst == _LBCAST):
            dev = _local_dev(idx, saddr)
            if dev is None:
                return _simple(RouteKind.NO_ROUTE, f"source {saddr} is not a local address "
                               "(Network is unreachable)", d, errno="ENETUNREACH", notes=notes)
            bkind = RouteKind.BROADCAST if dst == _LBCAST else RouteKind.MULTICAST
            return _simple(bkind, f"{bkind} to {dst} leaves through {dev}, the interface of the "
                           f"source address {saddr}", d, oif=dev, source=saddr, notes=notes,
                           mtu=_mtu(idx, None, dev))
        if _local_dev(idx, saddr) is None:
            return _simple(RouteKind.NO_ROUTE, f"source {saddr} is not a local address, so a "
                           "local process cannot send from it (Network is unreachable)", d,
                           errno="ENETUNREACH", notes=notes)
    if oif is not None:
        iface = idx.ifaces.get(oif)
        if iface is None:
            return _simple(RouteKind.NO_ROUTE, f"output interface {oif} does not exist", d,
                           errno="ENODEV", notes=notes)
        if not iface.is_up:
            return _simple(RouteKind.NO_ROUTE, f"output interface {oif} is down "
                           "(Network is unreachable)", d, errno="ENETUNREACH", notes=notes)
        if (isinstance(dst, IPv4) and dst in _NET_LOCAL_MCAST) or dst == _LBCAST or pkt.proto == 2:
            src = saddr or _inet_select_addr(idx, oif, None, RT_SCOPE_LINK)
            okind = RouteKind.BROADCAST if dst == _LBCAST else (
                RouteKind.MULTICAST if _v4_multicast(dst) else RouteKind.UNICAST)
            return _simple(okind, f"{dst} is sent straight out of the bound interface {oif}", d,
                           oif=oif, source=src, notes=notes, mtu=_mtu(idx, None, oif))
        if saddr is None:
            if _v4_multicast(dst):
                saddr = _inet_select_addr(idx, oif, None, RT_SCOPE_UNIVERSE)
            elif dst == _V4_ANY:
                saddr = _inet_select_addr(idx, oif, None, RT_SCOPE_HOST)
    if dst == _V4_ANY:
        local = saddr or IPv4("127.0.0.1")
        return _simple(RouteKind.LOCAL, f"destination 0.0.0.0 means this host: delivered to "
                       f"{local} over {idx.loopback}", d, oif=idx.loopback, source=local,
                       notes=notes, mtu=_mtu(idx, None, idx.loopback))
    flow = _pkt_flow(pkt, idx.loopback, oif, uid=uid, src=saddr)
    w = _v4_walk(idx, flow)
    w.notes[:0] = notes
    if w.errno is not None or w.hit is None or w.hit.route is None:
        if oif is not None:
            src = saddr or _inet_select_addr(idx, oif, None, RT_SCOPE_LINK)
            dec = _error_decision(d, w, flow)
            return RouteDecision(
                kind=RouteKind.UNICAST, oif=oif, source=src, mtu=_mtu(idx, None, oif),
                reason=f"no usable route via {oif} ({dec.reason}); the socket is bound to {oif},"
                       f" so the kernel assumes {dst} is directly on that link",
                detail=_detail(d, w, oif=oif, source=src, nexthop=f"dev {oif} (assumed on-link)"),
                config=dec.config, notes=dec.notes, uncertain=w.uncertain)
        return _error_decision(d, w, flow)
    r = w.hit.route
    if r.type is RouteType.LOCAL:
        src = saddr or r.prefsrc or dst
        dec = _route_decision(idx, d, w, flow, oif_given=oif is not None, source=src,
                              src_given=True, kind=RouteKind.LOCAL,
                              oif_override=idx.loopback)
        return dec
    # fib_select_path
    extra: list[str] = []
    uncertain = False
    if oif is None and len(_nexthops(r)) == 1 and w.hit.prefixlen == 0 and \
            r.type is RouteType.UNICAST and w.table is not None:
        table = idx.table(Family.IPV4, w.table)
        if table is not None and table.count_default > 1:
            same = [x for x in table.by_len.get(0, {}).get(0, [])
                    if x.metric == r.metric and x.tos == r.tos and x.type is RouteType.UNICAST
                    and x.gateway is not None]
            if len(same) > 1:
                uncertain = True
                extra.append(f"{len(same)} default routes share metric {r.metric} in table "
                             f"{table_name(w.table)}: the kernel picks one by neighbour "
                             "reachability (fib_select_default); the first is shown")
    kind: RouteKind | None = None
    no_gw = False
    if dst == _LBCAST:
        kind, no_gw = RouteKind.BROADCAST, True
    elif _v4_multicast(dst):
        kind = RouteKind.MULTICAST
        no_gw = w.hit.prefixlen < 4
    elif r.type is RouteType.BROADCAST:
        kind, no_gw = RouteKind.BROADCAST, True
    dec = _route_decision(idx, d, w, flow, oif_given=oif is not None, source=saddr,
                          src_given=saddr is not None, notes=extra, kind=kind, no_gateway=no_gw)
    src = dec.source
    if src is not None and _v4_loopback(src) and dec.oif is not None:
        iface = idx.ifaces.get(dec.oif)
        if iface is not None and not iface.is_loopback and \
                not sysctl.route_localnet(idx.snap, dec.oif).value:
            return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} is a loopback address and "
                           f"cannot leave through {dec.oif} (route_localnet is off) "
                           "(Invalid argument)", d, errno="EINVAL", notes=dec.notes,
                           config=dec.config)
    if uncertain:
        dec = _replace(dec, uncertain=True)
    return dec


def _replace(dec: RouteDecision, **changes: object) -> RouteDecision:
    return dataclasses.replace(dec, **changes)  # type: ignore[arg-type]


def _output_v6(idx: RoutingIndex, pkt: Packet, oif: str | None, uid: int,
               notes: list[str]) -> RouteDecision:
    d = "output"
    dst = pkt.dst
    assert isinstance(dst, IPv6)
    saddr = pkt.src if pkt.src is not None and pkt.src != _V6_ANY else None
    if oif is not None and oif not in idx.ifaces:
        return _simple(RouteKind.NO_ROUTE, f"output interface {oif} does not exist", d,
                       errno="ENODEV", notes=notes)
    strict = _v6_need_strict(dst) or (oif is not None and saddr is None)
    flow = _pkt_flow(pkt, idx.loopback, oif, uid=uid, src=saddr)
    w = _v6_walk(idx, flow, oif, strict)
    w.notes[:0] = notes
    if w.errno is not None or w.hit is None or w.hit.route is None:
        return _error_decision(d, w, flow)
    r = w.hit.route
    if r.type in (RouteType.LOCAL, RouteType.ANYCAST):
        src = saddr or r.prefsrc or _ipv6_dev_get_saddr(idx, _nexthops(r)[0].dev, dst)
        return _route_decision(idx, d, w, flow, oif_given=oif is not None, source=src,
                               src_given=True, kind=RouteKind.LOCAL, oif_override=idx.loopback)
    kind = RouteKind.MULTICAST if dst.is_multicast else None
    return _route_decision(idx, d, w, flow, oif_given=oif is not None, source=saddr,
                           src_given=saddr is not None, kind=kind)


# -- forwarding checks that need routing -------------------------------------------------------

def forward_redirect(snap: HostSnapshot, pkt: Packet, dec: RouteDecision) -> tuple[bool, str]:
    """Does forwarding ``pkt`` (arrived on ``pkt.iif``) along ``dec`` make the kernel send an
    ICMP redirect to its source? Returns (sent, why).

    IPv4 (``__mkroute_input`` / ``ip_rt_send_redirect``): it leaves through the interface it
    came in on, send_redirects is on (all OR dev), and the source itself is directly connected
    through that interface (``fib_validate_source`` > 0: the route back to it has no gateway);
    with shared_media off the source (and gateway) must also be in one of its subnets.
    IPv6 (``ip6_forward`` / ``ndisc_send_redirect``): same interface, the target (the gateway,
    or the destination when on-link) is the destination or link-local, the interface has a
    link-local address, and the route back to the source through it has no gateway.
    Both are rate-limited per peer (not modelled: the first one is sent).
    """
    iif, oif, src = pkt.iif, dec.oif, pkt.src
    if iif is None or oif is None or iif != oif or src is None:
        return False, ""
    if pkt.family is Family.IPV4:
        if not sysctl.send_redirects(snap, iif).value:
            return False, f"send_redirects is off on {iif}: no ICMP redirect"
        back = fib_lookup(snap, family=Family.IPV4, dst=src, src=pkt.dst,
                          iif=routing_index(snap).loopback)
        if back.kind is not RouteKind.UNICAST or back.oif != iif or back.gateway is not None:
            return False, (f"the source {src} is not directly connected through {iif} (the "
                           "route back to it has a gateway): no ICMP redirect")
        if not sysctl.shared_media(snap, iif).value:
            nets = [ipaddress.ip_network(f"{a.address}/{a.prefixlen}", strict=False)
                    for a in snap.addresses
                    if a.ifname == iif and a.address.version == 4]
            need = [src] + ([dec.gateway] if dec.gateway is not None else [])
            if not all(any(x in n for n in nets) for x in need):
                return False, f"shared_media is off and {src} is not in a subnet of {iif}"
        return True, (f"it leaves through {iif}, the interface it came in on, and the sender "
                      f"{src} is on that link: the kernel sends it an ICMP redirect "
                      f"(send_redirects on {iif})")
    target = dec.gateway if dec.gateway is not None else pkt.dst
    if target != pkt.dst and not (isinstance(target, IPv6) and target.is_link_local):
        return False, f"the redirect target {target} is not link-local: no redirect"
    if not any(a.ifname == iif and isinstance(a.address, IPv6) and a.address.is_link_local
               and "tentative" not in a.flags for a in snap.addresses):
        return False, f"{iif} has no link-local address: no redirect"
    back = fib_lookup(snap, family=Family.IPV6, dst=src, oif=iif)
    if back.gateway is not None or back.kind is not RouteKind.UNICAST:
        return False, f"the sender {src} is not a neighbour on {iif}: no redirect"
    return True, (f"it leaves through {iif}, the interface it came in on, and the sender {src} "
                  "is a neighbour: the kernel sends it an ICMPv6 redirect (ndisc_send_redirect)")


def beyond_scope(pkt: Packet, dec: RouteDecision) -> bool:
    """IPv6 ``ip6_forward``: a link-local source cannot be forwarded to another link (the
    kernel answers ICMPv6 destination unreachable, beyond scope of source address)."""
    src = pkt.src
    return (isinstance(src, IPv6) and src.is_link_local and pkt.iif is not None
            and dec.oif is not None and dec.oif != pkt.iif)


# -- input -------------------------------------------------------------------------------------

_ICMP_V4 = {"ENETUNREACH": (3, 0), "EHOSTUNREACH": (3, 1), "EACCES": (3, 13)}
_ICMP_V6 = {"ENETUNREACH": (1, 0), "EHOSTUNREACH": (1, 0), "EACCES": (1, 1)}


def route_input(snap: HostSnapshot, pkt: Packet) -> RouteDecision:
    """The routing decision for a packet arriving on ``pkt.iif`` (``ip_route_input_noref`` /
    ``ip6_route_input``): martians, local / broadcast / multicast delivery, forwarding, and
    rp_filter / accept_local through ``fib_validate_source``."""
    idx = routing_index(snap)
    if pkt.iif is None:
        return _simple(RouteKind.NO_ROUTE, "the packet has no input interface", "input",
                       uncertain=True)
    if pkt.iif not in idx.ifaces:
        return _simple(RouteKind.NO_ROUTE, f"input interface {pkt.iif} is not in the snapshot",
                       "input", errno="ENODEV", uncertain=True)
    if pkt.family is Family.IPV4:
        return _input_v4(idx, pkt)
    return _input_v6(idx, pkt)


@dataclass(slots=True)
class _Validation:
    ok: bool
    kind: RouteKind = RouteKind.RP_FILTER
    reason: str = ""
    config: list[ConfigRef] = field(default_factory=list)
    reverse: RoutingDetail | None = None
    uncertain: bool = False
    notes: list[str] = field(default_factory=list)


def _validate_source(idx: RoutingIndex, pkt: Packet, src: IPv4, dst: IPv4,
                     dev: str, oif: str | None) -> _Validation:
    """fib_validate_source: rp_filter, accept_local, and the martian local-source check."""
    snap = idx.snap
    rpf = sysctl.rp_filter(snap, dev)
    acc = sysctl.accept_local(snap, dev)
    cfg = [*rpf.config]
    redirects = sysctl.send_redirects(snap, dev).value
    if rpf.value == 0 and (dev != oif or not redirects):
        if acc.value:
            return _Validation(True, config=[*cfg, *acc.config],
                               reason="rp_filter is off and accept_local is on")
        if not (idx.custom_local_routes or idx.custom_rules[Family.IPV4]):
            if src in idx.local_addrs:
                return _Validation(False, RouteKind.MARTIAN_SOURCE,
                                   f"source {src} is an address of this host and accept_local "
                                   f"is off on {dev} (martian source)", [*cfg, *acc.config])
            return _Validation(True, config=cfg, reason="rp_filter is off")
    # __fib_validate_source: reverse lookup with src as destination
    vmark = sysctl.src_valid_mark(snap, dev)
    flow = _Flow(Family.IPV4, src, dst if dst != _V4_ANY else None,
                 oif or idx.loopback, None, pkt.mark if vmark.value else 0, pkt.tos, pkt.proto,
                 pkt.dport or 0, pkt.sport or 0, 0)
    w = _v4_walk(idx, flow)
    rev = _detail("reverse (rp_filter)", w)
    mode = {0: "off", 1: "strict", 2: "loose"}.get(rpf.value, str(rpf.value))
    no_addr = not idx.primaries(dev, Family.IPV4)
    if w.errno is not None or w.hit is None or w.hit.route is None:
        if rpf.value:
            return _Validation(False, RouteKind.RP_FILTER,
                               f"rp_filter ({mode}) on {dev}: no route back to the source {src}",
                               cfg, rev, w.uncertain, list(w.notes))
        return _Validation(True, config=cfg, reverse=rev, reason="no route back to the source, "
                           "but rp_filter is off")
    r = w.hit.route
    cfg.extend(_walk_config(w))
    if r.type is not RouteType.UNICAST and not (r.type is RouteType.LOCAL and acc.value):
        why = (f"source {src} is an address of this host and accept_local is off on {dev}"
               if r.type is RouteType.LOCAL else
               f"the route back to source {src} is of type {r.type}")
        return _Validation(False, RouteKind.MARTIAN_SOURCE, why + " (martian source)",
                           [*cfg, *acc.config], rev, w.uncertain, list(w.notes))
    devs = {nh.dev for nh in _nexthops(r)}
    if dev in devs or (r.type is RouteType.LOCAL and dev == idx.loopback):
        return _Validation(True, config=cfg, reverse=rev,
                           reason=f"the route back to {src} uses {dev}")
    if no_addr:
        if rpf.value:
            return _Validation(False, RouteKind.RP_FILTER,
                               f"rp_filter ({mode}): {dev} has no IPv4 address", cfg, rev)
        return _Validation(True, config=cfg, reverse=rev)
    if rpf.value == 1:
        back = ", ".join(sorted(d for d in devs if d)) or "no interface"
        return _Validation(False, RouteKind.RP_FILTER,
                           f"rp_filter is strict on {dev} ({rpf.how or 'rp_filter=1'}) and the "
                           f"route back to source {src} leaves through {back}, not {dev}",
                           cfg, rev, w.uncertain, list(w.notes))
    return _Validation(True, config=cfg, reverse=rev,
                       reason=f"rp_filter ({mode}) accepts: a route back to {src} exists")


def _input_v4(idx: RoutingIndex, pkt: Packet) -> RouteDecision:
    snap = idx.snap
    dev = pkt.iif
    assert dev is not None
    d = "input"
    src = pkt.src if isinstance(pkt.src, IPv4) else _V4_ANY
    dst = pkt.dst
    assert isinstance(dst, IPv4)
    lnet = sysctl.route_localnet(snap, dev)

    def martian(kind: RouteKind, why: str, cfg: Sequence[ConfigRef] = ()) -> RouteDecision:
        return _simple(kind, why + " (Invalid argument)", d, errno="EINVAL", config=cfg)

    if _v4_multicast(dst):
        return _input_v4_multicast(idx, pkt, src, dst, dev)
    if _v4_multicast(src) or src == _LBCAST:
        return martian(RouteKind.MARTIAN_SOURCE, f"source {src} is a multicast or broadcast "
                       "address: martian source")
    if dst == _LBCAST or (src == _V4_ANY and dst == _V4_ANY):
        return _brd_input(idx, pkt, src, dst, dev, None)
    if _v4_zeronet(src):
        return martian(RouteKind.MARTIAN_SOURCE, f"source {src} is 0.0.0.0: martian source")
    if _v4_zeronet(dst):
        return martian(RouteKind.MARTIAN_DESTINATION, f"destination {dst} is 0.0.0.0: martian "
                       "destination")
    if _v4_loopback(dst):
        if not lnet.value:
            return martian(RouteKind.MARTIAN_DESTINATION, f"destination {dst} is a loopback "
                           f"address arriving on {dev} and route_localnet is off: martian "
                           "destination", lnet.config)
    elif _v4_loopback(src) and not lnet.value:
        return martian(RouteKind.MARTIAN_SOURCE, f"source {src} is a loopback address arriving "
                       f"on {dev} and route_localnet is off: martian source", lnet.config)
    flow = _pkt_flow(pkt, dev, None, uid=0, src=src)
    w = _v4_walk(idx, flow)
    fwd = sysctl.iface_forwarding(snap, Family.IPV4, dev)
    if w.errno is not None or w.hit is None or w.hit.route is None:
        if not fwd.value:
            return _error_decision(
                d, w, flow, errno="EHOSTUNREACH", config=fwd.config,
                extra_notes=[f"forwarding is off on {dev}: the packet is dropped silently "
                             "(no ICMP error)"])
        return _error_decision(d, w, flow, icmp=_ICMP_V4.get(w.errno or ""), config=fwd.config)
    r = w.hit.route
    if r.type is RouteType.BROADCAST:
        if sysctl.bc_forwarding(snap, dev).value:
            dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True,
                                  kind=RouteKind.BROADCAST)
            return _replace(dec, uncertain=True, notes=(*dec.notes, "bc_forwarding is on: the "
                            "directed broadcast is forwarded as well (not modelled further)"))
        return _brd_input(idx, pkt, src, dst, dev, w)
    if r.type is RouteType.LOCAL:
        v = _validate_source(idx, pkt, src, dst, dev, None)
        if not v.ok:
            return _invalid_source(d, v, w)
        dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True,
                              kind=RouteKind.LOCAL)
        return _replace(dec, oif=None, reverse=v.reverse, config=dec.config + tuple(v.config),
                        uncertain=dec.uncertain or v.uncertain,
                        reason=f"{dst} is a local address: delivered to this host "
                               f"(table {table_name(w.table or 0)}: {r.text()})")
    if not fwd.value:
        nh = _nexthops(r)[w.hit.nh]
        return RouteDecision(
            kind=RouteKind.FORWARDING_DISABLED,
            reason=f"{dst} is not a local address and would be forwarded via {nh.dev}, but "
                   f"forwarding is off on {dev} ({fwd.config[0].text}): dropped, no ICMP "
                   "(No route to host)",
            route=r, rule=w.rule, table=w.table,
            detail=_detail(d, w, nexthop=_nh_text(nh)),
            config=_walk_config(w) + fwd.config, notes=tuple(w.notes), uncertain=w.uncertain,
            errno="EHOSTUNREACH")
    if r.type is not RouteType.UNICAST:
        return _replace(_error_decision(d, w, flow), kind=RouteKind.MARTIAN_DESTINATION,
                        errno="EINVAL", icmp=None,
                        reason=f"the route to {dst} is of type {r.type}, which cannot be "
                               "forwarded: martian destination (Invalid argument)")
    dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True)
    v = _validate_source(idx, pkt, src, dst, dev, dec.oif)
    if not v.ok:
        return _invalid_source(d, v, w)
    redirect = dec.oif == dev and bool(sysctl.send_redirects(snap, dev).value)
    notes = list(dec.notes)
    if redirect:
        notes.append(f"the packet leaves through {dev}, the interface it came in on: the "
                     "kernel also sends an ICMP redirect to the source (send_redirects)")
    return _replace(dec, reverse=v.reverse, redirect=redirect, notes=tuple(notes),
                    config=dec.config + fwd.config + tuple(v.config), source=None,
                    uncertain=dec.uncertain or v.uncertain,
                    reason=f"forwarded {'via ' + str(dec.gateway) + ' ' if dec.gateway else ''}"
                           f"dev {dec.oif} using table {table_name(w.table or 0)}: {r.text()}")


def _invalid_source(d: str, v: _Validation, w: _Walk) -> RouteDecision:
    return RouteDecision(
        kind=v.kind, reason=v.reason + " (Invalid argument)", route=None, rule=None,
        table=w.table, detail=_detail(d, w), config=_walk_config(w) + tuple(v.config),
        notes=tuple(w.notes) + tuple(v.notes), uncertain=w.uncertain or v.uncertain,
        errno="EINVAL", reverse=v.reverse)


def _brd_input(idx: RoutingIndex, pkt: Packet, src: IPv4, dst: IPv4, dev: str,
               w: _Walk | None) -> RouteDecision:
    d = "input"
    cfg: list[ConfigRef] = list(_walk_config(w))
    rev = None
    unc = False
    if src != _V4_ANY:
        v = _validate_source(idx, pkt, src, _V4_ANY, dev, None)
        if not v.ok:
            return _invalid_source(d, v, w or _Walk())
        cfg.extend(v.config)
        rev, unc = v.reverse, v.uncertain
    what = "the limited broadcast address" if dst == _LBCAST else f"a broadcast address of {dev}"
    return RouteDecision(
        kind=RouteKind.BROADCAST, reason=f"{dst} is {what}: delivered to this host",
        route=w.hit.route if w and w.hit else None, rule=w.rule if w else None,
        table=w.table if w else None, detail=_detail(d, w, route_type="broadcast"),
        config=tuple(cfg), notes=tuple(w.notes) if w else (), uncertain=unc, reverse=rev)


def _input_v4_multicast(idx: RoutingIndex, pkt: Packet, src: IPv4, dst: IPv4,
                        dev: str) -> RouteDecision:
    d = "input"
    if _v4_multicast(src) or src == _LBCAST:
        return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} is a multicast or broadcast "
                       "address: martian source (Invalid argument)", d, errno="EINVAL")
    if _v4_loopback(src) and not sysctl.route_localnet(idx.snap, dev).value:
        return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} is a loopback address: martian "
                       "source (Invalid argument)", d, errno="EINVAL")
    if _v4_zeronet(src):
        if dst not in _NET_LOCAL_MCAST and pkt.proto != 2:
            return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} to {dst}: martian source "
                           "(Invalid argument)", d, errno="EINVAL")
        rev = None
    else:
        v = _validate_source(idx, pkt, src, _V4_ANY, dev, None)
        if not v.ok:
            return _invalid_source(d, v, _Walk())
        rev = v.reverse
    joined = dst == IPv4("224.0.0.1")
    notes = [] if joined else [f"whether this host joined {dst} on {dev} is not in the snapshot; "
                               "delivery assumes a member socket exists"]
    return RouteDecision(kind=RouteKind.MULTICAST, reason=f"{dst} is a multicast group: "
                         f"delivered to members on this host", detail=RoutingDetail(
                             direction=d, route_type="multicast"),
                         notes=tuple(notes), uncertain=not joined, reverse=rev)


def _input_v6(idx: RoutingIndex, pkt: Packet) -> RouteDecision:
    d = "input"
    dev = pkt.iif
    assert dev is not None
    dst = pkt.dst
    assert isinstance(dst, IPv6)
    src = pkt.src if isinstance(pkt.src, IPv6) else _V6_ANY
    iface = idx.ifaces.get(dev)
    is_lo = iface is not None and iface.is_loopback
    note_rcv = ["ipv6_rcv drops it before routing (ip route get does not apply this check)"]
    if not is_lo and dst == IPv6("::1"):
        return _simple(RouteKind.MARTIAN_DESTINATION, f"destination ::1 arriving on {dev}: "
                       "dropped", d, notes=note_rcv)
    if dst.is_multicast and (int(dst.packed[1]) & 0x0F == 0 or
                             (int(dst.packed[1]) & 0x0F == 1 and not is_lo)):
        return _simple(RouteKind.MARTIAN_DESTINATION, f"multicast destination {dst} has scope "
                       "reserved/interface-local: dropped", d, notes=note_rcv)
    if src.is_multicast:
        return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} is multicast: dropped", d,
                       notes=note_rcv)
    if src.ipv4_mapped is not None:
        return _simple(RouteKind.MARTIAN_SOURCE, f"source {src} is IPv4-mapped: dropped", d,
                       notes=note_rcv)
    flow = _pkt_flow(pkt, dev, None, uid=0, src=src)
    w = _v6_walk(idx, flow, dev, _v6_need_strict(dst))
    if w.errno is not None or w.hit is None or w.hit.route is None:
        return _error_decision(d, w, flow, icmp=_ICMP_V6.get(w.errno or "")
                               if w.kind is not RouteKind.BLACKHOLE else None)
    r = w.hit.route
    if r.type in (RouteType.LOCAL, RouteType.ANYCAST):
        dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True,
                              kind=RouteKind.LOCAL)
        return _replace(dec, oif=None, reason=f"{dst} is a local address: delivered to this "
                        f"host (table {table_name(w.table or 0)}: {r.text()})")
    if r.type is RouteType.MULTICAST or dst.is_multicast:
        dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True,
                              kind=RouteKind.MULTICAST)
        joined = dst in (IPv6("ff02::1"), IPv6("ff01::1"))
        notes = () if joined else (f"whether this host joined {dst} on {dev} is not in the "
                                   "snapshot; delivery assumes a member socket exists",)
        return _replace(dec, oif=None, uncertain=dec.uncertain or not joined,
                        notes=dec.notes + notes,
                        reason=f"{dst} is a multicast group: delivered to members on this host")
    dec = _route_decision(idx, d, w, flow, oif_given=False, source=None, src_given=True)
    fwd = sysctl.iface_forwarding(idx.snap, Family.IPV6, dev)
    if not fwd.value:
        return _replace(dec, kind=RouteKind.FORWARDING_DISABLED, source=None,
                        config=dec.config + fwd.config,
                        reason=f"{dst} is not a local address and would be forwarded via "
                               f"{dec.oif}, but IPv6 forwarding is off ({fwd.config[0].text}): "
                               "ip6_forward drops it",
                        notes=(*dec.notes, "ip route get still shows the route: the kernel "
                                           "checks forwarding later, in ip6_forward"))
    return _replace(dec, source=None, config=dec.config + fwd.config,
                    reason=f"forwarded {'via ' + str(dec.gateway) + ' ' if dec.gateway else ''}"
                           f"dev {dec.oif} using table {table_name(w.table or 0)}: {r.text()}")
