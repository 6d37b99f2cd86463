"""The grid format: blocks of cells x methods x seeds, the single-block form, the lists DVC
reads (`semivl grid expand`), and which models the qualitative grid shows."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from semivl.cli import main
from semivl.cli.grid import render_expanded
from semivl.config import ConfigError
from semivl.grid import expanded_path, load_grid

CELL_6 = {"dataset": "toy", "split": "6"}
CELL_48 = {"dataset": "toy", "split": "48"}


def _write(tmp_path, grid: dict, name: str = "grid.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"results_dir": "r", "config_dir": "config", "grid": grid}))
    return path


def _schema(repo):
    return yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _blocks() -> dict:
    return {
        "datasets": ["toy"],
        "blocks": [
            {
                "name": "main",
                "splits": [CELL_6, CELL_48],
                "methods": ["supervised", "semivl"],
                "seeds": [0, 1],
            },
            {
                "name": "ablation",
                "splits": [CELL_6],
                "methods": ["semivl_no_definitions"],
                "seeds": [2, 3],
            },
        ],
    }


def test_blocks_are_a_union_of_cross_products(tmp_path, repo):
    grid = load_grid(_write(tmp_path, _blocks()))
    runs = grid.runs()
    assert len(runs) == 2 * 2 * 2 + 2
    assert ("toy", "6", "semivl_no_definitions", 3) in runs
    assert not any(m == "semivl_no_definitions" and s == "48" for _, s, m, _ in runs)
    assert grid.cells() == [("toy", "6"), ("toy", "48")]
    assert grid.methods() == ["supervised", "semivl", "semivl_no_definitions"]
    assert grid.recipes() == [
        ("supervised", "toy"),
        ("semivl", "toy"),
        ("semivl_no_definitions", "toy"),
    ]
    jsonschema.validate(yaml.safe_load((tmp_path / "grid.yaml").read_text()), _schema(repo))


def test_the_single_block_form_still_loads_as_one_block(tmp_path, repo):
    single = {"datasets": ["toy"], "splits": [CELL_6], "methods": ["supervised"], "seeds": [0, 1]}
    grid = load_grid(_write(tmp_path, single))
    assert [b.name for b in grid.blocks] == ["main"]
    assert grid.runs() == [("toy", "6", "supervised", 0), ("toy", "6", "supervised", 1)]
    jsonschema.validate(yaml.safe_load((tmp_path / "grid.yaml").read_text()), _schema(repo))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda g: g.update(methods=["unimatch"]),
            "either `blocks` or the single-block keys splits/methods/seeds, not both",
        ),
        (
            lambda g: g["blocks"][1].update(methods=["semivl"], seeds=[1]),
            "toy 6 semivl seed 1 is already in blocks\\[0\\]",
        ),
        (lambda g: g["blocks"][0].update(seeds=[0, 0]), "blocks\\[0\\].seeds: 0 is listed twice"),
        (lambda g: g["blocks"][0].update(splits=[CELL_6, CELL_6]), "is listed twice"),
        (
            lambda g: g["blocks"][1].update(splits=[{"dataset": "voc", "split": "6"}]),
            "blocks\\[1\\].splits\\[0\\].dataset: expected one of \\['toy'\\]",
        ),
        (lambda g: g.update(datasets=["toy", "pascal"]), "'pascal' has no cell in any block"),
        (
            lambda g: g["blocks"][0].update(methods=[]),
            "blocks\\[0\\].methods: expected a non-empty",
        ),
    ],
)
def test_bad_blocks_fail_with_the_key(tmp_path, edit, message):
    grid = _blocks()
    edit(grid)
    with pytest.raises(ConfigError, match=message):
        load_grid(_write(tmp_path, grid))


def test_schema_rejects_blocks_beside_single_block_keys(repo):
    grid = {"results_dir": "r", "grid": {**_blocks(), "methods": ["supervised"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(grid, _schema(repo))
    grid = {"results_dir": "r", "grid": {"datasets": ["toy"], "splits": [CELL_6]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(grid, _schema(repo))


def test_qualitative_grid_shows_the_first_block_on_the_fewest_labels(tmp_path, repo):
    grid = {**_blocks(), "blocks": list(reversed(_blocks()["blocks"]))}
    path = _write(tmp_path, {**grid})
    text = path.read_text().replace("config_dir: config", f"config_dir: {repo / 'config'}")
    path.write_text(text)
    loaded = load_grid(path)
    # toy 6 has fewer labels than 48; the ablation block (now first) runs it with seed 2.
    assert loaded.qualitative_runs("toy") == [("semivl_no_definitions", "6", 2)]
    assert loaded.qualitative_run("toy", "semivl_no_definitions") == ("6", 2)
    with pytest.raises(ConfigError, match="shows \\['semivl_no_definitions'\\], not 'semivl'"):
        loaded.qualitative_run("toy", "semivl")


def test_default_grid_runs_the_papers_tables(repo):
    grid = load_grid(repo / "config" / "config.yaml")
    runs = grid.runs()
    per = {}
    for d, s, m, _ in runs:
        per.setdefault((d, m), set()).add(s)
    for dataset in ("pascal", "coco", "ade20k", "cityscapes"):
        from semivl.config import load_dataset_config

        splits = set(load_dataset_config(dataset, repo / "config").splits)
        for method in ("supervised", "unimatch", "semivl"):
            assert per[(dataset, method)] == splits, (dataset, method)
        # UniMatch V2 reports no ADE20K 1/128 and no Cityscapes 1/30
        for method in ("supervised_v2", "unimatch_v2"):
            missing = {"ade20k": {"1_128"}, "cityscapes": {"1_30"}}.get(dataset, set())
            assert per[(dataset, method)] == splits - missing, (dataset, method)
    ablations = (
        "semivl_no_definitions",
        "semivl_no_spatial_ft",
        "unimatch_vit",
        "unimatch_clip_init",
        "unimatch_clip_sft",
        "semivl_no_guidance",
    )
    for method in ablations:
        assert per[("pascal", method)] == {"92", "1464"}
        assert not any((d, method) in per for d in ("coco", "ade20k", "cityscapes"))
    assert {k for *_, k in runs} == {0, 1, 2}
    assert grid.report.zero_shot


def test_committed_runs_file_matches_the_default_grid(repo, monkeypatch):
    """dvc.yaml reads config/config.runs.yaml: it must be what `semivl grid expand` writes."""
    monkeypatch.chdir(repo)  # the grid's config_dir is relative to the checkout
    grid_file = repo / "config" / "config.yaml"
    committed = expanded_path(grid_file)
    assert committed == repo / "config" / "config.runs.yaml"
    assert committed.read_text().split("\n", 2)[2] == render_expanded(grid_file).split("\n", 2)[2]


def test_expand_writes_and_checks(tmp_path, repo, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, _blocks())
    path.write_text(
        path.read_text().replace("config_dir: config", f"config_dir: {repo / 'config'}")
    )
    assert main(["grid", "expand", "--grid", str(path), "--check"]) == 2
    assert "grid.runs.yaml is missing" in capsys.readouterr().err
    assert main(["grid", "expand", "--grid", str(path)]) == 0
    lists = yaml.safe_load((tmp_path / "grid.runs.yaml").read_text())
    assert list(lists["runs"]) == [f"toy-{s}-{m}-seed{k}" for _, s, m, k in load_grid(path).runs()]
    run = lists["runs"]["toy-6-semivl-seed1"]
    # SemiVL's toy recipe has no base: the six tracked base slots repeat the recipe itself.
    recipe = f"{repo / 'config'}/recipes/semivl/toy.yaml"
    assert run == {
        "dataset": "toy",
        "split": "6",
        "method": "semivl",
        "seed": 1,
        **{f"recipe_base{i}": recipe for i in range(1, 7)},
    }
    assert lists["cells"] == {"toy-48": CELL_48, "toy-6": CELL_6}
    assert lists["predictions"] == {
        "toy-supervised": {"dataset": "toy", "method": "supervised"},
        "toy-semivl": {"dataset": "toy", "method": "semivl"},
    }
    assert main(["grid", "expand", "--grid", str(path), "--check"]) == 0
    grid = _blocks()
    grid["blocks"][0]["seeds"] = [0]
    path.write_text(
        yaml.safe_dump({"results_dir": "r", "config_dir": str(repo / "config"), "grid": grid})
    )
    assert main(["grid", "expand", "--grid", str(path), "--check"]) == 2
    assert "is out of date" in capsys.readouterr().err
