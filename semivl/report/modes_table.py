"""``tables.md``: accuracy per appearance mode (look), for datasets with mode maps (the toy).

The question it answers is the paper's reason for a vision-language prior: does it know the
looks that a few labels miss? For the fewest-labels split, one row per look: whether the
labelled images show it, the zero-shot dense CLIP's accuracy on its pixels, and each method's
(mean over seeds; UniMatch V2 and its labelled-only baseline too where the grid runs them).
Below it, per split, the mean over the looks the labels show and over the
looks they miss.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from semivl.methods.catalog import in_group
from semivl.report.vocabulary import METHOD_LABELS

# The main methods of config/methods.yaml (not the additions to SemiVL), in the tables' order.
MAIN_METHODS = in_group("main")


def _parse(value) -> dict | list | None:
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, str) and value:
        return json.loads(value)
    return None


def _mean_accuracy(rows: pd.DataFrame) -> dict[str, float]:
    """Per look, the mean accuracy over the runs that measured it."""
    sums: dict[str, list[float]] = {}
    for value in rows["per_mode_accuracy"]:
        for look, acc in (_parse(value) or {}).items():
            if acc is not None:
                sums.setdefault(look, []).append(float(acc))
    return {look: sum(v) / len(v) for look, v in sums.items()}


def _labelled(rows: pd.DataFrame) -> set[str]:
    """Looks that the labelled images of every run of a cell show."""
    sets = [set(_parse(v) or []) for v in rows["labelled_modes"] if _parse(v) is not None]
    return set.intersection(*sets) if sets else set()


def _fmt(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1f}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def modes_section(part: pd.DataFrame, zero_shot: dict | None) -> list[str]:
    """Markdown lines of the per-look section of one dataset ([] without mode data)."""
    if "per_mode_accuracy" not in part or part["per_mode_accuracy"].map(_parse).isna().all():
        return []
    ok = part[part["status"].fillna("ok") == "ok"] if "status" in part else part
    methods = [m for m in MAIN_METHODS if m in set(ok["method"])]
    splits = (
        ok[["split", "num_labeled"]]
        .drop_duplicates()
        .sort_values("num_labeled")
        .itertuples(index=False)
    )
    splits = list(splits)
    if not methods or not splits:
        return []
    zs = (zero_shot or {}).get("per_mode_accuracy") or {}
    fewest = splits[0]
    cell = ok[ok["split"] == fewest.split]
    shown = _labelled(cell)
    acc = {m: _mean_accuracy(cell[cell["method"] == m]) for m in methods}
    looks = list(next(iter(_parse(v) for v in cell["per_mode_accuracy"] if _parse(v))))

    heads = (["zero-shot CLIP"] if zs else []) + [METHOD_LABELS.get(m, m) for m in methods]
    lines = [
        f"### Accuracy per look (appearance mode), {fewest.num_labeled} labels",
        "",
        "Percent of each look's val pixels predicted as its class (mean over seeds); "
        "mode 0 is a class's most common look (probabilities 0.4 / 0.3 / 0.2 / 0.1). "
        "'in labels' says whether the labelled images show the look.",
        "",
        "| look | in labels | " + " | ".join(heads) + " |",
        "|---|:---:|" + "---:|" * len(heads),
    ]
    for look in looks:
        values = ([zs.get(look)] if zs else []) + [acc[m].get(look) for m in methods]
        lines.append(
            f"| {look} | {'yes' if look in shown else 'no'} | "
            + " | ".join(_fmt(v) for v in values)
            + " |"
        )
    lines += [
        "",
        "Mean accuracy over the looks the labelled images show / miss:",
        "",
        "| labelled images | looks shown / missed | " + " | ".join(heads) + " |",
        "|---:|---:|" + "---:|" * len(heads),
    ]
    for split in splits:
        cell = ok[ok["split"] == split.split]
        shown = _labelled(cell)
        acc = {m: _mean_accuracy(cell[cell["method"] == m]) for m in methods}
        for group, members in (
            ("shown", [x for x in looks if x in shown]),
            ("missed", [x for x in looks if x not in shown]),
        ):
            if not members:
                continue
            values = ([_mean([zs[x] for x in members if zs.get(x) is not None])] if zs else []) + [
                _mean([acc[m][x] for x in members if x in acc[m]]) for m in methods
            ]
            lines.append(
                f"| {split.num_labeled} | {len(members)} {group} | "
                + " | ".join(_fmt(v) for v in values)
                + " |"
            )
    return lines + [""]
