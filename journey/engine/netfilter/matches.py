"""iptables match modules as a registry: module name -> compiler of its options into predicates.

Each rule's matches are compiled once per snapshot (``compile_match``) into a list of ``Cond``
(text, predicate) pairs — one per option, so a rule that does not match can name the exact
option that failed. A predicate takes the per-packet ``Env`` and returns ``True``/``False`` or an
``Unsure`` (the match cannot be decided exactly: it carries the result assumed and why).

Policy for what cannot be decided (stated in each ``Unsure.note``):
- rate/quota-like state (limit, hashlimit, quota, connbytes, connlimit): assume the first packet
  of a fresh state — the limit is not exceeded, the quota not used up;
- recent: a ``--set`` matches (and adds); ``--rcheck``/``--update``/``--remove`` assume the
  address is not in the list;
- statistic: assumed to match (random: the probability is given; nth: the counter is unknown);
- everything else that cannot be evaluated (unknown modules, string, u32, bpf, socket, cgroup,
  tcp options, ...): assumed to match, marked uncertain. Nothing is skipped silently.

Pure: depends on ``journey.model`` (and lazily on ``journey.engine.routing`` for addrtype);
no I/O, no textual, no rich.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from journey.model.family import Family, IPAddress
from journey.model.packet import Packet
from journey.model.ruleset import Match, MatchOption
from journey.model.snapshot import HostSnapshot, IpSet, RouteType

if TYPE_CHECKING:
    from journey.engine.conntrack import CtView
    from journey.engine.netfilter.pipeline import Hook

__all__ = [
    "BUILTINS",
    "MATCHES",
    "CompileCtx",
    "Cond",
    "Env",
    "RateSpec",
    "Unsure",
    "compile_match",
    "rate_decide",
]


@dataclass(frozen=True, slots=True)
class Unsure:
    """A match result that is assumed, not known."""

    assume: bool
    note: str
    rate: RateSpec | None = None  # a token bucket: the walker decides (``rate_decide``)


@dataclass(frozen=True, slots=True)
class RateSpec:
    """The token bucket a limit / hashlimit match takes credit from. The walker, which knows
    the rule, decides the match with ``rate_decide`` from what earlier packets of the run used."""

    kind: str  # "limit" | "hashlimit"
    text: str  # the rate as written, e.g. "1/min burst 1"
    burst: int  # packets that pass back-to-back on a full bucket
    bucket: str = ""  # hashlimit: table name + hashed fields (limit: one bucket per rule)
    above: bool = False  # --hashlimit-above: matches when the bucket is empty


Result = bool | Unsure
Pred = Callable[["Env"], Result]


@dataclass(frozen=True, slots=True)
class Cond:
    """One compiled condition: its text (as iptables-save prints it) and its predicate."""

    text: str
    pred: Pred
    key: tuple[str, int] | None = None  # ("src"|"dst", address int): an exact host test (indexable)


class Env:
    """Per-packet evaluation state shared by matches and targets (mutable, internal)."""

    __slots__ = ("ct", "ct_mark", "ct_zone", "dst_i", "family", "hook", "in_iface", "local",
                 "notrack", "out_iface", "pkt", "rates", "snap", "src_i")

    def __init__(self, snap: HostSnapshot, pkt: Packet, hook: Hook, in_iface: str | None,
                 out_iface: str | None, ct: CtView | None, local: bool) -> None:
        self.rates: dict[str, int] | None = None  # token buckets of the run (rate_decide)
        self.snap = snap
        self.hook = hook
        self.in_iface = in_iface
        self.out_iface = out_iface
        self.ct = ct
        self.ct_mark = ct.mark if ct is not None else 0
        self.ct_zone = ct.zone if ct is not None else 0
        self.local = local
        self.notrack = False
        self.family = pkt.family
        self.pkt = pkt
        self.src_i = -1
        self.dst_i = -1
        self.set_packet(pkt)

    def set_packet(self, pkt: Packet) -> None:
        self.pkt = pkt
        self.src_i = int(pkt.src) if pkt.src is not None else -1
        self.dst_i = int(pkt.dst)


@dataclass(frozen=True, slots=True)
class CompileCtx:
    """What a match compiler may look at: the family, table, chain and the snapshot.

    The walker compiles each Match object once per table and shares its conditions between the
    rules that hold it: a compiler's result must not depend on ``chain`` (nor on the rule)."""

    family: Family
    table: str
    chain: str
    snap: HostSnapshot


class BadOption(ValueError):
    """An option value the engine cannot interpret (the rule becomes uncertain)."""


MatchCompiler = Callable[[Match, CompileCtx], list[Cond]]

MATCHES: dict[str, MatchCompiler] = {}
BUILTINS: dict[str, Callable[[MatchOption, CompileCtx, str], Cond]] = {}


def match(*names: str) -> Callable[[MatchCompiler], MatchCompiler]:
    def deco(fn: MatchCompiler) -> MatchCompiler:
        for n in names:
            MATCHES[n] = fn
        return fn
    return deco


def builtin(*names: str) -> Callable[[Callable[[MatchOption, CompileCtx, str], Cond]],
                                     Callable[[MatchOption, CompileCtx, str], Cond]]:
    def deco(fn: Callable[[MatchOption, CompileCtx, str], Cond]) -> Callable[[MatchOption, CompileCtx, str], Cond]:
        for n in names:
            BUILTINS[n] = fn
        return fn
    return deco


def _neg(pred: Callable[[Env], bool], negated: bool) -> Pred:
    if not negated:
        return pred
    return lambda env: not pred(env)


def _neg_r(pred: Pred, negated: bool) -> Pred:
    """Negation for predicates that may return Unsure."""
    if not negated:
        return pred

    def inv(env: Env) -> Result:
        r = pred(env)
        if isinstance(r, Unsure):
            return Unsure(not r.assume, r.note)
        return not r
    return inv


def unsure(text: str, note: str, assume: bool = True) -> Cond:
    u = Unsure(assume, note)
    return Cond(text, lambda env: u)


def _opt_text(m: Match, o: MatchOption) -> str:
    if m.module == "":
        return m.text()
    return f"-m {m.module} {o.text()}"


def compile_match(m: Match, cc: CompileCtx) -> list[Cond]:
    """The conditions of one match (one per option); unknown modules give one Unsure."""
    try:
        if m.module == "":
            if not m.options:
                return []
            o = m.options[0]
            fn = BUILTINS.get(o.name)
            if fn is None:
                return [unsure(m.text(), f"unknown built-in parameter --{o.name}: assumed to match")]
            return [fn(o, cc, m.text())]
        comp = MATCHES.get(m.module)
        if comp is None:
            return [unsure(m.text(), f"match module '{m.module}' is not modelled: assumed to "
                                     "match")]
        return comp(m, cc)
    except BadOption as e:
        return [unsure(m.text(), f"cannot interpret {m.text()!r}: {e}; assumed to match")]


# -- value parsers -----------------------------------------------------------------------------

def parse_int(s: str) -> int:
    try:
        return int(s, 0)
    except ValueError:
        raise BadOption(f"not a number: {s!r}") from None


def parse_mark(s: str) -> tuple[int, int]:
    """``0x10`` / ``0x10/0xff`` -> (value, mask)."""
    if "/" in s:
        v, m = s.split("/", 1)
        return parse_int(v), parse_int(m)
    return parse_int(s), 0xFFFFFFFF


_AF = {Family.IPV4: socket.AF_INET, Family.IPV6: socket.AF_INET6}


def fast_addr(a: str, family: Family) -> int | None:
    """Address text -> int, when ``a`` is in the canonical form that ``inet_ntop`` (and
    iptables-save) prints: exactly what ``ipaddress`` gives for it, ~10x faster. None for any
    other text (leave it to ``ipaddress``: other forms, errors)."""
    af = _AF[family]
    try:
        packed = socket.inet_pton(af, a)
    except (OSError, ValueError):
        return None
    if socket.inet_ntop(af, packed) != a:
        return None
    return int.from_bytes(packed, "big")


@functools.lru_cache(maxsize=1 << 16)
def parse_net(s: str, family: Family) -> tuple[int, int]:
    """``10.0.0.0/8``, ``10.1.2.3``, ``10.0.0.0/255.0.0.0`` -> (network int, mask int).

    Cached by text (rulesets repeat addresses); canonical address text takes ``fast_addr``."""
    bits = 32 if family is Family.IPV4 else 128
    full = (1 << bits) - 1
    a, slash, m = s.partition("/")
    fa = fast_addr(a, family)
    if fa is not None:
        fm: int | None = full
        if slash:
            if m.isascii() and m.isdigit() and int(m) <= bits:
                plen = int(m)
                fm = (full << (bits - plen)) & full if plen else 0
            else:
                fm = None if m.isdigit() else fast_addr(m, family)
        if fm is not None:
            return fa & fm, fm
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


SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
            "dns": 53, "bootps": 67, "bootpc": 68, "tftp": 69, "http": 80, "www": 80,
            "kerberos": 88, "pop3": 110, "sunrpc": 111, "ntp": 123, "imap": 143, "snmp": 161,
            "snmp-trap": 162, "bgp": 179, "ldap": 389, "https": 443, "microsoft-ds": 445,
            "syslog": 514, "submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995,
            "openvpn": 1194, "mysql": 3306, "postgresql": 5432, "http-alt": 8080}


def parse_port(s: str) -> int:
    if s.isdigit():
        v = int(s)
        if v > 65535:
            raise BadOption(f"port {v} out of range")
        return v
    if s in SERVICES:
        return SERVICES[s]
    raise BadOption(f"unknown service name {s!r}")


def parse_range(s: str, lo: int = 0, hi: int = 65535, parse: Callable[[str], int] = parse_port) -> tuple[int, int]:
    """``80``, ``80:90``, ``:90``, ``80:`` (also ``80-90``) -> (first, last)."""
    sep = ":" if ":" in s else ("-" if "-" in s[1:] else None)
    if sep is None:
        v = parse(s)
        return v, v
    a, b = s.split(sep, 1)
    return (parse(a) if a else lo), (parse(b) if b else hi)


PROTOCOLS = {"all": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
             "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "icmp6": 58,
             "ospf": 89, "pim": 103, "vrrp": 112, "l2tp": 115, "sctp": 132, "udplite": 136,
             "mh": 135, "dccp": 33}


def parse_proto(s: str) -> int:
    s = s.lower()
    if s in PROTOCOLS:
        return PROTOCOLS[s]
    if s.isdigit():
        return int(s)
    raise BadOption(f"unknown protocol {s!r}")


# -- built-in parameters -----------------------------------------------------------------------

@builtin("source", "destination")
def _b_addr(o: MatchOption, cc: CompileCtx, text: str) -> Cond:
    if not o.values:
        raise BadOption("no address")
    nets = [parse_net(v, cc.family) for v in o.values[0].split(",")]
    src = o.name == "source"
    if len(nets) == 1:
        net, mask = nets[0]
        full = (1 << (32 if cc.family is Family.IPV4 else 128)) - 1
        key = ("src" if src else "dst", net) if mask == full and not o.negated else None
        if src:
            def p1(env: Env) -> Result:
                if env.src_i < 0:
                    return Unsure(True, "the packet's source is not chosen yet: assumed to match")
                return ((env.src_i & mask) == net) != o.negated
            return Cond(text, p1, key)

        def p2(env: Env) -> Result:
            return ((env.dst_i & mask) == net) != o.negated
        return Cond(text, p2, key)

    def pn(env: Env) -> Result:
        v = env.src_i if src else env.dst_i
        if v < 0:
            return Unsure(True, "the packet's source is not chosen yet: assumed to match")
        return any((v & m) == n for n, m in nets) != o.negated
    return Cond(text, pn)


def iface_matcher(pattern: str) -> Callable[[str | None], bool]:
    """``eth0`` exact, ``eth+`` prefix (iptables' wildcard), ``+`` any."""
    if pattern.endswith("+"):
        prefix = pattern[:-1]
        return lambda name: name is not None and name.startswith(prefix)
    return lambda name: name == pattern


@builtin("in-interface", "out-interface")
def _b_iface(o: MatchOption, cc: CompileCtx, text: str) -> Cond:
    m = iface_matcher(o.values[0] if o.values else "+")
    inbound = o.name == "in-interface"

    def p(env: Env) -> Result:
        name = env.in_iface if inbound else env.out_iface
        return m(name) != o.negated
    return Cond(text, p)


@builtin("protocol")
def _b_proto(o: MatchOption, cc: CompileCtx, text: str) -> Cond:
    proto = parse_proto(o.values[0] if o.values else "all")
    if proto == 0:
        return Cond(text, lambda env: not o.negated)
    return Cond(text, lambda env: (env.pkt.proto == proto) != o.negated)


@builtin("fragment")
def _b_frag(o: MatchOption, cc: CompileCtx, text: str) -> Cond:
    return Cond(text, lambda env: (env.pkt.frag_offset != 0) != o.negated)


# -- tcp / udp / sctp / dccp / udplite -----------------------------------------------------------

TCP_FLAG_NAMES = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20,
                  "ECE": 0x40, "CWR": 0x80, "ALL": 0xFF, "NONE": 0}


def parse_flags(s: str) -> int:
    out = 0
    for n in s.upper().split(","):
        if n not in TCP_FLAG_NAMES:
            raise BadOption(f"unknown TCP flag {n!r}")
        out |= TCP_FLAG_NAMES[n]
    return out


def _port_pred(proto: int | tuple[int, ...], sport: bool, lo: int, hi: int, negated: bool) -> Callable[[Env], bool]:
    protos = (proto,) if isinstance(proto, int) else proto

    def p(env: Env) -> bool:
        pkt = env.pkt
        if pkt.proto not in protos or pkt.frag_offset:
            return False  # the match itself fails; negation applies to the port test only
        v = pkt.sport if sport else pkt.dport
        return v is not None and ((lo <= v <= hi) != negated)
    return p


def _l4_ports(m: Match, cc: CompileCtx, proto: int) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name in ("sport", "source-port", "dport", "destination-port"):
            lo, hi = parse_range(o.values[0])
            out.append(Cond(t, _port_pred(proto, o.name in ("sport", "source-port"), lo, hi, o.negated)))
        elif proto == 6 and o.name in ("tcp-flags", "syn"):
            if o.name == "syn":
                mask, comp = 0x17, 0x02
            else:
                mask, comp = parse_flags(o.values[0]), parse_flags(o.values[1])

            def pf(env: Env, mask: int = mask, comp: int = comp, neg: bool = o.negated) -> bool:
                if env.pkt.proto != 6 or env.pkt.frag_offset:
                    return False
                return ((env.pkt.flag_bits & mask) == comp) != neg
            out.append(Cond(t, pf))
        elif proto == 6 and o.name == "tcp-option":
            out.append(unsure(t, "TCP options are not modelled: assumed present"))
        elif proto == 132 and o.name == "chunk-types":
            out.append(unsure(t, "SCTP chunks are not modelled: assumed to match"))
        else:
            out.append(unsure(t, f"option --{o.name} of '{m.module}' is not modelled: assumed to match"))
    if not out:
        out.append(Cond(f"-m {m.module}", lambda env: env.pkt.proto == proto and not env.pkt.frag_offset))
    return out


@match("tcp")
def _m_tcp(m: Match, cc: CompileCtx) -> list[Cond]:
    return _l4_ports(m, cc, 6)


@match("udp")
def _m_udp(m: Match, cc: CompileCtx) -> list[Cond]:
    return _l4_ports(m, cc, 17)


@match("sctp")
def _m_sctp(m: Match, cc: CompileCtx) -> list[Cond]:
    return _l4_ports(m, cc, 132)


@match("dccp")
def _m_dccp(m: Match, cc: CompileCtx) -> list[Cond]:
    return _l4_ports(m, cc, 33)


@match("udplite")
def _m_udplite(m: Match, cc: CompileCtx) -> list[Cond]:
    return _l4_ports(m, cc, 136)


@match("multiport")
def _m_multiport(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        ranges = [parse_range(p) for p in o.values[0].split(",")] if o.values else []
        which = {"sports": "s", "source-ports": "s", "dports": "d", "destination-ports": "d",
                 "ports": "b"}.get(o.name)
        if which is None:
            out.append(unsure(t, f"multiport option --{o.name} is not modelled: assumed to match"))
            continue

        def p(env: Env, ranges: list[tuple[int, int]] = ranges, which: str = which,
              neg: bool = o.negated) -> bool:
            pkt = env.pkt
            if pkt.proto not in (6, 17, 132, 33, 136) or pkt.frag_offset:
                return False
            vals = {"s": (pkt.sport,), "d": (pkt.dport,), "b": (pkt.sport, pkt.dport)}[which]
            hit = any(v is not None and lo <= v <= hi for v in vals for lo, hi in ranges)
            return hit != neg
        out.append(Cond(t, p))
    return out


# -- icmp --------------------------------------------------------------------------------------

ICMP4_TYPES: dict[str, tuple[int, int, int]] = {
    "any": (-1, 0, 255), "echo-reply": (0, 0, 255), "pong": (0, 0, 255),
    "destination-unreachable": (3, 0, 255), "network-unreachable": (3, 0, 0),
    "host-unreachable": (3, 1, 1), "protocol-unreachable": (3, 2, 2),
    "port-unreachable": (3, 3, 3), "fragmentation-needed": (3, 4, 4),
    "source-route-failed": (3, 5, 5), "network-unknown": (3, 6, 6), "host-unknown": (3, 7, 7),
    "network-prohibited": (3, 9, 9), "host-prohibited": (3, 10, 10),
    "TOS-network-unreachable": (3, 11, 11), "TOS-host-unreachable": (3, 12, 12),
    "communication-prohibited": (3, 13, 13), "host-precedence-violation": (3, 14, 14),
    "precedence-cutoff": (3, 15, 15), "source-quench": (4, 0, 255), "redirect": (5, 0, 255),
    "network-redirect": (5, 0, 0), "host-redirect": (5, 1, 1), "TOS-network-redirect": (5, 2, 2),
    "TOS-host-redirect": (5, 3, 3), "echo-request": (8, 0, 255), "ping": (8, 0, 255),
    "router-advertisement": (9, 0, 255), "router-solicitation": (10, 0, 255),
    "time-exceeded": (11, 0, 255), "ttl-exceeded": (11, 0, 255),
    "ttl-zero-during-transit": (11, 0, 0), "ttl-zero-during-reassembly": (11, 1, 1),
    "parameter-problem": (12, 0, 255), "ip-header-bad": (12, 0, 0),
    "required-option-missing": (12, 1, 1), "timestamp-request": (13, 0, 255),
    "timestamp-reply": (14, 0, 255), "address-mask-request": (17, 0, 255),
    "address-mask-reply": (18, 0, 255),
}
ICMP6_TYPES: dict[str, tuple[int, int, int]] = {
    "destination-unreachable": (1, 0, 255), "no-route": (1, 0, 0),
    "communication-prohibited": (1, 1, 1), "beyond-scope": (1, 2, 2),
    "address-unreachable": (1, 3, 3), "port-unreachable": (1, 4, 4), "failed-policy": (1, 5, 5),
    "reject-route": (1, 6, 6), "packet-too-big": (2, 0, 255), "time-exceeded": (3, 0, 255),
    "ttl-exceeded": (3, 0, 255), "ttl-zero-during-transit": (3, 0, 0),
    "ttl-zero-during-reassembly": (3, 1, 1), "parameter-problem": (4, 0, 255),
    "bad-header": (4, 0, 0), "unknown-header-type": (4, 1, 1), "unknown-option": (4, 2, 2),
    "echo-request": (128, 0, 255), "ping": (128, 0, 255), "echo-reply": (129, 0, 255),
    "pong": (129, 0, 255), "mld-listener-query": (130, 0, 255),
    "mld-listener-report": (131, 0, 255), "mld-listener-done": (132, 0, 255),
    "mld-listener-reduction": (132, 0, 255), "router-solicitation": (133, 0, 255),
    "router-advertisement": (134, 0, 255), "neighbour-solicitation": (135, 0, 255),
    "neighbor-solicitation": (135, 0, 255), "neighbour-advertisement": (136, 0, 255),
    "neighbor-advertisement": (136, 0, 255), "redirect": (137, 0, 255),
}


def parse_icmp_type(s: str, v6: bool) -> tuple[int, int, int]:
    names = ICMP6_TYPES if v6 else ICMP4_TYPES
    if s in names:
        return names[s]
    low = {k.lower(): v for k, v in names.items()}
    if s.lower() in low:
        return low[s.lower()]
    if "/" in s:
        a, b = s.split("/", 1)
        c = parse_int(b)
        return parse_int(a), c, c
    return parse_int(s), 0, 255


def _icmp(m: Match, cc: CompileCtx, proto: int) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name not in ("icmp-type", "icmpv6-type"):
            out.append(unsure(t, f"option --{o.name} is not modelled: assumed to match"))
            continue
        typ, lo, hi = parse_icmp_type(o.values[0], proto == 58)

        def p(env: Env, typ: int = typ, lo: int = lo, hi: int = hi, neg: bool = o.negated) -> bool:
            pkt = env.pkt
            if pkt.proto != proto or pkt.frag_offset or pkt.icmp_type is None:
                return False
            if typ < 0:
                return not neg
            ok = pkt.icmp_type == typ and lo <= (pkt.icmp_code or 0) <= hi
            return ok != neg
        out.append(Cond(t, p))
    return out


@match("icmp")
def _m_icmp(m: Match, cc: CompileCtx) -> list[Cond]:
    return _icmp(m, cc, 1)


@match("icmp6", "icmpv6", "ipv6-icmp")
def _m_icmp6(m: Match, cc: CompileCtx) -> list[Cond]:
    return _icmp(m, cc, 58)


# -- conntrack / state ---------------------------------------------------------------------------

def _ct_states(env: Env) -> set[str]:
    """The xt_conntrack state bits of the packet (SNAT/DNAT are virtual states)."""
    ct = env.ct
    if ct is None:
        return {"NEW"}
    if env.notrack:
        return {"UNTRACKED"}
    out = {str(ct.state)}
    if ct.entry is not None and ct.state not in ("INVALID", "UNTRACKED"):
        from journey.engine.conntrack import entry_has_nat

        snat, dnat = entry_has_nat(ct.entry)
        if snat:
            out.add("SNAT")
        if dnat:
            out.add("DNAT")
    return out


def _ct_unknown(env: Env) -> Unsure | None:
    if env.ct is None:
        return Unsure(True, "conntrack state unknown here: assumed NEW")
    if env.ct.uncertain:
        return Unsure(True, f"conntrack state uncertain ({env.ct.reason})")
    return None


def _state_cond(t: str, want: set[str], negated: bool) -> Cond:
    def p(env: Env) -> Result:
        hit = bool(_ct_states(env) & want) != negated
        u = _ct_unknown(env)
        if u is not None:
            return Unsure(hit, u.note)
        return hit
    return Cond(t, p)


def _ct_present(env: Env) -> bool:
    """The packet has a conntrack entry (xt_conntrack: without one only --ctstate can match)."""
    ct = env.ct
    return (ct is not None and not env.notrack and ct.entry is not None
            and ct.state not in ("INVALID", "UNTRACKED"))


def _addr_of(env: Env, which: str) -> IPAddress | None:
    ct = env.ct
    if ct is None or ct.entry is None:
        return None
    e = ct.entry
    tup = e.orig if which.startswith("orig") else e.reply
    return tup.src if which.endswith("src") else tup.dst


@match("conntrack")
def _m_conntrack(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        v = o.values[0] if o.values else ""
        if o.name == "ctstate":
            out.append(_state_cond(t, {s.upper() for s in v.split(",")}, o.negated))
        elif o.name == "ctproto":
            proto = parse_proto(v)

            def pp(env: Env, proto: int = proto, neg: bool = o.negated) -> bool:
                if not _ct_present(env):
                    return False  # no conntrack entry: the conntrack match fails
                assert env.ct is not None and env.ct.entry is not None
                return (env.ct.entry.proto == proto) != neg
            out.append(Cond(t, pp))
        elif o.name in ("ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"):
            net, mask = parse_net(v, cc.family)
            which = o.name[2:]

            def pa(env: Env, net: int = net, mask: int = mask, which: str = which,
                   neg: bool = o.negated) -> bool:
                a = _addr_of(env, which) if _ct_present(env) else None
                if a is None:
                    return False  # no conntrack entry: the conntrack match fails
                return ((int(a) & mask) == net) != neg
            out.append(Cond(t, pa))
        elif o.name in ("ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport"):
            lo, hi = parse_range(v)
            which = o.name[2:-4]

            def pport(env: Env, lo: int = lo, hi: int = hi, which: str = which,
                      neg: bool = o.negated) -> bool:
                ct = env.ct
                if ct is None or ct.entry is None or not _ct_present(env):
                    return False  # no conntrack entry: the conntrack match fails
                tup = ct.entry.orig if which.startswith("orig") else ct.entry.reply
                port = tup.sport if which.endswith("src") else tup.dport
                ok = port is not None and lo <= port <= hi
                return ok != neg
            out.append(Cond(t, pport))
        elif o.name == "ctstatus":
            want = {s.upper() for s in v.split(",")}

            def ps(env: Env, want: set[str] = want, neg: bool = o.negated) -> Result:
                ct = env.ct
                if ct is None or ct.entry is None or not _ct_present(env):
                    return False  # no conntrack entry: the conntrack match fails
                have = set(ct.status)
                if ct.source in ("snapshot", "flow"):
                    have.add("CONFIRMED")
                if "UNREPLIED" not in have and ct.source != "new":
                    have.add("SEEN_REPLY")
                if not (have & {"ASSURED", "SEEN_REPLY", "CONFIRMED", "EXPECTED"}):
                    have.add("NONE")
                return bool(have & want) != neg
            out.append(Cond(t, ps))
        elif o.name == "ctdir":
            want_d = "original" if v.upper() == "ORIGINAL" else "reply"

            def pd(env: Env, want_d: str = want_d, neg: bool = o.negated) -> bool:
                if not _ct_present(env):
                    return False  # no conntrack entry: the conntrack match fails
                d = env.ct.direction if env.ct is not None else None
                return (d == want_d) != neg
            out.append(Cond(t, pd))
        elif o.name == "ctexpire":
            lo, hi = parse_range(v, 0, 2**32 - 1, parse_int)

            def pe(env: Env, lo: int = lo, hi: int = hi, neg: bool = o.negated) -> Result:
                e = env.ct.entry if env.ct is not None else None
                if e is None or e.timeout is None:
                    return Unsure(not neg, "remaining conntrack lifetime unknown: assumed to match")
                return Unsure((lo <= e.timeout <= hi) != neg,
                              f"remaining lifetime taken from the snapshot ({e.timeout}s), it has run down since")
            out.append(Cond(t, pe))
        else:
            out.append(unsure(t, f"conntrack option --{o.name} is not modelled: assumed to match"))
    return out


@match("state")
def _m_state(m: Match, cc: CompileCtx) -> list[Cond]:
    o = m.options[0] if m.options else MatchOption("state", ("",))
    return [_state_cond(_opt_text(m, o), {s.upper() for s in o.values[0].split(",")}, o.negated)]


# -- marks, comment ------------------------------------------------------------------------------

@match("mark")
def _m_mark(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        val, mask = parse_mark(o.values[0])

        def p(env: Env, val: int = val, mask: int = mask) -> bool:
            return (env.pkt.mark & mask) == val
        out.append(Cond(_opt_text(m, o), _neg(p, o.negated)))
    return out


@match("connmark")
def _m_connmark(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        val, mask = parse_mark(o.values[0])

        def p(env: Env, val: int = val, mask: int = mask, neg: bool = o.negated) -> Result:
            if env.ct is None or env.notrack or env.ct.state in ("INVALID", "UNTRACKED"):
                return False  # no conntrack entry: connmark never matches
            return ((env.ct_mark & mask) == val) != neg
        out.append(Cond(_opt_text(m, o), p))
    return out


@match("comment", "nfacct")
def _m_comment(m: Match, cc: CompileCtx) -> list[Cond]:
    return []


# -- addrtype ----------------------------------------------------------------------------------

ADDR_TYPES = ("UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE",
              "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE")


def addr_type(snap: HostSnapshot, addr: IPAddress, dev: str | None = None) -> str:
    """The route type of an address as xt_addrtype sees it (LOCAL, UNICAST, BROADCAST, ...)."""
    if addr.version == 4:
        v = int(addr)
        if v == 0 or v == 0xFFFFFFFF:
            return "BROADCAST"
        if addr.is_multicast:
            return "MULTICAST"
    elif addr.is_multicast:
        return "MULTICAST"
    best: tuple[int, str] | None = None
    for table in (255, 254):
        for r in snap.routes:
            if r.table != table or r.dst.version != addr.version or addr not in r.dst:
                continue
            if dev is not None and r.dev is not None and r.dev != dev:
                continue
            if best is None or r.dst.prefixlen > best[0]:
                best = (r.dst.prefixlen, str(r.type).upper())
        if best is not None and (table == 255 and best[1] in ("LOCAL", "BROADCAST", "ANYCAST")):
            return best[1]
        if table == 255:
            best = None
    if best is None:
        if addr.version == 4 or dev is not None:
            return "UNICAST"
        return "UNREACHABLE"
    t = best[1]
    return t if t != str(RouteType.MULTICAST).upper() else "MULTICAST"


@match("addrtype")
def _m_addrtype(m: Match, cc: CompileCtx) -> list[Cond]:
    limit_in = m.option("limit-iface-in") is not None
    limit_out = m.option("limit-iface-out") is not None
    out: list[Cond] = []
    for o in m.options:
        if o.name not in ("src-type", "dst-type"):
            continue
        types = {s.upper() for s in o.values[0].split(",")}
        src = o.name == "src-type"

        def p(env: Env, types: set[str] = types, src: bool = src, neg: bool = o.negated) -> Result:
            a = env.pkt.src if src else env.pkt.dst
            if a is None:
                return Unsure(not neg, "source not chosen yet: assumed to match")
            dev = env.in_iface if limit_in else env.out_iface if limit_out else None
            return (addr_type(env.snap, a, dev) in types) != neg
        out.append(Cond(_opt_text(m, o), p))
    return out


@match("rpfilter")
def _m_rpfilter(m: Match, cc: CompileCtx) -> list[Cond]:
    """xt_rpfilter (rpfilter_mt / rpfilter_mt6): a reverse lookup with the source as the
    destination from ``iif lo``; strict: the route must use the input interface."""
    loose = m.option("loose") is not None
    vmark = m.option("validmark") is not None
    acc_local = m.option("accept-local") is not None
    invert = m.option("invert") is not None

    def p(env: Env) -> Result:
        from journey.engine import routing

        pkt, dev = env.pkt, env.in_iface
        iface = env.snap.interface(dev) if dev else None
        if dev is None or (iface is not None and iface.is_loopback):
            return not invert  # rpfilter_is_loopback
        src, dst = pkt.src, pkt.dst
        if src is None:
            return Unsure(not invert, "source not chosen yet: assumed to pass rpfilter")
        mark = pkt.mark if vmark else 0
        lo = routing.routing_index(env.snap).loopback
        if pkt.family is Family.IPV4:
            if int(src) == 0 and (int(dst) == 0xFFFFFFFF or dst in _LOCAL_MCAST4):
                return not invert
            bsrc = None if (dst.is_multicast or int(dst) in (0, 0xFFFFFFFF)) else dst
            dec = routing.fib_lookup(env.snap, family=Family.IPV4, dst=src, src=bsrc, iif=lo,
                                     mark=mark, tos=pkt.tos & 0x1C)
        else:
            if src.is_unspecified:
                return not invert
            bsrc = dst if not (dst.is_multicast or dst.is_link_local
                               or dst == ipaddress.IPv6Address("::1")) else None
            ll = src.is_link_local
            dec = routing.fib_lookup(env.snap, family=Family.IPV6, dst=src, src=bsrc, iif=lo,
                                     mark=mark, proto=pkt.proto, oif=dev if ll else None)
        kind = str(dec.kind)
        if kind == "local":
            ok = acc_local
        elif kind != "unicast":
            ok = False
        else:
            route = dec.route
            devs = {dec.oif} | ({nh.dev for nh in route.nexthops} if route is not None else set())
            ok = loose or dev in devs
        if dec.uncertain:
            return Unsure(ok != invert, "the reverse route lookup is uncertain")
        return ok != invert
    return [Cond(m.text(), p)]


_LOCAL_MCAST4 = ipaddress.ip_network("224.0.0.0/24")


# -- ranges, mac, pkttype, length, ttl, tos ------------------------------------------------------

@match("iprange")
def _m_iprange(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name not in ("src-range", "dst-range"):
            out.append(unsure(t, f"iprange option --{o.name} is not modelled"))
            continue
        a, _, b = o.values[0].partition("-")
        try:
            lo, hi = int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b or a))
        except ValueError:
            raise BadOption(f"bad range {o.values[0]!r}") from None
        src = o.name == "src-range"

        def p(env: Env, lo: int = lo, hi: int = hi, src: bool = src, neg: bool = o.negated) -> Result:
            v = env.src_i if src else env.dst_i
            if v < 0:
                return Unsure(True, "source not chosen yet: assumed to match")
            return (lo <= v <= hi) != neg
        out.append(Cond(t, p))
    return out


@match("mac")
def _m_mac(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        want = o.values[0].lower()

        def p(env: Env, want: str = want, neg: bool = o.negated) -> Result:
            from journey.engine.netfilter.pipeline import Hook

            if env.hook not in (Hook.PREROUTING, Hook.INPUT, Hook.FORWARD):
                return False
            if env.pkt.src_mac is None:
                return Unsure(not neg, "the packet's source MAC is not known: assumed to match")
            return (env.pkt.src_mac.lower() == want) != neg
        out.append(Cond(_opt_text(m, o), p))
    return out


def _pkt_type(env: Env) -> tuple[str, bool]:
    """(unicast|broadcast|multicast, exact)."""
    pkt = env.pkt
    if pkt.dst_mac is not None and not env.local:
        mac = pkt.dst_mac.lower()
        if mac == "ff:ff:ff:ff:ff:ff":
            return "broadcast", True
        if int(mac.split(":")[0], 16) & 1:
            return "multicast", True
        return "unicast", True
    if pkt.dst.is_multicast:
        return "multicast", True
    if pkt.family is Family.IPV4 and addr_type(env.snap, pkt.dst) == "BROADCAST":
        return "broadcast", env.local
    return "unicast", env.local


@match("pkttype")
def _m_pkttype(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        want = o.values[0].lower()

        def p(env: Env, want: str = want, neg: bool = o.negated) -> Result:
            typ, exact = _pkt_type(env)
            hit = (typ == want) != neg
            if not exact:
                return Unsure(hit, f"link-layer destination unknown: packet type taken from the IP "
                                   f"destination ({typ})")
            return hit
        out.append(Cond(_opt_text(m, o), p))
    return out


@match("length")
def _m_length(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        lo, hi = parse_range(o.values[0], 0, 65535, parse_int)

        def p(env: Env, lo: int = lo, hi: int = hi) -> bool:
            return lo <= env.pkt.ip_length <= hi
        out.append(Cond(_opt_text(m, o), _neg(p, o.negated)))
    return out


_TTL_OPS: dict[str, Callable[[int, int], bool]] = {
    "eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "gt": lambda a, b: a > b,
    "ne": lambda a, b: a != b,
}


@match("ttl", "hl")
def _m_ttl(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        n = parse_int(o.values[0]) if o.values else 0
        op = _TTL_OPS.get(o.name.split("-")[-1])
        if op is None:
            out.append(unsure(_opt_text(m, o), f"--{o.name} is not modelled"))
            continue

        def p(env: Env, n: int = n, op: Callable[[int, int], bool] = op) -> bool:
            return op(env.pkt.ttl, n)
        out.append(Cond(_opt_text(m, o), _neg(p, o.negated)))
    return out


TOS_NAMES = {"minimize-delay": 0x10, "maximize-throughput": 0x08, "maximize-reliability": 0x04,
             "minimize-cost": 0x02, "normal-service": 0x00}
DSCP_CLASSES = {"cs0": 0, "cs1": 8, "cs2": 16, "cs3": 24, "cs4": 32, "cs5": 40, "cs6": 48,
                "cs7": 56, "be": 0, "af11": 10, "af12": 12, "af13": 14, "af21": 18, "af22": 20,
                "af23": 22, "af31": 26, "af32": 28, "af33": 30, "af41": 34, "af42": 36,
                "af43": 38, "ef": 46, "va": 44, "le": 1}


def parse_tos(s: str) -> tuple[int, int]:
    """``0x10/0x3f`` or ``Minimize-Delay`` -> (value, mask); names use mask 0x3f."""
    if s.lower() in TOS_NAMES:
        return TOS_NAMES[s.lower()], 0x3F
    if "/" in s:
        v, mk = s.split("/", 1)
        return parse_int(v), parse_int(mk)
    return parse_int(s), 0xFF


@match("tos")
def _m_tos(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        v, mk = parse_tos(o.values[0])

        def p(env: Env, v: int = v, mk: int = mk) -> bool:
            return (env.pkt.tos & mk) == (v & mk)
        out.append(Cond(_opt_text(m, o), _neg(p, o.negated)))
    return out


@match("dscp")
def _m_dscp(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        s = o.values[0]
        d = DSCP_CLASSES.get(s.lower()) if o.name == "dscp-class" else parse_int(s)
        if d is None:
            raise BadOption(f"unknown DSCP class {s!r}")

        def p(env: Env, d: int = d) -> bool:
            return (env.pkt.tos >> 2) == d
        out.append(Cond(_opt_text(m, o), _neg(p, o.negated)))
    return out


@match("ecn")
def _m_ecn(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name in ("ecn-tcp-cwr", "ecn-tcp-ece"):
            bit = 0x80 if o.name == "ecn-tcp-cwr" else 0x40

            def pf(env: Env, bit: int = bit) -> bool:
                return env.pkt.proto == 6 and bool(env.pkt.flag_bits & bit)
            out.append(Cond(t, _neg(pf, o.negated)))
        elif o.name == "ecn-ip-ect":
            n = parse_int(o.values[0])

            def pe(env: Env, n: int = n) -> bool:
                return (env.pkt.tos & 0x03) == n
            out.append(Cond(t, _neg(pe, o.negated)))
        else:
            out.append(unsure(t, f"--{o.name} is not modelled"))
    return out


# -- owner, set, physdev -------------------------------------------------------------------------

def _owner_no_socket(env: Env, neg: bool) -> bool | None:
    """xt_owner without a local socket (not OUTPUT/POSTROUTING, or forwarded): matches only
    when the option is negated. None when there is a socket."""
    from journey.engine.netfilter.pipeline import Hook

    if env.hook not in (Hook.OUTPUT, Hook.POSTROUTING) or not env.pkt.local:
        return neg
    return None


@match("owner")
def _m_owner(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name == "uid-owner":
            v = o.values[0]
            try:
                lo, hi = parse_range(v, 0, 2**32 - 1, parse_int)
                name = None
            except BadOption:
                lo, hi, name = 0, -1, v

            def pu(env: Env, lo: int = lo, hi: int = hi, name: str | None = name,
                   neg: bool = o.negated) -> Result:
                r = _owner_no_socket(env, neg)
                if r is not None:
                    return r
                if name is not None:
                    return Unsure(not neg, f"user name {name!r} is not resolved: assumed to match")
                uid = env.pkt.uid
                if uid is None:
                    return Unsure(not neg, "the sending process's uid is not known: assumed to match")
                return (lo <= uid <= hi) != neg
            out.append(Cond(t, pu))
        elif o.name == "socket-exists":
            def ps(env: Env, neg: bool = o.negated) -> Result:
                r = _owner_no_socket(env, neg)
                return r if r is not None else not neg
            out.append(Cond(t, ps))
        else:
            def po(env: Env, neg: bool = o.negated, oname: str = o.name) -> Result:
                r = _owner_no_socket(env, neg)
                if r is not None:
                    return r
                return Unsure(not neg, f"--{oname} of the sending process is not known: assumed to match")
            out.append(Cond(t, po))
    return out


def _set_members(s: IpSet) -> list[tuple[list[str], bool]]:
    out: list[tuple[list[str], bool]] = []
    for mem in s.members:
        words = mem.split()
        if not words:
            continue
        nomatch = "nomatch" in words[1:]
        out.append((words[0].split(","), nomatch))
    return out


def _elem_match(kind: str, val: str, env: Env, dim_src: bool) -> bool:
    pkt = env.pkt
    if kind in ("ip", "net"):
        a = pkt.src if dim_src else pkt.dst
        if a is None:
            return False
        try:
            if "-" in val and "/" not in val:
                lo_s, hi_s = val.split("-", 1)
                return int(ipaddress.ip_address(lo_s)) <= int(a) <= int(ipaddress.ip_address(hi_s))
            return a in ipaddress.ip_network(val, strict=False)
        except ValueError:
            return False
    if kind == "port":
        port = pkt.sport if dim_src else pkt.dport
        proto = "tcp"
        p = val
        if ":" in val:
            proto, p = val.split(":", 1)
        if proto not in ("tcp", "udp", "sctp", "udplite", "icmp", "icmpv6", "tcpudp"):
            return False
        if proto in ("icmp", "icmpv6"):
            return False
        want = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136}.get(proto)
        if want is not None and pkt.proto != want:
            return False
        try:
            lo, hi = parse_range(p)
        except BadOption:
            return False
        return port is not None and lo <= port <= hi
    if kind == "iface":
        return (env.in_iface if dim_src else env.out_iface) == val
    if kind == "mark":
        return pkt.mark == parse_int(val)
    if kind == "mac":
        mac = pkt.src_mac if dim_src else pkt.dst_mac
        return mac is not None and mac.lower() == val.lower()
    return False


def set_lookup(snap: HostSnapshot, name: str, dims: list[bool], env: Env, depth: int = 0) -> Result:
    """Is the packet in ipset ``name`` with the src/dst dimension flags ``dims``?"""
    s = snap.ipset(name)
    if s is None:
        return Unsure(True, f"ipset {name!r} is not in the snapshot: assumed to match")
    typ = s.type
    method, _, kinds_s = typ.partition(":")
    if method == "list":
        if depth > 4:
            return Unsure(True, "list:set nesting too deep")
        for mem_words, _nm in _set_members(s):
            r = set_lookup(snap, mem_words[0], dims, env, depth + 1)
            if r is True or (isinstance(r, Unsure) and r.assume):
                return r
        return False
    kinds = kinds_s.split(",")
    if s.family is not None and s.family is not env.family:
        return False
    for elem, nomatch in sorted(_set_members(s), key=lambda x: not x[1]):
        if len(elem) < len(kinds):
            continue
        ok = True
        for i, kind in enumerate(kinds):
            d_src = dims[i] if i < len(dims) else dims[-1]
            if not _elem_match(kind, elem[i], env, d_src):
                ok = False
                break
        if ok:
            return not nomatch
    return False


@match("set")
def _m_set(m: Match, cc: CompileCtx) -> list[Cond]:
    out: list[Cond] = []
    for o in m.options:
        t = _opt_text(m, o)
        if o.name != "match-set":
            continue  # --return-nomatch, --update-counters...: counters only
        if len(o.values) < 2:
            raise BadOption("--match-set needs a set name and flags")
        name, flags = o.values[0], o.values[1]
        dims = [f == "src" for f in flags.split(",")]

        def p(env: Env, name: str = name, dims: list[bool] = dims, neg: bool = o.negated) -> Result:
            r = set_lookup(env.snap, name, dims, env)
            if isinstance(r, Unsure):
                return Unsure(r.assume != neg, r.note)
            return r != neg
        out.append(Cond(t, p))
    return out


def _is_bridge_port(snap: HostSnapshot, name: str | None) -> bool:
    if name is None:
        return False
    i = snap.interface(name)
    return i is not None and i.kind == "bridge"


@match("physdev")
def _m_physdev(m: Match, cc: CompileCtx) -> list[Cond]:
    opts = list(m.options)

    def p(env: Env) -> Result:
        if not (_is_bridge_port(env.snap, env.in_iface) or _is_bridge_port(env.snap, env.out_iface)):
            # no bridge involved: the kernel matches only when every given option is negated
            return all(o.negated for o in opts)
        return Unsure(True, "bridged packet: the bridge port is not modelled; assumed to match")
    return [Cond(m.text(), p)]


# -- stateful matches (assumptions) --------------------------------------------------------------

def _opt_int(m: Match, name: str, default: int) -> int:
    o = m.option(name)
    if o is None or not o.values:
        return default
    try:
        return parse_int(o.values[0])
    except BadOption:
        return default


@match("limit")
def _m_limit(m: Match, cc: CompileCtx) -> list[Cond]:
    rate = m.option("limit")
    r = rate.values[0] if rate and rate.values else "3/hour"
    burst = _opt_int(m, "limit-burst", 5)
    u = Unsure(True, f"limit {r} assumed not exceeded",
               RateSpec("limit", f"{r} burst {burst}", burst))
    return [Cond(m.text(), lambda env: u)]


_PORTED = frozenset({6, 17, 33, 132, 136})


@match("hashlimit")
def _m_hashlimit(m: Match, cc: CompileCtx) -> list[Cond]:
    above = m.option("hashlimit-above")
    upto = m.option("hashlimit-upto") or m.option("hashlimit")
    rate_o = above if above is not None else upto
    rate = rate_o.values[0] if rate_o is not None and rate_o.values else "?"
    if "b/" in rate or rate == "?":  # byte mode (--hashlimit-upto 1kb/s): credit per byte
        if above is not None:
            return [unsure(m.text(), f"hashlimit above {rate} assumed not exceeded: no match",
                           False)]
        return [unsure(m.text(), "hashlimit assumed not exceeded (first packet): matches")]
    burst = _opt_int(m, "hashlimit-burst", 5)
    name_o = m.option("hashlimit-name")
    name = name_o.values[0] if name_o is not None and name_o.values else "?"
    mode_o = m.option("hashlimit-mode")
    modes = tuple(mode_o.values[0].split(",")) if mode_o is not None and mode_o.values else ()
    bits = 32 if cc.family is Family.IPV4 else 128
    full = (1 << bits) - 1
    smask = full ^ (full >> _opt_int(m, "hashlimit-srcmask", bits))
    dmask = full ^ (full >> _opt_int(m, "hashlimit-dstmask", bits))
    text = f"{'above' if above is not None else 'upto'} {rate} burst {burst}"

    def p(env: Env) -> Result:
        pkt = env.pkt
        parts = [f"{cc.family}:{name}"]
        ported = pkt.proto in _PORTED
        for mode in modes:
            if mode == "srcip":
                parts.append(f"src={max(env.src_i, 0) & smask:x}")
            elif mode == "dstip":
                parts.append(f"dst={env.dst_i & dmask:x}")
            elif mode == "srcport":
                parts.append(f"sport={pkt.sport if ported else 0}")
            elif mode == "dstport":
                parts.append(f"dport={pkt.dport if ported else 0}")
        return Unsure(above is None, f"hashlimit {text}",
                      RateSpec("hashlimit", text, burst, " ".join(parts), above is not None))
    return [Cond(m.text(), p)]


def rate_decide(env: Env, rule: str, u: Unsure) -> Unsure:
    """Decide a limit / hashlimit match from the credit earlier packets of the run used.

    The kernel's bucket starts full with ``burst`` packets' worth of credit, each matching
    packet takes one, and credit comes back at the rate over time. Packets of a run are assumed
    to arrive back-to-back (no credit comes back between them): the first ``burst`` packets
    through a bucket take credit, later ones find it empty. ``env.rates`` (bucket -> packets
    that took credit) is updated; without it the bucket is taken as full. Stays an ``Unsure``:
    the timing is an assumption.
    """
    spec = u.rate
    if spec is None:
        return u
    key = f"limit {rule}" if spec.kind == "limit" else f"hashlimit {spec.bucket}"
    book = env.rates
    used = book.get(key, 0) if book is not None else 0
    credit = used < spec.burst
    if credit and book is not None:
        book[key] = used + 1
    matched = credit != spec.above
    nth = "first packet" if used == 0 else f"packet {used + 1}"
    why = (f"{spec.kind} {spec.text}: {nth} of this run through this bucket, assuming the "
           f"packets arrive back-to-back (no credit refilled between them): "
           + (f"within the burst of {spec.burst}, not exceeded" if credit
              else f"the burst of {spec.burst} is used up, exceeded")
           + (", matches" if matched else ", no match"))
    return Unsure(matched, why)


@match("quota")
def _m_quota(m: Match, cc: CompileCtx) -> list[Cond]:
    o = m.option("quota")
    neg = bool(o and o.negated)
    return [unsure(m.text(), "quota assumed not used up", not neg)]


@match("connbytes")
def _m_connbytes(m: Match, cc: CompileCtx) -> list[Cond]:
    return [unsure(m.text(), "connection byte/packet counts are not known: assumed to match")]


@match("connlimit")
def _m_connlimit(m: Match, cc: CompileCtx) -> list[Cond]:
    above = m.option("connlimit-above")
    if above is not None:
        return [unsure(m.text(), f"connection count assumed not above {above.values[0]}: no match",
                       above.negated)]
    return [unsure(m.text(), "connection count assumed within the limit: matches")]


@match("recent")
def _m_recent(m: Match, cc: CompileCtx) -> list[Cond]:
    name = m.option("name")
    lst = name.values[0] if name and name.values else "DEFAULT"
    for o in m.options:
        if o.name == "set":
            return [unsure(m.text(), f"adds the address to recent list {lst!r}: matches", not o.negated)]
        if o.name in ("rcheck", "update", "remove"):
            return [unsure(m.text(), f"recent list {lst!r} is not known: the address is assumed not "
                                     "in it (no match)", o.negated)]
    return [unsure(m.text(), "recent: assumed to match")]


@match("statistic")
def _m_statistic(m: Match, cc: CompileCtx) -> list[Cond]:
    mode = m.option("mode")
    if mode is not None and mode.values and mode.values[0] == "random":
        pr = m.option("probability")
        p = pr.values[0] if pr and pr.values else "?"
        try:
            pct = f"{float(p) * 100:.1f}%"
        except ValueError:
            pct = p
        neg = bool(pr and pr.negated)
        return [unsure(m.text(), f"statistic random (probability {p}, {pct}): the kernel picks at "
                                 f"random; journey takes the branch where it "
                                 f"{'does not match' if neg else 'matches'}", not neg)]
    ev = m.option("every")
    return [unsure(m.text(), f"statistic nth (every {ev.values[0] if ev and ev.values else '?'}): "
                             "the packet counter is unknown; assumed to match")]


# -- IPv6 extension headers and IPsec headers ---------------------------------------------------
# The packet model carries no routing, hop-by-hop or destination-options header; a fragment
# header exactly when an IPv6 packet is a fragment. The kernel's matches look the header up
# (ipv6_find_hdr) and return false -- whatever the options and their "!" -- when it is absent.

_MLD = frozenset({130, 131, 132, 143})  # sent with a hop-by-hop router-alert option


def _v6_frag(pkt: Packet) -> bool:
    return pkt.family is Family.IPV6 and (pkt.frag_offset != 0 or pkt.more_fragments)


@match("rt")
def _m_rt(m: Match, cc: CompileCtx) -> list[Cond]:
    # ip6t_rt: no routing header -> false (the spec cannot give a packet one)
    return [Cond(m.text(), lambda env: False)]


def _m_opts_hdr(which: str) -> MatchCompiler:
    def comp(m: Match, cc: CompileCtx) -> list[Cond]:
        def p(env: Env) -> Result:
            pkt = env.pkt
            if which == "hbh" and pkt.proto == 58 and pkt.icmp_type in _MLD:
                return Unsure(True, "MLD messages carry a hop-by-hop header (router alert); its "
                                    "options are not modelled: assumed to match")
            return False  # ip6t_hbh: no such header -> false
        return [Cond(m.text(), p)]
    return comp


MATCHES["hbh"] = _m_opts_hdr("hbh")
MATCHES["dst"] = _m_opts_hdr("dst")


@match("frag")
def _m_frag6(m: Match, cc: CompileCtx) -> list[Cond]:
    """ip6t_frag: false without a fragment header; else every option given must hold."""
    checks: list[Callable[[Packet], bool]] = []
    unknown: list[str] = []
    for o in m.options:
        if o.name == "fragfirst":
            checks.append(lambda pkt: pkt.frag_offset == 0)
        elif o.name == "fragmore":
            checks.append(lambda pkt: pkt.more_fragments)
        elif o.name == "fraglast":
            checks.append(lambda pkt: not pkt.more_fragments)
        elif o.name in ("fragres", "fraglen"):
            continue  # reserved bits are zero in a modelled packet; the kernel ignores fraglen
        elif o.name == "fragid":
            lo, hi = parse_range(o.values[0] if o.values else "0", 0, 2**32 - 1, parse_int)
            if (lo, hi) != (0, 2**32 - 1) or o.negated:
                unknown.append(o.text())
        else:
            unknown.append(o.text())

    def p(env: Env) -> Result:
        pkt = env.pkt
        if not _v6_frag(pkt):
            return False  # no fragment header: the frag match is false
        if not all(c(pkt) for c in checks):
            return False
        if unknown:
            return Unsure(True, f"fragment header field(s) not modelled ({', '.join(unknown)}): "
                                "assumed to match")
        return True
    return [Cond(m.text(), p)]


_HDR_MASKS = {
    "hop-by-hop": 128, "hop": 128, "0": 128,
    "ipv6-opts": 64, "dst": 64, "60": 64,
    "ipv6-route": 32, "route": 32, "43": 32,
    "ipv6-frag": 16, "frag": 16, "44": 16,
    "ah": 8, "auth": 8, "51": 8,
    "esp": 4, "50": 4,
    "ipv6-nonxt": 2, "none": 2, "59": 2,
    "protocol": 1, "proto": 1, "prot": 1, "255": 1,
}


@match("ipv6header")
def _m_ipv6header(m: Match, cc: CompileCtx) -> list[Cond]:
    """ip6t_ipv6header: the set of headers present, compared exactly or (``--soft``) for the
    ones named; it matches on absence too."""
    h = m.option("header")
    if h is None or not h.values:
        return [unsure(m.text(), "ipv6header without --header: assumed to match")]
    want = 0
    for name in h.values[0].split(","):
        bit = _HDR_MASKS.get(name.strip().lower())
        if bit is None:
            return [unsure(m.text(), f"unknown header name {name!r}: assumed to match")]
        want |= bit
    soft = m.option("soft") is not None
    inv = 0xFF if h.negated else 0

    def p(env: Env) -> Result:
        pkt = env.pkt
        have = 16 if _v6_frag(pkt) else 0
        if pkt.proto == 51:
            return Unsure(True, "an AH header: the headers behind it are not modelled; assumed "
                                "to match")
        if pkt.proto == 58 and pkt.icmp_type in _MLD:
            return Unsure(True, "MLD carries a hop-by-hop header: assumed to match")
        if pkt.proto == 50:
            have |= 4
        elif pkt.proto == 59:
            have |= 2
        else:
            have |= 1
        if soft:
            return not ((have ^ want ^ inv) & want)
        return have != want if inv else have == want
    return [Cond(m.text(), p)]


def _m_upper(proto: int, what: str) -> MatchCompiler:
    """esp / ah (IPv4) / mh: the header is the packet's transport header (the rule needs -p)."""
    def comp(m: Match, cc: CompileCtx) -> list[Cond]:
        def p(env: Env) -> Result:
            pkt = env.pkt
            if pkt.proto != proto or pkt.frag_offset:
                return False  # not this header (or a non-first fragment): no match
            return Unsure(True, f"{what} are not modelled: assumed to match")
        return [Cond(m.text(), p)]
    return comp


MATCHES["esp"] = _m_upper(50, "ESP SPIs")
MATCHES["ah"] = _m_upper(51, "AH SPIs and lengths")  # ip6t_ah: ipv6_find_hdr(AUTH) likewise
MATCHES["mh"] = _m_upper(135, "mobility header types")


# -- policy, helper, and the rest ---------------------------------------------------------------

@match("policy")
def _m_policy(m: Match, cc: CompileCtx) -> list[Cond]:
    pol = m.option("pol")
    if pol is not None and pol.values and len(m.options) <= 3:
        none = pol.values[0] == "none"
        return [unsure(m.text(), "no IPsec state in the snapshot: the packet is assumed not to "
                                 f"have been IPsec-processed ({'matches' if none else 'no match'})",
                       none != pol.negated)]
    return [unsure(m.text(), "IPsec policy is not modelled: assumed to match")]


@match("helper")
def _m_helper(m: Match, cc: CompileCtx) -> list[Cond]:
    return [unsure(m.text(), "conntrack helpers are not modelled: assumed the flow has none (no match)",
                   bool(m.options and m.options[0].negated))]


def _uncertain_module(why: str) -> MatchCompiler:
    def comp(m: Match, cc: CompileCtx) -> list[Cond]:
        return [unsure(m.text(), f"{why}: assumed to match")]
    return comp


for _name, _why in {
    "string": "payload string search is not modelled",
    "u32": "u32 payload tests are not modelled",
    "bpf": "BPF programs are not modelled",
    "socket": "the socket lookup of the socket match is not modelled",
    "cgroup": "the sending process's cgroup is not known",
    "tcpmss": "the TCP MSS option is not modelled",
    "time": "the time of day is not modelled",
    "devgroup": "interface groups are not modelled here",
    "realm": "route realms are not modelled",
    "cpu": "the receiving CPU is not known",
    "cluster": "cluster hashing is not modelled",
    "ipvs": "IPVS is not modelled",
    "osf": "OS fingerprinting is not modelled",
    "eui64": "EUI-64 checks are not modelled",
    "rateest": "rate estimators are not modelled",
    "condition": "condition flags are not modelled",
    "geoip": "geoip databases are not modelled",
    "l2tp": "L2TP headers are not modelled",
    "comment2": "not modelled",
}.items():
    MATCHES.setdefault(_name, _uncertain_module(_why))
