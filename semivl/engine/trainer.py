"""The training loop of every registered method (``semivl.methods``): resumable, seeded,
distributed. It knows no method by name: the method's declaration says which data streams to
load, which step computes the loss, which values to log and which state to keep.

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

A method with state (``Method.state``; UniMatch V2's EMA teacher) keeps it in ``last.pt``
(under ``ema``, the key V2 wrote first). A state that reports another model than the trained
one (V2's teacher) makes that the run's reported model: ``model.pt`` and ``best.pt`` hold its
weights, ``model_student.pt`` the trained model's. Both are validated each time; the history
and summary carry the reported model's mIoU under the usual keys and the trained model's under
``*_student`` keys.

Stopping: SIGTERM (SLURM preemption, ``scancel``, the time limit) to any or all processes of
the run, loader workers included, or the job's end time coming near, makes every training
process save ``last.pt`` and raise :class:`TrainingStopped` after the current iteration
(``semivl.engine.preemption`` says what SLURM does and how each case is met). Progress goes
to TensorBoard event files in ``tensorboard/`` (``tensorboard --logdir results/``) and, when
standard error is not a terminal (a cluster log), as one plain line every few minutes.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from semivl.engine import distributed as D
from semivl.engine.checkpoint import (
    read_resume_state,
    save_atomic,
    write_json_atomic,
)
from semivl.engine.evaluate import evaluate, val_dataset
from semivl.engine.optim import set_poly_lr
from semivl.engine.precision import configure_backends
from semivl.engine.preemption import WORKER_DEATH_GRACE_S, StopFlag, is_worker_death
from semivl.engine.progress import TrainingProgress
from semivl.engine.run_files import open_log, write_config_dump, write_final_outputs
from semivl.engine.run_layout import make_plan
from semivl.engine.run_spec import RunSpec
from semivl.engine.schedule import (  # noqa: F401 - re-exported for callers of the trainer
    labeled_stream_length,
    schedule,
    shortened_iters,
    upsample_labeled,
)
from semivl.engine.step import (
    build_method_state,
    build_training_parts,
    compile_model,
    to_device,
    training_loss,
    unwrap,
)
from semivl.engine.streams import Streams
from semivl.errors import TrainingStopped
from semivl.methods import get_method
from semivl.models import load_backbone_weights

BASE_LOG_FIELDS = ["iter", "epoch", "lr", "loss"]
# last.pt keeps the method's state under this key ("ema": written first for V2's teacher).
METHOD_STATE_KEY = "ema"
STUDENT_KEYS = ("best_miou_student", "best_iter_student")


def train(
    spec: RunSpec,
    device: str = "auto",
    stop_after_steps: int | None = None,
    progress: bool = True,
    log_every: int = 10,
    hooks: list | None = None,
    time_margin_s: float = 300.0,
) -> dict:
    """Train the method of ``spec.recipe``; resume from ``last.pt`` if present.

    Args:
        spec: recipe, data and output locations.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        stop_after_steps: stop (saving ``last.pt``) after this many optimiser steps in this
            call, raising :class:`TrainingStopped`; the next call resumes.
        progress: show tqdm bars.
        log_every: write a ``log.csv`` row every this many iterations.
        hooks: extra loss terms passed to the method's step before its own (SemiVL's
            guidance is its own: ``Method.loss_hooks``).
        time_margin_s: stop this long before ``SLURM_JOB_END_TIME``.

    Returns:
        The training summary (also written to ``train_summary.json``).
    """
    dev = D.device_for(device)
    info = D.init_distributed(dev)
    try:
        return _train(spec, dev, info, stop_after_steps, progress, log_every, hooks, time_margin_s)
    finally:
        D.shutdown(info)


def _train(
    spec: RunSpec,
    dev: torch.device,
    info: D.DistInfo,
    stop_after_steps: int | None,
    progress: bool,
    log_every: int,
    hooks: list | None,
    time_margin_s: float,
) -> dict:
    recipe, cfg, out = spec.recipe, spec.recipe.train, Path(spec.out_dir)
    plan = make_plan(spec, info)  # fails on bad data before anything is written
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
    method_state = None  # the method's state (UniMatch V2's EMA teacher), built below
    last_path = out / "last.pt"
    if last_path.exists():
        ckpt = read_resume_state(last_path)
        if ckpt.get("fingerprint") not in spec.fingerprints():
            raise RuntimeError(
                f"{last_path} was written by a different recipe, seed or split; move it away "
                f"or use another output folder (it is left untouched)"
            )
        if len(ckpt["torch_rng"]) != info.world:
            raise RuntimeError(
                f"{last_path} was written by {len(ckpt['torch_rng'])} "
                f"process(es); resume it with the same number ({info.world})"
            )
        model.load_state_dict(ckpt["model"])
        method_state = build_method_state(recipe, model)
        if method_state is not None:
            method_state.load_state_dict(ckpt[METHOD_STATE_KEY])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["torch_rng"][info.rank])
        if dev.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"][info.rank], dev)
        state = {k: ckpt[k] for k in (*state, *STUDENT_KEYS) if k in ckpt}
        if info.is_main:
            print(f"resuming from {last_path} at iteration {state['iteration']}", flush=True)
    elif recipe.model.pretrained:
        report = load_backbone_weights(
            model, recipe.model.pretrained, spec.weights_dir, spec.config_dir
        )
        if info.is_main:
            write_json_atomic(
                {"weights": recipe.model.pretrained, **report.to_dict()},
                out / "weights_report.json",
            )
        model.to(dev)
    if method_state is None:  # a teacher starts from the (pretrained) student
        method_state = build_method_state(recipe, model)
    reported_other = getattr(method_state, "reported", None)  # reported instead of the model
    if reported_other is not None:
        for key in STUDENT_KEYS:
            state.setdefault(key, None)
    model = compile_model(model, cfg)
    if info.enabled:
        if dev.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # Upstream V2 searches for unused parameters (its DINOv2 has a mask token that gets no
        # gradient); the timm DINOv2 here has none, so every parameter gets one and the
        # search (a pass over the autograd graph every step) is skipped.
        model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, broadcast_buffers=False
        )
    if info.is_main:
        write_config_dump(spec, plan, info, precision)

    def save_last() -> None:
        # Dropout in feature perturbation draws from the device's generator: keep both.
        rng_states = D.gather_objects(torch.get_rng_state(), info)
        cuda_states = (
            D.gather_objects(torch.cuda.get_rng_state(dev), info) if dev.type == "cuda" else None
        )
        if info.is_main:
            extra = {} if method_state is None else {METHOD_STATE_KEY: method_state.state_dict()}
            save_atomic(
                {
                    "model": unwrap(model).state_dict(),
                    **extra,
                    "optimizer": optimizer.state_dict(),
                    "torch_rng": rng_states,
                    "cuda_rng": cuda_states,
                    "fingerprint": spec.fingerprint(),
                    **state,
                },
                last_path,
            )
        D.barrier(info)

    last_eval: dict = {}  # the latest validation of this process: reused for the final one

    def run_eval(iteration: int) -> None:
        # A method may report another model (V2's EMA teacher): it is the model of the usual
        # keys and of best.pt, and the trained model is reported under *_student keys.
        reported = reported_other if reported_other is not None else unwrap(model)
        result = evaluate(reported, val_set, recipe, dev, info, progress, cfg.num_workers)
        last_eval.update(iter=iteration, result=result)
        entry = {"iter": iteration, "miou": result.miou}
        if reported_other is not None:
            student = evaluate(unwrap(model), val_set, recipe, dev, info, progress, cfg.num_workers)
            last_eval.update(student=student)
            entry["miou_student"] = student.miou
            if state["best_miou_student"] is None or student.miou > state["best_miou_student"]:
                state["best_miou_student"], state["best_iter_student"] = student.miou, iteration
        state["history"].append(entry)
        if state["best_miou"] is None or result.miou > state["best_miou"]:
            state["best_miou"], state["best_iter"] = result.miou, iteration
            if info.is_main:
                save_atomic(reported.state_dict(), out / "best.pt")

    fields = BASE_LOG_FIELDS + list(get_method(cfg.method).log_fields) + ["seconds"]
    log_handle, log = (
        open_log(out / "log.csv", fields, state["iteration"]) if info.is_main else (None, None)
    )
    stop = StopFlag(time_margin_s)
    if info.is_main and stop.deadline is not None:
        print(
            f"time guard: stops {time_margin_s:.0f} s before the SLURM job's end time "
            f"(from {stop.end_source})",
            flush=True,
        )
    elif info.is_main and os.environ.get("SLURM_JOB_ID"):
        print(f"no time guard: {stop.end_source}; only SIGTERM stops this run early", flush=True)
    stop.install()
    total = plan.total_iters
    steps_done = 0
    model.train()
    streams = Streams(
        plan.datasets,
        plan.streams,
        plan.stream_length,
        plan.accumulation,
        cfg.batch_size,
        cfg.num_workers,
        spec.seed,
        info,
        dev,
    )
    watch = TrainingProgress(
        f"train {recipe.method}",
        total,
        state["iteration"],
        enabled=progress and info.is_main,
        tensorboard_dir=out / "tensorboard" if info.is_main else None,
    )
    tic = last_save = time.perf_counter()

    def stopped(reason: str, it: int) -> TrainingStopped:
        save_last()
        return TrainingStopped(
            f"{reason} at iteration {it}/{total}; run the same command "
            f"again to resume from {last_path}"
        )

    try:
        for epoch in range(state["iteration"] // plan.iters_per_epoch, plan.epochs):
            start = state["iteration"] - epoch * plan.iters_per_epoch
            batches = streams.epoch(epoch, start)
            for _ in range(start, min(plan.iters_per_epoch, total - epoch * plan.iters_per_epoch)):
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
                            raise stopped(
                                f"{stop.reason()} (a loader worker died of it)", it
                            ) from error
                        raise
                    batch = to_device(batch, dev)
                    sync = micro == plan.accumulation - 1 or not info.enabled
                    with contextlib.nullcontext() if sync else model.no_sync():
                        loss, logs = training_loss(
                            model, batch, criterion, cfg, dev, it, total, step_hooks, method_state
                        )
                        (loss / plan.accumulation).backward()
                    loss_sum += loss.detach().double() / plan.accumulation
                optimizer.step()
                lr = set_poly_lr(optimizer, recipe.optim, it, total)
                if method_state is not None:  # once per optimiser step, on every rank alike
                    method_state.after_step(unwrap(model), it)
                state["iteration"] = it + 1
                steps_done += 1
                watch.step(it + 1)
                if log is not None and ((it + 1) % log_every == 0 or it + 1 == total):
                    row = {"lr": lr, "loss": loss_sum.item(), **logs}
                    log.writerow(
                        {
                            "iter": it + 1,
                            "epoch": epoch,
                            **{k: round(v, 6) if k != "lr" else v for k, v in row.items()},
                            "seconds": round(time.perf_counter() - tic, 3),
                        }
                    )
                    log_handle.flush()
                    watch.scalars(row, it + 1)
                if (
                    cfg.eval_every_iters
                    and (it + 1) % cfg.eval_every_iters == 0
                    and it + 1 != total
                ):
                    run_eval(it + 1)
                    watch.scalars(state["history"][-1], it + 1, prefix="val")
                minutes = (time.perf_counter() - last_save) / 60
                periodic = (it + 1) % cfg.checkpoint_every_iters == 0 or (
                    minutes >= cfg.checkpoint_every_minutes
                )
                reason = stop.reason()
                if (
                    reason is None
                    and stop_after_steps is not None
                    and steps_done >= stop_after_steps
                ):
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
                cfg.eval_every_epochs and (epoch + 1) % cfg.eval_every_epochs == 0
            )
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
    if reported_other is not None:
        summary.update(
            final_miou_student=state["history"][-1]["miou_student"],
            best_miou_student=state["best_miou_student"],
            best_iter_student=state["best_iter_student"],
        )
    if info.is_main:
        reported = reported_other if reported_other is not None else unwrap(model)
        student = unwrap(model) if reported_other is not None else None
        write_final_outputs(spec, summary, reported, student, last_eval, info.world)
    D.barrier(info)
    return summary
