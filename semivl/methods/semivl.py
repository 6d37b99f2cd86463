"""SemiVL: the UniMatch step with SemiVL's dense CLIP guidance as an extra loss term (the
recipe's ``guidance`` section; :mod:`semivl.engine.guidance`). The vision-language model and
decoder are the recipe's model (``model.name: semivl``)."""

from __future__ import annotations

from semivl.methods.registry import Method

METHOD = Method(
    name="semivl",
    step="semivl.engine.unimatch:method_step",
    streams=("labeled", "unlabeled", "mix"),
    log_fields=(
        "loss_x",
        "loss_s",
        "loss_fp",
        "mask_ratio",
        "loss_guid",
        "guid_weight",
        "guid_ratio",
    ),
    loss_hooks="semivl.engine.guidance:guidance_hooks",
    sections=("guidance",),
    tf32=(
        False,
        True,
        "upstream: the paper's runs used torch 1.12.1 (requirements comment): "
        "matmul fp32, cuDNN TF32",
    ),
    summary="SemiVL (ECCV 2024): UniMatch with vision-language guidance",
)
