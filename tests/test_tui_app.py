"""Pilot tests of the TUI: loading snapshots, crafting packets, stepping, replies, captures,
errors, exports; and the no-terminal guard of ``journey tui``.

Journeys come from ``tui_fixtures.fake_simulator`` so these tests exercise the UI, not the
engine (the engine's own tests and one integration test below cover the real simulation)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static
from tui_fixtures import (
    FIXTURE_FILE,
    dnat_journey,
    dropped_journey,
    fake_simulator,
    host_snapshot,
    native_journey,
    native_snapshot,
)
from tui_text import screen_text

from journey.app import JourneyApp
from journey.messages import Run
from journey.screens import HostScreen, JourneyScreen, PacketScreen, PathMapScreen, RulesScreen

SIZE = (80, 24)


async def settle(app: JourneyApp, pilot: object) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]


async def test_load_snapshot_file_shows_host() -> None:
    app = JourneyApp(str(FIXTURE_FILE), simulator=fake_simulator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.snapshot is not None and app.snapshot.provenance.hostname == "fixture-router"
        text = screen_text(app)
        assert "fixture-router" in text
        assert "conntrack (missing)" in text and "net.ipv4.ip_forward" in text
        assert isinstance(app.screen, HostScreen)
        await pilot.press("right", "right")  # tabs: Overview -> Interfaces -> Routes
        await pilot.pause()
        routes = app.screen.query_one("#routes", DataTable)
        assert routes.row_count == len(host_snapshot().routes)


async def test_bad_snapshot_is_reported_and_app_keeps_running(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    app = JourneyApp(str(bad), simulator=fake_simulator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.snapshot is None
        assert "cannot open" in app.status and "broken.json.gz" in app.status
        assert "cannot open" in screen_text(app)
        assert any("broken.json.gz" in str(n.message) for n in app._notifications)
        # still usable: load the good one
        app.load_snapshot(str(FIXTURE_FILE))
        await settle(app, pilot)
        assert app.snapshot is not None


async def test_craft_packet_validates_and_runs() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PacketScreen)
        screen.query_one("#f-src", Input).focus()
        await pilot.press(*"198.51.100.7")
        screen.query_one("#f-dst", Input).focus()
        await pilot.press(*"192.0.2.10")
        screen.query_one("#f-dport", Input).focus()
        await pilot.press(*"8x")
        await pilot.pause()
        spec = screen.query_one("#spec", Input).value
        assert spec == "tcp 198.51.100.7 > 192.0.2.10:8x"
        assert "✗" in str(screen.query_one("#spec-status", Static).content)
        await pilot.press("backspace", "0")
        await pilot.pause()
        assert screen.query_one("#spec", Input).value == "tcp 198.51.100.7 > 192.0.2.10:80"
        assert "valid" in str(screen.query_one("#spec-status", Static).content)
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert isinstance(app.screen, JourneyScreen)
        assert app.current_run is not None and app.current_run.journey.spec == "tcp 198.51.100.7 > 192.0.2.10:80"


async def test_spec_line_fills_the_form_and_bad_spec_keeps_text() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        spec = screen.query_one("#spec", Input)
        spec.focus()
        await pilot.press(*"local uid 1000 udp > 10.0.0.5:53 ttl 9")
        await pilot.pause()
        assert screen.query_one("#f-dport", Input).value == "53"
        assert screen.query_one("#f-uid", Input).value == "1000"
        assert screen.query_one("#f-ttl", Input).value == "9"
        await pilot.press(*" bogus")
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, PacketScreen)  # not run
        assert spec.value.endswith("ttl 9 bogus")  # nothing typed is lost
        status = str(screen.query_one("#spec-status", Static).content)
        assert "column" in status and "bogus" in status


async def test_step_through_every_stage() -> None:
    j = dnat_journey()
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((j,)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, JourneyScreen)
        for i, stage in enumerate(j.stages):
            assert screen.index == i
            card = screen_text(app)
            assert f"Stage {i + 1}/{len(j.stages)}: {stage.name}" in card
            await pilot.press("n")
            await pilot.pause()
        assert screen.index == len(j.stages) - 1  # stays on the last
        await pilot.press("home")
        assert screen.index == 0
        await pilot.press("end")
        await pilot.pause()
        assert "VERDICT" in screen_text(app) and "FORWARDED" in screen_text(app)
        await pilot.press("left", "p")
        assert screen.index == len(j.stages) - 3
        # the NAT stage shows its change old -> new
        screen.show(5)
        await pilot.pause()
        assert "dst 192.0.2.10 → 10.0.0.5" in screen_text(app)


async def test_follow_the_reply_and_back() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dropped_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, JourneyScreen)
        assert screen.index == 2  # a dropped journey opens on the stage that dropped it
        text = screen_text(app)
        assert "VERDICT  DROPPED [filter-drop]" in text and "press r to follow" in text
        await pilot.press("r")
        await settle(app, pilot)
        assert app.current_run is not None and app.current_run.journey.packet.local
        assert "(tcp-rst) to in eth0 tcp 198.51.100.7:40000" in screen_text(app)
        await pilot.press("b")
        await pilot.pause()
        assert app.current_run.journey.verdict.code == "filter-drop"


async def test_context_panel_and_enter_opens_rule() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dropped_journey(),)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        text = screen_text(app)
        assert "filter / INPUT  (iptables-nft)   policy DROP" in text
        assert "failed: --dport 22 (packet has 23)" in text
        assert "[2:120]" in text
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RulesScreen)
        table = app.screen.query_one("#rules-table", DataTable)
        assert table.cursor_row == 3  # rule 4, the last evaluated
        await pilot.press("slash", *"dport 22")
        await pilot.pause()
        assert table.row_count == 1 and "1 rules" in screen_text(app)


async def test_path_map_and_help() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dropped_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        assert isinstance(app.screen, PathMapScreen)
        text = screen_text(app)
        assert "POSTROUTING" in text and "ends at: INPUT filter" in text
        await pilot.press("question_mark")
        await pilot.pause()
        assert "follow the reply" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, PathMapScreen)




def write_small_pcap(path: Path) -> Path:
    """Three frames: a SYN to 80 from 198.51.100.7, its SYN-ACK, and a UDP query (struct only)."""
    import socket

    def ip4(src: str, dst: str, proto: int, l4: bytes) -> bytes:
        return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0x4000, 64, proto, 0,
                           socket.inet_aton(src), socket.inet_aton(dst)) + l4

    def tcp(sport: int, dport: int, flags: int) -> bytes:
        return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)

    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    frames = [
        eth + ip4("198.51.100.7", "192.0.2.10", 6, tcp(40000, 80, 0x02)),
        eth + ip4("192.0.2.10", "198.51.100.7", 6, tcp(80, 40000, 0x12)),
        eth + ip4("10.0.0.5", "10.0.0.1", 17, struct.pack("!HHHH", 5353, 53, 8, 0)),
    ]
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000, n * 1000, len(fr), len(fr)) + fr)
    return path


async def test_capture_picker_filter_and_flow(tmp_path: Path) -> None:
    pcap = write_small_pcap(tmp_path / "small.pcap")
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, pcap=str(pcap))
    seen: list[object] = []

    def sim(snap: object, packet: object, flows: object = (), spec: str = "") -> object:
        seen.append(packet)
        return fake_simulator(snap, packet, flows, spec)  # type: ignore[arg-type]

    app._simulator = sim  # type: ignore[assignment]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.current_mode == "packet"  # --pcap opens on the capture picker
        screen = app.screen
        table = screen.query_one("#frames", DataTable)
        assert table.row_count == 3
        table.focus()
        await pilot.press("slash", *"udp")
        await pilot.pause()
        assert table.row_count == 1 and "1 match 'udp'" in screen_text(app)
        await pilot.press("ctrl+a", "ctrl+k", *"tcp !syn", "enter")  # "!word" excludes
        await pilot.pause()
        assert table.row_count == 2
        await pilot.pause()
        assert "destination 192.0.2.10 is in 192.0.2.0/24 on eth0" in screen_text(app)
        await pilot.press("f")  # replay the whole flow
        await settle(app, pilot)
        assert isinstance(app.screen, JourneyScreen)
        assert app.current_run is not None and len(app.current_run.journeys) == 2
        assert "flow of frame 1 (2 packets" in screen_text(app)
        first, second = seen
        assert first.iif == "eth0" and not first.local  # type: ignore[attr-defined]
        assert second.local  # type: ignore[attr-defined]  # sent by the host itself
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.current_run.index == 1


async def test_bad_capture_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "nope.pcap"
    bad.write_text("not a capture")
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, pcap=str(bad))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.capture is None
        assert any("not a pcap" in str(n.message) for n in app._notifications)


async def test_export_markdown_and_json(tmp_path: Path) -> None:
    pytest.importorskip("journey.render.markdown")
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dnat_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.do_path_action("export-md", str(tmp_path / "j.md"))
        app.do_path_action("export-json", str(tmp_path / "j.json"))
        app.do_path_action("save-snapshot", str(tmp_path / "s.json.gz"))
        md = (tmp_path / "j.md").read_text()
        assert "PREROUTING nat" in md
        data = json.loads((tmp_path / "j.json").read_text())
        assert data["format"] == "journey.trace"
        assert (tmp_path / "s.json.gz").exists()
        app.do_path_action("save-snapshot", str(tmp_path / "s.json.gz"))  # exists: error shown
        await pilot.pause()
        assert any("already exists" in str(n.message) for n in app._notifications)


async def test_palette_has_the_commands() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator)
    async with app.run_test(size=SIZE):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for want in ("Load snapshot", "Load capture", "Re-collect live host", "Save snapshot",
                     "Export journey as Markdown", "Export journey as JSON", "Save screenshot (SVG)"):
            assert want in titles


def test_no_tty_prints_hint_and_exits_2() -> None:
    out = subprocess.run([sys.executable, "-m", "journey", "tui", str(FIXTURE_FILE)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "journey trace" in out.stderr and len(out.stderr.strip().splitlines()) == 1


async def test_real_engine_end_to_end() -> None:
    """With the real engine: a spec given on the command line runs once the snapshot loads."""
    pytest.importorskip("journey.engine.simulate")
    spec = "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22"
    app = JourneyApp(str(FIXTURE_FILE), spec=spec)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await settle(app, pilot)
        assert isinstance(app.screen, JourneyScreen) and app.current_run is not None
        j = app.current_run.journey
        assert j.spec == spec
        screen = app.screen
        for i in range(len(j.stages)):
            screen.show(i)
            await pilot.pause()
            assert f"Stage {i + 1}/{len(j.stages)}" in screen_text(app)
        if any(r.packet is not None for r in j.verdict.replies):
            await pilot.press("r")
            await settle(app, pilot)
            assert app.current_run.journey is not j and app.history
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, PacketScreen)
        assert app.screen.query_one("#spec", Input).value


async def test_live_collection_failure_offers_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    import journey.snapshot.collect as collect_mod
    from journey.errors import CollectError

    def fail(netns: object = None, progress: object = None) -> object:
        raise CollectError("live collection needs Linux with /proc mounted")

    monkeypatch.setattr(collect_mod, "collect", fail)
    monkeypatch.setattr("journey.app.bundled_snapshots", lambda: [FIXTURE_FILE])
    app = JourneyApp(live=True, simulator=fake_simulator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "needs Linux with /proc mounted" in text
        assert FIXTURE_FILE.name in text  # offered as a sample
        app.screen.query_one("#samples").focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.snapshot is not None and "fixture-router" in screen_text(app)


# -- stage rail, details, path map, dissection, native nft ---------------------------------------

def test_rail_names_are_compact_and_disambiguated() -> None:
    from dataclasses import replace

    from journey.model.journey import RuleEval
    from journey.widgets.stage_views import rail_names

    j = dnat_journey()
    names = rail_names(j)
    assert names[2:6] == ["PRE raw", "conntrack", "PRE mangle", "PRE nat"]
    assert "FWD filter" in names and "POST nat" in names
    assert all(len(n) <= 18 for n in names)
    # the same table at the same hook in iptables-nft and iptables-legacy: a short suffix each
    fwd = next(s for s in j.stages if s.name == "FORWARD filter")
    legacy = replace(fwd, name="FORWARD · filter (iptables-legacy)",
                     rules=(RuleEval("filter", "FORWARD", 1, "-A FORWARD -j ACCEPT", True, backend="legacy"),))
    two = replace(j, stages=(*j.stages[:9], legacy, *j.stages[9:]))
    names = rail_names(two)
    assert "FWD filter ·ipt" in names and "FWD filter ·leg" in names
    # native nft chains are named by their table
    assert rail_names(native_journey())[1:] == ["IN filter", "IN fw"]


async def test_long_journey_rail_keeps_the_stage_in_view() -> None:
    from dataclasses import replace

    j = dnat_journey()
    long = replace(j, stages=j.stages * 3)  # 36 stages, more than the rail's rows at 80x24
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((long,)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3", "end")
        await pilot.pause()
        rail = app.screen.query_one("#rail")
        assert rail.scroll_offset.y > 0
        text = screen_text(app)
        assert "36 transmit on" in text and "Stage 36/36" in text
        lines = [ln for ln in text.split("\n") if "▕" in ln]
        assert all(ln.index("▕") < 30 for ln in lines)  # one line per stage, narrow rail


async def test_details_scroll_with_space_and_pageup() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dropped_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        details = app.screen.query_one("#details")
        assert details.scroll_y == 0
        await pilot.press("space")
        await pilot.pause()
        assert details.scroll_y > 0
        await pilot.press("pageup")
        await pilot.pause()
        assert details.scroll_y == 0


async def test_path_map_scales_to_big_terminals() -> None:
    for size, large in (((80, 24), False), ((120, 40), True)):
        app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dnat_journey(),)))
        async with app.run_test(size=size) as pilot:
            await pilot.press("3", "n", "5")
            await pilot.pause()
            text = screen_text(app)
            assert ("PREROUTING hook" in text) is large
            assert ("│ routing decision │" in text) is large
            assert "ends at: transmit on eth1" in text and "PRE nat → routing decision" in text
            assert "italic this stage" in text


async def test_native_nft_in_rules_browser_and_enter_opens_the_rule() -> None:
    app = JourneyApp(snapshot=native_snapshot(), simulator=fake_simulator, run=Run((native_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        text = screen_text(app)
        assert "IN fw" in text and "inet fw / input  (nft, hook input prio 10)" in text
        assert "# handle 4" in text
        await pilot.press("enter")  # the stage that rejected: native rule handle 4
        await settle(app, pilot)
        assert isinstance(app.screen, RulesScreen)
        text = screen_text(app)
        assert "nft inet fw / input  type filter hook input" in text
        assert "priority 10 policy accept" in text
        assert "ip filter: iptables-nft" in text  # iptables-nft's table: listed once, above
        assert "inet fw (4)" in text
        table = app.screen.query_one("#rules-table", DataTable)
        assert table.cursor_row == 1 and table.row_count == 3
        assert "inet fw/input #2 handle 4" in text  # the detail line under the table
        assert "reject with tcp reset" in text.split("handle 4")[-1]  # the whole rule, wrapped
        await pilot.press("slash", *"blocklist")
        await pilot.pause()
        assert "search 'blocklist': 1 rules" in screen_text(app)


async def test_iptables_only_snapshot_has_no_nft_node() -> None:
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((dnat_journey(),)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(app, pilot)
        text = screen_text(app)
        assert "ipv4 iptables-nft (10)" in text and "▼ nft (" not in text


async def test_capture_dissection_pane(tmp_path: Path) -> None:
    pcap = write_small_pcap(tmp_path / "small.pcap")
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, pcap=str(pcap))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "frames"
        assert "###[" not in screen_text(app)  # nothing dissected until asked
        await pilot.press("d")
        await settle(app, pilot)
        text = screen_text(app)
        assert "frame 1: 54 bytes captured" in text and "###[ Ethernet ]###" in text
        await pilot.press("down")
        await settle(app, pilot)
        assert "frame 2: 54 bytes" in screen_text(app)
        await pilot.press("d")
        await pilot.pause()
        assert "###[" not in screen_text(app)


async def test_square_brackets_typed_by_the_user_are_text_not_markup(tmp_path: Path) -> None:
    """Regression (monkey test): "[/x" typed in the frame filter or the rule search, or in a file
    name, crashed the app with a MarkupError; IPv6 sockets "[fe80::1]:22" lost their address."""
    import ipaddress
    from dataclasses import replace

    from journey.model.family import Family
    from journey.model.snapshot import Process, Socket

    pcap = write_small_pcap(tmp_path / "small.pcap")
    snap = host_snapshot()
    v6 = Socket("tcp", Family.IPV6, "LISTEN", ipaddress.ip_address("fe80::1"), 22, uid=0,
                processes=(Process(7, "[odd]"),))
    snap = replace(snap, sockets=(*snap.sockets, v6))
    app = JourneyApp(snapshot=snap, simulator=fake_simulator, pcap=str(pcap))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"[/x")
        await pilot.pause()
        assert "0 match '[/x'" in screen_text(app)
        await pilot.press("escape", "4")
        await pilot.pause()
        chain_title = str(app.screen.query_one("#rules-title", Static).content)
        await pilot.press("slash", *"dnat [/x")
        await pilot.pause()
        assert "search 'dnat [/x': 0 rules" in screen_text(app)
        await pilot.press("escape")  # clearing the search shows the chain again
        await pilot.pause()
        assert str(app.screen.query_one("#rules-title", Static).content) == chain_title
        app.do_path_action("load-snapshot", str(tmp_path / "[/nope].json"))
        await settle(app, pilot)
        assert any("[/nope]" in str(n.message) for n in app._notifications)
        await pilot.press("1")
        await pilot.pause()
        app.screen.query_one("#host-tabs").active = "tab-sockets"  # type: ignore[attr-defined]
        await pilot.pause()
        assert "[fe80::1]:22" in screen_text(app) and "[odd](7)" in screen_text(app)
        assert app.is_running


async def test_edit_puts_the_cursor_after_the_spec() -> None:
    """Regression (tmux): after `e`, the first key typed replaced the whole selected spec."""
    j = dnat_journey()
    app = JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=Run((j,)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        spec = app.screen.query_one("#spec", Input)
        before = spec.value
        assert before and spec.has_focus
        await pilot.press(*" ttl 3")
        await pilot.pause()
        assert spec.value == before + " ttl 3"
