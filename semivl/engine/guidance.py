"""SemiVL's dense CLIP guidance (docs/upstream.md, SemiVL guidance and losses; trap 6), as a
UniMatch loss hook.

A frozen, eval-mode copy of the *original* CLIP (not the fine-tuned backbone) labels the weak
unlabelled views: cosine similarity of its dense embedding with the guidance texts, max over a
class's concepts, bilinear upsampling to the crop, ``softmax(100 x sim)``, argmax, and 255 where
the confidence is below 0.9 or the crop was padded. The labels are CutMixed with the same boxes
as the self-training pseudo-labels; cross-entropy on both strong views and the perturbed
prediction, weighted 0.25 / 0.25 / 0.5, summed over pixels and divided by all pixels, times a
weight decaying linearly from 0.1 to 0; it is added to the UniMatch loss without the halving.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from semivl.config import GuidanceConfig, Recipe
from semivl.engine.losses import IGNORE
from semivl.engine.unimatch import UniMatchContext, paste
from semivl.models.clip_vit import MaskClipViT
from semivl.models.text import max_over_concepts


def dense_clip_similarity(
    teacher: MaskClipViT,
    text: torch.Tensor,
    concept_class: torch.Tensor | None,
    num_classes: int,
    images: torch.Tensor,
) -> torch.Tensor:
    """Per-class cosine similarity [B, C, H, W] of the dense CLIP embedding with the texts
    (max over a class's concepts), bilinearly upsampled to the images' size."""
    dense = teacher(images).dense
    sim = torch.einsum("bdhw,nd->bnhw", dense, text)
    sim = max_over_concepts(sim, concept_class, num_classes)
    return F.interpolate(sim, size=images.shape[-2:], mode="bilinear", align_corners=False)


def guidance_weight(cfg: GuidanceConfig, iteration: int, total_iters: int) -> float:
    """Linear interpolation from ``lambda_start`` (iteration 0) to ``lambda_end`` (the end)."""
    t = iteration / total_iters
    return cfg.lambda_start * (1 - t) + cfg.lambda_end * t


class DenseClipGuidance(nn.Module):
    """The frozen teacher and its texts; call it as a :data:`~semivl.engine.unimatch.LossHook`.

    Not part of the segmentation model: it is never trained or saved, and it is rebuilt from
    the original CLIP weights whenever training starts or resumes.
    """

    def __init__(
        self,
        teacher: MaskClipViT,
        text: torch.Tensor,
        concept_class: torch.Tensor | None,
        num_classes: int,
        cfg: GuidanceConfig,
    ) -> None:
        super().__init__()
        self.teacher = teacher.eval()
        for param in self.teacher.parameters():
            param.requires_grad = False
        self.register_buffer("text", text.float(), persistent=False)
        self.register_buffer("concept_class", concept_class, persistent=False)
        self.num_classes = num_classes
        self.cfg = cfg

    def train(self, mode: bool = True) -> DenseClipGuidance:  # noqa: ARG002 - always eval
        return super().train(False)

    @torch.no_grad()
    def labels(self, images: torch.Tensor, ignore_mask: torch.Tensor) -> torch.Tensor:
        """Guidance labels [B, H, W] (255 = no label) for ImageNet-normalised images.

        Always in fp32, also under ``train.speed.amp: bf16``: a bf16 cosine carries about
        three significant digits, and x100 (the temperature) moves the logits by up to 0.4,
        enough to carry pixels across the 0.9 confidence threshold."""
        with torch.autocast(device_type=images.device.type, enabled=False):
            sim = dense_clip_similarity(
                self.teacher, self.text, self.concept_class, self.num_classes, images.float()
            )
        conf, label = (self.cfg.temperature * sim).softmax(dim=1).max(dim=1)
        label[conf < self.cfg.conf_thresh] = IGNORE
        label[ignore_mask == IGNORE] = IGNORE
        return label

    def _reduce(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(pred, label, ignore_index=IGNORE, reduction="none")
        if self.cfg.reduce == "mean_all":
            return ce.sum() / ce.numel()
        return ce.sum() / (label != IGNORE).sum().clamp(min=1)

    def forward(self, ctx: UniMatchContext) -> tuple[torch.Tensor, dict[str, float]]:
        both = self.labels(
            torch.cat((ctx.img_u_w, ctx.img_u_w_mix)),
            torch.cat((ctx.ignore_mask, ctx.ignore_mask_mix)),
        )
        label, label_mix = both.chunk(2)
        label1 = paste(label, label_mix, ctx.box1)
        label2 = paste(label, label_mix, ctx.box2)
        loss_s1 = self._reduce(ctx.pred_u_s1, label1)
        loss_s2 = self._reduce(ctx.pred_u_s2, label2)
        loss_fp = self._reduce(ctx.pred_u_w_fp, label)
        combined = 0.25 * loss_s1 + 0.25 * loss_s2 + 0.5 * loss_fp
        weight = guidance_weight(self.cfg, ctx.iteration, ctx.total_iters)
        valid = ctx.ignore_mask != IGNORE
        ratio = ((label != IGNORE) & valid).sum().item() / max(valid.sum().item(), 1)
        return weight * combined, {
            "loss_guid": combined.item(),
            "guid_weight": weight,
            "guid_ratio": ratio,
        }


def dense_clip_teacher(recipe: Recipe, context, image_size: int) -> MaskClipViT:
    """A fresh copy of the recipe's original CLIP image tower in MaskCLIP form, with the
    numerics the recipe gives its backbone (GELU, LN eps, input renormalisation) and its
    position table sized for ``image_size``."""
    from semivl.models.semivl_model import clip_visual

    args = recipe.model.args
    return MaskClipViT(
        clip_visual(args["clip"], context),
        image_size,
        (),
        dense=True,
        exact_gelu=args.get("exact_gelu", True),
        ln_eps=args.get("ln_eps", 1e-6),
        renorm_clip_input=args.get("renorm_clip_input", False),
    )


def build_guidance(recipe: Recipe, model: nn.Module, context) -> DenseClipGuidance | None:
    """The guidance of a SemiVL recipe (``None`` without a ``guidance`` section).

    The teacher is a fresh copy of the recipe's CLIP with the backbone's numerics (GELU, LN
    eps, input renormalisation), its position table sized for ``teacher_image_size``.
    """
    from semivl.models.semivl_model import class_texts_for

    cfg = recipe.guidance
    if cfg is None:
        return None
    teacher = dense_clip_teacher(recipe, context, cfg.teacher_image_size)
    backbone: MaskClipViT = model.backbone
    if (teacher.exact_gelu, teacher.ln_eps, teacher.renorm_clip_input) != (
        backbone.exact_gelu,
        backbone.ln_eps,
        backbone.renorm_clip_input,
    ):
        raise ValueError("the guidance teacher's numerics differ from the backbone's")
    text, concept_class = class_texts_for(
        recipe.model.args["clip"],
        context,
        cfg.text,
        teacher.embed_dim,
        recipe.model.args.get("text_embeddings", "project"),
    )
    return DenseClipGuidance(teacher, text, concept_class, recipe.dataset.num_classes, cfg)


def guidance_hooks(recipe: Recipe, model: nn.Module, context) -> list[DenseClipGuidance]:
    """SemiVL's loss hooks: its dense CLIP guidance, or none without a ``guidance`` section."""
    guidance = build_guidance(recipe, model, context)
    return [] if guidance is None else [guidance]
