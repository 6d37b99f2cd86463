""" "Does it reproduce the paper?": SemiVL's headline findings checked against a results table.

Computed from the per-run final-iteration mIoU of a dataset whose grid holds supervised,
UniMatch and SemiVL. Each comparison pairs the two methods' runs by seed (same labelled split,
same seed) and reports the mean difference with its 95% t interval
(:mod:`semivl.report.paired`): it *holds* when the interval lies above zero, *does not hold*
when below, and is *inconclusive* when it contains zero or only one seed pairs up. A line says
which, with the numbers. The component ablation (rows of
:data:`semivl.report.ablation.COMPONENTS`) adds one line per component: its gain over the row
above at each split where both ran, and whether it helps at every one of them. The claims that
``config/methods.yaml`` records for a method the grid runs (UniMatch V2's two) add a line each
(:func:`claim_findings`).
"""

from __future__ import annotations

import pandas as pd

from semivl.methods.catalog import load_catalog
from semivl.report.paired import (
    NOT_MEASURED,
    Interval,
    all_hold,
    interval,
    paired_differences,
)
from semivl.report.vocabulary import METHOD_LABELS, uses_definitions


def _per_seed(part: pd.DataFrame, method: str, split: str) -> dict[int, float]:
    """seed -> final-iteration mIoU of the finished runs of a cell."""
    rows = part[(part["method"] == method) & (part["split"] == split)].dropna(subset=["miou"])
    return {int(seed): float(miou) for seed, miou in zip(rows["seed"], rows["miou"], strict=True)}


def _paired(part: pd.DataFrame, upper: str, lower: str, split: str) -> Interval:
    return interval(
        paired_differences(_per_seed(part, upper, split), _per_seed(part, lower, split))
    )


def _gains(part: pd.DataFrame, upper: str, lower: str, split: str) -> dict[int, float]:
    """seed -> ``upper``'s mIoU minus ``lower``'s, over the seeds both ran at ``split``."""
    a, b = _per_seed(part, upper, split), _per_seed(part, lower, split)
    return {seed: a[seed] - b[seed] for seed in sorted(set(a) & set(b))}


def _line(claim: str, result: Interval) -> str:
    if result.n == 0:
        return f"{claim}: {NOT_MEASURED}"
    return f"{claim}: {result.verdict} ({result.describe()})"


def _order(part: pd.DataFrame, upper: str, lower: str, split: str, labelled: int) -> str:
    name_a, name_b = METHOD_LABELS.get(upper, upper), METHOD_LABELS.get(lower, lower)
    return _line(f"{name_a} > {name_b} at {labelled} labels", _paired(part, upper, lower, split))


def _fewest(part: pd.DataFrame, methods) -> pd.Series:
    """The split (split, num_labeled) with the fewest labels among those where any of
    ``methods`` has runs (all of the dataset's when none has)."""
    rows = part[part["method"].isin(list(methods))]
    rows = rows if len(rows) else part
    return (
        rows[["split", "num_labeled"]]
        .drop_duplicates()
        .sort_values(["num_labeled", "split"], ignore_index=True)
        .iloc[0]
    )


def component_findings(part: pd.DataFrame) -> list[str]:
    """One line per component of the component ablation whose row and the row above are in the
    dataset's grid: the paired gain at each split where both have finished runs, signed as
    measured, and whether the component helps at all of them."""
    from semivl.report.ablation import SEMIVL_WITH_NAMES, component_rows, component_splits

    rows = component_rows(part)
    if not rows:
        return []
    splits = component_splits(part)
    methods, lines = set(part["method"]), []
    for (below, _, _), (method, label, over) in zip(rows, rows[1:], strict=False):
        if method not in methods or below not in methods:
            continue
        claim = f"{label} over {over}"
        if label == SEMIVL_WITH_NAMES:
            lines.append(
                f"+ class definitions: {NOT_MEASURED} (SemiVL guides with the plain "
                f"class names here, as upstream)"
            )
            continue
        pieces, measured = [], []
        for split, labelled in zip(splits["split"], splits["num_labeled"], strict=True):
            gain = _paired(part, method, below, split)
            if gain.n == 0:
                pieces.append(f"not measured at {int(labelled)} labels")
                continue
            pieces.append(f"{int(labelled)} labels {gain.describe()}: {gain.verdict}")
            measured.append(gain)
        if not measured:
            lines.append(f"{claim}: {NOT_MEASURED}")
            continue
        lines.append(
            f"{claim}: {'; '.join(pieces)}; it helps at every split measured: {all_hold(measured)}"
        )
    return lines


def claim_findings(part: pd.DataFrame) -> list[str]:
    """The claims of ``config/methods.yaml`` (UniMatch V2: above its labelled-only baseline,
    V2 paper Table 1, and above SemiVL, V2 README: 86.3 against 84.0 on VOC 92 labels), for
    each method the grid runs: each at the fewest labels where both methods of the pair ran."""
    methods = set(part["method"])
    lines = []
    for name, entry in load_catalog().items():
        if name not in methods or not entry.claims:
            continue
        for claim in entry.claims:
            lower = claim.above
            if lower not in methods:
                continue
            both = set(part.loc[part["method"] == name, "split"]) & set(
                part.loc[part["method"] == lower, "split"]
            )
            if not both:
                continue
            where = _fewest(part[part["split"].isin(both)], [name, lower])
            lines.append(
                _order(part, name, lower, where["split"], where["num_labeled"])
                + f" ({claim.source})"
            )
    return lines


def paper_findings(part: pd.DataFrame, zero_shot: dict | None = None) -> list[str]:
    """The findings section of one dataset's results (``part``: one row per run), or ``[]``
    when the grid lacks supervised, UniMatch or SemiVL and the component ablation."""
    methods = set(part["method"])
    components, v2 = component_findings(part), claim_findings(part)
    if not {"supervised", "unimatch", "semivl"} <= methods:
        return _section(components + v2) if components or v2 else []
    splits = (
        part[["split", "num_labeled"]]
        .drop_duplicates()
        .sort_values(["num_labeled", "split"], ignore_index=True)
    )
    fewest, most = splits.iloc[0], splits.iloc[-1]
    lines = []
    for split, labelled in zip(splits["split"], splits["num_labeled"], strict=True):
        lines += [
            _order(part, "semivl", "unimatch", split, labelled),
            _order(part, "unimatch", "supervised", split, labelled),
        ]
    if zero_shot is not None:
        gaps = [
            (
                interval([v - zero_shot["miou"] for v in _per_seed(part, "semivl", s).values()]),
                int(n),
            )
            for s, n in zip(splits["split"], splits["num_labeled"], strict=True)
        ]
        measured = [(g, n) for g, n in gaps if g.n]
        lines.append(
            "SemiVL above the zero-shot dense CLIP labels at every split: "
            f"{all_hold([g for g, _ in measured])} ("
            + "; ".join(f"{n} labels {g.describe()}" for g, n in measured)
            + ")"
        )
    for ablation in ("semivl_no_definitions", "semivl_no_spatial_ft"):
        if ablation not in methods:
            continue
        # the ablations may run on a few cells only: their split with the fewest labels
        where = _fewest(part, [ablation])
        if ablation == "semivl_no_definitions" and not uses_definitions(part, "semivl"):
            lines.append(
                f"SemiVL > {METHOD_LABELS[ablation]} at {where['num_labeled']} labels: "
                f"{NOT_MEASURED} (SemiVL guides with the plain class names here, as upstream)"
            )
            continue
        lines.append(_order(part, "semivl", ablation, where["split"], where["num_labeled"]))
    if "semivl_project_definitions" in methods:
        where = _fewest(part, ["semivl_project_definitions"])
        lines.append(
            _order(
                part,
                "semivl_project_definitions",
                "semivl",
                where["split"],
                where["num_labeled"],
            )
        )
    if len(splits) > 1:
        # per seed: SemiVL's gain over supervised at the fewest labels minus the gain at the
        # most; the gain must be there at the fewest labels too (a loss that grows is no
        # shrinking gain)
        few, most_gain = (_gains(part, "semivl", "supervised", x["split"]) for x in (fewest, most))
        gain_few, gain_most = interval(list(few.values())), interval(list(most_gain.values()))
        shrink = interval(paired_differences(few, most_gain))
        verdict = all_hold([gain_few, shrink]) if gain_few.n and shrink.n else NOT_MEASURED
        lines.append(
            f"SemiVL's gain over supervised shrinks as labels grow: {verdict} "
            f"(gain at {fewest['num_labeled']} labels {gain_few.describe()}; at "
            f"{most['num_labeled']} labels {gain_most.describe()}; shrinkage "
            f"{shrink.describe()})"
        )
    return _section(lines + components + v2)


def _section(lines: list[str]) -> list[str]:
    return (
        [
            "### Does this reproduce the paper's findings?",
            "",
            "Computed from the per-run final-iteration mIoU (SemiVL paper, Tables 1 and 5: "
            "SemiVL > UniMatch > supervised with few labels, each component helps, the gain "
            "is largest with the fewest labels; where the grid runs it, UniMatch V2's "
            "claims: above its labelled-only baseline and above SemiVL). Each comparison "
            "pairs the two methods' runs by seed and gives the mean difference Δ with its 95% "
            "t interval [low, high]: it holds when the interval lies above zero, does not hold "
            "when it lies below, and is inconclusive when it contains zero or one seed pairs "
            "up. With 3 seeds the interval is wide (t = 4.30): inconclusive is common and "
            "honest.",
            "",
        ]
        + [f"- {line}" for line in lines]
        + [""]
    )
