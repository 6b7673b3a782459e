"""Rules browser: every iptables table, chain and rule of the snapshot, searchable with ``/``.

Chains are listed in a tree (added when a table is expanded, so 60k-rule snapshots open
quickly); the selected chain's rules fill the table. A search lists matching rules of every
chain (the first 2000)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree

from journey.model.ruleset import Chain, IptablesDump, Table
from journey.model.snapshot import HostSnapshot

MAX_RESULTS = 2000


@dataclass(frozen=True, slots=True)
class _Node:
    dump: IptablesDump
    table: Table
    chain: Chain | None = None


def _counters(c: object) -> str:
    if c is None:
        return ""
    return f"[{c.packets}:{c.bytes}]"  # type: ignore[attr-defined]


class RulesScreen(Screen[None]):
    """All tables, chains and rules (mode ``rules``)."""

    AUTO_FOCUS = "#rules-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="search", tooltip="Search every rule"),
        Binding("escape", "clear_search", "Clear", show=False, id="clear-search", tooltip="Clear the search"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ search rules (words must all appear)", id="rule-search", compact=True)
        with Horizontal(id="rules-main"):
            yield Tree("rulesets", id="chains")
            with Vertical(id="rules-right"):
                yield Static("", id="rules-title")
                yield DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rules-table", DataTable)
        table.add_columns("#", "rule", "counters")
        self.watch(self.app, "snapshot", self._on_snapshot)

    def _on_snapshot(self, snap: HostSnapshot | None) -> None:
        tree: Tree[_Node | None] = self.query_one("#chains", Tree)
        tree.clear()
        tree.root.expand()
        if snap is None:
            return
        for dump in snap.iptables:
            label = f"{dump.family} {dump.backend} ({dump.rule_count} rules)"
            dnode = tree.root.add(label, expand=True)
            for tab in dump.tables:
                tnode = dnode.add(f"{tab.name} ({tab.rule_count})", data=_Node(dump, tab))
                if len(tab.chains) <= 200:
                    self._add_chains(tnode, dump, tab)
                else:
                    tnode.allow_expand = True
        if snap.raw_dump("nft -j list ruleset") is not None:
            tree.root.add_leaf("native nft ruleset (not browsable yet)")
        if snap.iptables and snap.iptables[0].tables:
            d = snap.iptables[0]
            t = d.table("filter") or d.tables[0]
            if t.chains:
                self.show_chain(_Node(d, t, t.chains[0]))

    def _add_chains(self, tnode: object, dump: IptablesDump, tab: Table) -> None:
        for c in tab.chains:
            pol = f" {c.policy}" if c.policy else ""
            tnode.add_leaf(f"{c.name}{pol} ({len(c.rules)})", data=_Node(dump, tab, c))  # type: ignore[attr-defined]

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[_Node | None]) -> None:
        data = event.node.data
        if data is not None and data.chain is None and not event.node.children:
            self._add_chains(event.node, data.dump, data.table)

    def on_tree_node_selected(self, event: Tree.NodeSelected[_Node | None]) -> None:
        data = event.node.data
        if data is not None and data.chain is not None:
            self.show_chain(data)

    def show_chain(self, node: _Node, cursor: int = 0) -> None:
        chain = node.chain
        assert chain is not None
        title = f"{node.dump.family} {node.dump.backend}  {node.table.name} / {chain.name}"
        if chain.policy:
            title += f"  policy {chain.policy} {_counters(chain.counters)}"
        self.query_one("#rules-title", Static).update(title)
        table = self.query_one("#rules-table", DataTable)
        table.clear()
        for r in chain.rules:
            table.add_row(str(r.index), r.text, _counters(r.counters))
        if not chain.rules:
            table.add_row("", "(no rules)", "")
        if cursor:
            table.move_cursor(row=cursor - 1)

    def select_rule(self, table: str, chain: str, index: int) -> None:
        """Show ``table/chain`` with the cursor on rule ``index`` (1-based)."""
        snap: HostSnapshot | None = self.app.snapshot  # type: ignore[attr-defined]
        if snap is None:
            return
        for dump in snap.iptables:
            t = dump.table(table)
            c = t.chain(chain) if t else None
            if t is not None and c is not None:
                self.show_chain(_Node(dump, t, c), cursor=index)
                self.query_one("#rules-table").focus()
                return
        self.app.notify(f"{table}/{chain} is not in the snapshot's iptables rules", severity="warning")

    def action_search(self) -> None:
        self.query_one("#rule-search", Input).focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#rule-search", Input)
        if box.value:
            box.value = ""
        self.query_one("#rules-table").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "rule-search":
            self.search(event.value)

    def search(self, text: str) -> None:
        words = text.lower().split()
        if not words:
            return
        snap: HostSnapshot | None = self.app.snapshot  # type: ignore[attr-defined]
        if snap is None:
            return
        table = self.query_one("#rules-table", DataTable)
        table.clear()
        found = 0
        for dump in snap.iptables:
            for tab in dump.tables:
                for c in tab.chains:
                    for r in c.rules:
                        low = r.text.lower()
                        if all(w in low for w in words):
                            found += 1
                            if found <= MAX_RESULTS:
                                table.add_row(f"{tab.name}/{c.name} #{r.index}", r.text, _counters(r.counters))
        more = f" (showing {MAX_RESULTS})" if found > MAX_RESULTS else ""
        self.query_one("#rules-title", Static).update(f"search {text!r}: {found} rules{more}")
