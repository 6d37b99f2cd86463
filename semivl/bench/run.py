"""``semivl bench``: every measurement in one JSON document."""

from __future__ import annotations

import contextlib
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
from semivl.methods import get_method, method_names
from semivl.methods.catalog import load_catalog
from semivl.recipes import load_recipe


def bench_methods(dataset: str, config_dir: Path) -> list[str]:
    """The registered methods with a recipe of their own name for ``dataset``: each method's
    own recipe (not its ablation variants), the plug-ins' included, in the tables' order
    (config/methods.yaml)."""
    order = list(load_catalog())
    names = [
        m
        for m in method_names()
        if (Path(config_dir) / "recipes" / m / f"{dataset}.yaml").is_file()
    ]
    return sorted(names, key=lambda m: (order.index(m) if m in order else len(order), m))


# The tiny CPU configuration: the demo's toy recipes. The paper's: Pascal VOC.
TINY, PAPER = "toy", "pascal"
TOY_SIZE = (100, 120)  # (height, width) of a typical toy image


def peak_basis(row: dict) -> str:
    """The matmul precision a measured step's share of peak is taken against: bf16 under
    autocast, TF32 when fp32 matmuls run in TF32, else fp32. (Convolutions run in TF32 by
    default, as upstream: for convolutional models the fp32 basis overstates the share.)"""
    speed, precision = row.get("speed") or {}, row.get("precision") or {}
    if speed.get("amp") == "bf16":
        return "bfloat16"
    return "tf32" if precision.get("tf32_matmul") else "float32"


def _with_rate(row: dict, peaks: dict[str, float]) -> dict:
    achieved = row.get("achieved_tflops")
    basis = peak_basis(row)
    peak = peaks.get(basis) or peaks.get("float32")
    row["peak_basis"] = basis if basis in peaks else "float32"
    row["fraction_of_matmul_peak"] = achieved / peak if achieved and peak else None
    return row


def measure_peaks(device: torch.device) -> tuple[list[dict], dict[str, float]]:
    """Dense matmul rates (the practical peak: the best over a few sizes, since small products
    under-use a GPU): fp32 and, on a GPU, fp32 in TF32 and bf16."""
    gpu = device.type == "cuda"
    sizes = (4096, 8192) if gpu else (1024, 2048)
    with tf32_matmul(False):
        rows = [matmul_rate(device, torch.float32, n) for n in sizes]
    if gpu:
        with tf32_matmul(True):
            rows.append({**matmul_rate(device, torch.float32, 8192), "dtype": "tf32"})
        rows.append(matmul_rate(device, torch.bfloat16, 8192))
    peaks: dict[str, float] = {}
    for row in rows:
        peaks[row["dtype"]] = max(peaks.get(row["dtype"], 0.0), row["tflops"])
    return rows, peaks


@contextlib.contextmanager
def tf32_matmul(on: bool):
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = on
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def guarded(what: str, measure, progress=print) -> dict:
    """``measure()``, or a row that records its failure (out of memory, an unsupported option)
    so that one failed row does not lose the others."""
    try:
        return measure()
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as err:
        # torch.OutOfMemoryError is a RuntimeError; free what the failed attempt held.
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        message = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        progress(f"{what}: failed ({message})")
        return {"error": message}


def run_bench(
    quick: bool,
    device: torch.device,
    repo: Path,
    config_dir: Path,
    paper_datasets: tuple[str, ...] = (PAPER,),
    workflow: bool = True,
    progress=print,
    save=lambda result: None,
) -> dict:
    """Measure everything; ``quick`` keeps to the tiny configuration (under a minute on a
    2-core CPU). Without ``quick`` every method's recipe for ``paper_datasets`` is measured at
    its crop and per-GPU batch too (meant for a GPU). ``save(result)`` is called after every
    row, so that an interrupted run keeps what it measured."""
    started = time.perf_counter()
    gpu = device.type == "cuda"
    result: dict = {
        "date": datetime.date.today().isoformat(),
        "quick": quick,
        "device": device_info(device),
    }
    progress("matmul peak")
    result["matmul"], peaks = measure_peaks(device)
    result["matmul_peak_tflops"] = peaks["float32"]
    result["matmul_peaks_tflops"] = peaks
    save(result)

    configs = [TINY] if quick else [TINY, *paper_datasets]
    # Without a GPU the paper configuration gets one timed step (minutes each on a CPU).
    iters, warmup = (3, 1) if quick else ((20, 5) if gpu else (1, 0))
    result["train"] = []
    for dataset in configs:
        if dataset != TINY and "speed_options" not in result:
            _speed_options(result, quick, device, config_dir, progress)
        for method in bench_methods(dataset, config_dir):
            progress(f"train step: {method} ({dataset} recipe)")
            recipe = load_recipe(method, dataset, config_dir)
            row = guarded(
                f"{method}/{dataset}",
                lambda recipe=recipe: bench_step(
                    recipe, device, iters=iters, warmup=warmup, config_dir=config_dir
                ),
                progress,
            )
            row.update(
                method=method, dataset=dataset, config="tiny" if dataset == TINY else "paper"
            )
            result["train"].append(_with_rate(row, peaks) if "error" not in row else row)
            save(result)

    progress("unlabelled data pipeline")
    paper_semivl = load_recipe("semivl", PAPER, config_dir)
    loaders = {
        "tiny": (load_recipe("unimatch", TINY, config_dir), TOY_SIZE[::-1]),
        "paper": (paper_semivl, VOC_SIZE),
    }
    result["loaders"] = []
    for config, (recipe, size) in loaders.items():
        with tempfile.TemporaryDirectory(prefix="semivl-bench-") as tmp:
            split = write_images(Path(tmp), 8 if quick else 32, size)
            row = bench_unlabeled_pipeline(recipe, Path(tmp), split, items=8 if quick else 32)
        result["loaders"].append(
            row | {"config": config, "recipe": f"{recipe.method}/{recipe.dataset.name}"}
        )
    result["consumption"] = _consumption(result["train"], result["loaders"])
    save(result)

    progress("evaluation")
    result["evaluation"] = [
        bench_evaluation(
            load_recipe("unimatch", TINY, config_dir),
            device,
            images=4 if quick else 16,
            size=TOY_SIZE,
            config_dir=config_dir,
        )
        | {"recipe": f"unimatch/{TINY}"}
    ]
    for dataset in [] if quick else paper_datasets:
        for method in bench_methods(dataset, config_dir):
            progress(f"evaluation: {method} ({dataset} recipe)")
            recipe = load_recipe(method, dataset, config_dir)
            # At the dataset's real image size and protocol (Cityscapes: 1024 x 2048 images).
            row = guarded(
                f"evaluation {method}/{dataset}",
                lambda recipe=recipe: bench_evaluation(
                    recipe, device, images=4 if gpu else 1, config_dir=config_dir
                ),
                progress,
            )
            result["evaluation"].append(row | {"recipe": f"{method}/{dataset}"})
            save(result)

    if "speed_options" not in result:
        _speed_options(result, quick, device, config_dir, progress)
    if workflow:
        progress("workflow overhead")
        result["workflow"] = bench_workflow(repo)
    result["gpu"] = (
        "measured"
        if gpu
        else "not measured: no CUDA device here; run `semivl bench` on a GPU machine"
    )
    result["seconds"] = time.perf_counter() - started
    return result


def _speed_options(
    result: dict, quick: bool, device: torch.device, config_dir: Path, progress
) -> None:
    # Measured before the paper-sized steps: on a CPU the peak resident set of the process
    # only grows, so small measurements must come first.
    progress("speed options")
    result["speed_options"] = [
        bench_options(
            load_recipe("unimatch", TINY, config_dir),
            device,
            include_compile=not quick,
            config_dir=config_dir,
        )
    ]


def _consumption(train_rows: list[dict], loaders: list[dict]) -> list[dict]:
    """For each measured semi-supervised step: images per second it consumes (labelled,
    unlabelled and CutMix partner streams) and the loader workers it needs at the per-worker
    rate measured for the same configuration (tiny: toy images; paper: VOC-sized JPEGs at the
    paper's crop)."""
    rate = {row["config"]: row["images_per_s_per_worker"] for row in loaders}
    rows = []
    for row in train_rows:
        if "error" in row or not get_method(row["method"]).reads_unlabeled:
            continue
        need = row["images_per_iter"] / row["s_per_iter"]
        rows.append(
            {
                "method": row["method"],
                "config": row["config"],
                "images_per_s": need,
                "loader_over_consumption": rate[row["config"]] / need,
                "workers_needed": math.ceil(need / rate[row["config"]]),
            }
        )
    return rows
