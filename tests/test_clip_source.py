"""CLIP weights: fetched once into resources/clip/, then read offline; class text configs."""

import shutil

import pytest
import torch
import yaml

from semivl.config import ConfigError, load_dataset_config
from semivl.models.clip_source import build_clip, clip_source, fetch_clip, load_clip
from semivl.models.text import load_class_texts


def _edit_clip_yaml(config_dir, name, **changes):
    path = config_dir / "clip.yaml"
    data = yaml.safe_load(path.read_text())
    data[name].update(changes)
    path.write_text(yaml.safe_dump(data))


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_random_init_is_seeded_and_refetched_when_the_entry_changes(config_dir, tmp_path):
    assert fetch_clip("tiny_clip_random", config_dir, tmp_path / "a" / "tiny_clip_random.pt")
    assert fetch_clip("tiny_clip_random", config_dir, tmp_path / "b" / "tiny_clip_random.pt")
    a = load_clip("tiny_clip_random", config_dir, tmp_path / "a")
    assert _same_weights(a, load_clip("tiny_clip_random", config_dir, tmp_path / "b"))
    assert not fetch_clip("tiny_clip_random", config_dir, tmp_path / "a" / "tiny_clip_random.pt")
    _edit_clip_yaml(config_dir, "tiny_clip_random", init_seed=1)
    assert fetch_clip("tiny_clip_random", config_dir, tmp_path / "a" / "tiny_clip_random.pt")
    assert not _same_weights(a, load_clip("tiny_clip_random", config_dir, tmp_path / "a"))


def test_local_checkpoint_file(config_dir, tmp_path):
    source = clip_source("tiny_clip_random", config_dir)
    torch.manual_seed(5)
    original = build_clip(source)
    checkpoint = tmp_path / "downloaded" / "open_clip_pytorch_model.bin"
    checkpoint.parent.mkdir()
    torch.save(original.state_dict(), checkpoint)
    _edit_clip_yaml(config_dir, "tiny_clip_random", pretrained=str(checkpoint))
    fetch_clip("tiny_clip_random", config_dir, tmp_path / "clip" / "tiny_clip_random.pt")
    assert _same_weights(original, load_clip("tiny_clip_random", config_dir, tmp_path / "clip"))
    _edit_clip_yaml(config_dir, "tiny_clip_random", pretrained=str(tmp_path / "nope.pt"))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        fetch_clip("tiny_clip_random", config_dir, tmp_path / "x.pt")


def test_pretrained_tag_offline_says_what_to_do(config_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError) as err:
        fetch_clip(
            "clip_vit_b16_openai",
            config_dir,
            tmp_path / "clip" / "x.pt",
            cache_dir=tmp_path / "cache",
        )
    message = str(err.value)
    assert "semivl clip fetch --name clip_vit_b16_openai" in message
    assert "pretrained: /path/to/file" in message
    assert not (tmp_path / "clip" / "x.pt").exists()


def test_unknown_clip_and_bad_file(config_dir, tmp_path):
    with pytest.raises(ConfigError, match="known: \\['clip_vit_b16_openai', 'tiny_clip_random'"):
        clip_source("ViT-L-14", config_dir)
    (tmp_path / "tiny_clip_random.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="tiny_clip_random.pt: unreadable.*--force"):
        load_clip("tiny_clip_random", config_dir, tmp_path)


def test_shipped_class_texts_match_the_datasets(repo):
    counts = {}
    for dataset in ("toy", "pascal", "cityscapes", "coco", "ade20k"):
        texts = load_class_texts(load_dataset_config(dataset, repo / "config"), repo / "config")
        counts[dataset] = sum(len(c) for c in texts.definitions.values())
    assert counts["pascal"] == 98 and counts["cityscapes"] == 54  # upstream concept4/concept3
    pascal = load_class_texts(load_dataset_config("pascal", repo / "config"), repo / "config")
    assert pascal.names[11] == "diningtable" and pascal.definitions_source == "upstream"
    ade = load_class_texts(load_dataset_config("ade20k", repo / "config"), repo / "config")
    assert ade.names[7] == "bed " and ade.definitions_source == "project"


def test_class_texts_must_follow_the_dataset(config_dir):
    path = config_dir / "classes" / "toy.yaml"
    data = yaml.safe_load(path.read_text())
    data["definitions"] = dict(reversed(list(data["definitions"].items())))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError, match="toy.yaml: classes.definitions: expected one entry"):
        load_class_texts(load_dataset_config("toy", config_dir), config_dir)
    shutil.copy(config_dir.parent / "config" / "classes" / "pascal.yaml", path)
    with pytest.raises(ConfigError, match="classes.names: expected 5 names"):
        load_class_texts(load_dataset_config("toy", config_dir), config_dir)
