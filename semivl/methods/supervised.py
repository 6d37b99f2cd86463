"""Labelled-only training: cross-entropy (or OHEM) on the labelled stream; UniMatch's and
UniMatch V2's ``supervised.py``. With ``train.labeled_upsample_to`` the labelled list is
repeated up to that length (V2's baseline), since an epoch is a pass over the labelled set."""

from __future__ import annotations

from semivl.methods.registry import Method

METHOD = Method(
    name="supervised",
    step="semivl.methods.supervised:step",
    streams=("labeled",),
    tf32=(
        False,
        True,
        "upstream: the labelled-only scripts of UniMatch (torch 1.12.1) and V2 "
        "(torch 2.x): matmul fp32, cuDNN TF32",
    ),
    summary="labelled images only (UniMatch's and UniMatch V2's supervised.py)",
)


def step(model, batch, criterion, cfg, device, iteration, total_iters, hooks, state):
    """The labelled loss of one micro-batch; nothing else is logged."""
    image, mask = (t.to(device) for t in batch[0])
    return criterion(model(image), mask), {}
