"""UniMatch with a ViT: the DeepLabV3+-style decoder of SemiVL's component ablation
(docs/upstream.md, SemiVL component ablation, rows 2-4; upstream
``model/decode_heads/dlv3p_head.py``).

Two backbones feed the same head:

* :class:`TimmViT`: an ImageNet ViT of timm (row 2, "UniMatch w/ ViT"). The features are the
  outputs of the requested blocks passed through the ViT's final LayerNorm, as upstream's
  ``TIMMVisionTransformer`` returns them. Its parameters keep timm's names, so an ImageNet
  checkpoint of timm loads into it as it is (``head.*`` is reported as unexpected).
* :class:`ClipFeatures`: SemiVL's MaskCLIP ViT (rows 3-4, "+ CLIP init", "+ SFT"): value-path
  features of the requested blocks, and with the index ``num_blocks`` the dense CLIP embedding.

:class:`DLV3PHead` runs ASPP on the deep feature (dilations 6/12/18, ``in/8`` channels, BN +
ReLU per branch) and a 1x1 BN + ReLU reduction on the low-level one (48 channels), concatenates
(low-level first), fuses with two 3x3 BN + ReLU convs of 256 channels and classifies with a 1x1
conv. Both features are at 1/16 resolution for a ViT, so the logits are too; the segmentor
resizes them to the crop and then to the input (bilinear, ``align_corners=False``), as
upstream's forward does. All layers keep PyTorch's default initialisation (upstream builds the
head with ``init_cfg=None``). Parameter names start with ``backbone.`` and ``decode_head.`` so
the upstream optimiser keys (``backbone``, ``head``) match the same parameters as upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines.unimatch.deeplabv3plus import ASPP
from semivl.models.clip_vit import MaskClipViT, resize_pos_embed, set_vit_finetuning
from semivl.models.semivl_model import upsample_via_crop


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DLV3PHead(nn.Module):
    """ASPP on the deep feature, a reduced low-level feature, two fuse convs, a classifier.

    Args:
        in_channels: channels of the deep feature (768 for ViT-B blocks, 512 for the CLIP
            embedding).
        low_level_in_channels: channels of the low-level feature.
        num_classes: output channels.
        dilations: the three ASPP dilation rates.
        aspp_channels: ASPP output width; ``None`` = ``in_channels // 8`` as upstream.
        low_level_channels: width of the reduced low-level feature (upstream 48).
        fuse_channels: width of the two 3x3 fuse convs (upstream 256).
    """

    def __init__(
        self,
        in_channels: int,
        low_level_in_channels: int,
        num_classes: int,
        dilations: Sequence[int] = (6, 12, 18),
        aspp_channels: int | None = None,
        low_level_channels: int = 48,
        fuse_channels: int = 256,
    ) -> None:
        super().__init__()
        aspp_channels = aspp_channels or in_channels // 8
        self.aspp = ASPP(in_channels, aspp_channels, tuple(dilations))
        self.c1_proj = _conv_bn_relu(low_level_in_channels, low_level_channels, 1)
        self.fuse = nn.Sequential(
            _conv_bn_relu(low_level_channels + aspp_channels, fuse_channels, 3),
            _conv_bn_relu(fuse_channels, fuse_channels, 3),
        )
        self.classifier = nn.Conv2d(fuse_channels, num_classes, 1, bias=True)

    def forward(self, low: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        """Logits at the low-level feature's resolution."""
        deep = self.aspp(deep)
        low = self.c1_proj(low)
        if deep.shape[-2:] != low.shape[-2:]:
            deep = F.interpolate(deep, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat((low, deep), dim=1)))


class TimmViT(nn.Module):
    """Block features of a timm ``VisionTransformer`` (upstream ``TIMMVisionTransformer``).

    The modules of ``vit`` are taken over under their timm names (its classifier is dropped).
    The position table is sized for ``image_size``; inputs of another size are resized to it
    first (bilinear, ``align_corners=False``), as upstream does at evaluation. Returns the
    requested blocks' outputs after the final LayerNorm, as maps ``[B, C, H/p, W/p]``, in
    request order. timm's DropPath stays active in training (upstream's ``disable_dropout``
    does not reach it).
    """

    def __init__(self, vit: nn.Module, image_size: int, out_blocks: Sequence[int]) -> None:
        super().__init__()
        if (
            vit.cls_token is None
            or vit.num_prefix_tokens != 1
            or vit.no_embed_class
            or vit.pos_embed is None
            or getattr(vit, "dynamic_img_size", False)
        ):
            raise ValueError(
                "TimmViT needs a timm ViT with one class token and a learned "
                "position table that covers it, at a fixed image size"
            )
        self.patch_embed = vit.patch_embed
        self.cls_token = vit.cls_token
        self.pos_embed = vit.pos_embed
        self.pos_drop = vit.pos_drop
        self.patch_drop = vit.patch_drop
        self.norm_pre = vit.norm_pre
        self.norm = vit.norm
        self.image_size = image_size
        self.patch_size = self.patch_embed.patch_size[0]
        self.width = vit.embed_dim
        depth = len(vit.blocks)
        bad = [b for b in out_blocks if not 0 <= b < depth]
        if bad:
            raise ValueError(f"feature_blocks {bad} outside [0, {depth}) for a timm ViT")
        self.out_blocks = list(out_blocks)
        # Blocks after the deepest one read would get no gradient (which DDP without
        # find_unused_parameters refuses): they are left out, and a checkpoint's weights for
        # them are reported as unexpected.
        self.blocks = vit.blocks[: max(self.out_blocks) + 1]
        self.num_blocks = len(self.blocks)
        self.grid = tuple(self.patch_embed.grid_size)
        self.out_channels = [self.width] * len(self.out_blocks)

    def set_finetuning(self, mode: str) -> None:
        set_vit_finetuning(self, mode, "pos_embed")

    def adapt_pretrained(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Resize a checkpoint's position table to this crop's grid: bicubic,
        ``align_corners=False``, class position kept, as timm 0.6 did when upstream built
        the model with ``img_size=crop`` (timm 1.0 would add antialiasing)."""
        pos = state.get("pos_embed")
        if pos is None or pos.shape == self.pos_embed.shape:
            return state
        src = int(round((pos.shape[1] - 1) ** 0.5))
        if src * src + 1 != pos.shape[1]:
            raise ValueError(
                f"pos_embed of shape {tuple(pos.shape)} is not a square grid plus a class position"
            )
        resized = resize_pos_embed(pos[0].float(), (src, src), self.grid).to(pos.dtype)
        return {**state, "pos_embed": resized[None]}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        size = (self.image_size, self.image_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        b = x.shape[0]
        h, w = self.grid
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1) + self.pos_embed
        x = self.norm_pre(self.patch_drop(self.pos_drop(x)))
        wanted, feats = set(self.out_blocks), {}
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in wanted:
                out = self.norm(x)[:, 1:]
                feats[i] = out.transpose(1, 2).reshape(b, -1, h, w)
        return [feats[i] for i in self.out_blocks]


class ClipFeatures(nn.Module):
    """SemiVL's MaskCLIP ViT as a feature extractor for :class:`DLV3PHead`: block ``i <
    num_blocks`` gives its value-path map (768 channels for ViT-B/16), ``i == num_blocks`` the
    dense CLIP embedding (512, L2-normalised), as upstream's ``out_indices=[4, 12]``."""

    def __init__(
        self, visual: nn.Module, image_size: int, out_blocks: Sequence[int], **clip_args: Any
    ) -> None:
        super().__init__()
        n = len(visual.transformer.resblocks)
        bad = [b for b in out_blocks if not 0 <= b <= n]
        if bad:
            raise ValueError(
                f"feature_blocks {bad} outside [0, {n}] for a CLIP ViT "
                f"({n} = the dense CLIP embedding)"
            )
        self.vit = MaskClipViT(
            visual, image_size, [b for b in out_blocks if b < n], dense=n in out_blocks, **clip_args
        )
        self.out_blocks = list(out_blocks)
        self.out_channels = [self.vit.embed_dim if b == n else self.vit.width for b in out_blocks]

    def set_finetuning(self, mode: str) -> None:
        self.vit.set_finetuning(mode)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.vit(x)
        blocks = dict(zip(self.vit.out_blocks, feats.blocks, strict=True))
        return [feats.dense if b == self.vit.num_blocks else blocks[b] for b in self.out_blocks]


class ViTDeepLab(nn.Module):
    """A ViT backbone (low-level and deep feature) and :class:`DLV3PHead`.

    ``forward(x, need_fp, fp_rate)`` returns logits at the input size; with ``need_fp`` also
    the prediction from the same features after ``Dropout2d(fp_rate)`` on both maps the head
    reads, decoded in the same pass (the batch doubled), as upstream's forward wrapper does.
    The head's 1/16-resolution logits are resized to (crop, crop), then to the input size.
    """

    pretrained_module = "backbone"  # where recipe.model.pretrained weights are loaded

    def __init__(self, backbone: nn.Module, decode_head: DLV3PHead, crop_size: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.decode_head = decode_head
        self.crop_size = crop_size

    def forward(self, x: torch.Tensor, need_fp: bool = False, fp_rate: float = 0.5):
        low, deep = self.backbone(x)
        if need_fp:
            low = torch.cat((low, F.dropout2d(low, fp_rate, training=True)))
            deep = torch.cat((deep, F.dropout2d(deep, fp_rate, training=True)))
        logits = self.decode_head(low, deep)
        logits = upsample_via_crop(logits, self.crop_size, x.shape[-2:])
        return logits.chunk(2) if need_fp else logits


def build_timm_vit(
    name: str, image_size: int, drop_path_rate: float, args: dict[str, Any] | None = None
) -> nn.Module:
    """timm's ``name`` with random weights at ``image_size`` (``args`` override the
    architecture, e.g. a tiny ViT for the toy); pretrained weights come from
    ``model.pretrained`` (``config/weights.yaml``), never from timm's own download."""
    import timm

    return timm.create_model(
        name,
        pretrained=False,
        num_classes=0,
        img_size=image_size,
        drop_path_rate=drop_path_rate,
        **(args or {}),
    )


def build_vit_deeplab(
    num_classes: int,
    context,
    backbone: str = "timm",
    timm_model: str = "vit_base_patch16_224",
    timm_args: dict[str, Any] | None = None,
    clip: str | None = None,
    finetune: str = "full",
    feature_blocks: Sequence[int] = (4, 11),
    drop_path_rate: float = 0.0,
    exact_gelu: bool = True,
    ln_eps: float = 1e-6,
    renorm_clip_input: bool = False,
    dilations: Sequence[int] = (6, 12, 18),
    aspp_channels: int | None = None,
    low_level_channels: int = 48,
    fuse_channels: int = 256,
) -> ViTDeepLab:
    """Build the ablation's ViT + DeepLabV3+ model from recipe arguments.

    ``backbone``: ``timm`` (``timm_model`` with ``timm_args``, ``drop_path_rate``; ImageNet
    weights through ``model.pretrained``) or ``clip`` (the MaskCLIP ViT of config/clip.yaml's
    ``clip``, read through the context like SemiVL's; ``exact_gelu``, ``ln_eps`` and
    ``renorm_clip_input`` as in SemiVL). ``feature_blocks``: [low-level block, deep block];
    for ``clip`` the deep index ``num_blocks`` (12 for ViT-B) is the dense CLIP embedding.
    ``finetune``: ``full``, ``attention`` (SemiVL's spatial fine-tuning) or ``frozen``.
    """
    from semivl.models.semivl_model import clip_visual

    if len(feature_blocks) != 2:
        raise ValueError(
            f"feature_blocks: expected [low-level block, deep block], got {list(feature_blocks)}"
        )
    if backbone == "timm":
        if clip is not None:
            raise ValueError("clip: a timm backbone reads no CLIP; set clip: null")
        vit = build_timm_vit(timm_model, context.crop_size, drop_path_rate, timm_args)
        features: nn.Module = TimmViT(vit, context.crop_size, feature_blocks)
    elif backbone == "clip":
        if clip is None:
            raise ValueError("clip: a clip backbone needs a config/clip.yaml entry")
        if drop_path_rate or timm_args:
            raise ValueError(
                "drop_path_rate/timm_args apply to backbone timm only "
                "(upstream's MaskCLIP ViT has no drop path)"
            )
        features = ClipFeatures(
            clip_visual(clip, context),
            context.crop_size,
            feature_blocks,
            exact_gelu=exact_gelu,
            ln_eps=ln_eps,
            renorm_clip_input=renorm_clip_input,
        )
    else:
        raise ValueError(f"backbone: expected timm or clip, got {backbone!r}")
    features.set_finetuning(finetune)
    low_in, deep_in = features.out_channels
    head = DLV3PHead(
        deep_in,
        low_in,
        num_classes,
        dilations=tuple(dilations),
        aspp_channels=aspp_channels,
        low_level_channels=low_level_channels,
        fuse_channels=fuse_channels,
    )
    return ViTDeepLab(features, head, context.crop_size)
