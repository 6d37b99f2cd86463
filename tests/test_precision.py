"""TF32 as each method's upstream ran it, recorded per run; and bf16 autocast that leaves the
frozen CLIP teacher and the pseudo-label confidences in fp32."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from semivl.config import GuidanceConfig
from semivl.engine.guidance import DenseClipGuidance
from semivl.engine.precision import (
    apply_tf32,
    configure_backends,
    current_tf32,
    tf32_for,
)
from semivl.models.clip_vit import ClipFeatures
from semivl.recipes import load_recipe


@pytest.fixture(autouse=True)
def _restore_tf32():
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_upstream_tf32_is_fp32_matmuls_and_tf32_convolutions_for_every_method(repo):
    for method in ("supervised", "unimatch", "semivl", "unimatch_v2"):
        settings = tf32_for(method, "upstream")
        assert (settings.matmul, settings.conv) == (False, True), method
        assert "torch" in settings.source
    from semivl.methods import methods  # every registered method declares its upstream's

    assert {"supervised", "unimatch", "semivl", "unimatch_v2"} <= set(methods())
    assert all(len(m.tf32) == 3 and "upstream" in m.tf32[2] for m in methods().values())
    assert (tf32_for("semivl", "all").matmul, tf32_for("semivl", "none").conv) == (True, False)
    apply_tf32(tf32_for("unimatch", "all"))
    assert current_tf32() == {"tf32_matmul": True, "tf32_conv": True}
    settings = configure_backends("unimatch", "upstream", torch.device("cpu"))
    assert current_tf32() == {"tf32_matmul": False, "tf32_conv": True}
    assert settings["tf32_matmul"] is False and "1.12.1" in settings["tf32_source"]


def test_the_option_keeps_old_fingerprints_and_a_change_is_a_new_run(repo):
    recipe = load_recipe("semivl", "pascal", repo / "config")
    assert recipe.train.speed.tf32 == "upstream"
    assert "tf32" not in recipe.to_dict()["train"]["speed"]  # runs before the key: same hash
    fast = dataclasses.replace(
        recipe,
        train=dataclasses.replace(
            recipe.train, speed=dataclasses.replace(recipe.train.speed, tf32="all")
        ),
    )
    assert fast.to_dict()["train"]["speed"]["tf32"] == "all"


def test_a_run_records_its_precision(toy_root, config_dir, tmp_path):
    from test_trainer import _spec

    from semivl.engine.trainer import train

    train(_spec(toy_root, config_dir, tmp_path / "run"), progress=False)
    dump = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert dump["precision"]["tf32_matmul"] is False and dump["precision"]["tf32_conv"] is True
    assert "upstream" in dump["precision"]["tf32_source"]


class ConvTeacher(torch.nn.Module):
    """A dense 'CLIP' embedding from one convolution: bf16 under autocast, unless kept out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, images):
        return ClipFeatures([], self.conv(images))


def test_guidance_labels_stay_fp32_under_bf16_autocast():
    torch.manual_seed(1)
    text = torch.nn.functional.normalize(torch.randn(5, 16), dim=-1)
    guidance = DenseClipGuidance(ConvTeacher(), text, None, 5, GuidanceConfig(teacher_image_size=8))
    images, ignore = torch.randn(2, 3, 48, 48), torch.zeros(2, 48, 48)
    fp32 = guidance.labels(images, ignore)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = guidance.labels(images, ignore)
    assert (fp32 != 255).any() and (fp32 == 255).any()  # both sides of the 0.9 threshold
    assert torch.equal(mixed, fp32)
