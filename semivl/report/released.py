"""The authors' released checkpoints, evaluated here: rows of ``tables.md`` beside the
published numbers (``semivl table --released``; ``docs/checkpoints.md``).

Each record is the ``metrics.json`` that ``semivl evaluate`` wrote for a run folder made by
``semivl import-checkpoint``. Under a method's "published" row the tables show "released
checkpoint, evaluated here" and its difference to the published number: the part of a gap
between this project and a paper that comes from evaluation and data (protocol, ground truth,
val list) rather than from training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

RELEASED_MARK = "¶"
MINUS = "\u2212"


def read_released(files: list[Path], folders: list[Path] = ()) -> dict[str, list[dict]]:
    """Released-checkpoint metrics per dataset: the given ``metrics.json`` files and those under
    each folder (``<folder>/<dataset>/<split>/<method>/metrics.json``; a missing folder holds
    none). A file that is not an imported run's metrics fails, naming it."""
    paths = list(files)
    for folder in folders:
        if Path(folder).is_dir():
            paths += sorted(Path(folder).glob("*/*/*/metrics.json"))
    out: dict[str, list[dict]] = {}
    seen = set()
    for path in sorted({Path(p) for p in paths}):
        record = json.loads(Path(path).read_text())
        absent = [
            k for k in ("dataset", "split", "method", "miou", "num_labeled") if k not in record
        ]
        if absent or "imported_from" not in record:
            raise ValueError(
                f"{path}: not the metrics of an imported checkpoint (`semivl "
                f"evaluate` of a `semivl import-checkpoint` folder); it lacks "
                f"{absent or ['imported_from']}"
            )
        key = (record["dataset"], str(record["split"]), record["method"])
        if key in seen:
            raise ValueError(f"{path}: a second released checkpoint of {' '.join(key)}")
        seen.add(key)
        out.setdefault(record["dataset"], []).append({**record, "split": str(record["split"])})
    return out


def with_released_splits(splits: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """The table's columns (split, num_labeled) and those of the released checkpoints."""
    extra = pd.DataFrame([{"split": r["split"], "num_labeled": r["num_labeled"]} for r in records])
    both = pd.concat([splits, extra], ignore_index=True).drop_duplicates("split")
    return both.sort_values(["num_labeled", "split"], ignore_index=True)


def _delta(value: float) -> str:
    if math.isnan(value):
        return "–"
    text = f"{value:+.1f}"
    return text.replace("-", MINUS) if text != "-0.0" else "+0.0"


def released_rows(
    records: list[dict], method: str, splits: list[str], published: list
) -> list[str]:
    """The "released checkpoint, evaluated here" row of ``method`` and, where a number was
    published for the split, the difference evaluated − published (``published``: the
    published row of each split, or ``None``)."""
    mine = {r["split"]: r for r in records if r["method"] == method}
    if not mine:
        return []
    values = [mine[str(s)]["miou"] if str(s) in mine else None for s in splits]
    lines = [
        f"| ↳ released checkpoint, evaluated here {RELEASED_MARK} | "
        + " | ".join(f"{v:.1f}" if v is not None else "–" for v in values)
        + " |"
    ]
    if any(v is not None and p is not None for v, p in zip(values, published, strict=True)):
        lines.append(
            "| ↳ Δ released − published | "
            + " | ".join(
                _delta(v - p.miou) if v is not None and p is not None else "–"
                for v, p in zip(values, published, strict=True)
            )
            + " |"
        )
    return lines


def released_note(records: list[dict], labels: dict[str, str]) -> str:
    """The footnote of a dataset's released rows: what they are and where each came from."""
    sources = "; ".join(
        f"{labels.get(r['method'], r['method'])} {r['split']}: `{r['imported_from']['source']}` "
        f"(sha256 `{str(r['imported_from']['sha256'])[:12]}`)"
        for r in sorted(records, key=lambda r: (r["method"], r["num_labeled"], r["split"]))
    )
    return (
        f"{RELEASED_MARK} The authors' released checkpoint (their `best.pth`, selected on "
        f"val by their trainer), converted by `semivl import-checkpoint` and evaluated here "
        f"by `semivl evaluate` on the whole val split under the recipe's protocol, like the "
        f"runs above; the same number stands in both tables. Δ released − published: how "
        f"far this project's evaluation and data are from the paper's for the very same "
        f"weights (training plays no part). Sources: {sources}."
    )
