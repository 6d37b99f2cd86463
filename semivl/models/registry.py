"""A small dict registry: ``build_model(cfg, num_classes)`` builds a plain ``nn.Module``."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from semivl.config import ConfigError, ModelConfig

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Register a model constructor under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in MODELS:
            raise KeyError(f"model {name!r} registered twice")
        MODELS[name] = fn
        return fn

    return wrap


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    """Build the registered model ``cfg.name`` with ``cfg.args``; bad args name the key."""
    if cfg.name not in MODELS:
        raise ConfigError(f"model.name: expected one of {sorted(MODELS)}, got {cfg.name!r}")
    builder = MODELS[cfg.name]
    params = inspect.signature(builder).parameters
    for key in cfg.args:
        if key not in params or key == "num_classes":
            allowed = sorted(p for p in params if p != "num_classes")
            raise ConfigError(f"model.args.{key}: unknown argument; expected one of {allowed}")
    try:
        return builder(num_classes=num_classes, **cfg.args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model.args: {err}") from err


@register_model("deeplabv3plus")
def _deeplabv3plus(num_classes: int, backbone: str = "resnet101",
                   dilations: tuple[int, int, int] = (6, 12, 18),
                   aspp_channels: int | None = None, low_level_channels: int = 48) -> nn.Module:
    from baselines.unimatch import DeepLabV3Plus

    return DeepLabV3Plus(num_classes, backbone=backbone, dilations=tuple(dilations),
                         aspp_channels=aspp_channels, low_level_channels=low_level_channels)
