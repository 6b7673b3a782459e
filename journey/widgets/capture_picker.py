"""The capture picker: a capture's frames (no., time, source, destination, protocol, info), a
``/`` filter validated as you type, the arrival interface (chosen or guessed from the
snapshot), and "simulate this frame" / "replay this whole flow". Depends on textual and
``journey.packets.pcap`` (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Select, Static
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from journey.model.snapshot import HostSnapshot
    from journey.packets.pcap import Capture, Frame

MAX_ROWS = 2000
GUESS = "guess"
LOCAL = "local process"


def filter_frames(frames: list[Frame], text: str) -> list[Frame]:
    """Frames whose row contains every word of ``text`` (``!word`` excludes)."""
    words = text.lower().split()
    if not words:
        return frames
    want = [w for w in words if not w.startswith("!")]
    avoid = [w[1:] for w in words if w.startswith("!") and len(w) > 1]
    out = []
    for f in frames:
        row = f" {f.text()} "
        if all(w in row for w in want) and not any(w in row for w in avoid):
            out.append(f)
    return out


class CapturePicker(Vertical):
    """Pick a frame from an indexed capture; posts ``Simulate`` with the frames to run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter-frames", tooltip="Filter the frames"),
        Binding("f", "flow", "Replay flow", id="replay-flow", tooltip="Replay the frame's whole flow"),
        Binding("l", "load", "Load pcap", id="load-pcap", tooltip="Load a capture file"),
        Binding("d", "dissect", "Dissect", id="dissect-frame",
                tooltip="Show / hide scapy's dissection of the highlighted frame"),
    ]

    class Simulate(Message):
        def __init__(self, frames: list[Frame], arrival: str, flow: bool) -> None:
            super().__init__()
            self.frames = frames
            self.arrival = arrival  # interface name, GUESS, or LOCAL
            self.flow = flow

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capture: Capture | None = None
        self.shown: list[Frame] = []
        self._dissected: dict[int, str] = {}  # frame no. -> scapy's text (this capture only)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter: words that must all appear (!word excludes)",
                    id="frame-filter", compact=True)
        yield Static("No capture loaded: l (or ctrl+p → Load capture) opens a pcap/pcapng file.",
                     id="capture-status")
        yield DataTable(id="frames", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="dissect-pane"):
            yield Static("", id="dissection")
        with Horizontal(id="capture-actions"):
            yield Select([(f"arrival: {GUESS}", GUESS)], value=GUESS, allow_blank=False,
                         id="c-arrival", compact=True)
            yield Button("Simulate ⏎", id="c-run", compact=True)
            yield Button("Replay flow f", id="c-flow", compact=True)
        yield Static("", id="capture-guess")

    def on_mount(self) -> None:
        self.query_one("#frames", DataTable).add_columns("no.", "time", "source", "destination",
                                                          "proto", "info")

    def set_interfaces(self, names: tuple[str, ...]) -> None:
        sel = self.query_one("#c-arrival", Select)
        sel.set_options([(f"arrival: {GUESS}", GUESS)] + [(f"in {n}", n) for n in names]
                        + [(LOCAL, LOCAL)])
        sel.value = GUESS

    def set_capture(self, capture: Capture | None) -> None:
        self.capture = capture
        self._dissected = {}
        self.apply_filter(self.query_one("#frame-filter", Input).value)

    def apply_filter(self, text: str) -> None:
        cap = self.capture
        table = self.query_one("#frames", DataTable)
        table.clear()
        status = self.query_one("#capture-status", Static)
        if cap is None:
            return
        frames = filter_frames(cap.frames, text)
        self.shown = frames[:MAX_ROWS]
        t0 = cap.frames[0].time if cap.frames else 0.0
        for f in self.shown:
            table.add_row(str(f.no), f"{f.time - t0:.6f}", Text(f.src), Text(f.dst), Text(f.protocol), Text(f.info),
                          key=str(f.no))
        msg = f"{cap.path.name}: {len(cap.frames)} frames"
        if text.strip():
            msg += f", {len(frames)} match {text.strip()!r}"
        if len(frames) > MAX_ROWS:
            msg += f" (first {MAX_ROWS} shown: refine the filter)"
        if cap.problem:
            msg += f" — {cap.problem}"
        status.update(Text(msg))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "frame-filter":
            event.stop()
            self.apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "frame-filter":
            event.stop()
            self.query_one("#frames").focus()

    def current(self) -> Frame | None:
        table = self.query_one("#frames", DataTable)
        if not self.shown or table.cursor_row < 0 or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_guess()
        if self.query_one("#dissect-pane").display:
            self._show_dissection()

    def action_dissect(self) -> None:
        """Toggle the dissection pane (scapy runs only for the frames looked at)."""
        pane = self.query_one("#dissect-pane", VerticalScroll)
        pane.display = not pane.display
        if pane.display:
            self._show_dissection()

    def _show_dissection(self) -> None:
        f = self.current()
        box = self.query_one("#dissection", Static)
        if f is None or self.capture is None:
            box.update("no frame selected")
            return
        text = self._dissected.get(f.no)
        if text is not None:
            box.update(Text(text))
            return
        box.update(f"frame {f.no}: dissecting…")
        self.dissect(self.capture, f)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dissect",
          description="dissect a frame")
    def dissect(self, capture: Capture, frame: Frame) -> None:
        """scapy's layer-by-layer view of one frame, in a thread (scapy imports on first use)."""
        from journey.packets.pcap import dissect_text

        try:
            text = (f"frame {frame.no}: {frame.caplen} bytes captured ({frame.wirelen} on the wire)\n"
                    + dissect_text(capture, frame))
        except Exception as e:  # unreadable frame: say so in the pane
            text = f"frame {frame.no}: cannot dissect: {e}"
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._dissection_ready, capture, frame, text)

    def _dissection_ready(self, capture: Capture, frame: Frame, text: str) -> None:
        if capture is not self.capture:
            return
        self._dissected[frame.no] = text
        cur = self.current()
        if cur is not None and cur.no == frame.no:
            self.query_one("#dissection", Static).update(Text(text))

    def _show_guess(self) -> None:
        f = self.current()
        box = self.query_one("#capture-guess", Static)
        snap: HostSnapshot | None = getattr(self.app, "snapshot", None)
        if f is None or self.capture is None:
            box.update("")
            return
        if f.family == 0:
            box.update(Text(f"frame {f.no}: {f.note or 'not IP'}: cannot be simulated"))
            return
        if snap is None:
            box.update(f"frame {f.no}: open a snapshot to guess its arrival interface")
            return
        from journey.packets.pcap import frame_to_packet, guess_arrival

        g = guess_arrival(snap, frame_to_packet(self.capture, f))
        box.update(Text(f"frame {f.no}: {g.reason}"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._post(flow=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("c-run", "c-flow"):
            event.stop()
            self._post(flow=event.button.id == "c-flow")

    def _post(self, *, flow: bool) -> None:
        f = self.current()
        if f is None or self.capture is None:
            self.app.notify("no frame selected", severity="warning")
            return
        if f.family == 0:
            self.app.notify(f"frame {f.no} is not an IP packet ({f.note})", severity="error")
            return
        arrival = self.query_one("#c-arrival", Select).value
        frames = self.capture.flow(f) if flow else [f]
        self.post_message(self.Simulate(frames, str(arrival), flow))

    def action_filter(self) -> None:
        self.query_one("#frame-filter", Input).focus()

    def action_flow(self) -> None:
        self._post(flow=True)

    def action_load(self) -> None:
        self.app.prompt_path("Load capture file", "load-capture")  # type: ignore[attr-defined]

