"""The tools that keep the tree clean run with the suite, so the README's test command covers
them: ruff (lint and import order) and mypy, both configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    assert shutil.which("ruff") or _run(sys.executable, "-m", "ruff", "--version").returncode == 0
    done = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_finds_nothing():
    # The packages and options come from [tool.mypy]; the cache lives under the system's temp folder.
    done = _run(sys.executable, "-m", "mypy", "--cache-dir", str(Path("/tmp") / "exchange-mypy-cache"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_the_tools_are_configured_in_pyproject(tool):
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert tool in config["tool"]
    assert any(dep.startswith(tool) for dep in config["project"]["optional-dependencies"]["test"])
