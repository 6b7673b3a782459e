"""The layering rule: the pure core never imports textual; model and engine import no rich,
no scapy, no pyroute2 and do no I/O at import time. Checked in a fresh interpreter per module."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import journey

ROOT = Path(journey.__file__).parent
CORE_PACKAGES = ("journey.model", "journey.engine", "journey.snapshot", "journey.packets", "journey.render")
STRICT_PACKAGES = ("journey.model", "journey.engine")  # no rich either, no I/O libraries


def _modules(package: str) -> list[str]:
    path = ROOT / package.split(".", 1)[1].replace(".", "/")
    if not path.exists():
        return []
    names = [package]
    for info in pkgutil.walk_packages([str(path)], prefix=package + "."):
        names.append(info.name)
    return names


CORE_MODULES = [m for p in CORE_PACKAGES for m in _modules(p)]
STRICT_MODULES = [m for p in STRICT_PACKAGES for m in _modules(p)]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_there_are_core_modules() -> None:
    assert "journey.model.snapshot" in CORE_MODULES
    assert "journey.model.journey" in STRICT_MODULES


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_does_not_import_textual(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert not any(m == "textual" or m.startswith("textual.") for m in loaded), module


@pytest.mark.parametrize("module", STRICT_MODULES)
def test_model_and_engine_import_no_rich_scapy_pyroute2(module: str) -> None:
    loaded = _loaded_after_import(module)
    for banned in ("rich", "scapy", "pyroute2", "textual", "subprocess"):
        assert not any(m == banned or m.startswith(banned + ".") for m in loaded), (module, banned)
