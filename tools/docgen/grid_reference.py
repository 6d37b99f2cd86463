"""The keys of a grid file (config/README.md, "Grid keys"): ``config/config.yaml``,
``config/grids/*.yaml``, the demo and smoke grids, rendered from the JSON schema Snakemake
validates them against (``workflow/schemas/config.schema.yaml``); a key the schema does not
describe takes the comment of its field in the dataclasses ``semivl.grid`` loads the file into.
"""

from __future__ import annotations

import functools
from typing import Any

import yaml

from docgen.markdown import REPO, code, prose, table, yaml_value
from docgen.source_docs import dataclass_rows, plural_of

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
        text = " or ".join(plural_of(n) if plural else n for n in names)
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
        raise KeyError(f"docgen.grid_reference.READ_FROM: say where {missing} is read")
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
