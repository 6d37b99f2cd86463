"""The keys of the configuration files (config/README.md), rendered from their sources.

* :func:`grid_keys`: a grid file (``config/config.yaml``, ``config/grids/*.yaml``, the demo
  and smoke grids), from the JSON schema Snakemake validates it against
  (``workflow/schemas/config.schema.yaml``); a key the schema does not describe takes the
  comment of its field in the dataclasses that ``semivl.grid`` loads the file into.
* :func:`recipe_keys`: a method recipe (``config/recipes/<method>/<dataset>.yaml``), from the
  dataclasses of ``semivl.config`` that validate it, each key documented by the comment above
  (or beside) its field; ``train.args`` from each method's own arguments and ``model.args`` from
  each model builder's signature, for the methods and models this repository declares in
  ``pyproject.toml``.

Comments are read from the source with :mod:`ast` and :mod:`tokenize` (they do not exist at
run time); nothing depends on the machine, the working directory or installed plug-ins.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import tokenize
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from docgen.markdown import REPO, code, prose, table, yaml_value

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# Where each top-level key of a grid file is read (workflow/rules/common.smk, dvc.yaml,
# semivl.grid). A new top-level key in the schema fails here until it says where it is read.
_MERGED = (
    "Snakemake: its config, i.e. `config/config.yaml` with each `--configfile` merged over it "
    "key by key; `semivl` steps given `--grid FILE`: that file; DVC: `config/config.yaml`"
)
_GRID_FILE_ONLY = (
    "Snakemake: the grid file alone (`GRID_FILE`); a key it leaves out takes the default below, "
    "not the value in `config/config.yaml`; `semivl` steps given `--grid FILE`: that file; "
    "DVC: `config/config.yaml`"
)
READ_FROM = {
    "results_dir": _MERGED,
    "data_dir": _MERGED,
    "config_dir": _MERGED,
    "grid": (
        "Snakemake: the grid file alone (`GRID_FILE`; never merged with another file's grid); "
        "`semivl` steps given `--grid FILE`: that file; DVC: `config/config.runs.yaml`, which "
        "`semivl grid expand` writes from `config/config.yaml`"
    ),
    "cluster": _GRID_FILE_ONLY,
    "schedule_fraction": _GRID_FILE_ONLY,
    "report": _GRID_FILE_ONLY,
    "released": _GRID_FILE_ONLY,
}


# ---------------------------------------------------------------------------------------------
# Comments and docstrings from the source
# ---------------------------------------------------------------------------------------------


@functools.cache
def _parsed(path: Path) -> tuple[ast.Module, tuple[str, ...]]:
    source = path.read_text()
    return ast.parse(source), tuple(source.splitlines())


def _source_file(module: str) -> Path:
    """The file of a module of this repository, found without importing it."""
    base = REPO.joinpath(*module.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"


def _class_node(cls: type) -> tuple[ast.ClassDef, tuple[str, ...]]:
    tree, lines = _parsed(_source_file(cls.__module__))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            return node, lines
    raise LookupError(f"{cls.__module__}.{cls.__name__}: class not found in its source")


def _trailing_comment(lines: tuple[str, ...], first: int, last: int) -> str:
    """The ``# ...`` comments on source lines ``first``..``last`` (1-based), outside strings."""
    text = "\n".join(lines[first - 1 : last]) + "\n"
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    return " ".join(t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT)


def class_doc(cls: type) -> str:
    """The class's own docstring (not the signature dataclasses make up for a class without)."""
    node, _ = _class_node(cls)
    return prose(ast.get_docstring(node))


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its documentation: ``metadata["doc"]`` if given, else the comment lines
    right above the field and the comment after it on its own line(s)."""
    node, lines = _class_node(cls)
    docs: dict[str, str] = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above: list[str] = []
        i = stmt.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        after = _trailing_comment(lines, stmt.lineno, stmt.end_lineno or stmt.lineno)
        docs[stmt.target.id] = prose(" ".join([*above, after]))
    for f in dataclasses.fields(cls):
        if f.metadata.get("doc"):
            docs[f.name] = prose(f.metadata["doc"])
    return docs


def _function_node(module: str, name: str) -> ast.FunctionDef:
    tree, _ = _parsed(_source_file(module))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"{module}:{name}: function not found in its source")


def _module_constant(module: str, name: str) -> Any:
    tree, _ = _parsed(_source_file(module))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module}.{name}: constant not found in its source")


# ---------------------------------------------------------------------------------------------
# Types and defaults of dataclass fields
# ---------------------------------------------------------------------------------------------

_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean", Path: "path"}


def _optional_inner(tp: Any) -> Any:
    """``X`` of ``X | None``; ``tp`` itself otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def type_text(tp: Any) -> str:
    """A field's annotation as the YAML it takes: ``integer or null``, ``one of `a`, `b```."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "any"
    if tp is type(None):
        return "null"
    if tp in _SCALARS:
        return _SCALARS[tp]
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(code(str(a)) for a in args)
    if dataclasses.is_dataclass(tp):
        return "mapping"
    if origin is list:
        return f"list of {_plural(type_text(args[0]))}"
    if origin is tuple:
        names = {type_text(a) for a in args}
        if len(names) == 1 and Ellipsis not in args:
            return f"list of {len(args)} {_plural(names.pop())}"
        return "list of " + ", ".join(type_text(a) for a in args)
    if origin is dict:
        value = args[1]
        return (
            "mapping" if value is Any else f"mapping of {type_text(args[0])} to {type_text(value)}"
        )
    return code(str(tp).replace("typing.", ""))


def _plural(name: str) -> str:
    if name.startswith(("one of", "list of", "mapping")) or " or " in name:
        return name
    return name + "s"


def _field_default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return code(yaml_value(f.default))
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        if dataclasses.is_dataclass(value):
            return "(keys below)"
        return code(yaml_value(value))
    return "required"


def _nested(tp: Any) -> tuple[str, type] | None:
    """(key suffix, dataclass) whose keys sit under a field of type ``tp``."""
    tp = _optional_inner(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return "", tp
    if origin is list and dataclasses.is_dataclass(args[0]):
        return "[]", args[0]
    if origin is dict and dataclasses.is_dataclass(args[1]):
        return ".<key>", args[1]
    return None


def dataclass_rows(cls: type, prefix: str) -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, documentation) of every field of ``cls`` and, depth first,
    of the dataclasses nested in it."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        nested = _nested(hints[f.name])
        doc = docs.get(f.name, "")
        if not doc and nested:
            doc = class_doc(nested[1])
        rows.append((key, type_text(hints[f.name]), _field_default(f), doc))
        if nested:
            rows += dataclass_rows(nested[1], key + nested[0])
    return rows


def leaf_keys(cls: type, prefix: str) -> list[str]:
    """The dotted keys of ``cls``'s fields that hold values, not nested dataclasses."""
    return [
        key for key, kind, default, _ in dataclass_rows(cls, prefix) if default != "(keys below)"
    ]


# ---------------------------------------------------------------------------------------------
# Grid keys: the JSON schema
# ---------------------------------------------------------------------------------------------


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _resolve(node: dict, schema: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(target, schema), **{k: v for k, v in node.items() if k != "$ref"}}


_JSON_TYPES = {
    "integer": "integer",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "object": "mapping",
    "array": "list",
}


def _schema_type(node: dict, schema: dict, plural: bool = False) -> str:
    """A schema node as the YAML it takes: ``integer ≥ 1 or null``, ``list of strings``."""
    kinds = node.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    nullable = "null" in kinds
    kinds = [k for k in kinds if k != "null"]
    if "enum" in node:
        text = "one of " + ", ".join(code(yaml_value(v)) for v in node["enum"])
    elif kinds == ["array"]:
        items = _resolve(node.get("items", {}), schema)
        inner = "mappings" if "properties" in items else _schema_type(items, schema, plural=True)
        text = ("non-empty " if node.get("minItems") else "") + f"list of {inner}"
        if node.get("uniqueItems"):
            text += ", no repeats"
        text = f"{text};" if plural else text
    else:
        names = [_JSON_TYPES.get(k, k) for k in kinds] or ["any"]
        text = " or ".join(_plural(n) if plural else n for n in names)
    bounds = [
        (f"≥ {node['minimum']}" if "minimum" in node else ""),
        (f"> {node['exclusiveMinimum']}" if "exclusiveMinimum" in node else ""),
        (f"≤ {node['maximum']}" if "maximum" in node else ""),
        (f"matching {code(node['pattern'])}" if "pattern" in node else ""),
    ]
    shown = ", ".join(b for b in bounds if b)
    text = f"{text} {shown}" if shown else text
    return text + (" or null" if nullable else "")


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _alternatives(node: dict, subject: str) -> str:
    """A ``oneOf`` of ``required`` lists, as one sentence."""
    options = [alt.get("required", []) for alt in node.get("oneOf", [])]
    if not options or not all(options):
        return ""
    spelled = [_and([code(k) for k in keys]) for keys in options]
    return f"{subject} exactly one of: " + "; or ".join(spelled) + "."


def _grid_index() -> dict[str, tuple[str, str]]:
    """Dotted grid key -> (documentation, default) from the dataclasses semivl.grid loads."""
    from semivl.grid import Grid

    return {key: (doc, default) for key, _, default, doc in dataclass_rows(Grid, "")}


def _schema_rows(
    node: dict, key: str, required: bool, schema: dict, index: dict, rows: list
) -> None:
    node = _resolve(node, schema)
    doc = node.get("description", "")
    items = _resolve(node.get("items", {}), schema) if node.get("type") == "array" else {}
    if not doc and items and "properties" not in items:
        doc = items.get("description", "")
    fallback_doc, fallback_default = index.get(key, ("", ""))
    doc = prose(doc) or fallback_doc
    notes = " ".join(
        n for n in (_alternatives(node, "Give"), _alternatives(items, "Each entry gives")) if n
    )
    if doc and notes and doc[-1] not in ".)":
        doc += "."
    if required:
        default = "required"
    elif "default" in node:
        default = code(yaml_value(node["default"]))
    else:
        default = fallback_default if fallback_default != "(keys below)" else ""
    if key:
        rows.append(
            (code(key), _schema_type(node, schema), default, " ".join([doc, notes]).strip())
        )
    for name, sub in node.get("properties", {}).items():
        sub_key = f"{key}.{name}" if key else name
        _schema_rows(sub, sub_key, name in node.get("required", []), schema, index, rows)
    for name, sub in items.get("properties", {}).items():
        sub_key = f"{key}[].{name}"
        _schema_rows(sub, sub_key, name in items.get("required", []), schema, index, rows)


def schema_keys() -> list[str]:
    """Every dotted key the schema defines (``grid.blocks[].splits[].dataset``)."""
    rows: list = []
    schema = _schema()
    _schema_rows(schema, "", False, schema, {}, rows)
    return [r[0].strip("`") for r in rows]


def _grouped_read_from(keys) -> list[tuple[str, str]]:
    """READ_FROM with the keys read from the same place on one row, in the schema's order."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(READ_FROM[key], []).append(code(key))
    return [(", ".join(names), where) for where, names in groups.items()]


def grid_keys() -> str:
    """Where each top-level key of a grid file is read, then every key with its type, default
    and meaning."""
    schema = _schema()
    missing = sorted(set(schema["properties"]) - set(READ_FROM))
    if missing:
        raise KeyError(f"docgen.config_reference.READ_FROM: say where {missing} is read")
    lines = [
        f"Validated against {code(SCHEMA.relative_to(REPO).as_posix())} by Snakemake, and "
        "loaded by `semivl.grid` for the `semivl` steps and `semivl grid expand`. `GRID_FILE` "
        "is the grid file given last to `--configfile`, else `config/config.yaml` "
        "(`workflow/rules/common.smk`).",
        "",
        *table(("Keys", "Read from"), _grouped_read_from(schema["properties"])),
        "",
    ]
    rows: list = []
    _schema_rows(schema, "", False, schema, _grid_index(), rows)
    lines += table(("Key", "Type", "Default", "Description"), rows)
    return "\n".join(lines) + "\n"


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
    classes = {f.name: _optional_inner(hints[f.name]) for f in _recipe_sections()}
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
    reserved = set(_module_constant("semivl.models.registry", "RESERVED_ARGS"))
    lines = [
        "### `model.args`, per model",
        "",
        "The keyword arguments of the model's builder (`model.name` names it; "
        "`semivl.models.registry` rejects any other key). `num_classes` and `context` are "
        "passed by the code, not by recipes.",
    ]
    for name, value in sorted(_entry_points("semivl.models").items()):
        module, _, attr = value.partition(":")
        node = _function_node(module, attr)
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
    merge_doc = ast.get_docstring(_function_node("semivl.recipes", "_read_recipe")) or ""
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
