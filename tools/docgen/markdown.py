"""Small Markdown helpers shared by the generated references (table cells, YAML-like values)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CODE = re.compile(r"(`[^`]*`)")


def prose(text: str | None) -> str:
    """Source prose (a help text, a docstring, a comment) as one Markdown line: whitespace
    collapsed, reST ````code```` and ``:func:`name``` as Markdown code, ``<name>``
    placeholders kept visible (a bare ``<dataset>`` is an HTML tag to GitHub, which hides
    it)."""
    if not text:
        return ""
    text = re.sub(r":[a-z]+:`~?", "`", " ".join(text.split())).replace("``", "`")
    parts = _CODE.split(text)
    return "".join(p if p.startswith("`") else p.replace("<", "&lt;") for p in parts)


def cell(text: str) -> str:
    """``text`` safe inside a table cell: ``|`` escaped (also inside code spans, as GFM
    requires), no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """A Markdown table's lines; every cell goes through :func:`cell`."""
    header = list(header)
    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return lines


def shown_path(value: str | Path) -> str:
    """A path as it reads on every machine: relative to the repository when inside it, under
    ``~`` when inside the home folder, else as given."""
    path = Path(value)
    if not path.is_absolute():
        return path.as_posix()
    for base, prefix in ((REPO, ""), (Path.home(), "~/")):
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        return prefix + rel if rel != "." else (prefix.rstrip("/") or ".")
    return path.as_posix()


def yaml_value(value) -> str:
    """A default as it is written in a YAML file (``null``, ``true``, ``[6, 12, 18]``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return shown_path(value)
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def code(text: str) -> str:
    """``text`` as a code span (a longer fence when it holds a backtick)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"
