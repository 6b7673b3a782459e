"""Packet screen: craft a packet with the form, or pick one (or a whole flow) from a capture."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, TabbedContent, TabPane

from journey.model.packet import Packet
from journey.model.snapshot import HostSnapshot
from journey.widgets.capture_picker import GUESS, LOCAL, CapturePicker
from journey.widgets.packet_form import PacketForm


class PacketScreen(Screen[None]):
    """Choose the packet to follow (mode ``packet``)."""

    AUTO_FOCUS = "ContentTabs"  # digits still switch screens until a field is entered

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="packet-tabs"):
            with TabPane("Craft", id="tab-craft"):
                yield PacketForm(id="form")
            with TabPane("Capture", id="tab-capture"):
                yield CapturePicker(id="picker")
        yield Footer()

    def on_mount(self) -> None:
        app: Any = self.app
        self.watch(app, "snapshot", self._on_snapshot)
        self.watch(app, "capture", self._on_capture)
        form = self.query_one(PacketForm)
        if app.pending_spec:
            from journey.widgets.packet_form import check_spec

            c = check_spec(app.pending_spec)
            if c.packet is not None:
                form.fill(c.packet, app.pending_spec)
            else:
                form.query_one("#spec").value = app.pending_spec  # type: ignore[attr-defined]

    def _on_snapshot(self, snap: HostSnapshot | None) -> None:
        names = tuple(i.name for i in snap.interfaces) if snap is not None else ()
        self.query_one(PacketForm).set_interfaces(names)
        self.query_one(CapturePicker).set_interfaces(names)

    def _on_capture(self, capture: Any) -> None:
        self.query_one(CapturePicker).set_capture(capture)
        if capture is not None:
            self.query_one("#packet-tabs", TabbedContent).active = "tab-capture"
            self._focus_frames()

    def on_screen_resume(self) -> None:
        if self.query_one("#packet-tabs", TabbedContent).active == "tab-capture":
            self._focus_frames()
        else:
            self._focus_spec()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id != self.query_one("#packet-tabs", TabbedContent).active:
            return  # a stale event (the initial activation arrives after a capture switched tabs)
        if event.pane.id == "tab-capture":
            self._focus_frames()
        else:
            self._focus_spec()

    def _focus_spec(self) -> None:
        """On the Craft tab, typing goes to the spec line unless a form field has focus
        (escape leaves it; then the digit keys switch screens again).

        Decided when it runs, not when asked: focusing a widget makes TabbedContent show that
        widget's tab, so a late focus must never pull the view back from the capture picker."""

        def focus_if_still_crafting() -> None:
            tabs = self.query_one("#packet-tabs", TabbedContent)
            if tabs.active != "tab-craft" or self.app.screen is not self:
                return
            focused = self.app.focused
            if focused is None or self.query_one(PacketForm) not in focused.ancestors_with_self:
                self.query_one("#spec", Input).focus(scroll_visible=False)

        self.call_after_refresh(focus_if_still_crafting)

    def _focus_frames(self) -> None:
        """With a capture open, keys go to its frame list (digits still switch screens)."""
        if self.query_one(CapturePicker).capture is not None:
            self.query_one("#frames").focus()

    def edit_packet(self, packet: Packet, spec: str) -> None:
        """Show the form filled with ``packet`` (the Journey screen's ``e``)."""
        from journey.packets.spec import format_spec

        self.query_one("#packet-tabs", TabbedContent).active = "tab-craft"
        self.query_one(PacketForm).fill(packet, spec or format_spec(packet))
        line = self.query_one("#spec", Input)
        line.focus()  # focus is set from the app's queue, then Focus selects all the text:
        # queued after both, the cursor goes to the end (typing must not replace the spec)
        self.app.call_later(line.call_later, line.action_end)

    def on_packet_form_run(self, event: PacketForm.Run) -> None:
        app: Any = self.app
        app.pending_spec = event.spec
        app.simulate_packets([(event.packet, event.spec)])

    def on_capture_picker_simulate(self, event: CapturePicker.Simulate) -> None:
        from journey.packets.pcap import frame_to_packet, guess_arrival, with_arrival
        from journey.packets.spec import format_spec

        app: Any = self.app
        snap: HostSnapshot | None = app.snapshot
        cap = self.query_one(CapturePicker).capture
        if snap is None or cap is None:
            app.notify("open a snapshot first (1: Host)", severity="error")
            return
        first = event.frames[0]
        chosen = next((f for f in event.frames if f.no == first.no), first)
        jobs: list[tuple[Packet, str]] = []
        try:
            for f in event.frames:
                pkt = frame_to_packet(cap, f)
                same_dir = (f.src, f.sport) == (chosen.src, chosen.sport)
                if event.arrival == LOCAL and same_dir:
                    pkt = with_arrival(pkt, None, local=True)
                elif event.arrival not in (GUESS, LOCAL) and same_dir:
                    pkt = with_arrival(pkt, event.arrival)
                else:
                    g = guess_arrival(snap, pkt)
                    pkt = with_arrival(pkt, g.iif, local=g.local)
                jobs.append((pkt, format_spec(pkt)))
        except Exception as e:
            from journey.app import error_text

            app.notify(error_text(e), severity="error")
            return
        label = (f"flow of frame {chosen.no} ({len(jobs)} packets, conntrack carried)"
                 if event.flow else f"frame {chosen.no} of {cap.path.name}")
        app.simulate_packets(jobs, label)
