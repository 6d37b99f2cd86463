"""Weights download (against a local HTTP server) and the checkpoint key report."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from http_fixture import FileServer

from baselines.unimatch.resnet import DeepStemResNet
from semivl.download import DownloadError, download
from semivl.weights import fetch, link_into, load_pretrained, read_lock


def _checkpoint_bytes() -> bytes:
    torch.manual_seed(0)
    state = DeepStemResNet([1, 1, 1, 1]).state_dict()
    state["fc.weight"] = torch.zeros(10, 2048)  # an ImageNet head the backbone does not have
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _config_dir(tmp_path: Path, url: str, repo: Path) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(repo / "config" / "weights.yaml", config / "weights.yaml")
    sources = yaml.safe_load((config / "weights.yaml").read_text())
    sources["resnet50"]["urls"] = [f"{url}/missing.pth", f"{url}/resnet50.pth"]
    (config / "weights.yaml").write_text(yaml.safe_dump(sources))
    return config


def test_fetch_pins_then_verifies(tmp_path, repo):
    blob = _checkpoint_bytes()
    with FileServer({"resnet50.pth": blob}) as server:
        config = _config_dir(tmp_path, server.url, repo)
        path = fetch("resnet50", config, tmp_path / "cache", progress=False, retries=1)
        assert path.read_bytes() == blob
        assert read_lock(config) == {"resnet50": hashlib.sha256(blob).hexdigest()}
        served = len(server.requests)
        fetch("resnet50", config, tmp_path / "cache", progress=False)  # cached: no request
        assert len(server.requests) == served
    out = link_into([path], tmp_path / "weights")
    assert (out / "resnet50.pth").read_bytes() == blob


def test_checksum_mismatch_is_refused(tmp_path, repo):
    with FileServer({"resnet50.pth": _checkpoint_bytes()}) as server:
        config = _config_dir(tmp_path, server.url, repo)
        (config / "weights.lock.yaml").write_text("resnet50: '" + "0" * 64 + "'\n")
        with pytest.raises(DownloadError, match="sha256 mismatch") as err:
            fetch("resnet50", config, tmp_path / "cache", progress=False, retries=1)
    assert not (tmp_path / "cache" / "resnet50.pth").exists()
    assert not (tmp_path / "cache" / "resnet50.pth.part").exists()
    aside = tmp_path / "cache" / "resnet50.pth.checksum-mismatch"
    assert aside.exists() and str(aside) in str(err.value)
    assert "0" * 64 in str(err.value) and hashlib.sha256(aside.read_bytes()).hexdigest() in str(
        err.value
    )


def test_interrupted_transfer_resumes(tmp_path):
    blob = bytes(range(256)) * 4000
    with FileServer({"big.bin": blob}, cut_first_after=100_000) as server:
        sha = download(
            [f"{server.url}/big.bin"], tmp_path / "big.bin", retries=3, progress=False, backoff_s=0
        )
    assert (tmp_path / "big.bin").read_bytes() == blob
    assert sha == hashlib.sha256(blob).hexdigest()
    assert server.requests[0]["range"] is None
    resumed_at = int(server.requests[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000  # resumed from what arrived, not restarted


def test_unreachable_source_says_where_to_put_the_file(tmp_path, repo):
    with FileServer({}) as server:
        config = _config_dir(tmp_path, server.url, repo)
        with pytest.raises(DownloadError) as err:
            fetch("resnet50", config, tmp_path / "cache", progress=False, retries=1)
    message = str(err.value)
    assert "HTTP 404" in message and "by hand" in message
    assert str((tmp_path / "cache" / "resnet50.pth").resolve()) in message
    assert read_lock(config) == {}


def test_key_report(tmp_path):
    path = tmp_path / "r.pth"
    path.write_bytes(_checkpoint_bytes())
    torch.manual_seed(1)
    target = DeepStemResNet([1, 1, 1, 1])
    report = load_pretrained(target, path)
    assert report.unexpected == ["fc.weight"] and report.missing == []
    torch.manual_seed(0)
    assert torch.equal(target.conv1[0].weight, DeepStemResNet([1, 1, 1, 1]).conv1[0].weight)
    wrapped = tmp_path / "wrapped.pth"
    state = torch.load(path, weights_only=True)
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in state.items() if not k.startswith("layer4")}},
        wrapped,
    )
    with pytest.raises(ValueError, match="not in the file"):
        load_pretrained(DeepStemResNet([1, 1, 1, 1]), wrapped)
    report = load_pretrained(
        DeepStemResNet([1, 1, 1, 1]), wrapped, allow_missing=True, drop_keys_containing=["fc."]
    )
    assert report.dropped == ["fc.weight"] and report.unexpected == []
    assert report.missing[0].startswith("layer4")


def test_upstream_parameter_names():
    names = set(DeepStemResNet([3, 4, 23, 3]).state_dict())
    for key in (
        "conv1.0.weight",
        "conv1.1.running_mean",
        "conv1.3.weight",
        "conv1.6.weight",
        "bn1.weight",
        "layer1.0.downsample.0.weight",
        "layer3.22.conv3.weight",
        "layer4.2.bn3.bias",
    ):
        assert key in names
    model = DeepStemResNet([3, 4, 23, 3])
    assert model.layer4[0].conv2.stride == (1, 1) and model.layer4[1].conv2.dilation == (2, 2)
