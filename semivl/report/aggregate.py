"""Collect every run's ``metrics.json`` of a grid into one CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from semivl.atomic import atomic_write
from semivl.config import load_dataset_config
from semivl.grid import Grid
from semivl.provenance import read_attempts

COLUMNS = ["dataset", "split", "num_labeled", "method", "seed", "miou", "miou_best",
           "best_iter", "final_iter"]
# Keys older metrics files may lack (empty in the CSV then).
OPTIONAL_COLUMNS = ["class_definitions", "code_commit"]
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
        rows.append({key: data[key] for key in COLUMNS}
                    | {key: data.get(key) for key in OPTIONAL_COLUMNS})
    if missing:
        head = ", ".join(missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} run(s) of the grid have no metrics.json yet: {head}"
            f"{' ...' if len(missing) > 5 else ''}; run `semivl evaluate` for them first"
        )
    frame = pd.DataFrame(rows, columns=COLUMNS + OPTIONAL_COLUMNS)
    frame["status"], frame["reason"] = "ok", ""
    return frame.sort_values(["dataset", "num_labeled", "split", "method", "seed"],
                             ignore_index=True)


def write_metrics_csv(frame: pd.DataFrame, out: Path) -> None:
    """Write the table with fixed float formatting (byte-stable across reruns)."""
    atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.4f",
                                               lineterminator="\n"))


def run_status(run_dir: Path) -> tuple[str, str]:
    """("failed", why) if training of the run started, ("not run", "") otherwise."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return "not run", ""
    attempts = read_attempts(run_dir)
    if (run_dir / "model.pt").is_file() and (not attempts or attempts[-1]["outcome"] ==
                                              "finished"):
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
    frame = (collect_metrics(present) if present else
             pd.DataFrame(columns=COLUMNS + OPTIONAL_COLUMNS + STATUS_COLUMNS))
    rows = []
    for dataset, split, method, seed in grid.runs():
        run_dir = grid.run_dir(dataset, split, method, seed)
        if (run_dir / "metrics.json").is_file():
            continue
        splits = load_dataset_config(dataset, Path(grid.config_dir)).splits
        status, reason = run_status(run_dir)
        rows.append({"dataset": dataset, "split": split, "num_labeled": splits.get(split),
                     "method": method, "seed": seed, "status": status, "reason": reason})
    if rows:
        frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
    return frame.sort_values(["dataset", "num_labeled", "split", "method", "seed"],
                             ignore_index=True)
