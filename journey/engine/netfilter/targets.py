"""iptables targets as a registry: target name -> compiler of its options into an action.

An action takes the per-packet ``Env`` (it may change ``env.pkt``, the connmark, NOTRACK, the
zone) and returns a ``TargetResult``: ``continue`` for non-terminal targets (MARK, LOG, TTL...),
or a verdict (``accept``, ``drop``, ``reject``, ``queue``, ``stolen``). NAT targets compute the
binding the kernel would choose (first address of a range — said in the note — the original
port when it lies in the range, as ``get_unique_tuple`` does). Targets the engine does not know
are shown with their text, marked uncertain and treated as non-terminal.

Pure: depends on ``journey.model`` and ``journey.engine.netfilter.matches`` (lazily on
``journey.engine.routing`` for IPv6 MASQUERADE); no I/O, no textual, no rich.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, replace

from journey.engine.netfilter.matches import (
    DSCP_CLASSES,
    BadOption,
    CompileCtx,
    Env,
    parse_int,
    parse_mark,
    parse_range,
    parse_tos,
)
from journey.engine.netfilter.pipeline import Hook
from journey.model.family import Family, IPAddress
from journey.model.journey import RuleRef
from journey.model.ruleset import Target

__all__ = [
    "REJECT_TYPES",
    "TARGETS",
    "NatBinding",
    "RejectSpec",
    "TargetFn",
    "TargetResult",
    "compile_target",
]


@dataclass(frozen=True, slots=True)
class NatBinding:
    """The NAT a rule bound for a flow: kind, the chosen address / port, the rule and a sentence."""

    kind: str  # "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT" | "NETMAP"
    addr: IPAddress | None
    port: int | None
    rule: RuleRef
    text: str
    uncertain: bool = False
    manip: str = ""  # "src" | "dst": which side of the tuple the binding rewrites
    ports: tuple[int, int] | None = None  # the --to port range (None: no range given)


@dataclass(frozen=True, slots=True)
class RejectSpec:
    """What REJECT sends back: ``with_`` as iptables names it, and the ICMP type/code (None: RST)."""

    with_: str  # "icmp-port-unreachable", "tcp-reset", "icmp6-adm-prohibited", ...
    icmp_type: int | None = None
    icmp_code: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class TargetResult:
    verdict: str  # "continue" | "accept" | "drop" | "reject" | "queue" | "stolen"
    note: str | None = None
    uncertain: bool = False
    nat: NatBinding | None = None
    reject: RejectSpec | None = None


TargetFn = Callable[[Env], TargetResult]
TargetCompiler = Callable[[Target, CompileCtx, RuleRef], TargetFn]
TARGETS: dict[str, TargetCompiler] = {}

CONTINUE = TargetResult("continue")


def target(*names: str) -> Callable[[TargetCompiler], TargetCompiler]:
    def deco(fn: TargetCompiler) -> TargetCompiler:
        for n in names:
            TARGETS[n] = fn
        return fn
    return deco


def _const(res: TargetResult) -> TargetFn:
    return lambda env: res


def compile_target(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    """The action of a target extension; unknown targets are uncertain and non-terminal."""
    comp = TARGETS.get(t.name)
    if comp is None:
        return _const(TargetResult("continue", f"target {t.name} is not modelled: treated as "
                                               "non-terminal (the packet goes on)", True))
    try:
        return comp(t, cc, ref)
    except BadOption as e:
        return _const(TargetResult("continue", f"cannot interpret {t.text()!r}: {e}; treated as "
                                               "non-terminal", True))


def _val(t: Target, name: str) -> str | None:
    o = t.option(name)
    return o.values[0] if o is not None and o.values else None


# -- REJECT ------------------------------------------------------------------------------------

REJECT_TYPES: dict[str, tuple[str, int | None, int | None]] = {
    # v4
    "icmp-net-unreachable": ("icmp-net-unreachable", 3, 0), "net-unreach": ("icmp-net-unreachable", 3, 0),
    "icmp-host-unreachable": ("icmp-host-unreachable", 3, 1), "host-unreach": ("icmp-host-unreachable", 3, 1),
    "icmp-proto-unreachable": ("icmp-proto-unreachable", 3, 2), "proto-unreach": ("icmp-proto-unreachable", 3, 2),
    "icmp-port-unreachable": ("icmp-port-unreachable", 3, 3),
    "icmp-net-prohibited": ("icmp-net-prohibited", 3, 9), "net-prohib": ("icmp-net-prohibited", 3, 9),
    "icmp-host-prohibited": ("icmp-host-prohibited", 3, 10), "host-prohib": ("icmp-host-prohibited", 3, 10),
    "icmp-admin-prohibited": ("icmp-admin-prohibited", 3, 13), "admin-prohib": ("icmp-admin-prohibited", 3, 13),
    "tcp-reset": ("tcp-reset", None, None), "tcp-rst": ("tcp-reset", None, None),
    # v6
    "icmp6-no-route": ("icmp6-no-route", 1, 0), "no-route": ("icmp6-no-route", 1, 0),
    "icmp6-adm-prohibited": ("icmp6-adm-prohibited", 1, 1), "adm-prohibited": ("icmp6-adm-prohibited", 1, 1),
    "icmp6-addr-unreachable": ("icmp6-addr-unreachable", 1, 3), "addr-unreach": ("icmp6-addr-unreachable", 1, 3),
    "icmp6-port-unreachable": ("icmp6-port-unreachable", 1, 4),
    "icmp6-policy-fail": ("icmp6-policy-fail", 1, 5), "policy-fail": ("icmp6-policy-fail", 1, 5),
    "icmp6-reject-route": ("icmp6-reject-route", 1, 6), "reject-route": ("icmp6-reject-route", 1, 6),
}


@target("REJECT")
def _t_reject(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    v6 = cc.family is Family.IPV6
    w = _val(t, "reject-with") or ("icmp6-port-unreachable" if v6 else "icmp-port-unreachable")
    if w == "port-unreach":
        w = "icmp6-port-unreachable" if v6 else "icmp-port-unreachable"
    if w not in REJECT_TYPES:
        raise BadOption(f"unknown --reject-with {w!r}")
    name, typ, code = REJECT_TYPES[w]

    def fn(env: Env) -> TargetResult:
        pkt = env.pkt
        note = ""
        if name == "tcp-reset":
            if pkt.proto != 6:
                note = "tcp-reset for a non-TCP packet sends nothing"
            elif "R" in pkt.tcp_flags:
                note = "no RST is sent in answer to a RST"
        elif pkt.proto in (1, 58) and pkt.icmp_type is not None and (
                (pkt.proto == 1 and pkt.icmp_type in (3, 4, 5, 11, 12))
                or (pkt.proto == 58 and pkt.icmp_type < 128)):
            note = "no ICMP error is sent in answer to an ICMP error"
        elif pkt.frag_offset:
            note = "no ICMP error is sent for a non-first fragment"
        elif pkt.dst.is_multicast or (pkt.family is Family.IPV4 and int(pkt.dst) == 0xFFFFFFFF):
            note = "no ICMP error is sent for a broadcast/multicast packet"
        spec = RejectSpec(name, typ, code, note)
        return TargetResult("reject", f"reject with {name}" + (f" ({note})" if note else ""),
                            reject=spec)
    return fn


# -- marks ---------------------------------------------------------------------------------------

def _xmark_from(t: Target, prefix: str = "") -> tuple[int, int, str]:
    """(value, mask, text) of MARK/CONNMARK's set/and/or/xor options as an xmark operation."""
    for name in ("set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"):
        v = _val(t, name)
        if v is None:
            continue
        if name == "set-xmark":
            val, mask = parse_mark(v)
            return val, mask, f"({prefix}mark & ~{mask:#x}) ^ {val:#x}"
        if name == "set-mark":
            val, mask = parse_mark(v)
            return val, mask | val, f"({prefix}mark & ~{mask:#x}) | {val:#x}"
        bits = parse_int(v)
        if name == "and-mark":
            return 0, (~bits) & 0xFFFFFFFF, f"{prefix}mark & {bits:#x}"
        if name == "or-mark":
            return bits, bits, f"{prefix}mark | {bits:#x}"
        return bits, 0, f"{prefix}mark ^ {bits:#x}"
    raise BadOption("no mark operation")


@target("MARK")
def _t_mark(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    val, mask, txt = _xmark_from(t)

    def fn(env: Env) -> TargetResult:
        new = ((env.pkt.mark & ~mask) ^ val) & 0xFFFFFFFF
        env.set_packet(replace(env.pkt, mark=new))
        return TargetResult("continue", f"mark = {txt} = {new:#x}")
    return fn


def _has_ct(env: Env) -> bool:
    ct = env.ct
    return (ct is not None and not env.notrack and ct.entry is not None
            and ct.state not in ("INVALID", "UNTRACKED"))


@target("CONNMARK")
def _t_connmark(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    if t.option("save-mark") is not None or t.option("restore-mark") is not None:
        save = t.option("save-mark") is not None
        m = _val(t, "mask")
        nfmask = parse_int(_val(t, "nfmask") or m or "0xffffffff")
        ctmask = parse_int(_val(t, "ctmask") or m or "0xffffffff")

        def fn_sr(env: Env) -> TargetResult:
            if not _has_ct(env):
                return TargetResult("continue", "no conntrack entry: CONNMARK does nothing")
            if save:
                new = ((env.ct_mark & ~ctmask) ^ (env.pkt.mark & nfmask)) & 0xFFFFFFFF
                env.ct_mark = new
                return TargetResult("continue", f"save-mark: ctmark = {new:#x}")
            newm = ((env.pkt.mark & ~nfmask) ^ (env.ct_mark & ctmask)) & 0xFFFFFFFF
            env.set_packet(replace(env.pkt, mark=newm))
            return TargetResult("continue", f"restore-mark: mark = {newm:#x} (ctmark {env.ct_mark:#x})")
        return fn_sr
    val, mask, txt = _xmark_from(t, "ct")

    def fn(env: Env) -> TargetResult:
        if not _has_ct(env):
            return TargetResult("continue", "no conntrack entry: CONNMARK does nothing")
        new = ((env.ct_mark & ~mask) ^ val) & 0xFFFFFFFF
        env.ct_mark = new
        return TargetResult("continue", f"ctmark = {txt} = {new:#x}")
    return fn


# -- header changes ------------------------------------------------------------------------------

@target("TOS")
def _t_tos(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    v = _val(t, "set-tos")
    if v is not None:
        val, mask = parse_tos(v)
    elif (v := _val(t, "and-tos")) is not None:
        val, mask = 0, (~parse_int(v)) & 0xFF
    elif (v := _val(t, "or-tos")) is not None:
        b = parse_int(v)
        val, mask = b, b
    elif (v := _val(t, "xor-tos")) is not None:
        val, mask = parse_int(v), 0
    else:
        raise BadOption("no TOS operation")

    def fn(env: Env) -> TargetResult:
        new = ((env.pkt.tos & ~mask) ^ val) & 0xFF
        env.set_packet(replace(env.pkt, tos=new))
        return TargetResult("continue", f"tos = {new:#04x}")
    return fn


@target("DSCP")
def _t_dscp(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    v = _val(t, "set-dscp")
    if v is not None:
        d = parse_int(v)
    else:
        c = _val(t, "set-dscp-class")
        if c is None or c.lower() not in DSCP_CLASSES:
            raise BadOption(f"unknown DSCP class {c!r}")
        d = DSCP_CLASSES[c.lower()]

    def fn(env: Env) -> TargetResult:
        new = (env.pkt.tos & 0x03) | (d << 2)
        env.set_packet(replace(env.pkt, tos=new))
        return TargetResult("continue", f"dscp = {d} (tos {new:#04x})")
    return fn


@target("TTL", "HL")
def _t_ttl(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    p = "ttl" if t.name == "TTL" else "hl"
    ops = [(op, _val(t, f"{p}-{op}")) for op in ("set", "dec", "inc")]
    op, v = next(((o, x) for o, x in ops if x is not None), ("", None))
    if v is None:
        raise BadOption(f"no {t.name} operation")
    n = parse_int(v)

    def fn(env: Env) -> TargetResult:
        old = env.pkt.ttl
        new = n if op == "set" else max(0, old - n) if op == "dec" else min(255, old + n)
        env.set_packet(replace(env.pkt, ttl=new))
        return TargetResult("continue", f"{p} {old} -> {new}")
    return fn


@target("TCPMSS")
def _t_tcpmss(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    v = _val(t, "set-mss")
    what = f"sets the MSS option to {v}" if v else "clamps the MSS option to the path MTU"

    def fn(env: Env) -> TargetResult:
        if env.pkt.proto != 6 or "S" not in env.pkt.tcp_flags:
            return TargetResult("continue", "TCPMSS only changes SYN packets: no change")
        return TargetResult("continue", f"TCPMSS {what} (TCP options are not modelled)")
    return fn


def _note_target(fmt: Callable[[Target], str], uncertain: bool = False) -> TargetCompiler:
    def comp(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
        return _const(TargetResult("continue", fmt(t), uncertain))
    return comp


TARGETS["LOG"] = _note_target(lambda t: "logged to the kernel log"
                              + (f" with prefix {_val(t, 'log-prefix')!r}" if _val(t, "log-prefix") else "")
                              + " (non-terminal)")
TARGETS["NFLOG"] = _note_target(lambda t: f"copied to nflog group {_val(t, 'nflog-group') or '0'}"
                                + (f" prefix {_val(t, 'nflog-prefix')!r}" if _val(t, "nflog-prefix") else "")
                                + " (non-terminal)")
TARGETS["ULOG"] = _note_target(lambda t: "logged through ULOG (non-terminal)")
TARGETS["CLASSIFY"] = _note_target(lambda t: f"sets the tc class to {_val(t, 'set-class')} "
                                   "(used by the egress qdisc)")
TARGETS["CHECKSUM"] = _note_target(lambda t: "fills in the checksum (no effect on the path)")
TARGETS["TRACE"] = _note_target(lambda t: "marks the packet for netfilter tracing")
TARGETS["AUDIT"] = _note_target(lambda t: f"writes an audit record ({_val(t, 'type') or 'accept'})")
TARGETS["SECMARK"] = _note_target(lambda t: "sets the security mark (not modelled)")
TARGETS["CONNSECMARK"] = _note_target(lambda t: "copies the security mark (not modelled)")
TARGETS["IDLETIMER"] = _note_target(lambda t: "resets an idle timer")
TARGETS["LED"] = _note_target(lambda t: "blinks an LED")
TARGETS["RATEEST"] = _note_target(lambda t: "updates a rate estimator")
TARGETS["ECN"] = _note_target(lambda t: "clears ECN bits (not modelled)")
TARGETS["TCPOPTSTRIP"] = _note_target(lambda t: "strips TCP options (not modelled)")
TARGETS["HMARK"] = _note_target(lambda t: "sets a hash-based mark (not modelled)", True)
TARGETS["TEE"] = _note_target(lambda t: f"clones the packet to {_val(t, 'gateway')} (the original goes on)")
TARGETS["SET"] = _note_target(lambda t: " ".join(
    f"{'adds to' if o.name == 'add-set' else 'deletes from'} ipset {o.values[0]!r}"
    for o in t.options if o.name in ("add-set", "del-set") and o.values)
    + " (the snapshot's sets are not changed)")


@target("NOTRACK")
def _t_notrack(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    def fn(env: Env) -> TargetResult:
        env.notrack = True
        return TargetResult("continue", "the packet will not be tracked (NOTRACK)")
    return fn


@target("CT")
def _t_ct(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    notrack = t.option("notrack") is not None
    zone = _val(t, "zone")
    helper = _val(t, "helper")
    zone_n = parse_int(zone) if zone is not None and zone.isdigit() else None

    def fn(env: Env) -> TargetResult:
        if notrack:
            env.notrack = True
            return TargetResult("continue", "the packet will not be tracked (CT --notrack)")
        notes: list[str] = []
        unc = False
        if zone is not None:
            if zone_n is None:
                notes.append(f"zone {zone} (derived from the packet's direction) is not modelled")
                unc = True
            else:
                env.ct_zone = zone_n
                notes.append(f"conntrack zone {zone_n}")
        if helper is not None:
            notes.append(f"assigns conntrack helper {helper!r} (helpers are not modelled)")
            unc = True
        for o in t.options:
            if o.name not in ("zone", "helper", "notrack"):
                notes.append(f"--{o.name} not modelled")
        return TargetResult("continue", "; ".join(notes) or "CT", unc)
    return fn


# -- queueing and stealing -------------------------------------------------------------------------

@target("NFQUEUE", "QUEUE")
def _t_nfqueue(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    num = _val(t, "queue-num") or _val(t, "queue-balance") or "0"
    bypass = t.option("queue-bypass") is not None
    note = (f"handed to user space on queue {num}; the program there decides (not modelled)"
            + ("; with --queue-bypass the packet is accepted when no program listens" if bypass else ""))
    return _const(TargetResult("queue", note, True))


@target("TPROXY")
def _t_tproxy(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    port = _val(t, "on-port")
    mark = _val(t, "tproxy-mark")
    mv, mm = parse_mark(mark) if mark else (0, 0)

    def fn(env: Env) -> TargetResult:
        if mark:
            env.set_packet(replace(env.pkt, mark=((env.pkt.mark & ~mm) ^ mv) & 0xFFFFFFFF))
        return TargetResult("accept", f"TPROXY to port {port}: assumed a transparent socket "
                                      "listens there (else the kernel drops the packet)", True)
    return fn


@target("SYNPROXY")
def _t_synproxy(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    return _const(TargetResult("stolen", "SYNPROXY answers the handshake itself (not modelled)", True))


@target("MIRROR", "CLUSTERIP", "SAME", "DNPT", "SNPT")
def _t_rare(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    return _const(TargetResult("continue", f"{t.name} is not modelled: treated as non-terminal", True))


# -- NAT -------------------------------------------------------------------------------------------

def _parse_nat_spec(s: str, family: Family) -> tuple[IPAddress | None, IPAddress | None, tuple[int, int] | None]:
    """``a[-b][:p[-q]]``, ``[v6][-[v6]]:p``, ``:p`` -> (first, last, ports)."""
    addr_part, port_part = s, None
    if s.startswith("["):
        end = s.find("]")
        if end < 0:
            raise BadOption(f"bad address {s!r}")
        addr_part = s[1:end]
        rest = s[end + 1:]
        if rest.startswith("-["):
            e2 = rest.find("]")
            addr_part += "-" + rest[2:e2]
            rest = rest[e2 + 1:]
        if rest.startswith(":"):
            port_part = rest[1:]
    elif (family is Family.IPV4 or s.count(":") == 1) and ":" in s:
        addr_part, port_part = s.split(":", 1)
    ports = None
    if port_part:
        port_part = port_part.split("/", 1)[0]
        lo, hi = parse_range(port_part.replace("-", ":"))
        ports = (lo, hi)
    if not addr_part:
        return None, None, ports
    a, _, b = addr_part.partition("-")
    try:
        first = ipaddress.ip_address(a)
        last = ipaddress.ip_address(b) if b else first
    except ValueError:
        raise BadOption(f"bad address {addr_part!r}") from None
    if first.version != family.version:
        raise BadOption(f"{first} is not an IPv{family.version} address")
    return first, last, ports


def _pick_port(orig: int | None, ports: tuple[int, int] | None, dst: bool) -> tuple[int | None, str, bool]:
    """(port, note, uncertain) as get_unique_tuple picks it (no clash with other flows assumed)."""
    if ports is None or orig is None:
        return orig, "", False
    lo, hi = ports
    if lo == hi:
        return lo, "", False
    if lo <= orig <= hi:
        return orig, f"port {orig} kept (it lies in {lo}-{hi})", False
    if dst:
        return lo, f"first port of {lo}-{hi} (the original is outside the range)", False
    return lo, f"the kernel picks a random port in {lo}-{hi}: {lo} shown", True


def _binding(env: Env, kind: str, ref: RuleRef, dst: bool, addr: IPAddress | None,
             last: IPAddress | None, ports: tuple[int, int] | None, extra: str = "",
             uncertain: bool = False) -> TargetResult:
    pkt = env.pkt
    notes: list[str] = [extra] if extra else []
    if addr is not None and last is not None and last != addr:
        notes.append(f"first address of {addr}-{last} shown; the kernel hashes the flow onto the range")
        uncertain = True
    has_ports = pkt.proto in (6, 17, 132, 33, 136)
    port: int | None = None
    if has_ports:
        port, pnote, punc = _pick_port(pkt.dport if dst else pkt.sport, ports, dst)
        if pnote:
            notes.append(pnote)
        uncertain = uncertain or punc
        if not dst and ports is None:
            notes.append(f"source port {pkt.sport} kept unless another flow already uses it")
    new = pkt
    if dst:
        if addr is not None:
            new = replace(new, dst=addr)
        if has_ports and port is not None:
            new = replace(new, dport=port)
    else:
        if addr is not None:
            new = replace(new, src=addr)
        if has_ports and port is not None:
            new = replace(new, sport=port)
    env.set_packet(new)
    where = new.dst if dst else new.src
    p = new.dport if dst else new.sport
    hp = (f"[{where}]:{p}" if where is not None and where.version == 6 else f"{where}:{p}") if (
        has_ports and p is not None) else str(where)
    text = f"{kind} to {hp}" + (f" ({'; '.join(notes)})" if notes else "")
    nat = NatBinding(kind, new.dst if dst else new.src, p if has_ports else None, ref, text, uncertain,
                     "dst" if dst else "src", ports if has_ports else None)
    return TargetResult("accept", text, uncertain, nat=nat)


def _wrong_hook(env: Env, kind: str, dst: bool) -> TargetResult | None:
    ok = (Hook.PREROUTING, Hook.OUTPUT) if dst else (Hook.POSTROUTING, Hook.INPUT)
    if env.hook not in ok:
        return TargetResult("continue", f"{kind} is not valid on the {env.hook} hook", True)
    return None


@target("DNAT", "SNAT")
def _t_dnat(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    dst = t.name == "DNAT"
    specs = [o.values[0] for o in t.options if o.name in ("to-destination", "to-source") and o.values]
    if not specs:
        raise BadOption(f"{t.name} without --to-{'destination' if dst else 'source'}")
    first, last, ports = _parse_nat_spec(specs[0], cc.family)
    extra = "several --to ranges: the first is shown" if len(specs) > 1 else ""
    if t.option("random") is not None or t.option("random-fully") is not None:
        extra = (extra + "; " if extra else "") + "--random: port chosen at random"

    def fn(env: Env) -> TargetResult:
        bad = _wrong_hook(env, t.name, dst)
        if bad is not None:
            return bad
        return _binding(env, t.name, ref, dst, first, last, ports, extra,
                        uncertain=len(specs) > 1 or "random" in extra)
    return fn


@target("NETMAP")
def _t_netmap(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    to = _val(t, "to")
    if to is None:
        raise BadOption("NETMAP without --to")
    net = ipaddress.ip_network(to, strict=False)
    mask = int(net.netmask)
    base = int(net.network_address)

    def fn(env: Env) -> TargetResult:
        dst = env.hook in (Hook.PREROUTING, Hook.OUTPUT)
        a = env.pkt.dst if dst else env.pkt.src
        if a is None:
            return TargetResult("continue", "source not chosen yet", True)
        new = ipaddress.ip_address((int(a) & ~mask) | base)
        return _binding(env, "NETMAP", ref, dst, new, new, None)
    return fn


def redirect_address(env: Env) -> tuple[IPAddress | None, str]:
    """The address REDIRECT (iptables or nft) sends the packet to (nf_nat_redirect):
    loopback for locally generated packets, else the first address of the arrival interface;
    (None, why) when that interface has no usable address (the kernel drops the packet)."""
    pkt = env.pkt
    if env.hook is Hook.OUTPUT:
        loop: IPAddress = (ipaddress.IPv4Address("127.0.0.1") if pkt.family is Family.IPV4
                           else ipaddress.IPv6Address("::1"))
        return loop, "locally generated: to the loopback address"
    cands = [a for a in env.snap.addresses_of(env.in_iface or "", pkt.family)
             if "tentative" not in a.flags]
    if not cands:
        return None, f"{env.in_iface} has no address"
    return cands[0].address, f"to the first address of {env.in_iface}"


def masquerade_source(env: Env) -> tuple[IPAddress | None, str, bool]:
    """The address MASQUERADE picks on the out interface: (address, how, uncertain).

    IPv4 follows ``inet_select_addr(out, nexthop, RT_SCOPE_UNIVERSE)``: the first primary
    address of the interface whose subnet holds the next hop, else its first primary address
    (route ``src`` hints are ignored). IPv6 uses the kernel's source address selection on the
    out interface (``journey.engine.routing.select_source``).
    """
    snap, pkt, oif = env.snap, env.pkt, env.out_iface
    if oif is None:
        return None, "no out interface", True
    addrs = [a for a in snap.addresses_of(oif, pkt.family) if "secondary" not in a.flags
             and "tentative" not in a.flags]
    if pkt.family is Family.IPV6:
        try:
            from journey.engine import routing

            src = routing.select_source(snap, pkt.family, pkt.dst, oif)
        except (ImportError, AttributeError):
            src = None
        if src is not None:
            return src, f"source address selection on {oif}", False
        glob = [a for a in addrs if a.scope == "global"]
        if glob:
            return glob[0].address, f"first global address of {oif} (source selection not available)", True
        return None, f"{oif} has no usable address", False
    nexthop: IPAddress = pkt.dst
    best = -1
    for r in snap.routes:
        if (r.table == 254 and r.dev == oif and r.gateway is not None and r.family is pkt.family
                and pkt.dst in r.dst and r.dst.prefixlen > best):
            best = r.dst.prefixlen
            nexthop = r.gateway
    for a in addrs:
        if nexthop in a.network and a.scope in ("global", "universe"):
            return a.address, f"address of {oif} in the next hop's subnet ({nexthop})", False
    for a in addrs:
        if a.scope in ("global", "universe", "site", "link"):
            return a.address, f"first address of {oif}", False
    return None, f"{oif} has no IPv4 address", False


@target("MASQUERADE")
def _t_masquerade(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    p = _val(t, "to-ports")
    ports = parse_range(p.replace("-", ":")) if p else None
    rnd = t.option("random") is not None or t.option("random-fully") is not None

    def fn(env: Env) -> TargetResult:
        bad = _wrong_hook(env, "MASQUERADE", False)
        if bad is not None:
            return bad
        src, how, unc = masquerade_source(env)
        if src is None:
            return TargetResult("drop", f"MASQUERADE: {how}, the kernel drops the packet")
        return _binding(env, "MASQUERADE", ref, False, src, src, ports,
                        how + ("; --random: port chosen at random" if rnd else ""), unc or rnd)
    return fn


@target("REDIRECT")
def _t_redirect(t: Target, cc: CompileCtx, ref: RuleRef) -> TargetFn:
    p = _val(t, "to-ports")
    ports = parse_range(p.replace("-", ":")) if p else None

    def fn(env: Env) -> TargetResult:
        bad = _wrong_hook(env, "REDIRECT", True)
        if bad is not None:
            return bad
        addr, how = redirect_address(env)
        if addr is None:
            return TargetResult("drop", f"REDIRECT: {how}, the kernel drops the packet")
        return _binding(env, "REDIRECT", ref, True, addr, addr, ports, how)
    return fn
