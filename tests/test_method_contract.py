"""The contract every registered method passes (``semivl.methods``), the plug-ins included.

For each method, on its own toy recipe (``config/recipes/<method>/toy.yaml``, the tiny ones of
the test config where there are), with the model's random initialisation:

* two optimiser steps on a synthetic batch built from the method's declared streams give a
  finite loss and exactly the declared log fields;
* its state (if it keeps one, as UniMatch V2's EMA teacher) survives a state-dict round trip;
* a run stopped after two steps and resumed ends with the same weights as one run straight.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from semivl.bench.train_step import synthetic_batch
from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.step import build_method_state, build_training_parts, training_loss, unwrap
from semivl.engine.trainer import RunSpec, TrainingStopped, train
from semivl.methods import STREAM_KINDS, method_names, methods
from semivl.models.semivl_model import ModelContext
from semivl.recipes import load_recipe

METHODS = method_names()


def test_the_package_methods_are_registered_through_the_registry():
    assert {"supervised", "unimatch", "semivl", "unimatch_v2"} <= set(METHODS)
    for method in methods().values():
        assert method.streams[0] == "labeled" and set(method.streams) <= set(STREAM_KINDS)
        assert "entry point" in method.origin or "entry-points" in method.origin, method.origin


def _toy_recipe(name, config_dir):
    recipe = load_recipe(name, "toy", config_dir)
    # A short schedule: one epoch of at most four iterations, validated at its end.
    train_cfg = dataclasses.replace(
        recipe.train,
        epochs=None,
        iters=4,
        eval_every_epochs=1,
        eval_every_iters=None,
        num_workers=0,
    )
    return dataclasses.replace(recipe, train=train_cfg)


@pytest.mark.parametrize("name", METHODS)
def test_two_steps_give_a_finite_loss_and_the_declared_logs(name, config_dir):
    method = methods()[name]
    recipe = _toy_recipe(name, config_dir)
    device = torch.device("cpu")
    torch.manual_seed(0)
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=config_dir,
        random_init=True,
    )
    model, optimizer, hooks, criterion = build_training_parts(recipe, context, device)
    state = build_method_state(recipe, model)
    batch = synthetic_batch(recipe, seed=1)
    assert len(batch) == len(method.streams)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for it in range(2):
        optimizer.zero_grad()
        loss, logs = training_loss(
            model, batch, criterion, recipe.train, device, it, 10, hooks, state
        )
        assert loss.dim() == 0 and math.isfinite(loss.item()), (name, it, loss)
        assert set(logs) == set(method.log_fields), (name, sorted(logs))
        assert all(math.isfinite(float(v)) for v in logs.values()), logs
        loss.backward()
        optimizer.step()
        if state is not None:
            state.after_step(unwrap(model), it)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{name}: two steps changed no weight"
    if state is not None:
        copy = build_method_state(recipe, model)
        copy.load_state_dict(state.state_dict())
        theirs = copy.state_dict()
        for key, value in state.state_dict().items():
            assert torch.equal(value, theirs[key]), (name, key)


def _spec(name, toy_root, config_dir, out):
    splits = toy_root.parent / "splits"
    method = methods()[name]
    return RunSpec(
        recipe=_toy_recipe(name, config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=splits / "6" / "unlabeled.txt" if method.reads_unlabeled else None,
        val_split=splits / "val.txt",
        out_dir=out,
        seed=0,
        config_dir=config_dir,
    )


@pytest.mark.parametrize("name", METHODS)
def test_stop_and_resume_gives_identical_weights(name, toy_root, config_dir, tmp_path, monkeypatch):
    # Random initialisation instead of the recipe's pretrained weights and CLIP files.
    monkeypatch.setattr(
        RunSpec,
        "model_context",
        lambda self: ModelContext(
            dataset=self.recipe.dataset,
            crop_size=self.recipe.augment.crop_size,
            config_dir=config_dir,
            random_init=True,
        ),
    )
    recipe = _toy_recipe(name, config_dir)
    recipe = dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, pretrained=None))
    spec_a = dataclasses.replace(_spec(name, toy_root, config_dir, tmp_path / "a"), recipe=recipe)
    spec_b = dataclasses.replace(spec_a, out_dir=tmp_path / "b")
    straight = train(spec_a, device="cpu", progress=False, log_every=1)
    with pytest.raises(TrainingStopped):
        train(spec_b, device="cpu", stop_after_steps=2, progress=False, log_every=1)
    resumed = train(spec_b, device="cpu", progress=False, log_every=1)
    assert resumed["history"] == straight["history"]
    outputs = sorted(p.name for p in (tmp_path / "a").glob("model*.pt"))
    assert outputs == sorted(p.name for p in (tmp_path / "b").glob("model*.pt"))
    for file in outputs:
        a, b = load_checkpoint(tmp_path / "a" / file), load_checkpoint(tmp_path / "b" / file)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, file, key)


def test_the_catalog_covers_every_recipe_folder_and_released_layout(repo):
    """config/methods.yaml is the one list: every recipe folder has its table label and group,
    every catalogued method trains with a registered method, and the methods whose released
    checkpoints a grid may name are those `semivl import-checkpoint` has a key map for."""
    from semivl.engine.upstream_maps import MAPS
    from semivl.methods.catalog import load_catalog, released_methods

    catalog = load_catalog()
    folders = sorted(p.name for p in (repo / "config" / "recipes").iterdir() if p.is_dir())
    assert sorted(catalog) == folders
    for name in catalog:
        for path in sorted((repo / "config" / "recipes" / name).glob("*.yaml")):
            recipe = load_recipe(name, path.stem, repo / "config")
            assert recipe.train.method in METHODS, (name, path.stem)
    assert sorted(released_methods()) == sorted(MAPS)


def test_a_bad_catalog_names_the_file_and_key(tmp_path):
    from semivl.errors import ConfigError
    from semivl.methods.catalog import load_catalog

    path = tmp_path / "methods.yaml"
    path.write_text("methods:\n  mine: {label: Mine, group: extras}\n")
    with pytest.raises(ConfigError, match=r"methods.mine.group: expected one of main"):
        load_catalog(path)
    path.write_text(
        "methods:\n  mine: {label: Mine, group: main, claims: [{above: nope, source: me}]}\n"
    )
    with pytest.raises(ConfigError, match="'nope' is not a method of the catalog"):
        load_catalog(path)


def test_an_unknown_method_is_refused_with_the_registered_ones():
    from semivl.errors import ConfigError
    from semivl.methods import get_method

    with pytest.raises(ConfigError, match=r"train.method: expected one of \[.*'semivl'"):
        get_method("mixmatch")


def test_grids_and_plan_import_no_torch(repo, tmp_path):
    """The registry, the catalog, recipes, grids and `semivl plan` answer without torch."""
    import subprocess
    import sys

    code = (
        "import sys; from semivl.grid import load_grid; from semivl.recipes import "
        "load_recipe; from semivl.bench.plan import plan_grid; "
        "g = load_grid('config/grids/fixmatch_demo.yaml'); "
        "[load_recipe(m, d) for m, d in g.recipes()]; plan_grid(g); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_the_repositorys_own_methods_are_found_without_an_install(monkeypatch):
    """Run from a source tree (PYTHONPATH=., as the GPU acceptance check does), no installed
    metadata: the methods and models of pyproject.toml's entry-point groups still register."""
    import semivl.entry_points as ep
    from semivl.methods import registry

    monkeypatch.setattr(ep, "entry_points", lambda group: [])
    monkeypatch.setattr(registry, "_METHODS", {})
    monkeypatch.setattr(registry, "_loaded", False)
    assert {"supervised", "unimatch", "semivl", "unimatch_v2", "fixmatch"} <= set(
        registry.methods()
    )
    models = {name for name, _, _ in ep.group_entries("semivl.models")}
    assert {"tiny_fcn", "semivl", "deeplabv3plus", "unimatch_v2"} <= models
