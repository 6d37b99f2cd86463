"""The loss of one training iteration, shared by the trainer and ``semivl bench``.

Speed options of ``train.speed`` that act on the forward pass live here: bfloat16 autocast
and channels-last inputs. Both are off by default (the faithful fp32 path).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from semivl.config import Recipe, TrainConfig
from semivl.methods import get_method


def _channels_last(batch):
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_channels_last(t) for t in batch)
    return batch


def to_device(batch, device: torch.device):
    """The tensors of a loader batch (nested tuples and lists) on ``device``, copied without
    blocking the host (the loaders pin their memory on GPUs)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(t, device) for t in batch)
    return batch


def autocast_context(cfg: TrainConfig, device: torch.device):
    """``torch.autocast`` in bfloat16 when ``train.speed.amp`` asks for it, else a no-op."""
    if cfg.speed.amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_loss(
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
    """The loss (fp32) and logged values of one micro-batch of the registered method
    ``cfg.method``; ``state`` is the method's state object (UniMatch V2's EMA teacher)."""
    if cfg.speed.channels_last:
        batch = _channels_last(batch)
    step = get_method(cfg.method).load("step")
    with autocast_context(cfg, device):
        loss, logs = step(
            model, batch, criterion, cfg, device, iteration, total_iters, hooks, state
        )
    return loss.float(), logs


def build_method_state(recipe: Recipe, model: nn.Module):
    """The method's state object built on the plain ``model`` (``None`` if it keeps none)."""
    method = get_method(recipe.train.method)
    return None if method.state is None else method.load("state")(model, recipe.train)


def build_training_parts(
    recipe: Recipe, context, device: torch.device
) -> tuple[nn.Module, torch.optim.Optimizer, list, nn.Module]:
    """The model (with the channels-last option applied), its optimiser, the method's loss
    hooks (SemiVL's dense CLIP guidance) and the labelled criterion, as training uses them."""
    from semivl.engine.losses import build_labeled_criterion
    from semivl.engine.optim import build_optimizer
    from semivl.models import build_model

    cfg = recipe.train
    model = build_model(recipe.model, recipe.dataset.num_classes, context).to(device)
    if cfg.speed.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, recipe.optim, fused=cfg.speed.fused_optimizer)
    method = get_method(cfg.method)
    hooks = []
    if method.loss_hooks is not None:
        hooks = [
            hook.to(device) if isinstance(hook, nn.Module) else hook
            for hook in method.load("loss_hooks")(recipe, model, context)
        ]
    criterion = build_labeled_criterion(cfg.criterion, cfg.ohem_thresh, cfg.ohem_min_kept)
    return model, optimizer, hooks, criterion


def compile_model(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """``torch.compile`` the model when ``train.speed.compile`` asks for it."""
    return torch.compile(model) if cfg.speed.compile else model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner
