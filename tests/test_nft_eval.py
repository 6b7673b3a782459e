"""Native nft evaluation in the pipeline (pure: hand-built snapshots, no kernel)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from journey.engine.netfilter.nft_eval import (
    iptables_nft_tables,
    native_base_chains,
    native_ruleset,
)
from journey.engine.simulate import simulate
from journey.model.family import Family
from journey.model.snapshot import (
    Address,
    HostSnapshot,
    Interface,
    Provenance,
    RawDump,
    Route,
    RouteType,
)
from journey.packets.spec import parse_spec
from journey.snapshot.iptables_save import parse_iptables_save

RULES: list[dict[str, Any]] = []


def _snap(nft: dict[str, Any], iptables: str = "") -> HostSnapshot:
    ifs = (Interface(1, "lo", flags=("UP", "LOOPBACK"), operstate="UNKNOWN"),
           Interface(2, "eth0", kind="veth", mac="02:00:00:00:00:01", flags=("UP",), operstate="UP"),
           Interface(3, "eth1", kind="veth", mac="02:00:00:00:00:02", flags=("UP",), operstate="UP"))
    addrs = (Address(2, "eth0", ipaddress.ip_address("10.1.0.1"), 24),
             Address(3, "eth1", ipaddress.ip_address("10.2.0.1"), 24),
             Address(2, "eth0", ipaddress.ip_address("fd01::1"), 64),
             Address(1, "lo", ipaddress.ip_address("127.0.0.1"), 8, scope="host"))
    routes = (Route(Family.IPV4, 254, ipaddress.ip_network("10.1.0.0/24"), dev="eth0", scope="link",
                    protocol="kernel"),
              Route(Family.IPV4, 254, ipaddress.ip_network("10.2.0.0/24"), dev="eth1", scope="link",
                    protocol="kernel"),
              Route(Family.IPV6, 254, ipaddress.ip_network("fd01::/64"), dev="eth0", protocol="kernel"),
              Route(Family.IPV4, 255, ipaddress.ip_network("10.1.0.1/32"), type=RouteType.LOCAL,
                    dev="eth0", scope="host", protocol="kernel"),
              Route(Family.IPV4, 255, ipaddress.ip_network("10.2.0.1/32"), type=RouteType.LOCAL,
                    dev="eth1", scope="host", protocol="kernel"),
              Route(Family.IPV6, 255, ipaddress.ip_network("fd01::1/128"), type=RouteType.LOCAL,
                    dev="eth0", protocol="kernel"))
    dumps = ()
    if iptables:
        dumps = (parse_iptables_save(iptables, family=Family.IPV4, backend=_nft_backend(),
                                     source="iptables-save"),)
    prov = Provenance("h", "6.18", "2026-01-01T00:00:00Z", "0", 0, None, "live")
    return HostSnapshot(provenance=prov, interfaces=ifs, addresses=addrs, routes=routes,
                        sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.forwarding": "1",
                                 "net.ipv4.conf.eth0.forwarding": "1"},
                        iptables=dumps,
                        raw=(RawDump("nft -j list ruleset", json.dumps(nft), "nft -j list ruleset"),))


def _nft_backend() -> Any:
    from journey.model.ruleset import Backend

    return Backend.NFT


def m(proto: str, field: str, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"payload": {"protocol": proto, "field": field}}, "right": right}}


def meta(key: str, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}}


def ruleset(*objs: dict[str, Any]) -> dict[str, Any]:
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *objs]}


def table(fam: str, name: str) -> dict[str, Any]:
    return {"table": {"family": fam, "name": name, "handle": 1}}


def chain(fam: str, t: str, name: str, hook: str | None = None, prio: int = 0,
          policy: str = "accept", type_: str = "filter") -> dict[str, Any]:
    c: dict[str, Any] = {"family": fam, "table": t, "name": name, "handle": 1}
    if hook:
        c.update(type=type_, hook=hook, prio=prio, policy=policy)
    return {"chain": c}


def rule(fam: str, t: str, c: str, handle: int, *expr: dict[str, Any]) -> dict[str, Any]:
    return {"rule": {"family": fam, "table": t, "chain": c, "handle": handle, "expr": list(expr)}}


def run(snap: HostSnapshot, spec: str) -> Any:
    return simulate(snap, parse_spec(spec), spec=spec)


def hits(j: Any) -> list[tuple[str, str, int | None]]:
    return [(r.table, r.chain, r.handle) for r in j.rules_hit if r.backend == "native"]


INET = ruleset(
    table("inet", "fw"),
    {"set": {"family": "inet", "table": "fw", "name": "ok4", "type": "ipv4_addr",
             "flags": ["interval"], "elem": [{"prefix": {"addr": "10.1.0.0", "len": 25}}]}},
    {"set": {"family": "inet", "table": "fw", "name": "pairs", "type": ["ipv4_addr", "inet_service"],
             "elem": [{"concat": ["10.1.0.9", 2222]}]}},
    {"map": {"family": "inet", "table": "fw", "name": "vm", "type": "inet_service", "map": "verdict",
             "elem": [[7, {"drop": None}], [8, {"jump": {"target": "sub"}}]]}},
    chain("inet", "fw", "input", "input", 0, "drop"),
    chain("inet", "fw", "sub"),
    rule("inet", "fw", "sub", 20, m("tcp", "sport", 1), {"return": None}),
    rule("inet", "fw", "sub", 21, {"accept": None}),
    rule("inet", "fw", "input", 3, {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                              "right": ["established", "related"]}}, {"accept": None}),
    rule("inet", "fw", "input", 4, {"match": {"op": "==", "left": {"fib": {"result": "oif", "flags": ["saddr", "iif"]}}, "right": False}}, {"drop": None}),
    rule("inet", "fw", "input", 5, m("ip", "saddr", "@ok4"), m("tcp", "dport", {"set": [22, {"range": [80, 81]}]}), {"counter": {"packets": 0, "bytes": 0}}, {"accept": None}),
    rule("inet", "fw", "input", 6, {"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}}, {"payload": {"protocol": "tcp", "field": "dport"}}]}, "right": "@pairs"}}, {"accept": None}),
    rule("inet", "fw", "input", 7, {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": "@vm"}}),
    rule("inet", "fw", "input", 8, m("ip6", "saddr", {"prefix": {"addr": "fd01::", "len": 64}}), m("udp", "dport", 53), {"accept": None}),
    rule("inet", "fw", "input", 9, m("tcp", "dport", 443), {"reject": {"type": "tcp reset"}}),
    rule("inet", "fw", "input", 10, meta("l4proto", "udp"), {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}),
)


def test_inet_v4_set_and_interval() -> None:
    j = run(_snap(INET), "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:81")
    assert hits(j) == [("fw", "input", 5)]
    st = next(s for s in j.stages if s.kind == "netfilter" and s.rules)
    assert st.rules[0].failed_condition == "ct state established,related"
    assert st.rules[-1].backend == "native" and st.rules[-1].handle == 5


def test_first_failed_expression_is_named() -> None:
    j = run(_snap(INET), "in eth0 tcp 10.1.0.200:4000 > 10.1.0.1:81")
    st = next(s for s in j.stages if s.kind == "netfilter" and s.rules)
    ev = {r.handle: r for r in st.rules}
    assert ev[5].failed_condition == "ip saddr @ok4"
    assert str(j.verdict.disposition) == "dropped"  # policy drop


def test_concat_set_and_vmap_jump_return() -> None:
    snap = _snap(INET)
    assert hits(run(snap, "in eth0 tcp 10.1.0.9:4000 > 10.1.0.1:2222")) == [("fw", "input", 6)]
    j = run(snap, "in eth0 tcp 10.1.0.200:4000 > 10.1.0.1:7")
    assert str(j.verdict.disposition) == "dropped" and hits(j) == [("fw", "input", 7)]
    j = run(snap, "in eth0 tcp 10.1.0.200:4000 > 10.1.0.1:8")
    assert hits(j) == [("fw", "input", 7), ("fw", "sub", 21)]
    j = run(snap, "in eth0 tcp 10.1.0.200:1 > 10.1.0.1:8")  # sub returns -> back in input
    assert ("fw", "sub", 20) in hits(j) and str(j.verdict.disposition) == "dropped"


def test_inet_ipv6_and_rp_filter() -> None:
    snap = _snap(INET)
    j = run(snap, "in eth0 udp [fd01::5]:4000 > [fd01::1]:53")
    assert hits(j) == [("fw", "input", 8)]
    j = run(snap, "in eth0 udp 10.9.9.9:4000 > 10.1.0.1:53")  # no route back: fib oif missing
    assert hits(j) == [("fw", "input", 4)] and str(j.verdict.disposition) == "dropped"
    j = run(snap, "in eth0 udp 10.2.0.7:4000 > 10.1.0.1:53")  # route back via eth1, not eth0
    assert hits(j) == [("fw", "input", 4)]


def test_reject_types() -> None:
    snap = _snap(INET)
    j = run(snap, "in eth0 tcp 10.1.0.200:4000 > 10.1.0.1:443")
    assert str(j.verdict.disposition) == "rejected" and j.verdict.replies[0].kind == "tcp-rst"
    j = run(snap, "in eth0 udp 10.1.0.7:4000 > 10.1.0.1:99")
    r = j.verdict.replies[0]
    assert (r.type, r.code) == (3, 13)


NAT = ruleset(
    table("ip", "nat"),
    {"map": {"family": "ip", "table": "nat", "name": "svc", "type": "inet_service",
             "map": "ipv4_addr . inet_service", "elem": [[8080, {"concat": ["10.2.0.9", 80]}]]}},
    chain("ip", "nat", "pre", "prerouting", -100, type_="nat"),
    chain("ip", "nat", "post", "postrouting", 100, type_="nat"),
    rule("ip", "nat", "pre", 2, {"dnat": {"addr": {"map": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": "@svc"}}}}),
    rule("ip", "nat", "pre", 3, m("tcp", "dport", 9000), {"dnat": {"addr": {"map": {"key": {"numgen": {"mode": "inc", "mod": 2, "offset": 0}}, "data": {"set": [[0, "10.2.0.10"], [1, "10.2.0.11"]]}}}}}),
    rule("ip", "nat", "post", 4, meta("oifname", "eth1"), {"masquerade": None}),
    table("inet", "mangle"),
    chain("inet", "mangle", "fwd", "forward", -150),
    rule("inet", "mangle", "fwd", 2, {"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16]}}}),
)


def test_nat_through_maps_and_mark() -> None:
    snap = _snap(NAT)
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:8080")
    p = j.verdict.packet
    assert str(j.verdict.disposition) == "forwarded"
    assert (str(p.dst), p.dport, str(p.src), p.mark) == ("10.2.0.9", 80, "10.2.0.1", 16)
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:9000")
    assert str(j.verdict.packet.dst) == "10.2.0.10" and j.uncertain
    assert any(r.note and "numgen" in r.note for s in j.stages for r in s.rules)


IPT = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 5 -j DROP
COMMIT
"""


def test_iptables_nft_tables_are_not_counted_twice() -> None:
    nft = ruleset(table("ip", "filter"), chain("ip", "filter", "INPUT", "input", 0),
                  chain("ip", "filter", "FORWARD", "forward", 0),
                  chain("ip", "filter", "OUTPUT", "output", 0),
                  rule("ip", "filter", "INPUT", 4, m("tcp", "dport", 5), {"counter": None}, {"drop": None}),
                  table("ip", "mine"), chain("ip", "mine", "in", "input", 5),
                  rule("ip", "mine", "in", 2, {"xt": {"type": "match", "name": "conntrack"}}, {"accept": None}),
                  table("inet", "real"), chain("inet", "real", "in", "input", 10),
                  rule("inet", "real", "in", 2, m("tcp", "dport", 6), {"drop": None}))
    snap = _snap(nft, IPT)
    nr = native_ruleset(snap)
    assert nr is not None
    assert set(iptables_nft_tables(snap, nr.ruleset)) == {("ip", "filter")}
    assert {(b.table, b.chain) for b in native_base_chains(snap)} == {("real", "in"), ("mine", "in")}
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:5")
    assert [(r.backend, r.table) for r in j.rules_hit] == [("nft", "filter")]
    assert not any(s.table == "filter" and s.name.endswith("(nft)") for s in j.stages)
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:6")
    assert [(r.backend, r.table, r.handle) for r in j.rules_hit] == [("native", "mine", 2),
                                                                     ("native", "real", 2)]
    assert j.uncertain  # the xt match of "mine" has lost its parameters


def test_accept_does_not_stop_the_next_base_chain() -> None:
    nft = ruleset(table("inet", "a"), chain("inet", "a", "in", "input", -10),
                  rule("inet", "a", "in", 2, {"accept": None}),
                  table("ip", "b"), chain("ip", "b", "in", "input", 10),
                  rule("ip", "b", "in", 2, m("tcp", "dport", 5), {"drop": None}))
    j = run(_snap(nft), "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:5")
    assert hits(j) == [("a", "in", 2), ("b", "in", 2)]
    assert str(j.verdict.disposition) == "dropped"


@pytest.mark.parametrize("expr", [
    {"xt": {"type": "target", "name": "MARK"}},
    {"limit": {"rate": 1, "per": "second"}},
    {"weird": 1},
])
def test_uncertain_statements(expr: dict[str, Any]) -> None:
    nft = ruleset(table("ip", "u"), chain("ip", "u", "in", "input", 0),
                  rule("ip", "u", "in", 2, expr, {"accept": None}))
    j = run(_snap(nft), "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:5")
    assert j.uncertain
    st = next(s for s in j.stages if s.kind == "netfilter" and s.rules)
    assert st.rules[0].uncertain and st.rules[0].note


NATIVE_NAT_SAVE = """# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.
# Generated by iptables-save v1.8.9 (nf_tables) on Wed Nov 25 01:48:53 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:helper - [0:0]
[0:0] -A helper
COMMIT
# Completed on Wed Nov 25 01:48:53 2026
"""


def test_native_table_printed_by_iptables_save_is_not_an_iptables_table() -> None:
    """iptables-save prints a native ``table ip nat`` as a comment, made-up built-in chains and
    the rules of its regular chains: no iptables-nft table (no extra stages) may come of it."""
    dump = parse_iptables_save(NATIVE_NAT_SAVE, family=Family.IPV4, backend=_nft_backend(),
                               source="iptables-save")
    assert dump.tables == ()
    from journey.engine.netfilter.pipeline import build_pipeline

    nft = ruleset(table("ip", "nat"), chain("ip", "nat", "prerouting", "prerouting", -100,
                                            type_="nat"),
                  chain("ip", "nat", "helper"), rule("ip", "nat", "helper", 3, {"counter": None}))
    snap = _snap(nft, NATIVE_NAT_SAVE)
    assert {c.backend for c in build_pipeline(snap).all_chains()} == {"native"}
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:5")
    assert all("iptables-nft" not in s.name for s in j.stages)
    assert any(s.table == "nat" for s in j.stages)


NETDEV = ruleset(table("netdev", "t"), chain("netdev", "t", "c", "ingress", 0),
                 rule("netdev", "t", "c", 2, m("tcp", "dport", 23), {"drop": None}))
CHAINS_TEXT = """table netdev t {
\tchain c {
\t\ttype filter hook ingress device "eth0" priority filter; policy accept;
\t}
}
"""


def test_netdev_ingress_runs_after_tc_only_on_its_device() -> None:
    from dataclasses import replace

    base = _snap(NETDEV)
    snap = replace(base, raw=(*base.raw, RawDump("nft list chains", CHAINS_TEXT, "nft list chains")))
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:23")
    assert str(j.verdict.disposition) == "dropped" and j.verdict.code == "filter-drop"
    assert hits(j) == [("t", "c", 2)]
    ing = [s for s in j.stages if s.hook == "ingress"]
    assert len(ing) == 1 and not ing[0].uncertain
    assert j.stages[-1] is ing[0]  # before any IP processing, and the journey ends there
    j = run(snap, "in eth1 tcp 10.2.0.5:4000 > 10.1.0.1:23")  # bound to eth0 only
    assert str(j.verdict.disposition) != "dropped" and hits(j) == []
    # without the text dump the device is unknown: assumed bound, and said to be uncertain
    j = run(base, "in eth1 tcp 10.2.0.5:4000 > 10.1.0.1:23")
    assert str(j.verdict.disposition) == "dropped" and j.uncertain


def test_ct_helper_map_miss_breaks_the_rule() -> None:
    helper_map = {"ct helper": {"map": {"key": {"payload": {"protocol": "udp", "field": "dport"}},
                                        "data": {"set": [[69, "tftp-69"]]}}}}
    nft = ruleset(table("inet", "f"), chain("inet", "f", "in", "input", 0),
                  rule("inet", "f", "in", 2, helper_map))
    snap = _snap(nft)
    assert hits(run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:69")) == []
    assert hits(run(snap, "in eth0 udp 10.1.0.5:4000 > 10.1.0.1:70")) == []
    j = run(snap, "in eth0 udp 10.1.0.5:4000 > 10.1.0.1:69")
    assert hits(j) == [("f", "in", 2)] and j.uncertain


def test_bridge_family_chains_make_a_bridged_arrival_uncertain() -> None:
    """A frame arriving on a bridge port passes bridge-family chains before IP; journey does not
    evaluate them, so it must say so (uncertain), not silently skip them."""
    from dataclasses import replace as dc_replace

    nft = ruleset(table("bridge", "filt"), chain("bridge", "filt", "fwd", "forward", 0, "drop"))
    base = _snap(nft)
    br = Interface(4, "br0", kind="bridge", mac="02:00:00:00:00:04", flags=("UP",), operstate="UP")
    port = dc_replace(base.interfaces[1], master="br0")
    snap = dc_replace(base, interfaces=(base.interfaces[0], port, base.interfaces[2], br),
                      addresses=tuple(dc_replace(a, ifname="br0", ifindex=4) if a.ifname == "eth0"
                                      else a for a in base.addresses),
                      routes=tuple(dc_replace(r, dev="br0") if r.dev == "eth0" else r
                                   for r in base.routes))
    j = run(snap, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:22")
    nic = j.stages[0]
    assert nic.uncertain and any("bridge filt fwd" in n for n in nic.notes)
    assert j.uncertain
    # without bridge-family chains the same arrival is certain at the NIC
    plain = dc_replace(snap, raw=())
    assert not run(plain, "in eth0 tcp 10.1.0.5:4000 > 10.1.0.1:22").stages[0].uncertain


def _handled(obj: dict[str, Any], handle: int) -> dict[str, Any]:
    obj["table"]["handle"] = handle
    return obj


@pytest.mark.parametrize(("native_handle", "first"), [(5, "native"), (1, "nft")])
def test_equal_priority_nf_tables_order_follows_table_handles(native_handle: int, first: str) -> None:
    """Kernel q-nft-mixed-hook / q-nft-order-older-table: at equal priority the table created
    last (higher table handle) registered its hook last and runs first."""
    ipt = IPT.replace("-A INPUT -p tcp --dport 5 -j DROP", "-A INPUT -m mark --mark 0x3")
    nft = ruleset(_handled(table("ip", "filter"), 2), chain("ip", "filter", "INPUT", "input", 0),
                  chain("ip", "filter", "FORWARD", "forward", 0),
                  chain("ip", "filter", "OUTPUT", "output", 0),
                  rule("ip", "filter", "INPUT", 4, {"xt": {"type": "match", "name": "mark"}}),
                  _handled(table("inet", "mix"), native_handle), chain("inet", "mix", "in", "input", 0),
                  rule("inet", "mix", "in", 2, {"mangle": {"key": {"meta": {"key": "mark"}},
                                                           "value": 3}}))
    snap = _snap(nft, ipt)
    j = run(snap, "in eth0 udp 10.1.0.5:4000 > 10.1.0.1:53")
    assert [r.backend for r in j.rules_hit] == (["native", "nft"] if first == "native" else ["native"])
    order = [s.table for s in j.stages if s.table in ("filter", "mix")]
    assert order[0] == ("mix" if first == "native" else "filter")
    assert any("table handle" in n for s in j.stages for n in s.notes)
