"""The model registry: ``build_model(cfg, num_classes)`` builds a plain ``nn.Module``.

A model registers where it is defined: its builder (a function of ``num_classes`` and the
recipe's ``model.args``) is named in the entry-point group ``semivl.models``, this package's
own and the baselines' in ``pyproject.toml``, so an installed package adds a network the same
way (docs/add-a-method.md). :func:`register_model` registers one at run time (tests,
notebooks). Nothing here imports a model module until a recipe asks for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

from semivl.config import ConfigError, ModelConfig
from semivl.entry_points import group_entries
from semivl.methods.registry import resolve
from semivl.models.clip_config import needs_clip, needs_text, recipe_clip

__all__ = [
    "MODELS",
    "build_model",
    "load_backbone_weights",
    "needs_clip",
    "needs_text",
    "recipe_clip",
    "register_model",
]


ENTRY_POINT_GROUP = "semivl.models"


class _Models(dict):
    """name -> builder; the entry points are read on the first lookup and imported only when
    that model is built."""

    loaded = False

    def _discover(self) -> None:
        if not self.loaded:
            self.loaded = True
            for name, value, origin in group_entries(ENTRY_POINT_GROUP):
                self.setdefault(name, (value, origin))

    def __contains__(self, name) -> bool:
        self._discover()
        return super().__contains__(name)

    def __iter__(self):
        self._discover()
        return super().__iter__()

    def __len__(self) -> int:
        self._discover()
        return super().__len__()

    def builder(self, name: str) -> Callable[..., nn.Module]:
        self._discover()
        value = self[name]
        if isinstance(value, tuple):  # (module:attribute, where it was declared)
            value = resolve(*value)
            self[name] = value
        return value


MODELS = _Models()


def register_model(name: str) -> Callable:
    """Register a model constructor under ``name`` (at run time; packages use the entry-point
    group ``semivl.models``)."""

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
    builder = MODELS.builder(cfg.name)
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
        raise ConfigError(
            f"model.pretrained: {name!r} is set but the model has no "
            f"{model.pretrained_module} to load it into"
        )
    return load_pretrained(target, Path(weights_dir) / source.file, source.drop_keys_containing)
