"""The typed-YAML loader behind every config: YAML mappings into frozen dataclasses.

Each value is checked against the field's annotation (numbers, strings, literals, optional
values, lists, tuples, mappings, nested dataclasses), then the dataclass's own ``check`` runs;
a bad value fails with a :class:`~semivl.errors.ConfigError` that names the key path, the
expected and the actual value. Kept hand-written rather than pydantic: it is small, it writes
messages in the form the whole project uses (``train.batch_size: expected >= 1, got 0``), and
the dataclasses it fills stay plain, frozen and importable without it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from semivl.errors import ConfigError


def require(ok: bool, key: str, expected: Any, actual: Any) -> None:
    """Fail with ``<key>: expected <expected>, got <actual>`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {actual!r}")


def to_plain(value: Any) -> Any:
    """Tuples as lists, recursively (the YAML/JSON form of a config)."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (lists to tuples etc.)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{path}: expected one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_config(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in pairs)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {
            _convert(str(k), args[0], f"{path}.{k}"): _convert(v, args[1], f"{path}.{k}")
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str | int):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a bug in this module


def build_config(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from ``data``, checking every key; ``path`` prefixes errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        key = f"{path}.{name}"
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, failing with the file name on a syntax error or a non-mapping."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {data!r}")
    return data


def load_named_configs(path: Path, cls: type) -> dict[str, Any]:
    """A YAML mapping of name -> ``cls`` entries (``config/weights.yaml``, ``config/clip.yaml``),
    each validated; errors name the file and the entry."""
    data = read_yaml(path)
    try:
        return {name: build_config(cls, value, name) for name, value in data.items()}
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
