"""Kernel differential tests: every scenario is built in namespaces, its packets are sent for
real, the kernel's behaviour is observed and compared with ``journey.engine.simulate`` run on a
snapshot that journey's own collector took of the same namespace.

A test fails when the kernel does not behave as the scenario expects (a harness or scenario
bug) or when the engine disagrees with the kernel on any compared field (disposition, egress,
final headers, rules hit, replies, conntrack state, receiving socket). Failures print a readable
diff per packet. Agreement figures are attached to each report and summed up by
``tests/kernel/conftest.py``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

import pytest

import tests.kernel
from tests.kernel.harness import Scenario, run_scenario
from tests.kernel.observe import FIELDS, Observed, applicable, check_expect, compare, interpret
from tests.kernel.scenarios import SCENARIOS as BASE_SCENARIOS
from tests.kernelutil import require_kernel

pytestmark = pytest.mark.kernel


def _all_scenarios() -> list[Scenario]:
    """scenarios.py, then every ``scenarios_*.py`` module beside it (each with a SCENARIOS list)."""
    out = list(BASE_SCENARIOS)
    for mod in sorted(m.name for m in pkgutil.iter_modules(tests.kernel.__path__)):
        if mod.startswith("scenarios_"):
            out += importlib.import_module(f"tests.kernel.{mod}").SCENARIOS
    names = [s.name for s in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise RuntimeError(f"duplicate scenario names: {sorted(dupes)}")
    return out


SCENARIOS = _all_scenarios()

TOOLS = ("ip", "nft", "iptables-restore", "ip6tables-restore", "iptables-save", "conntrack",
         "stdbuf")


def _engine() -> tuple[Any, str | None]:
    try:
        from journey.engine.simulate import simulate
    except ImportError as e:
        return None, f"engine unavailable: {e}"
    return simulate, None


def _describe_engine(j: Any) -> str:
    v = j.verdict
    parts = [f"{v.disposition} ({v.code})"]
    if v.egress:
        parts.append(f"egress={v.egress}")
    rp = [f"{r.kind}" + (f" {r.type}/{r.code}" if r.type is not None else "") for r in v.replies]
    if rp:
        parts.append("replies=" + ",".join(rp))
    if j.rules_hit:
        parts.append("rules=" + " ".join(
            (f"{r.backend}:" if r.backend != "nft" else "") + f"{r.table}/{r.chain}#{r.index}"
            for r in j.rules_hit))
    if j.conntrack is not None:
        parts.append(f"ct={j.conntrack.state}")
    p = v.packet
    if p is not None:
        parts.append(f"final=src={p.src} dst={p.dst} sport={p.sport} dport={p.dport} ttl={p.ttl} "
                     f"tos={p.tos:#x} mark={p.mark:#x}")
    if j.uncertain:
        parts.append("UNCERTAIN")
    return " ".join(parts)


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(sc: Scenario, request: pytest.FixtureRequest) -> None:
    require_kernel(*TOOLS, *sc.tools)
    lab, raws = run_scenario(sc)
    observed: list[Observed] = [interpret(r, lab) for r in raws]
    simulate, why = _engine()
    if simulate is not None and lab.snapshot is None:
        why = lab.snapshot_error or "no snapshot"
    lines: list[str] = []
    failed = False
    stats: dict[str, Any] = {"scenario": sc.name, "packets": len(raws), "agree": 0,
                             "fields": {f: [0, 0] for f in FIELDS}, "engine": why is None}
    flows: tuple[Any, ...] = ()
    for raw, obs in zip(raws, observed, strict=True):
        head = f"#{raw.index + 1} {raw.send.spec}"
        block = [f"  kernel: {obs.summary()}"]
        problems = [f"harness: {c}" for c in obs.checks]
        problems += [f"kernel vs expected: {b}" for b in check_expect(obs, raw.send.expect)]
        if why is None:
            try:
                j = simulate(lab.snapshot, raw.packet, flows=flows, spec=raw.send.spec)
            except Exception as e:  # an engine crash is a disagreement, reported as such
                problems.append(f"engine raised {type(e).__name__}: {e}")
                j = None
            if j is not None:
                flows = j.flows
                block.append(f"  engine: {_describe_engine(j)}")
                mism = compare(obs, j)
                fields = applicable(obs, j)
                for f in fields:
                    stats["fields"][f][1] += 1
                    if not any(m.field.split(".")[0] == f for m in mism):
                        stats["fields"][f][0] += 1
                if not mism:
                    stats["agree"] += 1
                flag = " [engine marked this journey uncertain]" if mism and j.uncertain else ""
                problems += [f"MISMATCH {m.text()}{flag}" for m in mism]
        if problems:
            failed = True
            lines.append(head)
            lines += block
            lines += [f"    {p}" for p in problems]
            if obs.notes:
                lines.append(f"    notes: {'; '.join(obs.notes)}")
            if obs.snmp:
                interesting = {k: v for k, v in obs.snmp.items()
                               if not k.endswith(("InReceives", "InDelivers", "OutRequests",
                                                  "InSegs", "OutSegs", "InOctets", "OutOctets",
                                                  "InPkts", "OutPkts", "InMsgs", "OutMsgs"))}
                if interesting:
                    lines.append(f"    snmp: {interesting}")
    request.node.user_properties.append(("kd_agreement", json.dumps(stats)))
    if why is not None:
        request.node.user_properties.append(("kd_engine", why))
    if failed:
        pytest.fail(f"scenario {sc.name}: {sc.description}\n" + "\n".join(lines), pytrace=False)
