"""Find, render and replace the generated parts of Markdown files."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

BEGIN = "<!-- generated {name}: make docs writes this part from its source; do not edit -->"
END = "<!-- end generated {name} -->"
_PATTERN = re.compile(
    r"<!-- generated (?P<name>[a-z0-9-]+): [^\n]*?-->\n"
    r"(?P<body>.*?)<!-- end generated (?P=name) -->",
    re.S,
)
_OPENING = re.compile(r"<!-- generated ([a-z0-9-]+):")


@dataclass(frozen=True)
class Part:
    """One generated part of one file."""

    path: Path
    name: str
    body: str


def parts(path: Path) -> list[Part]:
    """The generated parts of ``path``; an opening marker without its end fails, naming both."""
    text = path.read_text()
    found = [Part(path, m["name"], m["body"]) for m in _PATTERN.finditer(text)]
    opened = _OPENING.findall(text)
    if len(opened) != len(found):
        closed = {p.name for p in found}
        broken = [name for name in opened if name not in closed]
        raise ValueError(
            f"{path}: generated part(s) {broken} have no '<!-- end generated NAME -->' line"
        )
    return found


def wrap(name: str, body: str) -> str:
    """A part with its markers; the body ends with exactly one newline."""
    return f"{BEGIN.format(name=name)}\n{body.rstrip()}\n{END.format(name=name)}"


def render_file(path: Path, sections: dict[str, Callable[[], str]]) -> str:
    """``path``'s text with every generated part rendered afresh."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in sections:
            raise KeyError(
                f"{path}: unknown generated part {name!r}; "
                f"known: {', '.join(sorted(sections))} (tools/docgen/sections.py)"
            )
        return wrap(name, sections[name]())

    parts(path)  # unbalanced markers fail first, with the file's name
    return _PATTERN.sub(replace, path.read_text())


def stale(files: Iterable[Path], sections: dict[str, Callable[[], str]]) -> list[str]:
    """What ``--check`` reports: parts out of date, and sections that no file uses."""
    problems, used = [], set()
    for path in files:
        used.update(p.name for p in parts(path))
        if render_file(path, sections) != path.read_text():
            names = [p.name for p in parts(path)]
            fresh = {m["name"]: m["body"] for m in _PATTERN.finditer(render_file(path, sections))}
            changed = [p.name for p in parts(path) if fresh.get(p.name) != p.body] or names
            problems.append(f"{path}: out of date: {', '.join(changed)}")
    for name in sorted(set(sections) - used):
        problems.append(f"section {name!r} is generated but no page shows it")
    return problems
