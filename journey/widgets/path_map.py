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


def render_path_map(journey: Journey | None, current: int | None = None,
                    large: bool = False) -> RenderableType:
    """The diagram, with the journey's nodes styled and a legend of where it stopped.

    ``large`` draws the boxed diagram with hook names (118 columns, 25 rows) for big
    terminals and projectors; the default fits 80x24."""
    states = node_states(journey) if journey is not None else {}
    cur_key = None
    if journey is not None and current is not None and 0 <= current < len(journey.stages):
        cur_key = node_of(journey.stages[current], journey.packet.local)

    def style_of(key: str) -> str:
        state = states.get(key)
        style = _STYLES[state] + " not dim" if state is not None else "dim"
        return style + " italic" if key == cur_key else style

    if large:
        lines, boxes = _large_diagram()
        texts = [Text(line, style="dim") for line in lines]
        for row, line in enumerate(lines):
            if "hook" in line:
                for word in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"):
                    col = line.find(word + " hook")
                    if col >= 0:
                        texts[row].stylize("bold not dim", col, col + len(word))
        for key, (x, y, w) in boxes.items():
            for dy in range(3):
                texts[y + dy].stylize(style_of(key), x, x + w)
    else:
        lines = TEMPLATE.split("\n")[1:-1]
        texts = [Text(line, style="dim") for line in lines]
        for key, (row, label, occ) in NODES.items():
            line = lines[row - 1]
            col = -1
            for _ in range(occ + 1):
                col = line.find(label, col + 1)
            if col < 0:
                continue
            texts[row - 1].stylize(style_of(key), col, col + len(label))
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
    if cur_key is not None:
        legend.append("  italic", style="italic")
        legend.append(" this stage")
    parts: list[RenderableType] = [*texts, Text(""), legend] if large else [*texts, legend]
    if journey is not None:
        v = journey.verdict
        end = Text()
        end.append(" ends at: ", style="bold")
        end.append(f"{v.stage} — {v.disposition} [{v.code}] ")
        end.append(v.reason, style="italic")
        parts.append(end)
        from journey.widgets.stage_views import rail_names

        path = Text(" path: ", style="dim")
        for n, (s, name) in enumerate(zip(journey.stages, rail_names(journey), strict=True)):
            if n:
                path.append(" → ", style="dim")
            dropped = s.result is StageResult.DROPPED
            path.append(name + (" ✗" if dropped else ""), style="bold" if dropped else "dim")
        parts.append(path)
    else:
        parts.append(Text(" no journey yet: craft a packet (2) and run it", style="italic"))
    return Group(*parts)


class PathMap(Static):
    """The packet-flow diagram for the current journey: the boxed large diagram when the
    screen has room for it (projectors), the compact one at 80x24."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(render_path_map(None), id=id)
        self._journey: Journey | None = None
        self._current: int | None = None
        self._large = False

    def show(self, journey: Journey | None, current: int | None = None) -> None:
        self._journey, self._current = journey, current
        self._draw()

    def _fits_large(self) -> bool:
        area = self.screen.size  # minus header and footer rows
        return area.width >= LARGE_WIDTH + 2 and area.height - 2 >= LARGE_HEIGHT

    def _draw(self) -> None:
        self._large = self._fits_large()
        self.update(render_path_map(self._journey, self._current, large=self._large))

    def on_resize(self) -> None:
        if self._fits_large() != self._large:
            self._draw()


LARGE_WIDTH = 118
"""Columns the large diagram needs (the small one fits 78)."""
LARGE_HEIGHT = 25 + 5
"""Rows the large diagram and its legend need."""


# -- the large diagram (trainers project it): boxes, hook names, edge labels ---------------------

class _Canvas:
    """A character grid to draw the large diagram on; records each node's box."""

    def __init__(self, width: int, height: int) -> None:
        self.rows = [[" "] * width for _ in range(height)]
        self.boxes: dict[str, tuple[int, int, int]] = {}  # key -> (x, y, width); 3 rows high

    def put(self, x: int, y: int, text: str) -> None:
        for i, ch in enumerate(text):
            self.rows[y][x + i] = ch

    def box(self, key: str, x: int, y: int, label: str, width: int = 0) -> int:
        w = max(width, len(label) + 4)
        self.put(x, y, "┌" + "─" * (w - 2) + "┐")
        self.put(x, y + 1, "│" + label.center(w - 2) + "│")
        self.put(x, y + 2, "└" + "─" * (w - 2) + "┘")
        self.boxes[key] = (x, y, w)
        return x + w  # first column after the box

    def chain(self, y: int, x: int, nodes: list[tuple[str, str]], gap: int = 4) -> int:
        """Boxes left to right on rows y..y+2, joined by arrows; returns the end column."""
        for n, (key, label) in enumerate(nodes):
            if n:
                self.put(x, y + 1, "─" * (gap - 1) + "►")
                x += gap
            x = self.box(key, x, y, label)
        return x

    def hline(self, y: int, x1: int, x2: int) -> None:
        for x in range(min(x1, x2), max(x1, x2) + 1):
            self.rows[y][x] = "─"

    def vline(self, x: int, y1: int, y2: int, arrow: bool = False) -> None:
        for y in range(y1, y2 + 1):
            self.rows[y][x] = "│"
        if arrow:
            self.rows[y2][x] = "▼"

    def lines(self) -> list[str]:
        return ["".join(r).rstrip() for r in self.rows]


def _large_diagram() -> tuple[list[str], dict[str, tuple[int, int, int]]]:
    c = _Canvas(LARGE_WIDTH, 25)
    # PREROUTING
    c.put(17, 0, "PREROUTING hook")
    c.chain(1, 1, [("ingress", "ingress"), ("pre.raw", "raw"), ("pre.ct", "conntrack"),
                   ("pre.mangle", "mangle"), ("pre.nat", "nat (DNAT)"),
                   ("route.in", "routing decision")])
    rx, _, rw = c.boxes["route.in"]
    local_x, fwd_x = rx + 4, rx + rw - 5
    c.put(local_x, 3, "┬")
    c.put(fwd_x, 3, "┬")
    # for this host: down, left, down into local delivery
    c.vline(local_x, 4, 4)
    c.put(local_x, 5, "┘")
    c.hline(5, 5, local_x - 1)
    c.put(4, 5, "┌")
    c.vline(4, 6, 7, arrow=True)
    c.put(24, 5, " for this host (local) ")
    # to another host: down, left, down into forward checks
    c.vline(fwd_x, 4, 5)
    c.put(fwd_x, 6, "┘")
    # INPUT and FORWARD
    c.put(25, 7, "INPUT hook")
    c.chain(8, 1, [("local", "local delivery"), ("in.mangle", "mangle"), ("in.filter", "filter"),
                   ("in.nat", "nat")])
    fx = c.boxes["in.nat"][0] + c.boxes["in.nat"][2] + 4
    c.put(fx + 23, 7, "FORWARD hook")
    end = c.chain(8, fx, [("fwd", "forward checks"), ("fwd.mangle", "mangle"), ("fwd.filter", "filter")])
    fcx = fx + 6
    c.hline(6, fcx + 1, fwd_x - 1)
    c.put(fcx, 6, "┌")
    c.vline(fcx, 7, 7, arrow=True)
    c.put(fcx + 3, 6, " forward ")
    # INPUT nat -> socket
    nx, _, nw = c.boxes["in.nat"]
    sx = nx + nw // 2
    c.put(sx, 10, "┬")
    c.vline(sx, 11, 12, arrow=True)
    c.box("socket", sx - 15, 13, "socket / local process", 31)
    # socket -> output routing
    c.put(sx - 15, 14, "┤")
    c.hline(14, 11, sx - 16)
    c.put(10, 14, "┌")
    c.vline(10, 15, 16, arrow=True)
    # OUTPUT
    c.put(24, 16, "OUTPUT hook")
    c.chain(17, 1, [("route.out", "routing (output)"), ("out.raw", "raw"), ("out.ct", "conntrack"),
                    ("out.mangle", "mangle"), ("out.nat", "nat"), ("out.filter", "filter"),
                    ("reroute", "reroute")])
    rrx, _, rrw = c.boxes["reroute"]
    rr = rrx + rrw // 2
    c.put(rr, 19, "┬")
    # FORWARD filter -> far right -> down -> joins the line to POSTROUTING
    ffx, _, ffw = c.boxes["fwd.filter"]
    right = max(end, rrx + rrw) + 2
    c.hline(9, ffx + ffw, right - 1)
    c.put(right, 9, "┐")
    c.vline(right, 10, 19)
    c.put(right, 20, "┘")
    # POSTROUTING
    px = c.boxes["out.ct"][0]
    c.hline(20, px + 5, right - 1)
    c.put(rr, 20, "┴")
    c.put(px + 4, 20, "┌")
    c.vline(px + 4, 21, 21, arrow=True)
    c.put(px - 18, 21, "POSTROUTING hook")
    c.chain(22, px, [("post.mangle", "mangle"), ("post.nat", "nat (SNAT)"), ("neigh", "neighbour"),
                     ("egress", "egress (qdisc)")])
    return c.lines(), c.boxes

