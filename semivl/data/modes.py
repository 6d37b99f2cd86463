"""Appearance-mode maps (the toy dataset's ``SegmentationMode/``): which looks a labelled split
shows, and how often a prediction is right on each look's pixels.

Per look, the score is the share of its pixels predicted as its class (a recall): a false
positive cannot be attributed to a look, so a per-look IoU is not defined.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from semivl.config import AppearanceModes, DatasetConfig


def mode_map_path(root: Path, image_rel: str, modes: AppearanceModes) -> Path:
    """The mode map of the image at ``image_rel`` (relative to the dataset root)."""
    return Path(root) / modes.dir / f"{PurePosixPath(image_rel).stem}.png"


def read_mode_map(root: Path, image_rel: str, modes: AppearanceModes) -> np.ndarray:
    """The mode map of one image as a uint8 array; a clear error if it is missing."""
    path = mode_map_path(root, image_rel, modes)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the appearance-mode map of {image_rel} is missing "
            f"(the dataset config declares appearance_modes.dir "
            f"{modes.dir!r}); regenerate the dataset with "
            f"`semivl data prepare toy --force`"
        )
    return np.asarray(Image.open(path))


def split_modes(root: Path, image_rels: list[str], modes: AppearanceModes) -> list[str]:
    """The names of the looks that the images ``image_rels`` show, in map-value order."""
    names = modes.names()
    seen: set[int] = set()
    for image_rel in image_rels:
        values = np.unique(read_mode_map(root, image_rel, modes))
        seen |= {int(v) for v in values if 0 < v <= len(names)}
    return [names[v - 1] for v in sorted(seen)]


def count_mode_hits(
    pred: np.ndarray, mode_map: np.ndarray, cfg: DatasetConfig, hits: np.ndarray, totals: np.ndarray
) -> None:
    """Add one image to per-look counts: ``totals[v-1]`` pixels of look ``v``, ``hits[v-1]``
    of them predicted as the look's class. ``pred`` holds class indices at the map's size."""
    if pred.shape != mode_map.shape:
        raise ValueError(
            f"the prediction is {pred.shape} but the appearance-mode map is "
            f"{mode_map.shape}: per-look scores need evaluation at the "
            f"original image size"
        )
    modes = cfg.appearance_modes
    classes = np.array([cfg.class_names.index(c) for c in modes.class_of()])
    valid = (mode_map > 0) & (mode_map <= len(classes))
    values = mode_map[valid].astype(np.int64) - 1
    correct = pred[valid] == classes[values]
    totals += np.bincount(values, minlength=len(classes))
    hits += np.bincount(values, weights=correct, minlength=len(classes)).astype(np.int64)


def per_mode_accuracy(
    hits: np.ndarray, totals: np.ndarray, modes: AppearanceModes
) -> dict[str, float | None]:
    """Percent of each look's pixels predicted right (``None`` for a look absent from val)."""
    return {
        name: (float(100.0 * h / t) if t else None)
        for name, h, t in zip(modes.names(), hits, totals, strict=True)
    }
