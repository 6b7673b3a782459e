"""Typed errors for bad input. Each names the file and the line or field at fault.

Pure: no I/O. The CLI turns a ``JourneyError`` into a one-line message and exit code 2;
the TUI shows it and stays usable.
"""

from __future__ import annotations


class JourneyError(Exception):
    """Bad input that the user can fix: a message naming where the problem is."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.text())

    def text(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        if self.field:
            where += f"{self.field}: "
        return where + self.message


class SnapshotError(JourneyError):
    """A snapshot file or import folder that cannot be read."""


class RuleParseError(JourneyError):
    """A ruleset dump (iptables-save, nft -j) that cannot be parsed."""


class PacketSpecError(JourneyError):
    """A packet spec that cannot be parsed; ``column`` points at the offending word."""

    def __init__(self, message: str, *, spec: str = "", column: int | None = None) -> None:
        self.spec = spec
        self.column = column
        super().__init__(message)


class CaptureError(JourneyError):
    """A pcap/pcapng file that cannot be read."""


class CollectError(JourneyError):
    """Live collection impossible (no such namespace, not Linux)."""
