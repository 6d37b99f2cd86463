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

from semivl.report.batch_layout import batch_mark, batch_note
from semivl.report.published import differences_note, differs_mark, published_for
from semivl.report.released import released_note, released_rows, with_released_splits

METHOD_LABELS = {
    "supervised": "Supervised (labelled only)",
    "unimatch": "UniMatch",
    "semivl": "SemiVL",
    "semivl_project_definitions": "SemiVL with this project's class definitions",
    # UniMatch V2's network (DINOv2 + DPT; a tiny random ViT on the toy) and its baseline.
    "supervised_v2": "Supervised V2 (labelled only)",
    "unimatch_v2": "UniMatch V2",
    "semivl_no_definitions": "SemiVL w/o class definitions",
    "semivl_no_spatial_ft": "SemiVL w/o spatial fine-tuning",
    # The component ablation (semivl.report.ablation.COMPONENTS has its rows' labels).
    "unimatch_vit": "UniMatch w/ ViT (ImageNet)",
    "unimatch_clip_init": "UniMatch w/ CLIP ViT (full fine-tuning)",
    "unimatch_clip_sft": "UniMatch w/ CLIP ViT (spatial fine-tuning)",
    "semivl_no_guidance": "SemiVL w/o dense CLIP guidance",
}
ABLATIONS = ["semivl_no_definitions", "semivl_no_spatial_ft"]
# Variants shown only in the ablation tables, not in the main results tables and figure.
ABLATION_ONLY = [*ABLATIONS, "unimatch_vit", "unimatch_clip_init", "unimatch_clip_sft",
                 "semivl_no_guidance"]
# Datasets in the papers' order, unknown ones (the toy) after them in name order.
DATASET_ORDER = ["pascal", "coco", "ade20k", "cityscapes"]
# Variants that add to SemiVL rather than remove from it (COCO/ADE20K: upstream has no class
# definitions; this one guides with the project's), shown in the ablation table too.
ADDITIONS = ["semivl_project_definitions"]
METRICS = {"miou": "mIoU at the final iteration",
           "miou_best": "mIoU best on val (the upstream protocol)"}
MINUS = "\u2212"
PROJECT_DEFINITIONS_MARK = "†"
PROJECT_DEFINITIONS_NOTE = (
    "† Class definitions written by this project (`config/classes/{dataset}.yaml`); upstream "
    "SemiVL has none for this dataset and guides with the plain class names.")
PROTOCOL_NOTES = [
    "Final iteration: the model after the last training iteration, evaluated once on the whole "
    "val split by `semivl evaluate` (the recipe's `eval` protocol: whole image or sliding "
    "window). This is the protocol this project reports first.",
    "Best on val: the highest val mIoU among the evaluations made during training (every "
    "`train.eval_every_epochs` or `eval_every_iters`), as UniMatch and SemiVL report. It "
    "selects the checkpoint on the val set itself, so it is optimistic.",
]
PUBLISHED_NOTE = ("Published numbers are best-on-val (see each source); Δ = ours − published, "
                  "so in the final-iteration table the two sides use different protocols.")


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
    return sorted(names, key=lambda d: (DATASET_ORDER.index(d) if d in DATASET_ORDER
                                        else len(DATASET_ORDER), d))


def unfinished_note(part: pd.DataFrame) -> str | None:
    """"No finished runs yet: N of M runs missing (...)" for a dataset none of whose runs has
    metrics (``part``: its rows, one per run of the grid), ``None`` when one has."""
    if part["miou"].notna().any():
        return None
    missing = part[part["miou"].isna()]
    why = _missing(missing["status"]) if "status" in missing else ""
    return (f"No finished runs yet: {len(missing)} of {len(part)} runs missing"
            f"{f' ({why})' if why else ''}.")


def _missing(status: pd.Series | None) -> str:
    if status is None:
        return ""
    failed, not_run = int((status == "failed").sum()), int((status == "not run").sum())
    return "; ".join(part for part in (f"{failed} failed" if failed else "",
                                       f"{not_run} not run" if not_run else "") if part)


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
    return (part[["split", "num_labeled"]].drop_duplicates()
            .sort_values(["num_labeled", "split"], ignore_index=True))


def _cell_rows(part: pd.DataFrame, method: str, split: str) -> pd.DataFrame:
    return part[(part["method"] == method) & (part["split"] == split)]


def _header(first: str, splits: pd.DataFrame, extra: tuple[str, ...] = ()) -> list[str]:
    names = [str(n) for n in splits["num_labeled"]] + list(extra)
    return [f"| {first} | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]


def _uses_project_definitions(part: pd.DataFrame, method: str) -> bool:
    if "class_definitions" not in part:
        return False
    return bool((part.loc[part["method"] == method, "class_definitions"] == "project").any())


ZERO_SHOT_MARK = "‡"


def _zero_shot_row(zero_shot: dict | None, splits: pd.DataFrame) -> list[str]:
    if zero_shot is None:
        return []
    value = f"{zero_shot['miou']:.1f}"
    return [f"| Zero-shot dense CLIP (no labels) {ZERO_SHOT_MARK} | "
            + " | ".join([value] * len(splits)) + " |"]


def zero_shot_note(zero_shot: dict) -> str:
    """The footnote of the zero-shot row: which CLIP and texts, and what the number means."""
    texts = {"names": "the plain class names",
             "concept_max": "the class definitions, taking the max over a class's concepts",
             "concept_avg": "the class definitions, averaged per class"}.get(
        zero_shot.get("text"), str(zero_shot.get("text")))
    return (f"{ZERO_SHOT_MARK} The frozen CLIP `{zero_shot.get('clip')}` labels every pixel by "
            f"itself, as SemiVL's dense CLIP guidance does: the MaskCLIP value-path embedding, "
            f"its cosine similarity with {texts}, and the arg-max, without the confidence "
            f"threshold. It is evaluated on the whole val split under the recipe's protocol. "
            f"It uses no label and no training, so every column holds the same number: it is "
            f"the reference point MaskCLIP is for SemiVL.")


def _metric_table(part: pd.DataFrame, dataset: str, metric: str, published: pd.DataFrame | None,
                  sources: dict[str, int],
                  zero_shot: dict | None = None,
                  released: list[dict] | None = None) -> tuple[list[str], bool]:
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
        lines.append(f"| ↳ published {''.join(marks)} | " + " | ".join(
            f"{r.miou:.1f}{differs_mark(r)}" if r is not None else "–" for r in shown) + " |")
        lines.append("| ↳ Δ to published | " + " | ".join(
            format_delta(m - r.miou) if r is not None else "–"
            for m, r in zip(means, shown, strict=True)) + " |")
        lines += evaluated
    return lines, marked


def _source_mark(row, sources: dict[str, int]) -> str:
    key = f"{row.source}; {row.backbone}; {row.protocol}"
    own = getattr(row, "from_the_authors_own_repo", None)
    if isinstance(own, str) and own:
        key += "; from the authors' own repository" if own == "yes" else "; quoted by others"
    sources.setdefault(key, len(sources) + 1)
    return f"[{sources[key]}]"


def uses_definitions(part: pd.DataFrame, method: str) -> bool:
    """Whether a method's runs read class definitions (the runs' ``class_definitions``)."""
    if "class_definitions" not in part:
        return method != "semivl_no_definitions"
    values = part.loc[part["method"] == method, "class_definitions"]
    return bool(values.isin(["upstream", "project"]).any())


def render_tables(frame: pd.DataFrame, title: str = "Results",
                  published: pd.DataFrame | None = None,
                  releases: dict[str, str] | None = None, grid_note: str | None = None,
                  zero_shot: dict[str, dict] | None = None,
                  released: dict[str, list[dict]] | None = None) -> str:
    """Markdown with one section per dataset (see the module docstring). ``zero_shot`` maps a
    dataset to its zero-shot dense CLIP metrics (``semivl evaluate --zero-shot``),
    ``released`` to its released checkpoints' metrics (:mod:`semivl.report.released`)."""
    released = released or {}
    # these use this module's labels and formats
    from semivl.report.ablation import ablation_table, component_table
    from semivl.report.cost import cost_table, overall_cost_table
    from semivl.report.findings import paper_findings
    from semivl.report.modes_table import modes_section

    zero_shot = zero_shot or {}
    lines = [f"# {title}", "",
             "mIoU (%) on the validation split, mean ± sample std over seeds (number of seeds "
             "in brackets). Columns are the labelled splits, headed by their number of "
             "labelled images.", ""]
    lines += smoke_note(frame)
    sources: dict[str, int] = {}
    datasets = dataset_order(frame["dataset"])
    for dataset in datasets:
        part = frame[frame["dataset"] == dataset]
        lines += [f"## {dataset}{' (smoke run)' if smoke_note(part) else ''}", ""]
        unfinished = unfinished_note(part)
        if unfinished:
            lines += [f"{unfinished} The runs are listed under \"Runs without results\".", ""]
            continue
        marked = False
        for metric, label in METRICS.items():
            table, used = _metric_table(part, str(dataset), metric, published, sources,
                                        zero_shot.get(str(dataset)),
                                        released.get(str(dataset)))
            marked |= used
            lines += [f"### {label}", "", *table, ""]
        lines += differences_note(published, str(dataset),
                                  main_methods(list(part["method"].unique())), METHOD_LABELS)
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
    return [f"**Smoke run: {runs} of {len(frame)} runs trained {share} of their recipes' "
            "iterations** (`schedule_fraction` in the grid). They show that the pipeline runs "
            "on this cluster, end to end; their mIoU is not a result and is not comparable "
            "with the published numbers.", ""]


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
    missing = missing.assign(_dataset=missing["dataset"].map(datasets),
                             _method=missing["method"].map(methods)).sort_values(
        ["_dataset", "num_labeled", "split", "_method", "seed"], kind="stable")
    for row in missing.itertuples():
        reason = getattr(row, "reason", "")
        reason = reason if isinstance(reason, str) else ""
        key = (row.dataset, row.split, row.method, row.status, reason)
        groups.setdefault(key, []).append(str(row.seed))
    for (dataset, split, method, status, reason), seeds in groups.items():
        seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"
        lines.append(f"- {dataset} {split} {METHOD_LABELS.get(method, method)} {seeds_text}: "
                     f"{status}{f' ({reason})' if reason else ''}")
    return lines + ["", "Rerun the workflow to retry them; each failed run's log is in "
                    "`<results>/logs/train/`.", ""]


def _counted(values: pd.Series) -> str:
    counts = values.dropna().astype(str).value_counts().sort_index()
    return ", ".join(f"`{v}` ({n} run{'s' if n > 1 else ''})" for v, n in counts.items())


def provenance_notes(frame: pd.DataFrame, releases: dict[str, str] | None = None,
                     grid_note: str | None = None) -> list[str]:
    """Footnotes: which code, configs and data produced the numbers."""
    commits = _counted(frame["code_commit"]) if "code_commit" in frame else ""
    code = (f"Code: commit {commits}." if commits else
            "Code: commit not recorded (runs trained outside a git checkout).")
    lines = ["## Provenance", "",
             f"- {code} Each run's `provenance.json` holds the commit, package versions, "
             "hardware, wall time and GPU-hours; its `config.yaml` holds the resolved recipe."]
    if grid_note:
        lines.append(f"- Grid: {grid_note}.")
    lines.append("- Configs: `config/recipes/<method>/<dataset>.yaml` and "
                 "`config/datasets/<dataset>.yaml` of that commit.")
    lines.append("- Reproducibility: every random choice is seeded from the run's seed, so the "
                 "same commit, machine and thread count give identical numbers. Another CPU may "
                 "not: oneDNN/MKL pick kernels by CPU, and their rounding differences grow "
                 "through training (the toy demo's cell means moved by several mIoU between "
                 "two machines; README). On GPUs the runs "
                 "are not bit-reproducible: the trainer sets `cudnn.benchmark` (as upstream) "
                 "and not `torch.use_deterministic_algorithms`.")
    if "recipe_sha" in frame:
        for (dataset, method), part in frame.groupby(["dataset", "method"], sort=True):
            shas = _counted(part["recipe_sha"])
            if shas:
                flag = " **(runs from different recipe versions)**" if (
                    part["recipe_sha"].dropna().nunique() > 1) else ""
                lines.append(f"  - recipe {method}/{dataset}: sha256 {shas}{flag}")
    for dataset in dataset_order(frame["dataset"]):
        release = (releases or {}).get(dataset)
        shas = _counted(frame.loc[frame["dataset"] == dataset, "data_sha"]) if (
            "data_sha" in frame) else ""
        text = f"- Data {dataset}: {release or 'release not stated in its config'}"
        lines.append(text + (f"; `prepared.json` sha256 {shas}." if shas else "."))
    return lines + [""]
