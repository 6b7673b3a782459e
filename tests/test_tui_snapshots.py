"""SVG snapshot tests of the main screens at 80x24 and 120x40, fed from fixture values only
(no clocks, no live data, no engine). Regenerate with ``pytest --snapshot-update`` after a
deliberate UI change or a textual upgrade (textual is pinned)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tui_fixtures import (
    SPEC,
    dnat_journey,
    dropped_journey,
    fake_simulator,
    host_snapshot,
    native_journey,
    native_snapshot,
)

from journey.app import JourneyApp
from journey.messages import Run

SIZES = [(80, 24), (120, 40)]


def make_app(journey: Any = None) -> JourneyApp:
    run = Run((journey,)) if journey is not None else Run((dnat_journey(),))
    return JourneyApp(snapshot=host_snapshot(), simulator=fake_simulator, run=run, spec=SPEC)


def keys(*pressed: str) -> Callable[[Any], Awaitable[None]]:
    async def run_before(pilot: Any) -> None:
        await pilot.pause()
        for k in pressed:
            await pilot.press(k)
            await pilot.pause()
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_host(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=keys("1"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_journey_nat_stage(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=keys("3", "n", "n", "n", "n", "n"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_journey_dropped_verdict(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(dropped_journey()), terminal_size=size, run_before=keys("3"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_packet_form(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=keys("2"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rules(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=keys("4"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_path_map(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(dropped_journey()), terminal_size=size, run_before=keys("5"))


def test_rules_native_nft(snap_compare: Any) -> None:
    """enter on the stage a native nft rule rejected: the rules browser on that rule."""
    app = JourneyApp(snapshot=native_snapshot(), simulator=fake_simulator, run=Run((native_journey(),)))

    async def run_before(pilot: Any) -> None:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=keys("question_mark"))
