"""Packets the user asks about: the one-line packet spec grammar (``spec``), and capture reading.

Must not depend on textual or rich; scapy is imported lazily by capture modules only.
"""

from journey.packets.spec import format_spec, parse_spec

__all__ = ["format_spec", "parse_spec"]
