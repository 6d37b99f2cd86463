"""``config/methods.yaml``: how the tables name and group each method (a recipe folder), which
methods have released upstream checkpoints, and the claims their authors make. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from semivl.errors import ConfigError

CATALOG = Path(__file__).resolve().parents[2] / "config" / "methods.yaml"
GROUPS = ("main", "addition", "ablation", "component")


@dataclass(frozen=True)
class Claim:
    """``method`` above ``above`` (final-iteration mIoU at the fewest labels both ran)."""

    above: str
    source: str


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    label: str
    group: Literal["main", "addition", "ablation", "component"]
    released: bool = False
    claims: tuple[Claim, ...] = field(default=())


def _entry(name: str, value, path: Path) -> CatalogEntry:
    where = f"{path}: methods.{name}"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping with label and group, got {value!r}")
    unknown = sorted(set(value) - {"label", "group", "released", "claims"})
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key; expected one of claims, group, label, released"
        )
    label, group = value.get("label"), value.get("group")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"{where}.label: expected a non-empty string, got {label!r}")
    if group not in GROUPS:
        raise ConfigError(f"{where}.group: expected one of {', '.join(GROUPS)}, got {group!r}")
    released = value.get("released", False)
    if not isinstance(released, bool):
        raise ConfigError(f"{where}.released: expected true or false, got {released!r}")
    claims = []
    for i, claim in enumerate(value.get("claims") or []):
        if not (isinstance(claim, dict) and set(claim) == {"above", "source"}):
            raise ConfigError(
                f"{where}.claims[{i}]: expected {{above: <method>, source: "
                f"<who claims it>}}, got {claim!r}"
            )
        claims.append(Claim(str(claim["above"]), str(claim["source"])))
    return CatalogEntry(name, label, group, released, tuple(claims))


@cache
def load_catalog(path: Path = CATALOG) -> dict[str, CatalogEntry]:
    """The catalog's entries by method, in the file's (the tables') order."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the method catalog: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict):
        raise ConfigError(f"{path}: expected a top-level `methods:` mapping")
    entries = {
        str(name): _entry(str(name), value, Path(path)) for name, value in data["methods"].items()
    }
    for entry in entries.values():
        for claim in entry.claims:
            if claim.above not in entries:
                raise ConfigError(
                    f"{path}: methods.{entry.name}.claims: {claim.above!r} is "
                    f"not a method of the catalog"
                )
    return entries


def labels() -> dict[str, str]:
    """Row label of every catalogued method, in the tables' order."""
    return {name: e.label for name, e in load_catalog().items()}


def in_group(*groups: str) -> list[str]:
    """The catalogued methods of ``groups``, in the tables' order."""
    return [name for name, e in load_catalog().items() if e.group in groups]


def released_methods() -> list[str]:
    """Methods whose released upstream checkpoints ``semivl import-checkpoint`` maps."""
    return [name for name, e in load_catalog().items() if e.released]
