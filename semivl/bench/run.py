"""``semivl bench``: every measurement in one JSON document."""

from __future__ import annotations

import datetime
import math
import tempfile
import time
from pathlib import Path

import torch

from semivl.bench.evaluation import bench_evaluation
from semivl.bench.hardware import device_info, matmul_rate
from semivl.bench.loader import VOC_SIZE, bench_unlabeled_pipeline, write_images
from semivl.bench.options import bench_options
from semivl.bench.train_step import bench_step
from semivl.bench.workflow import bench_workflow
from semivl.config import load_recipe

METHODS = ("supervised", "unimatch", "semivl")
# The tiny CPU configuration: the demo's toy recipes. The paper's: Pascal VOC.
TINY, PAPER = "toy", "pascal"
TOY_SIZE = (100, 120)  # (height, width) of a typical toy image


def _with_rate(row: dict, peak: float) -> dict:
    achieved = row.get("achieved_tflops")
    row["fraction_of_matmul_peak"] = achieved / peak if achieved and peak else None
    return row


def run_bench(quick: bool, device: torch.device, repo: Path, config_dir: Path,
              paper_datasets: tuple[str, ...] = (PAPER,), workflow: bool = True,
              progress=print) -> dict:
    """Measure everything; ``quick`` keeps to the tiny configuration (under a minute on a
    2-core CPU). Without ``quick`` every method's recipe for ``paper_datasets`` is measured at
    its crop and per-GPU batch too (meant for a GPU)."""
    started = time.perf_counter()
    gpu = device.type == "cuda"
    result: dict = {"date": datetime.date.today().isoformat(), "quick": quick,
                    "device": device_info(device)}
    progress("matmul peak")
    # The practical peak: the best fp32 rate over a few sizes (small products under-use a GPU,
    # and a CPU's rate varies with the size too).
    sizes = (4096, 8192) if gpu else (1024, 2048)
    result["matmul"] = [matmul_rate(device, torch.float32, n) for n in sizes]
    if gpu:
        result["matmul"].append(matmul_rate(device, torch.bfloat16, 8192))
    peak = max(m["tflops"] for m in result["matmul"] if m["dtype"] == "float32")
    result["matmul_peak_tflops"] = peak

    configs = [TINY] if quick else [TINY, *paper_datasets]
    # Without a GPU the paper configuration gets one timed step (minutes each on a CPU).
    iters, warmup = (3, 1) if quick else ((20, 5) if gpu else (1, 0))
    result["train"] = []
    for dataset in configs:
        if dataset != TINY and "speed_options" not in result:
            _speed_options(result, quick, device, config_dir, progress)
        for method in METHODS:
            progress(f"train step: {method} ({dataset} recipe)")
            recipe = load_recipe(method, dataset, config_dir)
            row = bench_step(recipe, device, iters=iters, warmup=warmup, config_dir=config_dir)
            row["config"] = "tiny" if dataset == TINY else "paper"
            result["train"].append(_with_rate(row, peak))

    progress("unlabelled data pipeline")
    paper_semivl = load_recipe("semivl", PAPER, config_dir)
    loaders = {"tiny": (load_recipe("unimatch", TINY, config_dir), TOY_SIZE[::-1]),
               "paper": (paper_semivl, VOC_SIZE)}
    result["loaders"] = []
    for config, (recipe, size) in loaders.items():
        with tempfile.TemporaryDirectory(prefix="semivl-bench-") as tmp:
            split = write_images(Path(tmp), 8 if quick else 32, size)
            row = bench_unlabeled_pipeline(recipe, Path(tmp), split, items=8 if quick else 32)
        result["loaders"].append(row | {"config": config, "recipe": f"{recipe.method}/"
                                        f"{recipe.dataset.name}"})
    result["consumption"] = _consumption(result["train"], result["loaders"])

    progress("evaluation")
    result["evaluation"] = [bench_evaluation(load_recipe("unimatch", TINY, config_dir), device,
                                             images=4 if quick else 16, size=TOY_SIZE,
                                             config_dir=config_dir)
                            | {"recipe": f"unimatch/{TINY}"}]
    for dataset in [] if quick else paper_datasets:
        for method in METHODS:
            progress(f"evaluation: {method} ({dataset} recipe)")
            result["evaluation"].append(
                bench_evaluation(load_recipe(method, dataset, config_dir), device,
                                 images=4 if gpu else 1, config_dir=config_dir)
                | {"recipe": f"{method}/{dataset}"})

    if "speed_options" not in result:
        _speed_options(result, quick, device, config_dir, progress)
    if workflow:
        progress("workflow overhead")
        result["workflow"] = bench_workflow(repo)
    result["gpu"] = ("measured" if gpu else
                     "not measured: no CUDA device here; run `semivl bench` on a GPU machine")
    result["seconds"] = time.perf_counter() - started
    return result


def _speed_options(result: dict, quick: bool, device: torch.device, config_dir: Path,
                   progress) -> None:
    # Measured before the paper-sized steps: on a CPU the peak resident set of the process
    # only grows, so small measurements must come first.
    progress("speed options")
    result["speed_options"] = [bench_options(load_recipe("unimatch", TINY, config_dir), device,
                                             include_compile=not quick, config_dir=config_dir)]


def _consumption(train_rows: list[dict], loaders: list[dict]) -> list[dict]:
    """For each measured semi-supervised step: images per second it consumes (labelled,
    unlabelled and CutMix partner streams) and the loader workers it needs at the per-worker
    rate measured for the same configuration (tiny: toy images; paper: VOC-sized JPEGs at the
    paper's crop)."""
    rate = {row["config"]: row["images_per_s_per_worker"] for row in loaders}
    rows = []
    for row in train_rows:
        if row["method"] == "supervised":
            continue
        need = row["images_per_iter"] / row["s_per_iter"]
        rows.append({"method": row["method"], "config": row["config"], "images_per_s": need,
                     "loader_over_consumption": rate[row["config"]] / need,
                     "workers_needed": math.ceil(need / rate[row["config"]])})
    return rows
