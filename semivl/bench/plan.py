"""``semivl plan``: GPU-hours of every cell of a grid, before anything is submitted.

Iterations per run come from the recipes and the datasets' sizes (the trainer's own schedule
function); seconds per iteration and evaluation throughput from a ``semivl bench`` JSON measured
on a GPU. Cells whose recipe was not measured fall back to the hours the recipe requests from
the cluster (``resources.hours``), marked as such.
"""

from __future__ import annotations

import math
from pathlib import Path

from semivl.bench.layout import layout_warnings, process_layout
from semivl.config import Recipe
from semivl.engine.schedule import labeled_stream_length, schedule, shortened_iters
from semivl.grid import Grid
from semivl.launch import attempts_needed
from semivl.methods import get_method
from semivl.recipes import load_recipe


def _measured(bench: dict | None, key: str, method: str, dataset: str) -> dict | None:
    if not bench or (bench.get("device") or {}).get("type") != "cuda":
        return None
    for row in bench.get(key, []):
        if "error" in row:  # e.g. out of memory on the bench's GPU
            continue
        recipe = row.get("recipe", f"{row.get('method')}/{row.get('dataset')}")
        if recipe == f"{method}/{dataset}" and _faithful(row.get("speed") or {}):
            return row
    return None


def _faithful(speed: dict) -> bool:
    """Whether a measurement ran with the default speed options (what the recipes train
    with): no autocast, upstream's TF32, every other option off."""
    return (
        speed.get("amp", "none") == "none"
        and speed.get("tf32", "upstream") == "upstream"
        and not any(value for key, value in speed.items() if key not in ("amp", "tf32"))
    )


def run_length(recipe: Recipe, split: str, gpus: int) -> dict:
    """Iterations, micro-steps per iteration and evaluations of one run on ``gpus`` GPUs."""
    data, cfg = recipe.dataset, recipe.train
    if split not in data.splits or "train" not in data.expected_counts:
        raise ValueError(
            f"config/datasets/{data.name}.yaml: needs splits.{split} and "
            "expected_counts.train to plan a run"
        )
    labeled = data.splits[split]
    length = (
        data.expected_counts["train"] - labeled
        if get_method(cfg.method).reads_unlabeled
        else labeled_stream_length(cfg, labeled)
    )
    accumulation, per_epoch, epochs = schedule(cfg, length, gpus, f"{data.name}/{split}")
    full_iters = per_epoch * epochs
    iters = shortened_iters(cfg, full_iters)  # fewer in a smoke grid
    epochs = math.ceil(iters / per_epoch)
    if cfg.eval_every_iters:
        evals = math.ceil(iters / cfg.eval_every_iters)
    else:
        evals = math.ceil(epochs / (cfg.eval_every_epochs or epochs))
    return {
        "iters": iters,
        "accumulation": accumulation,
        "evaluations": evals + 1,
        "full_iters": full_iters,
    }


def plan_grid(grid: Grid, bench: dict | None = None, config_dir: Path | None = None) -> list[dict]:
    """One row per block and (dataset, split, method): runs (the block's seeds), GPUs,
    iterations, hours per run, GPU-hours of the cell, and where the hours came from."""
    config_dir = Path(config_dir or grid.config_dir)
    cap = grid.cluster.max_gpus_per_job
    device = (bench or {}).get("device", {}).get("name", "?")
    rows = []
    for block in grid.blocks:
        seeds = len(block.seeds)
        for cell in block.splits:
            for method in block.methods:
                recipe = load_recipe(method, cell.dataset, config_dir)
                if grid.schedule_fraction < 1:
                    recipe = recipe.with_schedule_fraction(grid.schedule_fraction)
                gpus = min(recipe.resources.gpus, cap) if cap else recipe.resources.gpus
                length = run_length(recipe, cell.split, gpus)
                hours, source, guess = _hours(
                    recipe, method, cell.dataset, length, gpus, bench, device
                )
                if length["iters"] < length["full_iters"] and not source.startswith("measured"):
                    hours, source = _smoke_hours(recipe, length, hours, source)
                rows.append(
                    {
                        "block": block.name,
                        "dataset": cell.dataset,
                        "split": cell.split,
                        "method": method,
                        "runs": seeds,
                        "gpus": gpus,
                        **length,
                        "hours_per_run": hours,
                        "attempts": attempts_needed(hours, grid.cluster.max_hours),
                        "gpu_hours": hours * gpus * seeds,
                        "source": source,
                        "guess": guess,
                        **process_layout(recipe, gpus, grid.cluster.max_gpus_per_node),
                    }
                )
    return rows


def _hours(
    recipe: Recipe,
    method: str,
    dataset: str,
    length: dict,
    gpus: int,
    bench: dict | None,
    device: str,
) -> tuple[float, str, bool]:
    """Hours of one run, where they come from, and whether they are a guess."""
    step = _measured(bench, "train", method, dataset)
    if step:
        evaluation = _measured(bench, "evaluation", method, dataset)
        val = recipe.dataset.expected_counts.get("val", 0)
        eval_s = (val / evaluation["images_per_s"] / gpus) if evaluation else 0.0
        seconds = (
            length["iters"] * length["accumulation"] * step["s_per_iter"]
            + length["evaluations"] * eval_s
        )
        source = f"measured on {device}"
        if not evaluation:
            source += " (evaluation not measured, not counted)"
        return seconds / 3600, source, False
    basis = recipe.resources.hours_source
    if basis:
        return recipe.resources.hours, f"the recipe's requested hours ({basis})", False
    return recipe.resources.hours, "the recipe's requested hours: a guess", True


# Start-up (CLIP and data loading, torchrun, cuDNN autotuning) and the final evaluation of a
# smoke run, added to the recipe's hours scaled down: a guess, not measured (by the FLOP count
# a GPU evaluates VOC's 1,449 val images in about a minute).
SMOKE_OVERHEAD_H = 0.05


def _smoke_hours(recipe: Recipe, length: dict, hours: float, source: str) -> tuple[float, str]:
    """Hours of a shortened run (train.schedule_fraction < 1) from its recipe's requested
    hours: the share of the iterations it trains, plus :data:`SMOKE_OVERHEAD_H`."""
    share = length["iters"] / length["full_iters"]
    return (
        hours * share + SMOKE_OVERHEAD_H,
        f"{source}, x {share:.2%} of the iterations + {SMOKE_OVERHEAD_H * 60:.0f} min "
        f"start-up (guess)",
    )


def plan_summary(rows: list[dict]) -> dict:
    """Runs and GPU-hours per dataset and overall, the longest job, and the guessed share."""
    datasets: dict[str, dict] = {}
    for r in rows:
        entry = datasets.setdefault(r["dataset"], {"runs": 0, "gpu_hours": 0.0})
        entry["runs"] += r["runs"]
        entry["gpu_hours"] += r["gpu_hours"]
    longest = max(rows, key=lambda r: (r["hours_per_run"], r["gpus"]))
    return {
        "datasets": datasets,
        "runs": sum(r["runs"] for r in rows),
        "gpu_hours": sum(r["gpu_hours"] for r in rows),
        "guessed_gpu_hours": sum(r["gpu_hours"] for r in rows if r["guess"]),
        "measured_gpu_hours": sum(
            r["gpu_hours"] for r in rows if r["source"].startswith("measured")
        ),
        "longest": longest,
    }


def render_plan(rows: list[dict]) -> str:
    """A markdown table of the plan, totals per dataset and overall, and the longest job."""
    lines = [
        "| block | dataset | split | method | runs | GPUs | iterations | h/run | "
        "attempts | GPU-hours | source |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['block']} | {r['dataset']} | {r['split']} | {r['method']} | "
            f"{r['runs']} | {r['gpus']} | {r['iters']} | {r['hours_per_run']:.1f} | "
            f"{r['attempts']} | {r['gpu_hours']:.0f} | {r['source']} |"
        )
    summary = plan_summary(rows)
    lines += ["", "| dataset | runs | GPU-hours |", "|---|---:|---:|"]
    for name, entry in summary["datasets"].items():
        lines.append(f"| {name} | {entry['runs']} | {entry['gpu_hours']:.0f} |")
    lines.append(f"| **total** | **{summary['runs']}** | **{summary['gpu_hours']:.0f}** |")
    longest = summary["longest"]
    lines += [
        "",
        f"Total: {summary['gpu_hours']:.0f} GPU-hours over {summary['runs']} runs "
        f"({summary['measured_gpu_hours']:.0f} from measured iteration times, "
        f"{summary['guessed_gpu_hours']:.0f} from guessed hours).",
        f"Longest job: {longest['dataset']} {longest['split']} {longest['method']}, "
        f"{longest['hours_per_run']:.1f} h on {longest['gpus']} GPU(s) "
        f"({longest['source']}).",
        f"On {longest['gpus']} GPU(s), one job at a time: about "
        f"{summary['gpu_hours'] / longest['gpus']:.1f} h (with every job at once: the "
        f"longest job's).",
    ]
    most = max(r["attempts"] for r in rows)
    if most > 1:
        several = sum(r["runs"] for r in rows if r["attempts"] > 1)
        lines.append(
            f"{several} runs are longer than cluster.max_hours: each continues over "
            f"up to {most} attempts (one job each, resuming from last.pt); the "
            f"workflow gives the train rule {most - 1} + 2 retries (2 for "
            f"failures, as slurm/config.yaml gives every rule)."
        )
    if summary["guessed_gpu_hours"]:
        lines.append(
            "Guessed hours are what the recipes ask the cluster for "
            "(resources.hours without resources.hours_source): measure them with "
            "`semivl bench` on a GPU and pass --bench to replace them."
        )
    lines += layout_warnings(rows)
    return "\n".join(lines)
