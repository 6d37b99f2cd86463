"""Runs trained with another batch layout than upstream's, read from each run's ``config.yaml``.

A recipe names upstream's GPU count (``resources.gpus``). A run on fewer processes keeps the
global batch by gradient accumulation, so the optimiser step is upstream's, but batch norm
(where a model has it) normalises over one micro-batch instead of the images of all GPUs.
``tables.md`` marks such cells with :data:`BATCH_MARK` and states each batch plan in a footnote.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

BATCH_MARK = "§"
BATCH_COLUMNS = ["processes", "images_per_process", "accumulation_steps", "recipe_gpus"]


def read_batch_plan(run_dir: Path) -> dict:
    """Processes, images per process, accumulation steps and the recipe's GPU count of a run
    (empty values when its ``config.yaml`` is absent or predates these keys)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        return dict.fromkeys(BATCH_COLUMNS)
    dump = yaml.safe_load(path.read_text()) or {}
    batch = dump.get("batch") or {}
    resources = (dump.get("recipe") or {}).get("resources") or {}
    return {
        "processes": batch.get("processes"),
        "images_per_process": batch.get("images_per_process"),
        "accumulation_steps": batch.get("accumulation_steps"),
        "recipe_gpus": resources.get("gpus"),
    }


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def fewer_processes(rows: pd.DataFrame) -> pd.DataFrame:
    """The runs among ``rows`` that ran on fewer processes than their recipe's GPU count."""
    if "processes" not in rows or "recipe_gpus" not in rows:
        return rows.iloc[0:0]
    processes = rows["processes"].map(_number)
    gpus = rows["recipe_gpus"].map(_number)
    return rows[processes < gpus]


def batch_mark(rows: pd.DataFrame) -> str:
    """`` §`` for a cell with a run on fewer processes than upstream, else ``""``."""
    return f" {BATCH_MARK}" if len(fewer_processes(rows)) else ""


def batch_note(part: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    """The footnote of one dataset's marked cells: each method's batch plan and its splits."""
    marked = fewer_processes(part)
    if marked.empty:
        return []
    plans = []
    for key, group in marked.groupby(
        ["method", "processes", "images_per_process", "accumulation_steps", "recipe_gpus"],
        sort=True,
    ):
        method, processes, images, steps, gpus = (key[0], *(int(_number(v)) for v in key[1:]))
        splits = ", ".join(sorted({str(s) for s in group["split"]}, key=lambda s: (len(s), s)))
        plans.append(
            f"{labels.get(method, method)} ({splits}): {processes} process"
            f"{'es' if processes > 1 else ''} × {images} image"
            f"{'s' if images > 1 else ''} × {steps} accumulation steps = "
            f"{processes * images * steps} images per step; the recipe's layout is "
            f"{gpus} GPUs × {images} image{'s' if images > 1 else ''}"
        )
    return [
        f"{BATCH_MARK} Trained on fewer processes than the recipe's GPUs: the global batch "
        f"is kept by gradient accumulation, so the optimiser step is upstream's, but batch "
        f"norm (where the model has it) normalises over one process's micro-batch instead "
        f"of the whole batch (docs/deviations.md). " + "; ".join(plans) + ".",
        "",
    ]
