"""Optimiser with mmcv-style paramwise multipliers, and the per-iteration poly schedule."""

from __future__ import annotations

import torch
from torch import nn

from semivl.config import OptimConfig


def match_custom_key(name: str, keys: list[str]) -> str | None:
    """First key (longest first, ties alphabetical) that occurs in ``name``, as mmcv does."""
    for key in sorted(sorted(keys), key=len, reverse=True):
        if key in name:
            return key
    return None


def build_param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """One group per (lr_mult, decay_mult) pair; each group records its ``lr_mult``.

    Frozen parameters are left out (they would never receive gradients anyway).
    """
    groups: dict[tuple[float, float], dict] = {}
    keys = list(cfg.custom_keys)
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = match_custom_key(name, keys)
        if key is None:
            lr_mult, decay_mult = cfg.default_lr_mult, 1.0
        else:
            lr_mult = cfg.custom_keys[key].lr_mult
            decay_mult = cfg.custom_keys[key].decay_mult
        group = groups.setdefault(
            (lr_mult, decay_mult),
            {
                "params": [],
                "names": [],
                "lr_mult": lr_mult,
                "lr": cfg.lr * lr_mult,
                "weight_decay": cfg.weight_decay * decay_mult,
            },
        )
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, fused: bool = False
) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over the paramwise groups; ``fused`` picks PyTorch's fused
    single-kernel implementation (the same update rule)."""
    groups = build_param_groups(model, cfg)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    for group in groups:
        group.pop("names")
    extra = {"fused": True} if fused else {}
    if cfg.name == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **extra
        )
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **extra
    )


def poly_lr(base_lr: float, iteration: int, total_iters: int, power: float) -> float:
    """``base_lr * (1 - iteration / total_iters) ** power``."""
    return base_lr * (1 - iteration / total_iters) ** power


def set_poly_lr(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, iteration: int, total_iters: int
) -> float:
    """Set every group to the poly lr of ``iteration`` times its multiplier.

    Upstream calls this *after* the optimiser step of ``iteration`` (0-based), so step k + 1
    runs with the lr of iteration k. Returns the base lr.
    """
    lr = poly_lr(cfg.lr, iteration, total_iters, cfg.poly_power)
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_mult"]
    return lr
