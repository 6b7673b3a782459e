"""Path map screen: the netfilter/routing packet-flow diagram with this packet's path lit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header

from journey.messages import Run
from journey.widgets.path_map import PathMap, render_path_map


class PathMapScreen(Screen[None]):
    """Where the packet went in the classic diagram (mode ``map``); scrolls at 80x24."""

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="map-scroll"):
            yield PathMap(render_path_map(None), id="path-map")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "current_run", self._on_run)

    def on_screen_resume(self) -> None:
        self._on_run(self.app.current_run)  # type: ignore[attr-defined]

    def _on_run(self, run: Run | None) -> None:
        current = None
        if run is not None:
            from journey.screens.journey_screen import JourneyScreen

            for screen in self.app.screen_stack:
                if isinstance(screen, JourneyScreen):
                    current = screen.index
        self.query_one("#path-map", PathMap).update(
            render_path_map(run.journey if run else None, current))
