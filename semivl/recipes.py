"""Recipe files: ``config/recipes/<method>/<dataset>.yaml``, read with their ``base:`` chain,
merged and validated into a :class:`~semivl.config.Recipe`."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from semivl.config import (
    CONFIG_DIR,
    AugmentConfig,
    EvalConfig,
    GuidanceConfig,
    ModelConfig,
    OptimConfig,
    Recipe,
    ResourcesConfig,
    TrainConfig,
)
from semivl.dataset_config import load_dataset_config
from semivl.errors import ConfigError
from semivl.methods import build_args, get_method, methods
from semivl.models.text_reference import check_upstream_recipe
from semivl.typed_yaml import build_config, read_yaml


def load_recipe(method: str, dataset: str, config_dir: Path = CONFIG_DIR) -> Recipe:
    """Load and validate the recipe for ``method`` on ``dataset``."""
    dataset_cfg = load_dataset_config(dataset, config_dir)
    path = config_dir / "recipes" / method / f"{dataset}.yaml"
    if not path.is_file():
        known = sorted(
            str(p.relative_to(config_dir / "recipes"))
            for p in (config_dir / "recipes").glob("*/*.yaml")
        )
        raise ConfigError(
            f"no recipe for method {method!r} on {dataset!r} at {path}; known recipes: {known}"
        )
    data = _read_recipe(path)
    sections = {
        "model": ModelConfig,
        "augment": AugmentConfig,
        "optim": OptimConfig,
        "train": TrainConfig,
        "eval": EvalConfig,
    }
    optional = {"guidance": GuidanceConfig, "resources": ResourcesConfig}
    unknown = sorted(set(data) - set(sections) - set(optional))
    try:
        if unknown:
            raise ConfigError(
                f"{unknown[0]}: unknown key; expected one of "
                f"{', '.join(sorted({**sections, **optional}))}"
            )
        built = {}
        for key, cls in sections.items():
            if key not in data:
                raise ConfigError(f"{key}: required key is missing")
            built[key] = build_config(cls, data[key], key)
        if data.get("guidance") is not None:
            built["guidance"] = build_config(GuidanceConfig, data["guidance"], "guidance")
        if data.get("resources") is not None:
            built["resources"] = build_config(ResourcesConfig, data["resources"], "resources")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    algorithm = built["train"].method
    if method != algorithm and not method.startswith(f"{algorithm}_"):
        raise ConfigError(
            f"{path}: train.method: expected {method!r} (the recipe folder), or a folder named "
            f"'{algorithm}_<variant>' for a variant of {algorithm!r}; got {algorithm!r}"
        )
    spec = get_method(algorithm)
    try:
        args = build_args(spec, built["train"].args, "train.args", build_config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    built["train"] = dataclasses.replace(built["train"], args=args)
    for section in optional:
        if section in built and section not in spec.sections and section != "resources":
            users = [m.name for m in methods().values() if section in m.sections]
            fix = f" or set train.method: {users[0]}" if users else ""
            raise ConfigError(
                f"{path}: {section}: only method {' and '.join(users) or 'none'} "
                f"reads it, not {algorithm!r}; remove the section{fix}"
            )
    if built["model"].args.get("text_embeddings") == "upstream":
        check_upstream_recipe(path, built["model"], built.get("guidance"), dataset_cfg, config_dir)
    return Recipe(method=method, dataset=dataset_cfg, **built)


# Bases of one recipe that DVC's train stage tracks as params (dvc.yaml: recipe_base1..6;
# DVC cannot take a list of files from a variable). A deeper chain is an error at expansion.
TRACKED_BASES = 6


def recipe_path(method: str, dataset: str, config_dir: Path | str = CONFIG_DIR) -> Path:
    """``<config_dir>/recipes/<method>/<dataset>.yaml``."""
    return Path(config_dir) / "recipes" / method / f"{dataset}.yaml"


def recipe_chain(method: str, dataset: str, config_dir: Path | str = CONFIG_DIR) -> list[Path]:
    """The recipe file of ``method`` on ``dataset`` and the files of its ``base:`` chain,
    nearest first, as paths under ``config_dir`` (relative when it is): everything that an
    edit to changes the recipe, for Snakemake's inputs, DVC's params and provenance."""
    chain = [recipe_path(method, dataset, config_dir)]
    while True:
        data = read_yaml(chain[-1])
        base = data.get("base")
        if base is None:
            return chain
        if not isinstance(base, str):
            raise ConfigError(f"{chain[-1]}: base: expected a recipe file path, got {base!r}")
        nxt = Path(os.path.normpath(chain[-1].parent / base))
        if nxt in chain:
            raise ConfigError(f"{chain[-1]}: base: recipes include each other in a loop")
        if not nxt.is_file():
            raise ConfigError(f"{chain[-1]}: base: {nxt} does not exist")
        chain.append(nxt)


def merge_mappings(base: dict, override: dict) -> dict:
    """Recursive dict merge; ``override`` wins, lists and scalars are replaced whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_mappings(out[key], value)
        else:
            out[key] = value
    return out


def _merge_recipe(base: dict, override: dict) -> dict:
    """:func:`merge_mappings` of a recipe over its base, except that a ``model.name`` other than the
    base's replaces the base's model whole: its ``args`` and ``pretrained`` belong to another
    model and are not inherited."""
    model = override.get("model")
    base_model = base.get("model")
    if (
        isinstance(model, dict)
        and isinstance(base_model, dict)
        and "name" in model
        and model["name"] != base_model.get("name")
    ):
        base = {
            **base,
            "model": {k: v for k, v in base_model.items() if k not in ("args", "pretrained")},
        }
    return merge_mappings(base, override)


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe; a top-level ``base: <file>`` (relative to the recipe) is read first and
    the recipe's own keys are merged over it (an ablation states only what it changes).

    Merging is recursive: mappings merge key by key, lists and scalars are replaced whole, and
    ``null`` replaces a value too (``guidance: null`` removes the base's guidance, which
    :func:`load_recipe` treats as absent). One exception: when the recipe's ``model.name``
    differs from its base's, the base's ``model.args`` and ``model.pretrained`` are not
    inherited (a different model's arguments do not carry over); the recipe states its
    model's arguments in full.
    """
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: base: recipes include each other in a loop")
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a recipe file path, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: {base_path} does not exist")
    return _merge_recipe(_read_recipe(base_path, (*seen, path)), data)
