"""``journey trace`` text output: one card per stage (packet-tracer style), then the verdict.

Each card: ``Phase N: name``, its type, result, the kernel functions, what the stage does,
what it decided, the configuration lines behind the decision, the packet fields it changed,
the rules evaluated (matched or why not), and additional notes. Colour (plain ANSI SGR) only
when asked for; the caller decides (TTY and NO_COLOR unset).

Pure: no textual, no rich, no I/O; returns text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from journey.model.journey import (
    ConntrackDetail,
    Journey,
    NeighbourDetail,
    RoutingDetail,
    SocketDetail,
    Stage,
    StageDetail,
    StageResult,
)
from journey.model.snapshot import Provenance
from journey.packets.spec import format_spec

_SGR = {
    StageResult.PASSED: "32",
    StageResult.CHANGED: "36",
    StageResult.DROPPED: "31;1",
    StageResult.DELIVERED: "32;1",
    StageResult.UNCERTAIN: "33",
    StageResult.SKIPPED: "2",
}
WIDTH = 100
_DISP_SGR = {"delivered": "32;1", "forwarded": "32;1", "sent": "32;1", "dropped": "31;1",
             "rejected": "31;1", "uncertain": "33;1"}


class _Out:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[str] = []

    def c(self, text: str, sgr: str) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if self.color else text

    def add(self, line: str = "") -> None:
        self.lines.append(line.rstrip())

    def para(self, label: str, text: str) -> None:
        """``label text`` wrapped at WIDTH columns, continuation lines indented."""
        self.lines += textwrap.wrap(f"{label} {text}", WIDTH, subsequent_indent="  ",
                                    break_long_words=False, break_on_hyphens=False) or [label]


def _detail_lines(detail: StageDetail | None) -> list[str]:
    out: list[str] = []
    if isinstance(detail, RoutingDetail):
        for r in detail.rules:
            out.append(f"{'+' if r.matched else '-'} rule {r.text}: {r.reason}")
        for cand in detail.candidates:
            out.append(f"{'*' if cand.chosen else ' '} route {cand.text}: {cand.reason}")
        if detail.route:
            extra = f" (table {detail.table})" if detail.table is not None else ""
            out.append(f"chosen route: {detail.route}{extra}")
        if detail.source:
            out.append(f"source address: {detail.source}")
    elif isinstance(detail, ConntrackDetail):
        out.append(f"state: {detail.state}" + (f" ({detail.direction})" if detail.direction else ""))
        if detail.orig:
            out.append(f"original: {detail.orig}")
        if detail.reply:
            out.append(f"reply:    {detail.reply}")
        if detail.nat:
            out.append(f"nat: {detail.nat}")
        if detail.source:
            out.append(f"entry: {detail.source}")
    elif isinstance(detail, SocketDetail):
        for sc in detail.candidates:
            out.append(f"{'*' if sc.chosen else ' '} {sc.text}: {sc.reason}")
    elif isinstance(detail, NeighbourDetail):
        out.append(f"next hop {detail.nexthop} dev {detail.dev}: "
                   + (detail.entry or "no entry in the neighbour table"))
    return out


def _stage(o: _Out, n: int, s: Stage) -> None:
    o.add(o.c(f"Phase {n}: {s.name}", "1"))
    kind = str(s.kind)
    if s.hook:
        kind += f" (hook {s.hook}" + (f", priority {s.priority}" if s.priority is not None else "") + ")"
    o.add(f"Type: {kind}")
    result = str(s.result).upper() + (" (uncertain)" if s.uncertain and s.result is not StageResult.UNCERTAIN else "")
    o.add(f"Result: {o.c(result, _SGR[s.result])}")
    if s.functions:
        o.add(f"Kernel: {', '.join(s.functions)}")
    o.para("What:", s.summary)
    o.para("Decision:", s.decision)
    if s.config:
        o.add("Config:")
        for cfg in s.config:
            o.add(f"  {cfg.text}" + (f"    [{cfg.where}]" if cfg.where else ""))
    if s.changes:
        o.add("Changes:")
        for ch in s.changes:
            o.add(f"  {ch.field}: {ch.old} -> {ch.new}")
    if s.rules:
        o.add("Rules:")
        for r in s.rules:
            mark = "+" if r.matched else "-"
            where = f"{r.table}/{r.chain} #{r.index}"
            line = f"  {mark} {where}  {r.text}"
            if r.matched and r.target:
                line += f"  => {r.target}"
            elif not r.matched and r.failed_condition:
                line += f"  (no match: {r.failed_condition})"
            if r.uncertain:
                line += "  [uncertain]"
            o.add(line)
            if r.note:
                o.add(f"      note: {r.note}")
    info = _detail_lines(s.detail) + list(s.notes)
    if info:
        o.add("Additional info:")
        for line in info:
            o.add(f"  {line}")
    o.add()


def render_journey(j: Journey, *, color: bool = False) -> str:
    """One journey as phase cards followed by the verdict."""
    o = _Out(color)
    o.add(o.c(f"Packet: {j.spec or format_spec(j.packet)}", "1"))
    o.add()
    for n, s in enumerate(j.stages, 1):
        _stage(o, n, s)
    v = j.verdict
    o.add(o.c("Verdict", "1"))
    disp = str(v.disposition)
    o.add(f"Result: {o.c(disp.upper(), _DISP_SGR.get(disp, '1'))}  code {v.code}"
          + ("  (uncertain)" if j.uncertain else ""))
    o.para("Reason:", v.reason)
    o.add(f"Decided at: {v.stage}")
    if v.egress:
        o.add(f"Egress: {v.egress}")
    if v.socket is not None:
        proc = f" process {v.socket.process}" if v.socket.process else ""
        pid = f" (pid {v.socket.pid})" if v.socket.pid is not None else ""
        addr = f"[{v.socket.addr}]" if ":" in v.socket.addr else v.socket.addr
        o.add(f"Socket: {v.socket.proto} {addr}:{v.socket.port}{proc}{pid}")
    if v.packet is not None:
        o.add(f"Final packet: {format_spec(v.packet)}")
    for r in v.replies:
        what = r.kind + (f" type {r.type} code {r.code}" if r.type is not None else "")
        o.add(f"Reply: {what} {r.src} > {r.dst}" + (f" ({r.reason})" if r.reason else ""))
        if r.packet is not None:
            o.add(f"  follow with: {format_spec(r.packet)}")
    if v.hint:
        o.add(f"Hint: {v.hint}")
    if j.conntrack is not None:
        ct = j.conntrack
        o.add(f"Conntrack: {ct.state}" + (f" {ct.orig}" if ct.orig else "")
              + (f" | reply {ct.reply}" if ct.reply else "") + (f" | {ct.nat}" if ct.nat else ""))
    if j.rules_hit:
        o.add("Rules hit: " + ", ".join(f"{r.table}/{r.chain} #{r.index}" for r in j.rules_hit))
    return "\n".join(o.lines) + "\n"


def render_header(provenance: Provenance | None) -> str:
    if provenance is None:
        return ""
    p = provenance
    line = f"Snapshot: {p.hostname} (kernel {p.kernel}), taken {p.time}, origin {p.origin}"
    if p.netns:
        line += f", netns {p.netns}"
    lines = [line]
    missing = p.missing()
    if missing:
        lines.append("Missing from the snapshot: " + ", ".join(
            f"{m.name} ({m.reason or m.state})" for m in missing))
    return "\n".join(lines) + "\n"


def render_text(journeys: Sequence[Journey], provenance: Provenance | None = None, *,
                color: bool = False) -> str:
    """All journeys of a trace, separated by a rule line."""
    parts = [render_header(provenance)] if provenance is not None else []
    sep = "-" * 72 + "\n"
    body = sep.join(render_journey(j, color=color) for j in journeys)
    if parts:
        parts.append("\n")
    return "".join(parts) + body
