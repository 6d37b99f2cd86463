"""The tuning sweep: one grid of points for every method, scored on dev, and the recipes that
took its selection (docs/sweeps/toy.csv is the one source of their learning rates)."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from semivl.errors import ConfigError
from semivl.recipes import load_recipe
from semivl.sweep import (
    Job,
    Point,
    jobs,
    load_sweep,
    point_config_dir,
    read_rows,
    recipe_point,
    selected,
    sweep_markdown,
    write_rows,
)

SWEEP = REPO / "config" / "sweeps" / "toy.yaml"
TABLE = REPO / "docs" / "sweeps" / "toy.csv"


def test_every_toy_recipe_of_the_comparison_gets_the_same_points():
    sweep = load_sweep(SWEEP)
    toy_recipes = {p.parent.name for p in (REPO / "config" / "recipes").glob("*/toy.yaml")}
    # every toy recipe of the tables is swept; FixMatch is the plug-in example, outside the
    # paper's comparison (docs/add-a-method.md)
    assert set(sweep.methods()) == toy_recipes - {"fixmatch"}
    sizes = {len(sweep.points(m)) for m in sweep.methods()}
    assert sizes == {len(sweep.lr_scale) * len(sweep.backbone_lr_mult)}
    assert sweep.points("semivl")[0] == Point("semivl", 0.00006, 0.1)
    todo = jobs(sweep, ["supervised"])
    assert len(todo) == 6 * len(sweep.splits) * len(sweep.seeds)
    with pytest.raises(ConfigError, match="'fixmatch' has no reference_lr"):
        jobs(sweep, ["fixmatch"])


def test_a_bad_sweep_file_names_the_key(tmp_path):
    data = yaml.safe_load(SWEEP.read_text())
    data["lr_scale"] = [1.0, -3.0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"bad.yaml: sweep.lr_scale: expected positive"):
        load_sweep(bad)


def test_a_point_overrides_the_leaf_recipe_and_keeps_its_base_chain(tmp_path):
    point = Point("semivl_no_definitions", 0.0006, 1.0)
    config = point_config_dir(REPO / "config", tmp_path, point, "toy")
    recipe = load_recipe("semivl_no_definitions", "toy", config)
    original = load_recipe("semivl_no_definitions", "toy", REPO / "config")
    assert recipe_point(recipe) == (0.0006, 1.0)
    # everything else comes through the base: chain unchanged
    keys = recipe.optim.custom_keys
    assert keys["head"].lr_mult == original.optim.custom_keys["head"].lr_mult
    assert keys["backbone"].decay_mult == original.optim.custom_keys["backbone"].decay_mult
    assert recipe.guidance == original.guidance and recipe.model == original.model
    # a model without custom keys (supervised) gets the backbone key added
    sup = point_config_dir(REPO / "config", tmp_path, Point("supervised", 0.002, 0.1), "toy")
    assert recipe_point(load_recipe("supervised", "toy", sup)) == (0.002, 0.1)
    assert Job(point, "6", 0).run_dir(tmp_path).parts[-4:] == (
        "semivl_no_definitions",
        "lr0.0006_bb1",
        "6",
        "seed0",
    )


def test_selection_takes_the_best_mean_over_splits_and_the_earlier_point_on_ties(tmp_path):
    rows = [
        {"method": "m", "lr": lr, "backbone_lr_mult": bb, "split": s, "seed": 0, "dev_miou": v}
        for lr, bb, s, v in [
            (0.1, 1.0, "6", 30.0),
            (0.1, 1.0, "48", 50.0),  # mean 40
            (0.3, 1.0, "6", 20.0),
            (0.3, 1.0, "48", 70.0),  # mean 45: best, though worse at 6 labels
            (1.0, 1.0, "6", 45.0),
            (1.0, 1.0, "48", 45.0),  # mean 45: a tie, the earlier point wins
        ]
    ]
    assert selected(rows, "m") == Point("m", 0.3, 1.0)
    table = tmp_path / "t.csv"
    write_rows(rows, table)
    assert read_rows(table) == rows
    # rows of other methods are kept when one method is rerun
    write_rows([{**rows[0], "method": "n"}], table)
    assert {r["method"] for r in read_rows(table)} == {"m", "n"}


def test_the_toy_recipes_take_the_sweeps_selection():
    """docs/sweeps/toy.csv is the source of every swept recipe's lr and backbone multiplier,
    and docs/sweeps/toy.md is rendered from it."""
    sweep = load_sweep(SWEEP)
    rows = read_rows(TABLE)
    assert {r["method"] for r in rows} == set(sweep.methods())
    assert len(rows) == len(jobs(sweep))
    for method in sweep.methods():
        choice = selected(rows, method)
        recipe = load_recipe(method, "toy", REPO / "config")
        assert recipe_point(recipe) == (choice.lr, choice.backbone_lr_mult), (
            f"config/recipes/{method}/toy.yaml does not hold the sweep's selection "
            f"(lr {choice.lr:g}, backbone x{choice.backbone_lr_mult:g}; docs/sweeps/toy.md)"
        )
    page = TABLE.with_suffix(".md").read_text()
    assert page == sweep_markdown(rows, sweep, "config/sweeps/toy.yaml"), (
        "docs/sweeps/toy.md is stale: run `semivl sweep config/sweeps/toy.yaml --render-only`"
    )


@pytest.mark.slow
def test_the_sweep_trains_scores_on_dev_and_resumes(tmp_path, toy_root, config_dir):
    """Two points of the supervised recipe on a small toy: each run validates on the dev
    images, and a second call trains nothing."""
    from semivl.sweep import SweepConfig, SweepPaths, run_sweep

    root, config = toy_root, config_dir  # the tiny supervised recipe (12 iterations)
    sweep = SweepConfig(
        dataset="toy",
        splits=["6"],
        seeds=[0],
        lr_scale=[1.0],
        backbone_lr_mult=[0.1, 1.0],
        reference_lr={"supervised": 0.002},
    )
    paths = SweepPaths(config, root, tmp_path / "clip", tmp_path / "text", tmp_path / "weights")
    logged: list[str] = []
    rows = run_sweep(sweep, paths, tmp_path / "out", log=logged.append)
    assert [(r["lr"], r["backbone_lr_mult"]) for r in rows] == [(0.002, 0.1), (0.002, 1.0)]
    val = (tmp_path / "out" / "splits" / "val.txt").read_text().split("\n")[0]
    dev_first = (root / "ImageSets" / "Segmentation" / "dev.txt").read_text().split()[0]
    assert val.startswith(f"JPEGImages/{dev_first}.jpg")
    for row in rows:
        assert 0 < row["dev_miou"] < 100
    again: list[str] = []
    assert run_sweep(sweep, paths, tmp_path / "out", log=again.append) == rows
    assert "2 done before, 0 to train" in again[0]
