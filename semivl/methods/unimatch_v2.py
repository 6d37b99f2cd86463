"""UniMatch V2: an EMA teacher labels the weak view, the CutMix partner is the batch reversed,
two strong views with complementary dropout (the step in :mod:`semivl.engine.unimatch_v2`).
The teacher is the run's reported model; the student is reported beside it."""

from __future__ import annotations

from semivl.methods.registry import Method

METHOD = Method(
    name="unimatch_v2",
    step="semivl.engine.unimatch_v2:method_step",
    streams=("labeled", "unlabeled"),
    log_fields=("loss_x", "loss_s", "mask_ratio"),
    state="semivl.engine.unimatch_v2:EmaTeacher",
    train_keys=("ema_momentum",),
    tf32=(False, True, "upstream: torch 2.x defaults (UniMatch V2): matmul fp32, cuDNN TF32"),
    summary="UniMatch V2 (TPAMI 2025): EMA teacher, DINOv2 + DPT",
)
