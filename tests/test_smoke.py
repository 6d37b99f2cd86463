"""The smoke grid (config/smoke.yaml): runs that train a fraction of their recipe's schedule
(``schedule_fraction``), what ``semivl plan`` says they cost, the SLURM jobs they become, and
the flag the tables put on them."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from test_workflow import BIN, _checkout, _jobs_by_rule, _run

from semivl.bench.plan import plan_grid, render_plan
from semivl.config import ConfigError
from semivl.engine.optim import poly_lr
from semivl.engine.trainer import RunSpec, shortened_iters, train
from semivl.grid import load_grid
from semivl.recipes import load_recipe
from semivl.report.tables import render_tables


def _spec(toy_root, config_dir, out, fraction=None):
    recipe = load_recipe("supervised", "toy", config_dir)
    if fraction is not None:
        recipe = recipe.with_schedule_fraction(fraction)
    splits = toy_root.parent / "splits"
    return RunSpec(
        recipe=recipe,
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        val_split=splits / "val.txt",
        out_dir=out,
        seed=0,
    )


def test_a_fraction_of_the_schedule_trains_that_share_with_the_schedule_compressed(
    toy_root, config_dir, tmp_path
):
    # The tiny supervised toy recipe trains 12 iterations (test_trainer); a quarter is 3.
    summary = train(_spec(toy_root, config_dir, tmp_path / "r", 0.25), progress=False, log_every=1)
    assert summary["total_iters"] == summary["final_iter"] == 3
    assert summary["schedule_fraction"] == 0.25
    assert [h["iter"] for h in summary["history"]] == [3]  # evaluated once, at the end
    dump = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert dump["recipe"]["train"]["schedule_fraction"] == 0.25
    assert dump["batch"]["total_iters"] == 3
    # The poly learning rate decays over the 3 iterations, not over the recipe's 12.
    with (tmp_path / "r" / "log.csv").open() as handle:
        lrs = [float(row["lr"]) for row in csv.DictReader(handle)]
    base = load_recipe("supervised", "toy", config_dir).optim
    assert lrs == pytest.approx(
        [poly_lr(base.lr, i, 3, base.poly_power) for i in range(3)], rel=1e-4
    )


def test_shortened_iterations_round_up_and_keep_at_least_one(config_dir):
    recipe = load_recipe("supervised", "toy", config_dir)
    assert shortened_iters(recipe.train, 104880) == 104880
    assert shortened_iters(recipe.with_schedule_fraction(0.003).train, 104880) == 315
    assert shortened_iters(recipe.with_schedule_fraction(0.001).train, 400) == 1


def test_the_default_fraction_keeps_the_run_fingerprint(toy_root, config_dir, tmp_path):
    spec = _spec(toy_root, config_dir, tmp_path / "r")
    recipe = spec.recipe.to_dict()
    recipe.pop("resources")
    del recipe["train"]["schedule_fraction"]  # runs from before the key resume as they were
    blob = json.dumps({"recipe": recipe, "seed": 0, "labeled": "labeled.txt"}, sort_keys=True)
    # last.pt files written before the worker count left the hash still resume.
    assert hashlib.sha256(blob.encode()).hexdigest()[:16] in spec.fingerprints()
    del recipe["train"]["num_workers"]  # samples do not depend on it: a site may change it
    blob = json.dumps({"recipe": recipe, "seed": 0, "labeled": "labeled.txt"}, sort_keys=True)
    assert spec.fingerprint() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert _spec(toy_root, config_dir, tmp_path / "r", 0.5).fingerprint() != spec.fingerprint()


def test_bad_fractions_name_the_key(tmp_path, config_dir, repo):
    with pytest.raises(ConfigError, match=r"train.schedule_fraction: expected in \(0, 1\]"):
        load_recipe("supervised", "toy", config_dir).with_schedule_fraction(0)
    recipe = config_dir / "recipes" / "supervised" / "toy.yaml"
    recipe.write_text(recipe.read_text().replace("train:\n", "train:\n  schedule_fraction: 2\n"))
    with pytest.raises(ConfigError, match=r"train.schedule_fraction: expected in \(0, 1\]"):
        load_recipe("supervised", "toy", config_dir)
    grid = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({**grid, "schedule_fraction": 1.5}))
    with pytest.raises(
        ConfigError,
        match=r"g.yaml: config.schedule_fraction: expected a "
        r"number in \(0, 1\], got 1.5",
    ):
        load_grid(tmp_path / "g.yaml")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "semivl.cli",
            "train",
            "--dataset",
            "toy",
            "--split",
            "6",
            "--method",
            "supervised",
            "--seed",
            "0",
            "--data-root",
            str(tmp_path),
            "--splits-dir",
            str(tmp_path),
            "--config-dir",
            str(config_dir),
            "--out",
            str(tmp_path / "o"),
            "--schedule-fraction",
            "0",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "schedule_fraction" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_smoke_grid_runs_every_method_once_on_the_fewest_labels(repo):
    smoke, full = (
        load_grid(repo / "config" / "smoke.yaml"),
        load_grid(repo / "config" / "config.yaml"),
    )
    assert smoke.results_dir != full.results_dir  # smoke runs never stand for real ones
    assert smoke.cells() == [("pascal", "92")]
    assert {m for _, _, m, _ in smoke.runs()} == set(full.methods("pascal"))
    assert len(smoke.runs()) == len(full.methods("pascal")) == 11
    assert 0 < smoke.schedule_fraction < 0.05


def test_plan_of_the_smoke_grid_is_about_an_hour_on_four_gpus(repo):
    grid = load_grid(repo / "config" / "smoke.yaml")
    rows = plan_grid(grid, config_dir=repo / "config")
    by_method = {r["method"]: r for r in rows}
    # VOC 92: 80 epochs x 1,311 iterations of the unlabelled set; 0.3 % of them.
    assert by_method["unimatch"]["full_iters"] == 104880
    assert by_method["semivl"]["iters"] == math.ceil(0.003 * 104880) == 315
    assert all(r["gpus"] == 4 and r["evaluations"] == 2 for r in rows)
    # The requested 24 h x 0.3 %, plus 3 minutes of start-up and evaluation (a guess).
    assert by_method["semivl"]["hours_per_run"] == pytest.approx(24 * 315 / 104880 + 0.05)
    total = sum(r["gpu_hours"] for r in rows)
    assert 0.75 <= total / 4 <= 1.25
    text = render_plan(rows)
    assert f"On 4 GPU(s), one job at a time: about {total / 4:.1f} h" in text
    assert "of the iterations + 3 min start-up (guess)" in text


def test_smoke_rows_are_flagged_in_the_tables():
    rows = [
        {
            "dataset": "pascal",
            "split": "92",
            "num_labeled": 92,
            "method": m,
            "seed": 0,
            "miou": 30.0,
            "miou_best": 30.0,
        }
        for m in ("supervised", "semivl")
    ]
    plain = render_tables(pd.DataFrame(rows))
    assert "Smoke run" not in plain and "## pascal\n" in plain
    smoke = render_tables(pd.DataFrame([{**r, "schedule_fraction": 0.003} for r in rows]))
    assert "**Smoke run: 2 of 2 runs trained 0.30% of their recipes' iterations**" in smoke
    assert "## pascal (smoke run)" in smoke


def _slurm_idle() -> bool:
    from test_slurm import _slurm_idle as idle

    return idle()


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.skipif(not _slurm_idle(), reason="no idle SLURM node (start one: .ci/start_slurm.sh)")
def test_smoke_grid_dry_run_on_slurm_lists_its_jobs_with_their_resources(tmp_path):
    root = _checkout(tmp_path)
    # `all` before --configfile, which takes every file name that follows it.
    out = _run(
        [
            str(BIN / "snakemake"),
            "--profile",
            "slurm",
            "-n",
            "all",
            "--configfile",
            "config/smoke.yaml",
        ],
        root,
    )
    jobs = _jobs_by_rule(out, "train")
    assert len(jobs) == 11 and {j["split"] for j in jobs} == {"92"}
    assert {j["seed"] for j in jobs} == {"0"}
    semivl = next(j for j in jobs if j["method"] == "semivl")
    # 24 h x 0.3 % + 30 minutes for start-up and evaluation, on the recipe's 4 GPUs.
    assert "gpu=4" in semivl["resources"] and "runtime=34" in semivl["resources"]
    assert out.count("--schedule-fraction 0.003") >= 9
    assert "results/smoke/runs/pascal/92/semivl/seed0/model.pt" in out
