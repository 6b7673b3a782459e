"""Monkey tests of the TUI: a seeded random walk over every key the app and its screens bind,
on each bundled snapshot with the REAL engine and its capture loaded. After every key the app
must still be running (Textual also re-raises an unhandled exception when ``run_test`` exits);
at the end the current screen must still render.

Never pressed: ``q`` / ``ctrl+q`` (quit) and ``c`` (collects the live host); the command
palette is opened and closed again with escape, never run (it can save files or quit)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_text import screen_text

from journey.app import JourneyApp, bundled_snapshots

SNAPSHOTS = bundled_snapshots()

# every binding of the app, its screens and widgets (see journey/app.py, journey/screens/,
# journey/widgets/); weights make navigation and simulation frequent
KEYS: list[tuple[str, int]] = [
    *[(k, 3) for k in "12345"],
    ("left", 4), ("right", 4), ("p", 2), ("n", 2), ("home", 1), ("end", 1), ("enter", 6),
    ("r", 3), ("b", 2), ("e", 2), ("left_square_bracket", 2), ("right_square_bracket", 2),
    ("space", 2), ("pagedown", 2), ("pageup", 2), ("up", 4), ("down", 5), ("tab", 5),
    ("shift+tab", 3), ("escape", 4), ("question_mark", 1), ("slash", 2), ("t", 2), ("f", 3),
    ("d", 2), ("ctrl+r", 3), ("o", 1), ("l", 1), ("backspace", 2),
]
# typed into whatever has focus; outside a text field q (quit) and c (collect) are skipped
PRINTABLE = [*"0123456789.:> ", "tcp", "udp", "icmp", "in", "eth0", "10.0.0.1", "192.0.2.10:80",
             "-", "!", "x", "z"]
NEVER = {"q", "c"}
PALETTE = ("ctrl+p", "escape")  # pressed together: open the palette and close it


def capture_for(snapshot: Path) -> Path:
    """The pcap recorded beside a bundled snapshot (``gw1.json.gz`` -> ``gw1-any.pcap``)."""
    stem = snapshot.name.removesuffix(".json.gz")
    found = sorted(snapshot.parent.glob(f"{stem}*.pcap"))
    assert found, f"no pcap for {snapshot}"
    return found[0]


def key_sequence(seed: int, n: int) -> list[tuple[str, ...]]:
    """``n`` seeded random steps; each is one key, a typed word, or the palette open/close."""
    rng = random.Random(seed)
    keys = [k for k, _ in KEYS]
    weights = [w for _, w in KEYS]
    steps: list[tuple[str, ...]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.15:
            steps.append(tuple(rng.choice(PRINTABLE)))
        elif roll < 0.17:
            steps.append(PALETTE)
        else:
            steps.append((rng.choices(keys, weights)[0],))
    return steps


async def monkey(app: JourneyApp, seed: int, n: int, size: tuple[int, int],
                 animate: bool = False) -> None:
    if not animate:
        app.animation_level = "none"  # smooth scrolling costs ~1 s per home/end on long views
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        done: list[str] = []
        for i, step in enumerate(key_sequence(seed, n)):
            for key in step:
                if key in NEVER and not isinstance(app.focused, Input):
                    continue  # a word typed outside a text field: skip quit / collect
                await pilot.press(key)
                done.append(key)
            if i % 10 == 9:  # let simulations finish now and then, so their results are shown
                await app.workers.wait_for_complete()
                await pilot.pause()
            assert app.is_running and app.return_code is None, (
                f"app stopped after keys {done[-12:]} (seed {seed}): {app._exception!r}")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running and app.return_code is None, app._exception
        assert screen_text(app).strip(), f"{type(app.screen).__name__} renders nothing"
        assert "<svg" in app.export_screenshot()


@pytest.mark.parametrize("snap", SNAPSHOTS, ids=[p.name.removesuffix(".json.gz") for p in SNAPSHOTS])
async def test_monkey_real_engine(snap: Path) -> None:
    app = JourneyApp(str(snap), pcap=str(capture_for(snap)))
    await monkey(app, seed=sum(map(ord, snap.name)), n=150, size=(80, 24))


async def test_monkey_big_terminal() -> None:
    snap = next(p for p in SNAPSHOTS if p.name.startswith("gw1"))
    app = JourneyApp(str(snap), pcap=str(capture_for(snap)))
    await monkey(app, seed=4120, n=100, size=(120, 40), animate=True)


async def test_monkey_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    snap = next(p for p in SNAPSHOTS if p.name.startswith("web01"))
    app = JourneyApp(str(snap), pcap=str(capture_for(snap)))
    await monkey(app, seed=77, n=100, size=(80, 24))


def test_bundled_snapshots_all_have_a_capture() -> None:
    assert len(SNAPSHOTS) >= 4
    for snap in SNAPSHOTS:
        assert capture_for(snap).stat().st_size > 0
