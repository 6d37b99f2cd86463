"""The keys of a method recipe (config/README.md, "Recipe keys"),
``config/recipes/<method>/<dataset>.yaml``, rendered from the dataclasses of ``semivl.config``
that validate it, each key documented by the comment above (or beside) its field;
``train.args`` from each method's own arguments and ``model.args`` from each model builder's
signature, for the methods and models this repository declares in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import tomllib
import typing
from typing import Any

from docgen.markdown import REPO, code, prose, table, yaml_value
from docgen.source_docs import (
    class_doc,
    dataclass_rows,
    function_node,
    module_constant,
    optional_inner,
)

# ---------------------------------------------------------------------------------------------
# Recipe keys: the dataclasses of semivl.config
# ---------------------------------------------------------------------------------------------


@functools.cache
def _entry_points(group: str) -> dict[str, str]:
    """name -> "module:attribute" of this repository's entry-point ``group`` (pyproject.toml)."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(data["project"]["entry-points"].get(group, {}))


def repo_methods() -> dict[str, Any]:
    """The training methods this repository declares (name -> ``semivl.methods.Method``)."""
    from semivl.methods import resolve

    return {name: resolve(value) for name, value in _entry_points("semivl.methods").items()}


def _recipe_sections() -> list[dataclasses.Field]:
    """The recipe file's sections: the fields of ``Recipe`` except those its path gives."""
    from semivl.config import Recipe

    return [f for f in dataclasses.fields(Recipe) if f.name not in ("method", "dataset")]


def recipe_classes() -> dict[str, type]:
    """Section (or ``train.args`` of a method) -> the dataclass validating it."""
    from semivl.config import Recipe

    hints = typing.get_type_hints(Recipe)
    classes = {f.name: optional_inner(hints[f.name]) for f in _recipe_sections()}
    for name, method in sorted(repo_methods().items()):
        if method.args is not None:
            classes[f"train.args ({name})"] = method.args
    return classes


def _section_note(f: dataclasses.Field, methods: dict[str, Any]) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
        return "Required in every recipe (after merging its `base:` chain)."
    users = sorted(name for name, m in methods.items() if f.name in m.sections)
    if users:
        return (
            "Optional; only methods that declare it read it: "
            + ", ".join(code(u) for u in users)
            + ". Another method's recipe with this section fails to load; `null` removes a "
            "base's."
        )
    return "Optional; every key has a default."


def _model_args() -> list[str]:
    """Per model of pyproject.toml: its builder's docstring and arguments (``model.args``)."""
    reserved = set(module_constant("semivl.models.registry", "RESERVED_ARGS"))
    lines = [
        "### `model.args`, per model",
        "",
        "The keyword arguments of the model's builder (`model.name` names it; "
        "`semivl.models.registry` rejects any other key). `num_classes` and `context` are "
        "passed by the code, not by recipes.",
    ]
    for name, value in sorted(_entry_points("semivl.models").items()):
        module, _, attr = value.partition(":")
        node = function_node(module, attr)
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        defaults = [None] * (
            len(node.args.posonlyargs) + len(node.args.args) - len(node.args.defaults)
        )
        defaults += [*node.args.defaults, *node.args.kw_defaults]
        rows = []
        for param, default in zip(params, defaults, strict=True):
            if param.arg in reserved:
                continue
            kind = code(ast.unparse(param.annotation)) if param.annotation else "any"
            if default is None:
                shown = "required"
            else:
                try:
                    shown = code(yaml_value(ast.literal_eval(default)))
                except ValueError:
                    shown = code(ast.unparse(default))
            rows.append((code(f"model.args.{param.arg}"), kind, shown))
        lines += [
            "",
            f"#### `model.name: {name}`",
            "",
            f"Builder {code(value)}. {prose(ast.get_docstring(node))}".rstrip(),
            "",
        ]
        lines += table(("Key", "Type (Python)", "Default"), rows) if rows else ["No arguments."]
    return lines


def recipe_keys() -> str:
    """The sections of a recipe and every key of each, with type, default and meaning."""
    from semivl.config import OPTIONAL_TRAIN_KEYS

    methods = repo_methods()
    sections = _recipe_sections()
    merge_doc = ast.get_docstring(function_node("semivl.recipes", "_read_recipe")) or ""
    merging = merge_doc.split("\n\n", 1)[-1]
    lines = [
        "Read by `semivl.recipes.load_recipe` from "
        "`<config_dir>/recipes/<method>/<dataset>.yaml`; the folder names the method and the file "
        "the dataset. Top-level keys: `base` (a recipe file, relative to this one, read first "
        "and merged under this one), "
        + ", ".join(code(f.name) for f in sections)
        + ". "
        + prose(merging),
    ]
    for f in sections:
        cls = recipe_classes()[f.name]
        rows = dataclass_rows(cls, f.name)
        rows = [
            (code(k), t, d, _with_readers(k, doc, OPTIONAL_TRAIN_KEYS, methods))
            for k, t, d, doc in rows
        ]
        if f.name == "train":
            rows = _with_method_args(rows, methods)
        lines += [
            "",
            f"### `{f.name}`",
            "",
            " ".join([class_doc(cls), _section_note(f, methods)]).strip(),
            "",
            *table(("Key", "Type", "Default", "Description"), rows),
        ]
    lines += ["", *_model_args()]
    return "\n".join(lines) + "\n"


def _with_readers(key: str, doc: str, optional: set[str], methods: dict[str, Any]) -> str:
    """A shared ``train`` key that only some methods read says which; ``model.args`` points
    to its keys per model."""
    if key == "model.args":
        return f"{doc} The model builder's arguments: see `model.args`, per model, below.".strip()
    name = key.removeprefix("train.")
    if key.startswith("train.") and name in optional:
        users = sorted(m for m, spec in methods.items() if name in spec.train_keys)
        return f"{doc} Read by: {', '.join(code(u) for u in users) or 'no method'}.".strip()
    return doc


def _with_method_args(rows: list, methods: dict[str, Any]) -> list:
    """``train.args`` followed by the arguments of each method that declares some."""
    out = []
    for row in rows:
        out.append(row)
        if row[0] != code("train.args"):
            continue
        for name, method in sorted(methods.items()):
            if method.args is None:
                continue
            for key, kind, default, doc in dataclass_rows(method.args, "train.args"):
                out.append((code(key), kind, default, f"Method {code(name)} only. {doc}".strip()))
    return out
