"""Pure tests of the netfilter pipeline, the rule walker, every match module and every target."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from journey.engine.conntrack import CtState, CtView, ct_commit, ct_lookup
from journey.engine.netfilter import Hook, HookContext, HookOutcome, build_pipeline, run_hook
from journey.engine.netfilter.pipeline import ORDER_NOTE
from journey.model.family import Family
from journey.model.journey import StageResult
from journey.model.packet import Packet
from journey.model.ruleset import Backend
from journey.model.snapshot import (
    Address,
    ConntrackEntry,
    HostSnapshot,
    Interface,
    IpSet,
    Provenance,
    Route,
    RouteType,
)
from journey.snapshot.iptables_save import parse_iptables_save

PROV = Provenance(hostname="t", kernel="6.18", time="2026-11-24T00:00:00Z", journey_version="0",
                  uid=0, netns=None, origin="live")

IFACES = (
    Interface(1, "lo", flags=("UP", "LOOPBACK")),
    Interface(2, "eth0", kind="veth", mac="02:00:00:00:00:01", flags=("UP",)),
    Interface(3, "eth1", kind="veth", mac="02:00:00:00:01:01", flags=("UP",)),
    Interface(4, "br0", kind="bridge", flags=("UP",)),
)
ADDRS = (
    Address(1, "lo", ipaddress.ip_address("127.0.0.1"), 8, scope="host"),
    Address(2, "eth0", ipaddress.ip_address("192.0.2.1"), 24),
    Address(2, "eth0", ipaddress.ip_address("2001:db8::1"), 64),
    Address(3, "eth1", ipaddress.ip_address("198.51.100.1"), 24),
    Address(3, "eth1", ipaddress.ip_address("2001:db8:1::1"), 64),
)


def _r(dst: str, table: int = 254, typ: RouteType = RouteType.UNICAST, dev: str | None = None,
       gw: str | None = None) -> Route:
    net = ipaddress.ip_network(dst)
    return Route(family=Family.of(net), table=table, dst=net, type=typ, dev=dev,
                 gateway=ipaddress.ip_address(gw) if gw else None)


ROUTES = (
    _r("127.0.0.0/8", 255, RouteType.LOCAL, "lo"),
    _r("192.0.2.1/32", 255, RouteType.LOCAL, "eth0"),
    _r("192.0.2.255/32", 255, RouteType.BROADCAST, "eth0"),
    _r("198.51.100.1/32", 255, RouteType.LOCAL, "eth1"),
    _r("192.0.2.0/24", dev="eth0"),
    _r("198.51.100.0/24", dev="eth1"),
    _r("0.0.0.0/0", dev="eth1", gw="198.51.100.254"),
    _r("203.0.113.0/24", typ=RouteType.BLACKHOLE),
    _r("2001:db8::1/128", 255, RouteType.LOCAL, "eth0"),
    _r("2001:db8::/64", dev="eth0"),
    _r("2001:db8:1::/64", dev="eth1"),
)


def make_snap(v4: str | None = None, v6: str | None = None, legacy4: str | None = None,
              **kw: Any) -> HostSnapshot:
    dumps = []
    if v4 is not None:
        dumps.append(parse_iptables_save(v4, source="iptables-save", family=Family.IPV4,
                                         backend=Backend.NFT))
    if v6 is not None:
        dumps.append(parse_iptables_save(v6, source="ip6tables-save", family=Family.IPV6,
                                         backend=Backend.NFT))
    if legacy4 is not None:
        dumps.append(parse_iptables_save(legacy4, source="iptables-legacy-save",
                                         family=Family.IPV4, backend=Backend.LEGACY))
    base: dict[str, object] = {"interfaces": IFACES, "addresses": ADDRS, "routes": ROUTES}
    base.update(kw)
    return HostSnapshot(provenance=PROV, iptables=tuple(dumps), **base)  # type: ignore[arg-type]


def table(name: str, chains: dict[str, str], rules: Sequence[str]) -> str:
    """An iptables-save table: chains {name: policy or '-'} and rule lines."""
    lines = [f"*{name}"]
    lines += [f":{c} {p} [0:0]" for c, p in chains.items()]
    lines += list(rules)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def filt(rules: Sequence[str], chains: dict[str, str] | None = None, policy: str = "ACCEPT") -> str:
    ch = {"INPUT": policy, "FORWARD": policy, "OUTPUT": policy}
    ch.update(chains or {})
    return table("filter", ch, rules)


def P(src: str = "192.0.2.7", dst: str = "192.0.2.1", proto: int = 6, sport: int | None = 40000,
      dport: int | None = 80, flags: str = "S", **kw: object) -> Packet:
    fam = Family.of(ipaddress.ip_address(dst))
    if proto not in (6, 17, 132):
        sport = dport = None
    if proto != 6:
        flags = ""
    return Packet(family=fam, proto=proto, src=ipaddress.ip_address(src) if src else None,
                  dst=ipaddress.ip_address(dst), sport=sport, dport=dport, tcp_flags=flags,
                  **kw)  # type: ignore[arg-type]


def hook(snap: HostSnapshot, pkt: Packet, h: Hook = Hook.INPUT, iif: str | None = "eth0",
         oif: str | None = None, ct: CtView | None = None, local: bool = False,
         flows: tuple[ConntrackEntry, ...] = ()) -> HookOutcome:
    if ct is None:
        ct = ct_lookup(snap, flows, pkt)
    return run_hook(snap, build_pipeline(snap), pkt, HookContext(h, iif, oif, ct, local))


def hit_idx(out: HookOutcome) -> list[tuple[str, int]]:
    return [(r.chain, r.index) for r in out.rules_hit]


def one(rule: str, pkt: Packet, h: Hook = Hook.INPUT, **kw: object) -> HookOutcome:
    """A single rule in filter INPUT (or the chain of ``h``) with target ACCEPT, policy DROP."""
    chain = h.chain_name
    extra: dict[str, Any] = {k: v for k, v in kw.items() if k in ("ipsets", "sysctls")}
    snap = make_snap(filt([f"-A {chain} {rule} -j ACCEPT"], policy="DROP"), **extra)
    rest = {k: v for k, v in kw.items() if k not in ("ipsets", "sysctls")}
    return hook(snap, pkt, h, **rest)  # type: ignore[arg-type]


def matches(rule: str, pkt: Packet, h: Hook = Hook.INPUT, **kw: object) -> bool:
    out = one(rule, pkt, h, **kw)
    return out.verdict == "accept"


# -- pipeline ---------------------------------------------------------------------------------------

def test_pipeline_orders_base_chains_by_priority() -> None:
    text = (table("raw", {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}, [])
            + table("mangle", {h: "ACCEPT" for h in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")}, [])
            + table("nat", {h: "ACCEPT" for h in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}, [])
            + filt([])
            + table("security", {"INPUT": "ACCEPT", "FORWARD": "ACCEPT", "OUTPUT": "ACCEPT"}, []))
    snap = make_snap(text)
    pipe = build_pipeline(snap)
    assert build_pipeline(snap) is pipe  # cached per snapshot
    out = [(c.table, c.priority, c.kind) for c in pipe.chains(Hook.OUTPUT, Family.IPV4)]
    assert out == [("raw", -300, "filter"), ("mangle", -150, "route"), ("nat", -100, "nat"),
                   ("filter", 0, "filter"), ("security", 50, "filter")]
    post = [(c.table, c.priority) for c in pipe.chains(Hook.POSTROUTING, Family.IPV4)]
    assert post == [("mangle", -150), ("nat", 100)]
    inp = [(c.table, c.priority) for c in pipe.chains(Hook.INPUT, Family.IPV4)]
    assert inp == [("mangle", -150), ("filter", 0), ("security", 50), ("nat", 100)]
    assert pipe.chains(Hook.INPUT, Family.IPV6) == ()
    assert pipe.chains(Hook.PREROUTING, Family.IPV4)[0].label == "PREROUTING · raw (iptables-nft)"


def test_legacy_and_nft_same_priority_documented_order() -> None:
    snap = make_snap(filt(["-A INPUT -p tcp -j ACCEPT"]), legacy4=filt(["-A INPUT -p tcp -j DROP"]))
    pipe = build_pipeline(snap)
    chains = pipe.chains(Hook.INPUT, Family.IPV4)
    assert [c.backend for c in chains] == ["nft", "legacy"]
    out = hook(snap, P())
    # nft ACCEPT ends only its base chain; legacy then drops
    assert out.verdict == "drop"
    assert [s.name for s in out.stages] == ["INPUT · filter (iptables-nft)",
                                           "INPUT · filter (iptables-legacy)"]
    assert ORDER_NOTE in out.stages[0].notes
    assert out.rules_hit[1].backend == "legacy"


# -- chain semantics --------------------------------------------------------------------------------

def test_jump_return_goto_and_policy() -> None:
    snap = make_snap(filt([
        "-A INPUT -p tcp -j A",
        "-A INPUT -p tcp -j LOG",
        "-A INPUT -p tcp -g B",
        "-A INPUT -j ACCEPT",
        "-A A -p udp -j DROP",
        "-A A -p tcp -j RETURN",
        "-A A -j DROP",
        "-A B -p tcp -j C",
        "-A B -j DROP",
        "-A C -p udp -j ACCEPT",
    ], chains={"A": "-", "B": "-", "C": "-"}, policy="DROP"))
    out = hook(snap, P())
    # A returns, LOG, goto B, C falls off its end (return to B), B drops
    assert hit_idx(out) == [("INPUT", 1), ("A", 2), ("INPUT", 2), ("INPUT", 3), ("B", 1), ("B", 2)]
    assert out.verdict == "drop"
    assert out.decided_by is not None and out.decided_by.chain == "B"
    evals = out.stages[0].rules
    assert evals[1].chain == "A" and not evals[1].matched and evals[1].failed_condition == "-p udp"
    assert evals[3].note is not None and "log" in evals[3].note


def test_goto_end_returns_to_callers_caller() -> None:
    snap = make_snap(filt([
        "-A INPUT -j A",
        "-A INPUT -j ACCEPT",
        "-A A -g B",
        "-A A -j DROP",
        "-A B -p udp -j DROP",
    ], chains={"A": "-", "B": "-"}, policy="DROP"))
    out = hook(snap, P())
    assert out.verdict == "accept"
    assert hit_idx(out) == [("INPUT", 1), ("A", 1), ("INPUT", 2)]


def test_goto_from_base_chain_falls_to_policy() -> None:
    snap = make_snap(filt(["-A INPUT -g B", "-A INPUT -j ACCEPT", "-A B -p udp -j ACCEPT"],
                          chains={"B": "-"}, policy="DROP"))
    out = hook(snap, P())
    assert out.verdict == "drop" and out.decided_by is None
    assert "policy DROP" in out.stages[0].decision
    assert out.stages[0].config[0].text == ":INPUT DROP"


def test_return_in_base_chain_applies_policy() -> None:
    snap = make_snap(filt(["-A INPUT -j RETURN", "-A INPUT -j ACCEPT"], policy="DROP"))
    assert hook(snap, P()).verdict == "drop"


def test_accept_ends_only_its_base_chain_drop_ends_hook() -> None:
    text = (table("mangle", {"INPUT": "ACCEPT"}, ["-A INPUT -j ACCEPT", "-A INPUT -j DROP"])
            + filt(["-A INPUT -j DROP"])
            + table("security", {"INPUT": "ACCEPT"}, []))
    out = hook(make_snap(text), P())
    assert out.verdict == "drop"
    assert [s.result for s in out.stages] == [StageResult.PASSED, StageResult.DROPPED]
    assert len(out.stages) == 2  # security never runs


def test_rule_without_target_counts_and_counters_shown() -> None:
    text = "*filter\n:INPUT ACCEPT [5:300]\n[7:420] -A INPUT -p tcp\n[1:60] -A INPUT -p udp -j DROP\nCOMMIT\n"
    out = hook(make_snap(text), P())
    ev = out.stages[0].rules
    assert ev[0].matched and ev[0].counters == "[7:420]" and ev[0].target is None
    assert ev[1].failed_condition == "-p udp" and ev[1].counters == "[1:60]"
    assert ev[0].line == 3
    assert out.verdict == "accept"


def test_builtins_checked_before_modules() -> None:
    snap = make_snap(filt(["-A INPUT -m tcp --dport 22 -p tcp -s 10.0.0.0/8 -j DROP"]))
    ev = hook(snap, P()).stages[0].rules[0]
    assert ev.failed_condition == "-s 10.0.0.0/8"


# -- built-in parameters ----------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "pkt", "ok"), [
    ("-s 192.0.2.0/24", P(), True),
    ("-s 192.0.2.0/255.255.255.0", P(), True),
    ("! -s 192.0.2.0/24", P(), False),
    ("-s 192.0.2.8", P(), False),
    ("-d 192.0.2.1/32", P(), True),
    ("-s 10.0.0.1,192.0.2.7", P(), True),
    ("-i eth0", P(), True),
    ("-i eth+", P(), True),
    ("-i eth1", P(), False),
    ("! -i eth1", P(), True),
    ("-i +", P(), True),
    ("-p tcp", P(), True),
    ("-p 6", P(), True),
    ("-p all", P(proto=17), True),
    ("! -p tcp", P(), False),
    ("-p udp", P(), False),
    ("-f", P(frag_offset=1480), True),
    ("-f", P(), False),
    ("! -f", P(), True),
])
def test_builtin_matches(rule: str, pkt: Packet, ok: bool) -> None:
    assert matches(rule, pkt) is ok


def test_out_interface_and_v6_addresses() -> None:
    assert matches("-o eth1", P(dst="198.51.100.9"), Hook.FORWARD, iif="eth0", oif="eth1")
    assert not matches("-o eth0", P(dst="198.51.100.9"), Hook.FORWARD, iif="eth0", oif="eth1")
    v6 = table("filter", {"INPUT": "DROP"}, ["-A INPUT -s 2001:db8::/64 -p ipv6-icmp -j ACCEPT"])
    snap = make_snap(v6=v6)
    pkt = P(src="2001:db8::7", dst="2001:db8::1", proto=58, icmp_type=128, icmp_code=0, icmp_id=1)
    assert hook(snap, pkt).verdict == "accept"
    assert hook(snap, replace(pkt, src=ipaddress.ip_address("2001:db8:5::1"))).verdict == "drop"


# -- tcp / udp / multiport / icmp ---------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "pkt", "ok"), [
    ("-p tcp -m tcp --dport 80", P(), True),
    ("-p tcp --dport 80:90", P(dport=85), True),
    ("-p tcp -m tcp --dport :79", P(), False),
    ("-p tcp -m tcp --dport 81:", P(), False),
    ("-p tcp -m tcp ! --dport 22", P(), True),
    ("-p tcp -m tcp --sport 40000", P(), True),
    ("-p tcp -m tcp --dport http", P(), True),
    ("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", P(), True),
    ("-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN", P(flags="SA"), False),
    ("-p tcp -m tcp --syn", P(flags="S"), True),
    ("-p tcp -m tcp ! --syn", P(flags="A"), True),
    ("-p tcp -m tcp --tcp-flags ALL NONE", P(flags=""), True),
    ("-p tcp -m tcp --tcp-flags SYN,FIN SYN,FIN", P(flags="SF"), True),
    ("-p udp -m udp --dport 53", P(proto=17, dport=53), True),
    ("-p udp -m udp --dport 53", P(proto=17, dport=54), False),
    ("-m udp --dport 80", P(), False),  # udp match on a TCP packet
    ("-p tcp -m tcp --dport 80", P(frag_offset=8), False),
    ("-p tcp -m multiport --dports 22,80:90,443", P(dport=85), True),
    ("-p tcp -m multiport --dports 22,443", P(), False),
    ("-p tcp -m multiport ! --dports 22,443", P(), True),
    ("-p tcp -m multiport --sports 40000", P(), True),
    ("-p tcp -m multiport --ports 40000", P(), True),
    ("-p sctp -m sctp --dport 80", P(proto=132), True),
    ("-p icmp -m icmp --icmp-type 8", P(proto=1, icmp_type=8, icmp_code=0), True),
    ("-p icmp -m icmp --icmp-type echo-request", P(proto=1, icmp_type=8, icmp_code=0), True),
    ("-p icmp -m icmp --icmp-type echo-request", P(proto=1, icmp_type=0, icmp_code=0), False),
    ("-p icmp -m icmp --icmp-type 3/3", P(proto=1, icmp_type=3, icmp_code=3), True),
    ("-p icmp -m icmp --icmp-type port-unreachable", P(proto=1, icmp_type=3, icmp_code=1), False),
    ("-p icmp -m icmp --icmp-type destination-unreachable", P(proto=1, icmp_type=3, icmp_code=1), True),
    ("-p icmp -m icmp --icmp-type any", P(proto=1, icmp_type=11, icmp_code=0), True),
    ("-p icmp -m icmp ! --icmp-type 8", P(proto=1, icmp_type=0, icmp_code=0), True),
])
def test_l4_matches(rule: str, pkt: Packet, ok: bool) -> None:
    assert matches(rule, pkt) is ok


def test_icmpv6_names() -> None:
    v6 = table("filter", {"INPUT": "DROP"}, [
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1/4 -j ACCEPT",
    ])
    snap = make_snap(v6=v6)
    ns = P(src="2001:db8::7", dst="2001:db8::1", proto=58, icmp_type=135, icmp_code=0)
    assert hook(snap, ns).verdict == "accept"
    assert hook(snap, replace(ns, icmp_type=1, icmp_code=4)).verdict == "accept"
    assert hook(snap, replace(ns, icmp_type=1, icmp_code=3)).verdict == "drop"


def test_tcp_option_is_uncertain() -> None:
    out = one("-p tcp -m tcp --tcp-option 2", P())
    ev = out.stages[0].rules[0]
    assert ev.matched and ev.uncertain and out.uncertain
    assert out.stages[0].result is StageResult.UNCERTAIN


# -- conntrack / state ------------------------------------------------------------------------------

def test_ctstate_new_established_invalid() -> None:
    snap = make_snap(filt([
        "-A INPUT -m conntrack --ctstate INVALID -j DROP",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -m state --state NEW -j ACCEPT",
    ], policy="DROP"))
    syn = P()
    out = hook(snap, syn)
    assert out.verdict == "accept" and hit_idx(out) == [("INPUT", 3)]
    assert hook(snap, P(flags="SF")).verdict == "drop"
    assert hit_idx(hook(snap, P(flags="SF"))) == [("INPUT", 1)]
    # mid-stream ACK is NEW (tcp_loose), not INVALID
    assert hit_idx(hook(snap, P(flags="A"))) == [("INPUT", 3)]
    # after the flow is confirmed, the reply is ESTABLISHED
    view = ct_lookup(snap, (), syn)
    flows = ct_commit(view, syn, syn, None, ())
    reply = P(src="192.0.2.1", dst="192.0.2.7", sport=80, dport=40000, flags="SA")
    out = hook(snap, reply, Hook.INPUT, flows=flows)
    assert hit_idx(out) == [("INPUT", 2)]


def test_conntrack_options() -> None:
    snap = make_snap(filt([
        "-A FORWARD -m conntrack --ctstate DNAT --ctorigdst 192.0.2.1 --ctorigdstport 80 -j ACCEPT",
    ], policy="DROP") + table("nat", {"PREROUTING": "ACCEPT"}, [
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.51.100.9:8080"]))
    pkt = P()
    ct = ct_lookup(snap, (), pkt)
    pipe = build_pipeline(snap)
    pre = run_hook(snap, pipe, pkt, HookContext(Hook.PREROUTING, "eth0", None, ct))
    assert pre.packet.dst == ipaddress.ip_address("198.51.100.9") and pre.packet.dport == 8080
    assert pre.ct is not None and "DST_NAT" in pre.ct.status
    fwd = run_hook(snap, pipe, pre.packet, HookContext(Hook.FORWARD, "eth0", "eth1", pre.ct))
    assert fwd.verdict == "accept"
    ev = fwd.stages[0].rules[0]
    assert ev.matched


@pytest.mark.parametrize(("rule", "ok"), [
    ("-m conntrack --ctproto tcp", True),
    ("-m conntrack --ctproto udp", False),
    ("-m conntrack --ctdir ORIGINAL", True),
    ("-m conntrack --ctdir REPLY", False),
    ("-m conntrack --ctorigsrc 192.0.2.0/24", True),
    ("-m conntrack ! --ctorigsrc 192.0.2.0/24", False),
    ("-m conntrack --ctreplsrc 192.0.2.1", True),
    ("-m conntrack --ctorigsrcport 40000", True),
    ("-m conntrack --ctstatus CONFIRMED", False),
    ("-m conntrack --ctstate NEW --ctstatus NONE", True),
    ("-m conntrack --ctstate UNTRACKED", False),
])
def test_conntrack_option_values(rule: str, ok: bool) -> None:
    assert matches(rule, P()) is ok


def test_conntrack_options_without_entry_never_match() -> None:
    # INVALID packet: no entry, so even a negated --ctorigsrc does not match (xt_conntrack)
    assert not matches("-m conntrack ! --ctorigsrc 10.0.0.0/8", P(flags="SF"))
    assert matches("-m conntrack --ctstate INVALID", P(flags="SF"))


def test_ctexpire_is_uncertain() -> None:
    out = one("-m conntrack --ctexpire 10:100", P())
    assert out.uncertain and out.stages[0].rules[0].note


# -- mark / connmark / comment ------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "mark", "ok"), [
    ("-m mark --mark 0x10", 0x10, True),
    ("-m mark --mark 0x10/0xf0", 0x1F, True),
    ("-m mark --mark 0x10/0xf0", 0x2F, False),
    ("-m mark ! --mark 0x10", 0x11, True),
    ("-m comment --comment \"hello world\"", 0, True),
])
def test_mark(rule: str, mark: int, ok: bool) -> None:
    assert matches(rule, P(mark=mark)) is ok


def test_connmark_match_and_targets() -> None:
    text = table("mangle", {"PREROUTING": "ACCEPT"}, [
        "-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        "-A PREROUTING -m mark --mark 0x0 -j MARK --set-xmark 0x5/0xffffffff",
        "-A PREROUTING -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff",
        "-A PREROUTING -m connmark --mark 0x5 -j CONNMARK --set-xmark 0x100/0x100",
        "-A PREROUTING -m connmark --mark 0x105 -j MARK --or-mark 0x1000",
    ])
    snap = make_snap(text)
    out = hook(snap, P(), Hook.PREROUTING)
    assert out.packet.mark == 0x1005
    assert out.ct_mark == 0x105
    assert out.ct is not None and out.ct.mark == 0x105
    assert [(c.field, c.old, c.new) for c in out.stages[0].changes] == [
        ("mark", "0x0", "0x1005"), ("ctmark", "0x0", "0x105")]
    # the connmark persists in the committed entry and is restored for the next packet
    pkt = P()
    flows = ct_commit(out.ct, pkt, out.packet, None, ())
    assert flows[0].mark == 0x105
    nxt = hook(snap, P(), Hook.PREROUTING, flows=flows)  # retransmitted SYN: same flow
    assert nxt.packet.mark == 0x1105


def test_connmark_without_conntrack_does_nothing() -> None:
    text = table("mangle", {"PREROUTING": "ACCEPT"}, ["-A PREROUTING -j CONNMARK --set-xmark 0x1/0xffffffff"])
    out = hook(make_snap(text), P(flags="SF"), Hook.PREROUTING)
    assert out.ct_mark is None
    assert "no conntrack entry" in (out.stages[0].rules[0].note or "")


@pytest.mark.parametrize(("target", "start", "want"), [
    ("MARK --set-xmark 0x10/0xffffffff", 0xFF, 0x10),
    ("MARK --set-xmark 0x1/0x3", 0xFF, 0xFD),
    ("MARK --set-mark 0x10/0xf0", 0xFF, 0x1F),
    ("MARK --set-mark 0x10", 0xFF, 0x10),
    ("MARK --and-mark 0xf", 0xFF, 0x0F),
    ("MARK --or-mark 0x100", 0xFF, 0x1FF),
    ("MARK --xor-mark 0x1", 0xFF, 0xFE),
])
def test_mark_target(target: str, start: int, want: int) -> None:
    snap = make_snap(table("mangle", {"INPUT": "ACCEPT"}, [f"-A INPUT -j {target}"]))
    assert hook(snap, P(mark=start)).packet.mark == want


# -- addrtype / iprange / mac / pkttype / length / ttl / tos / owner --------------------------------------

@pytest.mark.parametrize(("rule", "pkt", "ok"), [
    ("-m addrtype --dst-type LOCAL", P(), True),
    ("-m addrtype --dst-type LOCAL", P(dst="192.0.2.9"), False),
    ("-m addrtype --dst-type UNICAST", P(dst="192.0.2.9"), True),
    ("-m addrtype --dst-type BROADCAST", P(dst="192.0.2.255"), True),
    ("-m addrtype --dst-type BROADCAST", P(dst="255.255.255.255"), True),
    ("-m addrtype --dst-type MULTICAST", P(dst="224.0.0.5", proto=17), True),
    ("-m addrtype --dst-type BLACKHOLE", P(dst="203.0.113.5"), True),
    ("-m addrtype --src-type LOCAL", P(), False),
    ("-m addrtype ! --dst-type LOCAL", P(), False),
    ("-m addrtype --dst-type LOCAL,BROADCAST", P(dst="127.0.0.5"), True),
    ("-m addrtype --dst-type LOCAL --limit-iface-in", P(dst="198.51.100.1"), False),
    ("-m addrtype --dst-type LOCAL --limit-iface-in", P(dst="192.0.2.1"), True),
    ("-m iprange --src-range 192.0.2.5-192.0.2.9", P(), True),
    ("-m iprange --dst-range 192.0.2.5-192.0.2.9", P(), False),
    ("-m iprange ! --dst-range 192.0.2.5-192.0.2.9", P(), True),
    ("-m mac --mac-source 02:AA:00:00:00:07", P(src_mac="02:aa:00:00:00:07"), True),
    ("-m mac --mac-source 02:aa:00:00:00:07", P(src_mac="02:aa:00:00:00:08"), False),
    ("-m pkttype --pkt-type unicast", P(dst_mac="02:00:00:00:00:01"), True),
    ("-m pkttype --pkt-type broadcast", P(dst_mac="ff:ff:ff:ff:ff:ff"), True),
    ("-m pkttype --pkt-type multicast", P(dst_mac="01:00:5e:00:00:01"), True),
    ("-m length --length 40", P(), True),
    ("-m length --length 41:1500", P(), False),
    ("-m length --length 100:", P(length=1500), True),
    ("-m ttl --ttl-eq 64", P(), True),
    ("-m ttl --ttl-lt 10", P(ttl=9), True),
    ("-m ttl --ttl-gt 64", P(), False),
    ("-m tos --tos 0x10/0x3f", P(tos=0x10), True),
    ("-m tos --tos Minimize-Delay", P(tos=0x12), False),
    ("-m dscp --dscp 0x2e", P(tos=0xB8), True),
    ("-m dscp --dscp-class EF", P(tos=0xB8), True),
    ("-m dscp --dscp-class AF11", P(tos=0xB8), False),
    ("-m ecn --ecn-tcp-cwr", P(flags="SC"), True),
])
def test_misc_matches(rule: str, pkt: Packet, ok: bool) -> None:
    assert matches(rule, pkt) is ok


def test_mac_unknown_is_uncertain() -> None:
    out = one("-m mac --mac-source 02:aa:00:00:00:07", P())
    assert out.verdict == "accept" and out.uncertain


def test_hl_match_v6() -> None:
    snap = make_snap(v6=table("filter", {"INPUT": "DROP"}, ["-A INPUT -m hl --hl-eq 255 -j ACCEPT"]))
    pkt = P(src="2001:db8::7", dst="2001:db8::1", ttl=255)
    assert hook(snap, pkt).verdict == "accept"
    assert hook(snap, replace(pkt, ttl=64)).verdict == "drop"


def test_owner_only_for_local_output() -> None:
    rule = "-m owner --uid-owner 1000"
    local = P(src="192.0.2.1", dst="198.51.100.9", local=True, uid=1000)
    assert matches(rule, local, Hook.OUTPUT, iif=None, oif="eth1", local=True)
    assert not matches(rule, replace(local, uid=0), Hook.OUTPUT, iif=None, oif="eth1", local=True)
    assert matches("-m owner --uid-owner 500-1500", local, Hook.OUTPUT, iif=None, oif="eth1", local=True)
    assert matches("-m owner --socket-exists", local, Hook.OUTPUT, iif=None, oif="eth1", local=True)
    # forwarded packet: no socket -> only a negated option matches
    fwd = P(dst="198.51.100.9")
    assert not matches(rule, fwd, Hook.FORWARD, iif="eth0", oif="eth1")
    assert matches("-m owner ! --uid-owner 1000", fwd, Hook.FORWARD, iif="eth0", oif="eth1")
    out = one("-m owner --uid-owner 1000", replace(local, uid=None), Hook.OUTPUT, iif=None,
              oif="eth1", local=True)
    assert out.uncertain and out.verdict == "accept"
    out = one("-m owner --gid-owner 100", local, Hook.OUTPUT, iif=None, oif="eth1", local=True)
    assert out.uncertain


# -- ipset / physdev -------------------------------------------------------------------------------

SETS = (
    IpSet("ips", "hash:ip", Family.IPV4, ("192.0.2.7", "192.0.2.8")),
    IpSet("nets", "hash:net", Family.IPV4, ("192.0.2.0/24", "192.0.2.0/28 nomatch")),
    IpSet("svc", "hash:ip,port", Family.IPV4, ("192.0.2.1,tcp:80", "192.0.2.1,udp:53")),
    IpSet("netport", "hash:net,port", Family.IPV4, ("192.0.2.0/24,tcp:80-90",)),
    IpSet("ipportip", "hash:ip,port,ip", Family.IPV4, ("192.0.2.1,tcp:80,192.0.2.7",)),
    IpSet("ports", "bitmap:port", None, ("80", "443")),
    IpSet("all", "list:set", None, ("ips", "svc")),
)


@pytest.mark.parametrize(("rule", "pkt", "ok"), [
    ("-m set --match-set ips src", P(), True),
    ("-m set --match-set ips dst", P(), False),
    ("-m set ! --match-set ips dst", P(), True),
    ("-m set --match-set nets src", P(src="192.0.2.100"), True),
    ("-m set --match-set nets src", P(src="192.0.2.7"), False),  # nomatch /28 wins
    ("-m set --match-set svc dst,dst", P(), True),
    ("-m set --match-set svc dst,dst", P(dport=81), False),
    ("-m set --match-set svc dst,dst", P(proto=17, dport=80), False),
    ("-m set --match-set netport src,dst", P(dport=85), True),
    ("-m set --match-set ipportip dst,dst,src", P(), True),
    ("-m set --match-set ports dst", P(dport=443), True),
    ("-m set --match-set all src", P(), True),
])
def test_ipset_match(rule: str, pkt: Packet, ok: bool) -> None:
    assert matches(rule, pkt, ipsets=SETS) is ok


def test_missing_ipset_is_uncertain() -> None:
    out = one("-m set --match-set nosuch src", P(), ipsets=SETS)
    assert out.uncertain and "not in the snapshot" in (out.stages[0].rules[0].note or "")


def test_physdev() -> None:
    assert not matches("-m physdev --physdev-is-bridged", P())
    assert matches("-m physdev ! --physdev-is-bridged", P())
    out = one("-m physdev --physdev-in veth1", P(), iif="br0")
    assert out.uncertain


# -- stateful / uncertain matches -------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "ok", "word"), [
    ("-m limit --limit 5/sec --limit-burst 10", True, "not exceeded"),
    ("-m hashlimit --hashlimit-upto 5/sec --hashlimit-name x", True, "not exceeded"),
    ("-m hashlimit --hashlimit-above 5/sec --hashlimit-name x", False, "not exceeded"),
    ("-m quota --quota 1000", True, "quota"),
    ("-m connlimit --connlimit-above 10", False, "connection count"),
    ("-m connlimit --connlimit-upto 10", True, "connection count"),
    ("-m recent --set --name ssh", True, "adds"),
    ("-m recent --rcheck --seconds 60 --name ssh", False, "not in it"),
    ("-m statistic --mode random --probability 0.25", True, "25.0%"),
    ("-m statistic --mode nth --every 3 --packet 0", True, "counter"),
    ("-m string --string foo --algo bm", True, "not modelled"),
    ("-m u32 --u32 0x0>>22&0x3C@0>>16=0x50", True, "not modelled"),
    ("-m socket", True, "not modelled"),
    ("-m policy --dir in --pol none", True, "IPsec"),
    ("-m policy --dir in --pol ipsec", False, "IPsec"),
    ("-m helper --helper ftp", False, "helpers"),
    ("-m frobnicate --frob 1", True, "not modelled"),
])
def test_uncertain_matches_state_their_assumption(rule: str, ok: bool, word: str) -> None:
    out = one(rule, P())
    assert (out.verdict == "accept") is ok
    ev = out.stages[0].rules[0]
    assert ev.uncertain and out.uncertain
    assert ev.note is not None and word in ev.note
    if ok:
        assert ev.failed_condition is None
    else:
        assert ev.failed_condition is not None


# -- targets ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "with_", "icmp"), [
    ("-j REJECT", "icmp-port-unreachable", (3, 3)),
    ("-j REJECT --reject-with icmp-port-unreachable", "icmp-port-unreachable", (3, 3)),
    ("-j REJECT --reject-with icmp-host-prohibited", "icmp-host-prohibited", (3, 10)),
    ("-j REJECT --reject-with icmp-net-unreachable", "icmp-net-unreachable", (3, 0)),
    ("-j REJECT --reject-with icmp-host-unreachable", "icmp-host-unreachable", (3, 1)),
    ("-j REJECT --reject-with icmp-proto-unreachable", "icmp-proto-unreachable", (3, 2)),
    ("-j REJECT --reject-with icmp-net-prohibited", "icmp-net-prohibited", (3, 9)),
    ("-j REJECT --reject-with icmp-admin-prohibited", "icmp-admin-prohibited", (3, 13)),
    ("-p tcp -j REJECT --reject-with tcp-reset", "tcp-reset", (None, None)),
])
def test_reject_v4(rule: str, with_: str, icmp: tuple[int | None, int | None]) -> None:
    out = hook(make_snap(filt([f"-A INPUT {rule}"])), P())
    assert out.verdict == "reject"
    assert out.reject is not None and out.reject.with_ == with_
    assert (out.reject.icmp_type, out.reject.icmp_code) == icmp
    assert out.stages[0].result is StageResult.DROPPED


@pytest.mark.parametrize(("rule", "with_", "icmp"), [
    ("-j REJECT", "icmp6-port-unreachable", (1, 4)),
    ("-j REJECT --reject-with icmp6-adm-prohibited", "icmp6-adm-prohibited", (1, 1)),
    ("-j REJECT --reject-with icmp6-no-route", "icmp6-no-route", (1, 0)),
    ("-j REJECT --reject-with icmp6-addr-unreachable", "icmp6-addr-unreachable", (1, 3)),
    ("-p tcp -j REJECT --reject-with tcp-reset", "tcp-reset", (None, None)),
])
def test_reject_v6(rule: str, with_: str, icmp: tuple[int | None, int | None]) -> None:
    snap = make_snap(v6=table("filter", {"INPUT": "ACCEPT"}, [f"-A INPUT {rule}"]))
    out = hook(snap, P(src="2001:db8::7", dst="2001:db8::1"))
    assert out.reject is not None and out.reject.with_ == with_
    assert (out.reject.icmp_type, out.reject.icmp_code) == icmp


def test_reject_notes_when_nothing_is_sent() -> None:
    out = hook(make_snap(filt(["-A INPUT -j REJECT"])), P(proto=1, icmp_type=3, icmp_code=1))
    assert out.reject is not None and "ICMP error" in out.reject.note


def test_header_targets() -> None:
    text = table("mangle", {"PREROUTING": "ACCEPT", "FORWARD": "ACCEPT", "POSTROUTING": "ACCEPT"}, [
        "-A PREROUTING -j TOS --set-tos 0x10/0x3f",
        "-A PREROUTING -j TTL --ttl-dec 5",
        "-A PREROUTING -j LOG --log-prefix \"pre \"",
        "-A PREROUTING -j NFLOG --nflog-group 5",
        "-A PREROUTING -j TRACE",
        "-A PREROUTING -j CLASSIFY --set-class 1:10",
        "-A PREROUTING -j CHECKSUM --checksum-fill",
        "-A PREROUTING -j AUDIT --type accept",
        "-A PREROUTING -j SET --add-set ips src",
        "-A FORWARD -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu",
        "-A POSTROUTING -j DSCP --set-dscp-class EF",
        "-A POSTROUTING -j TTL --ttl-set 3",
        "-A POSTROUTING -j TTL --ttl-inc 300",
    ])
    snap = make_snap(text)
    pre = hook(snap, P(tos=0x03), Hook.PREROUTING)
    assert pre.packet.tos == 0x10 and pre.packet.ttl == 59  # (tos & ~0x3f) ^ 0x10
    notes = [r.note or "" for r in pre.stages[0].rules]
    assert "pre " in notes[2] and "group 5" in notes[3] and "1:10" in notes[5]
    assert "ipset 'ips'" in notes[8]
    assert all(r.matched for r in pre.stages[0].rules)
    fwd = hook(snap, pre.packet, Hook.FORWARD, oif="eth1")
    assert "MSS" in (fwd.stages[0].rules[0].note or "")
    post = hook(snap, pre.packet, Hook.POSTROUTING, iif=None, oif="eth1")
    assert post.packet.tos == 46 << 2
    assert post.packet.ttl == 255


def test_hl_target_v6() -> None:
    snap = make_snap(v6=table("mangle", {"PREROUTING": "ACCEPT"}, ["-A PREROUTING -j HL --hl-set 9"]))
    out = hook(snap, P(src="2001:db8::7", dst="2001:db8::1"), Hook.PREROUTING)
    assert out.packet.ttl == 9


def test_notrack_and_ct_targets() -> None:
    text = (table("raw", {"PREROUTING": "ACCEPT", "OUTPUT": "ACCEPT"}, [
        "-A PREROUTING -p udp -j NOTRACK",
        "-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp",
        "-A PREROUTING -p tcp -m tcp --dport 22 -j CT --notrack",
        "-A PREROUTING -p tcp -m tcp --dport 23 -j CT --zone 7",
    ]) + filt(["-A INPUT -m conntrack --ctstate UNTRACKED -j DROP"]))
    snap = make_snap(text)
    out = hook(snap, P(proto=17, dport=53), Hook.PREROUTING)
    assert out.notrack and out.ct is not None and out.ct.state is CtState.UNTRACKED
    assert hook(snap, P(dport=22), Hook.PREROUTING).notrack
    out = hook(snap, P(dport=21), Hook.PREROUTING)
    assert out.uncertain and not out.notrack
    ctx_flows = ()
    pipe = build_pipeline(snap)
    pkt = P(dport=23)
    out = run_hook(snap, pipe, pkt, HookContext(Hook.PREROUTING, "eth0", None,
                                                ct_lookup(snap, (), pkt), flows=ctx_flows))
    assert out.ct is not None and out.ct.zone == 7


def test_queue_tproxy_and_unknown_targets() -> None:
    out = hook(make_snap(filt(["-A INPUT -j NFQUEUE --queue-num 3 --queue-bypass"])), P())
    assert out.verdict == "queue" and out.uncertain
    assert "bypass" in (out.stages[0].rules[0].note or "")
    out = hook(make_snap(filt(["-A INPUT -j QUEUE"])), P())
    assert out.verdict == "queue"
    text = table("mangle", {"PREROUTING": "ACCEPT"}, [
        "-A PREROUTING -p tcp -j TPROXY --on-port 3129 --on-ip 0.0.0.0 --tproxy-mark 0x1/0x1"])
    out = hook(make_snap(text), P(), Hook.PREROUTING)
    assert out.verdict == "accept" and out.uncertain and out.packet.mark == 1


def test_unknown_target_is_non_terminal_and_uncertain() -> None:
    # a target the parser knows but the engine does not model (SNPT) continues
    snap = make_snap(table("mangle", {"POSTROUTING": "ACCEPT"},
                           ["-A POSTROUTING -j SNPT --src-pfx 2001:db8::/64 --dst-pfx 2001:db8:1::/64",
                            "-A POSTROUTING -j DROP"]))
    out = hook(snap, P(), Hook.POSTROUTING, iif=None, oif="eth1")
    assert out.verdict == "drop" and out.uncertain
    assert "non-terminal" in (out.stages[0].rules[0].note or "")


# -- NAT --------------------------------------------------------------------------------------

def nat_snap(rules: Sequence[str], v6: bool = False) -> HostSnapshot:
    t = table("nat", {h: "ACCEPT" for h in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}, rules)
    return make_snap(v6=t) if v6 else make_snap(t)


@pytest.mark.parametrize(("spec", "dst", "dport", "uncertain"), [
    ("10.0.0.5", "10.0.0.5", 80, False),
    ("10.0.0.5:8080", "10.0.0.5", 8080, False),
    ("10.0.0.5-10.0.0.9:8080", "10.0.0.5", 8080, True),
    ("10.0.0.5:70-90", "10.0.0.5", 80, False),  # original port lies in the range: kept
    ("10.0.0.5:8000-8010", "10.0.0.5", 8000, False),  # first port of the range
])
def test_dnat_specs(spec: str, dst: str, dport: int, uncertain: bool) -> None:
    snap = nat_snap([f"-A PREROUTING -p tcp -j DNAT --to-destination {spec}"])
    out = hook(snap, P(), Hook.PREROUTING)
    assert out.nat is not None and out.nat.kind == "DNAT"
    assert out.packet.dst == ipaddress.ip_address(dst) and out.packet.dport == dport
    assert out.nat.uncertain is uncertain
    assert {c.field for c in out.stages[0].changes} >= {"dst"}


def test_dnat_v6_brackets() -> None:
    snap = nat_snap(["-A PREROUTING -p tcp -j DNAT --to-destination [2001:db8:1::9]:8443"], v6=True)
    out = hook(snap, P(src="2001:db8::7", dst="2001:db8::1"), Hook.PREROUTING)
    assert out.packet.dst == ipaddress.ip_address("2001:db8:1::9") and out.packet.dport == 8443
    snap = nat_snap(["-A PREROUTING -p tcp -j DNAT --to-destination 2001:db8:1::9"], v6=True)
    out = hook(snap, P(src="2001:db8::7", dst="2001:db8::1"), Hook.PREROUTING)
    assert out.packet.dst == ipaddress.ip_address("2001:db8:1::9") and out.packet.dport == 80


def test_snat_masquerade_redirect() -> None:
    fwd = P(dst="198.51.100.9")
    snap = nat_snap(["-A POSTROUTING -o eth1 -j SNAT --to-source 198.51.100.50"])
    out = hook(snap, fwd, Hook.POSTROUTING, iif=None, oif="eth1")
    assert out.packet.src == ipaddress.ip_address("198.51.100.50") and out.packet.sport == 40000
    assert out.nat is not None and out.nat.kind == "SNAT"
    snap = nat_snap(["-A POSTROUTING -o eth1 -j MASQUERADE"])
    out = hook(snap, P(dst="203.0.113.9"), Hook.POSTROUTING, iif=None, oif="eth1")
    assert out.packet.src == ipaddress.ip_address("198.51.100.1")
    assert out.nat is not None and out.nat.kind == "MASQUERADE"
    snap = nat_snap(["-A POSTROUTING -j MASQUERADE --to-ports 1024-2000"])
    out = hook(snap, P(dst="203.0.113.9"), Hook.POSTROUTING, iif=None, oif="eth1")
    assert out.packet.sport == 1024 and out.uncertain  # random port in the range
    snap = nat_snap(["-A PREROUTING -p tcp -j REDIRECT --to-ports 3128",
                     "-A OUTPUT -p tcp -j REDIRECT --to-ports 3129"])
    out = hook(snap, P(dst="203.0.113.9"), Hook.PREROUTING)
    assert out.packet.dst == ipaddress.ip_address("192.0.2.1") and out.packet.dport == 3128
    local = P(src="198.51.100.1", dst="203.0.113.9", local=True)
    out = hook(snap, local, Hook.OUTPUT, iif=None, oif="eth1", local=True)
    assert out.packet.dst == ipaddress.ip_address("127.0.0.1") and out.packet.dport == 3129


def test_redirect_v6_output_uses_loopback() -> None:
    snap = nat_snap(["-A OUTPUT -p tcp -j REDIRECT --to-ports 3129"], v6=True)
    out = hook(snap, P(src="2001:db8::1", dst="2001:db8:5::1", local=True), Hook.OUTPUT,
               iif=None, oif="eth1", local=True)
    assert out.packet.dst == ipaddress.ip_address("::1")


def test_nat_only_for_first_packet_and_ct_translates_later_ones() -> None:
    snap = nat_snap(["-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.51.100.9:8080",
                     "-A POSTROUTING -o eth1 -j MASQUERADE"])
    pipe = build_pipeline(snap)
    syn = P()
    view = ct_lookup(snap, (), syn)
    pre = run_hook(snap, pipe, syn, HookContext(Hook.PREROUTING, "eth0", None, view))
    post = run_hook(snap, pipe, pre.packet, HookContext(Hook.POSTROUTING, None, "eth1", pre.ct))
    assert post.packet.src == ipaddress.ip_address("198.51.100.1")
    assert post.ct is not None
    flows = ct_commit(post.ct, syn, post.packet, post.nat, ())
    e = flows[0]
    assert e.reply.src == ipaddress.ip_address("198.51.100.9") and e.reply.sport == 8080
    assert e.reply.dst == ipaddress.ip_address("198.51.100.1")
    assert "DST_NAT" in e.status and "SRC_NAT" in e.status
    # the second packet: nat chains skipped, conntrack does the same translation
    ack = P()  # a retransmitted SYN (an ACK before the SYN-ACK would be INVALID)
    v2 = ct_lookup(snap, flows, ack)
    assert v2.state is CtState.NEW and v2.source == "flow"  # no reply seen yet
    pre2 = run_hook(snap, pipe, ack, HookContext(Hook.PREROUTING, "eth0", None, v2))
    assert pre2.stages[0].result is StageResult.CHANGED
    assert "skipped: NAT decided on the first packet" in pre2.stages[0].decision
    assert pre2.stages[0].rules == ()
    assert pre2.packet.dst == ipaddress.ip_address("198.51.100.9") and pre2.packet.dport == 8080
    post2 = run_hook(snap, pipe, pre2.packet, HookContext(Hook.POSTROUTING, None, "eth1", v2))
    assert post2.packet.src == ipaddress.ip_address("198.51.100.1")
    assert post2.rules_hit == ()
    # the reply is un-NATed: un-SNAT at PREROUTING, un-DNAT at POSTROUTING
    reply = P(src="198.51.100.9", dst="198.51.100.1", sport=8080, dport=40000, flags="SA")
    v3 = ct_lookup(snap, flows, reply)
    assert v3.state is CtState.ESTABLISHED and v3.direction == "reply"
    pre3 = run_hook(snap, pipe, reply, HookContext(Hook.PREROUTING, "eth1", None, v3))
    assert pre3.packet.dst == ipaddress.ip_address("192.0.2.7") and pre3.packet.dport == 40000
    post3 = run_hook(snap, pipe, pre3.packet, HookContext(Hook.POSTROUTING, None, "eth0", v3))
    assert post3.packet.src == ipaddress.ip_address("192.0.2.1") and post3.packet.sport == 80


def test_second_nat_chain_skipped_after_binding() -> None:
    snap = make_snap(table("nat", {"PREROUTING": "ACCEPT"},
                           ["-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.5"]),
                     legacy4=table("nat", {"PREROUTING": "ACCEPT"},
                                   ["-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.6"]))
    out = hook(snap, P(), Hook.PREROUTING)
    assert out.packet.dst == ipaddress.ip_address("10.0.0.5")
    assert out.stages[1].result is StageResult.SKIPPED
    assert "already bound" in out.stages[1].decision


def test_nat_skipped_for_untracked_and_invalid() -> None:
    snap = nat_snap(["-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.5"])
    out = hook(snap, P(flags="SF"), Hook.PREROUTING)
    assert out.packet.dst == ipaddress.ip_address("192.0.2.1")
    assert "INVALID" in out.stages[0].decision


def test_nat_no_match_null_binding_note() -> None:
    snap = nat_snap(["-A PREROUTING -p udp -j DNAT --to-destination 10.0.0.5"])
    out = hook(snap, P(), Hook.PREROUTING)
    assert out.nat is None and "null binding" in out.stages[0].decision


def test_masquerade_without_address_drops() -> None:
    snap = nat_snap(["-A POSTROUTING -j MASQUERADE"])
    out = hook(snap, P(dst="203.0.113.9"), Hook.POSTROUTING, iif=None, oif="br0")
    assert out.verdict == "drop"


# -- performance -------------------------------------------------------------------------------

def test_kube_proxy_scale_trace_is_fast() -> None:
    kubeproxy = pytest.importorskip("benchmarks.kubeproxy")
    text = kubeproxy.generate(services=5000)
    dump = parse_iptables_save(text, source="kp", family=Family.IPV4, backend=Backend.NFT)
    assert dump.rule_count > 55000
    snap = HostSnapshot(provenance=PROV, iptables=(dump,))
    pipe = build_pipeline(snap)
    line = [x for x in text.splitlines() if x.startswith("-A KUBE-SERVICES -d")][-1]
    dst = line.split()[3].split("/")[0]
    port = int(line.split("--dport ")[1].split()[0])
    pkt = P(src="10.244.1.5", dst=dst, dport=port)
    ct = ct_lookup(snap, (), pkt)
    ctx = HookContext(Hook.PREROUTING, "eth0", None, ct)
    run_hook(snap, pipe, pkt, ctx)  # compiles the visited chains once
    t0 = time.perf_counter()
    for _ in range(10):
        out = run_hook(snap, pipe, pkt, ctx)
    per = (time.perf_counter() - t0) / 10
    assert out.nat is not None and out.nat.kind == "DNAT"
    assert len(out.stages[0].rules) > 5000  # every evaluated rule is reported
    assert per < 0.02, f"{per * 1000:.1f} ms per packet"


# -- limit / hashlimit buckets across a run --------------------------------------------------------

def _run_rates(rules: Sequence[str], pkts: Sequence[Packet]) -> tuple[list[HookOutcome], dict[str, int]]:
    snap = make_snap(filt(rules, policy="ACCEPT"))
    rates: dict[str, int] = {}
    outs = [run_hook(snap, build_pipeline(snap), p,
                     HookContext(Hook.INPUT, "eth0", None, None, rates=rates)) for p in pkts]
    return outs, rates


def test_limit_burst_is_used_up_by_back_to_back_packets() -> None:
    pkts = [P(proto=17, sport=5000 + i, dport=53) for i in range(3)]
    outs, rates = _run_rates(["-A INPUT -p udp -m limit --limit 1/min --limit-burst 2"], pkts)
    assert [hit_idx(o) for o in outs] == [[("INPUT", 1)], [("INPUT", 1)], []]
    ev = outs[2].stages[0].rules[0]
    assert not ev.matched and ev.uncertain and ev.note is not None
    assert "back-to-back" in ev.note and "used up" in ev.note
    assert all(o.uncertain for o in outs)  # the timing is an assumption
    assert list(rates.values()) == [2]  # the third packet took no credit


def test_limit_buckets_are_per_rule_and_default_burst_is_5() -> None:
    pkts = [P(proto=17, sport=5000 + i, dport=53) for i in range(6)]
    outs, _ = _run_rates(["-A INPUT -p udp -m limit --limit 1/sec",
                          "-A INPUT -p udp -m limit --limit 1/sec --limit-burst 1"], pkts)
    assert [hit_idx(o) for o in outs] == [
        [("INPUT", 1), ("INPUT", 2)], *[[("INPUT", 1)]] * 4, []]


def test_limit_without_run_state_assumes_a_full_bucket() -> None:
    snap = make_snap(filt(["-A INPUT -m limit --limit 1/min --limit-burst 1 -j DROP"]))
    for _ in range(2):  # no rates dict given: every packet finds the bucket full
        assert hook(snap, P()).verdict == "drop"


def test_hashlimit_buckets_per_source_and_above_mode() -> None:
    rules = ["-A INPUT -p tcp -m hashlimit --hashlimit-upto 1/min --hashlimit-burst 1 "
             "--hashlimit-mode srcip --hashlimit-name ssh",
             "-A INPUT -p tcp -m hashlimit --hashlimit-above 1/min --hashlimit-burst 2 "
             "--hashlimit-name all"]
    pkts = [P(src="192.0.2.7"), P(src="192.0.2.7", sport=40001), P(src="192.0.2.8"),
            P(src="192.0.2.9")]
    outs, rates = _run_rates(rules, pkts)
    # upto: one per source; above (one bucket for all): matches once 2 packets used the burst
    assert [hit_idx(o) for o in outs] == [[("INPUT", 1)], [], [("INPUT", 1), ("INPUT", 2)],
                                          [("INPUT", 1), ("INPUT", 2)]]
    assert sorted(k.split()[0] for k in rates) == ["hashlimit"] * 4


# -- IPv6 extension header matches: absent header -> no match --------------------------------------

def _m6(rule: str, pkt: Packet) -> HookOutcome:
    snap = make_snap(v6=filt([f"-A INPUT {rule} -j ACCEPT"], policy="DROP"))
    return hook(snap, pkt)


V6P = P(src="2001:db8::7", dst="2001:db8::1")
V6FRAG = P(src="2001:db8::7", dst="2001:db8::1", frag_offset=16)
V6FIRST = P(src="2001:db8::7", dst="2001:db8::1", more_fragments=True)


@pytest.mark.parametrize(("rule", "pkt", "ok"), [
    ("-m rt --rt-type 0", V6P, False),  # ufw's rule: no routing header -> no match
    ("-m rt ! --rt-type 0", V6P, False),  # ... whatever the negation
    ("-m rt --rt-segsleft 0", V6P, False),
    ("-m hbh --hbh-len 8", V6P, False),
    ("-m dst --dst-len 8", V6P, False),
    ("-m frag --fragmore", V6P, False),
    ("-m frag --fragid 0:4294967295", V6P, False),
    ("-m frag --fragmore", V6FIRST, True),
    ("-m frag --fragmore", V6FRAG, False),
    ("-m frag --fraglast", V6FRAG, True),
    ("-m frag --fragfirst", V6FIRST, True),
    ("-m frag --fragfirst", V6FRAG, False),
    ("-m ipv6header --header ipv6-frag --soft", V6FRAG, True),
    ("-m ipv6header --header ipv6-frag --soft", V6P, False),
    ("-m ipv6header ! --header ipv6-frag --soft", V6P, True),
    ("-m ipv6header ! --header ipv6-frag --soft", V6FIRST, False),
    ("-m ipv6header --header protocol", V6P, True),  # exact set: only the upper layer
    ("-m ipv6header --header protocol", V6FRAG, False),
    ("-m ipv6header --header ipv6-frag,protocol", V6FRAG, True),
    ("-m ipv6header ! --header protocol", V6FRAG, True),
    ("-p esp -m esp --espspi 100", V6P, False),
    ("-m ah --ahspi 100", V6P, False),
    ("-m mh --mh-type 1", V6P, False),
])
def test_ipv6_extension_header_matches(rule: str, pkt: Packet, ok: bool) -> None:
    out = _m6(rule, pkt)
    assert (out.verdict == "accept") is ok
    assert not out.uncertain  # decided exactly


def test_hbh_on_mld_is_uncertain() -> None:
    mld = P(src="fe80::7", dst="ff02::16", proto=58, icmp_type=143, icmp_code=0)
    out = _m6("-m hbh --hbh-len 8", mld)
    assert out.verdict == "accept" and out.uncertain


# -- conntrack status seen by the rules --------------------------------------------------------------

def test_ctstatus_seen_reply_on_the_first_reply() -> None:
    snap = make_snap(filt(["-A FORWARD -m conntrack --ctstatus SEEN_REPLY -j ACCEPT"],
                          policy="DROP"))
    syn = P(src="198.51.100.7", dst="192.0.2.9")
    v = ct_lookup(snap, (), syn)
    assert hook(snap, syn, Hook.FORWARD, ct=v).verdict == "drop"
    flows = ct_commit(v, syn, syn, None, ())
    synack = P(src="192.0.2.9", dst="198.51.100.7", sport=80, dport=40000, flags="SA")
    v2 = ct_lookup(snap, flows, synack)
    assert "SEEN_REPLY" in v2.status and "UNREPLIED" not in v2.status
    assert hook(snap, synack, Hook.FORWARD, ct=v2).verdict == "accept"


# -- repeated chain walks ------------------------------------------------------------------------------

def test_chain_jumped_twice_is_listed_twice() -> None:
    snap = make_snap(filt(["-A INPUT -p tcp -j CHK", "-A INPUT -p tcp -j CHK",
                           "-A CHK -s 192.0.2.7", "-A CHK -j RETURN"],
                          chains={"CHK": "-"}))
    out = hook(snap, P())
    assert hit_idx(out) == [("INPUT", 1), ("CHK", 1), ("CHK", 2), ("INPUT", 2), ("CHK", 1),
                            ("CHK", 2)]
    evs = [(e.chain, e.index) for e in out.stages[0].rules]
    assert evs == hit_idx(out)
