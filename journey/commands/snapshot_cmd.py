"""``journey snapshot -o FILE [--netns NAME] [--from-dir DIR] [--force]``.

Collects the live host (or a named network namespace) with ``journey.snapshot.collect``, or
imports a folder of raw command outputs / a sos report with ``journey.snapshot.importdir``, and
writes the snapshot file. Prints one summary line to stderr (what was collected, what is
missing). Exit 0 on success (a partial snapshot too), 2 on bad input with a one-line error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from journey.errors import JourneyError
from journey.model.snapshot import HostSnapshot, PartState


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="snapshot file to write (.json, or .json.gz for gzip)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--netns", metavar="NAME",
                     help="collect the named network namespace instead of the current one")
    src.add_argument("--from-dir", metavar="DIR",
                     help="import a folder of raw command outputs or a sos report instead of "
                          "collecting live (see docs/snapshot-format.md for the file names)")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def summary_line(snap: HostSnapshot, path: str) -> str:
    """``wrote FILE (origin, host): N interfaces, ...; missing: part (reason), ...``."""
    p = snap.provenance
    rules = sum(d.rule_count for d in snap.iptables)
    counts = [
        f"{len(snap.interfaces)} interfaces", f"{len(snap.addresses)} addresses",
        f"{len(snap.routes)} routes", f"{len(snap.rules)} policy rules",
        f"{len(snap.neighbours)} neighbours", f"{len(snap.sockets)} sockets",
        f"{len(snap.conntrack)} conntrack entries", f"{len(snap.sysctls)} sysctls",
        f"{len(snap.iptables)} iptables dumps ({rules} rules)",
    ]
    if snap.raw_dump("nft -j list ruleset") or snap.raw_dump("nft list ruleset"):
        counts.append("nftables ruleset")
    if snap.ipsets:
        counts.append(f"{len(snap.ipsets)} ipsets")
    where = p.origin + (f" netns {p.netns}" if p.netns else "")
    line = f"wrote {path} ({where}, host {p.hostname}): " + ", ".join(counts)
    missing = [f"{m.name} ({m.reason})" if m.reason else m.name
               for m in p.parts if m.state is PartState.MISSING]
    partial = [f"{m.name} ({m.reason})" if m.reason else m.name
               for m in p.parts if m.state is PartState.PARTIAL]
    if partial:
        line += "; partial: " + ", ".join(partial)
    line += "; missing: " + (", ".join(missing) if missing else "nothing")
    return line


def run(args: argparse.Namespace) -> int:
    from journey.snapshot.fileio import save_snapshot

    out = str(args.output)
    try:
        target = Path(out)
        if target.exists() and not args.force:
            print(f"journey snapshot: {out}: already exists (use --force to overwrite)",
                  file=sys.stderr)
            return 2
        if args.from_dir:
            from journey.snapshot.importdir import import_dir

            snap = import_dir(args.from_dir)
        else:
            from journey.snapshot.collect import collect

            progress = None
            if sys.stderr.isatty():
                def progress(msg: str) -> None:
                    print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)
            snap = collect(netns=args.netns, progress=progress)
            if progress is not None:
                print("\r\033[K", end="", file=sys.stderr, flush=True)
        save_snapshot(snap, target, force=args.force)
    except JourneyError as exc:
        print(f"journey snapshot: {exc.text()}", file=sys.stderr)
        return 2
    print(summary_line(snap, out), file=sys.stderr)
    return 0
