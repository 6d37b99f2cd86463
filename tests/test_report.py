"""Aggregation, tables.md (golden file), figures (byte-stable) over fabricated run folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from semivl.report.aggregate import collect_curves, collect_grid, collect_per_class
from semivl.report.figures import (
    plot_ablation,
    plot_miou_vs_labels,
    plot_per_class,
    plot_training_curves,
)
from semivl.report.published import load_published
from semivl.report.qualitative import plot_qualitative
from semivl.report.tables import format_cell, format_delta, render_tables

GOLDEN = Path(__file__).parent / "golden" / "tables.md"
CLASSES = ["background", "cat", "dog", "bird", "fish"]
METHODS = ["supervised", "unimatch", "semivl", "semivl_no_definitions", "semivl_no_spatial_ft"]
# The component ablation's other rows (a second block of the grid, same cells and seeds).
COMPONENT_METHODS = [
    "unimatch_vit",
    "unimatch_clip_init",
    "unimatch_clip_sft",
    "semivl_no_guidance",
]
# (split, method) -> mIoU of seeds 0 and 1; a seed left out has no metrics.json.
MIOU = {
    ("6", "supervised"): (40.0, 42.0),
    ("6", "unimatch"): (45.0, 47.0),
    ("6", "semivl"): (50.0, 52.0),
    ("6", "semivl_no_definitions"): (48.0, 49.0),
    ("6", "semivl_no_spatial_ft"): (44.0, 46.0),
    ("48", "supervised"): (60.0, 61.0),
    ("48", "unimatch"): (64.0,),
    ("48", "semivl"): (70.0, 71.0),
    ("48", "semivl_no_definitions"): (69.0, 69.5),
    # component ablation: 48 has a negative gain (spatial fine-tuning, whose seed 1 failed)
    # and a row that never ran (the language-guided decoder)
    ("6", "unimatch_vit"): (30.0, 32.0),
    ("6", "unimatch_clip_init"): (38.0, 39.0),
    ("6", "unimatch_clip_sft"): (42.0, 44.0),
    ("6", "semivl_no_guidance"): (47.0, 48.0),
    ("48", "unimatch_vit"): (55.0, 56.0),
    ("48", "unimatch_clip_init"): (62.0, 63.0),
    ("48", "unimatch_clip_sft"): (61.0,),
}
# Methods whose runs read this project's class definitions (the toy has no upstream ones).
WITH_DEFINITIONS = {"semivl", "semivl_no_spatial_ft"}
PUBLISHED = """dataset,split,labeled_images,method,backbone,miou,protocol,source,\
from_the_authors_own_repo
toy,6,6,semivl,CLIP ViT-B/16,55.0,best-on-val,Paper table 1,yes
toy,48,48,semivl,CLIP ViT-B/16,72.5,best-on-val,Paper table 1,yes
toy,6,6,unimatch,ResNet-101 DeepLabV3+,44.0,best-on-val,UniMatch README,no
toy,6,6,unimatch_v2,DINOv2-B DPT,99.0,best-EMA-on-val,UniMatch-V2 README,yes
"""


def _write_run(run: Path, split: str, method: str, seed: int, miou: float) -> None:
    run.mkdir(parents=True)
    n = int(split)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "dataset": "toy",
                "split": split,
                "num_labeled": n,
                "method": method,
                "seed": seed,
                "miou": miou,
                "miou_best": miou + 1.0,
                "best_iter": 20,
                "final_iter": 30,
                "class_definitions": "project" if method in WITH_DEFINITIONS else None,
                "code_commit": "0123456789ab",
                "per_class_iou": {c: miou + i for i, c in enumerate(CLASSES)},
            }
        )
    )
    (run / "provenance.json").write_text(
        json.dumps(
            {
                "code": {"commit": "0123456789abcdef", "dirty": False},
                "gpu_hours": 0.5 + seed,
                "wall_hours": 0.5 + seed,
                "environment": {"gpus": ["NVIDIA H100"]},
                "inputs": {
                    f"config/recipes/{method}/toy.yaml": "ab" * 32,
                    "data/toy/prepared.json": "cd" * 32,
                },
            }
        )
    )
    lines = ["iter,epoch,lr,loss,loss_x,seconds"]
    lines += [
        f"{i},0,{0.01 * (1 - i / 30):.6f},{2.0 / i:.6f},{1.5 / i:.6f},{i * 0.1:.1f}"
        for i in range(10, 31, 10)
    ]
    (run / "log.csv").write_text("\n".join(lines) + "\n")
    (run / "train_summary.json").write_text(
        json.dumps({"history": [{"iter": 15, "miou": miou - 2}, {"iter": 30, "miou": miou}]})
    )


@pytest.fixture()
def grid(tmp_path, repo):
    """A fabricated grid of 2 splits x 2 seeds x 5 methods, and a block of the component
    ablation's 4 other methods: most runs evaluated, two failed (unimatch and the CLIP ViT with
    spatial fine-tuning at 48, seed 1), two never started (no-spatial-FT and no-guidance at
    48, both seeds)."""
    from semivl.grid import load_grid

    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        yaml.safe_dump(
            {
                "results_dir": str(tmp_path / "results"),
                "config_dir": str(repo / "config"),
                "grid": {
                    "datasets": ["toy"],
                    "blocks": [
                        {
                            "name": name,
                            "splits": [{"dataset": "toy", "split": s} for s in ("6", "48")],
                            "methods": methods,
                            "seeds": [0, 1],
                        }
                        for name, methods in (("main", METHODS), ("components", COMPONENT_METHODS))
                    ],
                },
            }
        )
    )
    grid = load_grid(grid_file)
    for (split, method), values in MIOU.items():
        for seed, miou in enumerate(values):
            _write_run(grid.run_dir("toy", split, method, seed), split, method, seed, miou)
    failed = grid.run_dir("toy", "48", "unimatch", 1)
    failed.mkdir(parents=True)
    (failed / "attempts.jsonl").write_text(
        json.dumps({"outcome": "error", "wall_s": 3.0, "gpus": 1, "gpu_hours": 0.001}) + "\n"
    )
    timed_out = grid.run_dir("toy", "48", "unimatch_clip_sft", 1)
    timed_out.mkdir(parents=True)
    (timed_out / "attempts.jsonl").write_text(
        "".join(
            json.dumps({"outcome": "timeout", "wall_s": 9.0, "gpus": 1, "gpu_hours": 0.0025}) + "\n"
            for _ in range(2)
        )
    )
    return grid


@pytest.fixture()
def published(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text(PUBLISHED)
    return load_published(path)


def _row(text: str, start: str, section: str | None = None) -> list[str]:
    if section:
        text = text[text.index(section) :]
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [c.strip() for c in line.strip("|").split("|")[1:]]


def test_format_cell_and_delta():
    assert format_cell(pd.Series([40.0, 42.0])) == "41.0 ± 1.4 (2)"
    assert format_cell(pd.Series([40.0])) == "40.0 (1)"
    assert format_cell(pd.Series([40.0, None]), pd.Series(["ok", "failed"])) == (
        "40.0 (1; 1 failed)"
    )
    assert format_delta(-1.25) == "\u22121.2" and format_delta(0.04) == "+0.0"


def test_aggregation_gives_the_expected_cells_and_deltas(grid, published):
    frame = collect_grid(grid, allow_incomplete=True)
    assert len(frame) == 36
    assert frame["status"].value_counts().to_dict() == {"ok": 30, "not run": 4, "failed": 2}
    ok = frame[frame["status"] == "ok"]
    assert set(ok["hours"]) == {0.5, 1.5} and set(ok["device"]) == {"gpu"}
    assert set(ok["recipe_sha"]) == {"ab" * 6} and set(ok["data_sha"]) == {"cd" * 6}
    text = render_tables(frame, "Demo", published=published, releases={"toy": "toy v1"})
    final = "### mIoU at the final iteration"
    assert _row(text, "| SemiVL †", final) == ["51.0 ± 1.4 (2)", "70.5 ± 0.7 (2)"]
    assert _row(text, "| ↳ published", "| SemiVL †") == ["55.0", "72.5"]  # after SemiVL's row
    assert _row(text, "| ↳ Δ to published", "| SemiVL †") == ["\u22124.0", "\u22122.0"]
    assert _row(text, "| ↳ Δ to published", "| UniMatch") == ["+2.0", "–"]
    assert _row(text, "| UniMatch", final) == ["46.0 ± 1.4 (2)", "64.0 (1; 1 failed)"]
    best = "### mIoU best on val"
    assert _row(text, "| SemiVL †", best) == ["52.0 ± 1.4 (2)", "71.5 ± 0.7 (2)"]
    best_semivl = text[text.index(best) :].index("| SemiVL †") + text.index(best)
    assert _row(text[best_semivl:], "| ↳ Δ to published") == ["\u22123.0", "\u22121.0"]
    ablation = "### Ablation"
    assert _row(text, "| SemiVL w/o class definitions", ablation) == [
        "48.5 ± 0.7 (2); Δ \u22122.5",
        "69.2 ± 0.4 (2); Δ \u22121.2",
    ]
    assert _row(text, "| SemiVL w/o spatial fine-tuning", ablation) == [
        "45.0 ± 1.4 (2); Δ \u22126.0",
        "2 not run",
    ]
    components = "### Component ablation"
    assert _row(text, "| + spatial fine-tuning", components) == [
        "43.0 ± 1.4 (2)",
        "+4.5",
        "61.0 (1; 1 failed)",
        "\u22121.5",
    ]  # 61.0 − 62.5
    assert _row(text, "| + language-guided decoder", components) == [
        "47.5 ± 0.7 (2)",
        "+4.5",
        "2 not run",
        "–",
    ]
    assert _row(text, "| + dense CLIP guidance", components) == [
        "48.5 ± 0.7 (2)",
        "+1.0",
        "69.2 ± 0.4 (2)",
        "–",
    ]  # the row above has no result
    main = text[text.index(final) : text.index("### mIoU best on val")]
    assert "w/o" not in main and "ViT" not in main  # the variants have their own tables
    cost = "### Training cost"
    assert _row(text, "| UniMatch", cost) == [
        "2.0 GPU-h (2)",
        "0.50 GPU-h (1); 1 failed",
        "2.5 GPU-h (3); 1 failed",
    ]
    assert "- toy 48 UniMatch seed 1: failed (training error (1 attempts))" in text
    assert "- toy 48 SemiVL w/o spatial fine-tuning seeds 0, 1: not run" in text
    assert (
        "- toy 48 UniMatch w/ CLIP ViT (spatial fine-tuning) seed 1: failed (training "
        "timeout (2 attempts))"
    ) in text
    assert "[1] UniMatch README; ResNet-101 DeepLabV3+; best-on-val; quoted by others." in text
    assert "[2] Paper table 1; CLIP ViT-B/16; best-on-val; from the authors' own repository." in (
        text
    )
    assert "unimatch_v2" not in text and "99.0" not in text  # not a method of this grid
    assert "- Data toy: toy v1; `prepared.json` sha256 `cdcdcdcdcdcd` (30 runs)." in text
    assert "commit `0123456789ab` (30 runs)" in text


ZERO_SHOT = {
    "toy": {
        "dataset": "toy",
        "method": "zero_shot_clip",
        "clip": "tiny_clip_toy",
        "text": "concept_max",
        "miou": 31.26,
        "per_class_iou": {},
    }
}


def test_zero_shot_row_heads_both_result_tables(grid, published):
    frame = collect_grid(grid, allow_incomplete=True)
    text = render_tables(frame, "Demo", published=published, zero_shot=ZERO_SHOT)
    for section in ("### mIoU at the final iteration", "### mIoU best on val"):
        part = text[text.index(section) :]
        rows = [line for line in part.splitlines() if line.startswith("| ")]
        assert rows[1] == "| Zero-shot dense CLIP (no labels) ‡ | 31.3 | 31.3 |"  # first row
    assert "### Ablation" in text and text.count("Zero-shot dense CLIP (no labels)") == 2
    assert "‡ The frozen CLIP `tiny_clip_toy`" in text and "taking the max over a class" in text
    assert "‡" not in render_tables(frame, "Demo", published=published)


def test_tables_match_the_golden_file(grid, published):
    frame = collect_grid(grid, allow_incomplete=True)
    text = (
        render_tables(
            frame,
            "Demo",
            published=published,
            releases={"toy": "toy v1"},
            grid_note="`grid.yaml` (sha256 `000000000000`)",
            zero_shot=ZERO_SHOT,
        )
        + "\n"
    )
    if os.environ.get("SEMIVL_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        "tables.md rendering changed; if intended, rerun with SEMIVL_UPDATE_GOLDEN=1 and "
        "review the diff of tests/golden/tables.md"
    )


def test_tables_html_is_a_self_contained_page():
    from semivl.report.html import render_html

    page = render_html(GOLDEN.read_text(), "Demo")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    assert "<th>method</th>" in page and "<td>SemiVL †</td>" in page
    assert "<h3>Ablation: SemiVL without each component</h3>" in page
    assert page == render_html(GOLDEN.read_text(), "Demo")


def test_long_csvs(grid):
    paths = [grid.run_dir(*run) / "metrics.json" for run in grid.runs()]
    per_class = collect_per_class(paths)
    assert len(per_class) == 30 * 5 and set(per_class["class"]) == set(CLASSES)
    curves = collect_curves(paths)
    assert set(curves["series"]) == {"lr", "loss", "loss_x", "val_miou"}  # no epoch/seconds
    one = curves[
        (curves["method"] == "semivl")
        & (curves["split"] == "6")
        & (curves["seed"] == 0)
        & (curves["series"] == "val_miou")
    ]
    assert list(one["iter"]) == [15, 30] and list(one["value"]) == [48.0, 50.0]


def _render_all(grid, published, out: Path, repo: Path) -> list[Path]:
    from semivl.config import load_dataset_config

    frame = collect_grid(grid, allow_incomplete=True)
    paths = [grid.run_dir(*run) / "metrics.json" for run in grid.runs()]
    written = plot_miou_vs_labels(frame, out / "miou_vs_labels", published)
    written += plot_ablation(frame, "toy", out / "ablation")
    written += plot_per_class(collect_per_class(paths), "toy", out / "per_class_iou", CLASSES)
    written += plot_training_curves(collect_curves(paths), "toy", out / "training_curves")
    cfg = load_dataset_config("toy", repo / "config")
    data_root, val = _fake_predictions(out.parent / "pred", cfg)
    written += plot_qualitative(
        cfg,
        data_root,
        val,
        out.parent / "pred" / "predictions",
        out / "qualitative",
        ["supervised", "semivl"],
    )
    return written


def _fake_predictions(base: Path, cfg) -> tuple[Path, Path]:
    """Two val images with masks, and two methods' predicted masks for them."""
    from semivl.data.palette import dataset_palette

    if (base / "val.txt").is_file():
        return base / "data", base / "val.txt"
    rng = np.random.default_rng(0)
    lines = []
    for name in ("a", "b"):
        for folder in ("data/JPEGImages", "data/SegmentationClass"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            base / "data" / "JPEGImages" / f"{name}.jpg"
        )
        for target in [
            base / "data" / "SegmentationClass" / f"{name}.png",
            *[base / "predictions" / m / "masks" / f"{name}.png" for m in ("supervised", "semivl")],
        ]:
            target.parent.mkdir(parents=True, exist_ok=True)
            mask = Image.fromarray(rng.integers(0, 5, (24, 32), dtype=np.uint8), mode="P")
            mask.putpalette(dataset_palette(cfg))
            mask.save(target)
        lines.append(f"JPEGImages/{name}.jpg SegmentationClass/{name}.png")
    (base / "val.txt").write_text("\n".join(lines) + "\n")
    return base / "data", base / "val.txt"


def test_figures_are_written_and_byte_stable(grid, published, tmp_path, repo):
    first = _render_all(grid, published, tmp_path / "a" / "figures", repo)
    second = _render_all(grid, published, tmp_path / "a" / "again", repo)
    names = sorted(p.name for p in first)
    assert names == sorted(
        f"{n}.{e}"
        for n in ("miou_vs_labels", "ablation", "per_class_iou", "training_curves", "qualitative")
        for e in ("png", "svg")
    )
    for a, b in zip(first, second, strict=True):
        data = a.read_bytes()
        assert len(data) > 5000, a
        assert data[:8] == b"\x89PNG\r\n\x1a\n" if a.suffix == ".png" else b"<svg" in data[:800]
        assert data == b.read_bytes(), f"{a.name} differs between two renders"
    svg = (tmp_path / "a" / "figures" / "miou_vs_labels.svg").read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    assert not list((tmp_path / "a" / "figures").glob(".*tmp"))  # nothing half-written


def test_figures_without_data_say_so(tmp_path):
    empty = pd.DataFrame(columns=["dataset", "split", "num_labeled", "method", "seed", "miou"])
    for out in plot_ablation(empty, "toy", tmp_path / "ablation"):
        assert out.stat().st_size > 1000
    # Text drawn as paths keeps its string in a comment of the SVG.
    assert "toy: no ablation runs in this grid" in (tmp_path / "ablation.svg").read_text()


def test_render_without_published_or_provenance(tmp_path):
    frame = pd.DataFrame(
        [
            {
                "dataset": "toy",
                "split": "6",
                "num_labeled": 6,
                "method": "supervised",
                "seed": s,
                "miou": 40.0 + s,
                "miou_best": 41.0 + s,
            }
            for s in (0, 1)
        ]
    )
    text = render_tables(frame)
    assert _row(text, "| Supervised") == ["40.5 ± 0.7 (2)"]
    assert "↳ published" not in text and "Code: commit not recorded" in text
    assert "No ablation runs in this grid" in text


def test_incomplete_grid_stops_without_allow_incomplete(grid):
    with pytest.raises(FileNotFoundError, match="6 run"):
        collect_grid(grid)


def test_per_class_heatmap_of_many_classes_grows_downwards(tmp_path):
    classes = [f"class{i:03d}" for i in range(150)]
    frame = pd.DataFrame(
        [
            {
                "dataset": "ade",
                "split": "8",
                "num_labeled": 8,
                "method": m,
                "seed": 0,
                "class": c,
                "iou": float(i % 90),
            }
            for m in ("supervised", "semivl")
            for i, c in enumerate(classes)
        ]
    )
    png, _ = plot_per_class(frame, "ade", tmp_path / "per_class", classes)
    width, height = Image.open(png).size
    assert height > 3 * width


def test_findings_pair_seeds_and_say_holds_does_not_hold_or_inconclusive():
    from semivl.report.findings import paper_findings
    from semivl.report.paired import interval

    rows = []
    for split, n in (("6", 6), ("48", 48)):
        for method, values in {
            "supervised": (30.0, 32.0, 31.0),
            "unimatch": (34.0, 35.0, 36.0),
            "semivl": (35.0, 37.0, 35.5) if split == "6" else (60.0, 61.0, 62.0),
            "semivl_no_definitions": (40.0, 41.0, 42.0),
        }.items():
            rows += [
                {
                    "dataset": "toy",
                    "split": split,
                    "num_labeled": n,
                    "method": method,
                    "seed": seed,
                    "miou": v,
                }
                for seed, v in enumerate(values)
            ]
    lines = paper_findings(pd.DataFrame(rows), {"miou": 35.5})
    text = "\n".join(lines)
    # differences by seed (1, 2, -0.5): mean +0.8, sd 1.26, t(0.975, 2) = 4.303 -> [-2.3, +4.0]
    by_hand = interval([1.0, 2.0, -0.5])
    assert round(by_hand.low, 2) == round(0.8333 - 4.303 * 1.2583 / 3**0.5, 2)
    assert "- SemiVL > UniMatch at 6 labels: inconclusive (Δ +0.8 [−2.3, +4.0], 3 seeds)" in text
    # (4, 3, 5): [+1.5, +6.5] lies above zero
    assert "- UniMatch > Supervised (labelled only) at 6 labels: holds (Δ +4.0 [+1.5, +6.5]" in text
    assert "- SemiVL > UniMatch at 48 labels: holds (Δ +26.0 [+26.0, +26.0], 3 seeds)" in text
    # SemiVL - zero-shot: (-0.5, +1.5, 0.0) at 6 labels contains zero
    assert "zero-shot dense CLIP labels at every split: inconclusive (6 labels Δ +0.3" in text
    # (-5, -4, -6.5): the whole interval is below zero
    assert "- SemiVL > SemiVL w/o class definitions at 6 labels: **does not hold** (Δ −5.2" in text
    assert "w/o spatial" not in text  # not in the grid: not claimed
    assert "shrinks as labels grow: **does not hold** (gain at 6 labels Δ +4.8" in text
    assert paper_findings(pd.DataFrame(rows).query("method != 'unimatch'")) == []
    # one seed pairs up: no interval, never "holds"
    one = pd.DataFrame(rows).query("seed == 0")
    assert "- SemiVL > UniMatch at 48 labels: inconclusive (Δ +26.0, 1 seed)" in "\n".join(
        paper_findings(one)
    )


def test_claim_findings_check_its_own_claims_where_the_grid_runs_it():
    """UniMatch V2 above its labelled-only baseline and above SemiVL, each at the fewest
    labels where both of the pair ran; without the trio the section still has them."""
    from semivl.report.findings import claim_findings, paper_findings

    rows = []
    values = {
        ("6", "supervised_v2"): (20.0, 21.0),
        ("6", "unimatch_v2"): (25.0, 26.0),
        ("48", "supervised_v2"): (30.0, 31.0),
        ("48", "unimatch_v2"): (30.5, 32.5),
        ("48", "semivl"): (40.0, 41.0),
    }
    for (split, method), pair in values.items():
        rows += [
            {
                "dataset": "toy",
                "split": split,
                "num_labeled": int(split),
                "method": method,
                "seed": seed,
                "miou": v,
            }
            for seed, v in enumerate(pair)
        ]
    lines = claim_findings(pd.DataFrame(rows))
    assert lines == [
        "UniMatch V2 > Supervised V2 (labelled only) at 6 labels: holds (Δ +5.0 [+5.0, +5.0], "
        "2 seeds) (UniMatch V2's claim)",
        "UniMatch V2 > SemiVL at 48 labels: **does not hold** (Δ −9.0 [−15.4, −2.6], 2 seeds) "
        "(UniMatch V2's claim)",
    ]
    text = "\n".join(paper_findings(pd.DataFrame(rows)))
    assert "### Does this reproduce" in text and "- UniMatch V2 > SemiVL at 48 labels" in text
    no_v2 = pd.DataFrame([r for r in rows if r["method"] != "unimatch_v2"])
    assert claim_findings(no_v2) == [] and paper_findings(no_v2) == []


def test_project_definitions_are_an_opt_in_row_marked_with_a_dagger():
    """COCO/ADE20K: SemiVL guides with the names (upstream); the project's definitions are
    their own method, marked †, and the no-definitions ablation is not claimed there."""
    from semivl.report.findings import paper_findings
    from semivl.report.tables import render_tables

    rows = []
    methods = {
        "supervised": ((20.0, 21.0), None),
        "unimatch": ((25.0, 26.0), None),
        "semivl": ((30.0, 31.0), None),
        "semivl_project_definitions": ((34.0, 35.0), "project"),
        "semivl_no_definitions": ((30.0, 31.0), None),
    }
    for method, (values, definitions) in methods.items():
        rows += [
            {
                "dataset": "coco",
                "split": "1_512",
                "num_labeled": 232,
                "method": method,
                "seed": seed,
                "miou": v,
                "miou_best": v,
                "class_definitions": definitions,
            }
            for seed, v in enumerate(values)
        ]
    frame = pd.DataFrame(rows)
    text = render_tables(frame, "Results")
    assert "| SemiVL | 30.5" in text
    assert "| SemiVL with this project's class definitions † | 34.5" in text
    assert "; Δ +4.0" in text and "what definitions add is the row with this project's" in text
    findings = "\n".join(paper_findings(frame))
    assert (
        "SemiVL > SemiVL w/o class definitions at 232 labels: not measured (SemiVL "
        "guides with the plain class names here" in findings
    )
    assert (
        "SemiVL with this project's class definitions > SemiVL at 232 labels: holds "
        "(Δ +4.0" in findings
    )


def test_cells_trained_on_fewer_processes_than_the_recipe_are_marked(grid):
    """From each run's config.yaml: fewer processes than `resources.gpus` (gradient
    accumulation) puts § on the cell and the batch plan in the footnote."""

    def config(run: Path, processes: int, steps: int) -> None:
        (run / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    "recipe": {"resources": {"gpus": 4}, "train": {"batch_size": 2}},
                    "batch": {
                        "processes": processes,
                        "images_per_process": 2,
                        "accumulation_steps": steps,
                        "global_batch_size": 8,
                    },
                }
            )
        )

    config(grid.run_dir("toy", "6", "semivl", 0), 1, 4)  # one GPU, accumulating
    config(grid.run_dir("toy", "6", "semivl", 1), 4, 1)  # upstream's layout
    config(grid.run_dir("toy", "48", "semivl", 0), 4, 1)
    config(grid.run_dir("toy", "48", "semivl", 1), 4, 1)
    text = render_tables(collect_grid(grid, allow_incomplete=True), "Demo")
    assert _row(text, "| SemiVL †", "### mIoU at the final")[:2] == [
        "51.0 ± 1.4 (2) §",
        "70.5 ± 0.7 (2)",
    ]
    assert _row(text, "| SemiVL †", "### mIoU best on val")[0].endswith(" §")
    assert _row(text, "| UniMatch", "### mIoU at the final")[0] == "46.0 ± 1.4 (2)"
    note = next(line for line in text.splitlines() if line.startswith("§ "))
    assert (
        "SemiVL (6): 1 process × 2 images × 4 accumulation steps = 8 images per step; "
        "the recipe's layout is 4 GPUs × 2 images" in note
    )
    assert "batch norm" in note and "48" not in note
    # runs without config.yaml (older versions) are not marked
    assert "§" not in render_tables(
        collect_grid(grid, allow_incomplete=True).drop(columns=["processes"]), "Demo"
    )
