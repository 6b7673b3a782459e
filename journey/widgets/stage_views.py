"""The Journey screen's panels: stage rail marks, stage card, packet panel, context panel.

Each panel is a ``Static`` fed a rich renderable built by a pure function of model values, so
the screen can precompute every stage once and step instantly. Marks and highlights use
symbols and bold/reverse as well as colour, so the screen reads the same under NO_COLOR.
Depends on textual, rich and the model only.
"""

from __future__ import annotations

import re

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from journey.model.family import Family
from journey.model.journey import (
    ConntrackDetail,
    Journey,
    NeighbourDetail,
    RoutingDetail,
    RuleEval,
    SocketDetail,
    Stage,
    StageKind,
    StageResult,
)
from journey.model.packet import Packet, proto_name
from journey.model.snapshot import HostSnapshot
from journey.widgets.nft_rules import NativeRules

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


HOOK_SHORT = {"prerouting": "PRE", "input": "IN", "forward": "FWD", "output": "OUT",
              "postrouting": "POST", "ingress": "ingress", "egress": "egress"}
"""Short hook names for the stage rail (the card keeps the full name)."""

_BACKEND_OF_LABEL = {"iptables-nft": "nft", "iptables-legacy": "legacy", "nft": "native",
                     "nft netdev": "native"}
_BACKEND_SHORT = {"nft": "ipt", "legacy": "leg", "native": "nft"}


def stage_backend(stage: Stage) -> str | None:
    """The ruleset a netfilter stage walked: "nft" (iptables-nft), "legacy" or "native" (nft)."""
    if stage.rules:
        return stage.rules[0].backend
    m = re.search(r"\(([^()]*)\)$", stage.name)
    if m is not None:
        return _BACKEND_OF_LABEL.get(m.group(1))
    return None


def _base_short(stage: Stage) -> str:
    if stage.kind is StageKind.NETFILTER and stage.hook:
        hook = HOOK_SHORT.get(stage.hook.lower(), stage.hook)
        table = stage.table or "hook"
        if "conntrack NAT" in stage.name:
            table = "ct NAT"
        return f"{hook} {table}"
    if stage.kind is StageKind.TC and "·" in stage.name:  # nft netdev ingress chain
        hook, _, rest = stage.name.partition("·")
        return f"{hook.strip()} {rest.split('(')[0].strip()}"
    return stage.name


def rail_names(journey: Journey) -> list[str]:
    """Compact one-line stage names for the rail ("PRE mangle", "FWD filter", "input routing").

    The backend (iptables-nft, legacy, nft table) is in the card; it is added here as a short
    suffix only when two stages would otherwise read the same (e.g. filter in iptables-nft and in
    iptables-legacy, or an nft table named like an iptables one)."""
    base = [_base_short(s) for s in journey.stages]
    names = list(base)
    for i, s in enumerate(journey.stages):
        if base.count(base[i]) < 2:
            continue
        backend = stage_backend(s)
        suffix = _BACKEND_SHORT.get(backend or "", "")
        same = [j for j, b in enumerate(base) if b == base[i]
                and _BACKEND_SHORT.get(stage_backend(journey.stages[j]) or "", "") == suffix]
        if len(same) > 1 and s.priority is not None:
            suffix = f"{suffix} {s.priority}".strip()
        names[i] = f"{base[i]} ·{suffix}" if suffix else base[i]
    return names


def rail_label(stage: Stage, n: int, name: str | None = None) -> Text:
    symbol, style = mark(stage)
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f"{symbol} ", style=style)
    t.append(f"{n:>2} ", style="dim")
    t.append(name or stage.name, style="bold" if stage.result is StageResult.DROPPED else "")
    return t


class StageRail(OptionList):
    """Every stage of the journey in order, one line each, with its mark; the highlighted one
    is shown (the list scrolls to keep it visible)."""

    def set_journey(self, journey: Journey) -> None:
        self.clear_options()
        names = rail_names(journey)
        self.add_options(
            [Option(rail_label(s, i + 1, names[i]), id=f"stage-{i}")
             for i, s in enumerate(journey.stages)]
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


def hang(marker: str, body: Text, style: str = "") -> Table:
    """``marker`` then ``body``, wrapped lines indented under the body (a hanging indent)."""
    t = Table.grid()
    t.add_column(no_wrap=True, width=len(marker), style=style)
    t.add_column()
    t.add_row(marker, body)
    return t


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
    parts.append(hang("→ ", Text(s.decision, style=style if s.result is not StageResult.PASSED else "bold"),
                      "bold"))
    for c in s.config:
        line = Text(c.text, style="cyan")
        if c.where:
            line.append(f"   ({c.where})", style="dim")
        parts.append(hang("  ⚙ ", line, "cyan"))
    if s.functions:
        parts.append(hang("  kernel: ", Text(" → ".join(s.functions)), "dim italic"))
    for n in s.notes:
        parts.append(hang("  note: ", Text(n, style="italic"), "italic"))
    if s.uncertain:
        parts.append(hang("  ? ", Text("uncertain: the engine cannot model this stage exactly"),
                          "magenta"))
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


def render_context(stage: Stage, snapshot: HostSnapshot | None, max_rules: int = 400,
                   nft: NativeRules | None = None) -> RenderableType:
    """The context of a stage: its chain, routing walk, conntrack entry, sockets or neighbour.

    ``nft`` (the parsed native ruleset) lists the whole chain of a native nft stage; without
    it the rules the engine evaluated are shown."""
    d = stage.detail
    if stage.kind is StageKind.NETFILTER:
        return _netfilter_context(stage, snapshot, max_rules, nft)
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
        g = Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True, width=1)
        g.add_column()
        for c in d.candidates:
            line = Text(c.text, style="bold reverse" if c.chosen else "")
            line.append(f"  {c.reason}", style="dim")
            g.add_row(Text("▶" if c.chosen else " ", style="bold green"), line)
        if d.candidates:
            lines.append(g)
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
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    for k, v in (("route", d.route), ("table", None if d.table is None else str(d.table)),
                 ("type", d.route_type), ("next hop", d.nexthop), ("source", d.source),
                 ("out dev", d.oif)):
        if v:
            t.add_row(k, Text(v, style="bold" if k == "route" else ""))
    if t.row_count:
        parts.append(t)
    if d.rules:
        parts.append(Text("policy rules walked:", style="bold"))
        g = Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True, width=1)
        g.add_column()
        for r in d.rules:
            line = Text(r.text, style="bold" if r.matched else "")
            line.append(f"  {r.reason}", style="dim italic")
            g.add_row(Text("▶" if r.matched else " ", style="bold green"), line)
        parts.append(g)
    if d.candidates:
        parts.append(Text("candidate routes:", style="bold"))
        g = Table.grid(padding=(0, 1))
        g.add_column(no_wrap=True, width=1)
        g.add_column()
        for c in d.candidates:
            line = Text(c.text, style="bold reverse" if c.chosen else "")
            line.append(f"  [table {c.table}] {c.reason}", style="dim")
            g.add_row(Text("▶" if c.chosen else " ", style="bold green"), line)
        parts.append(g)
    return Group(*parts)


def _netfilter_context(stage: Stage, snapshot: HostSnapshot | None, max_rules: int,
                       nft: NativeRules | None = None) -> RenderableType:
    """The chain with every rule: evaluated ones with their failed condition and counters."""
    if stage.table is None and not stage.rules:  # a hook with no base chain registered
        return Text(f"No iptables table or nft chain is registered on the "
                    f"{(stage.hook or '').upper()} hook: the packet passes it unchanged.")
    backend = stage_backend(stage)
    chain_name = stage.rules[0].chain if stage.rules else (stage.hook or "").upper()
    native = backend == "native"
    if native:
        chain_rules, policy, chain_name, where = _native_chain(stage, nft, chain_name)
    else:
        chain_rules, policy = _iptables_chain(snapshot, stage, backend, chain_name)
        where = {"nft": "iptables-nft", "legacy": "iptables-legacy"}.get(backend or "", "")
    table_name = f"{stage.family} {stage.table}" if native and stage.family else (stage.table or "?")
    header = Text(f"{table_name} / {chain_name}", style="bold underline")
    if where:
        header.append(f"  ({where})", style="dim")
    if policy:
        header.append(f"   policy {policy}", style="bold")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=3)  # mark
    grid.add_column(no_wrap=True, justify="right")  # index
    grid.add_column()  # rule text, failed condition, note
    evaluated = {(r.chain, r.index): r for r in stage.rules}
    shown = 0
    more: Text | None = None
    for idx, text, counters in chain_rules:
        if shown >= max_rules:
            more = Text(f"… {len(chain_rules) - shown} more rules (4: rules browser)", style="dim")
            break
        _rule_row(grid, idx, text, counters, evaluated.pop((chain_name, idx), None))
        shown += 1
    # rules of other (user) chains the walk entered, and anything not found in the snapshot
    for ev in stage.rules:
        if (ev.chain, ev.index) not in evaluated:
            continue
        if shown >= max_rules:
            more = Text(f"… {len(stage.rules) - shown} more evaluated rules", style="dim")
            break
        text = ev.text + (f"  # handle {ev.handle}" if native and ev.handle is not None else "")
        _rule_row(grid, ev.index, text, None if native else ev.counters, ev, chain=ev.chain)
        shown += 1
    parts: list[RenderableType] = [header]
    if shown:
        parts.append(grid)
    if more is not None:
        parts.append(more)
    if not stage.rules and not chain_rules:
        parts.append(Text("(no rules in this chain)", style="dim"))
    return Group(*parts)


def _rule_row(grid: Table, idx: int, text: str, counters: str | None, ev: RuleEval | None,
              chain: str | None = None) -> None:
    if ev is None:
        sign = Text("", style="dim")
    elif ev.matched:
        sign = Text("▶ ✓", style="bold green")
    elif ev.uncertain:
        sign = Text("  ?", style="magenta")
    else:
        sign = Text("  ✗", style="red")
    body = Text()
    if chain:
        body.append(f"{chain}: ", style="dim")
    matched = ev is not None and ev.matched
    body.append(text, style="bold reverse" if matched else ("" if ev is not None else "dim"))
    if counters:
        body.append(f" {counters}", style="dim")
    if ev is not None:
        if ev.failed_condition and not ev.matched:
            body.append(f"\nfailed: {ev.failed_condition}", style="italic")
        if ev.note:
            body.append(f"\nnote: {ev.note}", style="magenta italic")
    grid.add_row(sign, Text(str(idx), style="dim"), body)


def _iptables_chain(snapshot: HostSnapshot | None, stage: Stage, backend: str | None,
                    chain: str) -> tuple[list[tuple[int, str, str | None]], str | None]:
    """The chain's rules and policy from the iptables dump the stage walked."""
    if snapshot is None or stage.table is None:
        return [], None
    fam = {"ip": Family.IPV4, "ip6": Family.IPV6}.get(stage.family or "")
    dumps = [d for d in snapshot.iptables
             if (fam is None or d.family is fam) and (backend is None or str(d.backend) == backend)]
    for dump in dumps or list(snapshot.iptables):
        t = dump.table(stage.table)
        c = t.chain(chain) if t else None
        if c is not None:
            rules = [(r.index, r.text,
                      None if r.counters is None else f"[{r.counters.packets}:{r.counters.bytes}]")
                     for r in c.rules]
            return rules, c.policy
    return [], None


def _native_chain(stage: Stage, nft: NativeRules | None, chain: str
                  ) -> tuple[list[tuple[int, str, str | None]], str | None, str, str]:
    """The native nft chain's rules (nft syntax, with handles), policy, name and hook text."""
    where = f"nft, hook {stage.hook or '?'}"
    if stage.priority is not None:
        where += f" prio {stage.priority}"
    c = None if nft is None else nft.base_chain(stage.family, stage.table, stage.hook,
                                                stage.priority, stage.rules[0].chain if stage.rules else None)
    if c is None:
        return [], None, chain if stage.rules else "?", where
    rules: list[tuple[int, str, str | None]] = [  # nft text already holds its counters
        (r.index, r.text + (f"  # handle {r.handle}" if r.handle is not None else ""), None)
        for r in c.rules]
    return rules, c.policy, c.name, where


class StageCard(Static):
    """What happens at the stage and what was decided (and the verdict on the last stage)."""


class PacketPanel(Static):
    """The packet's headers after the stage, changed fields old -> new."""


class ContextPanel(Static):
    """The stage's context: netfilter chain, routing walk, conntrack, socket or neighbour."""
