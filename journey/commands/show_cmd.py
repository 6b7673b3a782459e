"""``journey show SNAPSHOT``: print a readable summary of a snapshot file.

Colour only on a terminal and never when NO_COLOR is set; works when piped. Exit 2 with a
one-line error when the snapshot cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot file (.json or .json.gz)")
    parser.add_argument("--width", type=int, default=None,
                        help="output width in columns (default: the terminal's, or 120 when piped)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from journey.errors import JourneyError
    from journey.render.show import print_show
    from journey.snapshot.fileio import load_snapshot

    try:
        snap = load_snapshot(args.snapshot)
    except JourneyError as exc:
        print(f"journey show: {exc.text()}", file=sys.stderr)
        return 2
    tty = sys.stdout.isatty()
    width = args.width
    if width is None and not tty and "COLUMNS" not in os.environ:
        width = 120
    console = Console(
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
        color_system="auto" if tty else None,
        highlight=False,
        soft_wrap=False,
    )
    print_show(snap, console)
    return 0
