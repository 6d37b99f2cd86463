"""Training-step throughput, peak memory and FLOPs of a recipe, on synthetic batches.

The step is the trainer's own (``semivl.engine.step``): the same model, optimiser, loss hooks
and speed options; only the data is random tensors of the recipe's crop and per-process batch,
so the number isolates the step from the loaders (measured separately).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from semivl.bench.hardware import PeakMemory, synchronize
from semivl.config import Recipe
from semivl.engine.precision import configure_backends
from semivl.engine.step import (
    build_method_state,
    build_training_parts,
    compile_model,
    training_loss,
    unwrap,
)
from semivl.methods import get_method
from semivl.models.semivl_model import ModelContext


def _boxes(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    boxes = torch.zeros(batch, size, size, dtype=torch.int64)
    for i in range(batch):
        h, w = (int(v) for v in torch.randint(size // 4, size // 2 + 1, (2,), generator=generator))
        y, x = (int(v) for v in torch.randint(0, size - max(h, w) + 1, (2,), generator=generator))
        boxes[i, y : y + h, x : x + w] = 1
    return boxes


def synthetic_batch(recipe: Recipe, seed: int = 0) -> tuple:
    """One batch as the trainer's loaders yield it, for the recipe's method: one entry per
    declared stream (``Method.streams``)."""
    g = torch.Generator().manual_seed(seed)
    batch, size = recipe.train.batch_size, recipe.augment.crop_size
    classes = recipe.dataset.num_classes

    def images() -> torch.Tensor:
        return torch.randn(batch, 3, size, size, generator=g)

    def stream(kind: str) -> tuple:
        if kind == "labeled":
            return images(), torch.randint(0, classes, (batch, size, size), generator=g)
        ignore = torch.zeros(batch, size, size, dtype=torch.int64)
        return (
            images(),
            images(),
            images(),
            ignore,
            _boxes(batch, size, g),
            _boxes(batch, size, g),
        )

    return tuple(stream(kind) for kind in get_method(recipe.train.method).streams)


def with_speed(recipe: Recipe, **options) -> Recipe:
    """``recipe`` with some ``train.speed`` options changed."""
    speed = dataclasses.replace(recipe.train.speed, **options)
    return dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, speed=speed))


def bench_step(
    recipe: Recipe,
    device: torch.device,
    iters: int = 5,
    warmup: int = 2,
    config_dir: Path = Path("config"),
    count_flops: bool = True,
    seed: int = 0,
) -> dict:
    """Seconds per training iteration (median of ``iters`` after ``warmup``), peak memory,
    FLOPs of one iteration (forward and backward, from PyTorch's FLOP counter) and the losses
    of the timed iterations (for comparing speed options)."""
    cfg = recipe.train
    precision = configure_backends(cfg.method, cfg.speed.tf32, device)  # as the trainer
    torch.manual_seed(seed)
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=Path(config_dir),
        random_init=True,
    )
    batch = synthetic_batch(recipe, seed)
    model, optimizer, hooks, criterion = build_training_parts(recipe, context, device)
    model = compile_model(model, cfg)
    model.train()
    total = max(iters + warmup, 1) * 10
    # A method's state (V2's teacher): its forward and update are part of a step.
    state = build_method_state(recipe, unwrap(model))

    def step(it: int) -> float:
        optimizer.zero_grad()
        loss, _ = training_loss(model, batch, criterion, cfg, device, it, total, hooks, state)
        loss.backward()
        optimizer.step()
        if state is not None:
            state.after_step(unwrap(model), it)
        return loss.item()

    flops = None
    if count_flops:
        with FlopCounterMode(display=False) as counter:
            step(0)
        flops = counter.get_total_flops()
    tic = time.perf_counter()
    for it in range(warmup):
        step(it)
    synchronize(device)
    warmup_s = time.perf_counter() - tic
    times, losses = [], []
    with PeakMemory(device) as memory:
        for it in range(warmup, warmup + iters):
            tic = time.perf_counter()
            losses.append(step(it))
            synchronize(device)
            times.append(time.perf_counter() - tic)
    seconds = sorted(times)[len(times) // 2]
    # Images read per iteration: one batch per stream (labelled; unlabelled; CutMix partner).
    images = cfg.batch_size * len(get_method(cfg.method).streams)
    return {
        "method": recipe.method,
        "dataset": recipe.dataset.name,
        "model": recipe.model.name,
        "crop": recipe.augment.crop_size,
        "batch_per_process": cfg.batch_size,
        "speed": dataclasses.asdict(cfg.speed),
        "precision": precision,
        "iters": iters,
        "warmup_s": warmup_s,
        "s_per_iter": seconds,
        "iters_per_s": 1 / seconds,
        "images_per_iter": images,
        "peak_memory_mb": memory.mb,
        "memory_kind": memory.kind,
        "flops_per_iter": flops,
        "achieved_tflops": flops / seconds / 1e12 if flops else None,
        "losses": losses,
    }
