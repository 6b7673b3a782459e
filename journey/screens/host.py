"""Host screen: what the snapshot holds (interfaces, routes, policy rules, sockets, rulesets,
the sysctls that change packet fate, what is missing), or, before a snapshot is open, the
progress of live collection and the bundled samples to open instead."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    OptionList,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option

from journey.model.snapshot import HostSnapshot
from journey.widgets.host_view import (
    fill_interfaces,
    fill_policy,
    fill_routes,
    fill_rulesets,
    fill_sockets,
    render_overview,
)


class HostScreen(Screen[None]):
    """The host snapshot at a glance (mode ``host``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open_snapshot", "Open", id="open-snapshot", tooltip="Open a snapshot file"),
        Binding("c", "collect", "Collect", id="collect", tooltip="Collect the live host (read-only)"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="start"):
            yield Static("No snapshot open.", id="start-text")
            yield ProgressBar(id="start-progress", show_eta=False)
            yield Static("Bundled sample snapshots (enter opens):", id="samples-title")
            yield OptionList(id="samples")
        with TabbedContent(id="host-tabs"):
            with TabPane("Overview", id="tab-overview"), VerticalScroll():
                yield Static(id="overview")
            with TabPane("Interfaces", id="tab-ifaces"):
                yield DataTable(id="ifaces", cursor_type="row", zebra_stripes=True)
            with TabPane("Routes", id="tab-routes"):
                yield DataTable(id="routes", cursor_type="row", zebra_stripes=True)
            with TabPane("Policy", id="tab-policy"):
                yield DataTable(id="policy", cursor_type="row", zebra_stripes=True)
            with TabPane("Sockets", id="tab-sockets"):
                yield DataTable(id="sockets", cursor_type="row", zebra_stripes=True)
            with TabPane("Rulesets", id="tab-rulesets"):
                yield DataTable(id="rulesets", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        from journey.app import bundled_snapshots

        samples = self.query_one("#samples", OptionList)
        for p in bundled_snapshots():
            samples.add_option(Option(p.name, id=str(p)))
        if samples.option_count:
            samples.highlighted = 0
        self.watch(self.app, "snapshot", self._on_snapshot)
        self.watch(self.app, "progress", self._on_progress)
        self.watch(self.app, "status", self._on_status)

    def _on_snapshot(self, snap: HostSnapshot | None) -> None:
        has = snap is not None
        self.query_one("#start").display = not has
        self.query_one("#host-tabs").display = has
        if snap is None:
            return
        source = str(getattr(self.app, "snapshot_source", ""))
        self.query_one("#overview", Static).update(render_overview(snap, source))
        fill_interfaces(self.query_one("#ifaces", DataTable), snap)
        fill_routes(self.query_one("#routes", DataTable), snap)
        fill_policy(self.query_one("#policy", DataTable), snap)
        fill_sockets(self.query_one("#sockets", DataTable), snap)
        fill_rulesets(self.query_one("#rulesets", DataTable), snap)

    def _on_progress(self, progress: tuple[str, str, float | None] | None) -> None:
        bar = self.query_one("#start-progress", ProgressBar)
        bar.display = progress is not None
        if progress is None:
            return
        task, text, fraction = progress
        if task in ("collect", "snapshot"):
            self.query_one("#start-text", Static).update(Text(f"{text}   (escape cancels)"))
            bar.update(total=None if fraction is None else 100,
                       progress=0 if fraction is None else fraction * 100)

    def _on_status(self, status: str) -> None:
        if self.app.snapshot is None and status:  # type: ignore[attr-defined]
            self.query_one("#start-text", Static).update(Text(
                f"{status}\n\nOpen a bundled sample below, press o to open a file, "
                "or c to collect this host again."))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "samples" and event.option.id:
            self._app().load_snapshot(event.option.id)

    def select_route(self, text: str) -> None:
        """Show the Routes tab with the cursor on the route printed as ``text``."""
        self.query_one("#host-tabs", TabbedContent).active = "tab-routes"
        table = self.query_one("#routes", DataTable)
        for row in range(table.row_count):
            if str(table.get_row_at(row)[1]) == text or text.startswith(str(table.get_row_at(row)[1])):
                table.move_cursor(row=row)
                break
        table.focus()

    def _app(self) -> Any:
        return self.app

    def action_open_snapshot(self) -> None:
        self._app().prompt_path("Load snapshot file", "load-snapshot")

    def action_collect(self) -> None:
        self._app().collect_live()
