"""Parts rendered from the configuration: published targets, grid costs, dataset facts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"

# The methods of the published-targets table, in its column order (config/methods.yaml labels).
_TARGET_METHODS = ["supervised", "unimatch", "semivl", "supervised_v2", "unimatch_v2"]
_DATASET_ORDER = ["voc", "coco", "ade20k", "cityscapes"]
_DATASET_NAMES = {
    "voc": "Pascal VOC",
    "coco": "COCO",
    "ade20k": "ADE20K",
    "cityscapes": "Cityscapes",
}


def _labels() -> dict[str, str]:
    methods = yaml.safe_load((CONFIG / "methods.yaml").read_text())["methods"]
    return {name: entry["label"] for name, entry in methods.items()}


def published_targets() -> str:
    """config/published_results.csv as one table (rows: dataset and split; columns: methods),
    with each method's sources below it; a mark flags numbers quoted from another repository."""
    rows = list(csv.DictReader((CONFIG / "published_results.csv").open()))
    cells: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["split"]), {})[row["method"]] = row
    labels = _labels()
    methods = [m for m in _TARGET_METHODS if any(m in c for c in cells.values())]
    lines = [
        "| dataset | split (labels) | " + " | ".join(labels[m] for m in methods) + " |",
        "|---|---|" + "---:|" * len(methods),
    ]
    order = sorted(
        cells,
        key=lambda k: (
            _DATASET_ORDER.index(k[0]),
            int(next(iter(cells[k].values()))["labeled_images"]),
        ),
    )
    for dataset, split in order:
        cell = cells[(dataset, split)]
        labelled = next(iter(cell.values()))["labeled_images"]
        values = []
        for m in methods:
            row = cell.get(m)
            mark = "" if row is None or row["from_the_authors_own_repo"] == "yes" else "*"
            values.append("–" if row is None else f"{row['miou']}{mark}")
        shown = split if split == labelled else f"{split} ({int(labelled):,})"
        lines.append(f"| {_DATASET_NAMES[dataset]} | {shown} | " + " | ".join(values) + " |")
    lines += ["", "Where each number comes from (the CSV names the source of every cell):", ""]
    for m in methods:
        groups: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            if r["method"] != m:
                continue
            source = r["source"].split(" training-logs/")[0]
            if "training-logs/" in r["source"]:
                source += " training logs (the best val mIoU each log prints)"
            source = source.replace(" (labeled-only baseline)", "").replace(" table", "")
            source = re.sub(r" \(quoting [^)]*\)", "", source)
            own = "" if r["from_the_authors_own_repo"] == "yes" else "*"
            names = groups.setdefault((source, own), [])
            if _DATASET_NAMES[r["dataset"]] not in names:
                names.append(_DATASET_NAMES[r["dataset"]])
        parts = [f"{source}{own} ({', '.join(names)})" for (source, own), names in groups.items()]
        protocol = sorted({r["protocol"] for r in rows if r["method"] == m})
        lines.append(f"- {labels[m]} ({', '.join(protocol)}): {'; '.join(parts)}.")
    lines += [
        "",
        "\\* quoted from a README other than the method's authors' own repository.",
    ]
    return "\n".join(lines)


def _grid_files() -> list[tuple[str, str]]:
    files = [("config/config.yaml", "")]
    for path in sorted((CONFIG / "grids").glob("*.yaml")):
        grid = yaml.safe_load(path.read_text())
        datasets = grid.get("grid", {}).get("datasets") or []
        if "toy" in datasets or "mytoy" in datasets:
            continue  # CPU grids on the toy: no GPU-hours to plan
        files.append((f"config/grids/{path.name}", ""))
    files.append(("config/smoke.yaml", "smoke"))
    return files


def _plan(grid_file: str) -> dict:
    from semivl.bench.plan import plan_grid, plan_summary
    from semivl.grid import load_grid

    rows = plan_grid(load_grid(REPO / grid_file), None, CONFIG)
    return {"rows": rows, **plan_summary(rows)}


def _longest(plan: dict) -> str:
    labels = _labels()
    top = plan["longest"]
    ties = [
        r
        for r in plan["rows"]
        if (r["hours_per_run"], r["gpus"]) == (top["hours_per_run"], top["gpus"])
    ]
    who = sorted({f"{r['dataset']} {labels.get(r['method'], r['method'])}" for r in ties})
    hours = top["hours_per_run"]
    shown = f"{hours:.0f} h" if hours >= 1 else f"{hours:.1f} h"
    names = f" ({', '.join(who)})" if len(who) <= 2 else ""
    return f"{shown} on {top['gpus']} GPUs{names}"


def grid_costs() -> str:
    """GPU-hours each GPU grid asks the cluster for (`semivl plan` without a measurement)."""
    lines = [
        "| grid | runs | GPU-hours | of which guessed | longest job |",
        "|---|---:|---:|---:|---|",
    ]
    for grid_file, kind in _grid_files():
        plan = _plan(grid_file)
        name = f"`{grid_file}`"
        if kind == "smoke":
            fraction = yaml.safe_load((REPO / grid_file).read_text())["schedule_fraction"]
            name += f" ({fraction:.1%} of each schedule)"
        lines.append(
            f"| {name} | {plan['runs']} | {plan['gpu_hours']:,.0f} | "
            f"{plan['guessed_gpu_hours']:,.0f} | {_longest(plan)} |"
        )
    return "\n".join(lines)


def grid_cost_line(grid_file: str) -> str:
    plan = _plan(grid_file)
    return f"{plan['runs']} runs, {plan['gpu_hours']:,.0f} GPU-hours"


def benchmark_cost() -> str:
    """One sentence: what the full grid and its cheaper presets ask for."""
    return (
        f"The full grid (`config/config.yaml`) is {grid_cost_line('config/config.yaml')}, "
        f"the VOC grid (`config/grids/voc.yaml`) {grid_cost_line('config/grids/voc.yaml')} and "
        f"the smoke grid (`config/smoke.yaml`) {grid_cost_line('config/smoke.yaml')}: the hours "
        "the recipes ask the cluster for, upper bounds until a GPU measures them."
    )


def _size(num: int | None) -> str:
    return "size not published" if not num else f"{num / 1e9:.2f} GB"


def datasets_table() -> str:
    """The four datasets' archives and counts, from config/datasets/<dataset>.yaml."""
    lines = [
        "| dataset | archives (size; checksum) | train / val pairs | labelled splits |",
        "|---|---|---|---|",
    ]
    for name in ("pascal", "coco", "ade20k", "cityscapes"):
        cfg = yaml.safe_load((CONFIG / "datasets" / f"{name}.yaml").read_text())
        archives = []
        for key, entry in cfg.get("archives", {}).items():
            if entry.get("md5"):
                check = "md5 published"
            elif entry.get("cityscapes_package"):
                check = "md5 from the site at download"
            else:
                check = "sha256 pinned on first download"
            optional = ", only for `masks_from: instances`" if key == "instances" else ""
            archives.append(f"`{entry['file']}` ({_size(entry.get('size'))}; {check}{optional})")
        counts = cfg.get("expected_counts", {})
        splits = ", ".join(str(s) for s in cfg.get("splits", {}))
        lines.append(
            f"| {name} | {'<br>'.join(archives)} | {counts.get('train', 0):,} / "
            f"{counts.get('val', 0):,} | {splits} |"
        )
    return "\n".join(lines)


def recipe_resources() -> str:
    """What each recipe of the full grid asks SLURM for (its ``resources:``), per dataset."""
    from semivl.grid import load_grid
    from semivl.recipes import load_recipe

    labels = _labels()
    grid = load_grid(CONFIG / "config.yaml")
    lines = [
        "| dataset | method | GPUs | CPUs per GPU | host memory | hours asked | hours from |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for method, dataset in sorted(grid.recipes(), key=lambda md: (md[1], md[0])):
        res = load_recipe(method, dataset, CONFIG).resources
        lines.append(
            f"| {dataset} | {labels.get(method, method)} | {res.gpus} | {res.cpus_per_gpu} | "
            f"{res.mem_mb / 1000:.0f} GB | {res.hours:g} | {res.hours_source or 'a guess'} |"
        )
    return "\n".join(lines)


def _network(recipe) -> str:
    model = recipe.model
    args = model.args or {}
    if model.name == "semivl":
        return f"SemiVL on CLIP `{args.get('clip')}`, fine-tunes `{args.get('finetune')}`"
    if model.name == "unimatch_v2":
        return f"DINOv2-{str(args.get('size', '?'))[0].upper()} + DPT (`{model.pretrained}`)"
    if model.name == "vit_deeplabv3plus":
        init = args.get("init") or model.pretrained or args.get("clip") or "?"
        return f"ViT + DeepLabV3+ (`{init}`), fine-tunes `{args.get('finetune', 'full')}`"
    if model.name == "deeplabv3plus":
        return f"DeepLabV3+ {args.get('backbone', '?')} (`{model.pretrained}`)"
    return f"`{model.name}`"


def methods_table() -> str:
    """Every method of config/methods.yaml: its group, training step, Pascal VOC network and
    the datasets it has a recipe for (config/recipes/<method>/)."""
    from semivl.recipes import load_recipe

    methods = yaml.safe_load((CONFIG / "methods.yaml").read_text())["methods"]
    lines = [
        "| method | table label | group | step | network (Pascal VOC recipe) | recipes |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in methods.items():
        datasets = sorted(p.stem for p in (CONFIG / "recipes" / name).glob("*.yaml"))
        real = [d for d in datasets if d != "toy"]
        shown = "pascal" if "pascal" in real else real[0]
        recipe = load_recipe(name, shown, CONFIG)
        step = recipe.train.method
        network = _network(recipe) + ("" if shown == "pascal" else f" ({shown})")
        lines.append(
            f"| `{name}` | {entry['label']} | {entry['group']} | `{step}` | {network} | "
            f"{', '.join(datasets)} |"
        )
    return "\n".join(lines)


def one_cell_cost() -> str:
    """What the README's first VOC cell asks for (`semivl plan`, no measurement)."""
    plan = _plan("config/grids/voc_one_cell.yaml")
    top = plan["longest"]
    basis = "a guess" if top["guess"] else top["source"]
    return (
        f"`semivl plan` prices the cell at {plan['gpu_hours']:,.0f} GPU-hours: "
        f"{top['hours_per_run']:.0f} h on {top['gpus']} GPUs, the hours its recipe asks for "
        f"({basis} until a GPU measures it)."
    )
