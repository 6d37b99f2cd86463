"""One UniMatch V2 training step and its EMA teacher (docs/upstream.md, UniMatch V2).

* The EMA teacher (a frozen deep copy of the student, always in eval mode) predicts the weak
  view without gradients.
* The CutMix partner is the same batch reversed along the batch axis; pseudo-labels,
  confidences and ignore maps are flipped the same way.
* The student forwards the labelled batch alone, then both strong views together with
  complementary channel dropout (``comp_drop=True``).
* L = (L_x + (L_s1 + L_s2) / 2) / 2; after every optimiser step the teacher moves towards the
  student with momentum min(1 - 1/(it + 1), ema_momentum), parameters and buffers.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from semivl.config import TrainConfig
from semivl.engine.losses import IGNORE, unsupervised_loss
from semivl.engine.unimatch import paste


def make_ema(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` without gradients, in eval mode (the V2 teacher)."""
    ema = copy.deepcopy(model)
    for param in ema.parameters():
        param.requires_grad_(False)
    return ema.eval()


def ema_momentum(iteration: int, cap: float) -> float:
    """Momentum after the optimiser step of 0-based ``iteration``: min(1 - 1/(it+1), cap)."""
    return min(1.0 - 1.0 / (iteration + 1), cap)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, iteration: int, cap: float) -> float:
    """ema = ema * m + model * (1 - m) for parameters and floating buffers; returns ``m``.

    Integer buffers (BatchNorm's ``num_batches_tracked``) are copied from the student
    (upstream blends them too and truncates into the integer tensor; the count is only read
    by BatchNorm with ``momentum=None``, which no model here uses).
    """
    m = ema_momentum(iteration, cap)
    targets, sources = [], []
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        targets.append(p_ema)
        sources.append(p.detach())
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        if b_ema.is_floating_point():
            targets.append(b_ema)
            sources.append(b.detach())
        else:
            b_ema.copy_(b)
    # Multi-tensor kernels (a few launches instead of two per tensor), with the same
    # operations in the same order as ``ema * m + p * (1 - m)``: the results are bit-equal.
    if targets:
        torch._foreach_mul_(targets, m)
        torch._foreach_add_(targets, torch._foreach_mul(sources, 1 - m))
    return m


def flip_partner(
    img_s: torch.Tensor,
    label: torch.Tensor,
    conf: torch.Tensor,
    ignore: torch.Tensor,
    box: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix with the batch reversed: paste the flipped image, label, conf and ignore map
    into the box (``box == 1``)."""
    return (
        paste(img_s, img_s.flip(0), box),
        paste(label, label.flip(0), box),
        paste(conf, conf.flip(0), box),
        paste(ignore, ignore.flip(0), box),
    )


def unimatch_v2_step(
    model: nn.Module,
    ema: nn.Module,
    batch: tuple,
    criterion_l: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Losses of one UniMatch V2 iteration; ``batch`` is (labelled, unlabelled) with the
    unlabelled part (weak, s1, s2, ignore mask, box1, box2)."""
    (img_x, mask_x), unlabeled = batch[0], batch[1]
    img_u_w, img_u_s1, img_u_s2, ignore_mask, box1, box2 = (t.to(device) for t in unlabeled)
    img_x, mask_x = img_x.to(device), mask_x.to(device)

    # 1. Pseudo-labels of the weak view from the EMA teacher (eval mode, no gradients).
    with torch.no_grad():
        ema.eval()
        conf_u_w, mask_u_w = ema(img_u_w).detach().float().softmax(dim=1).max(dim=1)

    # 2. CutMix partner: the same batch reversed.
    img_u_s1, label1, conf1, ignore1 = flip_partner(img_u_s1, mask_u_w, conf_u_w, ignore_mask, box1)
    img_u_s2, label2, conf2, ignore2 = flip_partner(img_u_s2, mask_u_w, conf_u_w, ignore_mask, box2)

    # 3. Student: labelled batch alone, then both strong views with complementary dropout.
    model.train()
    pred_x = model(img_x)
    pred_u_s1, pred_u_s2 = model(torch.cat((img_u_s1, img_u_s2)), comp_drop=True).chunk(2)

    # 4. Losses.
    mode, thresh = cfg.conf_mode, cfg.conf_thresh
    loss_x = criterion_l(pred_x, mask_x)
    loss_s1 = unsupervised_loss(pred_u_s1, label1, conf1, ignore1, mode, thresh)
    loss_s2 = unsupervised_loss(pred_u_s2, label2, conf2, ignore2, mode, thresh)
    loss = (loss_x + (loss_s1 + loss_s2) / 2.0) / 2.0

    valid = ignore_mask != IGNORE
    mask_ratio = ((conf_u_w >= thresh) & valid).sum().item() / max(valid.sum().item(), 1)
    logs = {
        "loss_x": loss_x.item(),
        "loss_s": (loss_s1.item() + loss_s2.item()) / 2,
        "mask_ratio": mask_ratio,
    }
    return loss, logs


class EmaTeacher:
    """UniMatch V2's method state: the EMA teacher, built from the (pretrained) student when
    the run starts, moved after every optimiser step, saved in ``last.pt`` and reported as the
    run's model (``model.pt``; the student is ``model_student.pt``)."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        self.ema = make_ema(model)
        self.momentum_cap = cfg.ema_momentum

    @property
    def reported(self) -> nn.Module:
        return self.ema

    def after_step(self, model: nn.Module, iteration: int) -> None:
        update_ema(self.ema, model, iteration, self.momentum_cap)

    def state_dict(self) -> dict:
        return self.ema.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state)


def method_step(
    model: nn.Module,
    batch: tuple,
    criterion: nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    iteration: int,
    total_iters: int,
    hooks,
    state: EmaTeacher | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`unimatch_v2_step` as the registered step of ``unimatch_v2``."""
    if state is None:
        raise ValueError("method unimatch_v2 needs its EMA teacher (state=EmaTeacher(...))")
    return unimatch_v2_step(model, state.ema, batch, criterion, cfg, device)
