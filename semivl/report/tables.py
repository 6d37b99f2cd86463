"""``tables.md``: per dataset, the results tables in the papers' format.

For each dataset: mIoU at the final iteration and best on val (rows are the main methods,
columns the labelled splits headed by their number of labelled images), each method followed by
its published numbers and the difference to them; the ablations (:mod:`semivl.report.ablation`:
SemiVL without each component, and the paper's component ablation that adds one component per
row); whether the numbers reproduce SemiVL's headline findings
(:mod:`semivl.report.findings`); training cost per cell (:mod:`semivl.report.cost`); then the
cost per dataset and footnotes on protocol, code, configs and data.
The grid is made of blocks, so a (dataset, split) cell need not have every method or seed:
each table shows the splits where its methods ran. Cells whose runs failed or never ran say so
instead of a number, and a dataset without any finished run says only that.
"""

from __future__ import annotations

import math

import pandas as pd

from semivl.report.ablation import ablation_table, component_table
from semivl.report.batch_layout import batch_mark, batch_note
from semivl.report.cost import cost_table, overall_cost_table
from semivl.report.findings import paper_findings
from semivl.report.modes_table import modes_section
from semivl.report.published import differences_note, differs_mark, published_for
from semivl.report.released import released_note, released_rows, with_released_splits
from semivl.report.vocabulary import (  # noqa: F401 - the vocabulary, re-exported
    ABLATION_ONLY,
    ABLATIONS,
    ADDITIONS,
    DATASET_ORDER,
    METHOD_LABELS,
    METRICS,
    MINUS,
    PROJECT_DEFINITIONS_MARK,
    PROJECT_DEFINITIONS_NOTE,
    PROTOCOL_NOTES,
    PUBLISHED_NOTE,
    _cell_rows,
    _header,
    _missing,
    _splits,
    _uses_project_definitions,
    dataset_order,
    format_cell,
    format_delta,
    main_methods,
    method_order,
    summarise,
    unfinished_note,
    uses_definitions,
)

ZERO_SHOT_MARK = "‡"


def _zero_shot_row(zero_shot: dict | None, splits: pd.DataFrame) -> list[str]:
    if zero_shot is None:
        return []
    value = f"{zero_shot['miou']:.1f}"
    return [
        f"| Zero-shot dense CLIP (no labels) {ZERO_SHOT_MARK} | "
        + " | ".join([value] * len(splits))
        + " |"
    ]


def zero_shot_note(zero_shot: dict) -> str:
    """The footnote of the zero-shot row: which CLIP and texts, and what the number means."""
    texts = {
        "names": "the plain class names",
        "concept_max": "the class definitions, taking the max over a class's concepts",
        "concept_avg": "the class definitions, averaged per class",
    }.get(zero_shot.get("text"), str(zero_shot.get("text")))
    return (
        f"{ZERO_SHOT_MARK} The frozen CLIP `{zero_shot.get('clip')}` labels every pixel by "
        f"itself, as SemiVL's dense CLIP guidance does: the MaskCLIP value-path embedding, "
        f"its cosine similarity with {texts}, and the arg-max, without the confidence "
        f"threshold. It is evaluated on the whole val split under the recipe's protocol. "
        f"It uses no label and no training, so every column holds the same number: it is "
        f"the reference point MaskCLIP is for SemiVL."
    )


def _metric_table(
    part: pd.DataFrame,
    dataset: str,
    metric: str,
    published: pd.DataFrame | None,
    sources: dict[str, int],
    zero_shot: dict | None = None,
    released: list[dict] | None = None,
) -> tuple[list[str], bool]:
    """One results table; returns its lines and whether a † mark was used. ``released``: the
    dataset's released checkpoints evaluated here (rows under the published ones)."""
    released = released or []
    methods = main_methods([*part["method"], *(r["method"] for r in released)])
    shown = part[part["method"].isin(methods)]
    splits = _splits(shown if len(shown) else part)
    if released:
        splits = with_released_splits(splits, released)
    lines, marked = _header("method", splits), False
    lines += _zero_shot_row(zero_shot, splits)
    for method in methods:
        cells, means = [], []
        for split in splits["split"]:
            rows = _cell_rows(part, method, split)
            cells.append(format_cell(rows[metric], rows.get("status")) + batch_mark(rows))
            means.append(rows[metric].mean() if rows[metric].count() else math.nan)
        name = METHOD_LABELS.get(method, method)
        if _uses_project_definitions(part, method):
            name, marked = f"{name} {PROJECT_DEFINITIONS_MARK}", True
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        paper = published_for(published, dataset, method)
        by_split = {str(r.split): r for r in paper.itertuples()}
        shown = [by_split.get(str(s)) for s in splits["split"]]
        evaluated = released_rows(released, method, list(splits["split"]), shown)
        if not any(r is not None for r in shown):
            lines += evaluated
            continue
        marks = sorted({_source_mark(r, sources) for r in shown if r is not None})
        lines.append(
            f"| ↳ published {''.join(marks)} | "
            + " | ".join(f"{r.miou:.1f}{differs_mark(r)}" if r is not None else "–" for r in shown)
            + " |"
        )
        lines.append(
            "| ↳ Δ to published | "
            + " | ".join(
                format_delta(m - r.miou) if r is not None else "–"
                for m, r in zip(means, shown, strict=True)
            )
            + " |"
        )
        lines += evaluated
    return lines, marked


def _source_mark(row, sources: dict[str, int]) -> str:
    key = f"{row.source}; {row.backbone}; {row.protocol}"
    own = getattr(row, "from_the_authors_own_repo", None)
    if isinstance(own, str) and own:
        key += "; from the authors' own repository" if own == "yes" else "; quoted by others"
    sources.setdefault(key, len(sources) + 1)
    return f"[{sources[key]}]"


def render_tables(
    frame: pd.DataFrame,
    title: str = "Results",
    published: pd.DataFrame | None = None,
    releases: dict[str, str] | None = None,
    grid_note: str | None = None,
    zero_shot: dict[str, dict] | None = None,
    released: dict[str, list[dict]] | None = None,
) -> str:
    """Markdown with one section per dataset (see the module docstring). ``zero_shot`` maps a
    dataset to its zero-shot dense CLIP metrics (``semivl evaluate --zero-shot``),
    ``released`` to its released checkpoints' metrics (:mod:`semivl.report.released`)."""
    released = released or {}
    # these use this module's labels and formats

    zero_shot = zero_shot or {}
    lines = [
        f"# {title}",
        "",
        "mIoU (%) on the validation split, mean ± sample std over seeds (number of seeds "
        "in brackets). Columns are the labelled splits, headed by their number of "
        "labelled images.",
        "",
    ]
    lines += smoke_note(frame)
    sources: dict[str, int] = {}
    datasets = dataset_order(frame["dataset"])
    for dataset in datasets:
        part = frame[frame["dataset"] == dataset]
        lines += [f"## {dataset}{' (smoke run)' if smoke_note(part) else ''}", ""]
        unfinished = unfinished_note(part)
        if unfinished:
            lines += [f'{unfinished} The runs are listed under "Runs without results".', ""]
            continue
        marked = False
        for metric, label in METRICS.items():
            table, used = _metric_table(
                part,
                str(dataset),
                metric,
                published,
                sources,
                zero_shot.get(str(dataset)),
                released.get(str(dataset)),
            )
            marked |= used
            lines += [f"### {label}", "", *table, ""]
        lines += differences_note(
            published, str(dataset), main_methods(list(part["method"].unique())), METHOD_LABELS
        )
        lines += ["### Ablation: SemiVL without each component", "", *ablation_table(part)]
        components = component_table(part)
        if components:
            lines += ["### Component ablation", "", *components]
        lines += paper_findings(part, zero_shot.get(str(dataset)))
        lines += modes_section(part, zero_shot.get(str(dataset)))
        cost = cost_table(part)
        if cost:
            lines += ["### Training cost per cell", "", *cost]
        if marked:
            lines += [PROJECT_DEFINITIONS_NOTE.format(dataset=dataset), ""]
        lines += batch_note(part, METHOD_LABELS)
        if str(dataset) in zero_shot:
            lines += [zero_shot_note(zero_shot[str(dataset)]), ""]
        if released.get(str(dataset)):
            lines += [released_note(released[str(dataset)], METHOD_LABELS), ""]
    lines += overall_cost_table(frame, datasets)
    notes = PROTOCOL_NOTES + ([PUBLISHED_NOTE] if sources else [])
    lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    if sources:
        lines += ["Published numbers (`config/published_results.csv`):", ""]
        lines += [f"[{n}] {key}." for key, n in sorted(sources.items(), key=lambda kv: kv[1])]
        lines.append("")
    lines += missing_runs(frame)
    lines += provenance_notes(frame, releases or {}, grid_note)
    return "\n".join(lines)


def smoke_note(frame: pd.DataFrame) -> list[str]:
    """A warning above the tables when runs trained a fraction of their schedule (a smoke
    grid's ``schedule_fraction``); nothing otherwise."""
    if "schedule_fraction" not in frame:
        return []
    fractions = pd.to_numeric(frame["schedule_fraction"], errors="coerce").dropna()
    shortened = sorted(set(fractions[fractions < 1]))
    if not shortened:
        return []
    share = ", ".join(f"{f:.2%}" for f in shortened)
    runs = int((fractions < 1).sum())
    return [
        f"**Smoke run: {runs} of {len(frame)} runs trained {share} of their recipes' "
        "iterations** (`schedule_fraction` in the grid). They show that the pipeline runs "
        "on this cluster, end to end; their mIoU is not a result and is not comparable "
        "with the published numbers.",
        "",
    ]


def missing_runs(frame: pd.DataFrame) -> list[str]:
    """A list of the runs without results and why (failed or not run)."""
    if "status" not in frame:
        return []
    missing = frame[frame["status"].fillna("ok") != "ok"]
    if missing.empty:
        return []
    lines = ["## Runs without results", ""]
    groups: dict[tuple, list[str]] = {}
    datasets = {d: i for i, d in enumerate(dataset_order(missing["dataset"]))}
    methods = {m: i for i, m in enumerate(method_order(missing["method"]))}
    missing = missing.assign(
        _dataset=missing["dataset"].map(datasets), _method=missing["method"].map(methods)
    ).sort_values(["_dataset", "num_labeled", "split", "_method", "seed"], kind="stable")
    for row in missing.itertuples():
        reason = getattr(row, "reason", "")
        reason = reason if isinstance(reason, str) else ""
        key = (row.dataset, row.split, row.method, row.status, reason)
        groups.setdefault(key, []).append(str(row.seed))
    for (dataset, split, method, status, reason), seeds in groups.items():
        seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"
        lines.append(
            f"- {dataset} {split} {METHOD_LABELS.get(method, method)} {seeds_text}: "
            f"{status}{f' ({reason})' if reason else ''}"
        )
    return lines + [
        "",
        "Rerun the workflow to retry them; each failed run's log is in `<results>/logs/train/`.",
        "",
    ]


def _counted(values: pd.Series) -> str:
    counts = values.dropna().astype(str).value_counts().sort_index()
    return ", ".join(f"`{v}` ({n} run{'s' if n > 1 else ''})" for v, n in counts.items())


def provenance_notes(
    frame: pd.DataFrame, releases: dict[str, str] | None = None, grid_note: str | None = None
) -> list[str]:
    """Footnotes: which code, configs and data produced the numbers."""
    commits = _counted(frame["code_commit"]) if "code_commit" in frame else ""
    code = (
        f"Code: commit {commits}."
        if commits
        else "Code: commit not recorded (runs trained outside a git checkout)."
    )
    lines = [
        "## Provenance",
        "",
        f"- {code} Each run's `provenance.json` holds the commit, package versions, "
        "hardware, wall time and GPU-hours; its `config.yaml` holds the resolved recipe.",
    ]
    if grid_note:
        lines.append(f"- Grid: {grid_note}.")
    lines.append(
        "- Configs: `config/recipes/<method>/<dataset>.yaml` and "
        "`config/datasets/<dataset>.yaml` of that commit."
    )
    lines.append(
        "- Reproducibility: every random choice is seeded from the run's seed, so the "
        "same commit, machine and thread count give identical numbers. Another CPU may "
        "not: oneDNN/MKL pick kernels by CPU, and their rounding differences grow "
        "through training (the toy demo's cell means moved by several mIoU between "
        "two machines; README). On GPUs the runs "
        "are not bit-reproducible: the trainer sets `cudnn.benchmark` (as upstream) "
        "and not `torch.use_deterministic_algorithms`."
    )
    if "recipe_sha" in frame:
        for (dataset, method), part in frame.groupby(["dataset", "method"], sort=True):
            shas = _counted(part["recipe_sha"])
            if shas:
                flag = (
                    " **(runs from different recipe versions)**"
                    if (part["recipe_sha"].dropna().nunique() > 1)
                    else ""
                )
                lines.append(f"  - recipe {method}/{dataset}: sha256 {shas}{flag}")
    for dataset in dataset_order(frame["dataset"]):
        release = (releases or {}).get(dataset)
        shas = (
            _counted(frame.loc[frame["dataset"] == dataset, "data_sha"])
            if ("data_sha" in frame)
            else ""
        )
        text = f"- Data {dataset}: {release or 'release not stated in its config'}"
        lines.append(text + (f"; `prepared.json` sha256 {shas}." if shas else "."))
    return lines + [""]
