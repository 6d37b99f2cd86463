"""The files a run writes: ``config.yaml``, ``log.csv``, and at its end ``train_summary.json``,
``model.pt`` (and ``model_student.pt``)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import yaml

from semivl.atomic import atomic_write
from semivl.engine import distributed as D
from semivl.engine.checkpoint import serialize, write_json_atomic, write_text_atomic
from semivl.engine.final_eval import final_eval_record
from semivl.engine.run_layout import Plan
from semivl.engine.run_spec import RunSpec
from semivl.models.text import definitions_used


def write_config_dump(spec: RunSpec, plan: Plan, info: D.DistInfo, precision: dict) -> None:
    """``config.yaml``: the recipe, the run's files and how its global batch was formed."""
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


def open_log(path: Path, fields: list[str], last_iter: int) -> tuple:
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


def write_final_outputs(
    spec: RunSpec, summary: dict, reported, student, last_eval: dict, processes: int
) -> None:
    """End a finished run: ``train_summary.json`` (with the final evaluation's record and the
    hash of the weights it evaluated, when the last validation was at the last iteration),
    ``student``'s weights as ``model_student.pt`` when the method reports another model,
    ``reported``'s as ``model.pt`` (the declared output, written last), and ``last.pt``
    removed: the run is complete and its resume state spent (a rerun after a recipe change,
    ``dvc exp run -S`` or a Snakemake params change, then starts afresh instead of being
    refused as "written by a different recipe")."""
    recipe, out, iteration = spec.recipe, Path(spec.out_dir), summary["final_iter"]
    weights = serialize(reported.state_dict())
    student_weights = serialize(student.state_dict()) if student is not None else b""
    if last_eval.get("iter") == iteration:
        definitions = definitions_used(recipe, spec.config_dir)
        summary["final_eval"] = {
            **final_eval_record(
                last_eval["result"], iteration, processes, recipe, spec.val_split, definitions
            ),
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
        if student is not None:
            summary["final_eval_student"] = {
                **final_eval_record(
                    last_eval["student"], iteration, processes, recipe, spec.val_split, definitions
                ),
                "weights_sha256": hashlib.sha256(student_weights).hexdigest(),
            }
    write_json_atomic(summary, out / "train_summary.json")
    if student is not None:
        atomic_write(out / "model_student.pt", lambda tmp: Path(tmp).write_bytes(student_weights))
    atomic_write(out / "model.pt", lambda tmp: Path(tmp).write_bytes(weights))
    (out / "last.pt").unlink(missing_ok=True)
