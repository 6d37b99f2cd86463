"""Loss functions of UniMatch/SemiVL (docs/upstream.md, UniMatch step and SemiVL guidance
and losses)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = 255


class ProbOhemCrossEntropy(nn.Module):
    """Probability-based OHEM cross-entropy (UniMatch's Cityscapes labelled loss).

    Pixels whose probability for the true class is at most ``thresh`` are kept; if that keeps
    fewer than ``min_kept`` pixels, the threshold rises to the ``min_kept``-th smallest
    probability. If the image batch has fewer than ``min_kept`` valid pixels, or ``min_kept``
    is 0, all valid pixels are kept (upstream ``util/ohem.py`` thresholds only when
    ``min_kept > 0``).
    The loss is the mean CE over the kept pixels.
    """

    def __init__(
        self, thresh: float = 0.7, min_kept: int = 200000, ignore_index: int = IGNORE
    ) -> None:
        super().__init__()
        self.thresh = thresh
        self.min_kept = min_kept
        self.ignore_index = ignore_index

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        b, c, h, w = pred.shape
        flat = target.reshape(-1)
        valid = flat != self.ignore_index
        num_valid = int(valid.sum())
        kept = valid
        # Upstream (util/ohem.py) applies the threshold only when min_kept > 0: with
        # min_kept = 0 every valid pixel is kept.
        if self.min_kept > 0 and self.min_kept <= num_valid:
            with torch.no_grad():
                prob = pred.detach().softmax(dim=1).transpose(0, 1).reshape(c, -1)
                safe_target = torch.where(valid, flat, torch.zeros_like(flat))
                true_prob = prob[safe_target, torch.arange(flat.numel(), device=pred.device)]
                true_prob = torch.where(valid, true_prob, torch.ones_like(true_prob))
                order = true_prob.argsort()
                kth = true_prob[order[min(flat.numel(), self.min_kept) - 1]]
                threshold = torch.maximum(
                    torch.tensor(self.thresh, dtype=true_prob.dtype, device=pred.device), kth
                )
                kept = valid & (true_prob <= threshold)
        masked = torch.where(kept, flat, torch.full_like(flat, self.ignore_index))
        return F.cross_entropy(pred, masked.view(b, h, w), ignore_index=self.ignore_index)


def build_labeled_criterion(
    name: str, ohem_thresh: float = 0.7, ohem_min_kept: int = 200000
) -> nn.Module:
    """``ce`` (mean over non-ignored pixels) or ``ohem``."""
    if name == "ce":
        return nn.CrossEntropyLoss(ignore_index=IGNORE)
    if name == "ohem":
        return ProbOhemCrossEntropy(ohem_thresh, ohem_min_kept, IGNORE)
    raise ValueError(f"unknown criterion {name!r}")


def unsupervised_loss(
    pred: torch.Tensor,
    pseudo: torch.Tensor,
    conf: torch.Tensor,
    ignore_mask: torch.Tensor,
    mode: str,
    thresh: float,
) -> torch.Tensor:
    """Per-pixel CE against hard pseudo-labels, reduced as upstream.

    * ``pixelwise``: CE on pixels with ``conf >= thresh`` that are not padded, summed and
      divided by the number of non-padded pixels (not the number of confident ones).
    * ``pixelavg`` (SemiVL Cityscapes): no threshold; the CE summed over all pixels (padded
      included) times the sum over images of their mean non-padded confidence, divided by the
      number of non-padded pixels.
    """
    ce = F.cross_entropy(pred, pseudo, reduction="none")
    valid = ignore_mask != IGNORE
    num_valid = max(int(valid.sum()), 1)
    if mode == "pixelwise":
        return (ce * ((conf >= thresh) & valid)).sum() / num_valid
    if mode == "pixelavg":
        per_image = (conf * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)
        return ce.sum() * per_image.sum() / num_valid
    raise ValueError(f"unknown confidence mode {mode!r}")
