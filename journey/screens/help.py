"""Help screen: every key of every screen."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Everywhere", (
        ("1 2 3 4 5", "Host, Packet, Journey, Rules, path Map screens"),
        ("ctrl+p", "command palette: load/save snapshot, load capture, re-collect, export, screenshot"),
        ("?", "this help"),
        ("escape", "cancel live collection or capture indexing; close dialogs"),
        ("tab / shift+tab", "move between panes and fields"),
        ("q / ctrl+q", "quit (ctrl+q while typing in a field)"),
    )),
    ("Journey", (
        ("left / p, right / n", "previous / next stage"),
        ("home / end", "first stage / last stage (the verdict)"),
        ("up / down", "move in the stage rail"),
        ("enter", "open the stage's rule (Rules) or route (Host)"),
        ("space, pgdn / pgup", "scroll the stage details"),
        ("r", "follow the reply the host sends back (RST, ICMP, SYN-ACK)"),
        ("b", "back to the journey before the reply"),
        ("e", "edit the packet and run it again"),
        ("[ ]", "previous / next packet of a replayed flow"),
    )),
    ("Packet", (
        ("ctrl+r", "run the packet (the spec line) through the host"),
        ("enter (spec line)", "run the packet"),
        ("/", "capture tab: filter the frames (words must all appear; !word excludes)"),
        ("enter (frame)", "simulate the selected frame"),
        ("f", "replay the selected frame's whole flow, carrying conntrack state"),
        ("l", "load a capture file"),
        ("d", "capture tab: show / hide scapy's dissection of the highlighted frame"),
    )),
    ("Rules", (
        ("/", "search every rule of every table and chain"),
        ("escape", "clear the search"),
        ("t", "move to the table / chain tree"),
        ("enter (tree)", "show a chain's rules (iptables, and native nft tables with handles)"),
        ("up / down (rules)", "the highlighted rule is shown whole below the table"),
    )),
    ("Host", (
        ("o", "open a snapshot file"),
        ("c", "collect the live host again (read-only)"),
        ("left / right", "switch tabs (when the tab bar is focused)"),
        ("enter (sample list)", "open a bundled sample snapshot"),
    )),
)


class HelpScreen(ModalScreen[None]):
    """Every key, by screen. Any of escape, q, ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="close-help", tooltip="Close help"),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for section, keys in KEYS:
            table.add_row(Text(section, style="bold underline"), "")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with VerticalScroll(id="help"):
            yield Static(Text("journey — keys (escape closes)", style="bold"))
            yield Static(table)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
