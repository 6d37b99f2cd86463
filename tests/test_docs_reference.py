"""The generated references (docs/cli.md, config/README.md) cover everything they document:
every `semivl` step, every key of a grid file's schema, every key of a recipe; and they read
the same on every machine, from every working directory and at every terminal width."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import types
import typing

import yaml
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))

from docgen.cli_reference import cli_reference  # noqa: E402
from docgen.grid_reference import SCHEMA, grid_keys  # noqa: E402
from docgen.recipe_reference import recipe_keys, repo_methods  # noqa: E402

from semivl.cli import build_parser  # noqa: E402
from semivl.config import Recipe  # noqa: E402


def _steps(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*words, name), child
                yield from _steps(child, (*words, name))


def test_every_step_and_its_arguments_are_in_the_cli_reference():
    text = cli_reference()
    steps = list(_steps(build_parser()))
    assert len(steps) > 20 and ("data", "prepare") in [w for w, _ in steps]
    for words, parser in steps:
        heading = f"### semivl {' '.join(words)}"
        assert heading in text.splitlines(), heading
        section = text.split(heading + "\n", 1)[1].split("\n### ", 1)[0]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            shown = action.option_strings[0] if action.option_strings else action.dest
            assert f"`{shown}`" in section, f"{heading}: {shown}"


def _schema_keys(node: dict, key: str, schema: dict):
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = {**schema["$defs"][name], **node}
    if key:
        yield key
    for name, sub in node.get("properties", {}).items():
        yield from _schema_keys(sub, f"{key}.{name}" if key else name, schema)
    items = node.get("items", {})
    if "$ref" in items:
        items = schema["$defs"][items["$ref"].rsplit("/", 1)[-1]]
    for name, sub in items.get("properties", {}).items():
        yield from _schema_keys(sub, f"{key}[].{name}", schema)


def test_every_schema_property_is_in_the_grid_keys():
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = list(_schema_keys(schema, "", schema))
    assert "cluster.max_gpus_per_node" in keys and "grid.blocks[].splits[].split" in keys
    text = grid_keys()
    for key in keys:
        assert f"| `{key}` |" in text, key
    for key in schema["properties"]:  # each top-level key says where it is read
        read_from = text.split("| Keys | Read from |", 1)[1].split("\n\n", 1)[0]
        assert f"`{key}`" in read_from, key


def _leaves(cls: type, prefix: str):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = f"{prefix}.{f.name}", hints[f.name]
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(inner) == 1:
            tp = inner[0]
        args = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            yield from _leaves(tp, key)
        elif typing.get_origin(tp) is dict and dataclasses.is_dataclass(args[1]):
            yield key
            yield from _leaves(args[1], f"{key}.<key>")
        else:
            yield key


def test_every_recipe_field_is_in_the_recipe_keys():
    text = recipe_keys()
    sections = [f for f in dataclasses.fields(Recipe) if f.name not in ("method", "dataset")]
    hints = typing.get_type_hints(Recipe)
    keys = []
    for f in sections:
        tp = hints[f.name]
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
        keys += list(_leaves(tp, f.name))
    for method in repo_methods().values():
        if method.args is not None:
            keys += list(_leaves(method.args, "train.args"))
    assert {
        "train.speed.tf32",
        "optim.custom_keys.<key>.lr_mult",
        "train.args.unsup_weight",
    } <= set(keys)
    for key in keys:
        assert f"| `{key}` |" in text, key
    for f in sections:
        assert f"### `{f.name}`" in text
    assert "#### `model.name: semivl`" in text and "| `model.args.clip` |" in text


def _cells(line: str) -> int:
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def test_tables_keep_their_columns():
    """A `|` in a help text or a comment is escaped: every row has its header's cells."""
    for text in (cli_reference(), grid_keys(), recipe_keys()):
        width = None
        for line in text.splitlines():
            if not line.startswith("|"):
                width = None
                continue
            width = width or _cells(line)
            assert _cells(line) == width, line


def test_the_references_do_not_depend_on_the_machine(tmp_path):
    """The same text from another working directory, terminal width and home folder."""
    script = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "from docgen.cli_reference import cli_reference\n"
        "from docgen.grid_reference import grid_keys\n"
        "from docgen.recipe_reference import recipe_keys\n"
        "sys.stdout.write(cli_reference() + grid_keys() + recipe_keys())\n"
    )
    env = {**os.environ, "COLUMNS": "37", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "tools"), str(REPO)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == cli_reference() + grid_keys() + recipe_keys()
