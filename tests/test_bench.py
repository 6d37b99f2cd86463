"""semivl bench (quick) and semivl plan, and the speed options of train.speed."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import TINY_UNIMATCH

from semivl.bench.markdown import render_bench
from semivl.bench.plan import plan_grid, plan_summary, render_plan, run_length
from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.step import unwrap
from semivl.engine.trainer import RunSpec, train
from semivl.grid import load_grid
from semivl.recipes import load_recipe


def _grid(tmp_path, repo, **cluster):
    path = tmp_path / "grid.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "results_dir": str(tmp_path / "results"),
                "config_dir": str(repo / "config"),
                "grid": {
                    "datasets": ["pascal"],
                    "splits": [{"dataset": "pascal", "split": "92"}],
                    "methods": ["supervised", "unimatch"],
                    "seeds": [0, 1, 2],
                },
                "cluster": cluster,
            }
        )
    )
    return load_grid(path)


def test_run_length_follows_the_trainer_schedule(repo):
    unimatch = load_recipe("unimatch", "pascal", repo / "config")
    # 10,582 - 92 unlabelled images, 4 GPUs x 2 per step (global 8), 80 epochs.
    assert run_length(unimatch, "92", 4) == {
        "iters": 1311 * 80,
        "accumulation": 1,
        "evaluations": 81,
        "full_iters": 1311 * 80,
    }
    # One GPU keeps the global batch of 8 by accumulating 4 micro-batches of 2.
    assert run_length(unimatch, "92", 1) == {
        "iters": 1311 * 80,
        "accumulation": 4,
        "evaluations": 81,
        "full_iters": 1311 * 80,
    }
    supervised = load_recipe("supervised", "pascal", repo / "config")
    assert run_length(supervised, "92", 4)["iters"] == (92 // 16) * 80


def test_plan_uses_measured_times_and_falls_back_to_requested_hours(tmp_path, repo):
    bench = {
        "device": {"type": "cuda", "name": "NVIDIA H100"},
        "train": [
            {
                "method": "unimatch",
                "dataset": "pascal",
                "s_per_iter": 0.5,
                "speed": {"amp": "none", "channels_last": False},
            }
        ],
        "evaluation": [{"recipe": "unimatch/pascal", "images_per_s": 10.0}],
    }
    rows = plan_grid(_grid(tmp_path, repo), bench)
    unimatch = next(r for r in rows if r["method"] == "unimatch")
    expected = (104880 * 0.5 + 81 * 1449 / 10.0 / 4) / 3600
    assert unimatch["hours_per_run"] == pytest.approx(expected)
    assert unimatch["gpu_hours"] == pytest.approx(expected * 4 * 3)
    assert unimatch["source"] == "measured on NVIDIA H100"
    supervised = next(r for r in rows if r["method"] == "supervised")
    assert supervised["hours_per_run"] == 12 and supervised["guess"]
    assert supervised["source"] == "the recipe's requested hours: a guess"
    capped = plan_grid(_grid(tmp_path, repo, max_gpus_per_job=1), bench)
    assert next(r for r in capped if r["method"] == "unimatch")["accumulation"] == 4
    text = render_plan(rows)
    assert "| main | pascal | 92 | unimatch | 3 | 4 | 104880 |" in text and "Total:" in text
    # A CPU measurement is never taken for GPU time; UniMatch's hours then come from its logs.
    cpu = plan_grid(_grid(tmp_path, repo), bench | {"device": {"type": "cpu"}})
    assert [r["source"] for r in cpu] == [
        "the recipe's requested hours: a guess",
        "the recipe's requested hours (UniMatch V1 logs: 17-21 h on 4 GPUs (R101, crop 321))",
    ]
    assert "Guessed hours are what the recipes ask the cluster for" in render_plan(cpu)


def test_plan_sums_blocks_per_dataset_and_names_the_longest_job(repo):
    grid = load_grid(repo / "config" / "config.yaml")
    rows = plan_grid(grid, None, repo / "config")
    # Every run of the grid is planned once, in its block.
    assert sum(r["runs"] for r in rows) == len(grid.runs()) == 324
    assert {r["block"] for r in rows} == {"main", "ablation", "v2"}
    assert sum(r["runs"] for r in rows if r["block"] == "v2") == 108
    ablation = {(r["split"], r["method"]) for r in rows if r["block"] == "ablation"}
    assert {s for s, _ in ablation} == {"92", "1464"}
    summary = plan_summary(rows)
    assert set(summary["datasets"]) == {"pascal", "coco", "ade20k", "cityscapes"}
    assert summary["gpu_hours"] == pytest.approx(
        sum(d["gpu_hours"] for d in summary["datasets"].values())
    )
    assert summary["longest"]["hours_per_run"] == max(r["hours_per_run"] for r in rows)
    text = render_plan(rows)
    assert f"| **total** | **324** | **{summary['gpu_hours']:.0f}** |" in text
    assert "Longest job:" in text


def test_speed_options_train_and_save_a_plain_state_dict(toy_root, config_dir, tmp_path):
    (config_dir / "recipes" / "unimatch" / "toy.yaml").write_text(
        TINY_UNIMATCH.replace(
            "  checkpoint_every_iters: 3",
            "  checkpoint_every_iters: 3\n  speed: {amp: bf16, channels_last: true, "
            "fused_optimizer: true}",
        )
    )
    recipe = load_recipe("unimatch", "toy", config_dir)
    assert recipe.train.speed.amp == "bf16" and recipe.train.speed.channels_last
    splits = toy_root.parent / "splits"
    spec = RunSpec(
        recipe=recipe,
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=splits / "6" / "unlabeled.txt",
        val_split=splits / "val.txt",
        out_dir=tmp_path / "run",
        seed=0,
    )
    summary = train(spec, progress=False)
    assert summary["final_iter"] == summary["total_iters"] > 0
    state = load_checkpoint(tmp_path / "run" / "model.pt")
    assert not any(k.startswith(("_orig_mod", "module")) for k in state)


def test_unwrap_sees_through_compile():
    model = torch.nn.Linear(2, 2)
    assert unwrap(torch.compile(model)) is model and unwrap(model) is model


@pytest.mark.slow
def test_bench_quick_measures_everything(repo, capsys, tmp_path, monkeypatch):
    from test_workflow import _checkout

    from semivl.cli import main

    # The workflow overhead (snakemake -n, dvc status) is timed in the working directory: a
    # copy of the checkout, so that neither writes its state into the real one.
    monkeypatch.chdir(_checkout(tmp_path))
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--quick",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--config-dir",
                str(repo / "config"),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert result["device"]["type"] == "cpu" and result["matmul"][0]["tflops"] > 0
    # Every registered method with a toy recipe of its own: the plug-ins (FixMatch) too.
    measured = {"supervised", "unimatch", "semivl", "unimatch_v2", "fixmatch"}
    assert {(r["method"], r["config"]) for r in result["train"]} == {(m, "tiny") for m in measured}
    for row in result["train"]:
        assert row["s_per_iter"] > 0 and row["flops_per_iter"] > 0
        assert 0 < row["fraction_of_matmul_peak"] < 5 and row["peak_memory_mb"] > 0
    tiny, paper = result["loaders"]
    toy_crop = load_recipe("unimatch", "toy", repo / "config").augment.crop_size
    assert (tiny["config"], tiny["crop"], paper["config"], paper["crop"]) == (
        "tiny",
        toy_crop,
        "paper",
        512,
    )
    for loader in (tiny, paper):
        assert loader["images_per_s_per_worker"] > 0
        assert set(loader["s_per_image_by_part"]) == {
            "decode",
            "weak",
            "strong",
            "cutmix",
            "normalize",
        }
    assert {r["method"] for r in result["consumption"]} == measured - {"supervised"}
    assert all(r["workers_needed"] >= 1 for r in result["consumption"])
    assert f"| unimatch | tiny (toy) | {toy_crop} | 4 |" in render_bench(result)
    assert 0 < result["evaluation"][0]["metric_share"] < 1
    options = result["speed_options"][0]["options"]
    assert options["default (upstream TF32)"]["speedup"] == 1.0
    assert options["default (upstream TF32)"]["max_relative_loss_difference"] == 0.0
    assert options["channels-last"]["max_relative_loss_difference"] < 1e-3
    assert "skipped" in options["torch.compile"]
    for step in ("snakemake_dry_run", "dvc_status"):
        assert result["workflow"][step]["seconds"] > 0 and "error" not in result["workflow"][step]
    assert result["gpu"].startswith("not measured")


def test_a_failed_row_is_recorded_and_the_others_kept(repo, monkeypatch):
    """An out-of-memory step is a row with its error; every row is saved as it finishes."""
    import torch

    import semivl.bench.run as run

    def fake_step(recipe, device, **kwargs):
        if recipe.train.method == "unimatch":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {
            "method": recipe.train.method,
            "s_per_iter": 0.5,
            "achieved_tflops": 0.01,
            "images_per_iter": 6,
            "speed": {"amp": "none"},
            "precision": {"tf32_matmul": False},
        }

    monkeypatch.setattr(run, "bench_step", fake_step)
    monkeypatch.setattr(run, "bench_options", lambda *a, **k: {"options": {}})
    monkeypatch.setattr(
        run, "bench_unlabeled_pipeline", lambda *a, **k: {"images_per_s_per_worker": 10.0}
    )
    monkeypatch.setattr(run, "bench_evaluation", lambda *a, **k: {"images_per_s": 1.0})
    saved = []
    result = run.run_bench(
        True,
        torch.device("cpu"),
        repo,
        repo / "config",
        workflow=False,
        progress=lambda what: None,
        save=lambda r: saved.append(json.loads(json.dumps(r))),
    )
    rows = {r["method"]: r for r in result["train"]}
    assert rows["unimatch"]["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert rows["semivl"]["s_per_iter"] == 0.5 and rows["semivl"]["peak_basis"] == "float32"
    # Every semi-supervised method benchmarked (plug-ins with a toy recipe too) but the failed.
    from semivl.methods import get_method

    semi = {m for m in run.bench_methods("toy", repo / "config") if get_method(m).reads_unlabeled}
    assert {"semivl", "unimatch_v2"} <= semi
    assert {r["method"] for r in result["consumption"]} == semi - {"unimatch"}
    assert len(saved) >= 6 and len(saved[1]["train"]) == 1  # saved after every row


def test_evaluation_is_priced_at_the_datasets_image_sizes(repo):
    from semivl.bench.evaluation import VAL_IMAGE_SIZE, bench_evaluation, protocol_size

    assert VAL_IMAGE_SIZE["cityscapes"] == (1024, 2048)
    ade = load_recipe("unimatch", "ade20k", repo / "config")
    cityscapes = load_recipe("semivl", "cityscapes", repo / "config")
    assert protocol_size(cityscapes, (1024, 2048)) == (1024, 2048)  # no resize
    if ade.eval.resize_short_side:
        short = ade.eval.resize_short_side
        assert min(protocol_size(ade, (512, 683))) == short
    row = bench_evaluation(
        load_recipe("unimatch", "toy", repo / "config"), torch.device("cpu"), images=1
    )
    assert row["stored_size"] == list(VAL_IMAGE_SIZE["toy"]) and row["images_per_s"] > 0


def test_plan_skips_failed_bench_rows():
    from semivl.bench.plan import _measured

    bench = {
        "device": {"type": "cuda"},
        "train": [
            {"method": "unimatch", "dataset": "pascal", "error": "OutOfMemoryError"},
            {
                "method": "unimatch",
                "dataset": "pascal",
                "s_per_iter": 0.5,
                "speed": {"tf32": "all"},
            },
            {"method": "unimatch", "dataset": "pascal", "s_per_iter": 0.7, "speed": {}},
        ],
    }
    assert _measured(bench, "train", "unimatch", "pascal")["s_per_iter"] == 0.7
