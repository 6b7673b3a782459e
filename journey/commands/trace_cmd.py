"""``journey trace SNAPSHOT SPEC... [--packets FILE] [--reply] [--format text|json|markdown]``.

Traces one or more packets through a snapshot headlessly. Several packets (SPEC arguments, then
the lines of ``--packets``) run in order and share conntrack state, so a SYN then an ACK of the
same flow shows ESTABLISHED. ``--reply`` also traces, after each packet, the reply its
destination would send (the SYN-ACK of a local listener, the RST or ICMP error the kernel sends,
or for a forwarded / sent packet the remote end's answer arriving on the egress interface).

Exit codes: 0 whatever the verdicts, 2 on bad input (one line on stderr, no traceback).
Imports no textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from journey.errors import JourneyError, PacketSpecError
from journey.model.journey import Disposition, Flow, Journey
from journey.model.packet import Packet
from journey.model.snapshot import HostSnapshot

FORMATS = ("text", "json", "markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot file (journey snapshot)")
    parser.add_argument("spec", metavar="SPEC", nargs="*",
                        help="packet spec, e.g. 'in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80 "
                             "flags S' (quote each spec)")
    parser.add_argument("--packets", metavar="FILE",
                        help="file with one packet spec per line (# comments and blank lines "
                             "ignored); traced after the SPEC arguments, sharing flow state")
    parser.add_argument("--reply", action="store_true",
                        help="also trace the reply each packet's destination would send")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="output format (default text)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour text output (auto: on a terminal unless NO_COLOR is set)")


def _err(message: str) -> int:
    print(f"journey trace: {message}", file=sys.stderr)
    return 2


def _spec_error(exc: PacketSpecError, where: str) -> str:
    return f"{where}: bad packet spec: {exc.message}"


def read_packets(path: str) -> list[tuple[Packet, str, str]]:
    """(packet, spec, 'file:line') for each spec line of a packets file."""
    from journey.packets.spec import parse_spec

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise JourneyError(f"cannot read packets file: {exc.strerror or exc}", file=path) from None
    except UnicodeDecodeError as exc:
        raise JourneyError(f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                           f"{exc.start})", file=path, line=exc.object.count(b"\n", 0, exc.start) + 1
                           ) from None
    out: list[tuple[Packet, str, str]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append((parse_spec(line), line, f"{path}:{n}"))
        except PacketSpecError as exc:
            raise JourneyError(f"bad packet spec: {exc.message}", file=path, line=n) from None
    return out


def peer_reply(j: Journey) -> Packet | None:
    """The packet the destination would answer ``j``'s packet with.

    A reply the kernel generated itself (SYN-ACK, RST, ICMP error, echo reply) first; for a
    forwarded or sent packet, the remote end's answer arriving on the egress interface.
    """
    v = j.verdict
    if v.replies and v.replies[0].packet is not None:
        return v.replies[0].packet
    if v.disposition not in (Disposition.FORWARDED, Disposition.SENT) or v.packet is None:
        return None
    p = v.packet
    if p.src is None:
        return None
    base = Packet(family=p.family, proto=p.proto, src=p.dst, dst=p.src, sport=p.dport,
                  dport=p.sport, iif=v.egress, local=False)
    if p.proto == 6:
        flags = p.tcp_flags
        answer = "SA" if ("S" in flags and "A" not in flags) else ("R" if "R" in flags else "A")
        if "R" in flags:
            return None
        return replace(base, tcp_flags=answer)
    if p.proto == 17:
        return base
    if p.proto in (1, 58):
        req = 8 if p.proto == 1 else 128
        if p.icmp_type != req:
            return None
        return replace(base, icmp_type=0 if p.proto == 1 else 129, icmp_code=0, icmp_id=p.icmp_id)
    return None


def trace(snap: HostSnapshot, packets: list[tuple[Packet, str]], *,
          reply: bool = False) -> list[Journey]:
    """Simulate packets in order, sharing flows; with ``reply`` each is followed by its reply."""
    from journey.engine.simulate import simulate
    from journey.packets.spec import format_spec

    flows: tuple[Flow, ...] = ()
    out: list[Journey] = []
    for pkt, spec in packets:
        j = simulate(snap, pkt, flows, spec)
        flows = j.flows
        out.append(j)
        if reply:
            back = peer_reply(j)
            if back is not None:
                rj = simulate(snap, back, flows, format_spec(back))
                flows = rj.flows
                out.append(rj)
    return out


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def run(args: argparse.Namespace) -> int:
    from journey.packets.spec import parse_spec
    from journey.snapshot.fileio import load_snapshot

    packets: list[tuple[Packet, str]] = []
    for i, spec in enumerate(args.spec, 1):
        try:
            packets.append((parse_spec(spec), spec))
        except PacketSpecError as exc:
            return _err(_spec_error(exc, f"SPEC {i}"))
    try:
        if args.packets:
            packets += [(p, s) for p, s, _ in read_packets(args.packets)]
        if not packets:
            return _err("no packet to trace: give a SPEC or --packets FILE")
        snap = load_snapshot(args.snapshot)
    except JourneyError as exc:
        return _err(exc.text())
    journeys = trace(snap, packets, reply=args.reply)
    prov = snap.provenance
    if args.format == "json":
        from journey.render.jsonout import render_json

        text = render_json(journeys, prov)
    elif args.format == "markdown":
        from journey.render.markdown import render_markdown

        text = render_markdown(journeys, prov)
    else:
        from journey.render.text import render_text

        text = render_text(journeys, prov, color=_use_color(args.color))
    sys.stdout.write(text)
    sys.stdout.flush()
    return 0
