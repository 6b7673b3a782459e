"""``journey show``: a readable summary of a snapshot as rich renderables.

Sections: provenance; interfaces and addresses; routing tables (every table, both families);
policy rules; neighbours; listening sockets with their processes; conntrack; the ruleset overview
per iptables dump (family/backend -> table -> chain with policy and rule count) and the native
nftables tables from the raw ``nft -j`` JSON; key sysctls; what is missing and why.

Uses rich (no textual); reads model values only and does no I/O except through the Console the
caller passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from journey.errors import JourneyError
from journey.model.family import Family
from journey.model.snapshot import (
    RT_TABLE_DEFAULT,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    HostSnapshot,
    PartState,
    Route,
    Socket,
    table_name,
)
from journey.snapshot.textparsers import NftTableSummary, summarize_nft_json, summarize_nft_text

PROTO_NAMES = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "icmpv6",
               132: "sctp"}


def _heading(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _table(*columns: str) -> Table:
    t = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _row(t: Table, *cells: str) -> None:
    """Add a row of plain text (never rich markup: names and addresses may hold brackets)."""
    t.add_row(*(Text(c) for c in cells))


def provenance_section(snap: HostSnapshot) -> RenderableType:
    p = snap.provenance
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    _row(t, "host", p.hostname)
    _row(t, "kernel", p.kernel)
    _row(t, "taken", p.time)
    _row(t, "origin", p.origin + (f" (netns {p.netns})" if p.netns else ""))
    _row(t, "uid", "unknown" if p.uid is None else str(p.uid))
    _row(t, "journey", p.journey_version)
    return Group(Text("Snapshot", style="bold underline"), t)


def interfaces_section(snap: HostSnapshot) -> RenderableType:
    t = _table("#", "interface", "kind", "state", "mtu", "mac", "master", "addresses")
    for i in sorted(snap.interfaces, key=lambda i: i.index):
        addrs = [f"{a.address}/{a.prefixlen}" + (f" ({','.join(a.flags)})" if "secondary" in a.flags else "")
                 for a in snap.addresses if a.ifindex == i.index or (a.ifname == i.name and a.ifindex == 0)]
        state = i.operstate if i.is_up else "DOWN"
        _row(t, str(i.index), i.name, i.kind or "-", state, str(i.mtu), i.mac or "-",
                  i.master or "-", "\n".join(addrs) or "-")
    if not snap.interfaces and snap.addresses:
        for a in snap.addresses:
            _row(t, str(a.ifindex), a.ifname, "-", "-", "-", "-", "-", f"{a.address}/{a.prefixlen}")
    return Group(_heading(f"Interfaces ({len(snap.interfaces)}) and addresses "
                          f"({len(snap.addresses)})"), t)


def _table_order(table: int) -> tuple[int, int]:
    if table == RT_TABLE_MAIN:
        return (0, 0)
    if table == RT_TABLE_DEFAULT:
        return (2, 0)
    if table == RT_TABLE_LOCAL:
        return (3, 0)
    return (1, table)


def _route_row(r: Route) -> list[str]:
    via = str(r.gateway) if r.gateway is not None else ""
    if r.nexthops:
        via = "\n".join(f"{nh.gateway or '-'} dev {nh.dev or '-'} weight {nh.weight}"
                        for nh in r.nexthops)
    default = "::/0" if r.family is Family.IPV6 else "0.0.0.0/0"
    dst = "default" if str(r.dst) == default else str(r.dst)
    return [str(r.type) if r.type != "unicast" else "", dst, via or "-", r.dev or "-",
            r.protocol, r.scope, str(r.prefsrc) if r.prefsrc else "-", str(r.metric)]


def routes_section(snap: HostSnapshot) -> RenderableType:
    parts: list[RenderableType] = [_heading(f"Routing tables ({len(snap.routes)} routes)")]
    for fam in (Family.IPV4, Family.IPV6):
        tables = sorted({r.table for r in snap.routes if r.family is fam}, key=_table_order)
        for tid in tables:
            routes = [r for r in snap.routes if r.family is fam and r.table == tid]
            label = "IPv4" if fam is Family.IPV4 else "IPv6"
            parts.append(Text(f"{label} table {table_name(tid)}"
                              f"{'' if table_name(tid) == str(tid) else f' ({tid})'}: "
                              f"{len(routes)} routes", style="bold"))
            t = _table("type", "destination", "via", "dev", "proto", "scope", "src", "metric")
            for r in routes:
                _row(t, *_route_row(r))
            parts.append(t)
    if not snap.routes:
        parts.append(Text("no routes in this snapshot"))
    return Group(*parts)


def rules_section(snap: HostSnapshot) -> RenderableType:
    parts: list[RenderableType] = [_heading(f"Policy rules ({len(snap.rules)})")]
    for fam in (Family.IPV4, Family.IPV6):
        rules = sorted((r for r in snap.rules if r.family is fam), key=lambda r: r.priority)
        if not rules:
            continue
        parts.append(Text("IPv4" if fam is Family.IPV4 else "IPv6", style="bold"))
        for r in rules:
            parts.append(Text("  " + r.text()))
    if not snap.rules:
        parts.append(Text("no policy rules in this snapshot"))
    return Group(*parts)


def neighbours_section(snap: HostSnapshot) -> RenderableType:
    t = _table("address", "dev", "lladdr", "state")
    for n in snap.neighbours:
        _row(t, str(n.address), n.ifname, n.lladdr or "-",
                  ",".join(n.state) + (" router" if n.router else ""))
    return Group(_heading(f"Neighbours ({len(snap.neighbours)})"), t)


def _endpoint(addr: object, port: int | None, dev: str | None = None) -> str:
    a = str(addr)
    if ":" in a:
        a = f"[{a}]"
    if dev:
        a += f"%{dev}"
    return f"{a}:{'*' if port is None else port}"


def _is_listening(s: Socket) -> bool:
    return s.state == "LISTEN" or (s.proto == "udp" and s.state in ("UNCONN", "CLOSE"))


def sockets_section(snap: HostSnapshot) -> RenderableType:
    listening = [s for s in snap.sockets if _is_listening(s)]
    others = len(snap.sockets) - len(listening)
    t = _table("proto", "local", "v6only", "process")
    for s in sorted(listening, key=lambda s: (s.proto, s.local_port)):
        procs = ", ".join(f"{p.name} (pid {p.pid})" for p in s.processes) or "-"
        _row(t, s.proto, _endpoint(s.local, s.local_port, s.bound_dev),
                  "-" if s.v6only is None else ("yes" if s.v6only else "no"), procs)
    return Group(_heading(f"Listening sockets ({len(listening)}; {others} other sockets)"), t)


def conntrack_section(snap: HostSnapshot) -> RenderableType:
    counts: dict[str, int] = {}
    for e in snap.conntrack:
        key = PROTO_NAMES.get(e.proto, str(e.proto))
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none"
    return Group(_heading(f"Conntrack entries ({len(snap.conntrack)})"), Text(summary))


def _nft_summaries(snap: HostSnapshot) -> tuple[str, tuple[NftTableSummary, ...]] | None:
    raw = snap.raw_dump("nft -j list ruleset")
    try:
        if raw is not None:
            return raw.source, summarize_nft_json(raw.text, raw.source)
        raw = snap.raw_dump("nft list ruleset")
        if raw is not None:
            return raw.source, summarize_nft_text(raw.text, raw.source)
    except JourneyError:
        return None
    return None


def ruleset_section(snap: HostSnapshot) -> RenderableType:
    parts: list[RenderableType] = [_heading("Rulesets")]
    ipt_tables: set[tuple[str, str]] = set()
    for d in snap.iptables:
        fam = "ip" if d.family is Family.IPV4 else "ip6"
        tree = Tree(Text(f"{d.family.value} {d.backend.value}: {d.rule_count} rules "
                         f"(from {d.source})", style="bold"))
        if not d.tables and d.text.strip():
            tree.add(Text("not parsed: only the raw text is kept", style="yellow"))
        for t in d.tables:
            ipt_tables.add((fam, t.name))
            tb = tree.add(Text(f"table {t.name}: {t.rule_count} rules"))
            for c in t.chains:
                policy = f"policy {c.policy}" if c.policy is not None else "user chain"
                tb.add(Text(f"{c.name} ({policy}): {len(c.rules)} rules"))
        parts.append(tree)
    if not snap.iptables:
        parts.append(Text("no iptables dumps in this snapshot"))
    nft = _nft_summaries(snap)
    if nft is not None:
        source, summaries = nft
        tree = Tree(Text(f"nftables: {len(summaries)} tables (from {source})", style="bold"))
        for s in summaries:
            note = " [iptables-nft, see above]" if (s.family, s.name) in ipt_tables else ""
            tb = tree.add(Text(f"table {s.family} {s.name}: {s.chains} chains, {s.rules} rules, "
                               f"{s.sets} sets{note}"))
            for b in s.base_chains:
                tb.add(Text(b))
        parts.append(tree)
    elif snap.raw_dump("nft -j list ruleset") or snap.raw_dump("nft list ruleset"):
        parts.append(Text("nftables: raw dump present but not readable", style="yellow"))
    return Group(*parts)


KEY_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.conf.all.accept_local",
    "net.netfilter.nf_conntrack_tcp_loose",
)


def _sysctl_rows(snap: HostSnapshot) -> Iterator[tuple[str, str]]:
    for key in KEY_SYSCTLS:
        yield key, snap.sysctl(key, "(not in snapshot)") or ""
    for iface in sorted(snap.interfaces, key=lambda i: i.index):
        for knob in ("rp_filter", "route_localnet", "accept_local"):
            key = f"net.ipv4.conf.{iface.name}.{knob}"
            value = snap.sysctl(key)
            if value is not None and (knob == "rp_filter" or value != "0"):
                yield key, value


def sysctl_section(snap: HostSnapshot) -> RenderableType:
    t = _table("sysctl", "value")
    for k, v in _sysctl_rows(snap):
        _row(t, k, v)
    note = Text("rp_filter in use on an interface is max(conf.all, conf.IF)", style="dim")
    return Group(_heading(f"Key sysctls ({len(snap.sysctls)} in snapshot)"), t, note)


def missing_section(snap: HostSnapshot) -> RenderableType:
    missing = snap.provenance.missing()
    parts: list[RenderableType] = [_heading(f"Missing or partial parts ({len(missing)})")]
    for p in missing:
        style = "red" if p.state is PartState.MISSING else "yellow"
        parts.append(Text(f"  {p.name}: {p.state.value}: {p.reason or 'no reason recorded'}",
                          style=style))
    if not missing:
        parts.append(Text("  none: every part was collected"))
    return Group(*parts)


def show_renderables(snap: HostSnapshot) -> Sequence[RenderableType]:
    """Every section of ``journey show``, in order."""
    return (
        provenance_section(snap),
        interfaces_section(snap),
        routes_section(snap),
        rules_section(snap),
        neighbours_section(snap),
        sockets_section(snap),
        conntrack_section(snap),
        ruleset_section(snap),
        sysctl_section(snap),
        missing_section(snap),
    )


def print_show(snap: HostSnapshot, console: Console) -> None:
    for r in show_renderables(snap):
        console.print(r)
