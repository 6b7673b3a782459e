"""The path map: the classic netfilter/routing packet-flow diagram with this packet's path lit.

The diagram is a WYSIWYG text template (fits 78 columns); each node is located in it by its
label, and styled by what the journey did there: visited (bold reverse), changed, stopped
(reverse + underline, and named in the legend), uncertain, or not on the path (dim).
Depends on textual, rich and the model only.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widgets import Static

from journey.model.journey import Journey, RoutingDetail, Stage, StageKind, StageResult

TEMPLATE = r"""
             PREROUTING
 ingress ─► [raw]─[conntrack]─[mangle]─[nat] ─► <routing> ─── forward ───┐
                                                    │                    │
            ┌─────────────── local ─────────────────┘                    │
            ▼  INPUT                                       FORWARD       ▼
  [mangle]─[filter]─[nat]                                 [mangle]─[filter]
            │                                                      │
            ▼                                                      │
   ( socket / local process )                                      │
            │                                                      │
            ▼  OUTPUT                                              │
 <routing>─[raw]─[conntrack]─[mangle]─[nat]─[filter]─<reroute>     │
                                                 │                 │
                                                 ▼  POSTROUTING    ▼
                                        [mangle]─[nat] ─► <neighbour> ─► egress
"""

# node key -> (template line, label, occurrence of the label on that line)
NODES: dict[str, tuple[int, str, int]] = {
    "ingress": (2, "ingress", 0),
    "pre.raw": (2, "[raw]", 0),
    "pre.ct": (2, "[conntrack]", 0),
    "pre.mangle": (2, "[mangle]", 0),
    "pre.nat": (2, "[nat]", 0),
    "route.in": (2, "<routing>", 0),
    "fwd": (2, "forward", 0),
    "local": (4, "local", 0),
    "in.mangle": (6, "[mangle]", 0),
    "in.filter": (6, "[filter]", 0),
    "in.nat": (6, "[nat]", 0),
    "fwd.mangle": (6, "[mangle]", 1),
    "fwd.filter": (6, "[filter]", 1),
    "socket": (9, "( socket / local process )", 0),
    "route.out": (12, "<routing>", 0),
    "out.raw": (12, "[raw]", 0),
    "out.ct": (12, "[conntrack]", 0),
    "out.mangle": (12, "[mangle]", 0),
    "out.nat": (12, "[nat]", 0),
    "out.filter": (12, "[filter]", 0),
    "reroute": (12, "<reroute>", 0),
    "post.mangle": (15, "[mangle]", 0),
    "post.nat": (15, "[nat]", 0),
    "neigh": (15, "<neighbour>", 0),
    "egress": (15, "egress", 0),
}

_HOOKS = {"prerouting": "pre", "input": "in", "forward": "fwd", "output": "out",
          "postrouting": "post"}
_TABLES: dict[str, tuple[str, ...]] = {
    "pre": ("raw", "mangle", "nat"),
    "in": ("mangle", "filter", "nat"),
    "fwd": ("mangle", "filter"),
    "out": ("raw", "mangle", "nat", "filter"),
    "post": ("mangle", "nat"),
}


def node_of(stage: Stage, local_origin: bool) -> str | None:
    """The diagram node a stage belongs to (None when the diagram has no place for it)."""
    k = stage.kind
    if k is StageKind.NETFILTER:
        hook = _HOOKS.get((stage.hook or "").lower())
        if hook is None:
            return "ingress" if (stage.hook or "") == "ingress" else None
        table = (stage.table or "").lower()
        if table == "security":
            table = "filter"
        if table not in _TABLES[hook]:
            prio = stage.priority if stage.priority is not None else 0
            table = "raw" if prio <= -300 else "mangle" if prio <= -150 else "nat" if prio <= -100 else "filter"
            if table not in _TABLES[hook]:
                table = _TABLES[hook][-1]
        return f"{hook}.{table}"
    if k is StageKind.CONNTRACK:
        hook = (stage.hook or "").lower()
        if hook in ("output", "postrouting") or (not hook and local_origin):
            return "out.ct"
        return "pre.ct"
    if k is StageKind.ROUTING:
        d = stage.detail
        direction = d.direction if isinstance(d, RoutingDetail) else ""
        if direction.startswith("output") or (not direction and local_origin):
            return "route.out"
        return "route.in"
    return {
        StageKind.NIC: "egress" if local_origin else "ingress",
        StageKind.TC: "egress" if local_origin else "ingress",
        StageKind.IP_CHECKS: "ingress",
        StageKind.FORWARD: "fwd",
        StageKind.REROUTE: "reroute",
        StageKind.LOCAL_IN: "local",
        StageKind.SOCKET: "socket",
        StageKind.NEIGHBOUR: "neigh",
        StageKind.EGRESS: "egress",
        StageKind.LOOPBACK: "egress",
    }.get(k)


_RANK = {StageResult.SKIPPED: 0, StageResult.PASSED: 1, StageResult.DELIVERED: 2,
         StageResult.CHANGED: 3, StageResult.UNCERTAIN: 4, StageResult.DROPPED: 5}


def node_states(journey: Journey) -> dict[str, StageResult]:
    """The worst result seen at each node this journey touched."""
    local = journey.packet.local
    out: dict[str, StageResult] = {}
    if local:
        out["socket"] = StageResult.PASSED
    for s in journey.stages:
        key = node_of(s, local)
        if key is None:
            continue
        res = StageResult.UNCERTAIN if s.uncertain and s.result is not StageResult.DROPPED else s.result
        if key not in out or _RANK[res] > _RANK[out[key]]:
            out[key] = res
    return out


_STYLES = {
    StageResult.SKIPPED: "dim",
    StageResult.PASSED: "bold reverse green",
    StageResult.DELIVERED: "bold reverse green",
    StageResult.CHANGED: "bold reverse yellow",
    StageResult.UNCERTAIN: "bold reverse magenta",
    StageResult.DROPPED: "bold reverse underline red",
}


def render_path_map(journey: Journey | None, current: int | None = None) -> RenderableType:
    """The diagram, with the journey's nodes styled and a legend of where it stopped."""
    lines = TEMPLATE.split("\n")[1:-1]
    texts = [Text(line, style="dim") for line in lines]
    states = node_states(journey) if journey is not None else {}
    cur_key = None
    if journey is not None and current is not None and 0 <= current < len(journey.stages):
        cur_key = node_of(journey.stages[current], journey.packet.local)
    for key, (row, label, occ) in NODES.items():
        line = lines[row - 1]
        col = -1
        for _ in range(occ + 1):
            col = line.find(label, col + 1)
        if col < 0:
            continue
        state = states.get(key)
        style = _STYLES[state] + " not dim" if state is not None else "dim"
        if key == cur_key:
            style += " italic"
        texts[row - 1].stylize(style, col, col + len(label))
    legend = Text()
    legend.append(" lit", style="bold reverse green")
    legend.append(" passed  ")
    legend.append("lit", style="bold reverse yellow")
    legend.append(" changed  ")
    legend.append("lit", style="bold reverse underline red")
    legend.append(" stopped  ")
    legend.append("lit", style="bold reverse magenta")
    legend.append(" uncertain  ")
    legend.append("dim", style="dim")
    legend.append(" not on the path")
    parts: list[RenderableType] = [*texts, legend]
    if journey is not None:
        v = journey.verdict
        end = Text()
        end.append(" ends at: ", style="bold")
        end.append(f"{v.stage} — {v.disposition} [{v.code}] ")
        end.append(v.reason, style="italic")
        parts.append(end)
        path = " → ".join(
            f"{s.name}" + ("✗" if s.result is StageResult.DROPPED else "") for s in journey.stages
        )
        parts.append(Text(" path: " + path, style="dim"))
    else:
        parts.append(Text(" no journey yet: craft a packet (2) and run it", style="italic"))
    return Group(*parts)


class PathMap(Static):
    """The packet-flow diagram for the current journey."""
