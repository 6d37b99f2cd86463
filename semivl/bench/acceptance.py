"""The GPU acceptance check (``benchmarks/gpu_check.sh``): what the first GPU must show before
a cluster trains anything, in a few minutes and without network.

For every method's real recipe on Pascal VOC, and the main methods at the largest crops of
Cityscapes, COCO and ADE20K: a few training steps at the recipe's crop and per-GPU batch on
synthetic data (random weights, random images: what costs time and memory is the same), in
the default precision (upstream's TF32), with TF32 everywhere and under bf16 autocast, each
with its step time and peak memory against 40 and 80 GB cards; then a short evaluation at the
dataset's real image size under the recipe's protocol. Rows are ordered by what matters most
and written as they finish (``rows.jsonl`` and ``acceptance.json`` in the output folder), so a
timeout keeps what was measured; a row that fails (out of memory) is recorded and the rest go
on. On a CPU it runs a reduced version (toy recipes, one step) that shows it starts.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from semivl.atomic import write_text_atomic
from semivl.bench.evaluation import bench_evaluation
from semivl.bench.hardware import device_info
from semivl.bench.run import bench_methods, guarded
from semivl.bench.train_step import bench_step, with_speed
from semivl.config import CONFIG_DIR
from semivl.engine.cuda import driver_version
from semivl.methods.catalog import in_group
from semivl.recipes import load_recipe, recipe_path

PRECISIONS = {"default": {}, "tf32": {"tf32": "all"}, "bf16": {"amp": "bf16"}}
CARDS_GB = (40, 80)


@dataclass(frozen=True)
class Check:
    """One row: a recipe in one precision, and whether its evaluation is timed too."""

    method: str
    dataset: str
    precision: str = "default"
    evaluate: bool = False


def plan_checks(reduced: bool) -> list[Check]:
    """The rows, most important first: VOC's main methods (config/methods.yaml) in the three
    precisions (with an evaluation), every registered method's own recipe on the other
    datasets, then VOC's ablation recipes."""
    if reduced:
        return [
            Check(m, "toy", p, evaluate=p == "default")
            for m in bench_methods("toy", CONFIG_DIR)
            for p in ("default", "bf16")
        ]
    main = [m for m in in_group("main") if recipe_path(m, "pascal").is_file()]
    checks = [Check(m, "pascal", p, evaluate=p == "default") for m in main for p in PRECISIONS]
    for dataset in ("cityscapes", "coco", "ade20k"):
        checks += [
            Check(m, dataset, p, evaluate=p == "default")
            for m in bench_methods(dataset, CONFIG_DIR)
            for p in ("default", "bf16")
        ]
    checks += [
        Check(m, "pascal")
        for m in in_group("ablation", "component")
        if recipe_path(m, "pascal").is_file()
    ]
    return checks


def environment(device: torch.device) -> dict:
    """Driver, CUDA, cuDNN and torch versions, the device, and nvidia-smi's view."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": driver_version(),
        "cuda_available": torch.cuda.is_available(),
        "device": device_info(device),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as err:
        info["nvidia_smi"] = f"not available ({err})"
    return info


def run_check(
    check: Check, device: torch.device, config_dir: Path, iters: int, warmup: int
) -> dict:
    """Train steps of one row (and its evaluation): times, memory, and the cards it fits."""
    recipe = with_speed(
        load_recipe(check.method, check.dataset, config_dir), **PRECISIONS[check.precision]
    )
    row = {
        **asdict(check),
        "crop": recipe.augment.crop_size,
        "batch_per_gpu": recipe.train.batch_size,
    }
    step = guarded(
        f"{check.method}/{check.dataset} {check.precision}",
        lambda: bench_step(
            recipe, device, iters=iters, warmup=warmup, config_dir=config_dir, count_flops=False
        ),
        print,
    )
    if "error" in step:
        return {**row, "error": step["error"]}
    memory_gb = step["peak_memory_mb"] / 1024 if step["peak_memory_mb"] else None
    row.update(
        s_per_iter=step["s_per_iter"],
        warmup_s=step["warmup_s"],
        peak_memory_gb=memory_gb,
        memory_kind=step["memory_kind"],
        precision_settings=step["precision"],
        losses=step["losses"],
        fits=(
            {f"{gb}GB": memory_gb < gb for gb in CARDS_GB}
            if memory_gb and device.type == "cuda"
            else None
        ),
    )
    if check.evaluate:
        row["evaluation"] = guarded(
            f"evaluation {check.method}/{check.dataset}",
            lambda: bench_evaluation(
                recipe,
                device,
                images=2 if device.type == "cuda" else 1,
                size=(60, 80) if check.dataset == "toy" else None,
                config_dir=config_dir,
            ),
            print,
        )
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def run_acceptance(
    out_dir: Path,
    device: torch.device,
    config_dir: Path = Path("config"),
    reduced: bool | None = None,
    budget_s: float | None = None,
) -> dict:
    """Run every row of :func:`plan_checks` (reduced on a CPU) into ``out_dir``; rows that
    the time budget ``budget_s`` leaves no room for are listed as skipped."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reduced = device.type != "cuda" if reduced is None else reduced
    started = time.monotonic()
    result = {"reduced": reduced, "environment": environment(device), "rows": [], "skipped": []}
    write_text_atomic(json.dumps(result["environment"], indent=2) + "\n", out_dir / "env.json")
    iters, warmup = (1, 0) if reduced else (5, 2)
    rows_file = out_dir / "rows.jsonl"
    rows_file.write_text("")
    for check in plan_checks(reduced):
        if budget_s is not None and time.monotonic() - started > budget_s:
            result["skipped"].append(asdict(check))
            continue
        print(f"gpu check: {check.method}/{check.dataset} {check.precision}", flush=True)
        row = run_check(check, device, config_dir, iters, warmup)
        result["rows"].append(row)
        with rows_file.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        result["seconds"] = time.monotonic() - started
        write_text_atomic(json.dumps(result, indent=2) + "\n", out_dir / "acceptance.json")
    result["seconds"] = time.monotonic() - started
    write_text_atomic(json.dumps(result, indent=2) + "\n", out_dir / "acceptance.json")
    return result


def summarise(result: dict) -> str:
    """A markdown table of the rows (for docs/performance.md)."""
    env = result["environment"]
    lines = [
        f"{env['device']['name']}, driver {env['driver']}, torch {env['torch']} (CUDA "
        f"{env['torch_cuda']}, cuDNN {env['cudnn']}); {len(result['rows'])} rows in "
        f"{result.get('seconds', 0):.0f} s"
        + (f", {len(result['skipped'])} skipped for time" if result["skipped"] else "")
        + ".",
        "",
        "| recipe | precision | crop | batch/GPU | s/iter | peak memory (GB) | "
        "fits 40 GB | fits 80 GB | evaluation (images/s at stored size) |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in result["rows"]:
        head = (
            f"| {r['method']}/{r['dataset']} | {r['precision']} | {r['crop']} | "
            f"{r['batch_per_gpu']} |"
        )
        if "error" in r:
            lines.append(f"{head} failed: {r['error']} | | | | |")
            continue
        fits = r["fits"] or {}
        ev = r.get("evaluation") or {}
        evaluation = (
            ""
            if not ev
            else f"failed: {ev['error']}"
            if "error" in ev
            else f"{ev['images_per_s']:.2f} at {ev['stored_size'][1]}x"
            f"{ev['stored_size'][0]} ({ev['mode']})"
        )
        memory = "–" if r["peak_memory_gb"] is None else f"{r['peak_memory_gb']:.1f}"
        lines.append(
            f"{head} {r['s_per_iter']:.3f} | {memory} | "
            f"{'yes' if fits.get('40GB') else 'no'} | "
            f"{'yes' if fits.get('80GB') else 'no'} | {evaluation} |"
        )
    return "\n".join(lines)
