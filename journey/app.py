"""The journey TUI: one App holding the state (snapshot, capture, journeys) and the slow work.

Screens are thin views (``journey.screens``) that watch the app's reactive state; slow work
(live collection, snapshot loading, pcap indexing, simulation) runs in cancellable thread
workers that only post typed messages (``journey.messages``). Imports stay light so the first
frame is fast: textual, rich and the model; the snapshot reader, collector, pcap indexer and
engine are imported inside the workers that need them.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import var
from textual.screen import Screen
from textual.worker import get_current_worker

from journey.messages import (
    CaptureFailed,
    CaptureIndexed,
    Progress,
    Run,
    RunFailed,
    RunReady,
    SnapshotFailed,
    SnapshotLoaded,
)
from journey.model.journey import Journey
from journey.model.packet import Packet
from journey.model.snapshot import HostSnapshot
from journey.screens import (
    HelpScreen,
    HostScreen,
    JourneyScreen,
    PacketScreen,
    PathMapScreen,
    PathPrompt,
    RulesScreen,
)

Simulator = Callable[..., Journey]

CAPTURE_DIRS = (
    Path(__file__).resolve().parent.parent / "captures",
    Path(__file__).resolve().parent / "captures",
)


def bundled_snapshots() -> list[Path]:
    """The sample snapshots shipped in ``captures/*.json.gz``."""
    found: list[Path] = []
    for d in CAPTURE_DIRS:
        if d.is_dir():
            found.extend(sorted(d.glob("*.json.gz")))
    return found


def error_text(e: BaseException) -> str:
    """A user-facing one-line reason for an exception."""
    text = getattr(e, "text", None)
    if callable(text):
        return str(text())
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return f"{type(e).__name__}: {e}"


class JourneyApp(App[int]):
    """Follow a packet through a Linux host's network stack, stage by stage."""

    CSS_PATH = str(Path(__file__).resolve().parent / "journey.tcss")  # absolute: subclasses too
    TITLE = "journey"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "host": HostScreen,
        "packet": PacketScreen,
        "journey": JourneyScreen,
        "rules": RulesScreen,
        "map": PathMapScreen,
    }
    DEFAULT_MODE = "host"
    _SCREENS = Binding.Group("screens", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "switch_mode('host')", "Host", id="host", group=_SCREENS, tooltip="The host: interfaces, routes, sockets, rulesets"),
        Binding("2", "switch_mode('packet')", "Packet", id="packet", group=_SCREENS, tooltip="Craft a packet or pick one from a capture"),
        Binding("3", "switch_mode('journey')", "Journey", id="journey", group=_SCREENS, tooltip="The packet's journey, stage by stage"),
        Binding("4", "switch_mode('rules')", "Rules", id="rules", group=_SCREENS, tooltip="Every table, chain and rule"),
        Binding("5", "switch_mode('map')", "Map", id="map", group=_SCREENS, tooltip="The packet-flow diagram with this path"),
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key"),
        Binding("q", "quit", "Quit", id="quit", tooltip="Quit journey"),
        Binding("escape", "cancel_work", "Cancel", show=False, id="cancel", tooltip="Cancel collection or indexing"),
    ]

    snapshot: var[HostSnapshot | None] = var(None, always_update=True)
    """The host snapshot everything is simulated on."""
    snapshot_source: var[str] = var("")
    """Where the snapshot came from (file name or "live host")."""
    current_run: var[Run | None] = var(None, always_update=True)
    """The journeys the Journey screen shows."""
    capture: var[Any] = var(None, always_update=True)
    """The indexed capture (``journey.packets.pcap.Capture``) or None."""
    status: var[str] = var("")
    """What the app is doing or what last went wrong (shown on the Host screen)."""
    progress: var[tuple[str, str, float | None] | None] = var(None, always_update=True)
    """(task, text, fraction) of the slow task running, or None."""

    def __init__(
        self,
        snapshot_path: str | None = None,
        *,
        snapshot: HostSnapshot | None = None,
        spec: str | None = None,
        pcap: str | None = None,
        live: bool = False,
        simulator: Simulator | None = None,
        run: Run | None = None,
    ) -> None:
        super().__init__()
        self._snapshot_path = snapshot_path
        self._initial_snapshot = snapshot
        self._initial_run = run
        self.initial_spec = spec or ""
        self._pcap = pcap
        self._live = live
        self._simulator = simulator
        self._cancel = threading.Event()
        self.history: list[Run] = []
        self.pending_spec = spec or ""  # what the Packet screen's spec line holds (never lost)
        self.stage_index = 0  # the stage the Journey screen shows (the path map marks it)

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """As ``App.notify``, but plain text by default: messages carry file names, specs and
        search text typed by the user, where ``[`` must not be read as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- startup ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self._initial_snapshot is not None:
            self.snapshot_source = "fixture"
            self.snapshot = self._initial_snapshot
            if self._initial_run is not None:
                self.current_run = self._initial_run
        elif self._snapshot_path:
            self.load_snapshot(self._snapshot_path)
        elif self._live:
            self.collect_live()
        if self._pcap:
            self.load_capture(self._pcap)
            if not self.initial_spec:
                self.switch_mode("packet")  # `--pcap`: open on the capture picker

    # -- state changes from workers -------------------------------------------------------------
    def on_snapshot_loaded(self, msg: SnapshotLoaded) -> None:
        self.progress = None
        self.snapshot_source = msg.source
        self.snapshot = msg.snapshot
        missing = msg.snapshot.provenance.missing()
        self.status = f"loaded {msg.source}" + (f" ({len(missing)} parts missing or partial: see Host)" if missing else "")
        self.sub_title = f"{msg.snapshot.provenance.hostname} — {msg.source}"
        if self.initial_spec and self.current_run is None:
            self.simulate_spec(self.initial_spec)

    def on_snapshot_failed(self, msg: SnapshotFailed) -> None:
        self.progress = None
        self.status = f"cannot open {msg.source}: {msg.reason}"
        self.notify(self.status, title="Snapshot", severity="error", timeout=8)

    def on_progress(self, msg: Progress) -> None:
        self.progress = (msg.task, msg.text, msg.fraction)

    def on_capture_indexed(self, msg: CaptureIndexed) -> None:
        self.progress = None
        cap = msg.capture
        self.capture = cap
        text = f"indexed {len(cap.frames)} frames of {cap.path.name}"
        if cap.problem:
            text += f" ({cap.problem})"
        self.notify(text, title="Capture", severity="warning" if cap.problem else "information")

    def on_capture_failed(self, msg: CaptureFailed) -> None:
        self.progress = None
        self.notify(f"{msg.path}: {msg.reason}", title="Capture", severity="error", timeout=8)

    def on_run_ready(self, msg: RunReady) -> None:
        if self.current_run is not None and msg.run.label.startswith("reply"):
            self.history.append(self.current_run)
        self.current_run = msg.run
        self.switch_mode("journey")

    def on_run_failed(self, msg: RunFailed) -> None:
        self.notify(msg.reason, title="Simulation", severity="error", timeout=8)

    # -- workers -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="snapshot",
          description="load snapshot")
    def load_snapshot(self, path: str) -> None:
        """Read a snapshot file in a thread and post the result."""
        self.post_message(Progress("snapshot", f"reading {path}", None))
        try:
            from journey.snapshot.fileio import load_snapshot

            snap = load_snapshot(path)
        except Exception as e:  # every failure is shown, the app keeps running
            self.post_message(SnapshotFailed(error_text(e), path))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(SnapshotLoaded(snap, Path(path).name))

    @work(thread=True, exclusive=True, exit_on_error=False, group="snapshot",
          description="collect the live host")
    def collect_live(self) -> None:
        """Collect this host read-only in a thread, with progress; offer samples on failure."""
        if not sys.platform.startswith("linux"):
            self.post_message(SnapshotFailed(f"live collection needs Linux (this is {sys.platform})",
                                             "live host", live=True))
            return
        worker = get_current_worker()
        self.post_message(Progress("collect", "collecting the live host (read-only)…", None))
        try:
            from journey.snapshot.collect import collect

            def progress(text: str, *_: object) -> None:
                if not worker.is_cancelled:
                    self.post_message(Progress("collect", str(text), None))

            snap = collect(None, progress=progress)
        except Exception as e:
            self.post_message(SnapshotFailed(error_text(e), "live host", live=True))
            return
        if worker.is_cancelled:
            self.post_message(SnapshotFailed("collection cancelled", "live host", live=True))
            return
        who = "" if os.geteuid() == 0 else " (not root: some parts are missing)"
        self.post_message(SnapshotLoaded(snap, "live host" + who))

    @work(thread=True, exclusive=True, exit_on_error=False, group="capture",
          description="index capture")
    def load_capture(self, path: str) -> None:
        """Index a pcap/pcapng file in a thread with progress; cancellable with escape."""
        self._cancel.clear()
        self.post_message(Progress("capture", f"indexing {path}", 0.0))
        try:
            from journey.packets.pcap import index_capture

            def progress(done: int, total: int) -> None:
                self.post_message(Progress("capture", f"indexing {Path(path).name}",
                                           done / total if total else None))

            cap = index_capture(path, progress=progress, cancel=self._cancel)
        except Exception as e:
            self.post_message(CaptureFailed(error_text(e), path))
            return
        self.post_message(CaptureIndexed(cap))

    def simulator(self) -> Simulator:
        """The engine's ``simulate`` (imported on first use, after the first frame)."""
        if self._simulator is None:
            from journey.engine.simulate import simulate

            self._simulator = simulate
        return self._simulator

    @work(thread=True, exclusive=True, exit_on_error=False, group="simulate",
          description="simulate")
    def simulate_packets(self, packets: Sequence[tuple[Packet, str]], label: str = "") -> None:
        """Simulate one packet, or a whole flow carrying conntrack state from packet to packet."""
        snap = self.snapshot
        if snap is None:
            self.post_message(RunFailed("no snapshot loaded: open one first (1: Host, ctrl+p)"))
            return
        try:
            simulate = self.simulator()
            journeys: list[Journey] = []
            flows: tuple[Any, ...] = ()
            for pkt, spec in packets:
                j = simulate(snap, pkt, flows=flows, spec=spec)
                flows = j.flows
                journeys.append(j)
            from journey.widgets.stage_views import stage_backend

            if any(stage_backend(s) == "native" for j in journeys for s in j.stages):
                from journey.widgets.nft_rules import native_rules

                native_rules(snap)  # parsed here (thread), read by the Journey screen
        except Exception as e:
            self.post_message(RunFailed(f"simulation failed: {error_text(e)}"))
            return
        if journeys:
            self.post_message(RunReady(Run(tuple(journeys), label)))

    def simulate_spec(self, spec: str) -> None:
        """Parse a packet spec and simulate it; a bad spec is reported, nothing is lost."""
        from journey.errors import PacketSpecError
        from journey.packets.spec import parse_spec

        try:
            pkt = parse_spec(spec)
        except PacketSpecError as e:
            self.notify(f"bad packet spec: {e.message}", severity="error")
            return
        self.pending_spec = spec
        self.simulate_packets([(pkt, spec)])

    def follow_reply(self) -> None:
        """Simulate the first reply the verdict names (RST, ICMP error, SYN-ACK...)."""
        run = self.current_run
        if run is None:
            return
        replies = [r for r in run.journey.verdict.replies if r.packet is not None]
        if not replies:
            self.notify("this journey produces no reply packet to follow", severity="warning")
            return
        r = replies[0]
        assert r.packet is not None
        from journey.packets.spec import format_spec

        self.simulate_packets([(r.packet, format_spec(r.packet))],
                              label=f"reply ({r.kind}) to {run.journey.spec or 'the packet'}")

    def go_back(self) -> None:
        """Back to the journey shown before following a reply."""
        if self.history:
            self.current_run = self.history.pop()

    # -- actions and commands --------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_cancel_work(self) -> None:
        """Cancel collection / indexing; otherwise leave the text field being edited."""
        from textual.widgets import Input

        if isinstance(self.focused, Input) and not isinstance(self.screen, PathPrompt):
            self.screen.set_focus(None)
        cancelled = False
        for w in self.workers:
            if w.group in ("capture", "snapshot") and w.is_running:
                w.cancel()
                cancelled = True
        if cancelled:
            self._cancel.set()
            self.progress = None
            self.notify("cancelled", severity="warning")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Load snapshot", "Open a snapshot file (.json / .json.gz)",
                            lambda: self.prompt_path("Load snapshot file", "load-snapshot"))
        yield SystemCommand("Load capture", "Index a pcap / pcapng file to pick packets from",
                            lambda: self.prompt_path("Load capture file", "load-capture"))
        yield SystemCommand("Re-collect live host", "Collect this host's state again (read-only)",
                            self.collect_live)
        yield SystemCommand("Save snapshot", "Write the current snapshot to a file",
                            lambda: self.prompt_path("Save snapshot as", "save-snapshot", "snapshot.json.gz"))
        yield SystemCommand("Export journey as Markdown", "Same content as journey trace --format md",
                            lambda: self.prompt_path("Export Markdown to", "export-md", "journey.md"))
        yield SystemCommand("Export journey as JSON", "Same content as journey trace --format json",
                            lambda: self.prompt_path("Export JSON to", "export-json", "journey.json"))
        yield SystemCommand("Save screenshot (SVG)", "Save the current screen as an SVG file",
                            self.action_svg)
        for path in bundled_snapshots():
            yield SystemCommand(f"Open sample {path.name}", f"Bundled sample snapshot {path}",
                                lambda p=path: self.load_snapshot(str(p)), discover=False)

    def action_svg(self) -> None:
        try:
            path = self.save_screenshot()
        except OSError as e:
            self.notify(error_text(e), severity="error")
            return
        self.notify(f"screenshot saved to {path}")

    def prompt_path(self, title: str, purpose: str, default: str = "") -> None:
        def done(value: str | None) -> None:
            if value:
                self.do_path_action(purpose, value)

        self.push_screen(PathPrompt(title, default), done)

    def do_path_action(self, purpose: str, value: str) -> None:
        """Carry out a palette command that needed a file name; errors are shown, not raised."""
        if purpose == "load-snapshot":
            self.load_snapshot(value)
        elif purpose == "load-capture":
            self.load_capture(value)
            self.switch_mode("packet")
        elif purpose == "save-snapshot":
            if self.snapshot is None:
                self.notify("no snapshot to save", severity="error")
                return
            try:
                from journey.snapshot.fileio import save_snapshot

                save_snapshot(self.snapshot, value)
            except Exception as e:
                self.notify(error_text(e), title="Save snapshot", severity="error", timeout=8)
                return
            self.notify(f"snapshot saved to {value}")
        elif purpose in ("export-md", "export-json"):
            self.export(value, purpose == "export-md")

    def export(self, path: str, markdown: bool) -> None:
        run = self.current_run
        if run is None:
            self.notify("no journey to export yet", severity="error")
            return
        prov = self.snapshot.provenance if self.snapshot is not None else None
        try:
            if markdown:
                from journey.render.markdown import render_markdown

                text = render_markdown(run.journeys, prov)
            else:
                from journey.render.jsonout import render_json

                text = render_json(run.journeys, prov)
            Path(path).write_text(text, encoding="utf-8")
        except Exception as e:
            self.notify(error_text(e), title="Export", severity="error", timeout=8)
            return
        self.notify(f"journey exported to {path}")
