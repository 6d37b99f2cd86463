"""UniMatch (V1): weak-to-strong consistency with two CutMixed strong views and feature
perturbation (the step in :mod:`semivl.engine.unimatch`)."""

from __future__ import annotations

from semivl.methods.registry import Method

METHOD = Method(
    name="unimatch",
    step="semivl.engine.unimatch:method_step",
    streams=("labeled", "unlabeled", "mix"),
    log_fields=("loss_x", "loss_s", "loss_fp", "mask_ratio"),
    tf32=(False, True, "upstream: torch 1.12.1 (UniMatch README): matmul fp32, cuDNN TF32"),
    summary="UniMatch (CVPR 2023): unified dual-stream perturbations",
)
