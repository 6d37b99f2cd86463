"""Upstream ``best.pth`` files read and checked against this project's models.

The authors' trainers save ``{'model': model.state_dict(), 'optimizer': ..., 'epoch': ...}``
from a ``DistributedDataParallel`` model (keys start with ``module.``); SemiVL's evaluation also
reads weights under ``ema_model``, UniMatch V2 saves its teacher under ``model_ema``. The name
rules (:data:`MAPS`, :func:`to_project`, :func:`to_upstream`) live in
:mod:`semivl.engine.upstream_maps` and are re-exported here.

:func:`check_state` refuses a partial load: every tensor of the model must come from the file
with its exact shape (except the class text embeddings, which upstream builds from files and
never saves, and BatchNorm's ``num_batches_tracked`` counters), and every tensor of the file
must have a place in the model. The error names the keys, both shapes and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from semivl.config import ConfigError
from semivl.engine.upstream_maps import (
    DEFAULT_WEIGHTS_KEYS,
    LAYOUTS,
    MAPS,
    CheckpointMismatch,
    Converted,
    MethodMap,
    Rule,
    method_map,
    to_project,
    to_upstream,
    upstream_file,
)

__all__ = [
    "LAYOUTS",
    "MAPS",
    "CheckpointMismatch",
    "Converted",
    "KeyCheck",
    "MethodMap",
    "Rule",
    "UpstreamWeights",
    "check_layout",
    "check_state",
    "datasets_with_classes",
    "method_map",
    "read_upstream",
    "to_project",
    "to_upstream",
    "upstream_file",
]


# --------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------


@dataclass
class UpstreamWeights:
    state: dict[str, torch.Tensor]
    weights_key: str | None  # "model", "ema_model", "state_dict" or None (a bare state_dict)
    epoch: int | None = None
    previous_best: float | None = None


def read_upstream(
    path: Path, weights_keys: tuple[str, ...] = DEFAULT_WEIGHTS_KEYS
) -> UpstreamWeights:
    """The weights of an upstream checkpoint file (``weights_only`` loading): the first of
    ``weights_keys`` the file has, else the file itself as a bare state_dict."""
    import pickle

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointMismatch(
            f"{path}: not a checkpoint that loads with weights_only=True "
            f"(tensors and plain data only): {first}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointMismatch(
            f"{path}: expected a dict (upstream's {{'model': ..., "
            f"'epoch': ...}}), got {type(obj).__name__}"
        )
    key = next((k for k in weights_keys if isinstance(obj.get(k), dict)), None)
    known = ("model", "ema_model", "model_ema", "state_dict")
    if key is None and any(isinstance(obj.get(k), dict) for k in known):
        found = [k for k in known if isinstance(obj.get(k), dict)]
        raise CheckpointMismatch(
            f"{path}: has weights under {found}, not under "
            f"{list(weights_keys)}: pass --weights-key {found[0]}. "
            f"Nothing was written."
        )
    state = obj[key] if key else obj
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointMismatch(
            f"{path}: no weights found: expected a dict with 'model' or 'ema_model' (upstream's "
            f"best.pth) or a state_dict; its keys are {sorted(obj)[:8]}"
        )
    state = {k.removeprefix("module."): v for k, v in state.items()}
    epoch, best = obj.get("epoch") if key else None, obj.get("previous_best") if key else None
    return UpstreamWeights(
        state,
        key,
        epoch if isinstance(epoch, int) else None,
        float(best) if isinstance(best, int | float) else None,
    )


# --------------------------------------------------------------------------------------------
# Checking against the model
# --------------------------------------------------------------------------------------------


@dataclass
class KeyCheck:
    """The key report of an import (printed by the CLI, kept in provenance.json)."""

    in_file: int
    mapped: int
    dropped: list[str]
    from_build: list[str]
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        prefixes = sorted({k.split(".", 1)[0] for k in self.dropped})
        return {
            "in_file": self.in_file,
            "mapped": self.mapped,
            "dropped": len(self.dropped),
            "dropped_prefixes": prefixes,
            "kept_from_build": self.from_build,
            "missing": self.missing,
            "unexpected": self.unexpected,
        }


def _layout_of(keys) -> str | None:
    """Which codebase a set of keys (``module.`` stripped) looks like, for hints."""
    keys = list(keys)

    def has(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    if has(
        "decode_head.class_layers.",
        "backbone.resblocks.",
        "decoder.aspp.branches.",
        "head.fusion.",
        "head.resize.",
    ):
        return "project"
    if has("head.scratch.refinenet", "head.resize_layers.", "head.projects."):
        return "unimatch_v2"
    if has("decode_head.", "backbone.layers.", "backbone.cls_token"):
        return "semivl"
    if has("head.b", "reduce.", "fuse.", "classifier."):
        return "unimatch"
    return None


def check_layout(state: dict[str, torch.Tensor], method: str, where: str) -> None:
    """Fail early (before the model is built) when a file's keys are another codebase's."""
    layout = _layout_of(state)
    if layout is None or layout == method:
        return
    raise CheckpointMismatch(
        f"{where}: does not fit {MAPS[method].label}: "
        f"{_layout_hint(layout, method)} Nothing was written."
    )


def _layout_hint(layout: str, method: str) -> str:
    if layout == "project":
        return (
            "its keys are this project's own parameter names (a model.pt of `semivl "
            "train`, e.g. decode_head.class_layers.*, decoder.aspp.*): evaluate it with "
            "`semivl evaluate --weights` instead."
        )
    keys = {
        "semivl": "decode_head.*, backbone.layers.*",
        "unimatch": "head.b*, reduce.*, fuse.*, classifier.*",
        "unimatch_v2": "head.projects.*, head.scratch.refinenet*",
    }[layout]
    return (
        f"its keys ({keys}) are those of an upstream {MAPS[layout].label} checkpoint, "
        f"not {MAPS[method].label}: pass --method {layout}."
    )


def datasets_with_classes(config_dir: Path, count: int) -> list[str]:
    """Datasets of ``config_dir/datasets`` that have ``count`` classes."""
    from semivl.config import read_yaml

    names = []
    for path in sorted(Path(config_dir).glob("datasets/*.yaml")):
        try:
            if read_yaml(path).get("num_classes") == count:
                names.append(path.stem)
        except ConfigError:
            continue
    return names


def _shape(t: torch.Tensor) -> str:
    return str(list(t.shape))


def check_state(
    converted: Converted,
    own: dict[str, torch.Tensor],
    method: str,
    *,
    where: str,
    dataset: str,
    num_classes: int,
    crop_grid: tuple[int, int] | None,
    config_dir: Path,
    in_file: int,
) -> KeyCheck:
    """Check a converted state_dict against the model's (``own``); raise
    :class:`CheckpointMismatch` naming the keys unless every tensor fits."""
    mapping = MAPS[method]
    kept = sorted(
        k
        for k in own
        if k not in converted.state
        and (k in mapping.from_build or k.endswith("num_batches_tracked"))
    )
    report = KeyCheck(in_file, len(converted.state), converted.dropped, kept)
    report.missing = sorted(k for k in own if k not in converted.state and k not in kept)
    report.unexpected = sorted([k for k in converted.state if k not in own] + converted.unmapped)
    report.mismatched = sorted(
        k for k in converted.state if k in own and converted.state[k].shape != own[k].shape
    )
    if not (report.missing or report.unexpected or report.mismatched):
        return report
    problems = []
    if report.mismatched:
        shown = "; ".join(
            f"{k} (upstream {converted.origin[k]}): {_shape(converted.state[k])} in the file, "
            f"{_shape(own[k])} in the model"
            for k in report.mismatched[:3]
        )
        more = len(report.mismatched) - 3
        problems.append(
            f"{len(report.mismatched)} tensor(s) have another shape: {shown}"
            f"{f' (and {more} more)' if more > 0 else ''}"
        )
    if report.missing:
        problems.append(
            f"{len(report.missing)} tensor(s) of the model are not in the file: "
            f"{', '.join(report.missing[:5])}"
            f"{' ...' if len(report.missing) > 5 else ''}"
        )
    if report.unexpected:
        names = [converted.origin.get(k, k) for k in report.unexpected]
        problems.append(
            f"{len(names)} key(s) of the file have no place in the model: "
            f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
        )
    hint = _hint(converted, own, method, report, dataset, num_classes, crop_grid, config_dir)
    raise CheckpointMismatch(
        f"{where}: does not fit {mapping.label} on {dataset}: "
        f"{'; '.join(problems)}. {hint} Nothing was written."
    )


def _hint(
    converted: Converted,
    own: dict,
    method: str,
    report: KeyCheck,
    dataset: str,
    num_classes: int,
    crop_grid: tuple[int, int] | None,
    config_dir: Path,
) -> str:
    layout = _layout_of(list(converted.origin.values()) + converted.unmapped)
    if layout is not None and layout != method:
        text = _layout_hint(layout, method)
        return text[0].upper() + text[1:]
    classifier = MAPS[method].classifier
    if classifier is not None and classifier in report.mismatched:
        count = int(converted.state[classifier].shape[0])
        names = datasets_with_classes(config_dir, count)
        like = f"a {' or '.join(names)} checkpoint" if names else "a checkpoint"
        return (
            f"This looks like {like} ({count} classes) but --dataset {dataset} has "
            f"{num_classes}: pass the dataset it was trained on."
        )
    pos = "backbone.positional_embedding"
    if pos in report.mismatched and crop_grid is not None:
        tokens = converted.state[pos].shape[0] - 1
        side = int(round(tokens**0.5))
        return (
            f"Its position table has 1 + {tokens} entries ({side} x {side} patches: "
            f"trained at another crop size), the recipe's crop needs 1 + {crop_grid[0]} x "
            f"{crop_grid[1]}: is it a checkpoint of another dataset or recipe?"
        )
    return (
        f"Is it a complete best.pth of upstream {MAPS[method].label} for {dataset} "
        f"(config/recipes/<method>/{dataset}.yaml builds the model it must fit)?"
    )
