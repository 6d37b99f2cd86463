"""The reference of the ``semivl`` command line (docs/cli.md), rendered from its argparse parser
(:func:`semivl.cli.build_parser`): every step and sub-step, its help line and its options.

The parser is read, never formatted by argparse (whose output depends on the terminal's
width); defaults that are paths are shown relative to the repository (``markdown.shown_path``),
so the page is the same on every machine and from every working directory.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docgen.markdown import cell, code, prose, shown_path, table


@dataclass(frozen=True)
class Command:
    """One ``semivl`` step: its words after ``semivl``, help line and parser."""

    words: tuple[str, ...]
    help: str
    parser: argparse.ArgumentParser

    @property
    def name(self) -> str:
        return " ".join(("semivl", *self.words))


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every step under ``parser``, depth first, in the order ``--help`` lists them (groups such
    as ``semivl data`` too, before their steps)."""
    sub = _subparsers(parser)
    if sub is None:
        return
    for choice in sub._choices_actions:  # one per parser (aliases are not repeated)
        if choice.help == argparse.SUPPRESS:
            continue
        child = sub.choices[choice.dest]
        yield Command((*words, choice.dest), choice.help or "", child)
        yield from commands(child, (*words, choice.dest))


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's documented arguments: not ``--help``, not hidden, not sub-steps."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        and a.help != argparse.SUPPRESS
    ]


def _value_name(action: argparse.Action) -> str:
    """What an argument takes: a choice, a metavar or its type, with how many."""
    if action.nargs == 0:
        return "flag"
    if action.choices is not None:
        one = ", ".join(code(str(c)) for c in action.choices)
        one = f"one of {one}"
    elif action.metavar is not None:
        one = code(str(action.metavar))
    else:
        kind = action.type
        names = {Path: "path", int: "integer", float: "number", str: "text", None: "text"}
        one = names.get(kind) or getattr(kind, "__name__", str(kind)).strip("_")
    if action.nargs == "*":
        return f"{one}, any number"
    if action.nargs == "+":
        return f"{one}, one or more"
    if isinstance(action.nargs, int):
        return f"{action.nargs} x {one}"
    if isinstance(action, argparse._AppendAction):
        return f"{one}, repeatable"
    return one


def _default(action: argparse.Action) -> str:
    """The default as the page shows it ('' when there is none to show)."""
    value = action.default
    if value is None or value is False or value == argparse.SUPPRESS:
        return ""
    if isinstance(value, list | tuple) and not value:
        return ""
    if isinstance(value, Path) or (isinstance(value, str) and os.path.isabs(value)):
        return code(shown_path(value))
    if isinstance(value, list | tuple):
        return code(" ".join(str(shown_path(v) if isinstance(v, Path) else v) for v in value))
    return code(str(value))


def _borrowed_help(found: list[Command]) -> dict[tuple[str, str], str]:
    """(flag, default) -> help, for options that some steps document and others leave bare:
    a bare option borrows the help only when every documented use of the same flag with the
    same default reads the same."""
    seen: dict[tuple[str, str], set[str]] = {}
    for command in found:
        for a in _options(command.parser):
            if a.option_strings and a.help:
                seen.setdefault((a.option_strings[-1], repr(a.default)), set()).add(a.help)
    return {key: helps.pop() for key, helps in seen.items() if len(helps) == 1}


def _help(action: argparse.Action, prog: str, borrowed: dict[tuple[str, str], str]) -> str:
    text = action.help or ""
    if not text and action.option_strings:
        text = borrowed.get((action.option_strings[-1], repr(action.default)), "")
    if "%" in text:  # argparse's own %(default)s etc.
        params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
        params["default"] = _default(action).strip("`") or params.get("default")
        text = text % {**params, "prog": prog}
    return prose(text)


def _required(action: argparse.Action) -> bool:
    """Whether the step fails without it (argparse marks a ``*`` or ``?`` positional required,
    though it may be left out)."""
    return action.required and action.nargs not in ("*", "?")


def _flag(action: argparse.Action) -> str:
    if action.option_strings:
        return ", ".join(code(s) for s in action.option_strings)
    return code(str(action.metavar or action.dest))


def _usage(command: Command, options: list[argparse.Action]) -> str:
    """A width-independent synopsis: the step, its required options and positionals."""
    parts = [command.name]
    for a in options:
        if not a.option_strings:
            name = str(a.metavar or a.dest).upper()
            parts.append({"*": f"[{name} ...]", "+": f"{name} [{name} ...]"}.get(a.nargs, name))
    for a in options:
        if a.option_strings and a.required:
            parts.append(f"{a.option_strings[-1]} {a.metavar or a.dest.upper()}")
    if any(a.option_strings and not a.required for a in options):
        parts.append("[options]")
    sub = _subparsers(command.parser)
    if sub is not None:
        parts.append("{" + ",".join(c.dest for c in sub._choices_actions) + "} ...")
    return " ".join(parts)


def _section(command: Command, borrowed: dict[tuple[str, str], str]) -> list[str]:
    lines = [f"### {command.name}", "", prose(command.help)]
    description = command.parser.description
    if description and prose(description) != prose(command.help):
        lines += ["", prose(description)]
    options = _options(command.parser)
    lines += ["", f"Usage: {code(_usage(command, options))}"]
    sub = _subparsers(command.parser)
    if sub is not None:
        steps = ", ".join(
            f"[{code(f'{command.name} {c.dest}')}](#{_anchor(f'{command.name} {c.dest}')})"
            for c in sub._choices_actions
        )
        lines += ["", f"Steps: {steps}."]
    if options:
        rows = [
            (
                _flag(a),
                _value_name(a),
                _default(a),
                "yes" if _required(a) else "",
                _help(a, command.parser.prog, borrowed),
            )
            for a in options
        ]
        lines += ["", *table(("Argument", "Takes", "Default", "Required", "Description"), rows)]
    if command.parser.epilog:
        lines += ["", prose(command.parser.epilog)]
    return lines


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading of plain words (lower case, spaces to '-')."""
    return "".join(c for c in heading.lower().replace(" ", "-") if c.isalnum() or c in "-_")


def cli_reference() -> str:
    """Every ``semivl`` step: an index, then per step its help, synopsis and arguments."""
    from semivl.cli import build_parser

    found = list(commands(build_parser()))
    lines = [
        "| Step | What it does |",
        "|---|---|",
        *(f"| [{code(c.name)}](#{_anchor(c.name)}) | {cell(prose(c.help))} |" for c in found),
    ]
    borrowed = _borrowed_help(found)
    for command in found:
        lines += ["", *_section(command, borrowed)]
    return "\n".join(lines) + "\n"
