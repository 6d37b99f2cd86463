"""``tables.md``'s training cost: hours per cell of one dataset with a total line, and the
total per dataset and over all datasets.

Hours come from each run's ``provenance.json`` (aggregated into ``metrics.csv``): GPU-hours
(wall hours × GPUs) of a GPU run, wall hours of a CPU run. Only finished runs count; the runs
that failed or did not run are counted after the hours.
"""

from __future__ import annotations

import pandas as pd

from semivl.report.vocabulary import METHOD_LABELS, _header, _missing, _splits, method_order

COST_NOTE = (
    "Training only (evaluation not included), summed over the seeds that finished "
    "(their number in brackets); from each run's `provenance.json`. GPU-h = wall "
    "hours × GPUs; CPU-h = wall hours of a run without a GPU."
)


def _format_total(total: float, unit: str) -> str:
    # 1 decimal from an hour up, 2 significant digits below (demo runs take seconds)
    return f"{total:.1f} {unit}" if total >= 1 else f"{total:#.2g} {unit}"


def format_hours(hours: pd.Series, devices: pd.Series) -> str:
    """Total GPU-hours and CPU-hours of some runs (``devices``: "gpu" or "cpu" per run); a
    mix of both is shown as two sums, never added up."""
    hours = pd.to_numeric(hours, errors="coerce")
    on_gpu = (devices == "gpu").to_numpy()
    parts = [
        _format_total(float(hours[mask].sum()), unit)
        for mask, unit in ((on_gpu, "GPU-h"), (~on_gpu, "CPU-h"))
        if mask.any()
    ]
    return " + ".join(parts)


def cost_cell(rows: pd.DataFrame) -> str:
    """Hours of the finished runs among ``rows`` (their number in brackets), then the runs
    without hours or without results."""
    ok = rows[rows["miou"].notna()] if "miou" in rows else rows
    recorded = ok[pd.to_numeric(ok["hours"], errors="coerce").notna()]
    missing = _missing(rows.get("status"))
    if recorded.empty:
        return missing or ("not recorded" if len(ok) else "–")
    cell = f"{format_hours(recorded['hours'], recorded['device'])} ({len(recorded)})"
    if len(recorded) < len(ok):
        cell += f"; {len(ok) - len(recorded)} not recorded"
    return cell + (f"; {missing}" if missing else "")


def cost_table(part: pd.DataFrame) -> list[str]:
    """One dataset's training hours per (method, split), summed over the seeds that finished,
    with a column over all splits and a line over all methods; ``[]`` without hours."""
    if "hours" not in part:
        return []
    splits = _splits(part)
    lines = _header("method", splits, ("all splits",))
    groups = [
        (METHOD_LABELS.get(m, m), part[part["method"] == m]) for m in method_order(part["method"])
    ]
    for name, rows in [*groups, ("**all methods**", part)]:
        cells = [cost_cell(rows[rows["split"] == split]) for split in splits["split"]]
        lines.append(f"| {name} | " + " | ".join([*cells, cost_cell(rows)]) + " |")
    return lines + ["", COST_NOTE, ""]


def overall_cost_table(frame: pd.DataFrame, datasets: list[str]) -> list[str]:
    """Training hours per dataset and over all of them (a section of its own); ``[]`` without
    hours or with a single dataset (its own cost table has the total)."""
    if "hours" not in frame or len(datasets) < 2:
        return []
    lines = ["## Training cost, all datasets", "", "| dataset | training hours |", "|---|---:|"]
    for dataset in datasets:
        lines.append(f"| {dataset} | {cost_cell(frame[frame['dataset'] == dataset])} |")
    lines.append(f"| **all datasets** | {cost_cell(frame[frame['dataset'].isin(datasets)])} |")
    return lines + ["", COST_NOTE, ""]
