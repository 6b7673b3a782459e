"""Native nftables rulesets in the netfilter pipeline: which base chains run, and what their
rules do to a packet.

- ``native_ruleset(snap)``: the snapshot's ``nft -j list ruleset`` dump, parsed (cached), with
  the tables iptables-nft made removed (``iptables_nft_tables``): those are evaluated from the
  iptables-save dump (their ``xt`` parameters are lost in JSON), never twice.
- ``native_base_chains(snap)``: the ip/ip6/inet base chains as ``pipeline.BaseChain`` values
  (backend ``"native"``), so the walker runs them in priority order with the iptables tables.
- ``walk_native(snap, base, env)``: one base chain for one packet, with the kernel's chain
  semantics (jump / goto / return / continue, an accept ends only this base chain, the policy at
  the end), every rule evaluated with the first expression that failed (as nft text).
- ``run_netdev_ingress(snap, pkt, iif)``: the netdev/inet ingress chains, run by
  ``simulate`` right after tc ingress (devices from the ``nft list chains`` dump).

Expressions are compiled once per rule into closures over a per-packet ``Env`` (the same one
the iptables matches use). What cannot be decided exactly is an ``Unsure`` with the result
assumed and why (limit: not exceeded; numgen / jhash: the value is chance/hash dependent, the
first map entry is taken; xt: parameters lost; unknown expressions: assumed to match), so the
rule and the verdict are marked uncertain. Nothing is guessed silently.

Pure: depends on ``journey.model``, the engine's netfilter modules, ``journey.engine.routing``
(lazily, for fib) and ``journey.model.nft_text`` (pure text); no I/O, no textual, no rich.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from journey.engine.cache import per_snapshot
from journey.engine.netfilter.matches import DSCP_CLASSES, PROTOCOLS, SERVICES, Env
from journey.engine.netfilter.pipeline import BaseChain, Hook
from journey.engine.netfilter.targets import (
    RejectSpec,
    TargetResult,
    _binding,
    masquerade_source,
    redirect_address,
)
from journey.errors import JourneyError
from journey.model.family import Family, IPAddress
from journey.model.journey import (
    ConfigRef,
    RuleEval,
    RuleRef,
    Stage,
    StageKind,
    StageResult,
)
from journey.model.nft import JSON, JMap, NftChain, NftRule, NftRuleset, NftSet, NftTable
from journey.model.nft_text import expr_text, stmt_text
from journey.model.packet import Packet
from journey.model.ruleset import Backend
from journey.model.snapshot import HostSnapshot

__all__ = [
    "NFT_CHAINS_DUMP",
    "NFT_DUMP",
    "NativeResult",
    "NativeRuleset",
    "ingress_devices",
    "iptables_nft_tables",
    "native_base_chains",
    "native_ruleset",
    "run_netdev_ingress",
    "walk_native",
]

NFT_DUMP = "nft -j list ruleset"
MAX_DEPTH = 16  # nf_tables refuses deeper jump stacks (NFT_JUMP_STACK_SIZE)
IP_HOOKS = {h.value: h for h in Hook}
IPT_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})

# -- value domains --------------------------------------------------------------------------------

MISSING = object()  # the header / key does not exist for this packet: the expression breaks


class _Missing(Exception):
    """Raised by getters when the header or key does not exist (nft breaks the rule)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Unsure(Exception):
    """Raised by getters when the value cannot be known; ``assume`` is the rule outcome taken."""

    def __init__(self, note: str, value: object = None) -> None:
        super().__init__(note)
        self.note = note
        self.value = value


CT_STATE = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16,
             "dnat": 32, "dying": 512}
CT_STATUS_OF = {"EXPECTED": 1, "SEEN_REPLY": 2, "ASSURED": 4, "CONFIRMED": 8, "SRC_NAT": 16,
                "DST_NAT": 32, "DYING": 512}
CT_DIR = {"original": 0, "reply": 1}
TCP_FLAGS = {"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64, "cwr": 128}
PKTTYPE = {"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}
NFPROTO = {"ipv4": 2, "ipv6": 10, "inet": 1, "arp": 3, "bridge": 7, "netdev": 5}
ETHERTYPE = {"ip": 0x0800, "ip6": 0x86DD, "arp": 0x0806, "vlan": 0x8100, "8021q": 0x8100,
             "8021ad": 0x88A8}
FIB_TYPE = {"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
            "blackhole": 6, "unreachable": 7, "prohibit": 8}
IFTYPE = {"ether": 1, "ppp": 512, "ipip": 768, "ipip6": 769, "loopback": 772, "sit": 776,
          "ipgre": 778, "ip6gre": 823, "none": 65534}
ECN = {"not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3}
ICMP_TYPE = {"echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
             "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
             "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
             "timestamp-reply": 14, "info-request": 15, "info-reply": 16,
             "address-mask-request": 17, "address-mask-reply": 18}
ICMP6_TYPE = {"destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
              "parameter-problem": 4, "echo-request": 128, "echo-reply": 129,
              "mld-listener-query": 130, "mld-listener-report": 131, "mld-listener-done": 132,
              "mld-listener-reduction": 132, "nd-router-solicit": 133, "nd-router-advert": 134,
              "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136, "nd-redirect": 137,
              "router-renumbering": 138, "ind-neighbor-solicit": 141, "ind-neighbor-advert": 142,
              "mld2-listener-report": 143}
ICMP_CODE = {"net-unreachable": 0, "host-unreachable": 1, "prot-unreachable": 2,
             "port-unreachable": 3, "frag-needed": 4, "net-prohibited": 9, "host-prohibited": 10,
             "admin-prohibited": 13}
ICMP6_CODE = {"no-route": 0, "admin-prohibited": 1, "addr-unreachable": 3, "port-unreachable": 4,
              "policy-fail": 5, "reject-route": 6}
BOOL = {"exists": 1, "missing": 0, "true": 1, "false": 0}
NAMED: dict[str, dict[str, int]] = {
    "ct_state": CT_STATE, "ct_status": CT_STATUS, "ct_dir": CT_DIR, "tcp_flag": TCP_FLAGS,
    "pkt_type": PKTTYPE, "nf_proto": NFPROTO, "ether_type": ETHERTYPE, "fib_addrtype": FIB_TYPE,
    "iface_type": IFTYPE, "ecn": ECN, "icmp_type": ICMP_TYPE, "icmpv6_type": ICMP6_TYPE,
    "icmp_code": {**ICMP_CODE}, "icmpv6_code": ICMP6_CODE, "dscp": DSCP_CLASSES,
    "inet_proto": PROTOCOLS, "inet_service": SERVICES, "boolean": BOOL,
}
BITMASK = frozenset({"ct_state", "ct_status", "tcp_flag"})
# datatype names of named sets -> our kinds
SET_TYPES = {"ipv4_addr": "ipv4_addr", "ipv6_addr": "ipv6_addr", "inet_service": "inet_service",
             "inet_proto": "inet_proto", "ifname": "ifname", "iface_index": "ifname",
             "mark": "mark", "ether_addr": "ether_addr", "ether_type": "ether_type",
             "ct_state": "ct_state", "ct_status": "ct_status", "icmp_type": "icmp_type",
             "icmpv6_type": "icmpv6_type", "verdict": "verdict", "integer": "integer",
             "uid": "integer", "gid": "integer", "pkt_type": "pkt_type", "nf_proto": "nf_proto",
             "dscp": "dscp", "ecn": "ecn", "tcp_flag": "tcp_flag", "ipv4_addr_": "ipv4_addr"}


def _mac_int(s: str) -> int:
    return int(s.replace(":", ""), 16)


def const(kind: str, v: JSON) -> object:
    """A constant of the given kind as the evaluator compares it."""
    if isinstance(v, bool):
        return int(v)
    if kind in ("ipv4_addr", "ipv6_addr"):
        if isinstance(v, int):
            return v
        return int(ipaddress.ip_address(str(v)))
    if kind == "ifname":
        return str(v)
    if kind == "ether_addr":
        return _mac_int(str(v)) if isinstance(v, str) else v
    if kind == "verdict":
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        table = NAMED.get(kind)
        if table is not None and v in table:
            return table[v]
        if kind == "fib_oif" or kind == "string":
            return v
        try:
            return int(v, 0)
        except ValueError:
            pass
        for t in NAMED.values():
            if v in t:
                return t[v]
        raise ValueError(f"cannot read {v!r} as {kind}")
    if isinstance(v, tuple):
        out = 0
        for x in v:
            c = const(kind, x)
            if not isinstance(c, int):
                raise ValueError(f"cannot OR {x!r}")
            out |= c
        return out
    raise ValueError(f"cannot read {v!r} as {kind}")


# -- compiled expressions ---------------------------------------------------------------------

Getter = Callable[[Env], object]


@dataclass(slots=True)
class _St:
    """Per-walk state beyond Env: notes gathered while evaluating a rule."""

    notes: list[str] = field(default_factory=list)
    uncertain: bool = False


class _Cx:
    """Compile context: the ruleset, the table and the family."""

    __slots__ = ("family", "nft", "set_cache", "snap", "table")

    def __init__(self, snap: HostSnapshot, nft: NativeRuleset, table: NftTable) -> None:
        self.snap = snap
        self.nft = nft
        self.table = table
        self.family = table.family
        self.set_cache: dict[str, _SetM] = {}


def _pf(env: Env) -> Family:
    return env.pkt.family


_PORT_PROTOS = frozenset({6, 17, 33, 132, 136})


def _need_proto(env: Env, proto: int | tuple[int, ...], name: str) -> None:
    p = env.pkt.proto
    if (p != proto) if isinstance(proto, int) else (p not in proto):
        raise _Missing(f"not a {name} packet")


def _need_v(env: Env, v: int) -> None:
    if env.pkt.family.version != v:
        raise _Missing(f"not an IPv{v} packet")


def _addr_int(a: IPAddress | None) -> int:
    if a is None:
        raise _Unsure("source address not chosen yet")
    return int(a)


def _payload(proto: str, fld: str) -> tuple[Getter, str]:
    """Getter and kind of a payload field."""
    def unsure(note: str) -> Getter:
        def g(env: Env) -> object:
            raise _Unsure(note)
        return g

    if proto in ("ip", "ip6"):
        v = 4 if proto == "ip" else 6
        akind = "ipv4_addr" if v == 4 else "ipv6_addr"

        def wrap(fn: Callable[[Packet], object]) -> Getter:
            def g(env: Env) -> object:
                _need_v(env, v)
                return fn(env.pkt)
            return g
        table: dict[str, tuple[Callable[[Packet], object], str]] = {
            "saddr": (lambda p: _addr_int(p.src), akind),
            "daddr": (lambda p: int(p.dst), akind),
            "protocol": (lambda p: p.proto, "inet_proto"),
            "nexthdr": (lambda p: p.proto, "inet_proto"),
            "ttl": (lambda p: p.ttl, "integer"),
            "hoplimit": (lambda p: p.ttl, "integer"),
            "length": (lambda p: p.ip_length if v == 4 else p.ip_length - 40, "integer"),
            "dscp": (lambda p: p.tos >> 2, "dscp"),
            "ecn": (lambda p: p.tos & 3, "ecn"),
            "version": (lambda p: p.version or v, "integer"),
            "hdrlength": (lambda p: p.ihl, "integer"),
            "frag-off": (lambda p: (p.frag_offset // 8) | (0x2000 if p.more_fragments else 0)
                         | (0x4000 if p.df else 0), "integer"),
        }
        got = table.get(fld)
        if got is None:
            return unsure(f"{proto} {fld} is not part of the packet model"), "integer"
        return wrap(got[0]), got[1]
    if proto in ("tcp", "udp", "udplite", "sctp", "dccp", "th"):
        pnum: int | tuple[int, ...] = {"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132,
                                       "dccp": 33}.get(proto, tuple(_PORT_PROTOS))
        if fld in ("sport", "dport"):
            src = fld == "sport"

            def gp(env: Env) -> object:
                _need_proto(env, pnum, proto)
                port = env.pkt.sport if src else env.pkt.dport
                if port is None:
                    raise _Unsure(f"{proto} {fld} not given in the packet")
                return port
            if proto == "th":
                def gth(env: Env) -> object:
                    if env.pkt.proto not in _PORT_PROTOS:
                        raise _Unsure(f"th {fld} reads bytes {0 if src else 2}-{1 if src else 3} "
                                      f"of the {env.pkt.proto} header, not modelled")
                    return gp(env)
                return gth, "inet_service"
            return gp, "inet_service"
        if proto == "tcp" and fld == "flags":
            def gf(env: Env) -> object:
                _need_proto(env, 6, "tcp")
                return env.pkt.flag_bits
            return gf, "tcp_flag"
        if fld == "length" and proto in ("udp", "udplite"):
            def gl(env: Env) -> object:
                _need_proto(env, 17 if proto == "udp" else 136, proto)
                return env.pkt.ip_length - (20 if env.pkt.family is Family.IPV4 else 40)
            return gl, "integer"
        return unsure(f"{proto} {fld} is not part of the packet model"), "integer"
    if proto in ("icmp", "icmpv6"):
        pn = 1 if proto == "icmp" else 58
        tk = "icmp_type" if pn == 1 else "icmpv6_type"
        ck = "icmp_code" if pn == 1 else "icmpv6_code"
        attr = {"type": ("icmp_type", tk), "code": ("icmp_code", ck), "id": ("icmp_id", "integer")}.get(fld)
        if attr is None:
            return unsure(f"{proto} {fld} is not part of the packet model"), "integer"
        name, kind = attr

        def gi(env: Env) -> object:
            _need_proto(env, pn, proto)
            val = getattr(env.pkt, name)
            if val is None:
                if name == "icmp_code":
                    return 0
                raise _Unsure(f"{proto} {fld} not given in the packet")
            return val
        return gi, kind
    if proto == "ether":
        if fld in ("saddr", "daddr"):
            a = "src_mac" if fld == "saddr" else "dst_mac"

            def ge(env: Env) -> object:
                if env.local or env.hook in (Hook.OUTPUT, Hook.POSTROUTING):
                    raise _Missing("no link-layer header on this hook")
                mac = getattr(env.pkt, a)
                if mac is None:
                    raise _Unsure(f"ether {fld} not given in the packet")
                return _mac_int(mac)
            return ge, "ether_addr"
        if fld == "type":
            def gt(env: Env) -> object:
                if env.local or env.hook in (Hook.OUTPUT, Hook.POSTROUTING):
                    raise _Missing("no link-layer header on this hook")
                return 0x0800 if env.pkt.family is Family.IPV4 else 0x86DD
            return gt, "ether_type"
    if proto == "vlan":
        def gv(env: Env) -> object:
            if env.pkt.vlan is None:
                raise _Missing("the packet has no VLAN tag")
            if fld == "id":
                return env.pkt.vlan
            raise _Unsure(f"vlan {fld} is not part of the packet model")
        return gv, "integer"
    if proto == "arp":
        def ga(env: Env) -> object:
            raise _Missing("not an ARP packet")
        return ga, "integer"
    return unsure(f"payload {proto} {fld} is not modelled"), "integer"


def _iface(env: Env, which: str) -> str:
    name = env.in_iface if which == "i" else env.out_iface
    if name is None:
        raise _Missing(f"no {'input' if which == 'i' else 'output'} interface on this hook")
    return name


def _meta(key: str) -> tuple[Getter, str]:
    def g_unsure(note: str) -> Getter:
        def g(env: Env) -> object:
            raise _Unsure(note)
        return g

    if key in ("iif", "iifname", "oif", "oifname"):
        w = key[0]

        def gi(env: Env) -> object:
            return _iface(env, w)
        return gi, "ifname"
    if key in ("iiftype", "oiftype"):
        w = key[0]

        def gt(env: Env) -> object:
            iface = env.snap.interface(_iface(env, w))
            if iface is None:
                raise _Unsure("interface not in the snapshot")
            return 772 if iface.is_loopback else 1
        return gt, "iface_type"
    if key in ("iifgroup", "oifgroup"):
        w = key[0]

        def gg(env: Env) -> object:
            iface = env.snap.interface(_iface(env, w))
            return iface.group if iface is not None else 0
        return gg, "integer"
    if key in ("ibrname", "obrname", "ibridgename", "obridgename"):
        w = key[0]

        def gb(env: Env) -> object:
            iface = env.snap.interface(_iface(env, w))
            if iface is None or iface.master is None:
                raise _Missing("not a bridge port")
            return iface.master
        return gb, "ifname"
    simple: dict[str, tuple[Getter, str]] = {
        "mark": (lambda env: env.pkt.mark, "mark"),
        "l4proto": (lambda env: env.pkt.proto, "inet_proto"),
        "nfproto": (lambda env: 2 if env.pkt.family is Family.IPV4 else 10, "nf_proto"),
        "protocol": (lambda env: 0x0800 if env.pkt.family is Family.IPV4 else 0x86DD, "ether_type"),
        "length": (lambda env: env.pkt.ip_length, "integer"),
        "nftrace": (lambda env: 0, "integer"),
        "priority": (lambda env: 0, "integer"),
        "secpath": (lambda env: 0, "boolean"),
    }
    if key in simple:
        return simple[key]
    if key == "skuid":
        def gu(env: Env) -> object:
            if not env.local or env.hook not in (Hook.OUTPUT, Hook.POSTROUTING):
                raise _Missing("no local socket owns this packet")
            if env.pkt.uid is None:
                raise _Unsure("the sending process's uid is not known")
            return env.pkt.uid
        return gu, "integer"
    if key == "pkttype":
        def gp(env: Env) -> object:
            from journey.engine.netfilter.matches import _pkt_type

            t, exact = _pkt_type(env)
            if not exact:
                raise _Unsure(f"packet type assumed {t}", PKTTYPE.get(t, 0))
            return {"unicast": 0, "broadcast": 1, "multicast": 2}.get(t, 3)
        return gp, "pkt_type"
    notes = {"skgid": "the sending process's gid is not in the snapshot",
             "random": "meta random is chance-dependent", "cpu": "the CPU is not known",
             "cgroup": "the socket's cgroup is not in the snapshot",
             "time": "the time of day is not modelled", "day": "the day is not modelled",
             "hour": "the hour is not modelled", "rtclassid": "route realms are not modelled"}
    return g_unsure(notes.get(key, f"meta {key} is not modelled")), "integer"


def _ct_tuple(env: Env, d: str | None) -> object:
    ct = env.ct
    if ct is None or ct.entry is None:
        raise _Missing("the packet has no conntrack entry")
    e = ct.entry
    if d == "reply":
        return e.reply
    return e.orig


def _ct(key: str, d: str | None, fam: str | None) -> tuple[Getter, str]:
    if key == "state":
        def gs(env: Env) -> object:
            ct = env.ct
            if env.notrack:
                return CT_STATE["untracked"]
            if ct is None:
                return CT_STATE["invalid"]
            return CT_STATE.get(str(ct.state).lower(), 1)
        return gs, "ct_state"
    if key == "direction":
        def gd(env: Env) -> object:
            ct = env.ct
            if ct is None or ct.direction is None:
                raise _Missing("the packet has no conntrack entry")
            return CT_DIR[ct.direction]
        return gd, "ct_dir"
    if key == "status":
        def gst(env: Env) -> object:
            ct = env.ct
            if ct is None or ct.entry is None:
                raise _Missing("the packet has no conntrack entry")
            bits = 0
            for s in ct.status or ct.entry.status:
                bits |= CT_STATUS_OF.get(s, 0)
            return bits
        return gst, "ct_status"
    if key == "mark":
        def gm(env: Env) -> object:
            if env.ct is None:
                raise _Missing("the packet has no conntrack entry")
            return env.ct_mark
        return gm, "mark"
    if key == "zone":
        return (lambda env: env.ct_zone), "integer"
    if key == "l3proto":
        return (lambda env: 2 if env.pkt.family is Family.IPV4 else 10), "nf_proto"
    if key == "protocol":
        def gpr(env: Env) -> object:
            if env.ct is None or env.ct.entry is None:
                raise _Missing("the packet has no conntrack entry")
            return env.ct.entry.proto
        return gpr, "inet_proto"
    base = key.split()[-1]
    if base in ("saddr", "daddr"):
        kind = "ipv6_addr" if (fam == "ip6" or key.startswith("ip6")) else "ipv4_addr"

        def ga(env: Env) -> object:
            t = _ct_tuple(env, d)
            a = t.src if base == "saddr" else t.dst  # type: ignore[attr-defined]
            if (a.version == 6) != (kind == "ipv6_addr"):
                raise _Missing("conntrack entry of the other family")
            return int(a)
        return ga, kind
    if base in ("proto-src", "proto-dst"):
        def gp(env: Env) -> object:
            t = _ct_tuple(env, d)
            v = t.sport if base == "proto-src" else t.dport  # type: ignore[attr-defined]
            if v is None:
                raise _Missing("the conntrack entry has no ports")
            return v
        return gp, "inet_service"

    def gu(env: Env) -> object:
        raise _Unsure(f"ct {key} is not modelled")
    return gu, "integer"


def _fib(result: str, flags: tuple[str, ...]) -> tuple[Getter, str]:
    """nft_fib4_eval / nft_fib6_eval: type via the local table, oif via a route lookup."""
    use_daddr = "daddr" in flags
    use_iif = "iif" in flags
    use_oif = "oif" in flags
    use_mark = "mark" in flags

    def gtype(env: Env) -> object:
        from journey.engine.netfilter.matches import addr_type

        pkt = env.pkt
        addr = pkt.dst if use_daddr else pkt.src
        if addr is None:
            raise _Unsure("source address not chosen yet")
        dev = env.in_iface if use_iif else env.out_iface if use_oif else None
        t = addr_type(env.snap, addr, dev).lower()
        return FIB_TYPE.get(t, 1)

    def goif(env: Env) -> object:
        pkt = env.pkt
        if env.hook is Hook.PREROUTING and env.in_iface == "lo":
            return env.in_iface  # nft_fib_is_loopback
        dst = pkt.dst if use_daddr else pkt.src
        src = pkt.src if use_daddr else pkt.dst
        if dst is None:
            raise _Unsure("source address not chosen yet")
        if pkt.family is Family.IPV4 and src is not None and int(src) == 0 and (
                int(pkt.dst) == 0xFFFFFFFF or pkt.dst in ipaddress.ip_network("224.0.0.0/24")):
            return env.in_iface or ""
        oif = env.out_iface if use_oif else env.in_iface if use_iif else None
        try:
            from journey.engine import routing
        except ImportError:
            raise _Unsure("routing engine not available for fib") from None
        try:
            dec = routing.fib_lookup(env.snap, family=pkt.family, dst=dst,
                                     src=src if src is not None and not src.is_unspecified else None,
                                     mark=pkt.mark if use_mark else 0, tos=pkt.tos & 0xFC)
        except (JourneyError, ValueError) as e:
            raise _Unsure(f"fib lookup failed: {e}") from None
        kind = str(dec.kind)
        if kind == "local":
            return ""  # the kernel stores 0 for RTN_LOCAL results
        if kind not in ("unicast", "broadcast", "multicast"):
            return ""
        devs: list[str] = []
        if dec.oif:
            devs.append(dec.oif)
        route = dec.route
        if route is not None:
            devs += [nh.dev for nh in route.nexthops if nh.dev]
            if route.dev:
                devs.append(route.dev)
        if oif is None:
            return dec.oif or (devs[0] if devs else "")
        return oif if oif in devs else ""

    if result == "type":
        return gtype, "fib_addrtype"
    return goif, "fib_oif"


# -- sets ---------------------------------------------------------------------------------------

class _SetM:
    """A compiled set or map: exact keys in a dict, intervals and component-wise entries in lists."""

    __slots__ = ("exact", "intervals", "kinds", "name", "wild")

    def __init__(self, name: str, kinds: tuple[str, ...]) -> None:
        self.name = name
        self.kinds = kinds
        self.exact: dict[object, JSON] = {}
        self.intervals: list[tuple[tuple[object, ...], JSON]] = []  # per component: value or (lo, hi)
        self.wild: list[tuple[str, JSON]] = []  # ifname wildcards

    def add(self, key: JSON, data: JSON) -> None:
        kinds = self.kinds
        if isinstance(key, JMap) and key.single() is not None and key.items[0][0] == "concat":
            comps = key.items[0][1]
            assert isinstance(comps, tuple)
        else:
            comps = (key,)
        if len(kinds) != len(comps):
            kinds = (kinds + (kinds[-1],) * len(comps))[: len(comps)] if kinds else ("integer",) * len(comps)
        parts: list[object] = []
        simple = True
        for k, c in zip(kinds, comps, strict=True):
            p = _interval(k, c)
            if isinstance(p, tuple):
                simple = False
            parts.append(p)
        if simple:
            if len(parts) == 1:
                v = parts[0]
                if isinstance(v, str) and v.endswith("*") and not v.endswith("\\*"):
                    self.wild.append((v[:-1], data))
                    return
                self.exact[v] = data
            else:
                self.exact[tuple(parts)] = data
        else:
            self.intervals.append((tuple(parts), data))

    def lookup(self, value: object) -> tuple[bool, JSON]:
        if value in self.exact:
            return True, self.exact[value]
        vals = value if isinstance(value, tuple) else (value,)
        for parts, data in self.intervals:
            if len(parts) != len(vals):
                continue
            for p, v in zip(parts, vals, strict=True):
                if isinstance(p, tuple):
                    if not (isinstance(v, int) and p[0] <= v <= p[1]):
                        break
                elif p != v:
                    break
            else:
                return True, data
        if isinstance(value, str):
            for prefix, data in self.wild:
                if value.startswith(prefix):
                    return True, data
        return False, None


def _interval(kind: str, c: JSON) -> object:
    """A set element component: a value, or (lo, hi) for a prefix or range."""
    if isinstance(c, JMap):
        one = c.single()
        if one is not None:
            k, body = one
            if k == "prefix" and isinstance(body, JMap):
                addr = ipaddress.ip_address(str(body.get("addr")))
                ln = body.get("len")
                assert isinstance(ln, int)
                net = ipaddress.ip_network(f"{addr}/{ln}", strict=False)
                return (int(net.network_address), int(net.broadcast_address))
            if k == "range" and isinstance(body, tuple) and len(body) == 2:
                lo, hi = const(kind, body[0]), const(kind, body[1])
                return (lo, hi)
            if k == "elem" and isinstance(body, JMap):
                return _interval(kind, body.get("val"))
    return const(kind, c)


def _compile_set(kinds: tuple[str, ...], elems: tuple[JSON, ...], name: str) -> _SetM:
    m = _SetM(name, kinds)
    for e in elems:
        if isinstance(e, tuple) and len(e) == 2:
            m.add(e[0], e[1])
        else:
            m.add(e, None)
    return m


def _named_set(cx: _Cx, ref: str) -> _SetM:
    name = ref[1:]
    got = cx.set_cache.get(name)
    if got is None:
        s = cx.table.set(name)
        if s is None:
            raise ValueError(f"no set {name} in table {cx.table.family} {cx.table.name}")
        kinds = tuple(SET_TYPES.get(t, "integer") for t in s.type)
        got = _SetM(name, kinds)
        for el in s.elements:
            got.add(el.key, el.data)
        cx.set_cache[name] = got
    return got


def named_set_of(cx: _Cx, ref: str) -> NftSet | None:
    return cx.table.set(ref[1:])


# -- expression compiler --------------------------------------------------------------------------

def _concat_kind(kinds: list[str]) -> str:
    return "concat:" + ",".join(kinds)


def compile_expr(cx: _Cx, e: JSON) -> tuple[Getter, str]:
    """A left-hand side (or statement argument) expression: getter and kind."""
    if isinstance(e, JMap):
        one = e.single()
        if one is not None:
            k, body = one
            if k == "payload" and isinstance(body, JMap):
                if "protocol" in body:
                    return _payload(str(body.get("protocol")), str(body.get("field")))
                return _unsure_getter(f"raw payload {expr_text(e)} is not part of the packet model")
            if k == "meta" and isinstance(body, JMap):
                return _meta(str(body.get("key")))
            if k == "ct" and isinstance(body, JMap):
                d = body.get("dir")
                f = body.get("family")
                return _ct(str(body.get("key")), str(d) if d else None, str(f) if f else None)
            if k == "fib" and isinstance(body, JMap):
                flags = body.get("flags")
                fl = tuple(str(x) for x in flags) if isinstance(flags, tuple) else (str(flags),)
                return _fib(str(body.get("result")), fl)
            if k == "concat" and isinstance(body, tuple):
                parts = [compile_expr(cx, x) for x in body]
                getters = [g for g, _ in parts]

                def gc(env: Env) -> object:
                    return tuple(g(env) for g in getters)
                return gc, _concat_kind([kd for _, kd in parts])
            if k in ("&", "|", "^", "<<", ">>") and isinstance(body, tuple) and len(body) == 2:
                g0, kind = compile_expr(cx, body[0])
                rhs = body[1]
                if isinstance(rhs, JMap):
                    g1, _ = compile_expr(cx, rhs)
                else:
                    c = const(kind if k in ("&", "|", "^") else "integer", rhs)

                    def g1(env: Env, c: object = c) -> object:
                        return c
                op = k

                def gb(env: Env) -> object:
                    a, b = g0(env), g1(env)
                    if not isinstance(a, int) or not isinstance(b, int):
                        raise _Unsure(f"binary {op} on a non-number")
                    if op == "&":
                        return a & b
                    if op == "|":
                        return a | b
                    if op == "^":
                        return a ^ b
                    if op == "<<":
                        return (a << b) & 0xFFFFFFFF
                    return a >> b
                return gb, kind
            if k == "map" and isinstance(body, JMap):
                return _compile_map(cx, body)
            if k in ("numgen", "jhash", "symhash") and isinstance(body, JMap):
                return _compile_hash(cx, k, body)
            if k in ("exthdr", "tcp option", "sctp chunk", "rt", "socket", "osf", "ipsec"):
                return _unsure_getter(f"{expr_text(e)} is not part of the packet model")
        return _unsure_getter(f"expression {expr_text(e)} is not modelled")
    # immediate values as an argument (e.g. mark set 0x10)
    v = e

    def gi(env: Env) -> object:
        return v
    return gi, "immediate"


def _unsure_getter(note: str) -> tuple[Getter, str]:
    def g(env: Env) -> object:
        raise _Unsure(note)
    return g, "integer"


def _compile_hash(cx: _Cx, kind: str, body: JMap) -> tuple[Getter, str]:
    mod = body.get("mod")
    off = body.get("offset") or 0
    assert isinstance(mod, int) and isinstance(off, int)
    what = {"numgen": f"numgen {body.get('mode')}", "jhash": "jhash", "symhash": "symhash"}[kind]

    def g(env: Env) -> object:
        raise _Unsure(f"{what} mod {mod} picks a value that depends on "
                      f"{'chance / a counter' if kind == 'numgen' else 'a hash with a boot-time seed'}"
                      f": value {off} (the first) assumed", off)
    return g, "integer"


def _compile_map(cx: _Cx, body: JMap) -> tuple[Getter, str]:
    gk, kkind = compile_expr(cx, body.get("key"))
    data = body.get("data")
    kinds = tuple(kkind[7:].split(",")) if kkind.startswith("concat:") else (kkind,)
    dkind = "immediate"
    if isinstance(data, str) and data.startswith("@"):
        s = named_set_of(cx, data)
        sm = _named_set(cx, data)
        if s is not None and s.map_type is not None:
            dkind = "map:" + ",".join(SET_TYPES.get(t, "integer") for t in s.map_type)
    elif isinstance(data, JMap) and data.single() is not None and data.items[0][0] == "set":
        elems = data.items[0][1]
        sm = _compile_set(kinds, elems if isinstance(elems, tuple) else (elems,), "anonymous map")
    else:
        return _unsure_getter(f"map {expr_text(data)} is not modelled")

    def g(env: Env) -> object:
        try:
            key = gk(env)
        except _Unsure as u:
            if u.value is None:
                raise
            key = u.value
            found, val = sm.lookup(key)
            if not found:
                raise _Missing(f"{u.note}; no map entry for it") from None
            raise _Unsure(u.note, val) from None
        found, val = sm.lookup(key)
        if not found:
            raise _Missing("no map entry for this key")
        return val
    return g, dkind


# -- relational ---------------------------------------------------------------------------------

Pred = Callable[[object], bool]


def _rhs_pred(cx: _Cx, kind: str, op: str, right: JSON) -> Pred:
    kinds = tuple(kind[7:].split(",")) if kind.startswith("concat:") else (kind,)
    bitmask = kind in BITMASK
    if isinstance(right, str) and right.startswith("@"):
        sm = _named_set(cx, right)
        return _neg(lambda v: sm.lookup(v)[0], op == "!=")
    if isinstance(right, JMap):
        one = right.single()
        if one is not None and one[0] == "set":
            body = one[1]
            sm = _compile_set(kinds, body if isinstance(body, tuple) else (body,), "anonymous set")
            return _neg(lambda v: sm.lookup(v)[0], op == "!=")
        if one is not None and one[0] in ("prefix", "range"):
            iv = _interval(kind, right)
            if not isinstance(iv, tuple):
                raise ValueError(f"{expr_text(right)} is not an interval")
            lo, hi = iv
            return _neg(lambda v: isinstance(v, int) and lo <= v <= hi, op == "!=")
        if one is not None and one[0] == "concat":
            sm = _compile_set(kinds, (right,), "value")
            return _neg(lambda v: sm.lookup(v)[0], op == "!=")
        raise ValueError(f"right-hand side {expr_text(right)} not understood")
    if isinstance(right, bool):
        want = right

        def exists(v: object) -> bool:
            return bool(v) == want
        return _neg(exists, op == "!=")
    if kind == "fib_oif" and isinstance(right, int):
        return _neg(lambda v: bool(v) == bool(right), op == "!=")
    c = const(kinds[0] if len(kinds) == 1 else "integer", right)
    if isinstance(right, tuple) or (op == "in" and bitmask):
        assert isinstance(c, int)
        if op == "==" and not isinstance(right, tuple):
            return lambda v: v == c
        return _neg(lambda v: isinstance(v, int) and (v & c) != 0, op == "!=")
    if kind == "ifname" and isinstance(c, str) and c.endswith("*") and not c.endswith("\\*"):
        pre = c[:-1]
        return _neg(lambda v: isinstance(v, str) and v.startswith(pre), op == "!=")
    if op in ("==", "in"):
        return lambda v: v == c
    if op == "!=":
        return lambda v: v != c
    assert isinstance(c, int)
    if op == "<":
        return lambda v: isinstance(v, int) and v < c
    if op == ">":
        return lambda v: isinstance(v, int) and v > c
    if op in ("<=", "⇐"):
        return lambda v: isinstance(v, int) and v <= c
    if op == ">=":
        return lambda v: isinstance(v, int) and v >= c
    raise ValueError(f"operator {op} not understood")


def _neg(p: Pred, neg: bool) -> Pred:
    return (lambda v: not p(v)) if neg else p


# -- statements ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: str  # accept | drop | reject | queue | stolen | jump | goto | return | continue
    chain: str | None = None
    res: TargetResult | None = None


# A compiled statement returns: True (go on), False (rule does not match), a _Verdict, or
# raises _Unsure (the note is kept; the statement's assumed outcome is in its value).
Step = Callable[[Env, _St], "bool | _Verdict"]


def _match_step(cx: _Cx, body: JMap) -> Step:
    left, right, op = body.get("left"), body.get("right"), str(body.get("op", "=="))
    g, kind = compile_expr(cx, left)
    pred = _rhs_pred(cx, kind, op, right)

    def step(env: Env, st: _St) -> bool | _Verdict:
        try:
            v = g(env)
        except _Missing:
            return False
        except _Unsure as u:
            st.notes.append(u.note)
            st.uncertain = True
            if u.value is None:
                return True  # assumed to match
            return pred(u.value)
        return pred(v)
    return step


_REJECT_V4 = {0: "icmp-net-unreachable", 1: "icmp-host-unreachable", 2: "icmp-proto-unreachable",
              3: "icmp-port-unreachable", 9: "icmp-net-prohibited", 10: "icmp-host-prohibited",
              13: "icmp-admin-prohibited"}
_REJECT_V6 = {0: "icmp6-no-route", 1: "icmp6-adm-prohibited", 3: "icmp6-addr-unreachable",
              4: "icmp6-port-unreachable", 5: "icmp6-policy-fail", 6: "icmp6-reject-route"}
_ICMPX = {"port-unreachable": (3, 4), "admin-prohibited": (13, 1), "host-unreachable": (1, 3),
          "no-route": (0, 0)}


def _reject_step(cx: _Cx, body: JSON) -> Step:
    rtype = body.get("type") if isinstance(body, JMap) else None
    rexpr = body.get("expr") if isinstance(body, JMap) else None

    def step(env: Env, st: _St) -> bool | _Verdict:
        v6 = env.pkt.family is Family.IPV6
        t = rtype
        if t is None:
            t = "icmpx" if cx.family in ("inet", "bridge", "netdev") else ("icmpv6" if v6 else "icmp")
        if t == "tcp reset":
            if env.pkt.proto != 6:
                st.notes.append("reject with tcp reset on a non-TCP packet: dropped, nothing sent")
                return _Verdict("drop")
            spec = RejectSpec("tcp-reset", None, None)
        elif t == "icmpx":
            codes = _ICMPX.get(str(rexpr or "port-unreachable"), (3, 4))
            code = codes[1] if v6 else codes[0]
            spec = RejectSpec(_REJECT_V6.get(code, "icmp6-port-unreachable") if v6 else
                              _REJECT_V4.get(code, "icmp-port-unreachable"),
                              1 if v6 else 3, code)
        elif t == "icmp":
            if v6:
                return _Verdict("drop")
            c4 = const("icmp_code", rexpr) if rexpr is not None else 3
            assert isinstance(c4, int)
            spec = RejectSpec(_REJECT_V4.get(c4, f"icmp code {c4}"), 3, c4)
        else:
            if not v6:
                return _Verdict("drop")
            c6 = const("icmpv6_code", rexpr) if rexpr is not None else 4
            assert isinstance(c6, int)
            spec = RejectSpec(_REJECT_V6.get(c6, f"icmpv6 code {c6}"), 1, c6)
        return _Verdict("reject", res=TargetResult("reject", f"reject with {spec.with_}",
                                                    reject=spec))
    return step


def _set_pkt(env: Env, pkt: Packet) -> None:
    env.set_packet(pkt)


def _mangle_step(cx: _Cx, body: JMap) -> Step:
    key = body.get("key")
    gv, _vkind = compile_expr(cx, body.get("value"))
    ktext = expr_text(key)
    target = ""
    if isinstance(key, JMap) and key.single() is not None:
        k, kb = key.items[0]
        if isinstance(kb, JMap):
            if k == "meta":
                target = f"meta {kb.get('key')}"
            elif k == "ct":
                target = f"ct {kb.get('key')}"
            elif k == "payload":
                target = f"{kb.get('protocol')} {kb.get('field')}"
    kkind = {"ip saddr": "ipv4_addr", "ip daddr": "ipv4_addr", "ip6 saddr": "ipv6_addr",
             "ip6 daddr": "ipv6_addr", "ip dscp": "dscp", "ip6 dscp": "dscp"}.get(target, "integer")

    def value(env: Env, st: _St) -> int | None:
        try:
            v = gv(env)
        except _Unsure as u:
            st.notes.append(u.note)
            st.uncertain = True
            v = u.value
            if v is None:
                return None
        except _Missing:
            raise  # no header for it / no map entry: the kernel breaks the rule (no match)
        if isinstance(v, JMap | str | tuple):
            try:
                v = const(kkind, v)
            except ValueError:
                return None
        return v if isinstance(v, int) else None

    def step(env: Env, st: _St) -> bool | _Verdict:
        try:
            v = value(env, st)
        except _Missing:
            return False
        if v is None:
            st.uncertain = True
            st.notes.append(f"{ktext} set: value not known")
            return True
        p = env.pkt
        if target == "meta mark":
            _set_pkt(env, replace(p, mark=v & 0xFFFFFFFF))
        elif target == "ct mark":
            if env.ct is not None:
                env.ct_mark = v & 0xFFFFFFFF
        elif target == "ct zone":
            env.ct_zone = v
        elif target in ("meta nftrace", "meta priority", "meta secmark"):
            pass
        elif target in ("ip dscp", "ip6 dscp"):
            _set_pkt(env, replace(p, tos=(p.tos & 3) | (v << 2)))
        elif target in ("ip ecn", "ip6 ecn"):
            _set_pkt(env, replace(p, tos=(p.tos & 0xFC) | (v & 3)))
        elif target in ("ip ttl", "ip6 hoplimit"):
            _set_pkt(env, replace(p, ttl=v & 0xFF))
        elif target in ("ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr"):
            if (p.family is Family.IPV4) != target.startswith("ip "):
                return True
            a = ipaddress.ip_address(v) if p.family is Family.IPV4 else ipaddress.IPv6Address(v)
            _set_pkt(env, replace(p, src=a) if target.endswith("saddr") else replace(p, dst=a))
        elif target.endswith((" sport", " dport")) and p.sport is not None:
            _set_pkt(env, replace(p, sport=v) if target.endswith("sport") else replace(p, dport=v))
        else:
            st.uncertain = True
            st.notes.append(f"{ktext} set is not modelled")
        return True
    return step


def _nat_step(cx: _Cx, kind: str, body: JSON) -> Step:
    b = body if isinstance(body, JMap) else JMap(())
    fam = b.get("family")
    addr_e, port_e = b.get("addr"), b.get("port")
    flags = b.get("flags")
    fl = (tuple(str(x) for x in flags) if isinstance(flags, tuple) else
          (str(flags),) if flags is not None else ())
    ga = compile_expr(cx, addr_e)[0] if addr_e is not None and isinstance(addr_e, JMap) else None
    gp = compile_expr(cx, port_e)[0] if port_e is not None and isinstance(port_e, JMap) else None
    name = {"dnat": "DNAT", "snat": "SNAT", "masquerade": "MASQUERADE", "redirect": "REDIRECT"}[kind]
    dst = kind in ("dnat", "redirect")

    def step(env: Env, st: _St) -> bool | _Verdict:
        pkt = env.pkt
        if fam is not None and (fam == "ip6") != (pkt.family is Family.IPV6):
            return False  # implicit "meta nfproto" dependency of an inet nat statement
        ok = (Hook.PREROUTING, Hook.OUTPUT) if dst else (Hook.POSTROUTING, Hook.INPUT)
        if env.hook not in ok:
            return _Verdict("accept", res=TargetResult("continue", f"{kind} not valid on {env.hook}", True))
        notes: list[str] = []
        unc = False
        first: IPAddress | None = None
        last: IPAddress | None = None
        ports: tuple[int, int] | None = None
        v6 = pkt.family is Family.IPV6
        akind = "ipv6_addr" if v6 else "ipv4_addr"

        def addr_of(x: object) -> tuple[IPAddress, IPAddress] | None:
            if isinstance(x, JMap) and x.single() is not None:
                iv = _interval(akind, x)
                if isinstance(iv, tuple):
                    lo, hi = iv
                    return (ipaddress.ip_address(lo) if not v6 else ipaddress.IPv6Address(lo),
                            ipaddress.ip_address(hi) if not v6 else ipaddress.IPv6Address(hi))
                return None
            if isinstance(x, str):
                a = ipaddress.ip_address(x)
                return a, a
            if isinstance(x, int):
                a2 = ipaddress.IPv6Address(x) if v6 else ipaddress.IPv4Address(x)
                return a2, a2
            return None

        def port_of(x: object) -> tuple[int, int] | None:
            if isinstance(x, int):
                return x, x
            if isinstance(x, JMap) and x.single() is not None and x.items[0][0] == "range":
                iv = _interval("inet_service", x)
                assert isinstance(iv, tuple)
                return iv
            if isinstance(x, str):
                c = const("inet_service", x)
                assert isinstance(c, int)
                return c, c
            return None

        aval: object = addr_e
        if ga is not None and isinstance(addr_e, JMap) and addr_e.single() is not None and \
                addr_e.items[0][0] not in ("prefix", "range"):
            try:
                aval = ga(env)
            except _Missing as m:
                st.notes.append(f"{kind}: {m.why}")
                return False
            except _Unsure as u:
                unc = True
                notes.append(u.note)
                aval = u.value
                if aval is None:
                    return _Verdict("accept", res=TargetResult("accept", f"{kind}: {u.note}", True))
        if isinstance(aval, JMap) and aval.single() is not None and aval.items[0][0] == "concat":
            comps = aval.items[0][1]
            assert isinstance(comps, tuple)
            aval = comps[0]
            if port_e is None and len(comps) > 1:
                ports = port_of(comps[1])
        if aval is not None:
            got = addr_of(aval)
            if got is None:
                return _Verdict("accept", res=TargetResult("accept", f"{kind} address "
                                                           f"{aval} not understood", True))
            first, last = got
        pval: object = port_e
        if gp is not None and isinstance(port_e, JMap) and port_e.items[0][0] != "range":
            try:
                pval = gp(env)
            except _Missing as m:
                st.notes.append(f"{kind}: {m.why}")
                return False
            except _Unsure as u:
                unc = True
                notes.append(u.note)
                pval = u.value
        if pval is not None:
            ports = port_of(pval)
        extra = "; ".join(notes)
        if fl:
            extra = (extra + "; " if extra else "") + f"flags {','.join(fl)}"
            if any(f in ("random", "fully-random") for f in fl):
                unc = True
        ref = RuleRef(table=cx.table.name, chain="", index=0, backend="native")
        if kind == "masquerade":
            src, how, u2 = masquerade_source(env)
            if src is None:
                return _Verdict("drop", res=TargetResult("drop", f"masquerade: {how}"))
            res = _binding(env, name, ref, False, src, src, ports,
                           how + ("; " + extra if extra else ""), unc or u2)
        elif kind == "redirect":
            a, how = redirect_address(env)
            if a is None:
                return _Verdict("drop", res=TargetResult("drop", f"redirect: {how}"))
            res = _binding(env, name, ref, True, a, a, ports, how + ("; " + extra if extra else ""), unc)
        else:
            res = _binding(env, name, ref, dst, first, last, ports, extra, unc)
        return _Verdict("accept", res=res)
    return step


def _const_step(result: bool | _Verdict, note: str | None = None, uncertain: bool = False) -> Step:
    def step(env: Env, st: _St) -> bool | _Verdict:
        if note:
            st.notes.append(note)
        if uncertain:
            st.uncertain = True
        return result
    return step


def _vmap_step(cx: _Cx, body: JMap) -> Step:
    g, _k = _compile_map(cx, JMap((("key", body.get("key")), ("data", body.get("data")))))

    def step(env: Env, st: _St) -> bool | _Verdict:
        try:
            v = g(env)
        except _Missing:
            return False
        except _Unsure as u:
            st.notes.append(u.note)
            st.uncertain = True
            v = u.value
            if v is None:
                return True
        return _verdict_of(v)
    return step


def _verdict_of(v: object) -> bool | _Verdict:
    if isinstance(v, JMap) and v.single() is not None:
        k, b = v.items[0]
        if k in ("jump", "goto") and isinstance(b, JMap):
            return _Verdict(k, chain=str(b.get("target")))
        if k in ("accept", "drop", "return", "continue"):
            return _Verdict(k)
        if k == "queue":
            return _Verdict("queue")
    return True


def _limit_step(body: JSON, cx: _Cx) -> Step:
    b = body
    if isinstance(body, str):
        obj = cx.table.object("limit", body)
        b = obj.props if obj is not None else JMap(())
    inv = bool(b.get("inv")) if isinstance(b, JMap) else False
    note = ("limit: assumed not exceeded (the rate state is not in the snapshot)"
            + ("; 'over' does not match" if inv else ""))
    return _const_step(not inv, note, True)


def _quota_step(body: JSON, cx: _Cx) -> Step:
    b = body
    if isinstance(body, str):
        obj = cx.table.object("quota", body)
        b = obj.props if obj is not None else JMap(())
    if not isinstance(b, JMap):
        return _const_step(True, "quota not understood: assumed to match", True)
    total = b.get("bytes") if "bytes" in b else b.get("val")
    used = b.get("used") or 0
    inv = bool(b.get("inv"))
    if not isinstance(total, int) or not isinstance(used, int):
        return _const_step(True, "quota not understood: assumed to match", True)

    def step(env: Env, st: _St) -> bool | _Verdict:
        over = used + env.pkt.ip_length > total
        st.notes.append(f"quota: {used} of {total} bytes used in the snapshot")
        return over if inv else not over
    return step


def _helper_step(cx: _Cx, body: JSON) -> Step:
    """``ct helper set NAME`` / ``ct helper set <expr> map { ... }``: a failed map lookup breaks
    the rule (no match); an assigned helper is uncertain (its expectations are not modelled)."""
    gv = compile_expr(cx, body)[0] if isinstance(body, JMap) else None
    note = (f"ct helper {expr_text(body)} assigned: expectations it creates (RELATED flows) "
            "are not modelled")

    def step(env: Env, st: _St) -> bool | _Verdict:
        name: object = body
        if gv is not None:
            try:
                name = gv(env)
            except _Missing:
                return False
            except _Unsure as u:
                st.notes.append(u.note)
                name = u.value
        st.uncertain = True
        st.notes.append(note if gv is None else f"ct helper {name} assigned (from "
                        f"{expr_text(body)}): expectations it creates (RELATED flows) are not "
                        "modelled")
        return True
    return step


def compile_stmt(cx: _Cx, s: JSON) -> tuple[Step, bool]:
    """A statement: its step and whether it is a condition (shown as the failed condition)."""
    if not isinstance(s, JMap) or s.single() is None:
        return _const_step(True, f"statement {stmt_text(s)} not understood: ignored", True), False
    kind, body = s.items[0]
    try:
        if kind == "match" and isinstance(body, JMap):
            return _match_step(cx, body), True
        if kind in ("accept", "drop", "return", "continue"):
            return _const_step(_Verdict(kind)), False
        if kind in ("jump", "goto") and isinstance(body, JMap):
            return _const_step(_Verdict(kind, chain=str(body.get("target")))), False
        if kind in ("counter", "log"):
            return _const_step(True), False
        if kind == "reject":
            return _reject_step(cx, body), False
        if kind == "mangle" and isinstance(body, JMap):
            return _mangle_step(cx, body), False
        if kind in ("dnat", "snat", "masquerade", "redirect"):
            return _nat_step(cx, kind, body), False
        if kind == "notrack":
            def nt(env: Env, st: _St) -> bool | _Verdict:
                env.notrack = True
                return True
            return nt, False
        if kind == "vmap" and isinstance(body, JMap):
            return _vmap_step(cx, body), True
        if kind == "limit":
            return _limit_step(body, cx), True
        if kind == "quota":
            return _quota_step(body, cx), True
        if kind == "queue":
            return _const_step(_Verdict("queue", res=TargetResult(
                "queue", "queued to userspace: the program's verdict is not known", True))), False
        if kind in ("set", "map") and isinstance(body, JMap):
            return _const_step(True, f"{body.get('op')} {body.get('set')}: the set is updated for "
                                     "later packets (not modelled)"), False
        if kind == "ct helper":
            return _helper_step(cx, body), False
        if kind in ("ct timeout", "ct expectation", "secmark", "flow"):
            return _const_step(True, f"{stmt_text(s)}: not modelled (no effect on the verdict "
                                     "assumed)"), False
        if kind == "tproxy":
            return _const_step(True, f"{stmt_text(s)}: assumed a transparent socket listens "
                                     "(else the kernel drops the packet)", True), False
        if kind == "xt":
            return _const_step(True, f"{stmt_text(s)}: an iptables-nft extension whose "
                                     "parameters nft -j does not print: assumed to match / no "
                                     "effect", True), False
        if kind in ("fwd", "dup", "synproxy"):
            verdict: bool | _Verdict = (_Verdict("stolen", res=TargetResult(
                "stolen", f"{stmt_text(s)}: the packet leaves this path", True))
                if kind in ("fwd", "synproxy") else True)
            return _const_step(verdict, f"{stmt_text(s)} is not modelled", True), False
        if kind in ("meter", "ct count"):
            return _const_step(True, f"{stmt_text(s)}: state not in the snapshot, assumed to "
                                     "match", True), True
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        return _const_step(True, f"{stmt_text(s)} could not be read ({e}): assumed to match",
                           True), True
    return _const_step(True, f"statement {stmt_text(s)} is not modelled: assumed to match / no "
                             "effect", True), False


# -- compiled rules and chains ---------------------------------------------------------------------

@dataclass(slots=True)
class _CRule:
    rule: NftRule
    steps: tuple[tuple[Step, bool, str], ...]
    ref: RuleRef
    counters: str | None
    text: str | None = None  # rendered once
    fail_memo: dict[int, RuleEval] = field(default_factory=dict)  # exact failures, per statement


class NativeRuleset:
    """The parsed native ruleset of a snapshot, with compiled rules (lazily, per chain)."""

    def __init__(self, snap: HostSnapshot, ruleset: NftRuleset, skipped: tuple[tuple[str, str], ...],
                 error: str | None = None) -> None:
        self.snap = snap
        self.ruleset = ruleset
        self.skipped = skipped
        self.error = error
        self._cx: dict[tuple[str, str], _Cx] = {}
        self._chains: dict[tuple[str, str, str], tuple[_CRule, ...]] = {}

    def table(self, family: str, name: str) -> NftTable | None:
        if (family, name) in self.skipped:
            return None
        return self.ruleset.table(family, name)

    def cx(self, table: NftTable) -> _Cx:
        key = (table.family, table.name)
        got = self._cx.get(key)
        if got is None:
            got = _Cx(self.snap, self, table)
            self._cx[key] = got
        return got

    def rules(self, table: NftTable, chain: str) -> tuple[_CRule, ...] | None:
        key = (table.family, table.name, chain)
        got = self._chains.get(key)
        if got is None:
            c = table.chain(chain)
            if c is None:
                return None
            cx = self.cx(table)
            out: list[_CRule] = []
            for r in c.rules:
                steps = []
                for s in r.exprs:
                    fn, is_cond = compile_stmt(cx, s)
                    steps.append((fn, is_cond, ""))
                cnt = r.counters
                out.append(_CRule(r, tuple(steps), RuleRef(table=r.table, chain=r.chain, index=r.index,
                                                           backend="native", handle=r.handle),
                                  f"[{cnt[0]}:{cnt[1]}]" if cnt is not None else None))
            got = tuple(out)
            self._chains[key] = got
        return got




def iptables_nft_tables(snap: HostSnapshot, ruleset: NftRuleset) -> tuple[tuple[str, str], ...]:
    """(family, table) of the tables iptables-nft made: evaluated from iptables-save instead.

    A table is iptables-nft's when the nft-backed iptables-save dump of its family has a table
    of that name and the table holds ``xt`` statements or the same chains. A table with ``xt``
    statements but no iptables-save counterpart (dump not collected) stays native: its ``xt``
    statements are evaluated as uncertain rather than its rules being lost.
    """
    out: list[tuple[str, str]] = []
    dumps = {("ip6" if d.family is Family.IPV6 else "ip"): d for d in snap.iptables
             if d.backend is Backend.NFT}
    for t in ruleset.tables:
        if t.family not in ("ip", "ip6", "arp", "bridge"):
            continue
        d = dumps.get(t.family)
        it = d.table(t.name) if d is not None else None
        if it is None or d is None:
            continue  # not in iptables-save: evaluated natively (xt statements uncertain)
        if f"Table `{t.name}' contains incompatible" in d.text:
            continue  # iptables-save saw a native table of that name it cannot print
        names = {c.name for c in t.chains}
        if t.has_xt or {c.name for c in it.chains} <= names or names <= {c.name for c in it.chains}:
            out.append((t.family, t.name))
    return tuple(out)


@per_snapshot()
def native_ruleset(snap: HostSnapshot) -> NativeRuleset | None:
    """The snapshot's native ruleset (None when it has no nft dump), cached per snapshot."""
    raw = snap.raw_dump(NFT_DUMP)
    result: NativeRuleset | None = None
    if raw is not None and raw.text.strip():
        from journey.snapshot.nft_json import parse_nft_json

        try:
            rs = parse_nft_json(raw.text, source=raw.source or NFT_DUMP, render_text=False)
            result = NativeRuleset(snap, rs, iptables_nft_tables(snap, rs))
        except JourneyError as e:
            result = NativeRuleset(snap, NftRuleset(source=raw.source), (), error=e.text())
    return result


def _kind(c: NftChain) -> str:
    if c.type == "nat":
        return "nat"
    if c.type == "route":
        return "route"
    return "filter"


def native_base_chains(snap: HostSnapshot) -> tuple[BaseChain, ...]:
    """The native ip/ip6/inet base chains on the IP hooks, for ``build_pipeline``."""
    nr = native_ruleset(snap)
    if nr is None:
        return ()
    out: list[BaseChain] = []
    for t in nr.ruleset.tables:
        if t.family not in ("ip", "ip6", "inet") or (t.family, t.name) in nr.skipped or t.dormant:
            continue
        for c in t.base_chains:
            hook = IP_HOOKS.get(c.hook or "")
            if hook is None or c.priority is None:
                continue
            out.append(BaseChain(hook=hook, priority=c.priority, nf_family=t.family, table=t.name,
                                 chain=c.name, backend="native", kind=_kind(c),
                                 policy=(c.policy or "accept").upper(), handle=t.handle or 0))
    return tuple(out)


# -- walking a chain --------------------------------------------------------------------------------

@dataclass(slots=True)
class NativeResult:
    """What one native base chain did: like the walker's chain result, plus config text."""

    verdict: str  # accept | drop | reject | queue | stolen
    evals: list[RuleEval]
    hit: list[RuleRef]
    decided: RuleEval | None
    decided_rule: NftRule | None
    policy: bool
    res: TargetResult | None
    uncertain: bool
    notes: list[str]
    config: tuple[ConfigRef, ...] = ()
    decision: str = ""


def _rule_eval(cr: _CRule, matched: bool, target: str | None, failed: str | None,
               uncertain: bool, note: str | None) -> RuleEval:
    r = cr.rule
    if cr.text is None:
        from journey.model.nft_text import rule_text

        cr.text = r.text or rule_text(r)
    return RuleEval(table=r.table, chain=r.chain, index=r.index, text=cr.text,
                    matched=matched, target=target, failed_condition=failed, uncertain=uncertain,
                    note=note, counters=cr.counters, handle=r.handle, backend="native")


def walk_native(snap: HostSnapshot, base: BaseChain, env: Env) -> NativeResult:
    """Run one native base chain for the packet in ``env`` (changes env: packet, marks, notrack)."""
    nr = native_ruleset(snap)
    table = nr.table(base.nf_family, base.table) if nr is not None else None
    if nr is None or table is None:
        return NativeResult("accept", [], [], None, None, True, None, True,
                            ["native ruleset not available"])
    evals: list[RuleEval] = []
    hit: list[RuleRef] = []
    notes: list[str] = []
    uncertain = False
    stack: list[tuple[str, tuple[_CRule, ...], int]] = []
    name = base.chain
    rules = nr.rules(table, name) or ()
    i = 0
    policy = base.policy.lower()
    fam = table.family

    def where(r: NftRule) -> str:
        return f"{fam} {r.table} {r.chain} handle {r.handle}"

    while True:
        if i >= len(rules):
            if not stack:
                return _finish(policy, evals, hit, None, None, True, None, uncertain, notes, base, fam)
            name, rules, i = stack.pop()
            continue
        cr = rules[i]
        i += 1
        st = _St()
        matched = True
        failed_at = -1
        verdict: _Verdict | None = None
        for k, ((fn, _is_cond, _t), s) in enumerate(zip(cr.steps, cr.rule.exprs, strict=True)):
            try:
                out = fn(env, st)
            except (_Unsure, _Missing, ValueError, TypeError, KeyError) as e:
                st.uncertain = True
                st.notes.append(f"{stmt_text(s)}: {e}")
                continue
            if out is True:
                continue
            if out is False:
                matched = False
                failed_at = k
                break
            verdict = out
            if verdict.kind == "continue":
                verdict = None
                break
            break
        note = "; ".join(st.notes) if st.notes else None
        uncertain = uncertain or st.uncertain
        if not matched:
            if not st.uncertain and note is None:
                fev = cr.fail_memo.get(failed_at)
                if fev is None:
                    fev = _rule_eval(cr, False, None, stmt_text(cr.rule.exprs[failed_at]), False, None)
                    cr.fail_memo[failed_at] = fev
                evals.append(fev)
            else:
                evals.append(_rule_eval(cr, False, None, stmt_text(cr.rule.exprs[failed_at]),
                                        st.uncertain, note))
            continue
        hit.append(cr.ref)
        if verdict is None:
            evals.append(_rule_eval(cr, True, None, None, st.uncertain, note))
            continue
        vk = verdict.kind
        tnote = verdict.res.note if verdict.res is not None else None
        full = "; ".join(x for x in (note, tnote) if x) or None
        ru = st.uncertain or (verdict.res is not None and verdict.res.uncertain)
        uncertain = uncertain or ru
        target = vk if vk not in ("jump", "goto") else f"{vk} {verdict.chain}"
        ev = _rule_eval(cr, True, target, None, ru, full)
        evals.append(ev)
        if vk in ("jump", "goto"):
            nxt = nr.rules(table, verdict.chain or "")
            if nxt is None:
                notes.append(f"{vk} to a missing chain {verdict.chain}")
                uncertain = True
                continue
            if vk == "jump":
                if len(stack) >= MAX_DEPTH:
                    notes.append("jump depth limit reached")
                    uncertain = True
                    continue
                stack.append((name, rules, i))
            name, rules, i = verdict.chain or "", nxt, 0
            continue
        if vk == "return":
            if not stack:
                return _finish(policy, evals, hit, None, None, True, None, uncertain, notes, base, fam)
            name, rules, i = stack.pop()
            continue
        res = verdict.res
        if res is not None and res.nat is not None:
            nat = res.nat
            res = replace(res, nat=replace(nat, rule=replace(cr.ref)))
        return _finish(vk, evals, hit, ev, cr.rule, False, res, uncertain, notes, base, fam)
    _ = where


def _finish(verdict: str, evals: list[RuleEval], hit: list[RuleRef], ev: RuleEval | None,
            rule: NftRule | None, policy: bool, res: TargetResult | None, uncertain: bool,
            notes: list[str], base: BaseChain, fam: str) -> NativeResult:
    if rule is not None:
        from journey.model.nft_text import rule_text

        text = rule.text or rule_text(rule)
        cfg = (ConfigRef("nft", text, f"table {fam} {rule.table} chain {rule.chain} handle {rule.handle}"),)
        decision = f"{verdict.upper()} by rule {rule.chain} handle {rule.handle}: {text}"
        if res is not None and res.note:
            decision += f" ({res.note})"
    else:
        cfg = (ConfigRef("nft", f"policy {base.policy.lower()};",
                         f"table {fam} {base.table} chain {base.chain}"),)
        decision = (f"policy {base.policy.lower()}: no rule decided" if evals
                    else f"policy {base.policy.lower()} (no rules)")
    return NativeResult(verdict, evals, hit, ev, rule, policy, res, uncertain, notes, cfg, decision)


# -- netdev ingress ---------------------------------------------------------------------------------

NFT_CHAINS_DUMP = "nft list chains"
_CHAIN_TEXT = re.compile(r"^\s*(?:table\s+(\S+)\s+(\S+)|chain\s+(\S+))\s*\{", re.M)
_DEVICE_TEXT = re.compile(r"hook\s+ingress\s+(?:device\s+\"?([^\s\";]+)\"?|devices\s*=\s*\{([^}]*)\})")


def ingress_devices(snap: HostSnapshot) -> dict[tuple[str, str, str], tuple[str, ...]]:
    """(family, table, chain) -> devices of the ingress chains, from ``nft list chains`` text.

    nftables 1.0.6 omits a netdev chain's device from ``nft -j``; the collector also saves
    ``nft list chains`` (text) when the ruleset has ingress chains, and the devices come from it.
    """
    raw = snap.raw_dump(NFT_CHAINS_DUMP)
    out: dict[tuple[str, str, str], tuple[str, ...]] = {}
    if raw is None:
        return out
    fam = table = chain = ""
    for line in raw.text.splitlines():
        m = _CHAIN_TEXT.match(line)
        if m and m.group(1):
            fam, table = m.group(1), m.group(2)
            continue
        if m:
            chain = m.group(3)
            continue
        d = _DEVICE_TEXT.search(line)
        if d and chain:
            devs = (d.group(1),) if d.group(1) else tuple(
                x.strip().strip('"') for x in (d.group(2) or "").split(",") if x.strip())
            out[(fam, table, chain)] = devs
    return out


def run_netdev_ingress(snap: HostSnapshot, pkt: Packet, iif: str | None) -> tuple[Stage, ...]:
    """The netdev- and inet-family ingress chains for a packet arriving on ``iif`` (they run
    in ``nf_ingress()``, right after tc ingress), in priority order; stops at a drop.

    nftables 1.0.6 does not print a netdev chain's device in JSON: the devices come from the
    ``nft list chains`` dump when the snapshot has it; otherwise such chains are assumed to be
    bound to ``iif`` and the stage is marked uncertain.
    """
    nr = native_ruleset(snap)
    if nr is None or iif is None:
        return ()
    chains: list[tuple[NftTable, NftChain]] = []
    known = ingress_devices(snap)
    bound: dict[tuple[str, str, str], bool] = {}
    for t in nr.ruleset.tables:
        if t.family not in ("netdev", "inet") or t.dormant:
            continue
        if t.family == "inet" and pkt.family.value not in ("ipv4", "ipv6"):
            continue
        for c in t.base_chains:
            if c.hook != "ingress":
                continue
            devs = c.devices or known.get((t.family, t.name, c.name), ())
            bound[(t.family, t.name, c.name)] = bool(devs)
            if not devs or iif in devs:
                chains.append((t, c))
    chains.sort(key=lambda tc: tc[1].priority or 0)
    out: list[Stage] = []
    env = Env(snap, pkt, Hook.PREROUTING, iif, None, None, False)
    for t, c in chains:
        base = BaseChain(hook=Hook.PREROUTING, priority=c.priority or 0, nf_family=t.family,
                         table=t.name, chain=c.name, backend="native", kind="filter",
                         policy=(c.policy or "accept").upper())
        before = env.pkt
        res = walk_native(snap, base, env)
        notes = list(res.notes)
        unc = res.uncertain
        if not bound[(t.family, t.name, c.name)]:
            notes.append("the chain's device is not in the nft -j output (nftables 1.0.6 omits "
                         f"it) and no 'nft list chains' dump was collected: assumed bound to {iif}")
            unc = True
        if res.verdict in ("drop", "reject"):
            result = StageResult.DROPPED
        elif unc:
            result = StageResult.UNCERTAIN
        elif env.pkt != before:
            result = StageResult.CHANGED
        else:
            result = StageResult.PASSED
        out.append(Stage(
            name=f"ingress · {t.name} (nft {t.family})", kind=StageKind.TC, result=result,
            summary=f"{t.family} ingress chain {c.name} of table {t.family} {t.name} (priority "
                    f"{c.priority}): runs at the tc-ingress stage, before IP processing",
            decision=res.decision, packet=env.pkt, functions=("__netif_receive_skb_core",
                                                               "nf_ingress", "nft_do_chain_netdev"),
            hook="ingress", table=t.name, family=t.family, priority=c.priority,
            config=res.config, rules=tuple(res.evals), notes=tuple(notes), uncertain=unc))
        if res.verdict != "accept":
            break
    return tuple(out)
