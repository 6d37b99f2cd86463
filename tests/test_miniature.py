"""The miniature's science check (slow, run in CI): the demo's recipes on the toy world, reduced
to the fewest labels and one seed, must show what makes SemiVL work in the paper.

The tiny CLIP is pretrained with the demo's recipe on captioned toy scenes; then the zero-shot
dense CLIP labels, supervised, UniMatch and SemiVL are evaluated on the toy val set with 6
labelled images (which miss half of the 16 looks). Asserted is only what held at every one of
5 seeds (`config/grids/demo_seeds.yaml`, AMD EPYC, 2 cores, 2026-12-06; final iteration, 6
labels), with margins at about half the smallest per-seed difference measured, since another
CPU moves a toy run by a few mIoU (docs/demo.md). Measured per seed (0 to 4):

- SemiVL - supervised: +20.4, +16.1, +20.0, +23.5, +20.4
- SemiVL - UniMatch: +20.5, +19.3, +18.7, +25.8, +22.6
- SemiVL - zero-shot labels (36.1): +11.7, +12.0, +11.6, +16.2, +13.4
- accuracy on the 8 looks the labels miss: supervised 0.3 to 3.4, UniMatch 0.3 to 1.5, SemiVL
  25.5 to 36.7, zero-shot 47.2

Not asserted, because they did not hold at every seed or are inconclusive over the 5 seeds'
paired interval (`docs/measured/demo_seeds_tables.md`): UniMatch > supervised (per seed -3.3 to
+1.4), anything at 48 labels, and the drop-one ablations (this check does not train them).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import REPO

from semivl.cli import main

pytestmark = pytest.mark.slow
CONFIG = REPO / "config"
METHODS = ("supervised", "unimatch", "semivl")


def _missed_mean(metrics: dict, labelled: list[str]) -> float:
    """Mean accuracy over the looks the labelled images do not show."""
    values = [
        v for k, v in metrics["per_mode_accuracy"].items() if k not in labelled and v is not None
    ]
    return float(np.mean(values))


@pytest.fixture(scope="module")
def miniature(tmp_path_factory):
    """Pretrain the tiny CLIP, evaluate it zero-shot, train and evaluate the three methods."""
    from semivl.data.prepare.toy import generate_toy

    base = tmp_path_factory.mktemp("miniature")
    config = base / "config"
    shutil.copytree(CONFIG, config)
    root = generate_toy(base / "toy", seed=0)
    splits = base / "splits"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)  # config/clip.yaml names the pretrained CLIP relative to the cwd
        try:
            common = ["--config-dir", str(config)]
            assert (
                main(
                    [
                        "splits",
                        "toy",
                        "--data-root",
                        str(root),
                        "--out-dir",
                        str(splits),
                        "--split",
                        "6",
                        *common,
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "splits",
                        "toy",
                        "--data-root",
                        str(root),
                        "--out-dir",
                        str(splits),
                        "--val",
                        *common,
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "data",
                        "captions",
                        "--pretrain",
                        "tiny_clip_toy",
                        "--out",
                        str(base / "scenes"),
                        "--no-progress",
                        *common,
                    ]
                )
                == 0
            )
            # the demo's pretraining recipe: about 4.5 minutes on two cores
            assert (
                main(
                    [
                        "pretrain-clip",
                        "--name",
                        "tiny_clip_toy",
                        "--data",
                        str(base / "scenes"),
                        "--out",
                        "resources/pretrained/tiny_clip_toy",
                        "--threads",
                        "2",
                        "--no-progress",
                        *common,
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "clip",
                        "fetch",
                        "--name",
                        "tiny_clip_toy",
                        "--out-dir",
                        str(base / "clip"),
                        *common,
                    ]
                )
                == 0
            )
            assert (
                main(
                    [
                        "text",
                        "--grid",
                        str(config / "demo.yaml"),
                        "--clip-dir",
                        str(base / "clip"),
                        "--out-dir",
                        str(base / "text"),
                        *common,
                    ]
                )
                == 0
            )
            data = [
                "--dataset",
                "toy",
                "--data-root",
                str(root),
                "--splits-dir",
                str(splits),
                "--clip-dir",
                str(base / "clip"),
                "--text-dir",
                str(base / "text"),
                "--threads",
                "2",
                "--no-progress",
                "--device",
                "cpu",
                *common,
            ]
            results = {}
            assert (
                main(
                    [
                        "evaluate",
                        "--zero-shot",
                        "--method",
                        "semivl",
                        *data,
                        "--out",
                        str(base / "zero_shot.json"),
                    ]
                )
                == 0
            )
            results["zero_shot"] = json.loads((base / "zero_shot.json").read_text())
            for method in METHODS:
                run = base / "runs" / method
                args = [*data, "--split", "6", "--method", method, "--seed", "0"]
                assert main(["train", *args, "--out", str(run)]) == 0
                assert main(["evaluate", *args, "--run-dir", str(run)]) == 0
                results[method] = json.loads((run / "metrics.json").read_text())
        finally:
            torch.set_num_threads(threads)
    print({name: round(r["miou"], 1) for name, r in results.items()})
    return results


def test_the_pretrained_clip_segments_zero_shot_well_above_chance(miniature):
    zero_shot = miniature["zero_shot"]
    assert zero_shot["text"] == "concept_max" and zero_shot["class_definitions"] == "project"
    # measured: 36.1 mIoU; every pixel background gives about 16
    assert zero_shot["miou"] > 25, zero_shot["per_class_iou"]
    assert zero_shot["per_class_iou"]["background"] > 50
    assert all(np.isfinite(v) for v in zero_shot["per_class_iou"].values())


def test_the_prior_knows_the_looks_the_labels_miss(miniature):
    labelled = miniature["semivl"]["labelled_modes"]
    assert 4 <= len(labelled) <= 12  # 6 labels show some of the 16 looks, not all
    supervised = _missed_mean(miniature["supervised"], labelled)
    # measured over 5 seeds: supervised 0.3 to 3.4, SemiVL 25.5 to 36.7, zero-shot 47.2
    assert _missed_mean(miniature["zero_shot"], labelled) > supervised + 20
    assert _missed_mean(miniature["semivl"], labelled) > supervised + 12


def test_semivl_beats_both_baselines_at_the_fewest_labels(miniature):
    semivl = miniature["semivl"]["miou"]
    # smallest per-seed margins over 5 seeds: +16.1 over supervised, +18.7 over UniMatch
    assert semivl > miniature["supervised"]["miou"] + 8
    assert semivl > miniature["unimatch"]["miou"] + 8


def test_semivl_learns_from_its_labels_beyond_its_clips_zero_shot_labels(miniature):
    # smallest per-seed margin over 5 seeds: +11.6
    assert miniature["semivl"]["miou"] > miniature["zero_shot"]["miou"] + 5
