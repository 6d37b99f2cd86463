"""The report's shared vocabulary: method labels, order and groups (from
``config/methods.yaml``), dataset order, notes, and the cell formatting every table uses.
The document is assembled by :mod:`semivl.report.tables`."""

from __future__ import annotations

import math

import pandas as pd

from semivl.methods.catalog import in_group, labels

# From config/methods.yaml (semivl.methods.catalog): row labels in the tables' order, and groups.
METHOD_LABELS = labels()
ABLATIONS = in_group("ablation")
# Variants shown only in the ablation tables, not in the main results tables and figure.
ABLATION_ONLY = in_group("ablation", "component")
# Datasets in the papers' order, unknown ones (the toy) after them in name order.
DATASET_ORDER = ["pascal", "coco", "ade20k", "cityscapes"]
# Variants that add to SemiVL rather than remove from it (COCO/ADE20K: upstream has no class
# definitions; this one guides with the project's), shown in the ablation table too.
ADDITIONS = in_group("addition")
METRICS = {
    "miou": "mIoU at the final iteration",
    "miou_best": "mIoU best on val (the upstream protocol)",
}
MINUS = "\u2212"
PROJECT_DEFINITIONS_MARK = "†"
PROJECT_DEFINITIONS_NOTE = (
    "† Class definitions written by this project (`config/classes/{dataset}.yaml`); upstream "
    "SemiVL has none for this dataset and guides with the plain class names."
)
PROTOCOL_NOTES = [
    "Final iteration: the model after the last training iteration, evaluated once on the whole "
    "val split by `semivl evaluate` (the recipe's `eval` protocol: whole image or sliding "
    "window). This is the protocol this project reports first.",
    "Best on val: the highest val mIoU among the evaluations made during training (every "
    "`train.eval_every_epochs` or `eval_every_iters`), as UniMatch and SemiVL report. It "
    "selects the checkpoint on the val set itself, so it is optimistic.",
]
PUBLISHED_NOTE = (
    "Published numbers are best-on-val (see each source); Δ = ours − published, "
    "so in the final-iteration table the two sides use different protocols."
)


def method_order(methods) -> list[str]:
    """Methods in the papers' order (baselines, SemiVL, its ablations), unknown ones last."""
    order = list(METHOD_LABELS)
    return sorted(set(methods), key=lambda m: (order.index(m) if m in order else len(order), m))


def main_methods(methods) -> list[str]:
    """The methods of the main results tables and figure (:func:`method_order`): all but the
    ablation variants, which have tables of their own."""
    return method_order(m for m in methods if m not in ABLATION_ONLY)


def dataset_order(datasets) -> list[str]:
    """Dataset names in the papers' order (VOC, COCO, ADE20K, Cityscapes), others after."""
    names = {str(d) for d in datasets if isinstance(d, str) and d}
    return sorted(
        names,
        key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER else len(DATASET_ORDER), d),
    )


def unfinished_note(part: pd.DataFrame) -> str | None:
    """ "No finished runs yet: N of M runs missing (...)" for a dataset none of whose runs has
    metrics (``part``: its rows, one per run of the grid), ``None`` when one has."""
    if part["miou"].notna().any():
        return None
    missing = part[part["miou"].isna()]
    why = _missing(missing["status"]) if "status" in missing else ""
    return (
        f"No finished runs yet: {len(missing)} of {len(part)} runs missing"
        f"{f' ({why})' if why else ''}."
    )


def _missing(status: pd.Series | None) -> str:
    if status is None:
        return ""
    failed, not_run = int((status == "failed").sum()), int((status == "not run").sum())
    return "; ".join(
        part
        for part in (f"{failed} failed" if failed else "", f"{not_run} not run" if not_run else "")
        if part
    )


def format_cell(values: pd.Series, status: pd.Series | None = None) -> str:
    """``mean ± std (n)`` of mIoU over seeds; the std is the sample std (n - 1). Runs that
    failed or did not run are counted after the numbers, or replace them when no run has any."""
    missing = _missing(status)
    n = int(values.count())
    if n == 0:
        return missing or "–"
    mean = values.mean()
    std = values.std(ddof=1) if n > 1 else math.nan
    cell = f"{mean:.1f} ± {std:.1f}" if not math.isnan(std) else f"{mean:.1f}"
    return f"{cell} ({n}{'; ' + missing if missing else ''})"


def format_delta(value: float) -> str:
    """A signed difference with a true minus sign (``+1.2``, ``−0.4``)."""
    if math.isnan(value):
        return "–"
    text = f"{value:+.1f}"
    return text.replace("-", MINUS) if text != "-0.0" else "+0.0"


def summarise(frame: pd.DataFrame, metric: str = "miou") -> pd.DataFrame:
    """Mean, sample std and count of ``metric`` per dataset, split and method."""
    grouped = frame.groupby(["dataset", "split", "num_labeled", "method"], sort=True)[metric]
    out = grouped.agg(mean="mean", std=lambda s: s.std(ddof=1), n="count").reset_index()
    return out.sort_values(["dataset", "num_labeled", "method"], ignore_index=True)


def _splits(part: pd.DataFrame) -> pd.DataFrame:
    return (
        part[["split", "num_labeled"]]
        .drop_duplicates()
        .sort_values(["num_labeled", "split"], ignore_index=True)
    )


def _cell_rows(part: pd.DataFrame, method: str, split: str) -> pd.DataFrame:
    return part[(part["method"] == method) & (part["split"] == split)]


def _header(first: str, splits: pd.DataFrame, extra: tuple[str, ...] = ()) -> list[str]:
    names = [str(n) for n in splits["num_labeled"]] + list(extra)
    return [f"| {first} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]


def _uses_project_definitions(part: pd.DataFrame, method: str) -> bool:
    if "class_definitions" not in part:
        return False
    return bool((part.loc[part["method"] == method, "class_definitions"] == "project").any())


def uses_definitions(part: pd.DataFrame, method: str) -> bool:
    """Whether a method's runs read class definitions (the runs' ``class_definitions``)."""
    if "class_definitions" not in part:
        return method != "semivl_no_definitions"
    values = part.loc[part["method"] == method, "class_definitions"]
    return bool(values.isin(["upstream", "project"]).any())
