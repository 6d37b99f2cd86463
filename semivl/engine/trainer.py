"""Training loop for the labelled-only baseline and UniMatch: resumable, seeded, distributed.

One run writes into its run folder (rank 0 only):

* ``config.yaml``: the recipe and run arguments, including how the global batch was formed;
* ``log.csv``: one row per logged iteration (losses, lr, seconds; not tracked by DVC);
* ``last.pt``: the resume state (model, optimiser, iteration, RNG states, validation history),
  written atomically every ``checkpoint_every_iters`` iterations, every
  ``checkpoint_every_minutes`` and when stopped. It is not a
  declared workflow output, so a failed job never deletes it; the next start resumes from it;
  it is removed once the run has finished and written ``model.pt``;
* ``best.pt``: weights with the best validation mIoU seen during training;
* ``model.pt``: the final weights (the declared output, written last);
* ``train_summary.json``: validation history, best and final mIoU (byte-stable).

UniMatch V2 (``unimatch_v2``) also keeps its EMA teacher: in ``last.pt`` (``ema``), and as the
run's reported model: ``model.pt`` and ``best.pt`` hold the EMA weights, ``model_student.pt``
the student's. Both are validated each time; the history and summary carry the EMA's mIoU
under the usual keys and the student's under ``*_student`` keys.

Stopping: SIGTERM (SLURM preemption, ``scancel``, the time limit) to any or all processes of
the run, loader workers included, or the job's end time coming near, makes every training
process save ``last.pt`` and raise :class:`TrainingStopped` after the current iteration
(``semivl.engine.preemption`` says what SLURM does and how each case is met). Progress goes
to TensorBoard event files in ``tensorboard/`` (``tensorboard --logdir results/``) and, when
standard error is not a terminal (a cluster log), as one plain line every few minutes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from semivl.atomic import atomic_write
from semivl.config import Recipe, TrainConfig
from semivl.data.dataset import SegmentationDataset
from semivl.data.splits import read_split_file, require_disjoint_from_val
from semivl.engine import distributed as D
from semivl.engine.checkpoint import (
    read_resume_state,
    save_atomic,
    serialize,
    write_json_atomic,
    write_text_atomic,
)
from semivl.engine.evaluate import evaluate, val_dataset
from semivl.engine.final_eval import final_eval_record
from semivl.engine.optim import set_poly_lr
from semivl.engine.precision import configure_backends
from semivl.engine.preemption import WORKER_DEATH_GRACE_S, StopFlag, is_worker_death
from semivl.engine.progress import TrainingProgress
from semivl.engine.step import (
    SEMI_SUPERVISED,
    WITH_UNLABELED,
    build_training_parts,
    compile_model,
    to_device,
    training_loss,
    unwrap,
)
from semivl.engine.streams import Streams
from semivl.engine.unimatch import LossHook
from semivl.engine.unimatch_v2 import V2_LOG_FIELDS, make_ema, update_ema
from semivl.errors import TrainingStopped
from semivl.models import load_backbone_weights
from semivl.models.text import definitions_used

BASE_LOG_FIELDS = ["iter", "epoch", "lr", "loss"]
_UNIMATCH_FIELDS = ["loss_x", "loss_s", "loss_fp", "mask_ratio"]
METHOD_LOG_FIELDS = {"supervised": [], "unimatch": _UNIMATCH_FIELDS,
                     "semivl": _UNIMATCH_FIELDS + ["loss_guid", "guid_weight", "guid_ratio"],
                     "unimatch_v2": V2_LOG_FIELDS}
STREAM_LABELED, STREAM_UNLABELED, STREAM_MIX = 0, 1, 2


@dataclass(frozen=True)
class RunSpec:
    """Where one training run reads its data and writes its outputs."""

    recipe: Recipe
    data_root: Path
    labeled_split: Path
    val_split: Path
    out_dir: Path
    seed: int
    unlabeled_split: Path | None = None
    weights_dir: Path = Path("resources/weights")
    config_dir: Path = Path("config")
    clip_dir: Path = Path("resources/clip")
    text_dir: Path = Path("resources/text")

    def model_context(self):
        """What model builders read beyond the recipe (CLIP weights, text embeddings)."""
        from semivl.models.semivl_model import ModelContext

        return ModelContext(dataset=self.recipe.dataset, crop_size=self.recipe.augment.crop_size,
                            config_dir=Path(self.config_dir), clip_dir=Path(self.clip_dir),
                            text_dir=Path(self.text_dir))

    def fingerprint(self) -> str:
        """Hash of everything that determines the run, to refuse resuming a different one.
        The loader worker count is not part of it: samples do not depend on it, so a site may
        resume a run with another (``semivl train --num-workers``)."""
        return self._fingerprint(with_workers=False)

    def fingerprints(self) -> set[str]:
        """The fingerprints a ``last.pt`` of this run may carry: today's, and the one written
        before the worker count left the hash."""
        return {self._fingerprint(with_workers=False), self._fingerprint(with_workers=True)}

    def _fingerprint(self, with_workers: bool) -> str:
        recipe = self.recipe.to_dict()
        recipe.pop("resources")  # what the job asked the cluster for does not change the run
        if recipe["train"]["schedule_fraction"] == 1.0:
            # The default: runs written before the key existed keep their fingerprint.
            del recipe["train"]["schedule_fraction"]
        if not with_workers:
            del recipe["train"]["num_workers"]
        blob = json.dumps({"recipe": recipe, "seed": self.seed,
                           "labeled": self.labeled_split.name}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Plan:
    """How the data streams and the global batch are laid out."""

    datasets: list[SegmentationDataset]
    streams: list[int]
    stream_length: int
    accumulation: int
    iters_per_epoch: int
    epochs: int
    # Iterations the run trains: epochs x iters_per_epoch, or fewer for a shortened schedule
    # (train.schedule_fraction; the last epoch then stops early).
    total_iters: int = 0
    # Images in the labelled split file (before train.labeled_upsample_to repeats them).
    num_labeled: int = 0

    def __post_init__(self) -> None:
        if not self.total_iters:
            self.total_iters = self.epochs * self.iters_per_epoch


def _make_plan(spec: RunSpec, info: D.DistInfo) -> Plan:
    recipe, cfg = spec.recipe, spec.recipe.train
    labeled = SegmentationDataset(spec.data_root, spec.labeled_split, recipe.dataset, "train",
                                  recipe.augment)
    val_pairs = read_split_file(spec.val_split)  # hand-edited lists must not train on val
    require_disjoint_from_val(labeled.pairs, val_pairs, str(spec.labeled_split))
    num_labeled = len(labeled)
    labeled.pairs = upsample_labeled(cfg, labeled.pairs)
    if cfg.method in WITH_UNLABELED:
        if spec.unlabeled_split is None:
            raise ValueError(f"method {cfg.method} needs an unlabelled split file")
        unlabeled = SegmentationDataset(spec.data_root, spec.unlabeled_split, recipe.dataset,
                                        "train_u", recipe.augment)
        require_disjoint_from_val(unlabeled.pairs, val_pairs, str(spec.unlabeled_split))
        datasets = [labeled, unlabeled, unlabeled]
        streams = [STREAM_LABELED, STREAM_UNLABELED, STREAM_MIX]
        if cfg.method not in SEMI_SUPERVISED:  # V2's CutMix partner is the batch reversed
            datasets, streams = datasets[:2], streams[:2]
        length = len(unlabeled)  # an epoch is one pass over the unlabelled set
    else:
        datasets, streams, length = [labeled], [STREAM_LABELED], len(labeled)
    accumulation, iters_per_epoch, epochs = schedule(cfg, length, info.world,
                                                     str(spec.labeled_split))
    total = shortened_iters(cfg, epochs * iters_per_epoch)
    return Plan(datasets, streams, length, accumulation, iters_per_epoch,
                math.ceil(total / iters_per_epoch), total, num_labeled)


def labeled_stream_length(cfg: TrainConfig, num_labeled: int) -> int:
    """Images in the labelled stream of a run with ``num_labeled`` listed: ``num_labeled``, or
    ``train.labeled_upsample_to`` for supervised training when the list is shorter (UniMatch
    V2's ``supervised.py``). ``semivl plan`` should pass this to :func:`schedule`."""
    target = cfg.labeled_upsample_to
    if cfg.method == "supervised" and target is not None and num_labeled < target:
        return target
    return num_labeled


def upsample_labeled(cfg: TrainConfig, pairs: list) -> list:
    """The labelled list repeated ``ceil(n / len)`` times and cut to ``n`` =
    :func:`labeled_stream_length` (unchanged when no upsampling applies)."""
    n = labeled_stream_length(cfg, len(pairs))
    if n == len(pairs) or not pairs:
        return pairs
    return (pairs * math.ceil(n / len(pairs)))[:n]


def shortened_iters(cfg: TrainConfig, full_iters: int) -> int:
    """Iterations of a run whose recipe schedule has ``full_iters``: all of them, or
    ``train.schedule_fraction`` of them (rounded up, at least one) for a smoke run."""
    if cfg.schedule_fraction >= 1:
        return full_iters
    return max(1, math.ceil(cfg.schedule_fraction * full_iters))


def schedule(cfg: TrainConfig, stream_length: int, processes: int, where: str = "the split"
             ) -> tuple[int, int, int]:
    """(gradient accumulation, iterations per epoch, epochs) of a run whose epoch is one pass
    over ``stream_length`` images (the unlabelled set, or the labelled one for supervised
    training) on ``processes`` processes. ``semivl plan`` uses it without any data."""
    per_step = cfg.batch_size * processes
    global_batch = cfg.global_batch_size or per_step
    if global_batch % per_step:
        raise ValueError(
            f"train.global_batch_size={global_batch} is not a multiple of batch_size x "
            f"processes = {cfg.batch_size} x {processes}; change the number of processes"
        )
    accumulation = global_batch // per_step
    iters_per_epoch = math.ceil(stream_length / processes) // (cfg.batch_size * accumulation)
    if iters_per_epoch < 1:
        raise ValueError(
            f"{where}: {stream_length} images are fewer than one global batch "
            f"({global_batch}); lower train.batch_size or train.global_batch_size"
        )
    epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cfg.iters / iters_per_epoch)
    return accumulation, iters_per_epoch, epochs


def _write_config_dump(spec: RunSpec, plan: Plan, info: D.DistInfo, precision: dict) -> None:
    cfg = spec.recipe.train
    dump = {
        "recipe": spec.recipe.to_dict(),
        "run": {
            "seed": spec.seed,
            "labeled_split": str(spec.labeled_split),
            "unlabeled_split": str(spec.unlabeled_split) if spec.unlabeled_split else None,
            "val_split": str(spec.val_split),
            "data_root": str(spec.data_root),
        },
        "batch": {
            "processes": info.world,
            "images_per_process": cfg.batch_size,
            "accumulation_steps": plan.accumulation,
            "global_batch_size": cfg.batch_size * info.world * plan.accumulation,
            "iters_per_epoch": plan.iters_per_epoch,
            "epochs": plan.epochs,
            "total_iters": plan.total_iters,
        },
        "precision": precision,
    }
    write_text_atomic(yaml.safe_dump(dump, sort_keys=True), spec.out_dir / "config.yaml")


def _open_log(path: Path, fields: list[str], last_iter: int) -> tuple:
    """Open ``log.csv`` for appending, dropping rows past ``last_iter`` (a resumed run)."""
    rows = []
    if path.exists():
        with path.open() as handle:
            rows = [r for r in csv.DictReader(handle) if int(r["iter"]) <= last_iter]
    handle = path.open("w", newline="")
    writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    handle.flush()
    return handle, writer


def train(spec: RunSpec, device: str = "auto", stop_after_steps: int | None = None,
          progress: bool = True, log_every: int = 10, hooks: list[LossHook] | None = None,
          time_margin_s: float = 300.0) -> dict:
    """Train the method of ``spec.recipe``; resume from ``last.pt`` if present.

    Args:
        spec: recipe, data and output locations.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        stop_after_steps: stop (saving ``last.pt``) after this many optimiser steps in this
            call, raising :class:`TrainingStopped`; the next call resumes.
        progress: show tqdm bars.
        log_every: write a ``log.csv`` row every this many iterations.
        hooks: extra loss terms for the UniMatch step (SemiVL's guidance).
        time_margin_s: stop this long before ``SLURM_JOB_END_TIME``.

    Returns:
        The training summary (also written to ``train_summary.json``).
    """
    dev = D.device_for(device)
    info = D.init_distributed(dev)
    try:
        return _train(spec, dev, info, stop_after_steps, progress, log_every, hooks,
                      time_margin_s)
    finally:
        D.shutdown(info)


def _train(spec: RunSpec, dev: torch.device, info: D.DistInfo, stop_after_steps: int | None,
           progress: bool, log_every: int, hooks: list[LossHook] | None,
           time_margin_s: float) -> dict:
    recipe, cfg, out = spec.recipe, spec.recipe.train, Path(spec.out_dir)
    plan = _make_plan(spec, info)  # fails on bad data before anything is written
    val_set = val_dataset(recipe, spec.data_root, spec.val_split)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    D.barrier(info)

    precision = configure_backends(cfg.method, cfg.speed.tf32, dev)
    torch.manual_seed(spec.seed)
    context = spec.model_context()
    model, optimizer, recipe_hooks, criterion = build_training_parts(recipe, context, dev)
    step_hooks = list(hooks or []) + recipe_hooks
    torch.manual_seed(spec.seed * 1000 + info.rank)  # per-process stream for dropout/FP
    state = {"iteration": 0, "history": [], "best_miou": None, "best_iter": None}
    v2 = cfg.method == "unimatch_v2"
    if v2:
        state.update(best_miou_student=None, best_iter_student=None)
    ema: nn.Module | None = None
    last_path = out / "last.pt"
    if last_path.exists():
        ckpt = read_resume_state(last_path)
        if ckpt.get("fingerprint") not in spec.fingerprints():
            raise RuntimeError(
                f"{last_path} was written by a different recipe, seed or split; move it away "
                f"or use another output folder (it is left untouched)"
            )
        if len(ckpt["torch_rng"]) != info.world:
            raise RuntimeError(f"{last_path} was written by {len(ckpt['torch_rng'])} "
                               f"process(es); resume it with the same number ({info.world})")
        model.load_state_dict(ckpt["model"])
        if v2:
            ema = make_ema(model)
            ema.load_state_dict(ckpt["ema"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"][info.rank])
        if dev.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"][info.rank], dev)
        state = {k: ckpt[k] for k in state}
        if info.is_main:
            print(f"resuming from {last_path} at iteration {state['iteration']}", flush=True)
    elif recipe.model.pretrained:
        report = load_backbone_weights(model, recipe.model.pretrained, spec.weights_dir,
                                       spec.config_dir)
        if info.is_main:
            write_json_atomic({"weights": recipe.model.pretrained, **report.to_dict()},
                              out / "weights_report.json")
        model.to(dev)
    if v2 and ema is None:
        ema = make_ema(model)  # the teacher starts from the (pretrained) student
    model = compile_model(model, cfg)
    if info.enabled:
        if dev.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # Upstream V2 searches for unused parameters (its DINOv2 has a mask token that gets no
        # gradient); the timm DINOv2 here has none, so every parameter gets one and the
        # search (a pass over the autograd graph every step) is skipped.
        model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda"
                                        else None, broadcast_buffers=False)
    if info.is_main:
        _write_config_dump(spec, plan, info, precision)

    def save_last() -> None:
        # Dropout in feature perturbation draws from the device's generator: keep both.
        rng_states = D.gather_objects(torch.get_rng_state(), info)
        cuda_states = (D.gather_objects(torch.cuda.get_rng_state(dev), info)
                       if dev.type == "cuda" else None)
        if info.is_main:
            extra = {"ema": ema.state_dict()} if ema is not None else {}
            save_atomic({"model": unwrap(model).state_dict(), **extra,
                         "optimizer": optimizer.state_dict(), "torch_rng": rng_states,
                         "cuda_rng": cuda_states, "fingerprint": spec.fingerprint(), **state},
                        last_path)
        D.barrier(info)

    last_eval: dict = {}  # the latest validation of this process: reused for the final one

    def run_eval(iteration: int) -> None:
        # V2 reports its EMA teacher: it is the model of the usual keys and of best.pt.
        reported = ema if ema is not None else unwrap(model)
        result = evaluate(reported, val_set, recipe, dev, info, progress, cfg.num_workers)
        last_eval.update(iter=iteration, result=result)
        entry = {"iter": iteration, "miou": result.miou}
        if ema is not None:
            student = evaluate(unwrap(model), val_set, recipe, dev, info, progress,
                               cfg.num_workers)
            last_eval.update(student=student)
            entry["miou_student"] = student.miou
            if state["best_miou_student"] is None or student.miou > state["best_miou_student"]:
                state["best_miou_student"], state["best_iter_student"] = student.miou, iteration
        state["history"].append(entry)
        if state["best_miou"] is None or result.miou > state["best_miou"]:
            state["best_miou"], state["best_iter"] = result.miou, iteration
            if info.is_main:
                save_atomic(reported.state_dict(), out / "best.pt")

    fields = BASE_LOG_FIELDS + METHOD_LOG_FIELDS[cfg.method] + ["seconds"]
    log_handle, log = (_open_log(out / "log.csv", fields, state["iteration"]) if info.is_main
                       else (None, None))
    stop = StopFlag(time_margin_s)
    if info.is_main and stop.deadline is not None:
        print(f"time guard: stops {time_margin_s:.0f} s before the SLURM job's end time "
              f"(from {stop.end_source})", flush=True)
    elif info.is_main and os.environ.get("SLURM_JOB_ID"):
        print(f"no time guard: {stop.end_source}; only SIGTERM stops this run early",
              flush=True)
    stop.install()
    total = plan.total_iters
    steps_done = 0
    model.train()
    streams = Streams(plan.datasets, plan.streams, plan.stream_length, plan.accumulation,
                      cfg.batch_size, cfg.num_workers, spec.seed, info, dev)
    watch = TrainingProgress(f"train {recipe.method}", total, state["iteration"],
                             enabled=progress and info.is_main,
                             tensorboard_dir=out / "tensorboard" if info.is_main else None)
    tic = last_save = time.perf_counter()

    def stopped(reason: str, it: int) -> TrainingStopped:
        save_last()
        return TrainingStopped(f"{reason} at iteration {it}/{total}; run the same command "
                               f"again to resume from {last_path}")

    try:
        for epoch in range(state["iteration"] // plan.iters_per_epoch, plan.epochs):
            start = state["iteration"] - epoch * plan.iters_per_epoch
            batches = streams.epoch(epoch, start)
            for _ in range(start, min(plan.iters_per_epoch,
                                      total - epoch * plan.iters_per_epoch)):
                it = state["iteration"]
                optimizer.zero_grad()
                logs: dict[str, float] = {}
                loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
                for micro in range(plan.accumulation):
                    try:
                        batch = next(batches)
                    except RuntimeError as error:
                        # A loader worker killed by the stop signal before it could ignore it
                        # (semivl.engine.preemption): the last finished iteration is saved.
                        if is_worker_death(error) and stop.wait_for_signal(WORKER_DEATH_GRACE_S):
                            raise stopped(f"{stop.reason()} (a loader worker died of it)",
                                          it) from error
                        raise
                    batch = to_device(batch, dev)
                    sync = micro == plan.accumulation - 1 or not info.enabled
                    with contextlib.nullcontext() if sync else model.no_sync():
                        loss, logs = training_loss(model, batch, criterion, cfg, dev, it, total,
                                                   step_hooks, ema=ema)
                        (loss / plan.accumulation).backward()
                    loss_sum += loss.detach().double() / plan.accumulation
                optimizer.step()
                lr = set_poly_lr(optimizer, recipe.optim, it, total)
                if ema is not None:  # once per optimiser step, identically on every rank
                    update_ema(ema, unwrap(model), it, cfg.ema_momentum)
                state["iteration"] = it + 1
                steps_done += 1
                watch.step(it + 1)
                if log is not None and ((it + 1) % log_every == 0 or it + 1 == total):
                    row = {"lr": lr, "loss": loss_sum.item(), **logs}
                    log.writerow({"iter": it + 1, "epoch": epoch,
                                  **{k: round(v, 6) if k != "lr" else v for k, v in row.items()},
                                  "seconds": round(time.perf_counter() - tic, 3)})
                    log_handle.flush()
                    watch.scalars(row, it + 1)
                if cfg.eval_every_iters and (it + 1) % cfg.eval_every_iters == 0 \
                        and it + 1 != total:
                    run_eval(it + 1)
                    watch.scalars(state["history"][-1], it + 1, prefix="val")
                minutes = (time.perf_counter() - last_save) / 60
                periodic = (it + 1) % cfg.checkpoint_every_iters == 0 or (
                    minutes >= cfg.checkpoint_every_minutes)
                reason = stop.reason()
                if reason is None and stop_after_steps is not None \
                        and steps_done >= stop_after_steps:
                    reason = f"stopped after {steps_done} steps as requested"
                # One all-reduce for both flags: every process saves and stops together.
                save_now, stop_now = D.any_processes([periodic, reason is not None], info, dev)
                if stop_now and it + 1 != total:
                    raise stopped(reason or "another process stopped", it + 1)
                if save_now:
                    save_last()
                    last_save = time.perf_counter()
            end = state["iteration"]
            scheduled = epoch + 1 == plan.epochs or (
                cfg.eval_every_epochs and (epoch + 1) % cfg.eval_every_epochs == 0)
            if scheduled and (not state["history"] or state["history"][-1]["iter"] != end):
                run_eval(end)
                watch.scalars(state["history"][-1], end, prefix="val")
    finally:
        stop.restore()
        watch.close()
        if log_handle is not None:
            log_handle.close()

    summary = {
        "method": recipe.method,
        "dataset": recipe.dataset.name,
        "seed": spec.seed,
        "num_labeled": plan.num_labeled or len(plan.datasets[0]),
        "total_iters": total,
        "epochs": plan.epochs,
        "schedule_fraction": cfg.schedule_fraction,
        "final_iter": state["iteration"],
        "final_miou": state["history"][-1]["miou"],
        "best_miou": state["best_miou"],
        "best_iter": state["best_iter"],
        "history": state["history"],
    }
    if v2:
        summary.update(final_miou_student=state["history"][-1]["miou_student"],
                       best_miou_student=state["best_miou_student"],
                       best_iter_student=state["best_iter_student"])
    if info.is_main:
        reported = ema if ema is not None else unwrap(model)
        weights = serialize(reported.state_dict())
        student_weights = serialize(unwrap(model).state_dict()) if v2 else b""
        if last_eval.get("iter") == state["iteration"]:
            summary["final_eval"] = {
                **final_eval_record(last_eval["result"], state["iteration"], info.world,
                                    recipe, spec.val_split,
                                    definitions_used(recipe, spec.config_dir)),
                "weights_sha256": hashlib.sha256(weights).hexdigest()}
            if v2:
                summary["final_eval_student"] = {
                    **final_eval_record(last_eval["student"], state["iteration"], info.world,
                                        recipe, spec.val_split,
                                        definitions_used(recipe, spec.config_dir)),
                    "weights_sha256": hashlib.sha256(student_weights).hexdigest()}
        write_json_atomic(summary, out / "train_summary.json")
        if v2:
            atomic_write(out / "model_student.pt",
                         lambda tmp: Path(tmp).write_bytes(student_weights))
        atomic_write(out / "model.pt", lambda tmp: Path(tmp).write_bytes(weights))
        # The run is complete: its resume state is spent. Without it, a rerun after a recipe
        # change (dvc exp run -S, a Snakemake params change) starts afresh instead of being
        # refused as "written by a different recipe".
        last_path.unlink(missing_ok=True)
    D.barrier(info)
    return summary

