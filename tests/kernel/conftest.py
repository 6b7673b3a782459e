"""Agreement figures for the kernel differential suite.

Each test attaches ``kd_agreement`` (JSON) to its report. This plugin sums them up at the end of
the run (packets agreeing / packets total, and per field) and prints them in the terminal
summary. It writes ``tests/kernel/last-agreement.txt`` only when ``JOURNEY_KD_SUMMARY`` is set
(to ``1`` for that path, or to another path). Under pytest-xdist the controller sees this
conftest when the run starts at ``tests/kernel`` (``pytest tests/kernel -n 2``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_RESULTS: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "kd_agreement":
            data = json.loads(str(value))
            data["outcome"] = report.outcome
            _RESULTS[data["scenario"]] = data


def summary_lines() -> list[str]:
    if not _RESULTS:
        return []
    runs = [r for r in _RESULTS.values() if r.get("engine")]
    total = sum(r["packets"] for r in runs)
    agree = sum(r["agree"] for r in runs)
    out = [f"kernel differential: {len(_RESULTS)} scenarios, "
           f"{sum(r['packets'] for r in _RESULTS.values())} packets"]
    if not runs:
        out.append("engine not run (unavailable): kernel expectations only")
        return out
    out.append(f"agreement: {agree}/{total} packets "
               f"({100.0 * agree / total:.1f}%) over {len(runs)} scenarios")
    fields: dict[str, list[int]] = {}
    for r in runs:
        for f, (a, t) in r["fields"].items():
            acc = fields.setdefault(f, [0, 0])
            acc[0] += a
            acc[1] += t
    for f, (a, t) in fields.items():
        if t:
            out.append(f"  {f:12} {a}/{t}")
    bad = sorted(r["scenario"] for r in runs if r["agree"] < r["packets"])
    if bad:
        out.append("scenarios with disagreements: " + ", ".join(bad))
    return out


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = summary_lines()
    if not lines:
        return
    terminalreporter.section("kernel differential agreement")
    for ln in lines:
        terminalreporter.write_line(ln)
    target = os.environ.get("JOURNEY_KD_SUMMARY")
    if target:
        path = Path(__file__).with_name("last-agreement.txt") if target == "1" else Path(target)
        path.write_text("\n".join(lines) + "\n")
