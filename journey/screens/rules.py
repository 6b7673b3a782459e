"""Rules browser: every iptables table, chain and rule of the snapshot, and the native nftables
tables (in nft syntax, with handles), searchable with ``/``.

Chains are listed in a tree (added when a table is expanded, so 60k-rule snapshots open
quickly); the selected chain's rules fill the table and the highlighted rule is shown whole
below it. Tables iptables-nft made appear once, from iptables-save, and are marked in the nft
ruleset. The nft dump is parsed in a thread worker. A search lists matching rules of every
chain (the first 2000)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree
from textual.widgets.tree import TreeNode

from journey.model.ruleset import Chain, IptablesDump, Table
from journey.model.snapshot import HostSnapshot
from journey.widgets.nft_rules import NFT_DUMP, NativeRules, counters_text

MAX_RESULTS = 2000
BACKEND_NAME = {"nft": "iptables-nft", "legacy": "iptables-legacy"}


@dataclass(frozen=True, slots=True)
class _Node:
    dump: IptablesDump
    table: Table
    chain: Chain | None = None


@dataclass(frozen=True, slots=True)
class _NftNode:
    table: Any  # journey.model.nft.NftTable
    chain: Any = None  # journey.model.nft.NftChain | None


@dataclass(frozen=True, slots=True)
class _Row:
    """What the highlighted row of the rules table is, for the detail line."""

    where: str
    text: str
    counters: str = ""


def _counters(c: object) -> str:
    if c is None:
        return ""
    return f"[{c.packets}:{c.bytes}]"  # type: ignore[attr-defined]


def _dump_label(dump: IptablesDump) -> str:
    return f"{dump.family} {BACKEND_NAME.get(str(dump.backend), dump.backend)} ({dump.rule_count})"


def _nft_chain_label(c: Any) -> Text:
    t = Text(f"{c.name} ({len(c.rules)})")
    if c.hook is not None:
        pol = f" {c.policy}" if c.policy else ""
        t.append(f" {c.hook} {c.priority}{pol}", style="dim")
    return t


class RulesScreen(Screen[None]):
    """All tables, chains and rules (mode ``rules``)."""

    AUTO_FOCUS = "#rules-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search", id="search", tooltip="Search every rule"),
        Binding("escape", "clear_search", "Clear", show=False, id="clear-search", tooltip="Clear the search"),
        Binding("t", "focus_tree", "Tree", id="focus-tree", tooltip="Move to the table / chain tree"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[_Row] = []
        self._native: NativeRules | None = None
        self._nft_node: TreeNode[Any] | None = None
        self._pending: tuple[str, str, str, int, int | None] | None = None
        self._shown: _Node | _NftNode | None = None  # the chain shown when not searching

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ search rules (words must all appear)", id="rule-search", compact=True)
        with Horizontal(id="rules-main"):
            yield self._tree()
            with Vertical(id="rules-right"):
                yield Static("", id="rules-title")
                yield DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="rule-detail")
        yield Footer()

    @staticmethod
    def _tree() -> Tree[Any]:
        tree: Tree[Any] = Tree("rulesets", id="chains")
        tree.show_root = False
        return tree

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._on_snapshot)

    def _app(self) -> Any:
        return self.app

    # -- the tree ------------------------------------------------------------------------------
    def _on_snapshot(self, snap: HostSnapshot | None) -> None:
        tree: Tree[Any] = self.query_one("#chains", Tree)
        tree.clear()
        tree.root.expand()
        self._native = None
        self._nft_node = None
        self._shown = None
        if snap is None:
            return
        for dump in snap.iptables:
            dnode = tree.root.add(_dump_label(dump), expand=True)
            for tab in dump.tables:
                tnode = dnode.add(f"{tab.name} ({tab.rule_count})", data=_Node(dump, tab))
                if len(tab.chains) <= 200:
                    self._add_chains(tnode, dump, tab)
                else:
                    tnode.allow_expand = True
        if snap.raw_dump(NFT_DUMP) is not None:
            self._nft_node = tree.root.add("nft (reading…)", expand=True)
            self.load_native(snap)
        if snap.iptables and snap.iptables[0].tables:
            d = snap.iptables[0]
            t = d.table("filter") or d.tables[0]
            if t.chains:
                self.show_chain(_Node(d, t, t.chains[0]))

    @work(thread=True, exclusive=True, exit_on_error=False, group="nft-rules",
          description="read the nft ruleset")
    def load_native(self, snap: HostSnapshot) -> None:
        """Parse the native nft dump in a thread; the tree is filled on the UI thread."""
        from journey.widgets.nft_rules import native_rules

        try:
            native = native_rules(snap)
        except Exception as e:  # shown in the tree, the app keeps running
            from journey.app import error_text

            native = NativeRules(None, error=error_text(e))
        self.app.call_from_thread(self._show_native, snap, native)

    def _show_native(self, snap: HostSnapshot, native: NativeRules | None) -> None:
        node = self._nft_node
        if node is None or self._app().snapshot is not snap:
            return
        self._native = native
        if native is None or native.ruleset is None:
            why = native.error if native is not None and native.error else "empty"
            node.set_label(f"nft: {why}")
            return
        own = native.native_tables()
        node.set_label(f"nft ({len(own)} native table{'s' if len(own) != 1 else ''})")
        for t in native.ruleset.tables:
            if native.is_iptables_nft(t):
                node.add_leaf(Text(f"{t.family} {t.name}: iptables-nft", style="dim"))
                continue
            flags = f" [{','.join(t.flags)}]" if t.flags else ""
            tnode = node.add(f"{t.family} {t.name}{flags} ({t.rule_count})", data=_NftNode(t),
                             expand=len(t.chains) <= 50)
            for c in t.chains:
                tnode.add_leaf(_nft_chain_label(c), data=_NftNode(t, c))
        if not native.ruleset.tables:
            node.add_leaf(Text("(no tables)", style="dim"))
        if self._pending is not None:
            family, table, chain, index, handle = self._pending
            self._pending = None
            self.select_native(family, table, chain, index, handle)

    def _add_chains(self, tnode: Any, dump: IptablesDump, tab: Table) -> None:
        for c in tab.chains:
            pol = f" {c.policy}" if c.policy else ""
            tnode.add_leaf(f"{c.name}{pol} ({len(c.rules)})", data=_Node(dump, tab, c))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        data = event.node.data
        if isinstance(data, _Node) and data.chain is None and not event.node.children:
            self._add_chains(event.node, data.dump, data.table)

    def on_tree_node_selected(self, event: Tree.NodeSelected[Any]) -> None:
        data = event.node.data
        if isinstance(data, _Node) and data.chain is not None:
            self.show_chain(data)
        elif isinstance(data, _NftNode) and data.chain is not None:
            self.show_nft_chain(data)

    # -- the rules table -----------------------------------------------------------------------
    def _table(self, *columns: str) -> DataTable[Any]:
        table: DataTable[Any] = self.query_one("#rules-table", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)
        self._rows = []
        return table

    def show_chain(self, node: _Node, cursor: int = 0) -> None:
        chain = node.chain
        if chain is None:
            return
        self._shown = node
        title = f"{_dump_label(node.dump).rsplit(' (', 1)[0]}  {node.table.name} / {chain.name}"
        if chain.policy:
            title += f"  policy {chain.policy} {_counters(chain.counters)}"
        self.query_one("#rules-title", Static).update(Text(title))
        table = self._table("#", "rule", "counters")
        where = f"{node.table.name}/{chain.name}"
        for r in chain.rules:
            table.add_row(str(r.index), Text(r.text), _counters(r.counters))
            self._rows.append(_Row(f"{where} #{r.index} (line {r.line})", r.text, _counters(r.counters)))
        if not chain.rules:
            table.add_row("", "(no rules)", "")
        self._move(cursor)

    def show_nft_chain(self, node: _NftNode, cursor: int = 0) -> None:
        t, c = node.table, node.chain
        self._shown = node
        title = f"nft {t.family} {t.name} / {c.name}"
        if c.hook is not None:
            title += f"  type {c.type} hook {c.hook} priority {c.priority}"
            if c.policy:
                title += f" policy {c.policy}"
        self.query_one("#rules-title", Static).update(Text(title))
        table = self._table("#", "handle", "rule", "counters")
        for r in c.rules:
            cnt = counters_text(r.counters)
            table.add_row(str(r.index), "" if r.handle is None else str(r.handle), Text(r.text), cnt)
            handle = "" if r.handle is None else f" handle {r.handle}"
            self._rows.append(_Row(f"{t.family} {t.name}/{c.name} #{r.index}{handle}", r.text))
        if not c.rules:
            table.add_row("", "", "(no rules)", "")
        self._move(cursor)

    def _move(self, cursor: int) -> None:
        table = self.query_one("#rules-table", DataTable)
        if cursor:
            table.move_cursor(row=cursor - 1)
        self._show_detail(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "rules-table":
            self._show_detail(event.cursor_row)

    def _show_detail(self, row: int) -> None:
        box = self.query_one("#rule-detail", Static)
        if not 0 <= row < len(self._rows):
            box.update("")
            return
        r = self._rows[row]
        t = Text()
        t.append(r.where, style="dim")
        if r.counters:
            t.append(f"  {r.counters}", style="dim")
        t.append("\n")
        t.append(r.text, style="bold")
        box.update(t)

    # -- jumps from the journey ----------------------------------------------------------------
    def select_rule(self, table: str, chain: str, index: int, *, family: str | None = None,
                    backend: str | None = None) -> None:
        """Show ``table/chain`` (of that iptables dump) with the cursor on rule ``index``."""
        snap: HostSnapshot | None = self._app().snapshot
        if snap is None:
            return
        dumps = [d for d in snap.iptables
                 if (backend is None or str(d.backend) == backend)
                 and (family is None or d.family.value == {"ip": "ipv4", "ip6": "ipv6"}.get(family, family))]
        for dump in dumps or list(snap.iptables):
            t = dump.table(table)
            c = t.chain(chain) if t else None
            if t is not None and c is not None:
                self.show_chain(_Node(dump, t, c), cursor=index)
                self.query_one("#rules-table").focus()
                return
        self.app.notify(f"{table}/{chain} is not in the snapshot's iptables rules", severity="warning")

    def select_native(self, family: str, table: str, chain: str, index: int,
                      handle: int | None = None) -> None:
        """Show the native nft chain with the cursor on the rule (by handle, else position)."""
        native = self._native
        if native is None and self._nft_node is not None:
            self._pending = (family, table, chain, index, handle)  # shown once parsed
            return
        c = native.base_chain(family, table, None, None, chain) if native is not None else None
        t = native.table(family, table) if native is not None else None
        if c is None or t is None:
            self.app.notify(f"nft {family} {table} / {chain} is not in the snapshot's nft ruleset",
                            severity="warning")
            return
        pos = index
        if handle is not None:
            pos = next((r.index for r in c.rules if r.handle == handle), index)
        self.show_nft_chain(_NftNode(t, c), cursor=pos)
        self.query_one("#rules-table").focus()

    # -- search --------------------------------------------------------------------------------
    def action_search(self) -> None:
        self.query_one("#rule-search", Input).focus()

    def action_focus_tree(self) -> None:
        self.query_one("#chains").focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#rule-search", Input)
        if box.value:
            box.value = ""
        self.query_one("#rules-table").focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "rule-search":
            self.search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "rule-search":
            self.query_one("#rules-table").focus()

    def search(self, text: str) -> None:
        words = text.lower().split()
        if not words:  # search cleared: back to the chain shown before it
            shown = self._shown
            if isinstance(shown, _Node):
                self.show_chain(shown)
            elif isinstance(shown, _NftNode):
                self.show_nft_chain(shown)
            return
        snap: HostSnapshot | None = self._app().snapshot
        if snap is None:
            return
        table = self._table("where", "rule", "counters")
        found = 0

        def add(where: str, rule: str, counters: str) -> None:
            nonlocal found
            low = rule.lower()
            if all(w in low for w in words):
                found += 1
                if found <= MAX_RESULTS:
                    table.add_row(Text(where), Text(rule), counters)
                    self._rows.append(_Row(where, rule, counters))

        for dump in snap.iptables:
            for tab in dump.tables:
                for c in tab.chains:
                    for r in c.rules:
                        add(f"{tab.name}/{c.name} #{r.index}", r.text, _counters(r.counters))
        native = self._native
        for t in native.native_tables() if native is not None else ():
            for nc in t.chains:
                for nr in nc.rules:
                    h = "" if nr.handle is None else f" h{nr.handle}"
                    add(f"{t.family} {t.name}/{nc.name} #{nr.index}{h}", nr.text, counters_text(nr.counters))
        more = f" (showing {MAX_RESULTS})" if found > MAX_RESULTS else ""
        self.query_one("#rules-title", Static).update(Text(f"search {text!r}: {found} rules{more}"))
        self._show_detail(table.cursor_row)
