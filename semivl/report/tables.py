"""``tables.md``: one table per dataset, a row per method, a column per labelled split."""

from __future__ import annotations

import math

import pandas as pd

METHOD_LABELS = {
    "supervised": "Supervised (labelled only)",
    "unimatch": "UniMatch",
    "semivl": "SemiVL",
    "semivl_no_definitions": "SemiVL w/o class definitions",
    "semivl_no_spatial_ft": "SemiVL w/o spatial fine-tuning",
}
PROJECT_DEFINITIONS_MARK = "†"
PROJECT_DEFINITIONS_NOTE = (
    "† Class definitions written by this project (`config/classes/{dataset}.yaml`); upstream "
    "SemiVL has none for this dataset and guides with the plain class names.")


def _uses_project_definitions(part: pd.DataFrame, method: str) -> bool:
    if "class_definitions" not in part:
        return False
    return bool((part.loc[part["method"] == method, "class_definitions"] == "project").any())


def format_cell(values: pd.Series) -> str:
    """``mean ± std (n)`` of mIoU over seeds; the std is the sample std (n - 1)."""
    n = int(values.count())
    if n == 0:
        return "–"
    mean = values.mean()
    if n == 1:
        return f"{mean:.1f} (1)"
    std = values.std(ddof=1)
    return f"{mean:.1f} ± {std:.1f} ({n})" if not math.isnan(std) else f"{mean:.1f} ({n})"


def summarise(frame: pd.DataFrame, metric: str = "miou") -> pd.DataFrame:
    """Mean, sample std and count of ``metric`` per dataset, split and method."""
    grouped = frame.groupby(["dataset", "split", "num_labeled", "method"], sort=True)[metric]
    out = grouped.agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index()
    return out.sort_values(["dataset", "num_labeled", "method"], ignore_index=True)


def render_tables(frame: pd.DataFrame, title: str = "Results") -> str:
    """Markdown with one table per dataset (final-iteration and best-on-val mIoU)."""
    lines = [f"# {title}", "",
             "mIoU (%) on the validation split, mean ± sample std over seeds (number of seeds).",
             "Columns are labelled splits, headed by their number of labelled images.", ""]
    for metric, label in (("miou", "final iteration"), ("miou_best", "best on val")):
        for dataset, part in frame.groupby("dataset", sort=True):
            splits = (part[["split", "num_labeled"]].drop_duplicates()
                      .sort_values("num_labeled"))
            header = [str(n) for n in splits["num_labeled"]]
            lines.append(f"## {dataset}: {label}")
            lines.append("")
            lines.append("| method | " + " | ".join(header) + " |")
            lines.append("|---|" + "---:|" * len(header))
            marked = False
            order = list(METHOD_LABELS)
            for method in sorted(part["method"].unique(),
                                 key=lambda m: (order.index(m) if m in order else len(order), m)):
                cells = []
                for split in splits["split"]:
                    values = part[(part["method"] == method) & (part["split"] == split)][metric]
                    cells.append(format_cell(values))
                name = METHOD_LABELS.get(method, method)
                if _uses_project_definitions(part, method):
                    name, marked = name + " " + PROJECT_DEFINITIONS_MARK, True
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
            if marked:
                lines += [PROJECT_DEFINITIONS_NOTE.format(dataset=dataset), ""]
    return "\n".join(lines)
