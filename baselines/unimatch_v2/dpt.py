"""UniMatch V2's segmentation network (docs/upstream.md, UniMatch V2): DINOv2 + DPT head.

The encoder is timm's DINOv2 ViT (``vit_{small,base,large}_patch14_dinov2``: img_size 518,
patch 14, layer scale, no register tokens), which takes the official DINOv2 files with their
own key names (only ``mask_token``, unused for segmentation, has no place in it). Four blocks
are tapped, normalised by the final LayerNorm, without the class token. The DPT head is
written here from its description (docs/upstream.md, UniMatch V2): per-level 1x1
projections, resampling (4x and 2x transposed convolutions, identity, a stride-2 3x3
convolution), 3x3 "scratch" convolutions and four RefineNet-style fusion blocks, without
batch norm.

``forward(x, comp_drop=True)`` takes the two strong views as one batch ``cat(s1, s2)`` and
applies V2's complementary channel dropout to the tapped features (:func:`complementary_masks`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PATCH = 14
# size -> (timm model, tapped blocks, DPT features, DPT out_channels)
SIZES: dict[str, tuple[str | None, list[int], int, list[int]]] = {
    "small": ("vit_small_patch14_dinov2", [2, 5, 8, 11], 64, [48, 96, 192, 384]),
    "base": ("vit_base_patch14_dinov2", [2, 5, 8, 11], 128, [96, 192, 384, 768]),
    "large": ("vit_large_patch14_dinov2", [4, 11, 17, 23], 256, [256, 512, 1024, 1024]),
    # A four-block ViT for CPU tests and the demo (not a published model): width 32 and
    # patch 14 by default; ``embed_dim`` / ``patch_size`` change it (the DPT widths follow).
    "tiny": (None, [0, 1, 2, 3], 16, [8, 16, 32, 32]),
}


def complementary_masks(
    b: int,
    channels: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """V2's complementary dropout masks for ``cat(s1, s2)`` (2b samples): Bernoulli(0.5)
    channel masks M x 2 for s1 and 2 - M for s2, both reset to 1 for int(b / 2) random
    samples; shape (2b, channels)."""
    mask1 = torch.bernoulli(torch.full((b, channels), 0.5), generator=generator) * 2.0
    mask2 = 2.0 - mask1
    kept = torch.randperm(b, generator=generator)[: int(b * 0.5)]
    mask1[kept] = 1.0
    mask2[kept] = 1.0
    return torch.cat((mask1, mask2)).to(device)


class ResidualConvUnit(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, plus the input (DPT, no batch norm)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(F.relu(x))))
        return out + x


class FusionBlock(nn.Module):
    """DPT's feature fusion: add the refined skip, refine, upsample (x2 or to ``size``), 1x1."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.res1 = ResidualConvUnit(features)
        self.res2 = ResidualConvUnit(features)
        self.out_conv = nn.Conv2d(features, features, 1)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor | None = None, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        if skip is not None:
            x = x + self.res1(skip)
        x = self.res2(x)
        if size is None:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class DPTHead(nn.Module):
    """UniMatch V2's decoder on four token maps of width ``in_channels``."""

    def __init__(
        self, num_classes: int, in_channels: int, features: int, out_channels: list[int]
    ) -> None:
        super().__init__()
        self.projects = nn.ModuleList(nn.Conv2d(in_channels, c, 1) for c in out_channels)
        c = out_channels
        self.resize = nn.ModuleList(
            [
                nn.ConvTranspose2d(c[0], c[0], 4, stride=4),
                nn.ConvTranspose2d(c[1], c[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(c[3], c[3], 3, stride=2, padding=1),
            ]
        )
        self.scratch = nn.ModuleList(
            nn.Conv2d(ch, features, 3, padding=1, bias=False) for ch in out_channels
        )
        self.fusion = nn.ModuleList(FusionBlock(features) for _ in range(4))
        # The deepest block has no skip input, so its first residual unit is never called
        # (upstream's refinenet4.resConfUnit1 is the same). Frozen, it is kept in the weights
        # for checkpoint compatibility and nothing changes: an optimiser skips a parameter
        # without a gradient, and data-parallel training needs no unused-parameter search.
        self.fusion[3].res1.requires_grad_(False)
        self.output = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(features, num_classes, 1),
        )

    def forward(self, tokens: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        levels = []
        for i, t in enumerate(tokens):
            x = t.permute(0, 2, 1).reshape(t.shape[0], t.shape[-1], *grid)
            levels.append(self.scratch[i](self.resize[i](self.projects[i](x))))
        l1, l2, l3, l4 = levels
        path = self.fusion[3](l4, size=l3.shape[2:])
        path = self.fusion[2](path, l3, size=l2.shape[2:])
        path = self.fusion[1](path, l2, size=l1.shape[2:])
        path = self.fusion[0](path, l1)
        return self.output(path)


class UniMatchV2Net(nn.Module):
    """DINOv2 encoder (``backbone``) + DPT decoder (``head``); logits at (H // 14 * 14,
    W // 14 * 14), bilinear with align_corners=True as upstream."""

    def __init__(
        self,
        num_classes: int,
        size: str = "base",
        embed_dim: int | None = None,
        patch_size: int | None = None,
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"size: expected one of {sorted(SIZES)}, got {size!r}")
        import timm

        name, self.taps, features, out_channels = SIZES[size]
        if name is not None and (embed_dim is not None or patch_size is not None):
            raise ValueError(
                f"embed_dim and patch_size shape the tiny ViT only; size {size!r} "
                f"is DINOv2's {name} (width and patch 14 fixed by its weights)"
            )
        self.patch = patch_size or PATCH
        if name is None:
            width = embed_dim or 32
            if width % 2 or width < 8:
                raise ValueError(f"embed_dim: expected an even width >= 8, got {width}")
            if width != 32:  # DPT widths in DINOv2-S/B's proportions to the encoder's
                features = max(16, width // 4)
                out_channels = [width // 8, width // 4, width // 2, width]
            self.backbone = timm.models.vision_transformer.VisionTransformer(
                img_size=4 * self.patch,
                patch_size=self.patch,
                embed_dim=width,
                depth=4,
                num_heads=2,
                mlp_ratio=4.0,
                init_values=1.0,
                num_classes=0,
                dynamic_img_size=True,
            )
        else:
            self.backbone = timm.create_model(
                name,
                pretrained=False,
                img_size=518,
                dynamic_img_size=True,
                init_values=1.0,
                num_classes=0,
            )
        self.head = DPTHead(num_classes, self.backbone.embed_dim, features, out_channels)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped blocks' tokens after the final LayerNorm, class token dropped: [N, L, C]."""
        return self.backbone.forward_intermediates(
            x, indices=self.taps, norm=True, output_fmt="NLC", intermediates_only=True
        )

    def forward(self, x: torch.Tensor, comp_drop: bool = False) -> torch.Tensor:
        grid = (x.shape[-2] // self.patch, x.shape[-1] // self.patch)
        tokens = self.features(x)
        if comp_drop:
            masks = complementary_masks(x.shape[0] // 2, tokens[0].shape[-1], x.device)
            tokens = [t * masks.unsqueeze(1) for t in tokens]
        out = self.head(tokens, grid)
        size = (grid[0] * self.patch, grid[1] * self.patch)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=True)


def build_unimatch_v2(
    num_classes: int,
    size: str = "base",
    embed_dim: int | None = None,
    patch_size: int | None = None,
) -> UniMatchV2Net:
    """UniMatch V2's network with DINOv2-``size`` (small, base, large; tiny for CPU tests, of
    width ``embed_dim`` and patch ``patch_size``)."""
    return UniMatchV2Net(num_classes, size, embed_dim, patch_size)
