"""``config/pretrain/<name>.yaml``: the recipe of a CLIP this project pretrains itself.

Without torch, so that the workflow and ``semivl data captions`` read it at once; the
pretraining itself is :mod:`semivl.engine.pretrain_clip`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from semivl.config import ConfigError, ResourcesConfig, build_config, read_yaml
from semivl.typed_yaml import require

PRETRAIN_DIR = Path("resources/pretrained")


@dataclass(frozen=True)
class CaptionDataConfig:
    """The captioned scenes (``semivl data captions``): generator, size and seed."""

    generator: Literal["toy"] = "toy"
    num_images: int = 10000
    seed: int = 0
    # Square canvases of this side (the segmentation images are 80 to 120 pixels a side).
    side: int = 64
    max_objects: int = 3

    def check(self, path: str) -> None:
        require(self.num_images >= 1, f"{path}.num_images", ">= 1", self.num_images)
        require(self.side >= 32, f"{path}.side", ">= 32", self.side)
        require(self.max_objects >= 1, f"{path}.max_objects", ">= 1", self.max_objects)

    def spec(self):
        """The toy generator's size parameters for these scenes."""
        from semivl.data.prepare.toy import ToySpec

        return ToySpec(min_side=self.side, max_side=self.side, max_objects=self.max_objects)


@dataclass(frozen=True)
class PretrainConfig:
    """``config/pretrain/<name>.yaml``: what to pretrain, on which data, and how."""

    clip: str  # the config/clip.yaml entry whose architecture trains
    data: CaptionDataConfig = field(default_factory=CaptionDataConfig)
    # Images are resized (whole, not cropped: a crop could cut away a captioned object) to
    # this side; SemiVL then resizes the position table to its crops, as for OpenAI's CLIP.
    image_size: int = 64
    steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1  # not on gains, biases, embeddings' norms or the logit scale
    warmup_steps: int = 100
    # Caption-preserving augmentation: "dihedral" = random horizontal flip and rotation by a
    # multiple of 90 degrees (the toy scenes have no up or down), "hflip", or "none".
    augment: Literal["dihedral", "hflip", "none"] = "dihedral"
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 200
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def check(self, path: str) -> None:
        for key in ("image_size", "steps", "batch_size", "log_every", "checkpoint_every"):
            require(getattr(self, key) >= 1, f"{path}.{key}", ">= 1", getattr(self, key))
        require(self.lr > 0, f"{path}.lr", "> 0", self.lr)
        require(
            0 <= self.warmup_steps < self.steps,
            f"{path}.warmup_steps",
            f"in [0, steps={self.steps})",
            self.warmup_steps,
        )


def pretrain_config_path(name: str, config_dir: Path) -> Path:
    return Path(config_dir) / "pretrain" / f"{name}.yaml"


def load_pretrain_config(name: str, config_dir: Path) -> PretrainConfig:
    """Read and check ``config/pretrain/<name>.yaml``."""
    path = pretrain_config_path(name, config_dir)
    if not path.is_file():
        known = sorted(p.stem for p in (Path(config_dir) / "pretrain").glob("*.yaml"))
        raise ConfigError(f"pretraining {name!r}: no file {path}; known: {known}")
    try:
        return build_config(PretrainConfig, read_yaml(path), "pretrain")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
