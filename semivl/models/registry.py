"""A small dict registry: ``build_model(cfg, num_classes)`` builds a plain ``nn.Module``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import nn

from semivl.config import ConfigError, ModelConfig
from semivl.models.clip_config import needs_clip, needs_text, recipe_clip

__all__ = ["MODELS", "build_model", "load_backbone_weights", "needs_clip", "needs_text",
           "recipe_clip", "register_model"]

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Register a model constructor under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise KeyError(f"model {name!r} registered twice")
        MODELS[name] = fn
        return fn

    return wrap


RESERVED_ARGS = ("num_classes", "context")  # passed by build_model, not by recipes


def build_model(cfg: ModelConfig, num_classes: int, context=None) -> nn.Module:
    """Build the registered model ``cfg.name`` with ``cfg.args``; bad args name the key.

    ``context`` (a :class:`~semivl.models.semivl_model.ModelContext`) is passed to builders
    that take one: models whose construction reads files (CLIP weights, text embeddings).
    """
    if cfg.name not in MODELS:
        raise ConfigError(f"model.name: expected one of {sorted(MODELS)}, got {cfg.name!r}")
    builder = MODELS[cfg.name]
    params = inspect.signature(builder).parameters
    for key in cfg.args:
        if key not in params or key in RESERVED_ARGS:
            allowed = sorted(p for p in params if p not in RESERVED_ARGS)
            raise ConfigError(f"model.args.{key}: unknown argument; expected one of {allowed}")
    kwargs = dict(cfg.args)
    if "context" in params:
        if context is None:
            raise ValueError(f"model {cfg.name!r} needs a ModelContext (dataset, crop, files)")
        kwargs["context"] = context
    try:
        return builder(num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.args: {err}") from err


def load_backbone_weights(model: nn.Module, name: str, weights_dir, config_dir):
    """Load the pretrained weights ``name`` into ``model.backbone`` (or the module named by
    the model's ``pretrained_module``); return the key report."""
    from pathlib import Path

    from semivl.weights import load_pretrained, load_sources

    sources = load_sources(config_dir)
    if name not in sources:
        raise ConfigError(f"model.pretrained: expected one of {sorted(sources)}, got {name!r}")
    source = sources[name]
    target = getattr(model, getattr(model, "pretrained_module", "backbone"))
    if target is None:
        raise ConfigError(f"model.pretrained: {name!r} is set but the model has no "
                          f"{model.pretrained_module} to load it into")
    return load_pretrained(target, Path(weights_dir) / source.file,
                           source.drop_keys_containing)


class TinyFCN(nn.Module):
    """A few 3x3 convs without normalisation layers.

    For numerical checks that batch norm would blur (e.g. that two data-parallel processes
    make the same update as one process with their joint batch) and for quick smoke runs.
    It has a ``backbone`` and a ``decoder`` like the real models.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.decoder = nn.Conv2d(width, num_classes, 1)

    def forward(self, x, need_fp: bool = False, fp_rate: float = 0.5):
        feats = self.backbone(x)
        if need_fp:
            feats = torch.cat((feats, nn.functional.dropout2d(feats, fp_rate, training=True)))
            return self.decoder(feats).chunk(2)
        return self.decoder(feats)


@register_model("tiny_fcn")
def _tiny_fcn(num_classes: int, width: int = 16) -> nn.Module:
    return TinyFCN(num_classes, width)


@register_model("deeplabv3plus")
def _deeplabv3plus(num_classes: int, backbone: str = "resnet101",
                   dilations: tuple[int, int, int] = (6, 12, 18),
                   aspp_channels: int | None = None, low_level_channels: int = 48,
                   backbone_width: int | None = None) -> nn.Module:
    from baselines.unimatch import DeepLabV3Plus

    return DeepLabV3Plus(num_classes, backbone=backbone, dilations=tuple(dilations),
                         aspp_channels=aspp_channels, low_level_channels=low_level_channels,
                         backbone_width=backbone_width)


@register_model("unimatch_v2")
def _unimatch_v2(num_classes: int, size: str = "base", embed_dim: int | None = None,
                 patch_size: int | None = None) -> nn.Module:
    from baselines.unimatch_v2 import build_unimatch_v2

    return build_unimatch_v2(num_classes, size, embed_dim, patch_size)


def _register_semivl() -> None:
    from semivl.models.semivl_model import build_semivl
    from semivl.models.vit_deeplab import build_vit_deeplab

    register_model("semivl")(build_semivl)
    # SemiVL's component ablation (spec semivl.md 2.6 rows 2-4): a timm ImageNet ViT or the
    # MaskCLIP ViT with the DeepLabV3+-style head.
    register_model("vit_deeplabv3plus")(build_vit_deeplab)


_register_semivl()
