"""``tables.md``'s two ablation tables of one dataset.

* SemiVL without each component (:data:`~semivl.report.tables.ABLATIONS`), with the delta to
  full SemiVL.
* The component ablation as the SemiVL paper builds it (docs/upstream.md, SemiVL component
  ablation, rows 2 to 7): start from UniMatch on an ImageNet ViT and add one component per row
  up to SemiVL, with the cumulative mIoU and the gain over the row above, in the splits where
  the ablation ran.

Both read final-iteration mIoU, mean and sample std over seeds, and only the splits where their
variants have runs (in a grid of blocks the ablations run on a few cells only).
"""

from __future__ import annotations

import pandas as pd

from semivl.report.vocabulary import (
    ABLATIONS,
    ADDITIONS,
    METHOD_LABELS,
    PROJECT_DEFINITIONS_MARK,
    _cell_rows,
    _header,
    _splits,
    _uses_project_definitions,
    format_cell,
    format_delta,
    uses_definitions,
)

# (method, the row's label, what the row above is) in the paper's order: row 2 is the starting
# point, each later row adds one component to the row above it.
COMPONENTS = [
    ("unimatch_vit", "UniMatch w/ ViT (ImageNet)", ""),
    ("unimatch_clip_init", "+ CLIP initialisation", "ImageNet initialisation"),
    ("unimatch_clip_sft", "+ spatial fine-tuning", "full fine-tuning"),
    ("semivl_no_guidance", "+ language-guided decoder", "the DeepLabV3+ decoder"),
    ("semivl_no_definitions", "+ dense CLIP guidance", "no guidance"),
    ("semivl", "+ class definitions (= SemiVL)", "guidance with the plain class names"),
]
COMPONENT_METHODS = [method for method, _, _ in COMPONENTS]
# Row 7 where SemiVL guides with the plain class names (COCO, ADE20K: upstream has no class
# definitions), and the row of this project's definitions that then follows it.
SEMIVL_WITH_NAMES = "= SemiVL (plain class names, as upstream)"
PROJECT_DEFINITIONS_ROW = (
    "semivl_project_definitions",
    "+ this project's class definitions",
    "SemiVL with the plain class names",
)


def component_rows(part: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The component ablation's rows of one dataset, (method, label, the row above) each:
    :data:`COMPONENTS`, row 7 relabelled (and this project's definitions added below it where
    they ran) when SemiVL guides with the plain class names; ``[]`` when the dataset's grid
    lacks the starting point ``unimatch_vit``."""
    if COMPONENTS[0][0] not in set(part["method"]):
        return []
    rows = list(COMPONENTS)
    if not uses_definitions(part, "semivl"):
        rows[-1] = ("semivl", SEMIVL_WITH_NAMES, "the row above (the same configuration)")
        if PROJECT_DEFINITIONS_ROW[0] in set(part["method"]):
            rows.append(PROJECT_DEFINITIONS_ROW)
    return rows


def component_splits(part: pd.DataFrame) -> pd.DataFrame:
    """The splits where the component ablation ran: those with runs (any status) of a variant
    other than SemiVL itself, which runs everywhere."""
    variants = [m for m, _, _ in component_rows(part) if m != "semivl"]
    return _splits(part[part["method"].isin(variants)])


def _mean(rows: pd.DataFrame) -> float:
    return float(rows["miou"].mean()) if rows["miou"].count() else float("nan")


def component_table(part: pd.DataFrame) -> list[str]:
    """The component ablation of one dataset (final iteration): a row per added component, a
    column pair (mIoU, gain over the row above) per split where it ran; ``[]`` without
    ``unimatch_vit`` in the dataset's grid."""
    rows = component_rows(part)
    if not rows:
        return []
    splits = component_splits(part)
    names = [str(n) for n in splits["num_labeled"]]
    lines = [
        "| component (final iteration) | " + " | ".join(f"{n} | gain" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    above: dict[str, float] = {}
    for i, (method, label, _) in enumerate(rows):
        cells = []
        for split in splits["split"]:
            cell = _cell_rows(part, method, split)
            mean = _mean(cell)
            gain = mean - above[split] if i else float("nan")
            cells += [format_cell(cell["miou"], cell.get("status")), format_delta(gain)]
            above[split] = mean
        if _uses_project_definitions(part, method):
            label = f"{label} {PROJECT_DEFINITIONS_MARK}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = [
        "",
        "Each row adds one component to the row above, as in the SemiVL paper's "
        "ablation (its first row, UniMatch with ZegCLIP, is not part of this benchmark). "
        "The first three rows train UniMatch with a DeepLabV3+ head on a ViT: "
        "ImageNet weights where the recipe names them (`model.pretrained`; the toy's "
        "ViT starts from random weights, as there is no toy ImageNet), then CLIP's, then "
        "fine-tuning only CLIP's attention and position embeddings. "
        "Gain: the row's mean minus the mean of the row above in the same split (– where "
        "one of the two has no finished run).",
    ]
    if not uses_definitions(part, "semivl"):
        notes.append(
            "Here SemiVL itself guides with the plain class names (upstream has no "
            "class definitions for this dataset), so its row repeats the "
            "configuration of the row above and its gain is run-to-run variation"
            + (
                "; what class definitions add is the last row, with this project's definitions."
                if rows[-1][0] != "semivl"
                else "."
            )
        )
    return lines + notes + [""]


def ablation_table(part: pd.DataFrame) -> list[str]:
    """SemiVL minus each component, with the delta to full SemiVL (final iteration), in the
    splits where a variant ran."""
    present = [m for m in ADDITIONS + ABLATIONS if m in set(part["method"])]
    if "semivl" not in set(part["method"]) or not present:
        return [
            "No ablation runs in this grid: add `semivl_no_definitions` / "
            "`semivl_no_spatial_ft` to a block of the grid with `semivl`'s cells.",
            "",
        ]
    splits = _splits(part[part["method"].isin(present)])
    lines = _header("variant (final iteration)", splits)
    full = {s: _cell_rows(part, "semivl", s)["miou"] for s in splits["split"]}
    for method in ["semivl", *present]:
        cells = []
        for split in splits["split"]:
            rows = _cell_rows(part, method, split)
            cell = format_cell(rows["miou"], rows.get("status"))
            if method != "semivl" and rows["miou"].count() and full[split].count():
                cell += f"; Δ {format_delta(rows['miou'].mean() - full[split].mean())}"
            cells.append(cell)
        name = METHOD_LABELS[method]
        if _uses_project_definitions(part, method):
            name = f"{name} {PROJECT_DEFINITIONS_MARK}"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    notes = [
        "",
        "Δ: the variant's mean minus full SemiVL's mean in the same column "
        "(negative: the removed component helps; for a variant that adds something, "
        "positive: the addition helps).",
    ]
    if "semivl_no_definitions" in present and not uses_definitions(part, "semivl"):
        notes.append(
            "Here SemiVL itself guides with the plain class names (upstream has no "
            "class definitions for this dataset), so the run without definitions "
            "has SemiVL's configuration; what definitions add is the row with this "
            "project's class definitions."
        )
    return lines + notes + [""]
