"""Collect every run of a grid into CSVs: ``metrics.csv`` (one row per run), and in long form
the per-class IoU and the training curves (losses, learning rate, val mIoU).

Besides ``metrics.json`` each run folder may hold ``provenance.json`` (commit, input checksums,
GPU-hours), ``config.yaml`` (the batch plan: processes, micro-batch, accumulation) and
``log.csv``/``train_summary.json`` (curves); what is absent stays empty.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from semivl.atomic import atomic_write
from semivl.config import load_dataset_config
from semivl.grid import Grid
from semivl.provenance import read_attempts
from semivl.report.batch_layout import BATCH_COLUMNS, read_batch_plan

COLUMNS = [
    "dataset",
    "split",
    "num_labeled",
    "method",
    "seed",
    "miou",
    "miou_best",
    "best_iter",
    "final_iter",
]
# Keys older metrics files may lack (empty in the CSV then).
# Datasets with appearance-mode maps (the toy) add per-look accuracy and the looks the labelled
# images show, as JSON text.
OPTIONAL_COLUMNS = [
    "class_definitions",
    "code_commit",
    "per_mode_accuracy",
    "labelled_modes",
    "schedule_fraction",
]
JSON_COLUMNS = ("per_mode_accuracy", "labelled_modes")
# From provenance.json: training hours (GPU-hours, or wall hours of a CPU run), the device, and
# the first 12 hex digits of the sha256 of the data's prepared.json and of the recipe.
PROVENANCE_COLUMNS = ["hours", "device", "data_sha", "recipe_sha"]
CURVE_COLUMNS = ["dataset", "split", "num_labeled", "method", "seed", "series", "iter", "value"]
PER_CLASS_COLUMNS = ["dataset", "split", "num_labeled", "method", "seed", "class", "iou"]
# log.csv columns that are bookkeeping or timings, not curves.
NOT_CURVES = {"iter", "epoch", "seconds"}
MAX_CURVE_POINTS = 200
# "ok" for a run with metrics; "failed" (training started, no metrics) or "not run" otherwise.
STATUS_COLUMNS = ["status", "reason"]


def grid_metrics_files(grid: Grid) -> list[Path]:
    """The ``metrics.json`` path of every run of the grid."""
    return [grid.run_dir(*run) / "metrics.json" for run in grid.runs()]


def collect_metrics(paths: list[Path]) -> pd.DataFrame:
    """One row per ``metrics.json``, sorted (so the result does not depend on the input order).

    Fails listing the files that are missing.
    """
    rows, missing = [], []
    for path in sorted(Path(p) for p in paths):
        if not path.is_file():
            missing.append(str(path))
            continue
        data = json.loads(path.read_text())
        absent = [key for key in COLUMNS if key not in data]
        if absent:
            raise ValueError(f"{path}: missing key(s) {absent}; rerun `semivl evaluate`")
        rows.append(
            {key: data[key] for key in COLUMNS}
            | {key: _json_or_plain(key, data.get(key)) for key in OPTIONAL_COLUMNS}
            | run_provenance(path.parent, data["dataset"], data["method"])
            | read_batch_plan(path.parent)
        )
    if missing:
        head = ", ".join(missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} run(s) of the grid have no metrics.json yet: {head}"
            f"{' ...' if len(missing) > 5 else ''}; run `semivl evaluate` for them first"
        )
    frame = pd.DataFrame(
        rows, columns=COLUMNS + OPTIONAL_COLUMNS + PROVENANCE_COLUMNS + BATCH_COLUMNS
    )
    frame["status"], frame["reason"] = "ok", ""
    return frame.sort_values(
        ["dataset", "num_labeled", "split", "method", "seed"], ignore_index=True
    )


def _json_or_plain(key: str, value):
    """JSON text for the structured optional columns (byte-stable), other values as they are."""
    if key in JSON_COLUMNS and value is not None:
        return json.dumps(value)
    return value


def run_provenance(run_dir: Path, dataset: str, method: str) -> dict:
    """Hours, device and input checksums of a run from its ``provenance.json`` (empty values
    when the run has none, e.g. trained by an older version)."""
    path = Path(run_dir) / "provenance.json"
    if not path.is_file():
        return dict.fromkeys(PROVENANCE_COLUMNS)
    record = json.loads(path.read_text())
    on_gpu = bool((record.get("environment") or {}).get("gpus")) and record.get("gpu_hours")
    inputs = record.get("inputs") or {}

    def sha(suffix: str) -> str | None:
        found = [v for k, v in sorted(inputs.items()) if k.replace("\\", "/").endswith(suffix)]
        return found[0][:12] if found and found[0] else None

    return {
        "hours": record.get("gpu_hours") if on_gpu else record.get("wall_hours"),
        "device": "gpu" if on_gpu else "cpu",
        "data_sha": sha("/prepared.json"),
        "recipe_sha": _chain_sha(record.get("recipe_chain"), inputs)
        or sha(f"recipes/{method}/{dataset}.yaml"),
    }


def _chain_sha(chain: list[str] | None, inputs: dict) -> str | None:
    """For a recipe with ``base:`` files: one hash over the chain's file hashes (an edit to a
    base shows as another recipe version); ``None`` for a recipe without bases."""
    if not chain:
        return None
    shas = [inputs.get(path) for path in chain]
    if not all(shas):
        return None
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()[:12]


def write_metrics_csv(frame: pd.DataFrame, out: Path) -> None:
    """Write the table with fixed float formatting (byte-stable across reruns)."""
    atomic_write(
        out, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.4f", lineterminator="\n")
    )


def collect_per_class(paths: list[Path]) -> pd.DataFrame:
    """Per-class IoU of every ``metrics.json`` that exists, one row per (run, class)."""
    rows = []
    for path in sorted(Path(p) for p in paths):
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        for name, iou in (data.get("per_class_iou") or {}).items():
            rows.append(
                {key: data[key] for key in PER_CLASS_COLUMNS[:5]} | {"class": name, "iou": iou}
            )
    return pd.DataFrame(rows, columns=PER_CLASS_COLUMNS)


def _thin(rows: list[dict], limit: int = MAX_CURVE_POINTS) -> list[dict]:
    """At most ``limit`` evenly spaced rows, always keeping the first and the last."""
    if len(rows) <= limit:
        return rows
    step = (len(rows) - 1) / (limit - 1)
    return [rows[round(i * step)] for i in range(limit)]


def collect_curves(paths: list[Path]) -> pd.DataFrame:
    """Training curves of the runs whose ``metrics.json`` is in ``paths``: every ``log.csv``
    column but the iteration, epoch and timings (each series thinned to at most
    ``MAX_CURVE_POINTS`` points), and the val mIoU history of ``train_summary.json``."""
    rows = []
    for path in sorted(Path(p) for p in paths):
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        key = {k: data[k] for k in CURVE_COLUMNS[:5]}
        log = path.parent / "log.csv"
        if log.is_file() and log.stat().st_size:
            table = pd.read_csv(log)
            for series in [c for c in table.columns if c not in NOT_CURVES]:
                points = [
                    {"iter": int(i), "value": float(v)}
                    for i, v in zip(table["iter"], table[series], strict=True)
                    if pd.notna(v)
                ]
                rows += [key | {"series": series} | p for p in _thin(points)]
        summary = path.parent / "train_summary.json"
        if summary.is_file():
            for point in json.loads(summary.read_text()).get("history", []):
                rows.append(
                    key
                    | {
                        "series": "val_miou",
                        "iter": int(point["iter"]),
                        "value": float(point["miou"]),
                    }
                )
    frame = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return frame.sort_values(
        ["dataset", "num_labeled", "split", "method", "seed", "series", "iter"], ignore_index=True
    )


def write_long_csv(frame: pd.DataFrame, out: Path) -> None:
    """Write a long-form CSV with 6 significant digits (byte-stable across reruns)."""
    atomic_write(
        out, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    )


def run_status(run_dir: Path) -> tuple[str, str]:
    """("failed", why) if training of the run started, ("not run", "") otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not run", ""
    attempts = read_attempts(run_dir)
    if (run_dir / "model.pt").is_file() and (not attempts or attempts[-1]["outcome"] == "finished"):
        return "failed", "evaluation"
    if attempts:
        return "failed", f"training {attempts[-1]['outcome']} ({len(attempts)} attempts)"
    return "failed", "training"


def collect_grid(grid: Grid, *, allow_incomplete: bool = False) -> pd.DataFrame:
    """Rows for every run of ``grid``; with ``allow_incomplete``, runs without metrics get a
    row with status "failed" or "not run" instead of stopping the report."""
    paths = grid_metrics_files(grid)
    if not allow_incomplete:
        return collect_metrics(paths)
    present = [p for p in paths if p.is_file()]
    frame = (
        collect_metrics(present)
        if present
        else pd.DataFrame(
            columns=COLUMNS + OPTIONAL_COLUMNS + PROVENANCE_COLUMNS + BATCH_COLUMNS + STATUS_COLUMNS
        )
    )
    rows = []
    for dataset, split, method, seed in grid.runs():
        run_dir = grid.run_dir(dataset, split, method, seed)
        if (run_dir / "metrics.json").is_file():
            continue
        splits = load_dataset_config(dataset, Path(grid.config_dir)).splits
        status, reason = run_status(run_dir)
        rows.append(
            {
                "dataset": dataset,
                "split": split,
                "num_labeled": splits.get(split),
                "method": method,
                "seed": seed,
                "status": status,
                "reason": reason,
            }
        )
    if rows:
        frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    return frame.sort_values(
        ["dataset", "num_labeled", "split", "method", "seed"], ignore_index=True
    )
