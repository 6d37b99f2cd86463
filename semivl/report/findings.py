""" "Does it reproduce the paper?": SemiVL's headline findings checked against a results table.

Computed from the numbers alone (final-iteration mIoU, mean and sample std over seeds), for a
dataset whose grid holds supervised, UniMatch and SemiVL. A finding holds when its margin is
positive, and an ordering between two methods holds only when its margin is also larger than
the larger seed std of the two (the criterion of the toy miniature's issue). Each line says
holds / does not hold / not measured, with the numbers. The component ablation (rows of
:data:`semivl.report.ablation.COMPONENTS`) adds one line per component: its gain over the row
above at each split where both ran, with its sign as measured, and whether it helps at every
one of them by the same criterion. The claims that ``config/methods.yaml`` records for a method
the grid runs (UniMatch V2's two) add a line each (:func:`claim_findings`).
"""

from __future__ import annotations

import math

import pandas as pd

from semivl.methods.catalog import load_catalog
from semivl.report.vocabulary import METHOD_LABELS, format_delta, summarise, uses_definitions


def _stats(summary: pd.DataFrame, method: str, split: str) -> tuple[float, float, int]:
    """(mean, sample std, count) of a cell of :func:`summarise`'s table; NaNs and 0 if absent."""
    if (split, method) not in summary.index:
        return math.nan, math.nan, 0
    row = summary.loc[(split, method)]
    return float(row["mean"]), float(row["std"]), int(row["n"])


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("holds" if ok else "**does not hold**")


def _order(summary: pd.DataFrame, upper: str, lower: str, split: str, labelled: int) -> str:
    (mu_a, sd_a, n_a), (mu_b, sd_b, n_b) = (
        _stats(summary, upper, split),
        _stats(summary, lower, split),
    )
    name_a, name_b = METHOD_LABELS.get(upper, upper), METHOD_LABELS.get(lower, lower)
    claim = f"{name_a} > {name_b} at {labelled} labels"
    if not (n_a and n_b):
        return f"{claim}: {_verdict(None)}"
    margin = mu_a - mu_b
    spread = max((s for s in (sd_a, sd_b) if not math.isnan(s)), default=math.nan)
    ok = margin > 0 and (math.isnan(spread) or margin > spread)
    detail = f"margin {format_delta(margin)}"
    if not math.isnan(spread):
        detail += f", larger seed std {spread:.1f}"
    return f"{claim}: {_verdict(ok)} ({detail})"


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
    dataset's grid: the gain at each split where both have finished runs, signed as measured,
    and whether the component helps at all of them (margin above the larger seed std)."""
    from semivl.report.ablation import SEMIVL_WITH_NAMES, component_rows, component_splits

    rows = component_rows(part)
    if not rows:
        return []
    summary = summarise(part.dropna(subset=["miou"])).set_index(["split", "method"])
    splits = component_splits(part)
    methods, lines = set(part["method"]), []
    for (below, _, _), (method, label, over) in zip(rows, rows[1:], strict=False):
        if method not in methods or below not in methods:
            continue
        claim = f"{label} over {over}"
        if label == SEMIVL_WITH_NAMES:
            lines.append(
                f"+ class definitions: {_verdict(None)} (SemiVL guides with the plain "
                f"class names here, as upstream)"
            )
            continue
        pieces, oks = [], []
        for split, labelled in zip(splits["split"], splits["num_labeled"], strict=True):
            (mu_a, sd_a, n_a), (mu_b, sd_b, n_b) = (
                _stats(summary, method, split),
                _stats(summary, below, split),
            )
            if not (n_a and n_b):
                pieces.append(f"not measured at {int(labelled)} labels")
                continue
            margin = mu_a - mu_b
            spread = max((s for s in (sd_a, sd_b) if not math.isnan(s)), default=math.nan)
            unit = "" if oks else " mIoU"
            pieces.append(
                f"{format_delta(margin)}{unit} at {int(labelled)} labels"
                + (f" (larger seed std {spread:.1f})" if not math.isnan(spread) else "")
            )
            oks.append(margin > 0 and (math.isnan(spread) or margin > spread))
        if not oks:
            lines.append(f"{claim}: {_verdict(None)}")
            continue
        lines.append(
            f"{claim}: {', '.join(pieces)}; it helps at every split measured: {_verdict(all(oks))}"
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
        summary = summarise(part).set_index(["split", "method"])
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
                _order(summary, name, lower, where["split"], where["num_labeled"])
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
    summary = summarise(part).set_index(["split", "method"])
    splits = (
        part[["split", "num_labeled"]]
        .drop_duplicates()
        .sort_values(["num_labeled", "split"], ignore_index=True)
    )
    fewest, most = splits.iloc[0], splits.iloc[-1]
    lines = [
        _order(summary, "semivl", "unimatch", fewest["split"], fewest["num_labeled"]),
        _order(summary, "unimatch", "supervised", fewest["split"], fewest["num_labeled"]),
    ]
    if zero_shot is not None:
        gaps = [
            (_stats(summary, "semivl", s)[0] - zero_shot["miou"], int(n))
            for s, n in zip(splits["split"], splits["num_labeled"], strict=True)
        ]
        measured = [g for g in gaps if not math.isnan(g[0])]
        ok = all(g > 0 for g, _ in measured) if measured else None
        lines.append(
            "SemiVL above the zero-shot dense CLIP labels at every split: "
            f"{_verdict(ok)} ("
            + ", ".join(f"{n} labels {format_delta(g)}" for g, n in measured)
            + ")"
        )
    for ablation in ("semivl_no_definitions", "semivl_no_spatial_ft"):
        if ablation not in methods:
            continue
        # the ablations may run on a few cells only: their split with the fewest labels
        where = _fewest(part, [ablation])
        if ablation == "semivl_no_definitions" and not uses_definitions(part, "semivl"):
            lines.append(
                f"{METHOD_LABELS[ablation]} below full SemiVL at "
                f"{where['num_labeled']} labels: not measured (SemiVL guides with "
                f"the plain class names here, as upstream)"
            )
            continue
        full, _, n_full = _stats(summary, "semivl", where["split"])
        mean, _, n = _stats(summary, ablation, where["split"])
        ok = None if not (n and n_full) else mean < full
        delta = f" (Δ {format_delta(mean - full)})" if ok is not None else ""
        lines.append(
            f"{METHOD_LABELS[ablation]} below full SemiVL at {where['num_labeled']} "
            f"labels: {_verdict(ok)}{delta}"
        )
    if "semivl_project_definitions" in methods:
        where = _fewest(part, ["semivl_project_definitions"])
        lines.append(
            _order(
                summary,
                "semivl_project_definitions",
                "semivl",
                where["split"],
                where["num_labeled"],
            )
        )
    if len(splits) > 1:
        gap_few, gap_most = (
            _stats(summary, "semivl", s)[0] - _stats(summary, "supervised", s)[0]
            for s in (fewest["split"], most["split"])
        )
        # a gain, and a larger one with fewer labels (a loss that grows is no shrinking gain)
        ok = (
            None
            if math.isnan(gap_few) or math.isnan(gap_most)
            else gap_few > 0 and gap_few > gap_most
        )
        lines.append(
            f"SemiVL's gain over supervised shrinks as labels grow: {_verdict(ok)} "
            f"({fewest['num_labeled']} labels {format_delta(gap_few)}, "
            f"{most['num_labeled']} labels {format_delta(gap_most)})"
        )
    return _section(lines + components + v2)


def _section(lines: list[str]) -> list[str]:
    return (
        [
            "### Does this reproduce the paper's findings?",
            "",
            "Computed from the final-iteration table above (SemiVL paper, Tables 1 and 5: "
            "SemiVL > UniMatch > supervised with few labels, each component helps, the gain "
            "is largest with the fewest labels; where the grid runs it, UniMatch V2's "
            "claims: above its labelled-only baseline and above SemiVL). An ordering holds "
            "when its margin exceeds the larger seed std of the pair.",
            "",
        ]
        + [f"- {line}" for line in lines]
        + [""]
    )
