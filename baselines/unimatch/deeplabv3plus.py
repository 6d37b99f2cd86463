"""DeepLabV3+ as in UniMatch (docs/upstream.md, UniMatch network).

ASPP with a 1x1 branch, three dilated 3x3 branches and image pooling (BN + ReLU each, no
dropout), a 48-channel low-level branch from the stride-4 feature, two 3x3 fuse convs and a
1x1 classifier; all convs bias-free except the classifier; bilinear upsampling with
``align_corners=True``. Backbones: UniMatch's deep-stem ResNet-50/101 and Xception-65 at
output stride 16, and small torchvision-style ResNets for the demo and tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.unimatch.resnet import DEEP_STEM, TORCHVISION, DeepStemResNet, TorchvisionResNet
from baselines.unimatch.xception import Xception65

BACKBONES = sorted([*DEEP_STEM, *TORCHVISION, "xception65"])


def build_backbone(name: str, width: int | None = None) -> nn.Module:
    """A trunk returning (c1, c4) with ``low_channels`` and ``high_channels`` attributes.

    ``width`` (the small torchvision-style ResNets only) scales their stage widths.
    """
    if width is not None and name not in TORCHVISION:
        raise ValueError(f"backbone_width applies to {sorted(TORCHVISION)} only, not {name!r}")
    if name in DEEP_STEM:
        return DeepStemResNet(DEEP_STEM[name])
    if name in TORCHVISION:
        return TorchvisionResNet(TORCHVISION[name], width or 64)
    if name == "xception65":
        return Xception65()
    raise ValueError(f"unknown backbone {name!r}; expected one of {BACKBONES}")


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    padding = 0 if kernel == 1 else dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPPPooling(nn.Module):
    """Image-level pooling branch of ASPP."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = _conv_bn_relu(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.pool(x))
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling, projected to ``cout`` channels without dropout."""

    def __init__(self, cin: int, cout: int, dilations: tuple[int, int, int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [_conv_bn_relu(cin, cout, 1)]
            + [_conv_bn_relu(cin, cout, 3, d) for d in dilations]
            + [ASPPPooling(cin, cout)]
        )
        self.project = _conv_bn_relu(cout * 5, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP on c4, a reduced c1 branch, two fuse convs and the classifier."""

    def __init__(
        self,
        num_classes: int,
        low_channels: int,
        high_channels: int,
        dilations: tuple[int, int, int],
        width: int,
        low_level_channels: int,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, width, tuple(dilations))
        self.reduce = _conv_bn_relu(low_channels, low_level_channels, 1)
        self.fuse = nn.Sequential(
            _conv_bn_relu(width + low_level_channels, width, 3),
            _conv_bn_relu(width, width, 3),
        )
        self.classifier = nn.Conv2d(width, num_classes, 1, bias=True)

    def forward(self, c1: torch.Tensor, c4: torch.Tensor) -> torch.Tensor:
        """Logits at the resolution of c1 (stride 4)."""
        c4 = self.aspp(c4)
        c4 = F.interpolate(c4, size=c1.shape[-2:], mode="bilinear", align_corners=True)
        return self.classifier(self.fuse(torch.cat([self.reduce(c1), c4], dim=1)))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ segmentation network: ``backbone`` (c1, c4) and ``decoder``.

    Args:
        num_classes: output channels.
        backbone: one of ``resnet50``, ``resnet101`` (deep stem), ``xception65``,
            ``tv_resnet10``, ``tv_resnet18``.
        dilations: ASPP dilation rates (UniMatch: 6, 12, 18).
        aspp_channels: ASPP and fuse width; UniMatch uses high-level channels / 8 (256).
        low_level_channels: width of the reduced stride-4 branch (48 upstream).
        backbone_width: stage width scale of ``tv_resnet10`` / ``tv_resnet18`` (default 64,
            torchvision's widths).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet101",
        dilations: tuple[int, int, int] = (6, 12, 18),
        aspp_channels: int | None = None,
        low_level_channels: int = 48,
        backbone_width: int | None = None,
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, backbone_width)
        high = self.backbone.high_channels
        self.decoder = DeepLabV3PlusDecoder(
            num_classes,
            self.backbone.low_channels,
            high,
            dilations,
            aspp_channels or high // 8,
            low_level_channels,
        )

    def forward(
        self, x: torch.Tensor, need_fp: bool = False, fp_rate: float = 0.5
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits at the input size; with ``need_fp`` also the feature-perturbed logits.

        Feature perturbation (UniMatch): c1 and c4 are each concatenated with an independent
        channel-dropout copy (Dropout2d, always active), the decoder runs once on the doubled
        batch, and the output is split into the clean and the perturbed prediction.
        """
        c1, c4 = self.backbone(x)
        if need_fp:
            c1 = torch.cat((c1, F.dropout2d(c1, fp_rate, training=True)))
            c4 = torch.cat((c4, F.dropout2d(c4, fp_rate, training=True)))
        out = F.interpolate(
            self.decoder(c1, c4), size=x.shape[-2:], mode="bilinear", align_corners=True
        )
        return out.chunk(2) if need_fp else out


def build_deeplabv3plus(
    num_classes: int,
    backbone: str = "resnet101",
    dilations: tuple[int, int, int] = (6, 12, 18),
    aspp_channels: int | None = None,
    low_level_channels: int = 48,
    backbone_width: int | None = None,
) -> DeepLabV3Plus:
    """The registered builder of ``model.name: deeplabv3plus`` (recipe lists become tuples)."""
    return DeepLabV3Plus(
        num_classes,
        backbone=backbone,
        dilations=tuple(dilations),
        aspp_channels=aspp_channels,
        low_level_channels=low_level_channels,
        backbone_width=backbone_width,
    )
