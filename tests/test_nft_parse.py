"""nft -j parser, model and nft-text rendering (pure; real ``nft -j`` outputs in tests/data/nft)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journey.errors import RuleParseError
from journey.model.nft import JMap
from journey.model.nft_text import chain_header, rule_text
from journey.snapshot.nft_json import parse_nft_json

DATA = Path(__file__).parent / "data" / "nft"


def _ks_text_rules() -> list[str]:
    """Rule lines of ``nft list ruleset`` for ks.json (the kernel's own rendering)."""
    out = []
    for line in (DATA / "ks.txt").read_text().splitlines():
        s = line.strip()
        if not s or (s.startswith(("table ", "chain ", "set ", "map ", "type ", "flags ", "elements",
                                  "}", "counter ", "quota ", "limit ", "ct ", "timeout", "size",
                                  "packets", "rate", "l3proto", "policy", "protocol", "\"", "10.",
                                  "2001", "fd00", "over ")) and not s.startswith(("ct state", "ct mark",
                                  "ct original", "ct direction", "ct status", "ct zone", "ct helper set",
                                  "counter packets", "counter name", "quota name", "limit name"))):
            continue
        out.append(s)
    return out


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.json")))
def test_real_dumps_parse(name: str) -> None:
    rs = parse_nft_json((DATA / name).read_text(), source=name)
    assert rs.json_schema_version == 1
    assert rs.tables
    for t in rs.tables:
        for c in t.chains:
            for i, r in enumerate(c.rules, 1):
                assert r.index == i and r.handle is not None and r.text


def test_model_contents() -> None:
    rs = parse_nft_json((DATA / "ks.json").read_text())
    t = rs.table("inet", "ks")
    assert t is not None
    inp = t.chain("input")
    assert inp is not None and inp.base and inp.hook == "input" and inp.priority == 10
    assert inp.policy == "drop" and chain_header(inp).startswith("type filter hook input priority filter + 10")
    blk = t.set("blk")
    assert blk is not None and blk.interval and blk.timeout == 3600
    assert blk.elements[0].timeout == 1800
    pairs = t.set("pairs")
    assert pairs is not None and pairs.type == ("ipv4_addr", "inet_service")
    pm = t.set("portmap")
    assert pm is not None and pm.is_map and pm.map_type == ("ipv4_addr", "inet_service")
    vm = t.set("vm")
    assert vm is not None and vm.is_vmap and isinstance(vm.elements[1].data, JMap)
    assert {o.kind for o in t.objects} == {"counter", "quota", "limit", "ct helper", "ct timeout"}
    nd = rs.table("netdev", "nd")
    assert nd is not None and nd.chains[0].hook == "ingress" and nd.chains[0].devices == ()


def test_rule_text_matches_nft_list_ruleset() -> None:
    """Every rule renders like ``nft list ruleset`` prints it (a few known spellings differ)."""
    rs = parse_nft_json((DATA / "ks.json").read_text())
    kernel = set(_ks_text_rules())
    ours = [r.text for t in rs.tables for c in t.chains for r in c.rules]
    known = {"tcp flags & (syn | ack) == syn counter packets 0 bytes 0"}  # nft: "syn / syn,ack"
    same = [x for x in ours if x in kernel or x in known]
    assert len(same) >= len(ours) - 3, sorted(set(ours) - kernel - known)


def test_schema_version_refused() -> None:
    text = json.dumps({"nftables": [{"metainfo": {"version": "9", "json_schema_version": 2}}]})
    with pytest.raises(RuleParseError) as e:
        parse_nft_json(text, source="x.json")
    assert "nftables[0].metainfo.json_schema_version" in e.value.text()
    assert "x.json" in e.value.text()


@pytest.mark.parametrize("obj, path", [
    ({"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"accept": None}, 5]}},
     "nftables[1].rule.expr[1]"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c", "expr": {"accept": None}}},
     "nftables[1].rule.expr"),
    ({"chain": {"family": "ip", "table": "t", "name": "c", "hook": "input", "prio": "x"}},
     "nftables[1].chain.prio"),
    ({"table": {"family": "ipx", "name": "t"}}, "nftables[1].table.family"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c",
               "expr": [{"match": {"op": "~", "left": 1, "right": 2}}]}},
     "nftables[1].rule.expr[0].match.op"),
    ({"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"jump": {}}]}},
     "nftables[1].rule.expr[0].jump.target"),
    ({"map": {"family": "ip", "table": "t", "name": "m", "type": "ipv4_addr", "map": "mark",
              "elem": ["1.2.3.4"]}}, "nftables[1].map.elem[0]"),
])
def test_errors_name_the_json_path(obj: dict[str, object], path: str) -> None:
    text = json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, obj]})
    with pytest.raises(RuleParseError) as e:
        parse_nft_json(text, source="dump.json")
    assert e.value.field == path


def test_not_json() -> None:
    with pytest.raises(RuleParseError):
        parse_nft_json("{nope", source="f")


def test_command_form_and_render() -> None:
    text = json.dumps({"nftables": [
        {"add": {"table": {"family": "inet", "name": "t"}}},
        {"add": {"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter",
                           "hook": "input", "prio": 0, "policy": "accept"}}},
        {"add": {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                       "right": 22}}, {"weird": {"x": 1}}, {"accept": None}]}}}]})
    rs = parse_nft_json(text)
    r = rs.tables[0].chains[0].rules[0]
    assert rule_text(r) == 'tcp dport 22 {"weird":{"x":1}} accept'
