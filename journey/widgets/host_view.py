"""Host screen widgets: tables of the snapshot's interfaces, routes, rules, sockets, rulesets.

Pure views of a ``HostSnapshot`` (model only; no engine). Depends on textual and rich.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable

from journey.model.snapshot import HostSnapshot, PartState, table_name

# sysctls that change what happens to a packet (substring of the key)
FATE_SYSCTLS = (
    "ip_forward", ".forwarding", "rp_filter", "accept_local", "route_localnet", "src_valid_mark",
    "icmp_echo_ignore", "bridge-nf-call", "accept_source_route", "arp_ignore", "arp_filter",
    "disable_ipv6", "fwmark_reflect", "fwmark_accept", "ip_nonlocal_bind", "l3mdev_accept",
    "send_redirects", "accept_redirects", "ip_early_demux", "tcp_syncookies", "nf_conntrack_tcp_loose",
)


def fate_sysctls(snap: HostSnapshot) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in snap.sysctls.items() if any(s in k for s in FATE_SYSCTLS))


def render_overview(snap: HostSnapshot, source: str) -> RenderableType:
    """Provenance, counts, the sysctls that matter, and what the snapshot is missing."""
    p = snap.provenance
    head = Table.grid(padding=(0, 1))
    head.add_column(style="dim")
    head.add_column()
    head.add_row("host", Text(p.hostname, style="bold"))
    head.add_row("source", source)
    head.add_row("kernel", p.kernel)
    head.add_row("taken", f"{p.time} by uid {p.uid} ({p.origin})" + (f", netns {p.netns}" if p.netns else ""))
    rules = sum(d.rule_count for d in snap.iptables)
    head.add_row("holds", f"{len(snap.interfaces)} interfaces, {len(snap.addresses)} addresses, "
                          f"{len(snap.routes)} routes, {len(snap.rules)} policy rules, "
                          f"{len(snap.sockets)} sockets, {len(snap.conntrack)} conntrack entries, "
                          f"{rules} iptables rules")
    parts: list[RenderableType] = [head, Text("")]
    missing = p.missing()
    parts.append(Text("Missing from this snapshot" if missing else "Nothing missing from this snapshot",
                      style="bold underline"))
    for m in missing:
        t = Text()
        t.append("  ✗ " if m.state is PartState.MISSING else "  ~ ", style="red" if m.state is PartState.MISSING else "yellow")
        t.append(f"{m.name} ({m.state})", style="bold")
        if m.reason:
            t.append(f": {m.reason}")
        parts.append(t)
    parts.append(Text(""))
    fate = fate_sysctls(snap)
    parts.append(Text("Sysctls that change packet fate", style="bold underline"))
    if not fate:
        parts.append(Text("  (none collected)", style="dim"))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="cyan")
    grid.add_column()
    for k, v in fate:
        grid.add_row("  " + k, v)
    parts.append(grid)
    return Group(*parts)


def fill_interfaces(t: DataTable[str | Text], snap: HostSnapshot) -> None:
    t.clear(columns=True)
    t.add_columns("#", "name", "state", "kind", "mtu", "addresses", "mac")
    for i in snap.interfaces:
        addrs = " ".join(f"{a.address}/{a.prefixlen}" for a in snap.addresses_of(i.name))
        t.add_row(str(i.index), Text(i.name), i.operstate if i.is_up else "DOWN", i.kind or "",
                  str(i.mtu), Text(addrs), i.mac or "", key=i.name)


def fill_routes(t: DataTable[str | Text], snap: HostSnapshot) -> None:
    t.clear(columns=True)
    t.add_columns("table", "route")
    for n, r in enumerate(sorted(snap.routes, key=lambda r: (r.family, r.table != 254, r.table, -r.dst.prefixlen))):
        t.add_row(table_name(r.table), Text(r.text()), key=f"route-{n}")


def fill_policy(t: DataTable[str | Text], snap: HostSnapshot) -> None:
    t.clear(columns=True)
    t.add_columns("family", "rule")
    for n, r in enumerate(sorted(snap.rules, key=lambda r: (r.family, r.priority))):
        t.add_row(str(r.family), Text(r.text()), key=f"rule-{n}")


def fill_sockets(t: DataTable[str | Text], snap: HostSnapshot) -> None:
    t.clear(columns=True)
    t.add_columns("proto", "state", "local", "process", "uid")
    for n, s in enumerate(snap.sockets):
        local = f"[{s.local}]:{s.local_port}" if ":" in str(s.local) else f"{s.local}:{s.local_port}"
        if s.bound_dev:
            local += f"%{s.bound_dev}"
        procs = ",".join(f"{p.name}({p.pid})" for p in s.processes)
        # plain Text: "[fe80::1]:22" or a process name must not be read as markup
        t.add_row(s.proto, s.state, Text(local), Text(procs), "" if s.uid is None else str(s.uid),
                  key=f"sock-{n}")


def fill_rulesets(t: DataTable[str | Text], snap: HostSnapshot, max_user_chains: int = 200) -> None:
    """One row per chain (built-in chains always; user chains unless a table has too many)."""
    t.clear(columns=True)
    t.add_columns("family", "backend", "table", "chain", "policy", "rules")
    for d in snap.iptables:
        for tab in d.tables:
            user = [c for c in tab.chains if not c.builtin]
            for c in tab.chains:
                if c.builtin or len(user) <= max_user_chains:
                    t.add_row(str(d.family), str(d.backend), Text(tab.name), Text(c.name), c.policy or "-",
                              str(len(c.rules)), key=f"{d.family}/{d.backend}/{tab.name}/{c.name}")
            if len(user) > max_user_chains:
                rules = sum(len(c.rules) for c in user)
                t.add_row(str(d.family), str(d.backend), tab.name, f"({len(user)} user chains)",
                          "-", str(rules), key=f"{d.family}/{d.backend}/{tab.name}/*")
    nft = snap.raw_dump("nft -j list ruleset")
    if nft is not None:
        t.add_row("inet", "native", "(nft ruleset)", "-", "-", "see rules browser", key="nft")
