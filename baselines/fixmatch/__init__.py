"""FixMatch for semantic segmentation, as UniMatch's repository trains it: this project's first
method plug-in, declared outside the core package and registered only through the entry-point
group ``semivl.methods`` (``pyproject.toml``: ``fixmatch = "baselines.fixmatch:METHOD"``).

What upstream does (LiheYoung/UniMatch, ``fixmatch.py`` at commit 0324f3d, with
``dataset/semi.py`` and ``configs/*.yaml``; the step is in :mod:`baselines.fixmatch.step`):

* data: the labelled batch, the unlabelled batch and an independently drawn unlabelled batch
  (the CutMix partner); of each unlabelled sample it reads the weak view, strong view 1, the
  ignore mask and CutMix box 1 (strong view 2 and box 2 are unused);
* the partner's weak view is predicted in eval mode without gradients (confidence = max
  softmax, label = argmax);
* strong view 1 is CutMixed with the partner's strong view 1 inside box 1;
* in train mode, one forward of ``cat(labelled, weak)`` (BatchNorm sees both), then one of the
  CutMixed strong view; the weak prediction, detached, gives pseudo-labels and confidences,
  replaced inside box 1 by the partner's (its ignore mask too);
* ``loss_x = criterion_l(pred_x, mask_x)`` (CE or OHEM); ``loss_u = sum(CE(pred_s, label) *
  [conf >= conf_thresh] * [ignore != 255]) / count(ignore != 255)`` (divided by the non-padded
  pixels, not by the confident ones); ``loss = (loss_x + loss_u) / 2``;
* ``mask_ratio`` = confident non-padded pixels of the (un-mixed) weak view / non-padded pixels.

``train.args.unsup_weight`` is FixMatch's lambda_u, ``loss = (loss_x + unsup_weight * loss_u)
/ 2``; upstream hard-codes 1.0, the default. The confidence threshold is ``train.conf_thresh``
(upstream 0.95 on Pascal and COCO, 0 on Cityscapes).

This module is torch-free (the registry imports it to validate recipes and grids); the step
is imported only when a run trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from semivl.errors import ConfigError
from semivl.methods import Method


@dataclass(frozen=True)
class FixMatchArgs:
    """FixMatch's own recipe arguments (``train.args``)."""

    # Weight of the unlabelled loss, FixMatch's lambda_u; upstream: (loss_x + loss_u) / 2.
    unsup_weight: float = 1.0

    def check(self, path: str) -> None:
        if not self.unsup_weight >= 0:  # also refuses NaN
            raise ConfigError(f"{path}.unsup_weight: expected >= 0, got {self.unsup_weight!r}")


METHOD = Method(
    name="fixmatch",
    step="baselines.fixmatch.step:fixmatch_step",
    streams=("labeled", "unlabeled", "mix"),
    log_fields=("loss_x", "loss_s", "mask_ratio"),
    args=FixMatchArgs,
    tf32=(False, True, "upstream: torch 1.12.1 (UniMatch README): matmul fp32, cuDNN TF32"),
    summary="FixMatch (NeurIPS 2020) with CutMix, as UniMatch's fixmatch.py trains it",
)

__all__ = ["METHOD", "FixMatchArgs"]
