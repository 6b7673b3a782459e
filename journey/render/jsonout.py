"""``journey trace --format json``: the stable, documented JSON contract (docs/trace-json.md).

Top level: ``{"format": "journey.trace", "version": 1, "snapshot": {...}, "journeys": [...]}``.
Fields are only ever added in version 1; a removal or change of meaning bumps ``version``.

Pure: builds plain data from model values; no textual, no rich, no I/O (``dumps`` returns text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from journey.model.journey import (
    ConntrackDetail,
    Journey,
    NeighbourDetail,
    Reply,
    RoutingDetail,
    SocketDetail,
    Stage,
    StageDetail,
)
from journey.model.packet import Packet, proto_name
from journey.model.snapshot import Provenance
from journey.packets.spec import format_spec

FORMAT = "journey.trace"
VERSION = 1


def _s(value: object) -> str | None:
    return None if value is None else str(value)


def packet_data(pkt: Packet, spec: str | None = None) -> dict[str, Any]:
    """The parsed fields of a packet (and the spec it came from)."""
    return {
        "spec": spec if spec else format_spec(pkt),
        "family": str(pkt.family),
        "proto": pkt.proto,
        "proto_name": proto_name(pkt.proto),
        "src": _s(pkt.src),
        "dst": str(pkt.dst),
        "sport": pkt.sport,
        "dport": pkt.dport,
        "tcp_flags": pkt.tcp_flags or None,
        "icmp_type": pkt.icmp_type,
        "icmp_code": pkt.icmp_code,
        "icmp_id": pkt.icmp_id,
        "ttl": pkt.ttl,
        "tos": pkt.tos,
        "mark": pkt.mark,
        "length": pkt.ip_length,
        "df": pkt.df,
        "iif": pkt.iif,
        "local": pkt.local,
        "uid": pkt.uid,
        "dst_mac": pkt.dst_mac,
        "vlan": pkt.vlan,
    }


def _detail(detail: StageDetail | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    if isinstance(detail, RoutingDetail):
        return {
            "type": "routing",
            "direction": detail.direction,
            "table": detail.table,
            "route": detail.route,
            "route_type": detail.route_type,
            "nexthop": detail.nexthop,
            "source": detail.source,
            "oif": detail.oif,
            "rules": [{"text": r.text, "matched": r.matched, "reason": r.reason}
                      for r in detail.rules],
            "candidates": [{"text": c.text, "table": c.table, "chosen": c.chosen,
                            "reason": c.reason} for c in detail.candidates],
        }
    if isinstance(detail, ConntrackDetail):
        return {"type": "conntrack", **conntrack_data(detail)}
    if isinstance(detail, SocketDetail):
        return {
            "type": "socket",
            "winner": detail.winner,
            "process": detail.process,
            "pid": detail.pid,
            "candidates": [{"text": c.text, "chosen": c.chosen, "reason": c.reason}
                           for c in detail.candidates],
        }
    if isinstance(detail, NeighbourDetail):
        return {"type": "neighbour", "nexthop": detail.nexthop, "dev": detail.dev,
                "entry": detail.entry, "state": detail.state, "lladdr": detail.lladdr}
    return None


def conntrack_data(ct: ConntrackDetail) -> dict[str, Any]:
    return {"state": ct.state, "direction": ct.direction, "orig": ct.orig, "reply": ct.reply,
            "nat": ct.nat, "source": ct.source}


def stage_data(stage: Stage) -> dict[str, Any]:
    return {
        "name": stage.name,
        "kind": str(stage.kind),
        "hook": stage.hook,
        "table": stage.table,
        "family": stage.family,
        "priority": stage.priority,
        "result": str(stage.result),
        "summary": stage.summary,
        "decision": stage.decision,
        "functions": list(stage.functions),
        "config": [{"kind": c.kind, "text": c.text, "where": c.where} for c in stage.config],
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in stage.changes],
        "rules": [
            {
                "table": r.table,
                "chain": r.chain,
                "index": r.index,
                "text": r.text,
                "matched": r.matched,
                "target": r.target,
                "failed_condition": r.failed_condition,
                "uncertain": r.uncertain,
                "note": r.note,
                "handle": r.handle,
                "backend": r.backend,
            }
            for r in stage.rules
        ],
        "notes": list(stage.notes),
        "uncertain": stage.uncertain,
        "detail": _detail(stage.detail),
    }


def reply_data(r: Reply) -> dict[str, Any]:
    p = r.packet
    return {
        "kind": r.kind,
        "type": r.type,
        "code": r.code,
        "src": str(r.src),
        "dst": str(r.dst),
        "sport": p.sport if p else None,
        "dport": p.dport if p else None,
        "tcp_flags": (p.tcp_flags or None) if p else None,
        "reason": r.reason,
        "spec": packet_data(p)["spec"] if p else None,
    }


def journey_data(j: Journey) -> dict[str, Any]:
    v = j.verdict
    final = v.packet
    return {
        "packet": packet_data(j.packet, j.spec),
        "stages": [stage_data(s) for s in j.stages],
        "verdict": {
            "disposition": str(v.disposition),
            "code": v.code,
            "reason": v.reason,
            "hint": v.hint,
            "stage": v.stage,
            "egress": v.egress,
            "uncertain": v.uncertain,
            "socket": None if v.socket is None else {
                "proto": v.socket.proto, "addr": v.socket.addr, "port": v.socket.port,
                "process": v.socket.process, "pid": v.socket.pid},
            "packet": None if final is None else {
                "src": _s(final.src), "dst": str(final.dst), "sport": final.sport,
                "dport": final.dport, "ttl": final.ttl, "mark": final.mark},
            "replies": [reply_data(r) for r in v.replies],
        },
        "conntrack": None if j.conntrack is None else conntrack_data(j.conntrack),
        "rules_hit": [{"table": r.table, "chain": r.chain, "index": r.index,
                       "backend": r.backend, "handle": r.handle} for r in j.rules_hit],
        "uncertain": j.uncertain,
    }


def provenance_data(prov: Provenance | None) -> dict[str, Any] | None:
    if prov is None:
        return None
    return {
        "hostname": prov.hostname,
        "kernel": prov.kernel,
        "time": prov.time,
        "origin": prov.origin,
        "netns": prov.netns,
        "journey_version": prov.journey_version,
        "missing": [{"name": p.name, "state": str(p.state), "reason": p.reason}
                    for p in prov.missing()],
    }


def trace_data(journeys: Sequence[Journey], provenance: Provenance | None) -> dict[str, Any]:
    """The whole document for ``journey trace --format json``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "snapshot": provenance_data(provenance),
        "journeys": [journey_data(j) for j in journeys],
    }


def render_json(journeys: Sequence[Journey], provenance: Provenance | None) -> str:
    """The JSON document as text (2-space indent, stable key order, trailing newline)."""
    return json.dumps(trace_data(journeys, provenance), indent=2, ensure_ascii=False) + "\n"
