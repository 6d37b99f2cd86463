"""One UniMatch training step (docs/upstream.md, UniMatch step), with a hook for extra loss terms.

SemiVL trains with this same step and adds its dense CLIP guidance through ``hooks``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from semivl.config import TrainConfig
from semivl.engine.losses import IGNORE, unsupervised_loss


@dataclass
class UniMatchContext:
    """What an extra loss term can see of one step (all tensors on the training device)."""

    img_u_w: torch.Tensor  # weak view of the unlabelled batch
    img_u_w_mix: torch.Tensor  # weak view of the CutMix partner batch
    img_u_s1: torch.Tensor  # strong views, already CutMixed with the partner's
    img_u_s2: torch.Tensor
    box1: torch.Tensor  # [B, H, W] 0/1 CutMix boxes
    box2: torch.Tensor
    ignore_mask: torch.Tensor  # 255 on padding
    ignore_mask_mix: torch.Tensor
    pred_u_s1: torch.Tensor  # logits with gradients
    pred_u_s2: torch.Tensor
    pred_u_w_fp: torch.Tensor
    iteration: int
    total_iters: int


LossHook = Callable[[UniMatchContext], tuple[torch.Tensor, dict[str, float]]]


def paste(target: torch.Tensor, source: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Copy ``source`` into ``target`` where ``box == 1`` (boxes are [B, H, W])."""
    mask = box == 1
    if target.dim() == 4:
        mask = mask.unsqueeze(1)
    # torch.where copies the same values as boolean-mask indexing, without the host sync
    # that indexing needs to size its result.
    return torch.where(mask, source, target)


def unimatch_step(
    model: nn.Module,
    batch: tuple,
    criterion_l: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    iteration: int,
    total_iters: int,
    hooks: list[LossHook] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Losses of one UniMatch iteration; returns the total loss and values to log."""
    (img_x, mask_x), unlabeled, mix = batch
    img_u_w, img_u_s1, img_u_s2, ignore_mask, box1, box2 = (t.to(device) for t in unlabeled)
    img_u_w_mix, img_u_s1_mix, img_u_s2_mix, ignore_mask_mix, _, _ = (t.to(device) for t in mix)
    img_x, mask_x = img_x.to(device), mask_x.to(device)

    # 1. The partner's pseudo-labels from an eval-mode forward without gradients.
    with torch.no_grad():
        model.eval()
        # Pseudo-label confidences in fp32 also under bf16 autocast (thresholds at 0.95).
        pred_mix = model(img_u_w_mix).detach().float()
        conf_mix, label_mix = pred_mix.softmax(dim=1).max(dim=1)
    model.train()

    # 2. CutMix the strong views with the partner's strong views.
    img_u_s1 = paste(img_u_s1, img_u_s1_mix, box1)
    img_u_s2 = paste(img_u_s2, img_u_s2_mix, box2)

    # 3. Labelled + weak forward with feature perturbation, then the strong forward.
    num_x = img_x.shape[0]
    preds, preds_fp = model(torch.cat((img_x, img_u_w)), need_fp=True, fp_rate=cfg.fp_rate)
    pred_x, pred_u_w = preds.split([num_x, img_u_w.shape[0]])
    pred_u_w_fp = preds_fp[num_x:]
    pred_u_s1, pred_u_s2 = model(torch.cat((img_u_s1, img_u_s2))).chunk(2)

    # 4. Pseudo-labels from the train-mode weak prediction, CutMixed with the partner's.
    pred_u_w = pred_u_w.detach().float()
    conf_u_w, label_u_w = pred_u_w.softmax(dim=1).max(dim=1)
    label1, conf1 = paste(label_u_w, label_mix, box1), paste(conf_u_w, conf_mix, box1)
    ignore1 = paste(ignore_mask, ignore_mask_mix, box1)
    label2, conf2 = paste(label_u_w, label_mix, box2), paste(conf_u_w, conf_mix, box2)
    ignore2 = paste(ignore_mask, ignore_mask_mix, box2)

    mode, thresh = cfg.conf_mode, cfg.conf_thresh
    loss_x = criterion_l(pred_x, mask_x)
    loss_s1 = unsupervised_loss(pred_u_s1, label1, conf1, ignore1, mode, thresh)
    loss_s2 = unsupervised_loss(pred_u_s2, label2, conf2, ignore2, mode, thresh)
    loss_fp = unsupervised_loss(pred_u_w_fp, label_u_w, conf_u_w, ignore_mask, mode, thresh)
    loss = (loss_x + 0.25 * loss_s1 + 0.25 * loss_s2 + 0.5 * loss_fp) / 2.0

    valid = ignore_mask != IGNORE
    mask_ratio = ((conf_u_w >= thresh) & valid).sum().item() / max(valid.sum().item(), 1)
    logs = {
        "loss_x": loss_x.item(),
        "loss_s": (loss_s1.item() + loss_s2.item()) / 2,
        "loss_fp": loss_fp.item(),
        "mask_ratio": mask_ratio,
    }
    if hooks:
        context = UniMatchContext(
            img_u_w,
            img_u_w_mix,
            img_u_s1,
            img_u_s2,
            box1,
            box2,
            ignore_mask,
            ignore_mask_mix,
            pred_u_s1,
            pred_u_s2,
            pred_u_w_fp,
            iteration,
            total_iters,
        )
        for hook in hooks:
            extra, extra_logs = hook(context)
            loss = loss + extra
            logs.update(extra_logs)
    return loss, logs


def method_step(
    model: nn.Module,
    batch: tuple,
    criterion: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    iteration: int,
    total_iters: int,
    hooks: list[LossHook] | None,
    state=None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`unimatch_step` as the registered step of ``unimatch`` and ``semivl``."""
    return unimatch_step(model, batch, criterion, cfg, device, iteration, total_iters, hooks)
