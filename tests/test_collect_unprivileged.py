"""Live collection as an unprivileged user (uid 65534): a partial snapshot that names what is
missing and why, never an exception.

The test process is root; each check runs a fresh interpreter as nobody through
``setpriv --reuid=65534 --regid=65534 --clear-groups``. That interpreter must be executable and
the package importable by nobody: a venv under ``/root`` (mode 0700) is not, so the test looks
for an interpreter nobody can run (``sys.executable``, its real path, ``/usr/bin/pythonX.Y``)
with the same major.minor version, and puts the directories holding ``journey`` and ``pyroute2``
on ``PYTHONPATH`` (pure-Python packages). It fails (under CI) or skips when none works.

Unprivileged users cannot enter a network namespace, so the host's own namespace is collected,
read-only.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kernelutil import Netns, require_kernel

pytestmark = pytest.mark.kernel

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@functools.cache
def _pythonpath() -> str:
    """A world-readable copy of the two pure-Python packages the collector needs.

    The checkout (or CI's clone) may live under a directory nobody cannot read (/root), so the
    packages are copied to a fresh directory under /tmp (removed at interpreter exit).
    """
    import atexit

    import pyroute2

    import journey

    root = tempfile.mkdtemp(prefix="jtco-nobody-")
    atexit.register(shutil.rmtree, root, True)
    for pkg in (journey, pyroute2):
        src = Path(pkg.__file__).resolve().parent
        shutil.copytree(src, Path(root) / src.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return root


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "PYTHONPATH": _pythonpath(), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/",
            "LANG": "C.UTF-8"}


@functools.cache
def _nobody_python() -> str | None:
    candidates = [sys.executable, os.path.realpath(sys.executable),
                  getattr(sys, "_base_executable", ""), f"/usr/bin/python{VERSION}",
                  f"/usr/local/bin/python{VERSION}", "/usr/bin/python3"]
    probe = ("import sys, pyroute2, journey.snapshot.collect; "
             "print('%d.%d' % sys.version_info[:2])")
    for exe in dict.fromkeys(c for c in candidates if c):
        try:
            p = subprocess.run([*NOBODY, exe, "-c", probe], capture_output=True, text=True,
                               env=_env(), cwd="/", timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if p.returncode == 0 and p.stdout.strip() == VERSION:
            return exe
    return None


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    require_kernel("setpriv")
    exe = _nobody_python()
    if exe is None:
        msg = f"no python{VERSION} that uid 65534 can run with journey and pyroute2 importable"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return subprocess.run([*NOBODY, exe, "-c", code, *args], capture_output=True, text=True,
                          env=_env(), cwd="/", timeout=60)


COLLECT = """
import json, os
from journey.snapshot.collect import collect
s = collect()
print(json.dumps({
    "uid": s.provenance.uid,
    "parts": {p.name: [str(p.state), p.reason] for p in s.provenance.parts},
    "interfaces": sorted(i.name for i in s.interfaces),
    "routes": len(s.routes), "rules": len(s.rules), "sysctls": len(s.sysctls),
    "sockets": len(s.sockets), "iptables": len(s.iptables),
    "raw": sorted(r.name for r in s.raw),
}))
"""


def test_collect_as_nobody_is_partial_and_says_why() -> None:
    p = _as_nobody(COLLECT)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    parts = out["parts"]
    assert out["uid"] == 65534
    for name in ("interfaces", "addresses", "routes", "rules", "neighbours"):
        assert parts[name][0] == "collected", (name, parts[name])
    assert parts["sockets"][0] in ("collected", "partial")
    assert parts["sysctls"][0] in ("collected", "partial")
    for name in ("conntrack", "iptables-v4-nft", "iptables-v6-nft", "nftables", "ipsets"):
        state, reason = parts[name]
        assert state == "missing", (name, parts[name])
        assert reason.startswith("needs root (CAP_NET_ADMIN): "), (name, reason)
    assert "iptables-save" not in out["raw"] and out["iptables"] == 0
    # what it did see matches the host
    assert out["interfaces"] == sorted(os.listdir("/sys/class/net"))
    assert out["routes"] > 0 and out["rules"] >= 3 and out["sysctls"] > 100


def test_nobody_cannot_enter_a_namespace() -> None:
    require_kernel()
    with Netns("co") as ns:
        p = _as_nobody(
            "import sys\nfrom journey.errors import CollectError\n"
            "from journey.snapshot.collect import collect\n"
            "try:\n    collect(sys.argv[1])\nexcept CollectError as e:\n    print(e)\n",
            ns.name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"cannot enter network namespace {ns.name}: needs root (CAP_SYS_ADMIN)"


CLI = """
import argparse, sys
from journey.commands import snapshot_cmd
parser = argparse.ArgumentParser(prog="journey snapshot")
snapshot_cmd.add_arguments(parser)
raise SystemExit(snapshot_cmd.run(parser.parse_args(sys.argv[1:])))
"""


def test_cli_snapshot_as_nobody() -> None:
    """``journey snapshot -o FILE`` as nobody: exit 0, a partial snapshot, missing parts named.

    Runs the subcommand module itself (what ``journey snapshot`` dispatches to), so the test
    does not depend on every other subcommand being importable."""
    from journey.model.snapshot import PartState
    from journey.snapshot.fileio import load_snapshot

    tmp = tempfile.mkdtemp(prefix="jtco-")
    try:
        os.chown(tmp, 65534, 65534)
        out = f"{tmp}/host.json"
        p = _as_nobody(CLI, "-o", out)
        assert p.returncode == 0, p.stderr
        assert "missing: " in p.stderr and "iptables-v4-nft (needs root" in p.stderr
        snap = load_snapshot(out)
        assert snap.provenance.uid == 65534 and snap.provenance.origin == "live"
        missing = {m.name for m in snap.provenance.missing()
                   if m.state is PartState.MISSING}
        assert {"conntrack", "iptables-v4-nft", "nftables"} <= missing
        assert snap.interfaces and snap.routes
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
