"""The speed options of ``train.speed``, each measured against the fp32 baseline on the same
initial weights and batch: time per iteration, peak memory, and how far the losses drift."""

from __future__ import annotations

from pathlib import Path

import torch

from semivl.bench.train_step import bench_step, with_speed
from semivl.config import Recipe

OPTIONS = {
    "TF32 matmuls and convolutions": {"tf32": "all"},
    "bf16 autocast": {"amp": "bf16"},
    "channels-last": {"channels_last": True},
    "fused optimiser": {"fused_optimizer": True},
    "torch.compile": {"compile": True},
}


def bench_options(
    recipe: Recipe,
    device: torch.device,
    iters: int = 3,
    warmup: int = 1,
    include_compile: bool = False,
    config_dir: Path = Path("config"),
) -> dict:
    """One row per option: speed-up over fp32, memory, and the largest relative difference of
    the per-iteration losses from the baseline's (same seed, weights and batch)."""

    def run(recipe_: Recipe) -> dict:
        return bench_step(
            recipe_, device, iters=iters, warmup=warmup, config_dir=config_dir, count_flops=False
        )

    base = run(recipe)
    rows = {"default (upstream TF32)": _row(base, base)}
    for name, options in OPTIONS.items():
        if name == "torch.compile" and not include_compile:
            rows[name] = {"skipped": "compiles for minutes; run `semivl bench` without --quick"}
            continue
        try:
            rows[name] = _row(run(with_speed(recipe, **options)), base)
        except (RuntimeError, ValueError, TypeError) as err:  # e.g. not supported here
            rows[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    return {"method": recipe.method, "dataset": recipe.dataset.name, "options": rows}


def _row(result: dict, base: dict) -> dict:
    drift = max(
        abs(a - b) / max(abs(b), 1e-12)
        for a, b in zip(result["losses"], base["losses"], strict=True)
    )
    return {
        "s_per_iter": result["s_per_iter"],
        "speedup": base["s_per_iter"] / result["s_per_iter"],
        "peak_memory_mb": result["peak_memory_mb"],
        "max_relative_loss_difference": drift,
    }
