"""The Journey screen's panels: stage rail marks, stage card, packet panel, context panel.

Each panel is a ``Static`` fed a rich renderable built by a pure function of model values, so
the screen can precompute every stage once and step instantly. Marks and highlights use
symbols and bold/reverse as well as colour, so the screen reads the same under NO_COLOR.
Depends on textual, rich and the model only.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from journey.model.journey import (
    ConntrackDetail,
    Journey,
    NeighbourDetail,
    RoutingDetail,
    SocketDetail,
    Stage,
    StageKind,
    StageResult,
)
from journey.model.packet import Packet, proto_name
from journey.model.snapshot import HostSnapshot

MARKS: dict[StageResult, tuple[str, str]] = {
    StageResult.PASSED: ("✓", "green"),
    StageResult.CHANGED: ("~", "yellow"),
    StageResult.DROPPED: ("✗", "bold red"),
    StageResult.DELIVERED: ("✓", "bold green"),
    StageResult.UNCERTAIN: ("?", "magenta"),
    StageResult.SKIPPED: ("-", "dim"),
}


def mark(stage: Stage) -> tuple[str, str]:
    """The rail mark and style of a stage (an uncertain stage shows ``?`` whatever its result)."""
    if stage.uncertain and stage.result not in (StageResult.DROPPED, StageResult.SKIPPED):
        return MARKS[StageResult.UNCERTAIN]
    return MARKS[stage.result]


def rail_label(stage: Stage, n: int) -> Text:
    symbol, style = mark(stage)
    t = Text()
    t.append(f"{symbol} ", style=style)
    t.append(f"{n:>2} ", style="dim")
    t.append(stage.name, style="bold" if stage.result is StageResult.DROPPED else "")
    return t


class StageRail(OptionList):
    """Every stage of the journey in order, with its mark; the highlighted one is shown."""

    def set_journey(self, journey: Journey) -> None:
        self.clear_options()
        self.add_options(
            [Option(rail_label(s, i + 1), id=f"stage-{i}") for i, s in enumerate(journey.stages)]
        )


def packet_line(p: Packet) -> str:
    """A one-line, tcpdump-like view of a packet."""
    def ep(addr: object, port: int | None) -> str:
        a = "?" if addr is None else str(addr)
        if port is None:
            return a
        return f"[{a}]:{port}" if ":" in a else f"{a}:{port}"

    out = f"{proto_name(p.proto)} {ep(p.src, p.sport)} > {ep(p.dst, p.dport)}"
    if p.proto == 6 and p.tcp_flags:
        out += f" [{p.tcp_flags}]"
    if p.icmp_type is not None:
        out += f" type {p.icmp_type}/{p.icmp_code or 0}"
    return out


def render_card(journey: Journey, index: int) -> RenderableType:
    """The stage card: what happens here, what was decided, config lines, kernel functions."""
    s = journey.stages[index]
    symbol, style = mark(s)
    title = Text()
    title.append(f"{symbol} ", style=style)
    title.append(f"Stage {index + 1}/{len(journey.stages)}: ", style="dim")
    title.append(s.name, style="bold")
    where = " ".join(x for x in (s.family, s.table, s.hook) if x)
    if s.priority is not None:
        where += f" prio {s.priority}"
    parts: list[RenderableType] = [title]
    if where:
        parts.append(Text(f"  {where} [{s.kind}]", style="dim"))
    parts.append(Text(s.summary))
    d = Text("→ ", style="bold")
    d.append(s.decision, style=style if s.result is not StageResult.PASSED else "bold")
    parts.append(d)
    for c in s.config:
        line = Text("  ⚙ ", style="cyan")
        line.append(c.text, style="cyan")
        if c.where:
            line.append(f"   ({c.where})", style="dim")
        parts.append(line)
    if s.functions:
        parts.append(Text("  kernel: " + " → ".join(s.functions), style="dim italic"))
    for n in s.notes:
        parts.append(Text(f"  note: {n}", style="italic"))
    if s.uncertain:
        parts.append(Text("  ? uncertain: the engine cannot model this stage exactly", style="magenta"))
    if index == len(journey.stages) - 1:
        parts.append(render_verdict(journey))
    return Group(*parts)


def render_verdict(journey: Journey) -> RenderableType:
    v = journey.verdict
    bad = v.disposition in ("dropped", "rejected")
    t = Text()
    t.append("\nVERDICT ", style="bold reverse red" if bad else "bold reverse green")
    t.append(f" {v.disposition.upper()} ", style="bold")
    t.append(f"[{v.code}] ", style="bold")
    t.append(v.reason)
    if v.uncertain:
        t.append("  (uncertain)", style="magenta")
    lines: list[RenderableType] = [t]
    if v.hint:
        lines.append(Text(f"hint: {v.hint}", style="italic"))
    if v.socket is not None:
        sk = v.socket
        who = f" {sk.process} (pid {sk.pid})" if sk.process else ""
        lines.append(Text(f"socket: {sk.proto} {sk.addr}:{sk.port}{who}"))
    if v.egress:
        lines.append(Text(f"egress: {v.egress}"))
    for r in v.replies:
        lines.append(Text(f"reply: {r.kind} {r.src} → {r.dst}  {r.reason}  (press r to follow)",
                          style="yellow"))
    return Group(*lines)


_PACKET_FIELDS = ("iif", "local", "uid", "src", "sport", "dst", "dport", "tcp_flags", "icmp_type",
                  "icmp_code", "icmp_id", "ttl", "tos", "mark", "length", "df", "frag_offset",
                  "more_fragments", "vlan", "src_mac", "dst_mac")


def render_packet(journey: Journey, index: int) -> RenderableType:
    """The packet after this stage, with the fields this stage changed shown old -> new."""
    s = journey.stages[index]
    before = journey.stages[index - 1].packet if index > 0 else journey.packet
    after = s.packet
    changed = {name: (str(old), str(new)) for name, old, new in before.diff(after)}
    for c in s.changes:
        changed.setdefault(c.field, (c.old, c.new))
    head = Text("packet ", style="dim")
    head.append(packet_line(after), style="bold")
    parts: list[RenderableType] = [head]
    if changed:
        line = Text("changed ", style="bold yellow")
        for n, (name, (old, new)) in enumerate(changed.items()):
            if n:
                line.append(", ")
            line.append(f"{name} ", style="bold")
            line.append(old, style="strike")
            line.append(" → ")
            line.append(new, style="bold yellow")
        parts.append(line)
    rest = Text("", style="")
    for name in _PACKET_FIELDS:
        val = getattr(after, name)
        if name in changed or val in (None, False, "") or (val == 0 and name not in ("ttl",)):
            continue
        if rest:
            rest.append("  ")
        rest.append(f"{name}=", style="dim")
        rest.append(hex(val) if name in ("mark", "tos") else str(val))
    parts.append(rest)
    return Group(*parts)


def render_context(stage: Stage, snapshot: HostSnapshot | None, max_rules: int = 400) -> RenderableType:
    """The context of a stage: its chain, routing walk, conntrack entry, sockets or neighbour."""
    d = stage.detail
    if stage.kind is StageKind.NETFILTER:
        return _netfilter_context(stage, snapshot, max_rules)
    if isinstance(d, RoutingDetail):
        return _routing_context(d)
    if isinstance(d, ConntrackDetail):
        t = Table.grid(padding=(0, 1))
        t.add_column(style="dim")
        t.add_column()
        for k, v in (("state", d.state), ("direction", d.direction), ("original", d.orig),
                     ("reply", d.reply), ("NAT", d.nat), ("entry", d.source)):
            if v:
                t.add_row(k, v)
        return Group(Text("Connection tracking", style="bold underline"), t)
    if isinstance(d, SocketDetail):
        lines: list[RenderableType] = [Text("Socket lookup", style="bold underline")]
        for c in d.candidates:
            line = Text("▶ " if c.chosen else "  ", style="bold green" if c.chosen else "")
            line.append(c.text, style="bold reverse" if c.chosen else "")
            line.append(f"  {c.reason}", style="dim")
            lines.append(line)
        if d.winner:
            who = f"  process {d.process} (pid {d.pid})" if d.process else ""
            lines.append(Text(f"winner: {d.winner}{who}", style="bold"))
        elif not d.candidates:
            lines.append(Text("no socket candidates"))
        return Group(*lines)
    if isinstance(d, NeighbourDetail):
        t = Table.grid(padding=(0, 1))
        t.add_column(style="dim")
        t.add_column()
        t.add_row("next hop", f"{d.nexthop} dev {d.dev}")
        t.add_row("entry", d.entry or "none in the snapshot (the kernel would resolve it)")
        if d.state:
            t.add_row("state", d.state)
        if d.lladdr:
            t.add_row("lladdr", d.lladdr)
        return Group(Text("Neighbour", style="bold underline"), t)
    return Text("No further context for this stage.", style="dim")


def _routing_context(d: RoutingDetail) -> RenderableType:
    parts: list[RenderableType] = [Text(f"Routing ({d.direction})", style="bold underline")]
    if d.rules:
        parts.append(Text("policy rules walked:", style="bold"))
        for r in d.rules:
            line = Text("▶ " if r.matched else "  ", style="green")
            line.append(r.text, style="bold" if r.matched else "dim")
            line.append(f"  {r.reason}", style="dim italic")
            parts.append(line)
    if d.candidates:
        parts.append(Text("candidate routes:", style="bold"))
        for c in d.candidates:
            line = Text("▶ " if c.chosen else "  ", style="bold green")
            line.append(c.text, style="bold reverse" if c.chosen else "")
            line.append(f"  [table {c.table}] {c.reason}", style="dim")
            parts.append(line)
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim")
    t.add_column()
    for k, v in (("table", None if d.table is None else str(d.table)), ("route", d.route),
                 ("type", d.route_type), ("next hop", d.nexthop), ("source", d.source),
                 ("out dev", d.oif)):
        if v:
            t.add_row(k, v)
    parts.append(t)
    return Group(*parts)


def _netfilter_context(stage: Stage, snapshot: HostSnapshot | None, max_rules: int) -> RenderableType:
    """The chain with every rule: evaluated ones with their failed condition and counters."""
    parts: list[RenderableType] = []
    chain_name = stage.rules[0].chain if stage.rules else (stage.hook or "").upper()
    header = Text(f"{stage.table or '?'} / {chain_name}", style="bold underline")
    policy = _policy(snapshot, stage.table, chain_name)
    if policy:
        header.append(f"   policy {policy}", style="bold")
    parts.append(header)
    evaluated = {(r.chain, r.index): r for r in stage.rules}
    chain_rules = _chain_rules(snapshot, stage.table, chain_name)
    shown = 0
    if chain_rules:
        for idx, text, counters in chain_rules:
            if shown >= max_rules:
                parts.append(Text(f"… {len(chain_rules) - shown} more rules (4: rules browser)", style="dim"))
                break
            parts.append(_rule_line(idx, text, counters, evaluated.pop((chain_name, idx), None)))
            shown += 1
    # rules of other (user) chains the walk entered, and anything not found in the snapshot
    for ev in stage.rules:
        if (ev.chain, ev.index) not in evaluated:
            continue
        if shown >= max_rules:
            parts.append(Text(f"… {len(stage.rules) - shown} more evaluated rules", style="dim"))
            break
        parts.append(_rule_line(ev.index, ev.text, ev.counters, ev, chain=ev.chain))
        shown += 1
    if not stage.rules and not chain_rules:
        parts.append(Text("(no rules in this chain)", style="dim"))
    return Group(*parts)


def _rule_line(idx: int, text: str, counters: str | None, ev: object, chain: str | None = None) -> Text:
    from journey.model.journey import RuleEval

    line = Text()
    if isinstance(ev, RuleEval):
        if ev.matched:
            line.append("▶ ✓ ", style="bold green")
        elif ev.uncertain:
            line.append("  ? ", style="magenta")
        else:
            line.append("  ✗ ", style="red")
    else:
        line.append("    ", style="dim")
    line.append(f"{idx:>3} ", style="dim")
    if chain:
        line.append(f"{chain}: ", style="dim")
    matched = isinstance(ev, RuleEval) and ev.matched
    line.append(text, style="bold reverse" if matched else ("" if isinstance(ev, RuleEval) else "dim"))
    if counters:
        line.append(f" {counters}", style="dim")
    if isinstance(ev, RuleEval):
        if ev.failed_condition and not ev.matched:
            line.append(f"\n        failed: {ev.failed_condition}", style="italic")
        if ev.note:
            line.append(f"\n        note: {ev.note}", style="magenta italic")
    return line


def _chain_rules(snapshot: HostSnapshot | None, table: str | None,
                 chain: str) -> list[tuple[int, str, str | None]]:
    if snapshot is None or table is None:
        return []
    for dump in snapshot.iptables:
        t = dump.table(table)
        c = t.chain(chain) if t else None
        if c is not None and c.rules:
            return [(r.index, r.text,
                     None if r.counters is None else f"[{r.counters.packets}:{r.counters.bytes}]")
                    for r in c.rules]
    return []


def _policy(snapshot: HostSnapshot | None, table: str | None, chain: str) -> str | None:
    if snapshot is None or table is None:
        return None
    for dump in snapshot.iptables:
        t = dump.table(table)
        c = t.chain(chain) if t else None
        if c is not None:
            return c.policy
    return None


class StageCard(Static):
    """What happens at the stage and what was decided (and the verdict on the last stage)."""


class PacketPanel(Static):
    """The packet's headers after the stage, changed fields old -> new."""


class ContextPanel(Static):
    """The stage's context: netfilter chain, routing walk, conntrack, socket or neighbour."""
