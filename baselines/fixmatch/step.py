"""One FixMatch training step, faithful to UniMatch's ``fixmatch.py`` (the declaration and a
summary of upstream's loop are in :mod:`baselines.fixmatch`).

Upstream's step (LiheYoung/UniMatch ``fixmatch.py``, commit 0324f3d), in its own terms::

    model.eval(); no_grad: pred_u_w_mix = model(img_u_w_mix)        # conf = max softmax
    img_u_s[cutmix_box == 1] = img_u_s_mix[cutmix_box == 1]
    model.train()
    pred_x, pred_u_w = model(cat(img_x, img_u_w)).split(...)
    pred_u_s = model(img_u_s)
    labels/conf/ignore of the weak view, box 1 taken from the partner's
    loss_x = criterion_l(pred_x, mask_x)
    loss_u_s = sum(CE(pred_u_s, label) * (conf >= thresh) * (ignore != 255))
               / count(ignore != 255)
    loss = (loss_x + loss_u_s) / 2

How faithfulness was checked: the code below was written from that file line by line (same
views, same order and modes of the forwards, same CutMix of images, labels, confidences and
ignore masks, same reduction); ``tests/test_fixmatch.py`` recomputes the loss of a tiny model
on a hand-made batch directly from the formulas above (boolean-index CutMix, its own CE) and
compares it with this step's, and checks the logs and the train/eval modes.

Conventions shared with :mod:`semivl.engine.unimatch`: CutMix by :func:`paste`, the
thresholded loss by :func:`~semivl.engine.losses.unsupervised_loss` (``pixelwise`` is
upstream's reduction; a recipe's ``conf_mode: pixelavg`` is passed through as for UniMatch),
pseudo-labels and confidences in fp32 also under bf16 autocast.
"""

from __future__ import annotations

import torch
from torch import nn

from semivl.config import TrainConfig
from semivl.engine.losses import IGNORE, unsupervised_loss
from semivl.engine.unimatch import paste


def fixmatch_step(
    model: nn.Module,
    batch: tuple,
    criterion: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    iteration: int,
    total_iters: int,
    hooks: list | None = None,
    state=None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one FixMatch iteration and its logs (``loss_x``, ``loss_s``,
    ``mask_ratio``). ``batch`` is (labelled, unlabelled, partner) as the method declares."""
    if hooks:
        # Extra loss terms are written against UniMatch's step context; silently dropping
        # one would train something other than what was asked for.
        raise ValueError(f"method fixmatch takes no loss hooks, got {len(hooks)}")
    (img_x, mask_x), unlabeled, mix = batch
    img_x, mask_x = img_x.to(device), mask_x.to(device)
    # Upstream reads strong view 1 and CutMix box 1 only.
    img_u_w, img_u_s, _, ignore_mask, box, _ = (t.to(device) for t in unlabeled)
    img_u_w_mix, img_u_s_mix, _, ignore_mask_mix, _, _ = (t.to(device) for t in mix)
    weight = 1.0 if cfg.args is None else cfg.args.unsup_weight

    # 1. The partner's pseudo-labels: an eval-mode forward without gradients.
    with torch.no_grad():
        model.eval()
        pred_mix = model(img_u_w_mix).detach().float()
        conf_mix, label_mix = pred_mix.softmax(dim=1).max(dim=1)
    model.train()

    # 2. CutMix the strong view with the partner's strong view inside the box.
    img_u_s = paste(img_u_s, img_u_s_mix, box)

    # 3. Train mode: labelled and weak views in one forward, then the mixed strong view.
    num_x = img_x.shape[0]
    pred_x, pred_u_w = model(torch.cat((img_x, img_u_w))).split([num_x, img_u_w.shape[0]])
    pred_u_s = model(img_u_s)

    # 4. Pseudo-labels of the weak view, the partner's inside the box.
    pred_u_w = pred_u_w.detach().float()
    conf_u_w, label_u_w = pred_u_w.softmax(dim=1).max(dim=1)
    label = paste(label_u_w, label_mix, box)
    conf = paste(conf_u_w, conf_mix, box)
    ignore = paste(ignore_mask, ignore_mask_mix, box)

    loss_x = criterion(pred_x, mask_x)
    loss_s = unsupervised_loss(pred_u_s, label, conf, ignore, cfg.conf_mode, cfg.conf_thresh)
    loss = (loss_x + weight * loss_s) / 2.0

    valid = ignore_mask != IGNORE
    mask_ratio = ((conf_u_w >= cfg.conf_thresh) & valid).sum().item() / max(valid.sum().item(), 1)
    return loss, {"loss_x": loss_x.item(), "loss_s": loss_s.item(), "mask_ratio": mask_ratio}
