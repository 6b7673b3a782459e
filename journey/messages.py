"""Typed messages the TUI's thread workers post back to the app ("attributes down, messages up").

Workers never touch widgets: they post one of these, and the app updates its state on its own
thread. Progress messages coalesce (``can_replace``) so a fast worker cannot flood the queue.
Depends on textual and the pure model only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from journey.model.journey import Journey
from journey.model.snapshot import HostSnapshot

if TYPE_CHECKING:
    from journey.packets.pcap import Capture


@dataclass(frozen=True, slots=True)
class Run:
    """What the Journey screen shows: one journey, or every packet of a replayed flow."""

    journeys: tuple[Journey, ...]
    label: str = ""  # "flow of frame 12 (7 packets)", "reply to ...", ""
    index: int = 0  # which journey of ``journeys`` is shown

    @property
    def journey(self) -> Journey:
        return self.journeys[self.index]


class SnapshotLoaded(Message):
    """A snapshot was read from a file or collected live."""

    def __init__(self, snapshot: HostSnapshot, source: str) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.source = source


class SnapshotFailed(Message):
    """Loading or collecting a snapshot failed; ``reason`` is shown to the user."""

    def __init__(self, reason: str, source: str, live: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.source = source
        self.live = live


class Progress(Message):
    """Progress of a slow task (``task``: "collect" or "capture"); replaces older ones."""

    def __init__(self, task: str, text: str, fraction: float | None = None) -> None:
        super().__init__()
        self.task = task
        self.text = text
        self.fraction = fraction

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress) and message.task == self.task


class CaptureIndexed(Message):
    """A capture file was indexed (possibly incompletely: see ``capture.problem``)."""

    def __init__(self, capture: Capture) -> None:
        super().__init__()
        self.capture = capture


class CaptureFailed(Message):
    def __init__(self, reason: str, path: str) -> None:
        super().__init__()
        self.reason = reason
        self.path = path


class RunReady(Message):
    """Simulation finished: the journeys to show."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run


class RunFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
