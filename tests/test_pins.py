"""Reproducible installs: every dependency that ``pyproject.toml`` names is pinned in
``constraints.txt``, and what runs the suite is what the pins say (a fresh machine gets what CI
tested, not whatever the index resolves that day)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip/uv constraints file, by canonical name."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)(\s*;.*)?", line)
        assert m, f"constraints.txt line is not an exact pin: {line!r}"
        out[canonical(m.group(1))] = m.group(3)
    return out


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return reqs


def missing_pins(requirements: list[str], pinned: dict[str, str]) -> list[str]:
    return sorted({canonical(_NAME.match(r).group(1)) for r in requirements} - set(pinned))


def test_every_declared_dependency_is_pinned():
    pinned = pins((ROOT / "constraints.txt").read_text())
    assert missing_pins(declared(), pinned) == []


def test_the_check_notices_an_unpinned_dependency():
    pinned = pins("fastapi==0.165.0\nclick==8.5.1\n    # via x\n")
    assert missing_pins(["fastapi>=0.115", "Click>=8", "limits[redis]>=4"], pinned) == ["limits"]


def test_a_range_in_constraints_is_not_a_pin():
    with pytest.raises(AssertionError, match="not an exact pin"):
        pins("click>=8.1\n")


def test_the_constraints_file_says_how_to_regenerate_it():
    head = (ROOT / "constraints.txt").read_text().splitlines()[:3]
    assert any("uv pip compile pyproject.toml" in line for line in head)


def test_what_is_installed_is_what_is_pinned():
    """The suite runs on the pinned versions (the README and CI install with ``-c``)."""
    pinned = pins((ROOT / "constraints.txt").read_text())
    drift = {}
    for req in declared():
        name = canonical(_NAME.match(req).group(1))
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an extra that this environment did not install
        if have != pinned[name]:
            drift[name] = (have, pinned[name])
    assert drift == {}, "installed != pinned (install with: pip install -c constraints.txt -e '.[test]')"
