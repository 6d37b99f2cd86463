"""Dataset roots and index masks on disk, without torch (``semivl data check`` and the
report read masks too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from semivl.config import DatasetConfig


class DataError(ValueError):
    """The data on disk does not match what the split files and the dataset config promise."""


def require_data_root(root: Path, dataset: str) -> Path:
    """Fail with the path and the command that creates it if the dataset root is missing."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset directory {root} does not exist; create it with: semivl "
                        f"data prepare {dataset} --out {root} (or point --data-root at a "
                        f"prepared copy; layout: docs/datasets.md)")
    return root


def read_mask(path: Path, cfg: DatasetConfig, *, check: bool = True) -> np.ndarray:
    """Read an index mask, apply ``reduce_zero_label`` and check its values."""
    mask = np.asarray(Image.open(path))
    if mask.ndim != 2:
        raise DataError(f"{path}: expected a single-channel index mask, got shape {mask.shape}")
    if cfg.reduce_zero_label:
        reduced = mask.astype(np.int16) - 1
        reduced[(reduced == -1) | (reduced == 254)] = 255
        mask = reduced.astype(np.uint8)
    if check:
        bad = (mask >= cfg.num_classes) & (mask != cfg.ignore_index)
        if bad.any():
            value = int(mask[bad][0])
            raise DataError(
                f"{path}: mask value {value} is outside [0, {cfg.num_classes}) and is not the "
                f"ignore index {cfg.ignore_index}; check the dataset's label format"
            )
    return mask
