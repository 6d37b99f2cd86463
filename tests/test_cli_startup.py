"""The CLI answers at once: bookkeeping steps never import torch, and `semivl evaluate` reuses
the trainer's validation of the final weights instead of repeating it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

from semivl.cli import main

HEAVY = ("torch", "torchvision", "open_clip", "timm")


def _common(toy_root, splits, config_dir, method="supervised"):
    return [
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
        "--no-progress",
        "--device",
        "cpu",
    ]


def test_evaluate_reuses_the_final_validation_only_when_it_is_the_same(
    toy_root, config_dir, tmp_path, capsys
):
    splits, run = toy_root.parent / "splits", tmp_path / "run"
    common = _common(toy_root, splits, config_dir)
    assert main(["train", *common, "--out", str(run)]) == 0
    record = json.loads((run / "train_summary.json").read_text())["final_eval"]
    assert record["processes"] == 1 and record["iter"] == 12
    capsys.readouterr()
    assert main(["evaluate", *common, "--run-dir", str(run)]) == 0
    assert "the trainer's validation of these final weights" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                *common,
                "--run-dir",
                str(run),
                "--recompute",
                "--out",
                str(tmp_path / "fresh.json"),
            ]
        )
        == 0
    )
    assert "evaluating" in capsys.readouterr().out
    reused = json.loads((run / "metrics.json").read_text())
    fresh = json.loads((tmp_path / "fresh.json").read_text())
    # Bit for bit: the reused record is what a fresh evaluation of model.pt computes.
    assert (
        reused == fresh
        and (run / "metrics.json").read_bytes() == (tmp_path / "fresh.json").read_bytes()
    )

    # A changed val split, other weights or another protocol: evaluated again.
    other = tmp_path / "splits"
    shutil.copytree(splits, other)
    lines = (other / "val.txt").read_text().splitlines()
    (other / "val.txt").write_text("\n".join(lines[:-1]) + "\n")
    assert (
        main(
            [
                "evaluate",
                *_common(toy_root, other, config_dir),
                "--run-dir",
                str(run),
                "--out",
                str(tmp_path / "other.json"),
            ]
        )
        == 0
    )
    assert "val.txt changed since training" in capsys.readouterr().out
    assert json.loads((tmp_path / "other.json").read_text())["num_val_images"] == len(lines) - 1
    shutil.copy(run / "best.pt", tmp_path / "best.pt")
    assert (
        main(
            [
                "evaluate",
                *common,
                "--run-dir",
                str(run),
                "--weights",
                str(tmp_path / "best.pt"),
                "--out",
                str(tmp_path / "best.json"),
            ]
        )
        == 0
    )
    assert "is not the file the trainer validated" in capsys.readouterr().out
    recipe = config_dir / "recipes" / "supervised" / "toy.yaml"
    recipe.write_text(recipe.read_text().replace("crop_size: 48", "crop_size: 40"))
    assert (
        main(["evaluate", *common, "--run-dir", str(run), "--out", str(tmp_path / "proto.json")])
        == 0
    )
    assert "evaluation protocol changed" in capsys.readouterr().out


def test_bookkeeping_steps_do_not_import_torch(toy_root, config_dir, tmp_path, repo):
    """`semivl --help`, splits, data check, aggregate, table, plot and a reused evaluation run
    without torch (each would otherwise pay seconds of imports before doing anything)."""
    splits, run = toy_root.parent / "splits", tmp_path / "run"
    common = _common(toy_root, splits, config_dir)
    assert main(["train", *common, "--out", str(run)]) == 0
    out = tmp_path / "out"
    steps = [
        ["--help"],
        ["splits", "--help"],
        [
            "splits",
            "toy",
            "--split",
            "6",
            "--data-root",
            str(toy_root),
            "--out-dir",
            str(out / "splits"),
            "--config-dir",
            str(config_dir),
            "--source",
            "generated",
        ],
        [
            "data",
            "check",
            "toy",
            "--data-root",
            str(toy_root),
            "--config-dir",
            str(config_dir),
            "--workers",
            "1",
            "--no-progress",
        ],
        ["evaluate", *common, "--run-dir", str(run)],
        ["aggregate", "--out", str(out / "metrics.csv"), str(run / "metrics.json")],
        [
            "table",
            "--metrics",
            str(out / "metrics.csv"),
            "--out",
            str(out / "tables.md"),
            "--published",
            str(repo / "config" / "published_results.csv"),
            "--config-dir",
            str(config_dir),
        ],
        [
            "plot",
            "overview",
            "--metrics",
            str(out / "metrics.csv"),
            "--out-dir",
            str(out / "figures"),
        ],
    ]
    script = textwrap.dedent(f"""
        import sys
        from semivl.cli import main
        codes = []
        for argv in {steps!r}:
            try:
                codes.append(main(argv))
            except SystemExit as exit_:
                codes.append(exit_.code)
        print(codes)
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    codes, heavy = proc.stdout.strip().splitlines()[-2:]
    # The fixture is 24 + 6 images where the toy config promises 240 + 60: the check reads
    # every mask and then fails, as it should (exit code 2).
    expected = [2 if argv[:2] == ["data", "check"] else 0 for argv in steps]
    assert codes == str(expected), proc.stdout + proc.stderr
    assert "train: 24 pairs, expected 240" in proc.stderr
    assert heavy == "[]", f"a bookkeeping step imported {heavy}"
    assert (out / "tables.md").is_file() and (out / "figures" / "miou_vs_labels.png").is_file()
