"""`semivl pretrain-clip`: contrastive image-caption pretraining of the demo's tiny CLIP, and
the zero-shot dense CLIP labels of the pretrained model."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
import torch
from conftest import REPO

from semivl.data.prepare.toy import generate_caption_set
from semivl.engine.pretrain_clip import (
    BatchOrder,
    contrastive_loss,
    load_caption_set,
    load_pretrain_config,
    make_batch,
    pretrain_clip,
    tokenize_captions,
)
from semivl.models.clip_source import build_clip, clip_source, fetch_clip, load_clip

CONFIG = REPO / "config"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return generate_caption_set(
        tmp_path_factory.mktemp("scenes") / "scenes", 96, seed=0, progress=False
    )


def _small(**changes):
    cfg = load_pretrain_config("tiny_clip_toy", CONFIG)
    return dataclasses.replace(
        cfg,
        **{
            "steps": 40,
            "batch_size": 32,
            "warmup_steps": 4,
            "log_every": 1,
            "checkpoint_every": 10,
            **changes,
        },
    )


def _loss_on_all(model, scenes, cfg) -> float:
    images, captions = load_caption_set(scenes, cfg.image_size)
    tokens = tokenize_captions(captions, model.context_length)
    model.eval()
    with torch.no_grad():
        flips = torch.zeros(len(captions), dtype=torch.bool)
        return contrastive_loss(
            model, make_batch(images, torch.arange(len(captions)), flips), tokens
        ).item()


def test_a_few_pretraining_steps_reduce_the_contrastive_loss(scenes, tmp_path):
    cfg = _small()
    torch.manual_seed(cfg.seed)
    before = _loss_on_all(build_clip(clip_source(cfg.clip, CONFIG)), scenes, cfg)
    result = pretrain_clip(cfg, "tiny_clip_toy", CONFIG, scenes, tmp_path / "out", progress=False)
    assert result.steps == 40
    state = torch.load(tmp_path / "out" / "model.pt", weights_only=True)["state_dict"]
    model = build_clip(clip_source(cfg.clip, CONFIG))
    model.load_state_dict(state)
    after = _loss_on_all(model, scenes, cfg)
    assert after < 0.9 * before, (before, after)  # measured: 4.82 -> 3.88
    log = (tmp_path / "out" / "log.csv").read_text().splitlines()
    assert log[0] == "step,loss,lr,logit_scale" and len(log) == 41
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_an_interrupted_pretraining_resumes_to_the_same_weights(scenes, tmp_path):
    cfg = _small(steps=20)
    pretrain_clip(cfg, "tiny_clip_toy", CONFIG, scenes, tmp_path / "whole", progress=False)
    stopped = pretrain_clip(
        cfg,
        "tiny_clip_toy",
        CONFIG,
        scenes,
        tmp_path / "parts",
        progress=False,
        stop_after_steps=13,
    )
    assert stopped.steps == 13 and (tmp_path / "parts" / "checkpoint.pt").is_file()
    assert not (tmp_path / "parts" / "model.pt").exists()
    pretrain_clip(cfg, "tiny_clip_toy", CONFIG, scenes, tmp_path / "parts", progress=False)
    whole = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    parts = torch.load(tmp_path / "parts" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(whole[k], parts[k]) for k in whole)
    logs = [(tmp_path / d / "log.csv").read_text() for d in ("whole", "parts")]
    assert logs[0] == logs[1]


def test_batches_are_a_pure_function_of_the_step():
    order = BatchOrder(100, 32, seed=0)
    first = [order.batch(s)[0] for s in range(6)]
    again = [BatchOrder(100, 32, seed=0).batch(s)[0] for s in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    epoch = torch.cat(first[:3])
    assert len(set(epoch.tolist())) == 96  # no repeats within an epoch
    with pytest.raises(ValueError, match="larger than"):
        BatchOrder(10, 32, seed=0)


def test_clip_fetch_loads_the_pretrained_checkpoint(scenes, tmp_path, monkeypatch):
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="semivl pretrain-clip --name tiny_clip_toy"):
        fetch_clip("tiny_clip_toy", config, tmp_path / "clip" / "tiny_clip_toy.pt")
    cfg = _small(steps=5)
    pretrain_clip(
        cfg, "tiny_clip_toy", config, scenes, "resources/pretrained/tiny_clip_toy", progress=False
    )
    assert fetch_clip("tiny_clip_toy", config, tmp_path / "clip" / "tiny_clip_toy.pt")
    assert not fetch_clip("tiny_clip_toy", config, tmp_path / "clip" / "tiny_clip_toy.pt")
    model = load_clip("tiny_clip_toy", config, tmp_path / "clip")
    state = torch.load("resources/pretrained/tiny_clip_toy/model.pt", weights_only=True)[
        "state_dict"
    ]
    assert torch.equal(model.visual.conv1.weight, state["visual.conv1.weight"])
    # a new pretraining is fetched again (the record holds the checkpoint's sha256)
    shutil.rmtree("resources/pretrained/tiny_clip_toy")
    pretrain_clip(
        _small(steps=6),
        "tiny_clip_toy",
        config,
        scenes,
        "resources/pretrained/tiny_clip_toy",
        progress=False,
    )
    assert fetch_clip("tiny_clip_toy", config, tmp_path / "clip" / "tiny_clip_toy.pt")


def test_a_bad_pretraining_config_names_the_file_and_key(tmp_path):
    from semivl.config import ConfigError

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config)
    path = config / "pretrain" / "tiny_clip_toy.yaml"
    text = path.read_text()
    assert "\nwarmup_steps: " in text
    path.write_text(re.sub(r"\nwarmup_steps: \d+", "\nwarmup_steps: 5000", text))
    with pytest.raises(ConfigError, match=r"tiny_clip_toy.yaml: pretrain.warmup_steps"):
        load_pretrain_config("tiny_clip_toy", config)
    with pytest.raises(ConfigError, match="known: \\['tiny_clip_toy'\\]"):
        load_pretrain_config("nope", config)


def test_a_pretraining_size_the_clip_does_not_take_fails_before_writing(tmp_path, scenes):
    from semivl.config import ConfigError

    cfg = dataclasses.replace(_small(), image_size=64)
    with pytest.raises(
        ConfigError,
        match=r"tiny_clip_toy.yaml: pretrain.image_size is 64, "
        r"but .* takes 48-pixel images",
    ):
        pretrain_clip(cfg, "tiny_clip_toy", CONFIG, scenes, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
