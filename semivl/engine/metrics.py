"""mIoU accumulated over a whole split, as UniMatch/SemiVL compute it (docs/upstream.md,
Evaluation protocol)."""

from __future__ import annotations

import numpy as np
import torch


class IoUAccumulator:
    """Intersection, union and target counts summed over every image of a split.

    Pixels whose ground truth is ``ignore_index`` are excluded. IoU_c = I_c / (U_c + 1e-10) *
    100 and mIoU is the plain mean over *all* classes, so a class absent from both prediction
    and ground truth counts as 0, as upstream.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.intersection = np.zeros(num_classes, dtype=np.int64)
        self.union = np.zeros(num_classes, dtype=np.int64)
        self.target = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> None:
        """Add one prediction/ground-truth pair (any shape, same for both)."""
        pred = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred).reshape(-1)
        target = np.asarray(target.cpu() if isinstance(target, torch.Tensor) else target).reshape(
            -1
        )
        if pred.shape != target.shape:
            raise ValueError(f"prediction has {pred.size} pixels, target {target.size}")
        valid = target != self.ignore_index
        pred, target = pred[valid].astype(np.int64), target[valid].astype(np.int64)
        k = self.num_classes
        area_i = np.bincount(pred[pred == target], minlength=k)[:k]
        area_p = np.bincount(pred, minlength=k)[:k]
        area_t = np.bincount(target, minlength=k)[:k]
        self.intersection += area_i
        self.union += area_p + area_t - area_i
        self.target += area_t

    def merge(self, other: IoUAccumulator) -> None:
        """Add another accumulator's counts (e.g. from another process)."""
        self.intersection += other.intersection
        self.union += other.union
        self.target += other.target

    def iou(self) -> np.ndarray:
        """Per-class IoU in percent."""
        return self.intersection / (self.union + 1e-10) * 100.0

    def miou(self) -> float:
        """Mean IoU over all classes, in percent."""
        return float(self.iou().mean())
