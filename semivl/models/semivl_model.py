"""The SemiVL segmentation model (docs/upstream.md, SemiVL architecture): CLIP ViT with
spatial fine-tuning, the language-guided decoder, and for Cityscapes a ResNet stem-and-layer1
branch.

Built from ``config/clip.yaml`` weights in ``resources/clip/`` (the CLIP initialisation) and
the class text embeddings in ``resources/text/``. Parameter names start with ``backbone.``,
``decode_head.`` and ``conv_encoder.``, so the upstream optimiser keys (``backbone``, ``head``,
``conv_encoder``, ``norm``, ``ln``) match the same parameters as upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import Bottleneck

from semivl.config import DatasetConfig
from semivl.models.clip_source import CLIP_DIR, build_clip, clip_source, load_clip
from semivl.models.clip_vit import MaskClipViT
from semivl.models.text import (
    TEXT_DIR,
    load_class_texts,
    load_text_embeddings,
    max_over_concepts,
    select_text,
)
from semivl.models.vlg_head import VLGHead


@dataclass(frozen=True)
class ModelContext:
    """What a model builder may need beyond its recipe arguments."""

    dataset: DatasetConfig
    crop_size: int
    config_dir: Path = Path("config")
    clip_dir: Path = CLIP_DIR
    text_dir: Path = TEXT_DIR
    # Build the architecture only (random CLIP, placeholder texts): model-summary, no files.
    random_init: bool = False


def upsample_via_crop(logits: torch.Tensor, crop_size: int, size) -> torch.Tensor:
    """Resize head logits to (crop, crop) and then to ``size``, bilinearly, as upstream does
    (docs/upstream.md, SemiVL trap 11: two resizes, not one)."""
    crop = (crop_size, crop_size)
    if tuple(logits.shape[-2:]) != crop:
        logits = F.interpolate(logits, size=crop, mode="bilinear", align_corners=False)
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
    return logits


class ResNetV1cStem(nn.Module):
    """mmseg ``ResNetV1c`` cut after layer1: deep stem (3x3 convs 32/32/64, the first with
    stride 2), max-pool, three bottlenecks to 256 channels at 1/4 resolution. Parameter names
    match open-mmlab's ``resnet101_v1c`` checkpoint."""

    def __init__(self) -> None:
        super().__init__()

        def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.stem = nn.Sequential(
            *conv_bn_relu(3, 32, 2), *conv_bn_relu(32, 32), *conv_bn_relu(32, 64)
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        downsample = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64, downsample=downsample), Bottleneck(256, 64), Bottleneck(256, 64)
        )
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer1(self.maxpool(self.stem(x)))


class SemiVLSegmentor(nn.Module):
    """CLIP ViT (value-path features) + optional conv branch + ``VLGHead``.

    ``forward(x, need_fp, fp_rate)`` returns logits at the input size; with ``need_fp`` it
    also returns the prediction from the same features after ``Dropout2d(fp_rate)`` on every
    feature map the decoder reads (the CLIP embedding, the skips, the conv feature), decoded
    in the same pass. The head's 1/4-resolution logits are resized to (crop, crop) and then to
    the input size, as upstream does (docs/upstream.md, SemiVL trap 11).
    """

    pretrained_module = "conv_encoder"  # where recipe.model.pretrained weights are loaded

    def __init__(
        self,
        backbone: MaskClipViT,
        decode_head: VLGHead,
        text: torch.Tensor,
        concept_class: torch.Tensor | None,
        num_classes: int,
        crop_size: int,
        conv_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.conv_encoder = conv_encoder
        self.decode_head = decode_head
        self.num_classes = num_classes
        self.crop_size = crop_size
        self.register_buffer("text_embeddings", text.float())
        self.register_buffer("concept_class", concept_class)

    def forward(self, x: torch.Tensor, need_fp: bool = False, fp_rate: float = 0.5):
        feats = self.backbone(x)
        dense, skips = feats.dense, list(feats.blocks)
        if self.conv_encoder is not None:
            skips.append(self.conv_encoder(x))
        if need_fp:

            def double(f: torch.Tensor) -> torch.Tensor:
                return torch.cat((f, F.dropout2d(f, fp_rate, training=True)))

            dense, skips = double(dense), [double(s) for s in skips]
        logits = self.decode_head(dense, self.text_embeddings, skips)
        logits = max_over_concepts(logits, self.concept_class, self.num_classes)
        logits = upsample_via_crop(logits, self.crop_size, x.shape[-2:])
        return logits.chunk(2) if need_fp else logits


def clip_visual(clip_name: str, context: ModelContext) -> nn.Module:
    """The image tower of CLIP ``clip_name`` (random weights under ``context.random_init``)."""
    if context.random_init:
        return build_clip(clip_source(clip_name, context.config_dir)).visual
    return load_clip(clip_name, context.config_dir, context.clip_dir).visual


def class_texts_for(
    clip_name: str, context: ModelContext, variant: str, embed_dim: int, source: str = "project"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The text embeddings of ``variant`` for the context's dataset: this project's
    (``resources/text/<clip>/<dataset>.pt``) or, with ``source="upstream"``, upstream's own
    (recipe key ``model.args.text_embeddings``)."""
    if context.random_init:
        texts = load_class_texts(context.dataset, context.config_dir)
        owner = torch.tensor([i for i, c in enumerate(texts.definitions.values()) for _ in c])
        rows = len(owner) if variant == "concept_max" else len(texts.names)
        text = F.normalize(torch.randn(rows, embed_dim), dim=-1)
        return text, owner if variant == "concept_max" else None
    if source == "upstream":
        from semivl.models.text_reference import upstream_text_rows

        return upstream_text_rows(context.text_dir, context.config_dir, context.dataset, variant)
    return select_text(
        load_text_embeddings(context.text_dir, clip_name, context.dataset.name), variant
    )


def build_semivl(
    num_classes: int,
    context: ModelContext,
    clip: str,
    out_blocks: Sequence[int] = (4, 0),
    finetune: str = "attention",
    decoder_text: str = "names",
    text_embeddings: str = "project",
    exact_gelu: bool = True,
    ln_eps: float = 1e-6,
    renorm_clip_input: bool = False,
    conv_encoder: bool = False,
    channels: int = 128,
    text_channels: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    pool_size: int = 4,
    conv1_kernel: int = 7,
    aspp_dilations: Sequence[int] = (6, 12, 18),
    skip_channels: Sequence[int] = (32, 16),
    up_channels: Sequence[int] = (64, 32),
) -> SemiVLSegmentor:
    """Build SemiVL from recipe arguments (see ``config/recipes/semivl/pascal.yaml``).

    ``out_blocks`` are the ViT blocks whose value-path features feed the decoder's skips,
    deepest first; with ``conv_encoder`` the ResNet layer1 feature is the last skip.
    ``text_embeddings``: ``project`` (``semivl text``'s) or ``upstream`` (upstream's files).
    """
    backbone = MaskClipViT(
        clip_visual(clip, context),
        context.crop_size,
        out_blocks,
        dense=True,
        exact_gelu=exact_gelu,
        ln_eps=ln_eps,
        renorm_clip_input=renorm_clip_input,
    )
    backbone.set_finetuning(finetune)
    text, concept_class = class_texts_for(
        clip, context, decoder_text, backbone.embed_dim, text_embeddings
    )
    skip_in = [backbone.width] * len(out_blocks)
    encoder = None
    if conv_encoder:
        encoder = ResNetV1cStem()
        skip_in.append(encoder.out_channels)
    if len(skip_in) != len(skip_channels):
        raise ValueError(
            f"out_blocks {list(out_blocks)}{' + conv_encoder' if conv_encoder else ''}"
            f" give {len(skip_in)} skip(s), but skip_channels has "
            f"{len(skip_channels)} entries (one per upsampling stage)"
        )
    head = VLGHead(
        embed_dim=backbone.embed_dim,
        channels=channels,
        text_channels=text_channels,
        num_layers=num_layers,
        num_heads=num_heads,
        pool_size=pool_size,
        conv1_kernel=conv1_kernel,
        aspp_dilations=tuple(aspp_dilations),
        skip_in_channels=skip_in,
        skip_channels=tuple(skip_channels),
        up_channels=tuple(up_channels),
    )
    return SemiVLSegmentor(
        backbone, head, text, concept_class, num_classes, context.crop_size, encoder
    )
