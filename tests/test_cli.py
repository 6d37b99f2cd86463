import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from semivl.cli import EXIT_ERROR, build_parser, main

STEPS = [
    "data",
    "splits",
    "weights",
    "clip",
    "text",
    "train",
    "evaluate",
    "model-summary",
    "aggregate",
    "table",
    "plot",
    "predict",
    "bench",
    "plan",
]


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_help(step, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([step, "--help"])
    assert exit_info.value.code == 0
    assert "usage: semivl" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "semivl.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "data toy" in out.stdout or "data" in out.stdout


def test_missing_data_root_exit_code_and_hint(tmp_path, repo, capsys):
    code = main(
        [
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
            str(tmp_path / "data" / "toy"),
            "--splits-dir",
            str(tmp_path / "splits"),
            "--config-dir",
            str(repo / "config"),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not exist" in err and "semivl data prepare toy --out" in err
    assert not (tmp_path / "run").exists()


def test_full_chain_by_hand(toy_root, config_dir, tmp_path, capsys):
    splits = toy_root.parent / "splits"
    run = tmp_path / "results" / "runs" / "toy" / "6" / "supervised" / "seed0"
    common = [
        "--dataset",
        "toy",
        "--split",
        "6",
        "--method",
        "supervised",
        "--seed",
        "0",
        "--data-root",
        str(toy_root),
        "--splits-dir",
        str(splits),
        "--config-dir",
        str(config_dir),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(["train", *common, "--out", str(run)]) == 0
    assert main(["evaluate", *common, "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["per_class_iou"]) == {"background", "cat", "dog", "bird", "fish"}
    # the toy's appearance modes: accuracy per look, and the looks the 6 labels show
    assert len(metrics["per_mode_accuracy"]) == 16
    assert all(v is None or 0 <= v <= 100 for v in metrics["per_mode_accuracy"].values())
    assert 0 < len(metrics["labelled_modes"]) < 16
    assert set(metrics["labelled_modes"]) <= set(metrics["per_mode_accuracy"])
    assert 0 <= metrics["miou"] <= 100 and metrics["num_labeled"] == 6
    csv_path = tmp_path / "results" / "metrics.csv"
    assert main(["aggregate", "--out", str(csv_path), str(run / "metrics.json")]) == 0
    assert (
        main(
            [
                "table",
                "--metrics",
                str(csv_path),
                "--out",
                str(tmp_path / "t.md"),
                "--config-dir",
                str(config_dir),
            ]
        )
        == 0
    )
    assert "| Supervised (labelled only) |" in (tmp_path / "t.md").read_text()
    assert main(["aggregate", "--out", str(csv_path), str(tmp_path / "none.json")]) == EXIT_ERROR
    assert "no metrics.json" in capsys.readouterr().err
    _check_predict(run, toy_root, tmp_path / "predictions", capsys)


def _check_predict(run, toy_root, out, capsys):
    """`semivl predict` writes one palette mask (the image's size) and overlay per image."""
    from PIL import Image

    from semivl.data.palette import voc_palette

    images = sorted((toy_root / "JPEGImages").glob("*.jpg"))[:3]
    assert (
        main(
            [
                "predict",
                "--run-dir",
                str(run),
                "--out",
                str(out),
                "--no-progress",
                *map(str, images),
            ]
        )
        == 0
    )
    masks = sorted((out / "masks").glob("*.png"))
    assert [m.stem for m in masks] == [i.stem for i in images]
    assert sorted(p.stem for p in (out / "overlays").glob("*.png")) == [i.stem for i in images]
    for mask, image in zip(masks, images, strict=True):
        loaded = Image.open(mask)
        assert loaded.mode == "P" and loaded.size == Image.open(image).size
        assert loaded.getpalette()[:15] == voc_palette()[:15]
        assert set(np.unique(np.asarray(loaded))) <= set(range(5))
        assert Image.open(out / "overlays" / mask.name).size == loaded.size
    # A folder predicts every image in it; a missing input fails and leaves the output alone.
    assert (
        main(
            [
                "predict",
                "--run-dir",
                str(run),
                "--out",
                str(out),
                "--no-progress",
                "--limit",
                "2",
                str(toy_root / "JPEGImages"),
            ]
        )
        == 0
    )
    assert len(list((out / "masks").glob("*.png"))) == 2
    assert (
        main(
            [
                "predict",
                "--run-dir",
                str(run),
                "--out",
                str(out),
                "--no-progress",
                str(toy_root / "nope.jpg"),
            ]
        )
        == EXIT_ERROR
    )
    assert "nope.jpg: no such image" in capsys.readouterr().err
    assert len(list((out / "masks").glob("*.png"))) == 2


@pytest.mark.parametrize(
    ("dataset", "method", "backbone_millions"),
    [("pascal", "unimatch", 42.62), ("coco", "supervised", 37.87), ("toy", "unimatch", 1.230)],
)
def test_model_summary(dataset, method, backbone_millions, repo, capsys):
    assert (
        main(
            [
                "model-summary",
                "--dataset",
                dataset,
                "--method",
                method,
                "--config-dir",
                str(repo / "config"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["by_module"]) == {"backbone", "decoder"}
    assert summary["total"] == sum(m["total"] for m in summary["by_module"].values())
    assert summary["trainable"] == summary["total"]
    assert summary["by_module"]["backbone"]["total"] / 1e6 == pytest.approx(
        backbone_millions, rel=0.001
    )


def test_weights_fetch_for_a_grid_without_pretrained_models(tmp_path, repo, capsys):
    out = tmp_path / "weights"
    assert (
        main(
            [
                "weights",
                "fetch",
                "--grid",
                str(repo / "config" / "demo.yaml"),
                "--config-dir",
                str(repo / "config"),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--out-dir",
                str(out),
            ]
        )
        == 0
    )
    assert out.is_dir() and not any(out.iterdir())
    assert "no pretrained weights needed" in capsys.readouterr().out


def test_semivl_chain_by_hand(toy_root, config_dir, tmp_path, capsys):
    """clip fetch -> text -> train -> evaluate for SemiVL and an ablation, all offline."""
    clip_dir, text_dir = tmp_path / "clip", tmp_path / "text"
    assert (
        main(
            [
                "clip",
                "fetch",
                "--name",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--out-dir",
                str(clip_dir),
            ]
        )
        == 0
    )
    assert (clip_dir / "tiny_clip_random.pt").is_file()
    assert (
        main(
            [
                "clip",
                "fetch",
                "--name",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--out-dir",
                str(clip_dir),
            ]
        )
        == 0
    )
    assert "up to date" in capsys.readouterr().out
    assert (
        main(
            [
                "text",
                "--dataset",
                "toy",
                "--clip",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--clip-dir",
                str(clip_dir),
                "--out-dir",
                str(text_dir),
            ]
        )
        == 0
    )
    splits = toy_root.parent / "splits"
    zero_shot = tmp_path / "zero_shot" / "toy" / "metrics.json"
    assert (
        main(
            [
                "evaluate",
                "--zero-shot",
                "--dataset",
                "toy",
                "--method",
                "semivl",
                "--data-root",
                str(toy_root),
                "--splits-dir",
                str(splits),
                "--config-dir",
                str(config_dir),
                "--clip-dir",
                str(clip_dir),
                "--text-dir",
                str(text_dir),
                "--no-progress",
                "--out",
                str(zero_shot),
            ]
        )
        == 0
    )
    record = json.loads(zero_shot.read_text())
    assert record["method"] == "zero_shot_clip" and record["clip"] == "tiny_clip_random"
    assert record["text"] == "concept_max" and record["class_definitions"] == "project"
    assert record["num_val_images"] == 6 and 0 <= record["miou"] <= 100
    assert "zero-shot dense CLIP (tiny_clip_random, concept_max texts)" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                "toy",
                "--method",
                "semivl",
                "--data-root",
                str(toy_root),
                "--splits-dir",
                str(splits),
                "--config-dir",
                str(config_dir),
            ]
        )
        == EXIT_ERROR
    )
    assert "evaluate needs --split, --seed, --run-dir (or --zero-shot)" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--zero-shot",
                "--dataset",
                "toy",
                "--method",
                "supervised",
                "--data-root",
                str(toy_root),
                "--splits-dir",
                str(splits),
                "--config-dir",
                str(config_dir),
                "--out",
                str(tmp_path / "z.json"),
            ]
        )
        == EXIT_ERROR
    )
    assert "needs a SemiVL recipe" in capsys.readouterr().err
    for method, definitions in (("semivl", "project"), ("semivl_no_definitions", None)):
        run = tmp_path / "runs" / method
        common = [
            "--dataset",
            "toy",
            "--split",
            "6",
            "--method",
            method,
            "--seed",
            "0",
            "--data-root",
            str(toy_root),
            "--splits-dir",
            str(splits),
            "--config-dir",
            str(config_dir),
            "--clip-dir",
            str(clip_dir),
            "--text-dir",
            str(text_dir),
            "--no-progress",
            "--device",
            "cpu",
        ]
        assert main(["train", *common, "--out", str(run)]) == 0
        assert main(["evaluate", *common, "--run-dir", str(run)]) == 0
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["class_definitions"] == definitions and 0 <= metrics["miou"] <= 100
        header = (run / "log.csv").read_text().splitlines()[0]
        assert "loss_guid" in header and "guid_weight" in header
        state = torch.load(run / "model.pt", weights_only=True)
        assert not any(k.startswith("teacher") for k in state)  # the teacher is never saved
        out = tmp_path / "predictions" / method
        assert (
            main(
                [
                    "predict",
                    "--run-dir",
                    str(run),
                    "--val",
                    str(splits / "val.txt"),
                    "--data-root",
                    str(toy_root),
                    "--limit",
                    "2",
                    "--config-dir",
                    str(config_dir),
                    "--clip-dir",
                    str(clip_dir),
                    "--text-dir",
                    str(text_dir),
                    "--no-progress",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        assert len(list((out / "masks").glob("*.png"))) == 2


def test_semivl_missing_files_name_the_command(toy_root, config_dir, tmp_path, capsys):
    splits = toy_root.parent / "splits"
    common = [
        "--dataset",
        "toy",
        "--split",
        "6",
        "--method",
        "semivl",
        "--seed",
        "0",
        "--data-root",
        str(toy_root),
        "--splits-dir",
        str(splits),
        "--config-dir",
        str(config_dir),
        "--clip-dir",
        str(tmp_path / "clip"),
        "--text-dir",
        str(tmp_path / "text"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(["train", *common, "--out", str(tmp_path / "run")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "CLIP weights 'tiny_clip_random' are missing" in err
    assert "semivl clip fetch --name tiny_clip_random" in err
    assert (
        main(
            [
                "clip",
                "fetch",
                "--name",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--out-dir",
                str(tmp_path / "clip"),
            ]
        )
        == 0
    )
    assert main(["train", *common, "--out", str(tmp_path / "run")]) == EXIT_ERROR
    assert "semivl text --dataset toy --clip tiny_clip_random" in capsys.readouterr().err


def test_model_summary_reports_the_frozen_teacher(repo, capsys):
    assert (
        main(
            [
                "model-summary",
                "--dataset",
                "pascal",
                "--method",
                "semivl",
                "--config-dir",
                str(repo / "config"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["by_module"]) == {"backbone", "decode_head"}
    # ViT-B/16 at crop 512: attention projections of 12 blocks + a 1025 x 768 position table.
    assert (
        summary["by_module"]["backbone"]["trainable"] == 12 * (2304 * 769 + 768 * 769) + 1025 * 768
    )
    assert summary["guidance_teacher"]["trainable"] == 0
    assert summary["guidance_teacher"]["total"] == pytest.approx(86.8e6, rel=0.01)


def test_clip_and_text_for_a_grid(tmp_path, repo, capsys):
    config = str(repo / "config")
    # The demo grid's SemiVL uses the tiny CLIP pretrained by `semivl pretrain-clip`.
    assert (
        main(
            [
                "clip",
                "fetch",
                "--grid",
                str(repo / "config" / "demo.yaml"),
                "--config-dir",
                config,
                "--out-dir",
                str(tmp_path / "clip"),
            ]
        )
        == EXIT_ERROR
    )
    assert "semivl pretrain-clip --name tiny_clip_toy" in capsys.readouterr().err
    # A grid whose SemiVL variant runs on the random tiny CLIP, which needs no pretraining.
    recipes = tmp_path / "config"
    shutil.copytree(repo / "config", recipes)
    (recipes / "recipes" / "semivl_random").mkdir()
    (recipes / "recipes" / "semivl_random" / "toy.yaml").write_text(
        "base: ../semivl/toy.yaml\nmodel: {args: {clip: tiny_clip_random}}\n"
    )
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "results_dir": "results/demo",
                "grid": {
                    "datasets": ["toy"],
                    "splits": [{"dataset": "toy", "split": "6"}],
                    "methods": ["supervised", "semivl_random"],
                    "seeds": [0],
                },
            }
        )
    )
    grid, config = str(grid), str(recipes)
    assert (
        main(
            [
                "clip",
                "fetch",
                "--grid",
                grid,
                "--config-dir",
                config,
                "--out-dir",
                str(tmp_path / "clip"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "clip").iterdir()) == [
        "tiny_clip_random.json",
        "tiny_clip_random.pt",
    ]
    assert (
        main(
            [
                "text",
                "--grid",
                grid,
                "--config-dir",
                config,
                "--clip-dir",
                str(tmp_path / "clip"),
                "--out-dir",
                str(tmp_path / "text"),
            ]
        )
        == 0
    )
    emb = torch.load(tmp_path / "text" / "tiny_clip_random" / "toy.pt", weights_only=True)
    assert emb["names"].shape == (5, 64) and emb["concepts"].shape == (15, 64)
    assert emb["definitions_source"] == "project"
