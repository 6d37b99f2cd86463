"""The report over a grid of blocks on the four benchmark datasets: the component ablation
(rows, order, gains, missing rows), cells with different methods, a dataset without finished
runs, the cost totals, and the overview figure (a panel per dataset)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
import pytest

from semivl.report.ablation import ablation_table, component_table
from semivl.report.aggregate import write_metrics_csv
from semivl.report.cost import cost_table, format_hours, overall_cost_table
from semivl.report.figures import (
    miou_vs_labels_figure,
    plot_ablation,
    plot_miou_vs_labels,
    plot_per_class,
)
from semivl.report.findings import paper_findings
from semivl.report.tables import missing_runs, render_tables

GOLDEN = Path(__file__).parent / "golden" / "tables_datasets.md"
# Split names and label counts of config/datasets/*.yaml.
SPLITS = {
    "pascal": {"92": 92, "183": 183, "366": 366, "732": 732, "1464": 1464},
    "coco": {"1_512": 232, "1_256": 463, "1_128": 925, "1_64": 1849, "1_32": 3697},
    "ade20k": {"1_128": 158, "1_64": 316, "1_32": 632, "1_16": 1263, "1_8": 2526},
    "cityscapes": {"1_30": 100, "1_16": 186, "1_8": 372, "1_4": 744, "1_2": 1488},
}
MAIN = ["supervised", "unimatch", "semivl"]
SEEDS = (0, 1, 2)
OFFSETS = (-0.5, 0.0, 0.5)  # per seed: every cell's std is 0.5
# The VOC ablation block (92 and 1464 only): mean mIoU per (method, split); None: the cell's
# three runs failed. semivl's own cells come from the main block (80 + index of the split).
ABLATION = {
    "unimatch_vit": {"92": 70.0, "1464": 78.0},
    "unimatch_clip_init": {"92": 74.0, "1464": 81.0},
    "unimatch_clip_sft": {"92": 76.0, "1464": None},
    "semivl_no_guidance": {"92": 77.5, "1464": 83.0},
    "semivl_no_definitions": {"92": 79.0, "1464": 84.5},
    "semivl_no_spatial_ft": {"92": 75.0, "1464": 82.0},  # 1464 seed 2: not run
}
HOURS = {"supervised": 1.0, "unimatch": 2.0, "semivl": 3.0}  # pascal; ablations 2.5


def _run(dataset, split, method, seed, miou, hours, definitions=None, status="ok", reason=""):
    ok = status == "ok"
    return {
        "dataset": dataset,
        "split": split,
        "num_labeled": SPLITS[dataset][split],
        "method": method,
        "seed": seed,
        "miou": miou if ok else math.nan,
        "miou_best": miou + 1.0 if ok else math.nan,
        "best_iter": 10 if ok else math.nan,
        "final_iter": 20 if ok else math.nan,
        "class_definitions": definitions if ok else None,
        "hours": hours if ok else math.nan,
        "device": "gpu" if ok else None,
        "status": status,
        "reason": reason,
    }


def four_datasets() -> pd.DataFrame:
    """Pascal with the ablations on 92 and 1464 only; COCO complete (SemiVL on plain names);
    ADE20K without a finished run (3 failed, 42 not run); Cityscapes with one failed run."""
    rows = []
    for i, split in enumerate(SPLITS["pascal"]):
        base = {"supervised": 60.0 + 2 * i, "unimatch": 70.0 + 2 * i, "semivl": 80.0 + i}
        for method in MAIN:
            rows += [
                _run(
                    "pascal",
                    split,
                    method,
                    seed,
                    base[method] + off,
                    HOURS[method],
                    "upstream" if method == "semivl" else None,
                )
                for seed, off in zip(SEEDS, OFFSETS, strict=True)
            ]
    for method, means in ABLATION.items():
        for split, mean in means.items():
            for seed, off in zip(SEEDS, OFFSETS, strict=True):
                if mean is None:
                    rows.append(
                        _run(
                            "pascal",
                            split,
                            method,
                            seed,
                            0.0,
                            0.0,
                            status="failed",
                            reason="training error (1 attempts)",
                        )
                    )
                elif method == "semivl_no_spatial_ft" and split == "1464" and seed == 2:
                    rows.append(_run("pascal", split, method, seed, 0.0, 0.0, status="not run"))
                else:
                    rows.append(
                        _run(
                            "pascal",
                            split,
                            method,
                            seed,
                            mean + off,
                            2.5,
                            "upstream" if method == "semivl_no_spatial_ft" else None,
                        )
                    )
    for i, split in enumerate(SPLITS["coco"]):
        for j, method in enumerate(MAIN):
            rows += [
                _run("coco", split, method, seed, 30.0 + 10 * j + i + off, 4.0)
                for seed, off in zip(SEEDS, OFFSETS, strict=True)
            ]
    for split in SPLITS["ade20k"]:
        for method in MAIN:
            for seed in SEEDS:
                failed = (split, method) == ("1_128", "semivl")
                rows.append(
                    _run(
                        "ade20k",
                        split,
                        method,
                        seed,
                        0.0,
                        0.0,
                        status="failed" if failed else "not run",
                        reason="training timeout (1 attempts)" if failed else "",
                    )
                )
    for i, split in enumerate(SPLITS["cityscapes"]):
        for j, method in enumerate(MAIN):
            for seed, off in zip(SEEDS, OFFSETS, strict=True):
                failed = (split, method, seed) == ("1_2", "unimatch", 2)
                rows.append(
                    _run(
                        "cityscapes",
                        split,
                        method,
                        seed,
                        65.0 + 5 * j + i + off,
                        5.0,
                        status="failed" if failed else "ok",
                        reason="evaluation" if failed else "",
                    )
                )
    return pd.DataFrame(rows)


@pytest.fixture()
def frame(tmp_path) -> pd.DataFrame:
    """The frame as `semivl table` reads it: through metrics.csv."""
    path = tmp_path / "metrics.csv"
    write_metrics_csv(four_datasets(), path)
    return pd.read_csv(path, dtype={"split": str})


def _section(text: str, heading: str, within: str | None = None) -> str:
    if within:
        start = text.index(f"## {within}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end > 0 else None]
    start = text.index(heading)
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else None]


def _rows(section: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ")
    ]


def test_component_ablation_rows_order_gains_and_missing(frame):
    text = render_tables(frame, "Results")
    table = _rows(_section(text, "### Component ablation", "pascal"))
    assert table[0] == ["component (final iteration)", "92", "gain", "1464", "gain"]
    assert [r[0] for r in table[1:]] == [
        "UniMatch w/ ViT (ImageNet)",
        "+ CLIP initialisation",
        "+ spatial fine-tuning",
        "+ language-guided decoder",
        "+ dense CLIP guidance",
        "+ class definitions (= SemiVL)",
    ]
    # by hand: the means of ABLATION and semivl's 80.0 (92) and 84.0 (1464), std 0.5
    assert table[1][1:] == ["70.0 ± 0.5 (3)", "–", "78.0 ± 0.5 (3)", "–"]
    assert table[2][1:] == ["74.0 ± 0.5 (3)", "+4.0", "81.0 ± 0.5 (3)", "+3.0"]
    assert table[3][1:] == ["76.0 ± 0.5 (3)", "+2.0", "3 failed", "–"]
    assert table[4][1:] == ["77.5 ± 0.5 (3)", "+1.5", "83.0 ± 0.5 (3)", "–"]
    assert table[5][1:] == ["79.0 ± 0.5 (3)", "+1.5", "84.5 ± 0.5 (3)", "+1.5"]
    assert table[6][1:] == ["80.0 ± 0.5 (3)", "+1.0", "84.0 ± 0.5 (3)", "\u22120.5"]
    # only where the ablation's first row ran
    for dataset in ("coco", "cityscapes"):
        assert "### Component ablation" not in _section(text, "### mIoU at", dataset)
    assert text.count("### Component ablation") == 1


def test_component_findings_report_the_measured_sign(frame):
    """Every method's seeds share one offset here, so each paired difference is exact and its
    interval a point: the verdict follows the sign."""
    text = _section(render_tables(frame, "Results"), "### Does this reproduce", "pascal")
    assert (
        "- + CLIP initialisation over ImageNet initialisation: 92 labels Δ +4.0 [+4.0, +4.0], "
        "3 seeds: holds; 1464 labels Δ +3.0 [+3.0, +3.0], 3 seeds: holds; it helps at every "
        "split measured: holds"
    ) in text
    assert (
        "- + spatial fine-tuning over full fine-tuning: 92 labels Δ +2.0 [+2.0, +2.0], 3 seeds: "
        "holds; not measured at 1464 labels; it helps at every split measured: holds"
    ) in text
    assert (
        "- + class definitions (= SemiVL) over guidance with the plain class names: 92 labels "
        "Δ +1.0 [+1.0, +1.0], 3 seeds: holds; 1464 labels Δ −0.5 [−0.5, −0.5], 3 seeds: "
        "**does not hold**; it helps at every split measured: **does not hold**"
    ) in text
    # the SemiVL ablations are judged where they ran (92), not at the dataset's fewest split
    assert (
        "- SemiVL > SemiVL w/o spatial fine-tuning at 92 labels: holds (Δ +5.0 [+5.0, +5.0], "
        "3 seeds)" in text
    )


def test_main_tables_keep_the_main_methods_and_every_split(frame):
    text = render_tables(frame, "Results")
    for metric in ("### mIoU at the final iteration", "### mIoU best on val"):
        table = _rows(_section(text, metric, "pascal"))
        assert table[0] == ["method", "92", "183", "366", "732", "1464"]
        assert [r[0] for r in table[1:]] == ["Supervised (labelled only)", "UniMatch", "SemiVL"]
    final = _rows(_section(text, "### mIoU at the final iteration", "pascal"))
    assert final[3][1:] == [
        "80.0 ± 0.5 (3)",
        "81.0 ± 0.5 (3)",
        "82.0 ± 0.5 (3)",
        "83.0 ± 0.5 (3)",
        "84.0 ± 0.5 (3)",
    ]
    coco = _rows(_section(text, "### mIoU at the final iteration", "coco"))
    assert coco[0] == ["method", "232", "463", "925", "1849", "3697"]
    # SemiVL's ablation table: SemiVL and its variants at the two splits where they ran
    ablation = _rows(_section(text, "### Ablation: SemiVL", "pascal"))
    assert ablation[0] == ["variant (final iteration)", "92", "1464"]
    assert ablation[2] == [
        "SemiVL w/o class definitions",
        "79.0 ± 0.5 (3); Δ −1.0",
        "84.5 ± 0.5 (3); Δ +0.5",
    ]
    assert ablation[3] == [
        "SemiVL w/o spatial fine-tuning",
        "75.0 ± 0.5 (3); Δ −5.0",
        "81.8 ± 0.4 (2; 1 not run); Δ −2.2",
    ]


def test_a_dataset_without_finished_runs_says_so(frame):
    text = render_tables(frame, "Results")
    assert [line for line in text.splitlines() if line.startswith("## ")][:4] == [
        "## pascal",
        "## coco",
        "## ade20k",
        "## cityscapes",
    ]  # the papers' order
    ade = text[text.index("## ade20k\n") : text.index("## cityscapes\n")]
    assert ade.splitlines()[2] == (
        "No finished runs yet: 45 of 45 runs missing (3 failed; 42 not run). The runs are "
        'listed under "Runs without results".'
    )
    assert "###" not in ade and "|" not in ade
    assert "- ade20k 1_128 SemiVL seeds 0, 1, 2: failed (training timeout (1 attempts))" in text
    assert "- ade20k 1_8 UniMatch seeds 0, 1, 2: not run" in text
    assert "- cityscapes 1_2 UniMatch seed 2: failed (evaluation)" in text


def test_cost_totals_per_dataset_and_over_all(frame):
    text = render_tables(frame, "Results")
    pascal = _rows(_section(text, "### Training cost", "pascal"))
    # by hand: per split 3 runs each of 1.0 / 2.0 / 3.0 GPU-h (main block) = 18.0; at 92 the
    # 18 ablation runs x 2.5 = 45.0, at 1464 14 of them (3 failed, 1 not run) = 35.0
    assert pascal[-1] == [
        "**all methods**",
        "63.0 GPU-h (27)",
        "18.0 GPU-h (9)",
        "18.0 GPU-h (9)",
        "18.0 GPU-h (9)",
        "53.0 GPU-h (23); 3 failed; 1 not run",
        "170.0 GPU-h (77); 3 failed; 1 not run",
    ]
    by_method = {r[0]: r[1:] for r in pascal[1:]}
    assert by_method["UniMatch w/ ViT (ImageNet)"] == [
        "7.5 GPU-h (3)",
        "–",
        "–",
        "–",
        "7.5 GPU-h (3)",
        "15.0 GPU-h (6)",
    ]
    assert by_method["UniMatch w/ CLIP ViT (spatial fine-tuning)"] == [
        "7.5 GPU-h (3)",
        "–",
        "–",
        "–",
        "3 failed",
        "7.5 GPU-h (3); 3 failed",
    ]
    city = _rows(_section(text, "### Training cost", "cityscapes"))
    assert city[-1][-1] == "220.0 GPU-h (44); 1 failed"  # 44 runs x 5.0
    overall = _rows(text[text.index("## Training cost, all datasets") :])
    assert overall[:6] == [
        ["dataset", "training hours"],
        ["pascal", "170.0 GPU-h (77); 3 failed; 1 not run"],
        ["coco", "180.0 GPU-h (45)"],
        ["ade20k", "3 failed; 42 not run"],
        ["cityscapes", "220.0 GPU-h (44); 1 failed"],
        ["**all datasets**", "570.0 GPU-h (166); 7 failed; 43 not run"],
    ]


def test_every_table_function_takes_each_dataset(frame):
    """Called one by one on each dataset's rows (only missing runs; ablations on 2 of 5
    splits), none raises."""
    for dataset, part in frame.groupby("dataset"):
        assert ablation_table(part) and cost_table(part)
        components = component_table(part)
        assert bool(components) == (dataset == "pascal")
        findings = "\n".join(paper_findings(part))
        if dataset == "ade20k":
            assert "SemiVL > UniMatch at 158 labels: not measured" in findings
    assert ablation_table(frame[frame["dataset"] == "coco"])[0].startswith("No ablation runs")
    assert overall_cost_table(frame, ["pascal"]) == []  # one dataset: its own total suffices
    assert len(missing_runs(frame)) == 2 + 18 + 3  # heading, a line per group, footer


def test_component_ablation_where_semivl_guides_with_plain_names():
    """COCO/ADE20K: SemiVL's row repeats the row above; this project's definitions follow."""
    rows = []
    means = {
        "unimatch_vit": (40.0, None),
        "unimatch_clip_init": (44.0, None),
        "unimatch_clip_sft": (45.0, None),
        "semivl_no_guidance": (46.0, None),
        "semivl_no_definitions": (48.0, None),
        "semivl": (48.2, None),
        "semivl_project_definitions": (47.0, "project"),
    }
    for method, (mean, definitions) in means.items():
        rows += [
            _run("coco", "1_512", method, seed, mean + off, 1.0, definitions)
            for seed, off in zip(SEEDS, OFFSETS, strict=True)
        ]
    frame = pd.DataFrame(rows)
    table = component_table(frame)
    labels = [r[0] for r in _rows("\n".join(table))[1:]]
    assert labels[-2:] == [
        "= SemiVL (plain class names, as upstream)",
        "+ this project's class definitions †",
    ]
    assert _rows("\n".join(table))[-1][1:] == ["47.0 ± 0.5 (3)", "\u22121.2"]
    assert any("its row repeats the configuration of the row above" in line for line in table)
    findings = "\n".join(paper_findings(frame))
    assert (
        "- + class definitions: not measured (SemiVL guides with the plain class names "
        "here, as upstream)"
    ) in findings
    assert (
        "- + this project's class definitions over SemiVL with the plain class names: "
        "232 labels Δ −1.2 [−1.2, −1.2], 3 seeds: **does not hold**; it helps at every split "
        "measured: **does not hold**"
    ) in findings


def test_overview_figure_has_a_panel_per_dataset(frame, tmp_path):
    import matplotlib.pyplot as plt

    fig = miou_vs_labels_figure(frame)
    try:
        assert [ax.get_title() for ax in fig.axes] == ["pascal", "coco", "ade20k", "cityscapes"]
        ade = fig.axes[2]
        assert any(
            "No finished runs yet:\n45 of 45 runs missing" in t.get_text() for t in ade.texts
        )
        pascal = fig.axes[0]
        assert [int(t) for t in pascal.get_xticks()] == [92, 183, 366, 732, 1464]
        assert sorted(pascal.get_legend_handles_labels()[1]) == [
            "SemiVL",
            "Supervised (labelled only)",
            "UniMatch",
        ]  # no ablation variants
        assert [int(t) for t in fig.axes[3].get_xticks()] == [100, 186, 372, 744, 1488]
    finally:
        plt.close(fig)
    written = plot_miou_vs_labels(frame, tmp_path / "miou_vs_labels")
    assert [p.suffix for p in written] == [".png", ".svg"]
    assert "No finished runs yet" in written[1].read_text()
    # nothing finished anywhere: still a figure
    nothing = frame.assign(miou=math.nan, status="not run")
    for out in plot_miou_vs_labels(nothing, tmp_path / "nothing"):
        assert out.stat().st_size > 1000


def test_dataset_figures_with_ablations_on_some_splits_or_no_runs(frame, tmp_path):
    for dataset in ("pascal", "ade20k"):
        for out in plot_ablation(frame, dataset, tmp_path / f"ablation_{dataset}"):
            assert out.stat().st_size > 1000
    assert "ade20k: no ablation runs in this grid" in (tmp_path / "ablation_ade20k.svg").read_text()
    per_class = pd.DataFrame(
        [
            {
                "dataset": "pascal",
                "split": "92",
                "num_labeled": 92,
                "method": "semivl",
                "seed": 0,
                "class": "cat",
                "iou": 80.0,
            }
        ]
    )
    plot_per_class(per_class, "ade20k", tmp_path / "per_class")
    assert "ade20k: no evaluated runs yet" in (tmp_path / "per_class.svg").read_text()


def test_four_datasets_match_the_golden_file(frame):
    text = render_tables(frame, "Results", releases={d: f"{d} release" for d in SPLITS}) + "\n"
    if os.environ.get("SEMIVL_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), (
        "tables.md rendering changed; if intended, rerun with SEMIVL_UPDATE_GOLDEN=1 and "
        "review the diff of tests/golden/tables_datasets.md"
    )


def test_gpu_and_cpu_hours_are_not_added_up():
    hours, devices = pd.Series([1.5, 2.0, 0.25]), pd.Series(["gpu", "gpu", "cpu"])
    assert format_hours(hours, devices) == "3.5 GPU-h + 0.25 CPU-h"
    assert format_hours(hours[2:], devices[2:]) == "0.25 CPU-h"


def test_published_numbers_from_other_runs_are_marked(repo):
    """A published number whose run differs from the runs here (V2's cancelled Cityscapes 1/4
    labelled-only log) carries ◊, and the dataset's section says how it differs."""
    from semivl.report.published import load_published

    rows = [
        _run("cityscapes", "1_4", method, seed, 80.0 + off, 5.0)
        for method in ("supervised_v2", "unimatch")
        for seed, off in zip(SEEDS, OFFSETS, strict=True)
    ]
    text = render_tables(
        pd.DataFrame(rows),
        "Results",
        published=load_published(repo / "config" / "published_results.csv"),
    )
    published = [line for line in text.splitlines() if line.startswith("| ↳ published")]
    assert any("84.0◊" in line for line in published)  # supervised V2
    assert any("79.2 |" in line for line in published)  # UniMatch: as published, no mark
    assert "◊ Published numbers whose runs differ from the runs here:" in text
    assert "cancelled at epoch 177 of 180" in text
