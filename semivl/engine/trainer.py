"""Supervised training loop: resumable, seeded, logged.

One run writes into its run folder:

* ``config.yaml``: the recipe and run arguments (byte-stable);
* ``log.csv``: one row per logged iteration (loss, lr, seconds; not tracked by DVC);
* ``last.pt``: the resume state, written atomically every ``checkpoint_every_iters``, at the
  end of every epoch and when stopped early. It is not a declared workflow output, so a failed
  job never deletes it; the next start resumes from it;
* ``best.pt``: weights with the best validation mIoU seen during training;
* ``model.pt``: the final weights (the declared output, written last);
* ``train_summary.json``: validation history, best and final mIoU (byte-stable).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from semivl.config import Recipe
from semivl.data.dataset import SegmentationDataset, collate_val, seed_worker
from semivl.data.sampling import SeededSampler
from semivl.engine.checkpoint import (
    load_checkpoint,
    save_atomic,
    write_json_atomic,
    write_text_atomic,
)
from semivl.engine.evaluate import evaluate
from semivl.engine.optim import build_optimizer, set_poly_lr
from semivl.models import build_model

LOG_FIELDS = ["iter", "epoch", "lr", "loss", "seconds"]


class TrainingStopped(RuntimeError):
    """Training stopped early on request; ``last.pt`` holds the state to resume from."""


@dataclass(frozen=True)
class RunSpec:
    """Where one training run reads its data and writes its outputs."""

    recipe: Recipe
    data_root: Path
    labeled_split: Path
    val_split: Path
    out_dir: Path
    seed: int

    def fingerprint(self) -> str:
        """Hash of everything that determines the run, to refuse resuming a different one."""
        blob = json.dumps({"recipe": self.recipe.to_dict(), "seed": self.seed,
                           "labeled": self.labeled_split.name}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _make_loaders(spec: RunSpec) -> tuple[SegmentationDataset, DataLoader, SeededSampler]:
    recipe = spec.recipe
    train_set = SegmentationDataset(spec.data_root, spec.labeled_split, recipe.dataset, "train",
                                    recipe.augment)
    val_set = SegmentationDataset(spec.data_root, spec.val_split, recipe.dataset, "val",
                                  recipe.augment, resize_short=recipe.eval.resize_short_side)
    if len(train_set) < recipe.train.batch_size:
        raise ValueError(
            f"{spec.labeled_split}: {len(train_set)} labelled images are fewer than one batch "
            f"(train.batch_size={recipe.train.batch_size}); lower the batch size"
        )
    val_loader = DataLoader(val_set, batch_size=1, shuffle=False, collate_fn=collate_val,
                            num_workers=recipe.train.num_workers, worker_init_fn=seed_worker)
    sampler = SeededSampler(len(train_set), seed=spec.seed, stream=0, shuffle=True)
    return train_set, val_loader, sampler


def _write_config_dump(spec: RunSpec) -> None:
    dump = {
        "recipe": spec.recipe.to_dict(),
        "run": {
            "seed": spec.seed,
            "labeled_split": str(spec.labeled_split),
            "val_split": str(spec.val_split),
            "data_root": str(spec.data_root),
        },
    }
    write_text_atomic(yaml.safe_dump(dump, sort_keys=True), spec.out_dir / "config.yaml")


def _trim_log(path: Path, last_iter: int) -> None:
    """Drop log rows past the resumed iteration (they will be written again)."""
    if not path.exists():
        return
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["iter"]) <= last_iter]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def train(spec: RunSpec, device: str = "auto", stop_after_steps: int | None = None,
          progress: bool = True, log_every: int = 10) -> dict:
    """Train the supervised baseline described by ``spec``; resume from ``last.pt`` if present.

    Args:
        spec: recipe, data and output locations.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        stop_after_steps: stop (saving ``last.pt``) after this many optimiser steps in this
            call, raising :class:`TrainingStopped`; the next call resumes.
        progress: show tqdm bars.
        log_every: write a ``log.csv`` row every this many iterations.

    Returns:
        The training summary (also written to ``train_summary.json``).
    """
    recipe, out = spec.recipe, Path(spec.out_dir)
    dev = resolve_device(device)
    train_set, val_loader, sampler = _make_loaders(spec)  # fails before anything is written
    out.mkdir(parents=True, exist_ok=True)
    cfg = recipe.train
    iters_per_epoch = len(train_set) // cfg.batch_size
    epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cfg.iters / iters_per_epoch)
    total_iters = epochs * iters_per_epoch

    torch.manual_seed(spec.seed)
    model = build_model(recipe.model, recipe.dataset.num_classes).to(dev)
    optimizer = build_optimizer(model, recipe.optim)
    criterion = nn.CrossEntropyLoss(ignore_index=recipe.dataset.ignore_index)
    state = {"iteration": 0, "history": [], "best_miou": None, "best_iter": None}
    last_path = out / "last.pt"
    if last_path.exists():
        ckpt = load_checkpoint(last_path)
        if ckpt.get("fingerprint") != spec.fingerprint():
            raise RuntimeError(
                f"{last_path} was written by a different recipe, seed or split; move it away "
                f"or use another output folder (it is left untouched)"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"])
        state = {k: ckpt[k] for k in state}
        _trim_log(out / "log.csv", state["iteration"])
    _write_config_dump(spec)

    def save_last() -> None:
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "torch_rng": torch.get_rng_state(), "fingerprint": spec.fingerprint(),
                     **state}, last_path)

    def run_eval(iteration: int) -> None:
        result = evaluate(model, val_loader, recipe.dataset, recipe.eval, dev, progress)
        state["history"].append({"iter": iteration, "miou": result.miou})
        if state["best_miou"] is None or result.miou > state["best_miou"]:
            state["best_miou"], state["best_iter"] = result.miou, iteration
            save_atomic(model.state_dict(), out / "best.pt")

    log_new = not (out / "log.csv").exists()
    log_handle = (out / "log.csv").open("a", newline="")
    log = csv.DictWriter(log_handle, fieldnames=LOG_FIELDS)
    if log_new:
        log.writeheader()
    start_iter = state["iteration"]
    steps_done = 0
    model.train()
    bar = tqdm(total=total_iters, initial=start_iter, desc=f"train {recipe.method}",
               unit="it", disable=not progress)
    tic = time.perf_counter()
    try:
        for epoch in range(start_iter // iters_per_epoch, epochs):
            sampler.set_epoch(epoch)
            sampler.set_start((state["iteration"] - epoch * iters_per_epoch) * cfg.batch_size)
            loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                                num_workers=cfg.num_workers, drop_last=True,
                                worker_init_fn=seed_worker, generator=torch.Generator())
            for image, mask in loader:
                it = state["iteration"]
                image, mask = image.to(dev), mask.to(dev)
                loss = criterion(model(image), mask)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                lr = set_poly_lr(optimizer, recipe.optim, it, total_iters)
                state["iteration"] = it + 1
                steps_done += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.2e}")
                if (it + 1) % log_every == 0 or it + 1 == total_iters:
                    log.writerow({"iter": it + 1, "epoch": epoch, "lr": lr,
                                  "loss": round(loss.item(), 6),
                                  "seconds": round(time.perf_counter() - tic, 3)})
                    log_handle.flush()
                if cfg.eval_every_iters and (it + 1) % cfg.eval_every_iters == 0 \
                        and it + 1 != total_iters:
                    run_eval(it + 1)
                if (it + 1) % cfg.checkpoint_every_iters == 0:
                    save_last()
                if stop_after_steps is not None and steps_done >= stop_after_steps \
                        and it + 1 != total_iters:
                    save_last()
                    raise TrainingStopped(
                        f"stopped after {steps_done} steps at iteration {it + 1}/{total_iters}; "
                        f"rerun the same command to resume from {last_path}"
                    )
            end = state["iteration"]
            scheduled = epoch + 1 == epochs or (
                cfg.eval_every_epochs and (epoch + 1) % cfg.eval_every_epochs == 0)
            if scheduled and (not state["history"] or state["history"][-1]["iter"] != end):
                run_eval(end)
            save_last()
    finally:
        bar.close()
        log_handle.close()

    summary = {
        "method": recipe.method,
        "dataset": recipe.dataset.name,
        "seed": spec.seed,
        "num_labeled": len(train_set),
        "total_iters": total_iters,
        "epochs": epochs,
        "final_iter": state["iteration"],
        "final_miou": state["history"][-1]["miou"],
        "best_miou": state["best_miou"],
        "best_iter": state["best_iter"],
        "history": state["history"],
    }
    write_json_atomic(summary, out / "train_summary.json")
    save_atomic(model.state_dict(), out / "model.pt")
    return summary
