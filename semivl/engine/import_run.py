"""An upstream checkpoint as a run folder of this project (``semivl import-checkpoint``).

The folder holds what ``semivl evaluate --run-dir`` and ``semivl predict --run-dir`` read:

* ``model.pt``: the state_dict of the recipe's model with the upstream weights;
* ``config.yaml``: the recipe (as the trainer dumps it) and where the weights came from;
* ``train_summary.json``: ``"imported": true``, the split's number of labelled images, and
  ``null`` for what this project did not observe (best and final iteration and mIoU); it has
  no ``final_eval`` record, so ``semivl evaluate`` always evaluates the weights afresh;
* ``provenance.json``: the source file or URL, its sha256, the key report, and the commit of
  the code that converted it (not of the code that trained it: that was upstream's).

The folder is written atomically: a failed import leaves an existing folder as it was and
creates none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from semivl.atomic import atomic_dir
from semivl.engine import upstream_checkpoint as U
from semivl.engine.checkpoint import serialize, write_json_atomic


@dataclass
class ImportResult:
    out_dir: Path
    keys: U.KeyCheck
    weights: U.UpstreamWeights
    sha256: str


def import_checkpoint(
    path: Path,
    recipe,
    context,
    *,
    split: str,
    method: str,
    source: str,
    sha256: str,
    out_dir: Path,
    config_dir: Path,
    weights_key: str | None = None,
) -> ImportResult:
    """Convert the upstream file ``path`` (from ``source``: the path or URL as given) for
    ``recipe`` and write the run folder ``out_dir``; refuse anything but a complete fit.
    ``weights_key`` picks the file's entry (default: the method's, e.g. UniMatch V2's
    ``model_ema`` before ``model``)."""
    from semivl.models import build_model
    from semivl.provenance import code_version

    algorithm = recipe.train.method
    mapping = U.method_map(algorithm, recipe.model.name)
    dataset = recipe.dataset
    if split not in dataset.splits:
        from semivl.config import ConfigError

        raise ConfigError(
            f"--split {split!r}: expected one of {sorted(dataset.splits)} "
            f"(config/datasets/{dataset.name}.yaml)"
        )
    weights = U.read_upstream(path, (weights_key,) if weights_key else mapping.weights_keys)
    U.check_layout(weights.state, algorithm, str(path))
    converted = U.to_project(weights.state, algorithm)
    model = build_model(recipe.model, dataset.num_classes, context)
    own = model.state_dict()
    backbone = getattr(model, "backbone", None)
    grid = getattr(backbone, "grid", None)
    keys = U.check_state(
        converted,
        own,
        algorithm,
        where=str(path),
        dataset=dataset.name,
        num_classes=dataset.num_classes,
        crop_grid=grid,
        config_dir=config_dir,
        in_file=len(weights.state),
    )
    model.load_state_dict({**{k: own[k] for k in keys.from_build}, **converted.state}, strict=True)
    origin = {
        "source": source,
        "sha256": sha256,
        "file": Path(path).name,
        "weights_key": weights.weights_key,
    }
    upstream = {"epoch": weights.epoch, "previous_best": weights.previous_best}
    summary = {
        "imported": True,
        "imported_from": origin,
        "method": method,
        "dataset": dataset.name,
        "split": split,
        "seed": None,
        "num_labeled": dataset.splits[split],
        "upstream": upstream,
        # Not observed by this project: upstream selected the checkpoint on val.
        "total_iters": None,
        "epochs": None,
        "final_iter": None,
        "final_miou": None,
        "best_miou": None,
        "best_iter": None,
        "history": [],
    }
    config = {
        "recipe": recipe.to_dict(),
        "imported": {**origin, "method": method, "split": split, "upstream": upstream},
    }
    provenance = {
        "imported": True,
        **origin,
        "method": method,
        "dataset": dataset.name,
        "split": split,
        "upstream": upstream,
        "keys": keys.to_dict(),
        "maps": "semivl/engine/upstream_maps.py (docs/upstream.md, Checkpoint layouts)",
        "converted_by": code_version(),
    }
    state = serialize(model.state_dict())
    with atomic_dir(out_dir) as tmp:
        (tmp / "model.pt").write_bytes(state)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
        write_json_atomic(summary, tmp / "train_summary.json")
        write_json_atomic(provenance, tmp / "provenance.json")
    return ImportResult(Path(out_dir), keys, weights, sha256)


def describe(result: ImportResult, method: str) -> list[str]:
    """The CLI's report of an import: keys mapped, dropped, kept from the build."""
    keys, w = result.keys, result.weights
    mapping = U.MAPS[method]
    where = f"'{w.weights_key}'" if w.weights_key else "a bare state_dict"
    epoch = f" of epoch {w.epoch}" if w.epoch is not None else ""
    best = f", upstream's val mIoU {w.previous_best:.2f}" if w.previous_best is not None else ""
    lines = [f"read {where}{epoch}{best}: {keys.in_file} tensors (sha256 {result.sha256[:12]})"]
    lines.append(
        f"mapped {keys.mapped} to {mapping.label} names of this project "
        f"(docs/upstream.md, Checkpoint layouts); every tensor of the model matched "
        "in shape"
    )
    if keys.dropped:
        prefixes = ", ".join(f"{p}.*" for p in keys.to_dict()["dropped_prefixes"])
        why = "; ".join(v for k, v in mapping.notes.items() if k in prefixes)
        lines.append(f"dropped {len(keys.dropped)} ({prefixes}: {why})")
    if keys.from_build:
        lines.append(
            f"kept {len(keys.from_build)} from the model built here, not saved "
            f"upstream: {', '.join(_short(keys.from_build))}"
        )
    lines.append(f"missing 0, unexpected 0 -> {result.out_dir}")
    return lines


def _short(names: list[str]) -> list[str]:
    """Key names, the counters of BatchNorm layers counted as one entry."""
    counters = [n for n in names if n.endswith("num_batches_tracked")]
    rest = [n for n in names if n not in counters]
    return rest + ([f"{len(counters)} BatchNorm num_batches_tracked"] if counters else [])
