"""What the references read from the source: the comments on dataclass fields (with
:mod:`ast` and :mod:`tokenize`; comments do not exist at run time), module constants, and
readable type names and defaults. Nothing depends on the machine or the working directory."""

from __future__ import annotations

import ast
import dataclasses
import io
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal

from docgen.markdown import REPO, code, prose, yaml_value


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


def function_node(module: str, name: str) -> ast.FunctionDef:
    tree, _ = _parsed(_source_file(module))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise LookupError(f"{module}:{name}: function not found in its source")


def module_constant(module: str, name: str) -> Any:
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


def optional_inner(tp: Any) -> Any:
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
        return f"list of {plural_of(type_text(args[0]))}"
    if origin is tuple:
        names = {type_text(a) for a in args}
        if len(names) == 1 and Ellipsis not in args:
            return f"list of {len(args)} {plural_of(names.pop())}"
        return "list of " + ", ".join(type_text(a) for a in args)
    if origin is dict:
        value = args[1]
        return (
            "mapping" if value is Any else f"mapping of {type_text(args[0])} to {type_text(value)}"
        )
    return code(str(tp).replace("typing.", ""))


def plural_of(name: str) -> str:
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
    tp = optional_inner(tp)
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
