"""Collect every run's ``metrics.json`` of a grid into one CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from semivl.atomic import atomic_write
from semivl.grid import Grid

COLUMNS = ["dataset", "split", "num_labeled", "method", "seed", "miou", "miou_best",
           "best_iter", "final_iter"]
# Keys older metrics files may lack (empty in the CSV then).
OPTIONAL_COLUMNS = ["class_definitions"]


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
    return frame.sort_values(["dataset", "num_labeled", "split", "method", "seed"],
                             ignore_index=True)


def write_metrics_csv(frame: pd.DataFrame, out: Path) -> None:
    """Write the table with fixed float formatting (byte-stable across reruns)."""
    atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.4f",
                                               lineterminator="\n"))
