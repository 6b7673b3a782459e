"""``journey trace --format markdown``: the same content as the text cards, as Markdown.

One section per packet: a stage table (phase, stage, type, result, decision), one subsection
per stage with configuration, changes, rules and notes, then the verdict. Pure: no textual,
no rich, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from journey.model.journey import Journey, Stage
from journey.model.snapshot import Provenance
from journey.packets.spec import format_spec
from journey.render.text import _detail_lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _stage(n: int, s: Stage) -> list[str]:
    out = [f"### Phase {n}: {s.name}", ""]
    kind = str(s.kind) + (f", hook {s.hook}" if s.hook else "")
    if s.priority is not None:
        kind += f", priority {s.priority}"
    out.append(f"- **Type:** {kind}")
    out.append(f"- **Result:** {s.result}" + (" (uncertain)" if s.uncertain else ""))
    if s.functions:
        out.append("- **Kernel:** " + ", ".join(_code(f) for f in s.functions))
    out.append(f"- **What:** {s.summary}")
    out.append(f"- **Decision:** {s.decision}")
    if s.config:
        out.append("- **Config:**")
        out += [f"  - {_code(c.text)}" + (f" ({c.where})" if c.where else "") for c in s.config]
    if s.changes:
        out.append("- **Changes:**")
        out += [f"  - {c.field}: {_code(c.old)} → {_code(c.new)}" for c in s.changes]
    if s.rules:
        out += ["", "| | rule | text | outcome |", "|---|---|---|---|"]
        for r in s.rules:
            outcome = (r.target or "match") if r.matched else (
                f"no match: {r.failed_condition}" if r.failed_condition else "no match")
            if r.uncertain:
                outcome += " (uncertain)"
            out.append(f"| {'✓' if r.matched else '✗'} | {r.table}/{r.chain} #{r.index} | "
                       f"{_code(_cell(r.text))} | {_cell(outcome)} |")
    info = _detail_lines(s.detail) + list(s.notes)
    if info:
        out += ["", "Additional info:", ""]
        out += [f"- {_cell(line)}" for line in info]
    out.append("")
    return out


def render_journey_md(j: Journey) -> str:
    spec = j.spec or format_spec(j.packet)
    out = [f"## {_code(spec)}", ""]
    out += ["| # | stage | type | result | decision |", "|---|---|---|---|---|"]
    for n, s in enumerate(j.stages, 1):
        out.append(f"| {n} | {_cell(s.name)} | {s.kind} | {s.result} | {_cell(s.decision)} |")
    out.append("")
    for n, s in enumerate(j.stages, 1):
        out += _stage(n, s)
    v = j.verdict
    out += ["### Verdict", ""]
    out.append(f"**{str(v.disposition).upper()}** (code {_code(v.code)})"
               + (" — uncertain" if j.uncertain else ""))
    out.append("")
    out.append(f"- **Reason:** {v.reason}")
    out.append(f"- **Decided at:** {v.stage}")
    if v.egress:
        out.append(f"- **Egress:** {v.egress}")
    if v.socket is not None:
        out.append(f"- **Socket:** {v.socket.proto} {v.socket.addr}:{v.socket.port}"
                   + (f", process {v.socket.process}" if v.socket.process else "")
                   + (f" (pid {v.socket.pid})" if v.socket.pid is not None else ""))
    if v.packet is not None:
        out.append(f"- **Final packet:** {_code(format_spec(v.packet))}")
    for r in v.replies:
        what = r.kind + (f" type {r.type} code {r.code}" if r.type is not None else "")
        out.append(f"- **Reply:** {what} {r.src} → {r.dst}" + (f": {r.reason}" if r.reason else ""))
    if v.hint:
        out.append(f"- **Hint:** {v.hint}")
    if j.conntrack is not None:
        ct = j.conntrack
        out.append(f"- **Conntrack:** {ct.state}" + (f", {ct.orig}" if ct.orig else "")
                   + (f", reply {ct.reply}" if ct.reply else "") + (f", {ct.nat}" if ct.nat else ""))
    if j.rules_hit:
        out.append("- **Rules hit:** " + ", ".join(f"{r.table}/{r.chain} #{r.index}"
                                                   for r in j.rules_hit))
    out.append("")
    return "\n".join(out)


def render_markdown(journeys: Sequence[Journey], provenance: Provenance | None = None) -> str:
    out = ["# journey trace", ""]
    if provenance is not None:
        p = provenance
        out.append(f"Snapshot of **{p.hostname}** (kernel {p.kernel}), taken {p.time}, "
                   f"origin {p.origin}" + (f", netns {p.netns}" if p.netns else "") + ".")
        missing = p.missing()
        if missing:
            out.append("")
            out.append("Missing from the snapshot: " + ", ".join(
                f"{m.name} ({m.reason or m.state})" for m in missing) + ".")
        out.append("")
    for j in journeys:
        out.append(render_journey_md(j))
    return "\n".join(out).rstrip("\n") + "\n"
