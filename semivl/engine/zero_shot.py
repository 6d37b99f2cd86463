"""Zero-shot dense CLIP: the frozen CLIP's dense labels evaluated as a segmentation model.

The labels are exactly those SemiVL's dense CLIP guidance computes (docs/upstream.md, SemiVL
guidance and losses): the MaskCLIP value-path embedding of the original CLIP, cosine
similarity with the guidance texts (max over a class's concepts for the definitions),
upsampled and scaled by the guidance temperature, arg-max per pixel, without the confidence
threshold. No label and no training is involved, so the number is the vision-language
prior's own segmentation quality: the reference point MaskCLIP is for SemiVL in the paper.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from semivl.config import Recipe
from semivl.engine.guidance import dense_clip_similarity, dense_clip_teacher
from semivl.models.clip_vit import MaskClipViT

ZERO_SHOT_METHOD = "zero_shot_clip"


class ZeroShotDenseClip(nn.Module):
    """``forward(images)`` -> logits [B, C, H, W]: ``temperature x`` the dense similarity."""

    def __init__(
        self,
        teacher: MaskClipViT,
        text: torch.Tensor,
        concept_class: torch.Tensor | None,
        num_classes: int,
        temperature: float,
    ) -> None:
        super().__init__()
        self.teacher = teacher.eval()
        self.register_buffer("text", text.float(), persistent=False)
        self.register_buffer("concept_class", concept_class, persistent=False)
        self.num_classes = num_classes
        self.temperature = temperature

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        sim = dense_clip_similarity(
            self.teacher, self.text, self.concept_class, self.num_classes, images
        )
        return self.temperature * sim


def build_zero_shot(recipe: Recipe, context) -> ZeroShotDenseClip:
    """The zero-shot model of a SemiVL recipe: its CLIP, numerics, guidance texts and
    temperature; the position table sized for the recipe's evaluation crop."""
    from semivl.models.semivl_model import class_texts_for

    if recipe.model.name != "semivl" or recipe.guidance is None:
        raise ValueError(
            f"zero-shot dense CLIP needs a SemiVL recipe with a guidance section "
            f"(its CLIP and texts); {recipe.model.name!r} on "
            f"{recipe.dataset.name} has none"
        )
    teacher = dense_clip_teacher(recipe, context, recipe.eval.crop_size or context.crop_size)
    text, concept_class = class_texts_for(
        recipe.model.args["clip"],
        context,
        recipe.guidance.text,
        teacher.embed_dim,
        recipe.model.args.get("text_embeddings", "project"),
    )
    return ZeroShotDenseClip(
        teacher, text, concept_class, recipe.dataset.num_classes, recipe.guidance.temperature
    )


def zero_shot_metrics(recipe: Recipe, method: str, result, config_dir: Path) -> dict:
    """The ``metrics.json`` of a zero-shot evaluation."""
    from semivl.models.text import load_class_texts

    texts = recipe.guidance.text
    return {
        "dataset": recipe.dataset.name,
        "method": ZERO_SHOT_METHOD,
        "recipe": method,
        "clip": recipe.model.args["clip"],
        "text": texts,
        "class_definitions": (
            None
            if texts == "names"
            else load_class_texts(recipe.dataset, config_dir).definitions_source
        ),
        "miou": result.miou,
        "per_class_iou": result.per_class_iou,
        "num_val_images": result.num_images,
        **(
            {}
            if result.per_mode_accuracy is None
            else {"per_mode_accuracy": result.per_mode_accuracy}
        ),
    }
