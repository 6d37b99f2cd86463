"""DeepLabV3+ as in UniMatch (spec unimatch.md section 1.3), on torchvision ResNets.

ASPP with a 1x1 branch, three dilated 3x3 branches and image pooling (BN + ReLU each, no
dropout), a 48-channel low-level branch from layer1, two 3x3 fuse convs and a 1x1 classifier;
all convs bias-free except the classifier; bilinear upsampling with ``align_corners=True``.

The backbone here is a randomly initialised torchvision ResNet. ``resnet10`` (one BasicBlock a
stage) is the tiny demo/test backbone; BasicBlock stages cannot dilate, so its layer4 stride is
simply removed to reach output stride 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet
from torchvision.models.resnet import BasicBlock, Bottleneck

_RESNETS = {
    "resnet10": (BasicBlock, [1, 1, 1, 1]),
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
}


class ResNetBackbone(nn.Module):
    """ResNet trunk returning (c1, c4): layer1 (stride 4) and layer4 (stride 16)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in _RESNETS:
            raise ValueError(f"unknown backbone {name!r}; expected one of {sorted(_RESNETS)}")
        block, layers = _RESNETS[name]
        if block is Bottleneck:
            net = resnet.ResNet(block, layers, replace_stride_with_dilation=[False, False, True])
        else:
            net = resnet.ResNet(block, layers)
            first = net.layer4[0]
            first.conv1.stride = (1, 1)
            if first.downsample is not None:
                first.downsample[0].stride = (1, 1)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        expansion = block.expansion
        self.low_channels = 64 * expansion
        self.high_channels = 512 * expansion

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c1 = self.layer1(self.stem(x))
        c4 = self.layer4(self.layer3(self.layer2(c1)))
        return c1, c4


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


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ segmentation network.

    Args:
        num_classes: output channels.
        backbone: one of ``resnet10``, ``resnet18``, ``resnet50``, ``resnet101``.
        dilations: ASPP dilation rates (UniMatch: 6, 12, 18).
        aspp_channels: ASPP width; UniMatch uses high-level channels / 8 (256 for ResNet-50+).
        low_level_channels: width of the reduced layer1 branch (48 upstream).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet101",
                 dilations: tuple[int, int, int] = (6, 12, 18), aspp_channels: int | None = None,
                 low_level_channels: int = 48) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(backbone)
        high = self.backbone.high_channels
        width = aspp_channels or high // 8
        self.head = ASPP(high, width, tuple(dilations))
        self.reduce = _conv_bn_relu(self.backbone.low_channels, low_level_channels, 1)
        self.fuse = nn.Sequential(
            _conv_bn_relu(width + low_level_channels, width, 3),
            _conv_bn_relu(width, width, 3),
        )
        self.classifier = nn.Conv2d(width, num_classes, 1, bias=True)

    def decode(self, c1: torch.Tensor, c4: torch.Tensor) -> torch.Tensor:
        """Decoder from backbone features to logits at the layer1 resolution."""
        c4 = self.head(c4)
        c4 = F.interpolate(c4, size=c1.shape[-2:], mode="bilinear", align_corners=True)
        fused = self.fuse(torch.cat([self.reduce(c1), c4], dim=1))
        return self.classifier(fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c4 = self.backbone(x)
        out = self.decode(c1, c4)
        return F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=True)
