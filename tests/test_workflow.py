"""The Snakemake DAG and the DVC pipeline: same outputs, and both run end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import (
    REPO,
    TINY_PRETRAIN,
    TINY_RECIPE,
    TINY_SEMIVL,
    TINY_UNIMATCH,
    copy_workflow_files,
    snakemake_localrules,
)

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
# The reduced grid the end-to-end runs use: two splits, two seeds, a few iterations a run.
SMALL_GRID = {
    "results_dir": "results/demo",
    "data_dir": "data",
    "config_dir": "config",
    "grid": {
        "datasets": ["toy"],
        "splits": [{"dataset": "toy", "split": "6"}, {"dataset": "toy", "split": "12"}],
        "methods": ["supervised", "unimatch", "semivl"],
        "seeds": [0, 1],
    },
    "cluster": {"device": "cpu"},
    "report": {"zero_shot": True},
}


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def _checkout(tmp: Path, grid: dict | None = None, tiny: bool = False) -> Path:
    """A copy of the repository's tracked workflow files, as a fresh git+DVC checkout."""
    root = tmp / "checkout"
    copy_workflow_files(root)
    if grid is not None:
        (root / "config" / "config.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
        (root / "config" / "demo.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
        _run([str(BIN / "semivl"), "grid", "expand"], root)  # DVC's lists of the new grid
    if tiny:
        (root / "config" / "recipes" / "supervised" / "toy.yaml").write_text(TINY_RECIPE)
        # The full toy set has about 230 unlabelled images: a batch of 16 keeps an epoch short.
        (root / "config" / "recipes" / "unimatch" / "toy.yaml").write_text(
            TINY_UNIMATCH.replace("batch_size: 2", "batch_size: 16")
        )
        # SemiVL on the tiny pretrained CLIP, as in the demo: the DAG pretrains it first.
        (root / "config" / "recipes" / "semivl" / "toy.yaml").write_text(
            TINY_SEMIVL.replace("batch_size: 2", "batch_size: 16")
            .replace("eval_every_iters: 3", "eval_every_iters: 7")
            .replace("tiny_clip_random", "tiny_clip_toy")
        )
        (root / "config" / "pretrain" / "tiny_clip_toy.yaml").write_text(TINY_PRETRAIN)
    _run(["git", "init", "-q"], root)
    return root


def _snakemake_outputs(root: Path, configfile: str) -> set[str]:
    out = _run([str(BIN / "snakemake"), "--configfile", configfile, "--summary"], root)
    rows = [line.split("\t") for line in out.splitlines() if "\t" in line]
    return {row[0] for row in rows[1:] if row[0] != "output_file"}


def _dvc_outputs(root: Path) -> set[str]:
    code = (
        "from dvc.repo import Repo\n"
        "r = Repo('.')\n"
        "print('\\n'.join(str(o.def_path) for s in r.index.stages for o in s.outs))"
    )
    return set(_run([sys.executable, "-c", code], root).split())


def test_snakefile_and_dvc_declare_the_same_outputs(tmp_path):
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    root = _checkout(tmp_path, grid=demo)
    smk, dvc = _snakemake_outputs(root, "config/demo.yaml"), _dvc_outputs(root)
    assert smk == dvc, f"only Snakemake: {smk - dvc}; only DVC: {dvc - smk}"
    assert "results/demo/tables.md" in smk and "data/toy" in smk
    # 2 splits x 3 seeds x 3 methods, 2 ablations x 3 seeds at 6 labels, and the zero-shot row
    assert sum(p.endswith("metrics.json") for p in smk) == 18 + 6 + 1
    assert {
        "resources/weights",
        "resources/clip",
        "resources/text",
        "data/pretrain/tiny_clip_toy",
        "resources/pretrained/tiny_clip_toy/model.pt",
        "results/demo/zero_shot/toy/metrics.json",
    } <= smk


def _jobs_by_rule(dry_run: str, rule: str) -> list[dict[str, str]]:
    """The wildcards (and resources) of every job of ``rule`` in a ``snakemake -n`` listing."""
    jobs, current = [], None
    for line in dry_run.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):", line)
        if head:
            current = {"rule": head.group(1)}
            if current["rule"] == rule:
                jobs.append(current)
        elif current is not None and ":" in line:
            key, _, value = line.strip().partition(": ")
            if key == "wildcards":
                current.update(kv.split("=", 1) for kv in value.split(", "))
            elif key == "resources":
                current["resources"] = value
    return jobs


def test_default_grid_lists_every_training_job_of_the_four_datasets(tmp_path):
    """`snakemake -n all` on config/config.yaml: the papers' tables, the ablations on VOC 92
    and 1464 only, UniMatch V2's block, each job with its recipe's resources; DVC declares
    the same outputs."""
    from collections import Counter

    root = _checkout(tmp_path)
    out = _run([str(BIN / "snakemake"), "-n", "all"], root, timeout=300)
    jobs = _jobs_by_rule(out, "train")
    counts = Counter((j["dataset"], j["method"]) for j in jobs)
    for dataset in ("pascal", "coco", "ade20k", "cityscapes"):
        for method in ("supervised", "unimatch", "semivl"):
            assert counts[(dataset, method)] == 5 * 3, (dataset, method)
    ablations = (
        "semivl_no_definitions",
        "semivl_no_spatial_ft",
        "unimatch_vit",
        "unimatch_clip_init",
        "unimatch_clip_sft",
        "semivl_no_guidance",
    )
    for method in ablations:
        assert counts[("pascal", method)] == 2 * 3
        assert {j["split"] for j in jobs if j["method"] == method} == {"92", "1464"}
    # UniMatch V2 and its labelled-only baseline on the splits V2 reports
    v2_splits = {"pascal": 5, "coco": 5, "ade20k": 4, "cityscapes": 4}
    for dataset, n in v2_splits.items():
        for method in ("supervised_v2", "unimatch_v2"):
            assert counts[(dataset, method)] == n * 3, (dataset, method)
    assert len(jobs) == 4 * 5 * 3 * 3 + 6 * 2 * 3 + 18 * 2 * 3 == 324
    assert all("gpu=" in j["resources"] and "runtime=" in j["resources"] for j in jobs)
    coco = next(j for j in jobs if (j["dataset"], j["method"]) == ("coco", "semivl"))
    assert "gpu=8" in coco["resources"] and "runtime=2880" in coco["resources"]
    v2 = next(j for j in jobs if (j["dataset"], j["method"]) == ("coco", "unimatch_v2"))
    assert "gpu=4" in v2["resources"] and "runtime=3600" in v2["resources"]
    assert len(_jobs_by_rule(out, "zero_shot")) == 4
    smk, dvc = _snakemake_outputs(root, "config/config.yaml"), _dvc_outputs(root)
    # Snakemake downloads each archive in a job of its own on the login node; DVC's
    # prepare_data stage fetches its archives itself (resources/archives/ is its cache).
    smk = {p for p in smk if not p.startswith("resources/archives/")}
    # DVC has no conditional stages: the demo CLIP's pretraining is in every dvc.yaml DAG.
    dvc -= {"data/pretrain/tiny_clip_toy", "resources/pretrained/tiny_clip_toy/model.pt"}
    assert smk == dvc, f"only Snakemake: {smk - dvc}; only DVC: {dvc - smk}"
    assert sum(p.endswith("/model.pt") and "/runs/" in p for p in dvc) == 324


def test_snakemake_rejects_a_bad_config(tmp_path):
    root = _checkout(tmp_path)
    bad = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    bad["grid"]["blocks"][0]["seeds"] = ["zero"]
    (root / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--configfile", "bad.yaml"],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "zero" in proc.stderr + proc.stdout and "seeds" in proc.stderr + proc.stdout


def test_data_target_downloads_on_the_login_node_and_skips_what_exists(tmp_path):
    root = _checkout(tmp_path)
    plan = _run([str(BIN / "snakemake"), "-n", "data", "--quiet", "rules"], root)
    jobs = _run([str(BIN / "snakemake"), "-n", "data"], root)
    for rule in ("fetch_archive", "prepare_data", "split_files", "val_split"):
        assert rule in plan
    for archive in ("VOCtrainval_11-May-2012.tar", "ground_truth_voc.zip"):
        assert f"resources/archives/pascal/{archive}" in jobs
    local = snakemake_localrules(lambda *cmd: _run(list(cmd), root))
    assert {"fetch_archive", "split_files", "val_split"} <= local  # need the internet
    assert "prepare_data" not in local  # extraction and checking may run on a compute node
    # A dataset folder that already exists is used as it is: nothing is downloaded.
    (root / "data" / "pascal").mkdir(parents=True)
    again = _run([str(BIN / "snakemake"), "-n", "data"], root)
    assert "resources/archives/pascal/" not in again
    assert "resources/archives/coco/" in again  # the grid's other datasets still download
    assert not any(j.get("dataset") == "pascal" for j in _jobs_by_rule(again, "prepare_data"))


FIGURES = ["miou_vs_labels"] + [
    f"toy/{name}" for name in ("ablation", "per_class_iou", "training_curves", "qualitative")
]


def _check_tables(root: Path) -> str:
    results = root / "results" / "demo"
    text = (results / "tables.md").read_text()
    assert "| method | 6 | 12 |" in text
    for method in ("| Supervised", "| UniMatch", "| SemiVL †"):
        row = next(line for line in text.splitlines() if line.startswith(method))
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert len(cells) == 2 and all(c.endswith("(2)") and "±" in c for c in cells)
    assert "† Class definitions written by this project (`config/classes/toy.yaml`)" in text
    zero_shot = next(line for line in text.splitlines() if line.startswith("| Zero-shot"))
    assert len(zero_shot.split("|")) == 5 and "‡ The frozen CLIP `tiny_clip_toy`" in text
    assert "### mIoU best on val" in text and "### Training cost per cell" in text
    assert "CPU-h (2)" in text  # the runs' provenance.json reached the table
    # The grid file as given (Snakemake: the --configfile, DVC: config/config.yaml), not the
    # checkout's absolute path.
    assert re.search(r"- Grid: `config/(demo|config)\.yaml` \(sha256", text)
    assert "<td>UniMatch</td>" in (results / "tables.html").read_text()
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (results / "figures" / f"{name}.svg").read_bytes()[:800]
    for method in SMALL_GRID["grid"]["methods"]:  # 4 val images of the 6-label seed-0 run
        assert len(list((results / "predictions" / "toy" / method / "masks").glob("*.png"))) == 4
    return text


@pytest.mark.slow
def test_snakemake_end_to_end(tmp_path):
    root = _checkout(tmp_path, grid=SMALL_GRID, tiny=True)
    _run([str(BIN / "snakemake"), "all", "--cores", "2", "--configfile", "config/demo.yaml"], root)
    _check_tables(root)
    run = root / "results/demo/runs/toy/12/supervised/seed1"
    for name in ("model.pt", "metrics.json", "train_summary.json", "log.csv", "config.yaml"):
        assert (run / name).is_file(), name
    assert (root / "resources/clip/tiny_clip_toy.pt").is_file()
    assert (root / "resources/text/tiny_clip_toy/toy.pt").is_file()
    summary = (root / "resources/pretrained/tiny_clip_toy/summary.json").read_text()
    assert '"num_scenes": 256' in summary
    again = _run(
        [str(BIN / "snakemake"), "all", "--cores", "2", "--configfile", "config/demo.yaml"], root
    )
    assert "Nothing to be done" in again
    # The HTML report: one self-contained file with the tables, figures and per-run logs.
    _run(
        [
            str(BIN / "snakemake"),
            "--configfile",
            "config/demo.yaml",
            "--report",
            "results/demo/report.html",
        ],
        root,
    )
    page = (root / "results/demo/report.html").read_text()
    assert len(page) > 100_000 and '<script src="http' not in page
    for name in (
        "tables.html",
        "qualitative.png",
        "training_curves.png",
        "toy_12_supervised_seed1.log",
        "tiny_clip_toy.log",
        "toy_zero_shot.log",
    ):
        assert name in page, name


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two DVC pipelines of up to 900 s each (`repro`, then `exp run`)
def test_dvc_repro_end_to_end(tmp_path):
    root = _checkout(tmp_path, grid=SMALL_GRID, tiny=True)
    out = _run([str(BIN / "dvc"), "repro"], root, timeout=900)
    assert "Running stage 'train@toy-12-supervised-seed1'" in out
    _check_tables(root)
    status = _run([str(BIN / "dvc"), "status"], root)
    assert "up to date" in status
    metrics = _run([str(BIN / "dvc"), "metrics", "show"], root)
    assert "results/demo/runs/toy/6/supervised/seed0/metrics.json" in metrics
    # The plots page works offline: the vega libraries are inlined, nothing loads from a CDN.
    _run([str(BIN / "dvc"), "plots", "show", "-o", "plots_page"], root)
    page = (root / "plots_page" / "index.html").read_text()
    assert "cdn.jsdelivr" not in page and "vegaEmbed" in page and "miou" in page
    # An experiment that changes one recipe's hyperparameter reruns only that method's cells.
    _run(["git", "add", "-A"], root)
    _run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "run"], root
    )
    exp = _run(
        [str(BIN / "dvc"), "exp", "run", "-S", "config/recipes/supervised/toy.yaml:optim.lr=0.001"],
        root,
        timeout=900,
    )
    ran = {line.split("'")[1] for line in exp.splitlines() if line.startswith("Running stage")}
    assert {s for s in ran if s.startswith("train@")} == {
        f"train@toy-{s}-supervised-seed{k}" for s in (6, 12) for k in (0, 1)
    }
    assert {"aggregate", "table", "plot_overview", "plot_dataset@toy"} <= ran


@pytest.mark.slow
def test_failed_cell_keeps_going_and_is_reported(tmp_path):
    import torch

    grid = {
        **SMALL_GRID,
        "grid": {
            **SMALL_GRID["grid"],
            "splits": [{"dataset": "toy", "split": "6"}],
            "methods": ["supervised", "unimatch"],
            "seeds": [0],
        },
    }
    root = _checkout(tmp_path, grid=grid, tiny=True)
    run = root / "results/demo/runs/toy/6/unimatch/seed0"
    run.mkdir(parents=True)
    torch.save({"fingerprint": "another recipe"}, run / "last.pt")  # the trainer refuses it
    proc = subprocess.run(
        [
            str(BIN / "snakemake"),
            "all",
            "--cores",
            "2",
            "--keep-going",
            "--configfile",
            "config/demo.yaml",
        ],
        cwd=root,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    assert (root / "results/demo/runs/toy/6/supervised/seed0/metrics.json").is_file()
    tables = (root / "results/demo/tables.md").read_text()
    assert "| UniMatch | 1 failed |" in tables
    assert "- toy 6 UniMatch seed 0: failed (training error (1 attempts))" in tables
    supervised = next(line for line in tables.splitlines() if line.startswith("| Supervised"))
    assert "(1)" in supervised
