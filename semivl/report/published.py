"""Published mIoU of the methods this project reproduces (``config/published_results.csv``).

The CSV is a copy of the reference table gathered for this project: one row per (dataset,
split, method) with the backbone, the evaluation protocol and the source of the number.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED_CSV = Path("config/published_results.csv")
# The CSV's dataset names that differ from this project's.
DATASET_NAMES = {"voc": "pascal"}
REQUIRED = [
    "dataset",
    "split",
    "labeled_images",
    "method",
    "backbone",
    "miou",
    "protocol",
    "source",
]


def load_published(path: Path = PUBLISHED_CSV) -> pd.DataFrame:
    """The published rows, with this project's dataset names and string split names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: published results not found (the repository ships "
            "config/published_results.csv)"
        )
    frame = pd.read_csv(path, dtype={"split": str})
    absent = [c for c in REQUIRED if c not in frame.columns]
    if absent:
        raise ValueError(f"{path}: missing column(s) {absent}; expected {REQUIRED}")
    frame["dataset"] = frame["dataset"].replace(DATASET_NAMES)
    return frame


def published_for(published: pd.DataFrame | None, dataset: str, method: str) -> pd.DataFrame:
    """Rows of one method on one dataset (empty when none was published)."""
    if published is None or published.empty:
        return pd.DataFrame(columns=REQUIRED)
    return published[(published["dataset"] == dataset) & (published["method"] == method)]


# Marks a published number whose run differs from what this benchmark trains (the CSV's
# differs_here column); the dataset's section says how.
DIFFERS_MARK = "◊"


def differs_mark(row) -> str:
    note = getattr(row, "differs_here", None)
    return DIFFERS_MARK if isinstance(note, str) and note.strip() else ""


def differences_note(
    published: pd.DataFrame | None, dataset: str, methods, labels: dict[str, str]
) -> list[str]:
    """The dataset's published numbers marked ◊, each with how its run differs from this
    benchmark's (nothing when none is marked); ``labels``: the methods' table names."""
    if published is None or "differs_here" not in published:
        return []
    lines = []
    for method in methods:
        rows = published_for(published, dataset, method)
        for row in rows.itertuples():
            if differs_mark(row):
                label = labels.get(method, method)
                lines.append(
                    f"- {label}, {row.split} ({row.labeled_images} labelled): {row.differs_here}."
                )
    if not lines:
        return []
    return [
        f"{DIFFERS_MARK} Published numbers whose runs differ from the runs here:",
        "",
        *lines,
        "",
    ]
