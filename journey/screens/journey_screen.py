"""Journey screen (the main one): the stage rail, the stage card, the packet and the context.

Every stage's panels are rendered once when a journey arrives, so stepping only swaps
precomputed renderables (no re-simulation, no re-rendering)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static

from journey.messages import Run
from journey.model.journey import RoutingDetail, StageKind
from journey.widgets.nft_rules import cached_native_rules
from journey.widgets.stage_views import (
    ContextPanel,
    PacketPanel,
    StageCard,
    StageRail,
    packet_line,
    render_card,
    render_context,
    render_packet,
    stage_backend,
)


class JourneyScreen(Screen[None]):
    """Step through the journey of the current packet (mode ``journey``)."""

    _STEP = Binding.Group("step", compact=True)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,p", "step(-1)", "Prev", id="prev", group=_STEP, key_display="←",
                tooltip="Previous stage"),
        Binding("right,n", "step(1)", "Next", id="next", group=_STEP, key_display="→",
                tooltip="Next stage"),
        Binding("home", "jump(0)", "First", show=False, id="first", tooltip="First stage"),
        Binding("end", "jump(-1)", "Last", show=False, id="last", tooltip="Last stage (the verdict)"),
        Binding("enter", "open", "Open", id="open", priority=True, tooltip="Open this stage's rule or route in its browser"),
        Binding("r", "reply", "Reply", id="reply", tooltip="Follow the reply the host sends back"),
        Binding("b", "back", "Back", show=False, id="back", tooltip="Back to the journey before the reply"),
        Binding("e", "edit", "Edit", id="edit", tooltip="Edit the packet and run it again"),
        Binding("pagedown,space", "scroll_details(1)", "Scroll", show=False, id="details-down",
                priority=True, tooltip="Scroll the stage details down a page"),
        Binding("pageup", "scroll_details(-1)", "Scroll up", show=False, id="details-up",
                priority=True, tooltip="Scroll the stage details up a page"),
        Binding("left_square_bracket", "packet(-1)", "Prev pkt", show=False, id="prev-packet",
                tooltip="Previous packet of the replayed flow"),
        Binding("right_square_bracket", "packet(1)", "Next pkt", show=False, id="next-packet",
                tooltip="Next packet of the replayed flow"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.index = 0
        self._cards: list[RenderableType] = []
        self._packets: list[RenderableType] = []
        self._contexts: list[RenderableType] = []
        self._run: Run | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("No journey yet: press 2 to craft a packet.", id="journey-title")
        with Horizontal(id="journey-main"):
            yield StageRail(id="rail")
            with VerticalScroll(id="details"):
                yield StageCard(id="card")
                yield PacketPanel(id="packet-panel")
                yield ContextPanel(id="context")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "current_run", self._on_run)
        self.query_one("#rail").focus()

    def _on_run(self, run: Run | None) -> None:
        self._run = run
        if run is None:
            return
        j = run.journey
        snap = self.app.snapshot  # type: ignore[attr-defined]
        self._cards = [render_card(j, i) for i in range(len(j.stages))]
        self._packets = [render_packet(j, i) for i in range(len(j.stages))]
        nft = cached_native_rules(snap)  # parsed by the simulate worker (never here)
        self._contexts = [render_context(s, snap, nft=nft) for s in j.stages]
        title = Text()
        v = j.verdict
        bad = v.disposition in ("dropped", "rejected")
        title.append(f" {v.disposition.upper()} ", style="bold reverse red" if bad else "bold reverse green")
        title.append(f" {packet_line(j.packet)}", style="bold")
        where = "local process" if j.packet.local else (f"in {j.packet.iif}" if j.packet.iif else "")
        if where:
            title.append(f"  ({where})", style="dim")
        if len(run.journeys) > 1:
            title.append(f"  packet {run.index + 1}/{len(run.journeys)} ([ ])", style="bold")
        if run.label:
            title.append(f"  {run.label}", style="italic")
        self.query_one("#journey-title", Static).update(title)
        rail = self.query_one("#rail", StageRail)
        rail.set_journey(j)
        self.index = 0
        self.show(len(j.stages) - 1 if v.disposition in ("dropped", "rejected") else 0)

    def show(self, index: int) -> None:
        """Show stage ``index`` (precomputed panels; instant)."""
        if not self._cards:
            return
        index = max(0, min(index, len(self._cards) - 1))
        self.index = index
        self.app.stage_index = index  # type: ignore[attr-defined]
        self.query_one("#card", StageCard).update(self._cards[index])
        self.query_one("#packet-panel", PacketPanel).update(self._packets[index])
        self.query_one("#context", ContextPanel).update(self._contexts[index])
        rail = self.query_one("#rail", StageRail)
        if rail.highlighted != index:
            rail.highlighted = index
        self.query_one("#details", VerticalScroll).scroll_home(animate=False)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "rail" and event.option_index != self.index:
            self.show(event.option_index)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "rail":  # a click shows the stage; enter opens its rule
            event.stop()
            self.show(event.option_index)

    def action_scroll_details(self, pages: int) -> None:
        details = self.query_one("#details", VerticalScroll)
        if pages > 0:
            details.scroll_page_down(animate=False)
        else:
            details.scroll_page_up(animate=False)

    def action_step(self, delta: int) -> None:
        self.show(self.index + delta)

    def action_jump(self, where: int) -> None:
        self.show(where if where >= 0 else len(self._cards) - 1)

    def action_packet(self, delta: int) -> None:
        run = self._run
        if run is None or len(run.journeys) < 2:
            return
        i = max(0, min(run.index + delta, len(run.journeys) - 1))
        if i != run.index:
            self.app.current_run = Run(run.journeys, run.label, i)  # type: ignore[attr-defined]

    async def action_open(self) -> None:
        """Open the stage's rule (rules browser) or route (Host routes)."""
        run = self._run
        if run is None:
            return
        stage = run.journey.stages[self.index]
        app: Any = self.app
        if stage.kind is StageKind.NETFILTER:
            matched = [r for r in stage.rules if r.matched]
            target = matched[-1] if matched else (stage.rules[-1] if stage.rules else None)
            backend = stage_backend(stage)
            if backend == "native":
                nft = cached_native_rules(app.snapshot)
                c = None if nft is None else nft.base_chain(stage.family, stage.table, stage.hook,
                                                            stage.priority)
                chain = target.chain if target else (c.name if c is not None else "")
                await app.switch_mode("rules")
                app.screen.select_native(stage.family or "", stage.table or "", chain,
                                         target.index if target else 0,
                                         target.handle if target else None)
                return
            chain = target.chain if target else (stage.hook or "").upper()
            await app.switch_mode("rules")
            app.screen.select_rule(stage.table or "filter", chain, target.index if target else 0,
                                   family=stage.family, backend=backend)
        elif isinstance(stage.detail, RoutingDetail) and stage.detail.route:
            await app.switch_mode("host")
            app.screen.select_route(stage.detail.route)
        else:
            app.notify("this stage has no rule or route to open", severity="warning")

    def action_reply(self) -> None:
        self.app.follow_reply()  # type: ignore[attr-defined]

    def action_back(self) -> None:
        self.app.go_back()  # type: ignore[attr-defined]

    async def action_edit(self) -> None:
        app: Any = self.app
        await app.switch_mode("packet")
        if self._run is not None:
            app.screen.edit_packet(self._run.journey.packet, self._run.journey.spec)
