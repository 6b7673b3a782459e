"""The real ``journey`` binary in a real terminal (tmux, 80x24): open a snapshot with a packet,
step, open the path map, quit. Skipped when tmux is not installed (failed under CI)."""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from tui_fixtures import FIXTURE_FILE

TMUX = shutil.which("tmux")


def _capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True,
                          text=True, check=True).stdout


def _wait_for(session: str, text: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")


def _keys(session: str, *keys: str) -> None:
    for k in keys:
        subprocess.run(["tmux", "send-keys", "-t", session, k], check=True)
        time.sleep(0.15)


def test_real_binary_in_tmux_80x24() -> None:
    if TMUX is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is required under CI")
        pytest.skip("tmux not installed")
    exe = shutil.which("journey")
    cmd = [exe] if exe else [sys.executable, "-m", "journey"]
    spec = "in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:22"
    line = " ".join(shlex.quote(c) for c in [*cmd, "tui", str(FIXTURE_FILE), "--packet", spec])
    session = f"ui-{secrets.token_hex(4)}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"env TERM=xterm-256color {line}; echo EXITED rc=$?; sleep 30"], check=True)
    try:
        screen = _wait_for(session, "Stage 1/")
        assert "tcp 198.51.100.7:40000 > 192.0.2.10:22" in screen
        assert len(screen.rstrip("\n").split("\n")) <= 24
        _keys(session, "n")
        _wait_for(session, "Stage 2/")
        _keys(session, "End")
        _wait_for(session, "VERDICT")
        _keys(session, "5")
        screen = _wait_for(session, "POSTROUTING")
        assert "ends at:" in screen
        _keys(session, "1")
        _wait_for(session, "fixture-router")
        _keys(session, "q")
        _wait_for(session, "EXITED rc=0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
