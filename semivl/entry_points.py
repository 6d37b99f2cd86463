"""Entry points of this package's plug-in groups (``semivl.methods``, ``semivl.models``).

Installed distributions declare them in their metadata; this repository declares its own in
``pyproject.toml``. Those are read from the source tree as well, so that the package's own
methods and models are found where it runs without being installed (``PYTHONPATH=.``, as the
GPU acceptance check does) and whatever an old ``*.egg-info`` folder says.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@cache
def _source_tree_groups() -> dict[str, dict[str, str]]:
    if not PYPROJECT.is_file():
        return {}
    with PYPROJECT.open("rb") as handle:
        project = tomllib.load(handle).get("project", {})
    return project.get("entry-points", {})


def group_entries(group: str) -> list[tuple[str, str, str]]:
    """(name, ``"module:attribute"``, where it was declared) of every entry point of ``group``:
    this repository's ``pyproject.toml`` and every installed distribution; an installed copy
    of a declaration from the source tree is listed once."""
    found = [
        (name, value, f"pyproject.toml [project.entry-points.{group}] {name}")
        for name, value in _source_tree_groups().get(group, {}).items()
    ]
    seen = {(name, value) for name, value, _ in found}
    for entry in sorted(entry_points(group=group), key=lambda e: e.name):
        if (entry.name, entry.value) not in seen:
            seen.add((entry.name, entry.value))
            dist = entry.dist.name if entry.dist is not None else "an installed package"
            found.append((entry.name, entry.value, f"entry point {entry.name} of {dist}"))
    return found
