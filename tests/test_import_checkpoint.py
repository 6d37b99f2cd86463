"""`semivl import-checkpoint`: upstream best.pth files (fabricated from this project's models
through the inverse maps) become run folders that `semivl evaluate` scores; anything but a
complete fit is refused; URLs are pinned; the grid's `released:` reaches the workflow and the
tables."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, copy_workflow_files, snakemake_localrules
from http_fixture import FileServer

from semivl.cli import main
from semivl.config import ConfigError
from semivl.engine import upstream_checkpoint as U
from semivl.grid import load_grid
from semivl.models import build_model
from semivl.models.semivl_model import ModelContext
from semivl.recipes import load_recipe

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def semivl_files(tmp_path_factory):
    """The tiny random CLIP of the toy SemiVL test recipe and its toy text embeddings."""
    base = tmp_path_factory.mktemp("semivl_files")
    clip, text = base / "clip", base / "text"
    assert (
        main(
            [
                "clip",
                "fetch",
                "--name",
                "tiny_clip_random",
                "--config-dir",
                str(REPO / "config"),
                "--out-dir",
                str(clip),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "text",
                "--dataset",
                "toy",
                "--clip",
                "tiny_clip_random",
                "--config-dir",
                str(REPO / "config"),
                "--clip-dir",
                str(clip),
                "--out-dir",
                str(text),
            ]
        )
        == 0
    )
    return clip, text


def _model(
    method: str, config_dir: Path, files=None, num_classes: int | None = None, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A toy model of ``method`` whose every tensor is randomised (unlike a fresh build)."""
    recipe = load_recipe(method, "toy", config_dir)
    context = None
    if files is not None:
        context = ModelContext(
            dataset=recipe.dataset,
            crop_size=recipe.augment.crop_size,
            config_dir=config_dir,
            clip_dir=files[0],
            text_dir=files[1],
        )
    model = build_model(recipe.model, num_classes or recipe.dataset.num_classes, context)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for key, tensor in state.items():
            if tensor.is_floating_point() and key != "text_embeddings":
                noise = torch.randn(tensor.shape, generator=gen) * 0.05
                tensor.copy_(tensor.abs() + 0.5 if "running_var" in key else tensor + noise)
            elif key.endswith("num_batches_tracked"):
                tensor.fill_(1234)
    return model.state_dict()


def _teacher(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A frozen-teacher part as upstream SemiVL saves it (dropped on import)."""
    return {
        f"clip_encoder.{k.removeprefix('backbone.')}": v.clone()
        for k, v in state.items()
        if k.startswith("backbone.")
    }


def _sha(path: Path) -> str:
    from semivl.download import sha256_of

    return sha256_of(path)


def _args(method: str, config_dir: Path, out: Path, files=None) -> list[str]:
    args = [
        "import-checkpoint",
        "--method",
        method,
        "--dataset",
        "toy",
        "--split",
        "6",
        "--config-dir",
        str(config_dir),
        "--out",
        str(out),
    ]
    if files is not None:
        args += ["--clip-dir", str(files[0]), "--text-dir", str(files[1])]
    return args


def _evaluate(run: Path, method: str, toy_root: Path, config_dir: Path, files=None) -> dict:
    args = [
        "evaluate",
        "--dataset",
        "toy",
        "--split",
        "6",
        "--method",
        method,
        "--data-root",
        str(toy_root),
        "--splits-dir",
        str(toy_root.parent / "splits"),
        "--config-dir",
        str(config_dir),
        "--run-dir",
        str(run),
        "--no-progress",
    ]
    if files is not None:
        args += ["--clip-dir", str(files[0]), "--text-dir", str(files[1])]
    assert main(args) == 0
    return json.loads((run / "metrics.json").read_text())


# --------------------------------------------------------------------------------------------
# The maps on the real architectures
# --------------------------------------------------------------------------------------------


def test_maps_cover_the_voc_architectures_both_ways():
    """docs/upstream.md, Checkpoint layouts: VOC decoder 68 tensors / 2,217,185 parameters,
    ResNet-101 DeepLabV3+ 692 / 59,468,085; SemiVL's ViT-B/16 tensors in mmseg's layouts."""
    from baselines.unimatch import DeepLabV3Plus
    from semivl.models.vlg_head import VLGHead

    head = {f"decode_head.{k}": v for k, v in VLGHead().state_dict().items()}
    up = U.to_upstream(head, "semivl")
    assert len(up) == 68 and sum(v.numel() for v in up.values()) == 2_217_185
    assert {
        "decode_head.aspp.aspp_convs.4.gap.1.weight",
        "decode_head.up2.conv.4.bias",
        "decode_head.layers.1.transformer.ffn.layers.0.0.weight",
        "decode_head.head.weight",
        "decode_head.skip_proj.0.0.weight",
    } <= set(up)
    back = U.to_project(up, "semivl")
    assert back.unmapped == [] and all(torch.equal(back.state[k], v) for k, v in head.items())

    net = DeepLabV3Plus(21, backbone="resnet101")
    state = net.state_dict()
    up = U.to_upstream(state, "unimatch")
    assert len(up) == 692 and sum(p.numel() for p in net.parameters()) == 59_468_085
    assert {
        "head.b4.gap.1.weight",
        "head.b0.1.running_var",
        "fuse.4.weight",
        "classifier.bias",
        "reduce.0.weight",
        "backbone.layer4.2.conv3.weight",
    } <= set(up)
    back = U.to_project(up, "unimatch")
    assert set(back.state) == set(state) and all(
        torch.equal(back.state[k], state[k]) for k in state
    )

    recipe = load_recipe("semivl", "pascal", REPO / "config")
    context = ModelContext(
        dataset=recipe.dataset, crop_size=512, config_dir=REPO / "config", random_init=True
    )
    state = build_model(recipe.model, 21, context).state_dict()
    up = U.to_upstream(state, "semivl")
    assert len(up) == len(state) - 1  # the class text embeddings are not saved upstream
    assert up["backbone.cls_token"].shape == (1, 1, 768)
    assert up["backbone.pos_embed"].shape == (1, 1 + 32 * 32, 768)
    assert up["backbone.proj.weight"].shape == (512, 768, 1, 1)
    assert torch.equal(up["backbone.proj.weight"][:, :, 0, 0], state["backbone.proj"].t())
    assert "backbone.layers.11.ffn.layers.1.weight" in up and "backbone.ln1.bias" in up
    back = U.to_project(up, "semivl")
    assert set(back.state) == set(state) - {"text_embeddings"}
    assert all(torch.equal(back.state[k], state[k]) for k in back.state)


# --------------------------------------------------------------------------------------------
# Imports that fit
# --------------------------------------------------------------------------------------------


def test_semivl_import_is_exact_and_evaluates_like_the_original(
    toy_root, config_dir, semivl_files, tmp_path, capsys
):
    from semivl.engine.evaluate import evaluate_weights

    state = _model("semivl", config_dir, semivl_files)
    torch.save(state, tmp_path / "original.pt")
    best = tmp_path / "best.pth"
    torch.save(U.upstream_file(state, "semivl", extra=_teacher(state)), best)
    teacher = len(_teacher(state))
    run = tmp_path / "released" / "semivl"
    assert main([*_args("semivl", config_dir, run, semivl_files), str(best)]) == 0
    out = capsys.readouterr().out
    print(out)
    assert f"dropped {teacher} (clip_encoder.*" in out and "missing 0, unexpected 0" in out
    assert "kept 1 from the model built here" in out and "text_embeddings" in out
    assert f"mapped {len(state) - 1} " in out

    imported = torch.load(run / "model.pt", weights_only=True)
    assert imported.keys() == state.keys()
    for key in state:
        assert torch.equal(imported[key], state[key]), key
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["imported"] is True and "final_eval" not in summary
    assert summary["num_labeled"] == 6 and summary["best_miou"] is None
    assert summary["upstream"]["epoch"] == 79
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["sha256"] == _sha(best) and provenance["source"] == str(best)
    assert provenance["keys"]["dropped"] == teacher
    assert provenance["keys"]["dropped_prefixes"] == ["clip_encoder"]
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["recipe"]["model"]["name"] == "semivl" and config["imported"]["sha256"]

    metrics = _evaluate(run, "semivl", toy_root, config_dir, semivl_files)
    assert "an imported upstream checkpoint" in capsys.readouterr().out  # recomputed
    recipe = load_recipe("semivl", "toy", config_dir)
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=config_dir,
        clip_dir=semivl_files[0],
        text_dir=semivl_files[1],
    )
    direct = evaluate_weights(
        recipe,
        toy_root,
        toy_root.parent / "splits" / "val.txt",
        tmp_path / "original.pt",
        torch.device("cpu"),
        progress=False,
        context=context,
    )
    assert metrics["miou"] == direct.miou and metrics["per_class_iou"] == direct.per_class_iou
    assert metrics["seed"] is None and metrics["imported_from"]["sha256"] == _sha(best)


def test_unimatch_import_of_an_ema_checkpoint(toy_root, config_dir, tmp_path, capsys):
    state = _model("unimatch", config_dir)
    best = tmp_path / "best.pth"
    file = U.upstream_file(state, "unimatch", weights_key="ema_model")
    file["previous_best"] = 61.25
    torch.save(file, best)
    run = tmp_path / "run"
    assert main([*_args("unimatch", config_dir, run), str(best)]) == 0
    out = capsys.readouterr().out
    assert "read 'ema_model' of epoch 79, upstream's val mIoU 61.25" in out
    assert f"mapped {len(state)} " in out and "dropped" not in out
    imported = torch.load(run / "model.pt", weights_only=True)
    assert all(torch.equal(imported[k], state[k]) for k in state)
    assert imported["decoder.fuse.1.1.num_batches_tracked"].item() == 1234
    original = tmp_path / "original"
    shutil.copytree(run, original)
    torch.save(state, original / "model.pt")
    a = _evaluate(run, "unimatch", toy_root, config_dir)
    b = _evaluate(original, "unimatch", toy_root, config_dir)
    assert a["miou"] == b["miou"] and a["per_class_iou"] == b["per_class_iou"]


# --------------------------------------------------------------------------------------------
# Refusals: one line naming the key, exit code 2, nothing written
# --------------------------------------------------------------------------------------------


def _refused(args: list[str], out: Path, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Nothing was written" in err
    assert not out.exists() or (out / "keep.txt").is_file()
    assert not (out / "model.pt").exists()
    return err


def test_a_checkpoint_of_another_dataset_is_refused(config_dir, tmp_path, capsys):
    best = tmp_path / "best.pth"
    torch.save(U.upstream_file(_model("unimatch", config_dir, num_classes=21), "unimatch"), best)
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("an earlier import")  # an existing folder stays as it was
    err = _refused([*_args("unimatch", config_dir, out), str(best)], out, capsys)
    assert (
        "decoder.classifier.weight (upstream classifier.weight): [21, 16, 1, 1] in the "
        "file, [5, 16, 1, 1] in the model" in err
    )
    assert "looks like a pascal checkpoint (21 classes) but --dataset toy has 5" in err
    assert (out / "keep.txt").read_text() == "an earlier import"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")] == []


def test_a_checkpoint_of_another_method_is_refused(config_dir, semivl_files, tmp_path, capsys):
    unimatch = tmp_path / "unimatch.pth"
    torch.save(U.upstream_file(_model("unimatch", config_dir), "unimatch"), unimatch)
    semivl = tmp_path / "semivl.pth"
    torch.save(U.upstream_file(_model("semivl", config_dir, semivl_files), "semivl"), semivl)
    out = tmp_path / "run"
    err = _refused([*_args("semivl", config_dir, out, semivl_files), str(unimatch)], out, capsys)
    assert "classifier.*" in err and "pass --method unimatch" in err
    err = _refused([*_args("unimatch", config_dir, out), str(semivl)], out, capsys)
    assert "decode_head.*" in err and "pass --method semivl" in err
    mine = tmp_path / "model.pt"  # this project's own names
    torch.save(_model("unimatch", config_dir), mine)
    err = _refused([*_args("unimatch", config_dir, out), str(mine)], out, capsys)
    assert "this project's own parameter names" in err


@pytest.mark.parametrize(
    "edit, expected",
    [
        ("missing", "1 tensor(s) of the model are not in the file: decoder.fuse.1.1.running_var"),
        (
            "shape",
            "decoder.reduce.0.weight (upstream reduce.0.weight): [8, 30, 1, 1] in the file, "
            "[8, 64, 1, 1] in the model",
        ),
        ("unexpected", "1 key(s) of the file have no place in the model: head.b5.0.weight"),
    ],
)
def test_a_partial_fit_is_refused(config_dir, tmp_path, capsys, edit, expected):
    file = U.upstream_file(_model("unimatch", config_dir), "unimatch")
    weights = file["model"]
    if edit == "missing":
        del weights["module.fuse.4.running_var"]
    elif edit == "shape":
        weights["module.reduce.0.weight"] = weights["module.reduce.0.weight"][:, :30]
    else:
        weights["module.head.b5.0.weight"] = torch.zeros(3)
    torch.save(file, tmp_path / "best.pth")
    out = tmp_path / "run"
    err = _refused([*_args("unimatch", config_dir, out), str(tmp_path / "best.pth")], out, capsys)
    assert expected in err
    assert not out.exists()


def test_a_position_table_of_another_crop_is_refused(config_dir, semivl_files, tmp_path, capsys):
    file = U.upstream_file(_model("semivl", config_dir, semivl_files), "semivl")
    pos = file["model"]["module.backbone.pos_embed"]
    file["model"]["module.backbone.pos_embed"] = torch.zeros(1, 1 + 64, pos.shape[-1])
    torch.save(file, tmp_path / "best.pth")
    out = tmp_path / "run"
    err = _refused(
        [*_args("semivl", config_dir, out, semivl_files), str(tmp_path / "best.pth")], out, capsys
    )
    assert (
        "backbone.positional_embedding (upstream backbone.pos_embed): [65, 64] in the file" in err
    )
    assert "1 + 64 entries (8 x 8 patches" in err and "1 + 4 x 4" in err


def test_bad_files_are_refused(config_dir, tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    assert main([*_args("unimatch", config_dir, tmp_path / "a"), str(tmp_path / "notes.pth")]) == 2
    assert "weights_only=True" in capsys.readouterr().err
    assert main([*_args("unimatch", config_dir, tmp_path / "a"), str(tmp_path / "no.pth")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert (
        main(
            [
                "import-checkpoint",
                "--method",
                "supervised",
                "--dataset",
                "toy",
                "--split",
                "6",
                "--config-dir",
                str(config_dir),
                str(tmp_path / "no.pth"),
            ]
        )
        == 2
    )
    assert (
        "maps upstream files of ['semivl', 'unimatch', 'unimatch_v2'], not of 'supervised'"
        in capsys.readouterr().err
    )
    torch.save(U.upstream_file(_model("unimatch", config_dir), "unimatch"), tmp_path / "b.pth")
    assert (
        main(
            [
                "import-checkpoint",
                "--method",
                "unimatch",
                "--dataset",
                "toy",
                "--split",
                "7",
                "--config-dir",
                str(config_dir),
                str(tmp_path / "b.pth"),
            ]
        )
        == 2
    )
    assert "--split '7': expected one of" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# URLs: downloaded once, sha256 pinned, then verified
# --------------------------------------------------------------------------------------------


def test_url_import_pins_then_verifies(config_dir, tmp_path, capsys):
    from semivl.released import cache_path, lock_path

    best = tmp_path / "best.pth"
    torch.save(U.upstream_file(_model("unimatch", config_dir), "unimatch"), best)
    cache = tmp_path / "cache"
    page = b"<!DOCTYPE html><html>Google Drive - virus scan warning</html>"
    files = {
        "ckpt/best.pth": best.read_bytes(),
        "ckpt/best.pth?v=2": best.read_bytes(),
        "drive/view": page,
    }
    with FileServer(files) as server:
        url = f"{server.url}/ckpt/best.pth"
        args = [
            *_args("unimatch", config_dir, tmp_path / "run"),
            "--cache-dir",
            str(cache),
            "--no-progress",
            url,
        ]
        assert main(args) == 0
        lock = yaml.safe_load(lock_path(config_dir).read_text())
        assert lock == {url: _sha(best)}
        assert cache_path(url, cache).read_bytes() == best.read_bytes()
        gets = len(server.requests)
        assert main(args) == 0  # from the cache, verified against the pin
        assert len(server.requests) == gets
        provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
        assert provenance["source"] == url and provenance["sha256"] == _sha(best)
        capsys.readouterr()
        cached = cache_path(url, cache)
        cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")  # damaged
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"does not match the pinned {_sha(best)}" in err and "released.lock" in err
        # A URL that serves a web page (a share link) is not taken for the file.
        assert main([*args[:-1], f"{server.url}/drive/view"]) == 2
        assert "web page" in capsys.readouterr().err
        # The grid's (or --sha256) checksum is checked on first download.
        other = tmp_path / "other"
        assert (
            main(
                [
                    *_args("unimatch", config_dir, tmp_path / "run2"),
                    "--cache-dir",
                    str(other),
                    "--no-progress",
                    "--sha256",
                    "0" * 64,
                    f"{server.url}/ckpt/best.pth?v=2",
                ]
            )
            == 2
        )
        assert "sha256 mismatch" in capsys.readouterr().err
        assert not (tmp_path / "run2").exists()


# --------------------------------------------------------------------------------------------
# The grid key, the workflow and the table row
# --------------------------------------------------------------------------------------------


def _grid(tmp_path: Path, released: list) -> Path:
    data = {
        "results_dir": "results",
        "config_dir": str(REPO / "config"),
        "grid": {
            "datasets": ["toy"],
            "splits": [{"dataset": "toy", "split": "6"}],
            "methods": ["unimatch"],
            "seeds": [0],
        },
        "released": released,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"dataset": "toy", "split": "6", "method": "unimatch"},
            "config.released[0]: expected exactly one of `file` (a path) and `url`, got neither",
        ),
        (
            {"dataset": "toy", "split": "6", "method": "unimatch", "file": "a", "url": "https://b"},
            "got both",
        ),
        (
            {"dataset": "toy", "split": "6", "method": "supervised", "file": "a"},
            # config/methods.yaml's released methods, V2 included (import-checkpoint maps all three)
            "config.released[0].method: expected one of ['unimatch', 'semivl', 'unimatch_v2']",
        ),
        (
            {"dataset": "pascal", "split": "92", "method": "semivl", "file": "a"},
            "config.released[0].dataset: expected one of ['toy'] (grid.datasets)",
        ),
        (
            {"dataset": "toy", "split": "6", "method": "unimatch", "url": "ftp://x/best.pth"},
            "config.released[0].url: expected an https URL",
        ),
        (
            {"dataset": "toy", "split": "6", "method": "unimatch", "file": "a", "sha256": "abc"},
            "config.released[0].sha256: expected 64 hex digits",
        ),
    ],
)
def test_released_grid_key_is_validated(tmp_path, entry, message):
    import jsonschema

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_grid(_grid(tmp_path, [entry]))
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    data = yaml.safe_load((tmp_path / "grid.yaml").read_text())
    if "grid.datasets" not in message:  # a cross-key check the schema cannot express
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, schema)


def test_the_schema_names_the_released_methods_of_the_catalog():
    """Snakemake's schema and the loader accept the same methods in `released:`."""
    from semivl.methods.catalog import released_methods

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    method = schema["properties"]["released"]["items"]["properties"]["method"]
    assert sorted(method["enum"]) == sorted(released_methods())


def test_released_grid_key_lists_and_expands(tmp_path):
    from semivl.released import cache_path

    entries = [
        {"dataset": "toy", "split": "6", "method": "unimatch", "file": "ckpt/u.pth"},
        {
            "dataset": "toy",
            "split": "6",
            "method": "semivl",
            "url": "https://example.org/semivl/best.pth",
            "sha256": "A" * 64,
        },
    ]
    grid = load_grid(_grid(tmp_path, entries))
    assert [r.source for r in grid.released] == ["ckpt/u.pth", entries[1]["url"]]
    lists = grid.expanded()
    assert lists["released_imports"]["toy-6-unimatch"]["checkpoint"] == "ckpt/u.pth"
    assert lists["released_imports"]["toy-6-semivl"]["pin"] == "--sha256 " + "a" * 64
    (download,) = lists["released_downloads"].values()
    assert download["path"] == cache_path(entries[1]["url"]).as_posix()
    assert lists["released_table_dep"] == "results/released"
    with pytest.raises(ConfigError, match=r"released\[1\]: toy 6 unimatch is already"):
        load_grid(_grid(tmp_path, [entries[0], entries[0]]))
    assert load_grid(_grid(tmp_path, [])).expanded()["released_imports"] == {}


def _table_inputs(tmp_path: Path) -> tuple[Path, Path]:
    frame = pd.DataFrame(
        [
            {
                "dataset": "toy",
                "split": "6",
                "num_labeled": 6,
                "method": method,
                "seed": seed,
                "miou": miou + seed,
                "miou_best": miou + seed + 1,
                "best_iter": 10,
                "final_iter": 12,
            }
            for method, miou in (("unimatch", 40.0), ("semivl", 50.0))
            for seed in (0, 1)
        ]
    )
    frame.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "published.csv").write_text(
        "dataset,split,labeled_images,method,backbone,miou,protocol,source\n"
        "toy,6,6,unimatch,ResNet-101 DeepLabV3+,44.0,best-on-val,UniMatch README\n"
        "toy,48,48,unimatch,ResNet-101 DeepLabV3+,60.0,best-on-val,UniMatch README\n"
    )
    return tmp_path / "metrics.csv", tmp_path / "published.csv"


def _released_metrics(folder: Path, split: str, miou: float, labeled: int) -> Path:
    path = folder / "toy" / split / "unimatch" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "dataset": "toy",
                "split": split,
                "num_labeled": labeled,
                "method": "unimatch",
                "seed": None,
                "miou": miou,
                "imported_from": {"source": "https://example.org/u.pth", "sha256": "ab" * 32},
            }
        )
    )
    return path


def test_table_shows_the_released_row_beside_the_published_one(tmp_path, capsys):
    metrics, published = _table_inputs(tmp_path)
    plain = tmp_path / "plain.md"
    common = [
        "table",
        "--metrics",
        str(metrics),
        "--published",
        str(published),
        "--config-dir",
        str(REPO / "config"),
    ]
    assert main([*common, "--out", str(plain), "--released"]) == 0
    assert "released checkpoint" not in plain.read_text()
    released = tmp_path / "released"
    _released_metrics(released, "6", 45.25, 6)
    _released_metrics(released, "48", 58.0, 48)  # a split this grid did not train
    out = tmp_path / "tables.md"
    assert (
        main(
            [
                *common,
                "--out",
                str(out),
                "--released-dir",
                str(released),
                "--released-dir",
                str(tmp_path / "absent"),
            ]
        )
        == 0
    )
    text = out.read_text()
    print(text)
    lines = text.splitlines()
    i = lines.index("| UniMatch | 40.5 ± 0.7 (2) | – |")
    assert lines[i + 1].startswith("| ↳ published [1] | 44.0 | 60.0 |")
    assert lines[i + 2] == "| ↳ Δ to published | −3.5 | – |"
    assert lines[i + 3] == "| ↳ released checkpoint, evaluated here ¶ | 45.2 | 58.0 |"
    assert lines[i + 4] == "| ↳ Δ released − published | +1.2 | −2.0 |"
    assert text.count("| ↳ released checkpoint, evaluated here ¶ |") == 2  # both tables
    assert "| method | 6 | 48 |" in text
    assert "¶ The authors' released checkpoint" in text
    assert "`https://example.org/u.pth` (sha256 `abababababab`)" in text
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {"dataset": "toy", "split": "6", "method": "unimatch", "miou": 1.0, "num_labeled": 6}
        )
    )
    assert main([*common, "--out", str(out), "--released", str(bad)]) == 2
    assert "not the metrics of an imported checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_snakemake_plans_the_released_jobs_and_dvc_mirrors_them(tmp_path):
    """`snakemake -n released` lists the download (login node), import and evaluate jobs of
    the grid's released checkpoints; `all` includes them through tables.md; DVC declares the
    same outputs."""
    root = tmp_path / "checkout"
    copy_workflow_files(root)
    grid = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    url = "https://example.org/releases/unimatch_toy_6.pth"
    grid["released"] = [
        {"dataset": "toy", "split": "6", "method": "unimatch", "url": url},
        {
            "dataset": "toy",
            "split": "48",
            "method": "semivl",
            "file": "checkpoints/semivl_toy_48.pth",
        },
    ]
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "semivl_toy_48.pth").write_bytes(b"fabricated")
    (root / "config" / "demo.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}

    def run(*cmd: str) -> str:
        proc = subprocess.run(
            list(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    run(str(BIN / "semivl"), "grid", "expand")
    run("git", "init", "-q")
    plan = run(str(BIN / "snakemake"), "-n", "released", "--configfile", "config/demo.yaml")
    from semivl.released import cache_path

    assert f"rule released_download:\n    output: {cache_path(url).as_posix()}" in plan
    local = snakemake_localrules(run)
    assert "released_download" in local  # needs the internet: the login node
    assert not {"released_import", "released_evaluate"} & local
    for d, s, m in (("toy", "6", "unimatch"), ("toy", "48", "semivl")):
        assert f"wildcards: dataset={d}, split={s}, method={m}" in plan
        assert f"results/demo/released/{d}/{s}/{m}/metrics.json" in plan
    assert plan.count("rule released_import:") == 2 and plan.count("rule released_evaluate:") == 2
    everything = run(
        str(BIN / "snakemake"), "-n", "all", "--configfile", "config/demo.yaml", "--quiet", "rules"
    )
    assert "released_import" in everything and "released_evaluate" in everything
    summary = run(str(BIN / "snakemake"), "--configfile", "config/demo.yaml", "--summary")
    smk = {line.split("\t")[0] for line in summary.splitlines()[1:] if "\t" in line}
    code = (
        "from dvc.repo import Repo\n"
        "print('\\n'.join(str(o.def_path) for s in Repo('.').index.stages for o in s.outs))"
    )
    dvc = set(run(sys.executable, "-c", code).split())
    released = {p for p in smk | dvc if "released" in p}
    assert released <= smk and released <= dvc
    assert smk == dvc, f"only Snakemake: {smk - dvc}; only DVC: {dvc - smk}"
