"""Path map screen: the netfilter/routing packet-flow diagram with this packet's path lit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header

from journey.messages import Run
from journey.widgets.path_map import PathMap


class PathMapScreen(Screen[None]):
    """Where the packet went in the classic diagram (mode ``map``); scrolls at 80x24."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="map-scroll"):
            yield PathMap(id="path-map")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "current_run", self._on_run)

    def on_screen_resume(self) -> None:
        self._on_run(self.app.current_run)  # type: ignore[attr-defined]

    def _on_run(self, run: Run | None) -> None:
        current: int | None = getattr(self.app, "stage_index", None) if run is not None else None
        self.query_one("#path-map", PathMap).show(run.journey if run else None, current)
