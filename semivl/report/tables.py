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


def format_cell(values: pd.Series, status: pd.Series | None = None) -> str:
    """``mean ± std (n)`` of mIoU over seeds; the std is the sample std (n - 1). Runs that
    failed or did not run are counted after the numbers, or replace them when no run has any."""
    missing = ""
    if status is not None:
        failed, not_run = int((status == "failed").sum()), int((status == "not run").sum())
        missing = "; ".join(part for part in (f"{failed} failed" if failed else "",
                                              f"{not_run} not run" if not_run else "") if part)
    n = int(values.count())
    if n == 0:
        return missing or "–"
    mean = values.mean()
    std = values.std(ddof=1) if n > 1 else math.nan
    cell = f"{mean:.1f} ± {std:.1f}" if not math.isnan(std) else f"{mean:.1f}"
    return f"{cell} ({n}{'; ' + missing if missing else ''})"


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
                    rows = part[(part["method"] == method) & (part["split"] == split)]
                    cells.append(format_cell(rows[metric], rows.get("status")))
                name = METHOD_LABELS.get(method, method)
                if _uses_project_definitions(part, method):
                    name, marked = name + " " + PROJECT_DEFINITIONS_MARK, True
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
            if marked:
                lines += [PROJECT_DEFINITIONS_NOTE.format(dataset=dataset), ""]
    lines += missing_runs(frame)
    lines += provenance_notes(frame)
    return "\n".join(lines)


def missing_runs(frame: pd.DataFrame) -> list[str]:
    """A list of the runs without results and why (failed or not run)."""
    if "status" not in frame:
        return []
    missing = frame[frame["status"].fillna("ok") != "ok"]
    if missing.empty:
        return []
    lines = ["## Runs without results", ""]
    for row in missing.itertuples():
        reason = row.reason if isinstance(row.reason, str) and row.reason else ""
        lines.append(f"- {row.dataset} {row.split} {METHOD_LABELS.get(row.method, row.method)}"
                     f" seed {row.seed}: {row.status}{f' ({reason})' if reason else ''}")
    return lines + ["", "Rerun the workflow to retry them; each failed run's log is in "
                    "`<results>/logs/train/`.", ""]


def provenance_notes(frame: pd.DataFrame) -> list[str]:
    """Footnotes: which code and configs produced the numbers."""
    commits = (frame["code_commit"].dropna().astype(str).value_counts().sort_index()
               if "code_commit" in frame else pd.Series(dtype=int))
    if commits.empty:
        code = "Code: commit not recorded (runs trained outside a git checkout)."
    else:
        code = "Code: " + ", ".join(f"commit `{c}` ({n} run{'s' if n > 1 else ''})"
                                    for c, n in commits.items()) + "."
    return ["## Provenance", "",
            f"- {code} Each run's `provenance.json` holds the commit, package versions, "
            "hardware, wall time and GPU-hours; its `config.yaml` holds the resolved recipe.",
            "- Configs: `config/recipes/<method>/<dataset>.yaml` and "
            "`config/datasets/<dataset>.yaml` of that commit; the grid is the config file the "
            "workflow ran with.", ""]
