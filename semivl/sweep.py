"""Tuning sweeps on a dev split: every method of a comparison gets the same budget.

A sweep file (``config/sweeps/<name>.yaml``) names a dataset with a dev part (the toy), the
label splits and seeds to train, and one grid of points shared by every method: base learning
rate (``reference_lr[method] x lr_scale``) times the multiplier of the backbone's parameters
(``optim.custom_keys.backbone.lr_mult``). Each (method, point, split, seed) run is ``semivl
train`` in a subprocess on a copy of the config folder whose recipe takes the point's values,
validated on the dev images instead of val (the run's ``val.txt`` lists dev). The selected
point of a method is the one with the best dev mIoU (final iteration) averaged over its splits
and seeds; ties go to the earlier point in the file's order. Runs are resumable: a run whose
``train_summary.json`` exists is read, not trained again.

The results table (``docs/sweeps/<name>.csv``, one row per run) is the one source of the
selected values: :func:`sweep_markdown` renders it and :func:`recipe_point` reads what a recipe
holds, so that a test can check that the recipes took the selection.
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from semivl.atomic import write_text_atomic
from semivl.errors import ConfigError
from semivl.recipes import merge_mappings
from semivl.typed_yaml import build_config, read_yaml, require

BACKBONE_KEY = "backbone"
CSV_FIELDS = ("method", "lr", "backbone_lr_mult", "split", "seed", "dev_miou")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep file (see the module docstring)."""

    dataset: str
    splits: list[str]
    seeds: list[int]
    lr_scale: list[float]
    backbone_lr_mult: list[float]
    reference_lr: dict[str, float] = field(default_factory=dict)

    def check(self, path: str) -> None:
        for key in ("splits", "seeds", "lr_scale", "backbone_lr_mult", "reference_lr"):
            value = getattr(self, key)
            require(len(value) > 0, f"{path}.{key}", "at least one value", value)
        for key in ("lr_scale", "backbone_lr_mult"):
            for value in getattr(self, key):
                require(value > 0, f"{path}.{key}", "positive values", value)
        for method, lr in self.reference_lr.items():
            require(lr > 0, f"{path}.reference_lr.{method}", "a positive learning rate", lr)

    def methods(self) -> list[str]:
        return list(self.reference_lr)

    def points(self, method: str) -> list[Point]:
        """The method's points, in the file's order (lr scale outer, backbone inner)."""
        base = self.reference_lr[method]
        return [
            Point(method, _round(base * scale), mult)
            for scale, mult in itertools.product(self.lr_scale, self.backbone_lr_mult)
        ]


@dataclass(frozen=True)
class Point:
    """One method's values at one point of the sweep."""

    method: str
    lr: float
    backbone_lr_mult: float

    @property
    def name(self) -> str:
        return f"lr{self.lr:g}_bb{self.backbone_lr_mult:g}"

    def overrides(self) -> dict:
        return {
            "optim": {
                "lr": self.lr,
                "custom_keys": {BACKBONE_KEY: {"lr_mult": self.backbone_lr_mult}},
            }
        }


@dataclass(frozen=True)
class Job:
    point: Point
    split: str
    seed: int

    def run_dir(self, out: Path) -> Path:
        return out / "runs" / self.point.method / self.point.name / self.split / f"seed{self.seed}"


def _round(value: float) -> float:
    """A learning rate with 3 significant digits (0.3 x 0.002 is 0.0006, not 0.00059999...)."""
    return float(f"{value:.3g}")


def load_sweep(path: Path) -> SweepConfig:
    """Read and validate a sweep file."""
    data = read_yaml(Path(path))
    try:
        return build_config(SweepConfig, data, "sweep")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def jobs(sweep: SweepConfig, methods: Iterable[str] | None = None) -> list[Job]:
    """Every run of the sweep (of ``methods`` only, when given), method by method."""
    chosen = list(methods) if methods else sweep.methods()
    unknown = [m for m in chosen if m not in sweep.reference_lr]
    if unknown:
        raise ConfigError(
            f"--methods: {unknown[0]!r} has no reference_lr in the sweep file; "
            f"known: {', '.join(sweep.methods())}"
        )
    return [
        Job(point, split, seed)
        for method in chosen
        for point in sweep.points(method)
        for split in sweep.splits
        for seed in sweep.seeds
    ]


def point_config_dir(config_dir: Path, out: Path, point: Point, dataset: str) -> Path:
    """A copy of ``config_dir`` whose recipe of ``point.method`` on ``dataset`` takes the
    point's values (merged over the recipe file's own keys, so its ``base:`` chain stays)."""
    target = out / "configs" / point.method / point.name
    recipe = target / "recipes" / point.method / f"{dataset}.yaml"
    if recipe.is_file():
        return target
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(config_dir, tmp, ignore=shutil.ignore_patterns("sweeps", "*.runs.yaml"))
    leaf = tmp / "recipes" / point.method / f"{dataset}.yaml"
    if not leaf.is_file():
        raise ConfigError(f"{config_dir}/recipes/{point.method}/{dataset}.yaml: no such recipe")
    data = merge_mappings(read_yaml(leaf), point.overrides())
    leaf.write_text(
        f"# sweep point {point.name} of {point.method}, written by `semivl sweep`\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@dataclass(frozen=True)
class SweepPaths:
    """Inputs every run reads (the demo's: ``make demo`` prepares them)."""

    config_dir: Path
    data_root: Path
    clip_dir: Path
    text_dir: Path
    weights_dir: Path


def write_dev_splits(sweep: SweepConfig, paths: SweepPaths, out: Path) -> Path:
    """``<out>/splits``: the sweep's label splits (as the pipeline draws them) and a
    ``val.txt`` that lists the dev images."""
    from semivl.data.layouts import DEV_PART, part_pairs
    from semivl.data.make_splits import write_splits
    from semivl.data.splits import write_split_file
    from semivl.dataset_config import load_dataset_config

    cfg = load_dataset_config(sweep.dataset, paths.config_dir)
    splits = out / "splits"
    dev = part_pairs(cfg, paths.data_root, DEV_PART)
    write_splits(
        cfg,
        paths.data_root,
        splits,
        splits=list(sweep.splits),
        val=False,
        source="generated",
        seed=0,
        cache_dir=out / "cache",
        config_dir=paths.config_dir,
    )
    write_split_file(splits / "val.txt", dev)
    return splits


def train_command(job: Job, sweep: SweepConfig, paths: SweepPaths, out: Path) -> list[str]:
    config = point_config_dir(paths.config_dir, out, job.point, sweep.dataset)
    return [
        sys.executable,
        "-m",
        "semivl.cli",
        "train",
        "--dataset",
        sweep.dataset,
        "--split",
        job.split,
        "--method",
        job.point.method,
        "--seed",
        str(job.seed),
        "--data-root",
        str(paths.data_root),
        "--splits-dir",
        str(out / "splits"),
        "--clip-dir",
        str(paths.clip_dir),
        "--text-dir",
        str(paths.text_dir),
        "--weights-dir",
        str(paths.weights_dir),
        "--config-dir",
        str(config),
        "--threads",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(job.run_dir(out)),
    ]


def dev_miou(run_dir: Path) -> float | None:
    """The final-iteration dev mIoU of a finished run, or None."""
    summary = run_dir / "train_summary.json"
    if not summary.is_file():
        return None
    return float(json.loads(summary.read_text())["final_miou"])


def run_sweep(
    sweep: SweepConfig,
    paths: SweepPaths,
    out: Path,
    methods: Iterable[str] | None = None,
    workers: int = 2,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train every missing run (``workers`` at a time, one thread each) and return the rows."""
    todo = jobs(sweep, methods)
    write_dev_splits(sweep, paths, out)
    missing = [job for job in todo if dev_miou(job.run_dir(out)) is None]
    for point in dict.fromkeys(job.point for job in missing):  # before the threads share them
        point_config_dir(paths.config_dir, out, point, sweep.dataset)
    log(f"sweep: {len(todo)} runs, {len(todo) - len(missing)} done before, {len(missing)} to train")
    tic, done = time.monotonic(), [0]

    def train_one(job: Job) -> None:
        run = job.run_dir(out)
        run.mkdir(parents=True, exist_ok=True)
        with open(run.parent / f"seed{job.seed}.log", "w") as handle:
            result = subprocess.run(
                train_command(job, sweep, paths, out), stdout=handle, stderr=subprocess.STDOUT
            )
        done[0] += 1
        if result.returncode != 0:
            failed.append(f"{run.parent}/seed{job.seed}.log (exit {result.returncode})")
            log(f"sweep: {done[0]}/{len(missing)} {job.point.method} {job.point.name} FAILED")
            return
        log(
            f"sweep: {done[0]}/{len(missing)} {job.point.method} {job.point.name} "
            f"{job.split} labels: dev mIoU {dev_miou(run):.1f} "
            f"({time.monotonic() - tic:.0f} s)"
        )

    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for future in [pool.submit(train_one, job) for job in missing]:
            future.result()
    if failed:
        raise RuntimeError(
            f"{len(failed)} sweep runs failed; the others are kept and a rerun trains only the "
            f"missing ones. Logs: {'; '.join(failed)}"
        )
    return collect(todo, out)


def collect(todo: list[Job], out: Path) -> list[dict]:
    rows = []
    for job in todo:
        value = dev_miou(job.run_dir(out))
        if value is None:
            raise FileNotFoundError(f"{job.run_dir(out)}: the run has not finished")
        rows.append(
            {
                "method": job.point.method,
                "lr": job.point.lr,
                "backbone_lr_mult": job.point.backbone_lr_mult,
                "split": job.split,
                "seed": job.seed,
                "dev_miou": round(value, 2),
            }
        )
    return rows


def write_rows(rows: list[dict], path: Path) -> None:
    """The sweep's table, one run a line (merged over the rows of methods not rerun)."""
    kept = [r for r in read_rows(path) if r["method"] not in {row["method"] for row in rows}]
    lines = [",".join(CSV_FIELDS)]
    for row in kept + rows:
        lines.append(
            ",".join(
                f"{row[k]:g}" if isinstance(row[k], float) else str(row[k]) for k in CSV_FIELDS
            )
        )
    write_text_atomic("\n".join(lines) + "\n", path)


def read_rows(path: Path) -> list[dict]:
    """The rows of a sweep table (none when the file does not exist)."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        return [
            {
                "method": r["method"],
                "lr": float(r["lr"]),
                "backbone_lr_mult": float(r["backbone_lr_mult"]),
                "split": r["split"],
                "seed": int(r["seed"]),
                "dev_miou": float(r["dev_miou"]),
            }
            for r in csv.DictReader(handle)
        ]


def point_means(rows: list[dict], method: str) -> list[tuple[Point, dict[str, float], float]]:
    """(point, dev mIoU per split averaged over seeds, mean over splits) per point, in order."""
    by_point: dict[tuple[float, float], dict[str, list[float]]] = {}
    for row in rows:
        if row["method"] != method:
            continue
        key = (row["lr"], row["backbone_lr_mult"])
        by_point.setdefault(key, {}).setdefault(row["split"], []).append(row["dev_miou"])
    out = []
    for (lr, mult), splits in by_point.items():
        per_split = {s: sum(v) / len(v) for s, v in splits.items()}
        out.append((Point(method, lr, mult), per_split, sum(per_split.values()) / len(per_split)))
    return out


def selected(rows: list[dict], method: str) -> Point:
    """The method's selected point: best mean dev mIoU, the earlier point on ties."""
    means = point_means(rows, method)
    if not means:
        raise KeyError(f"the sweep table has no runs of {method!r}")
    best = max(m for _, _, m in means)
    return next(p for p, _, m in means if m == best)


def recipe_point(recipe) -> tuple[float, float]:
    """(base lr, backbone multiplier) that a loaded recipe trains with."""
    keys = recipe.optim.custom_keys
    mult = keys[BACKBONE_KEY].lr_mult if BACKBONE_KEY in keys else recipe.optim.default_lr_mult
    return recipe.optim.lr, mult


def sweep_markdown(rows: list[dict], sweep: SweepConfig, source: str) -> str:
    """The generated page of a sweep: one table per method, the selected point marked."""
    splits = list(sweep.splits)
    methods = [m for m in sweep.methods() if any(r["method"] == m for r in rows)]
    scales = ", ".join(f"{s:g}" for s in sweep.lr_scale)
    lines = [
        f"# Tuning sweep: {sweep.dataset}",
        "",
        f"Generated by `semivl sweep {source}` from `{Path(source).stem}.csv` beside this page; "
        "do not edit by hand.",
        "",
        f"Every method gets the same budget: {len(sweep.lr_scale) * len(sweep.backbone_lr_mult)} "
        f"points (base learning rate = the method's reference x {scales}; "
        f"backbone multiplier {', '.join(f'{m:g}' for m in sweep.backbone_lr_mult)}), trained at "
        f"{' and '.join(splits)} labels with seed{'s' if len(sweep.seeds) > 1 else ''} "
        f"{', '.join(map(str, sweep.seeds))}, scored by the final-iteration mIoU on the "
        f"{sweep.dataset}'s dev images (never on val). The selected point (**bold**) has the "
        "best mean over the splits and seeds; the recipes take it. A learning rate selected at the "
        "grid's edge means a wider grid might find a better one.",
        "",
        "| method | selected lr | selected backbone x | lr at the grid's edge |",
        "|---|---:|---:|---|",
    ]
    for method in methods:
        point = selected(rows, method)
        rates = [p.lr for p in sweep.points(method)]
        edge = "highest" if point.lr == max(rates) else "lowest" if point.lr == min(rates) else "no"
        lines.append(f"| {method} | {point.lr:g} | {point.backbone_lr_mult:g} | {edge} |")
    for method in methods:
        best = selected(rows, method)
        lines += [
            "",
            f"## {method}",
            "",
            "| lr | backbone x | "
            + " | ".join(f"dev mIoU, {s} labels" for s in splits)
            + " | mean |",
            "|---:|---:|" + "---:|" * (len(splits) + 1),
        ]
        for point, per_split, mean in point_means(rows, method):
            cells = [f"{per_split[s]:.1f}" if s in per_split else "–" for s in splits]
            cells.append(f"{mean:.1f}")
            if point == best:
                cells = [f"**{c}**" for c in cells]
            lines.append(
                f"| {point.lr:g} | {point.backbone_lr_mult:g} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines) + "\n"
