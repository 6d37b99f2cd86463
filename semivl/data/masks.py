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
        raise DataError(
            f"dataset directory {root} does not exist; create it with: semivl "
            f"data prepare {dataset} --out {root} (or point --data-root at a "
            f"prepared copy; layout: docs/datasets.md)"
        )
    return root


def map_labels(mask: np.ndarray, cfg: DatasetConfig) -> np.ndarray:
    """Stored mask values -> training labels: ``value + cfg.mask_offset``, and
    ``cfg.ignore_index`` where that falls below 0 or the stored value is one of
    ``cfg.ignore_values``. Unchanged (the same array) when the dataset maps nothing; uint8
    whenever the labels fit, as the masks of the four benchmark datasets are. For ADE20K
    (``reduce_zero_label``: offset -1, ignore 255) this is upstream's reduction: 0 -> 255,
    k -> k - 1, 255 -> 255."""
    offset, ignore = cfg.mask_offset, cfg.ignore_values
    if offset == 0 and all(v == cfg.ignore_index for v in ignore):
        return mask
    labels = mask.astype(np.int64) + offset
    labels[labels < 0] = cfg.ignore_index
    for value in ignore:
        labels[mask == value] = cfg.ignore_index
    return labels.astype(np.uint8) if labels.max(initial=0) <= 255 else labels


def read_mask(path: Path, cfg: DatasetConfig, *, check: bool = True) -> np.ndarray:
    """Read an index mask, map its values (:func:`map_labels`: ``label_offset``,
    ``reduce_zero_label``, ``ignore_values``) and check them."""
    mask = np.asarray(Image.open(path))
    if mask.ndim != 2:
        raise DataError(f"{path}: expected a single-channel index mask, got shape {mask.shape}")
    mask = map_labels(mask, cfg)
    if check:
        bad = (mask >= cfg.num_classes) & (mask != cfg.ignore_index)
        if bad.any():
            value = int(mask[bad][0])
            stored = (
                f" (stored value {value - cfg.mask_offset}, label offset {cfg.mask_offset})"
                if cfg.mask_offset
                else ""
            )
            raise DataError(
                f"{path}: mask value {value}{stored} is outside [0, {cfg.num_classes}) and is "
                f"not the ignore index {cfg.ignore_index}; check the dataset's label format"
            )
    return mask
