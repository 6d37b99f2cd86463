"""The files a run writes beside its weights: ``config.yaml`` and ``log.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

from semivl.engine import distributed as D
from semivl.engine.checkpoint import write_text_atomic
from semivl.engine.run_layout import Plan
from semivl.engine.run_spec import RunSpec


def write_config_dump(spec: RunSpec, plan: Plan, info: D.DistInfo, precision: dict) -> None:
    """``config.yaml``: the recipe, the run's files and how its global batch was formed."""
    cfg = spec.recipe.train
    dump = {
        "recipe": spec.recipe.to_dict(),
        "run": {
            "seed": spec.seed,
            "labeled_split": str(spec.labeled_split),
            "unlabeled_split": str(spec.unlabeled_split) if spec.unlabeled_split else None,
            "val_split": str(spec.val_split),
            "data_root": str(spec.data_root),
        },
        "batch": {
            "processes": info.world,
            "images_per_process": cfg.batch_size,
            "accumulation_steps": plan.accumulation,
            "global_batch_size": cfg.batch_size * info.world * plan.accumulation,
            "iters_per_epoch": plan.iters_per_epoch,
            "epochs": plan.epochs,
            "total_iters": plan.total_iters,
        },
        "precision": precision,
    }
    write_text_atomic(yaml.safe_dump(dump, sort_keys=True), spec.out_dir / "config.yaml")


def open_log(path: Path, fields: list[str], last_iter: int) -> tuple:
    """Open ``log.csv`` for appending, dropping rows past ``last_iter`` (a resumed run)."""
    rows = []
    if path.exists():
        with path.open() as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["iter"]) <= last_iter]
    handle = path.open("w", newline="")
    writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    handle.flush()
    return handle, writer
