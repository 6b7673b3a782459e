"""The ``journey`` command line: argparse front end that dispatches to ``journey.commands.*``.

Thin by design: each subcommand lives in its own module, imported only when chosen, so
``journey --help`` and the TUI's first frame stay fast. Exit codes: 0 success, 2 bad input
(a one-line error on stderr, no traceback), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from journey import __version__

# subcommand -> module in journey.commands that provides add_arguments(parser) and run(args) -> int
COMMANDS: dict[str, tuple[str, str]] = {
    "snapshot": ("snapshot_cmd", "collect this host (or a namespace, or a folder of dumps) into a snapshot file"),
    "show": ("show_cmd", "print a readable summary of a snapshot"),
    "trace": ("trace_cmd", "trace packets through a snapshot headlessly (text, JSON, Markdown)"),
    "tui": ("tui_cmd", "open the terminal UI on a snapshot (default: the live host)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen subcommand's module is imported (startup stays fast)."""
    parser = argparse.ArgumentParser(
        prog="journey",
        description="Follow a packet through the Linux kernel, stage by stage.",
    )
    parser.add_argument("--version", action="version", version=f"journey {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            mod = importlib.import_module(f"journey.commands.{module}")
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in {*COMMANDS, "-h", "--help", "--version"}:
        # `journey` alone (or `journey SNAPSHOT`) opens the TUI.
        args_list = ["tui", *args_list]
    command = args_list[0] if args_list[0] in COMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    if getattr(args, "_module", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
