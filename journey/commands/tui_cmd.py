"""``journey tui [SNAPSHOT] [--packet SPEC] [--pcap FILE]``: open the terminal UI.

With no snapshot it collects the live host (read-only) in the background. Without a terminal
it does not start Textual (which would never exit): it prints a hint and exits 2.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshot", nargs="?", help="snapshot file to open (default: the live host)")
    parser.add_argument("--packet", "-p", metavar="SPEC", help="packet spec to run at once, "
                        "e.g. 'in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80'")
    parser.add_argument("--pcap", metavar="FILE", help="capture file to pick packets from")


def run(args: argparse.Namespace) -> int:
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        print("journey: the TUI needs a terminal; for scripts use `journey trace SNAPSHOT SPEC` "
              "(see `journey trace --help`)", file=sys.stderr)
        return 2
    from journey.app import JourneyApp

    app = JourneyApp(args.snapshot, spec=args.packet, pcap=args.pcap, live=args.snapshot is None)
    result = app.run()
    return int(result or 0)
