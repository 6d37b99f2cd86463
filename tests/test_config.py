import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from semivl.config import ConfigError, ModelConfig, load_dataset_config
from semivl.grid import load_grid
from semivl.models import build_model
from semivl.recipes import load_recipe


def _recipe_with(config_dir: Path, section: str, key: str, value) -> None:
    path = config_dir / "recipes" / "supervised" / "toy.yaml"
    data = yaml.safe_load(path.read_text())
    data[section][key] = value
    path.write_text(yaml.safe_dump(data))


def test_shipped_recipes_load(repo):
    for dataset in ("toy", "pascal"):
        recipe = load_recipe("supervised", dataset, repo / "config")
        assert recipe.dataset.num_classes == len(recipe.dataset.class_names)
    pascal = load_recipe("supervised", "pascal", repo / "config")
    assert pascal.augment.crop_size == 321 and pascal.optim.lr == 0.001
    assert pascal.optim.default_lr_mult == 10.0 and pascal.train.epochs == 80


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("optim", "lrr", 0.1, "optim.lrr: unknown key"),
        ("train", "batch_size", "four", "train.batch_size: expected an integer, got 'four'"),
        ("optim", "name", "rmsprop", "optim.name: expected one of 'sgd', 'adamw'"),
        ("optim", "lr", -1.0, "optim.lr: expected > 0, got -1.0"),
        ("train", "epochs", 3, "train.epochs/iters: expected exactly one of epochs and iters"),
        ("augment", "ratio_range", [2.0], "augment.ratio_range: expected a list of 2 values"),
    ],
)
def test_bad_recipe_names_file_and_key(config_dir, section, key, value, message):
    _recipe_with(config_dir, section, key, value)
    with pytest.raises(ConfigError) as err:
        load_recipe("supervised", "toy", config_dir)
    assert message in str(err.value)
    assert "recipes/supervised/toy.yaml" in str(err.value)


def test_missing_recipe_and_dataset(config_dir):
    with pytest.raises(ConfigError, match="no recipe for method 'nope'"):
        load_recipe("nope", "toy", config_dir)
    with pytest.raises(ConfigError, match="known datasets"):
        load_dataset_config("imagenet", config_dir)


def test_dataset_class_count_checked(config_dir):
    path = config_dir / "datasets" / "toy.yaml"
    path.write_text(path.read_text().replace("num_classes: 5", "num_classes: 6"))
    with pytest.raises(ConfigError, match="dataset.class_names: expected 6 names"):
        load_dataset_config("toy", config_dir)


def test_model_args_checked():
    with pytest.raises(ConfigError, match="model.args.depth: unknown argument"):
        build_model(ModelConfig("deeplabv3plus", {"depth": 3}), 5)
    with pytest.raises(ConfigError, match="model.name: expected one of"):
        build_model(ModelConfig("segformer"), 5)


def test_grid_files_pass_schema_and_loader(repo):
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    names = ["config.yaml", "demo.yaml", "demo_full.yaml", "demo_quick.yaml"]
    names += [f"grids/{p.name}" for p in sorted((repo / "config" / "grids").glob("*.yaml"))]
    assert len(names) == 13
    for name in names:
        data = yaml.safe_load((repo / "config" / name).read_text())
        jsonschema.validate(data, schema)
        grid = load_grid(repo / "config" / name)
        assert grid.runs() == sorted(grid.runs())
        for method, dataset in grid.recipes():  # every run has a recipe
            load_recipe(method, dataset, repo / "config")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # Not a method name at all (the schema's pattern) nor a method of config/methods.yaml.
        (lambda g: g["grid"]["blocks"][0].update(methods=["fix-match"]), "fix-match"),
        (lambda g: g.update(result_dir="x"), "result_dir"),
        (
            lambda g: g["grid"]["blocks"][1]["splits"].append({"dataset": "coco", "split": "1_32"}),
            "coco",
        ),
    ],
)
def test_bad_grid_rejected_by_schema_and_loader(repo, tmp_path, edit, message):
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    grid = yaml.safe_load((repo / "config" / "demo.yaml").read_text())
    edit(grid)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    if message != "coco":  # a dataset missing from grid.datasets is a cross-key rule
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(grid, schema)
    with pytest.raises(ConfigError, match=message):
        load_grid(path)


def test_semivl_recipes_follow_the_spec_table(repo):
    """Per-dataset learning rates, multipliers, schedules and texts (docs/upstream.md, SemiVL
    recipes)."""
    expect = {  # lr, backbone mult, epochs, iters, crop, decoder text, guidance text
        "pascal": (1e-4, 0.01, 80, None, 512, "names", "concept_max"),
        "coco": (4e-4, 0.001, 10, None, 512, "names", "names"),
        "ade20k": (4e-4, 0.001, 40, None, 512, "names", "names"),
        "cityscapes": (5e-5, 0.1, None, 83760, 801, "concept_avg", "concept_max"),
    }
    for dataset, (lr, bb, epochs, iters, crop, dec, guid) in expect.items():
        r = load_recipe("semivl", dataset, repo / "config")
        keys = r.optim.custom_keys
        assert (r.optim.lr, keys["backbone"].lr_mult, r.train.epochs, r.train.iters) == (
            lr,
            bb,
            epochs,
            iters,
        ), dataset
        assert keys["head"].lr_mult == 10.0 and r.optim.name == "adamw"
        assert (r.augment.crop_size, r.model.args["decoder_text"], r.guidance.text) == (
            crop,
            dec,
            guid,
        ), dataset
        assert r.train.batch_size * 8 // r.train.global_batch_size in (1, 2)
        assert r.model.args["clip"] == "clip_vit_b16_openai"
        plain = load_recipe("semivl_no_definitions", dataset, repo / "config")
        assert (plain.model.args["decoder_text"], plain.guidance.text) == ("names", "names")
        full = load_recipe("semivl_no_spatial_ft", dataset, repo / "config")
        assert full.model.args["finetune"] == "full"
        assert full.optim.custom_keys["backbone"].lr_mult == pytest.approx(bb / 10)
        assert full.optim.lr == lr and full.guidance == r.guidance
    city = load_recipe("semivl", "cityscapes", repo / "config")
    assert city.model.args["conv_encoder"] and city.model.args["renorm_clip_input"]
    assert city.model.pretrained == "resnet101_v1c" and city.train.conf_mode == "pixelavg"


def test_recipe_base_and_method_folder_rules(config_dir):
    folder = config_dir / "recipes" / "semivl_try"
    folder.mkdir()
    (folder / "toy.yaml").write_text("base: ../semivl/toy.yaml\ntrain: {iters: 4}\n")
    recipe = load_recipe("semivl_try", "toy", config_dir)
    assert recipe.train.iters == 4 and recipe.train.method == "semivl"
    assert recipe.model.args["clip"] == "tiny_clip_random"  # merged from the base
    (folder / "toy.yaml").write_text("base: toy.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_recipe("semivl_try", "toy", config_dir)
    (folder / "toy.yaml").write_text("base: ../semivl/nope.yaml\n")
    with pytest.raises(ConfigError, match="nope.yaml does not exist"):
        load_recipe("semivl_try", "toy", config_dir)
    other = config_dir / "recipes" / "mixup"
    other.mkdir()
    (other / "toy.yaml").write_text("base: ../semivl/toy.yaml\n")
    with pytest.raises(ConfigError, match="'semivl_<variant>'"):
        load_recipe("mixup", "toy", config_dir)
    variant = config_dir / "recipes" / "unimatch_guided"
    variant.mkdir()
    (variant / "toy.yaml").write_text("base: ../unimatch/toy.yaml\nguidance: {text: names}\n")
    with pytest.raises(ConfigError, match="guidance: only method semivl"):
        load_recipe("unimatch_guided", "toy", config_dir)


def test_toy_methods_train_on_equal_footing(repo):
    """Every demo method trains at one crop and batch, for about as many iterations."""
    from semivl.engine.trainer import schedule

    methods = ("supervised", "unimatch", "semivl", "semivl_no_definitions", "semivl_no_spatial_ft")
    recipes = {m: load_recipe(m, "toy", repo / "config") for m in methods}
    assert {r.augment.crop_size for r in recipes.values()} == {48}
    assert {r.train.batch_size for r in recipes.values()} == {4}
    dataset = load_dataset_config("toy", repo / "config")
    train_images = dataset.expected_counts["train"]
    for split in ("6", "48"):
        labeled = dataset.splits[split]
        iters = {}
        for method, recipe in recipes.items():
            length = labeled if recipe.train.method == "supervised" else train_images - labeled
            _, per_epoch, epochs = schedule(recipe.train, length, 1)
            iters[method] = per_epoch * epochs
        assert max(iters.values()) <= 1.25 * min(iters.values()), (split, iters)


def test_coco_and_ade20k_guide_with_plain_names_unless_asked_for_project_definitions(repo):
    """Upstream's experiments 42/43 have no class definitions (no mcc_text): SemiVL there reads
    only the names; the project's definitions are the opt-in method semivl_project_definitions."""
    from semivl.models.text import definitions_used

    config = repo / "config"
    for dataset in ("coco", "ade20k"):
        upstream = load_recipe("semivl", dataset, config)
        assert (upstream.model.args["decoder_text"], upstream.guidance.text) == ("names", "names")
        assert definitions_used(upstream, config) is None
        project = load_recipe("semivl_project_definitions", dataset, config)
        assert project.guidance.text == "concept_max"
        assert definitions_used(project, config) == "project"
        assert project.train.method == "semivl"
        # everything else is the upstream recipe's
        assert (project.optim, project.train, project.augment, project.eval) == (
            upstream.optim,
            upstream.train,
            upstream.augment,
            upstream.eval,
        )
    assert definitions_used(load_recipe("semivl", "pascal", config), config) == "upstream"
    with pytest.raises(ConfigError, match="semivl_project_definitions"):
        load_recipe("semivl_project_definitions", "pascal", config)


def test_a_recipes_base_chain_is_tracked(repo, tmp_path):
    """Editing a base (config/recipes/semivl/toy.yaml) must rerun the ablations built on it:
    the chain is every file Snakemake, DVC and provenance track for a recipe."""
    from semivl.recipes import recipe_chain

    chain = recipe_chain("unimatch_vit", "toy", repo / "config")
    assert [p.parent.name for p in chain] == [
        "unimatch_vit",
        "unimatch_clip_init",
        "unimatch_clip_sft",
        "semivl_no_guidance",
        "semivl_no_definitions",
        "semivl",
    ]
    assert recipe_chain("semivl", "toy", repo / "config") == [
        repo / "config" / "recipes" / "semivl" / "toy.yaml"
    ]
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(
        yaml.safe_dump(
            {
                "results_dir": "r",
                "config_dir": str(repo / "config"),
                "grid": {
                    "datasets": ["toy"],
                    "splits": [{"dataset": "toy", "split": "6"}],
                    "methods": ["semivl_no_guidance"],
                    "seeds": [0],
                },
            }
        )
    )
    grid = load_grid(grid_file)
    bases = grid.tracked_bases("semivl_no_guidance", "toy")
    assert [Path(bases[f"recipe_base{i}"]).parent.name for i in range(1, 7)] == [
        "semivl_no_definitions",
        "semivl",
        "semivl_no_guidance",
        "semivl_no_guidance",
        "semivl_no_guidance",
        "semivl_no_guidance",
    ]
    # A loop is refused with the file that closes it.
    loop = tmp_path / "config"
    shutil.copytree(repo / "config", loop)
    (loop / "recipes" / "semivl" / "toy.yaml").write_text(
        "base: ../semivl_no_definitions/toy.yaml\n"
    )
    with pytest.raises(ConfigError, match="loop"):
        recipe_chain("semivl_no_definitions", "toy", loop)


def test_the_recipe_sha_of_a_based_recipe_covers_its_bases(tmp_path):
    from semivl.report.aggregate import run_provenance

    inputs = {"config/recipes/a/toy.yaml": "1" * 64, "config/recipes/b/toy.yaml": "2" * 64}
    record = {
        "inputs": inputs,
        "wall_hours": 0.1,
        "recipe_chain": ["config/recipes/a/toy.yaml", "config/recipes/b/toy.yaml"],
    }
    (tmp_path / "provenance.json").write_text(json.dumps(record))
    sha = run_provenance(tmp_path, "toy", "a")["recipe_sha"]
    inputs["config/recipes/b/toy.yaml"] = "3" * 64  # the base changed
    (tmp_path / "provenance.json").write_text(json.dumps(record))
    assert run_provenance(tmp_path, "toy", "a")["recipe_sha"] != sha
    del record["recipe_chain"]  # no bases: the recipe file's own sha, as before
    (tmp_path / "provenance.json").write_text(json.dumps(record))
    assert run_provenance(tmp_path, "toy", "a")["recipe_sha"] == "1" * 12
