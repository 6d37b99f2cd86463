"""Upstream SemiVL's text embeddings as a check and as an option (config/upstream_text.yaml).

The upstream files are fabricated in upstream's format (float16 .npy, one L2-normalised row
per text) from the random tiny CLIP's own embeddings of the toy class texts, so that they
agree, and served from a local HTTP server; the tiny CLIP is marked as the one upstream used.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import torch
import yaml
from http_fixture import FileServer

from semivl.cli import EXIT_ERROR, main
from semivl.config import ConfigError, load_dataset_config
from semivl.download import sha256_of
from semivl.models.text_reference import COSINE_MIN
from semivl.recipes import load_recipe

CLIP = "tiny_clip_random"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
NAMES, CONCEPTS = "toy_names.npy", "toy_concepts.npy"
SERVED = f"upstream/semivl/{COMMIT}/emb"  # the server's path of the files


@pytest.fixture(scope="module")
def own(tmp_path_factory, repo) -> dict:
    """The tiny CLIP's file and its own toy embeddings (fp32, as ``semivl text`` computes)."""
    from semivl.models.clip_source import fetch_clip, load_clip
    from semivl.models.text import class_text_embeddings, load_class_texts

    clip_dir = tmp_path_factory.mktemp("clip")
    fetch_clip(CLIP, repo / "config", clip_dir / f"{CLIP}.pt")
    texts = load_class_texts(load_dataset_config("toy", repo / "config"), repo / "config")
    embeddings = class_text_embeddings(load_clip(CLIP, repo / "config", clip_dir), texts)
    return {"clip_dir": clip_dir, **{k: v.float() for k, v in embeddings.items()}}


def npy(rows: torch.Tensor, dtype=np.float16) -> bytes:
    """``rows`` as upstream stores them: L2-normalised, float16, ``np.save``."""
    buffer = io.BytesIO()
    np.save(buffer, torch.nn.functional.normalize(rows.double(), dim=-1).numpy().astype(dtype))
    return buffer.getvalue()


def nudged(rows: torch.Tensor, index: int, cosine: float) -> torch.Tensor:
    """``rows`` with row ``index`` turned away from itself to the given cosine."""
    out = torch.nn.functional.normalize(rows.double(), dim=-1)
    other = torch.randn(
        out.shape[1], generator=torch.Generator().manual_seed(index), dtype=torch.float64
    )
    other = torch.nn.functional.normalize(other - (other @ out[index]) * out[index], dim=0)
    out[index] = cosine * out[index] + (1 - cosine**2) ** 0.5 * other
    return out


def setup_config(config_dir, url: str, mapping: dict, comparable: bool = True) -> None:
    """Point the config copy's upstream_text.yaml at the server (nothing pinned) and mark the
    tiny CLIP as the one upstream computed its embeddings with."""
    (config_dir / "upstream_text.yaml").write_text(
        yaml.safe_dump(
            {
                "repo": "upstream/semivl",
                "commit": COMMIT,
                "folder": "emb",
                "url": url + "/{repo}/{commit}/{folder}/{file}",
                "datasets": {"toy": mapping},
            }
        )
    )
    clips = yaml.safe_load((config_dir / "clip.yaml").read_text())
    clips[CLIP]["upstream_text"] = comparable
    (config_dir / "clip.yaml").write_text(yaml.safe_dump(clips))


def run_text(config_dir, own, tmp_path) -> int:
    return main(
        [
            "text",
            "--dataset",
            "toy",
            "--clip",
            CLIP,
            "--config-dir",
            str(config_dir),
            "--clip-dir",
            str(own["clip_dir"]),
            "--out-dir",
            str(tmp_path / "text"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )


def agreeing(own) -> dict[str, bytes]:
    """Upstream files that agree, the names' row 2 ('dog') least (cosine 0.9995)."""
    return {
        f"{SERVED}/{NAMES}": npy(nudged(own["names"], 2, 0.9995)),
        f"{SERVED}/{CONCEPTS}": npy(own["concepts"]),
    }


MAPPING = {"names": NAMES, "concepts": CONCEPTS}


def test_agreeing_embeddings_pass_and_the_sidecar_records_the_worst_row(
    config_dir, own, tmp_path, capsys
):
    files = agreeing(own)
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == 0
    out = capsys.readouterr().out
    assert "names min cosine 0.9995" in out and "row 2 'dog'" in out
    record = json.loads((tmp_path / "text" / CLIP / "toy.json").read_text())
    assert record["check"] == "passed" and record["cosine_threshold"] == COSINE_MIN
    assert record["upstream"] == {"repo": "upstream/semivl", "commit": COMMIT}
    names = record["variants"]["names"]
    assert names["file"] == NAMES and names["rows"] == 5
    assert names["sha256"] == sha256_of_bytes(files[f"{SERVED}/{NAMES}"])
    assert names["worst_row"]["index"] == 2 and names["worst_row"]["text"] == "dog"
    assert names["min_cosine"] == pytest.approx(0.9995, abs=2e-4)
    assert record["variants"]["concepts"]["check"] == "passed"
    assert record["variants"]["concepts"]["min_cosine"] > 0.9999
    # No upstream file for the toy's concept averages: its definitions are this project's own.
    assert record["variants"]["concept_avg"]["check"] == (
        "not compared: its class definitions are this project's own (definitions_source: project)"
    )
    emb = torch.load(tmp_path / "text" / CLIP / "toy.pt", weights_only=True)
    assert emb["names"].shape == (5, 64)
    copy = tmp_path / "text" / "upstream" / COMMIT[:12] / NAMES
    assert copy.read_bytes() == files[f"{SERVED}/{NAMES}"]


def sha256_of_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("variant,index,text", [("names", 4, "fish"), ("concepts", 3, "cat")])
def test_a_disagreeing_row_fails_naming_dataset_variant_and_row(
    config_dir, own, tmp_path, capsys, variant, index, text
):
    files = agreeing(own)
    file = NAMES if variant == "names" else CONCEPTS
    files[f"{SERVED}/{file}"] = npy(nudged(own[variant], index, 0.995))
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"text embeddings of toy, variant {variant}, vs upstream {file}" in err
    assert re.search(rf"row {index} \('{text}'\) has cosine 0\.99[45]\d*, below 0\.999", err)
    assert not (tmp_path / "text" / CLIP).exists()  # neither the .pt nor its sidecar
    assert not (tmp_path / "text" / "upstream").exists()


def test_a_wrong_row_count_fails(config_dir, own, tmp_path, capsys):
    files = agreeing(own)
    files[f"{SERVED}/{NAMES}"] = npy(own["names"][:4])
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "variant names, vs upstream toy_names.npy: 5 rows here" in err
    assert "but 4 upstream" in err
    assert not (tmp_path / "text" / CLIP / "toy.pt").exists()


@pytest.mark.parametrize(
    "body,message",
    [
        (b"<html>not found</html>", "not a readable .npy file"),
        (
            npy(torch.eye(5, 64), np.float32),
            "expected a float16 array of shape [rows, dim], got float32",
        ),
        (npy(torch.eye(5, 64))[:-40], "not a readable .npy file"),
    ],
)
def test_an_unusable_upstream_file_is_named_and_never_pinned(
    config_dir, own, tmp_path, capsys, body, message
):
    files = {**agreeing(own), f"{SERVED}/{NAMES}": body}
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"upstream text embeddings {NAMES}" in err and message in err
    assert not (config_dir / "upstream_text.lock.yaml").exists()
    assert not (tmp_path / "cache" / COMMIT / NAMES).exists()  # set aside, fetched again


def test_sha256_is_pinned_on_first_fetch_and_a_changed_file_is_refused(
    config_dir, own, tmp_path, capsys
):
    files = agreeing(own)
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == 0
        lock = yaml.safe_load((config_dir / "upstream_text.lock.yaml").read_text())
        assert lock == {
            f"{COMMIT[:12]}/{NAMES}": sha256_of_bytes(files[f"{SERVED}/{NAMES}"]),
            f"{COMMIT[:12]}/{CONCEPTS}": sha256_of_bytes(files[f"{SERVED}/{CONCEPTS}"]),
        }
        requests = len(server.requests)
        assert run_text(config_dir, own, tmp_path) == 0  # from the cache, verified
        assert len(server.requests) == requests
        cached = tmp_path / "cache" / COMMIT / NAMES
        cached.write_bytes(npy(own["names"]))  # agrees, but is not the pinned file
        assert run_text(config_dir, own, tmp_path) == EXIT_ERROR
        assert "does not match the pinned" in capsys.readouterr().err
        cached.unlink()  # and the server now serves a different file: refused too
        server.files[f"{SERVED}/{NAMES}"] = npy(own["names"])
        assert run_text(config_dir, own, tmp_path) == EXIT_ERROR
        assert "sha256 mismatch for toy_names.npy" in capsys.readouterr().err


def test_a_clip_upstream_did_not_use_is_not_compared(config_dir, own, tmp_path, capsys):
    # No server: nothing is fetched for a CLIP that is not upstream's.
    setup_config(config_dir, "http://127.0.0.1:9", MAPPING, comparable=False)
    assert run_text(config_dir, own, tmp_path) == 0
    record = json.loads((tmp_path / "text" / CLIP / "toy.json").read_text())
    assert record["check"].startswith(
        f"not compared: CLIP '{CLIP}' is not the model upstream computed its text embeddings with"
    )
    assert "upstream_text is false in config/clip.yaml" in record["check"]
    assert "variants" not in record
    assert "upstream check not compared" in capsys.readouterr().out


UPSTREAM_RECIPE = "base: ../semivl/toy.yaml\nmodel: {args: {text_embeddings: upstream}}\n"


def write_upstream_recipe(config_dir, text: str = UPSTREAM_RECIPE) -> None:
    (config_dir / "recipes" / "semivl_upstream").mkdir(exist_ok=True)
    (config_dir / "recipes" / "semivl_upstream" / "toy.yaml").write_text(text)


def test_the_upstream_option_is_checked_at_recipe_load(config_dir):
    write_upstream_recipe(config_dir, UPSTREAM_RECIPE.replace("upstream}", "theirs}"))
    with pytest.raises(
        ConfigError,
        match=r"semivl_upstream/toy.yaml: model.args."
        r"text_embeddings: expected 'project' or 'upstream', got 'theirs'",
    ):
        load_recipe("semivl_upstream", "toy", config_dir)
    write_upstream_recipe(config_dir)
    setup_config(config_dir, "http://127.0.0.1:9", MAPPING, comparable=False)
    with pytest.raises(
        ConfigError,
        match=r"semivl_upstream/toy.yaml: model.args."
        r"text_embeddings: 'upstream': needs the CLIP upstream computed them "
        r"with; 'tiny_clip_random' has upstream_text: false",
    ):
        load_recipe("semivl_upstream", "toy", config_dir)
    setup_config(config_dir, "http://127.0.0.1:9", {"names": NAMES})
    with pytest.raises(
        ConfigError,
        match=r"semivl_upstream/toy.yaml: .*upstream has no "
        r"concept_max text embeddings for toy \(guidance.text",
    ):
        load_recipe("semivl_upstream", "toy", config_dir)


def test_the_upstream_option_trains_on_upstream_rows_and_provenance_records_the_check(
    config_dir, own, toy_root, tmp_path
):
    from semivl.engine.guidance import build_guidance
    from semivl.engine.trainer import RunSpec
    from semivl.models import build_model

    files = agreeing(own)
    with FileServer(files) as server:
        setup_config(config_dir, server.url, MAPPING)
        assert run_text(config_dir, own, tmp_path) == 0
    write_upstream_recipe(config_dir)
    recipe = load_recipe("semivl_upstream", "toy", config_dir)
    splits = toy_root.parent / "splits"
    spec = RunSpec(
        recipe=recipe,
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        val_split=splits / "val.txt",
        out_dir=tmp_path / "run",
        seed=0,
        config_dir=config_dir,
        clip_dir=own["clip_dir"],
        text_dir=tmp_path / "text",
    )
    model = build_model(recipe.model, 5, spec.model_context())
    upstream_names = torch.from_numpy(np.load(io.BytesIO(files[f"{SERVED}/{NAMES}"]))).float()
    assert torch.equal(model.text_embeddings, upstream_names)  # not the project's own rows
    assert not torch.allclose(model.text_embeddings, own["names"].half().float(), atol=1e-3)
    guidance = build_guidance(recipe, model, spec.model_context())
    upstream_concepts = np.load(io.BytesIO(files[f"{SERVED}/{CONCEPTS}"]))
    assert torch.equal(guidance.text.float(), torch.from_numpy(upstream_concepts).float())
    assert torch.equal(guidance.concept_class, own["concept_class"])

    run = tmp_path / "run"
    common = [
        "--dataset",
        "toy",
        "--split",
        "6",
        "--method",
        "semivl_upstream",
        "--seed",
        "0",
        "--data-root",
        str(toy_root),
        "--splits-dir",
        str(splits),
        "--config-dir",
        str(config_dir),
        "--clip-dir",
        str(own["clip_dir"]),
        "--text-dir",
        str(tmp_path / "text"),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(["train", *common, "--out", str(run)]) == 0
    record = json.loads((run / "provenance.json").read_text())["text_embeddings"]
    assert record["source"] == "upstream"
    assert record["check"]["check"] == "passed"
    assert record["check"]["variants"]["names"]["worst_row"]["text"] == "dog"
    assert record["upstream"]["files"] == {
        NAMES: sha256_of_bytes(files[f"{SERVED}/{NAMES}"]),
        CONCEPTS: sha256_of_bytes(files[f"{SERVED}/{CONCEPTS}"]),
    }
    assert record["sha256"] == sha256_of(tmp_path / "text" / CLIP / "toy.pt")

    # The copy training reads is verified on every use.
    copy = tmp_path / "text" / "upstream" / COMMIT[:12] / NAMES
    copy.write_bytes(npy(own["names"]))
    with pytest.raises(ValueError, match=r"toy_names.npy: sha256 .* does not match the pinned"):
        build_model(recipe.model, 5, spec.model_context())


def test_provenance_of_a_project_run_records_the_sidecar(config_dir, own, tmp_path):
    from semivl.models.text_reference import run_text_record
    from semivl.provenance import write_provenance

    setup_config(config_dir, "http://127.0.0.1:9", MAPPING, comparable=False)
    assert run_text(config_dir, own, tmp_path) == 0
    recipe = load_recipe("semivl", "toy", config_dir)
    (tmp_path / "run").mkdir()
    written = write_provenance(
        tmp_path / "run",
        seed=0,
        configs=[],
        text_embeddings=(run_text_record(recipe, tmp_path / "text", config_dir)),
    )
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())["text_embeddings"]
    assert record == written["text_embeddings"] and record["source"] == "project"
    assert record["check"]["check"].startswith("not compared: CLIP 'tiny_clip_random'")
    assert (
        run_text_record(load_recipe("supervised", "toy", config_dir), tmp_path / "text", config_dir)
        is None
    )


# Rows of upstream's files (docs/upstream.md, SemiVL text embeddings; checked on the files at
# the pinned commit).
UPSTREAM_ROWS = {
    "voc12_wbg_single.npy": 21,
    "voc12_wbg_concept4_single.npy": 98,
    "voc12_wbg_conceptavg4_single.npy": 21,
    "coco_single.npy": 81,
    "ade_single.npy": 150,
    "cityscapes_single.npy": 19,
    "cityscapes_concept3_single.npy": 54,
    "cityscapes_conceptavg3_single.npy": 19,
}


def test_the_shipped_mapping_fits_the_class_texts(repo):
    from semivl.models.text import load_class_texts
    from semivl.models.text_reference import load_upstream_text, row_texts

    config = repo / "config"
    ref = load_upstream_text(config)
    assert ref.commit == "13ee65d6f27e197e0b55d987b346fc880fc811ca"
    assert sorted(ref.sha256) == sorted(UPSTREAM_ROWS)
    for dataset, files in ref.datasets.items():
        texts = load_class_texts(load_dataset_config(dataset, config), config)
        if texts.definitions_source == "project":
            assert set(files) == {"names"}, dataset  # no upstream definitions to compare
        rows = row_texts(texts)
        assert {key: len(rows[key]) for key in files} == {
            key: UPSTREAM_ROWS[file] for key, file in files.items()
        }, dataset
