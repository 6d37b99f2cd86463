"""Aligned Xception-65 at output stride 16, as UniMatch uses it for COCO.

Parameter names follow UniMatch's ``model/backbone/xception.py`` so its ImageNet checkpoint
loads without renaming. Batch norms use momentum 0.0003 as upstream. Two upstream behaviours
that come from in-place ReLUs are reproduced explicitly:

* in a block whose shortcut is the identity, the first separable conv's ReLU runs in place on
  the block input, so the shortcut carries ``relu(input)``;
* the low-level feature is the output of block 2's second separable conv, before the ReLU
  of the third one (block 2 does not run that ReLU in place).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BN_MOMENTUM = 0.0003


class SeparableConv2d(nn.Module):
    """Depthwise + pointwise conv with batch norms; ReLU first (``activate_first``) or after
    each of the two convs."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activate_first: bool = True,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            cin, cin, kernel, stride, dilation, dilation, groups=cin, bias=False
        )
        self.bn1 = nn.BatchNorm2d(cin, momentum=BN_MOMENTUM)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)
        self.activate_first = activate_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate_first:
            x = F.relu(x)
        x = self.bn1(self.depthwise(x))
        if not self.activate_first:
            x = F.relu(x)
        x = self.bn2(self.pointwise(x))
        if not self.activate_first:
            x = F.relu(x)
        return x


class Block(nn.Module):
    """Three separable convs with a (projected or identity) shortcut."""

    def __init__(
        self, cin: int, cout: int, stride: int = 1, atrous: int = 1, grow_first: bool = True
    ) -> None:
        super().__init__()
        if cout != cin or stride != 1:
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(cout, momentum=BN_MOMENTUM)
        else:
            self.skip = None
        mid = cout if grow_first else cin
        self.sepconv1 = SeparableConv2d(cin, mid, 3, 1, atrous)
        self.sepconv2 = SeparableConv2d(mid, cout, 3, 1, atrous)
        self.sepconv3 = SeparableConv2d(cout, cout, 3, stride, atrous)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the block output and the second separable conv's output."""
        skip = self.skipbn(self.skip(x)) if self.skip is not None else F.relu(x)
        hook = self.sepconv2(self.sepconv1(x))
        return self.sepconv3(hook) + skip, hook


class Xception65(nn.Module):
    """Entry, 16 middle and exit blocks; returns (c1: 256 ch at stride 4, c4: 2048 ch)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(32, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.block1 = Block(64, 128, 2)
        self.block2 = Block(128, 256, 2)
        self.block3 = Block(256, 728, 2)
        for i in range(4, 20):
            setattr(self, f"block{i}", Block(728, 728, 1))
        self.block20 = Block(728, 1024, 1, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1, activate_first=False)
        self.conv4 = SeparableConv2d(1536, 1536, 3, 1, 1, activate_first=False)
        self.conv5 = SeparableConv2d(1536, 2048, 3, 1, 1, activate_first=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.low_channels, self.high_channels = 256, 2048

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x, _ = self.block1(x)
        x, c1 = self.block2(x)
        for i in range(3, 21):
            x, _ = getattr(self, f"block{i}")(x)
        x = self.conv5(self.conv4(self.conv3(x)))
        return c1, x
