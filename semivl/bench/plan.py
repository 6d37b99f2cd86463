"""``semivl plan``: GPU-hours of every cell of a grid, before anything is submitted.

Iterations per run come from the recipes and the datasets' sizes (the trainer's own schedule
function); seconds per iteration and evaluation throughput from a ``semivl bench`` JSON measured
on a GPU. Cells whose recipe was not measured fall back to the hours the recipe requests from
the cluster (``resources.hours``), marked as such.
"""

from __future__ import annotations

import math
from pathlib import Path

from semivl.config import Recipe, load_recipe
from semivl.engine.trainer import schedule
from semivl.grid import Grid


def _measured(bench: dict | None, key: str, method: str, dataset: str) -> dict | None:
    if not bench or (bench.get("device") or {}).get("type") != "cuda":
        return None
    for row in bench.get(key, []):
        recipe = row.get("recipe", f"{row.get('method')}/{row.get('dataset')}")
        if recipe == f"{method}/{dataset}" and _faithful(row.get("speed") or {}):
            return row
    return None


def _faithful(speed: dict) -> bool:
    """Whether a measurement ran with every speed option off (what the recipes train with)."""
    return speed.get("amp", "none") == "none" and not any(
        value for key, value in speed.items() if key != "amp")


def run_length(recipe: Recipe, split: str, gpus: int) -> dict:
    """Iterations, micro-steps per iteration and evaluations of one run on ``gpus`` GPUs."""
    data, cfg = recipe.dataset, recipe.train
    if split not in data.splits or "train" not in data.expected_counts:
        raise ValueError(f"config/datasets/{data.name}.yaml: needs splits.{split} and "
                         "expected_counts.train to plan a run")
    labeled = data.splits[split]
    length = labeled if cfg.method == "supervised" else data.expected_counts["train"] - labeled
    accumulation, per_epoch, epochs = schedule(cfg, length, gpus, f"{data.name}/{split}")
    iters = per_epoch * epochs
    if cfg.eval_every_iters:
        evals = math.ceil(iters / cfg.eval_every_iters)
    else:
        evals = math.ceil(epochs / (cfg.eval_every_epochs or epochs))
    return {"iters": iters, "accumulation": accumulation, "evaluations": evals + 1}


def plan_grid(grid: Grid, bench: dict | None = None, config_dir: Path | None = None
              ) -> list[dict]:
    """One row per (dataset, split, method): runs (seeds), GPUs, iterations, hours per run,
    GPU-hours of the cell, and where the time per iteration came from."""
    config_dir = Path(config_dir or grid.config_dir)
    cap = grid.cluster.get("max_gpus_per_job")
    seeds = len(grid.grid.seeds)
    device = (bench or {}).get("device", {}).get("name", "?")
    rows = []
    for cell in grid.grid.splits:
        for method in grid.grid.methods:
            recipe = load_recipe(method, cell.dataset, config_dir)
            gpus = min(recipe.resources.gpus, cap) if cap else recipe.resources.gpus
            length = run_length(recipe, cell.split, gpus)
            step = _measured(bench, "train", method, cell.dataset)
            if step:
                evaluation = _measured(bench, "evaluation", method, cell.dataset)
                val = recipe.dataset.expected_counts.get("val", 0)
                eval_s = (val / evaluation["images_per_s"] / gpus) if evaluation else 0.0
                seconds = (length["iters"] * length["accumulation"] * step["s_per_iter"]
                           + length["evaluations"] * eval_s)
                hours, source = seconds / 3600, f"measured on {device}"
                if not evaluation:
                    source += " (evaluation not measured, not counted)"
            else:
                hours = recipe.resources.hours
                source = "not measured: the recipe's requested hours (an upper bound)"
            rows.append({"dataset": cell.dataset, "split": cell.split, "method": method,
                         "runs": seeds, "gpus": gpus, **length, "hours_per_run": hours,
                         "gpu_hours": hours * gpus * seeds, "source": source})
    return rows


def render_plan(rows: list[dict]) -> str:
    """A markdown table of the plan with the total."""
    lines = ["| dataset | split | method | runs | GPUs | iterations | h/run | GPU-hours | "
             "source |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['split']} | {r['method']} | {r['runs']} | "
                     f"{r['gpus']} | {r['iters']} | {r['hours_per_run']:.1f} | "
                     f"{r['gpu_hours']:.0f} | {r['source']} |")
    total = sum(r["gpu_hours"] for r in rows)
    measured = sum(r["gpu_hours"] for r in rows if r["source"].startswith("measured"))
    lines += ["", f"Total: {total:.0f} GPU-hours over {sum(r['runs'] for r in rows)} runs "
              f"({measured:.0f} from measured iteration times)."]
    return "\n".join(lines)
