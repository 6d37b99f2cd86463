"""ResNet backbones returning (c1, c4): layer1 (stride 4) and layer4 (stride 16).

* ``resnet50`` / ``resnet101``: UniMatch's deep-stem ResNet ("V1c": three 3x3 stem convs,
  64-64-128 channels), output stride 16 by dilating layer4. Parameter names follow UniMatch's
  ``model/backbone/resnet.py`` so its ImageNet checkpoints load without renaming.
* ``tv_resnet10`` / ``tv_resnet18``: small torchvision-style ResNets (7x7 stem, BasicBlocks)
  for the demo and tests. BasicBlocks cannot dilate, so layer4 simply keeps stride 1. ``width``
  scales the stage widths (torchvision's 64-128-256-512 at 64): a narrower net is about 2.7x
  cheaper to train at width 32 on 64-pixel crops (docs/performance.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

DEEP_STEM = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3]}
TORCHVISION = {"tv_resnet10": [1, 1, 1, 1], "tv_resnet18": [2, 2, 2, 2]}


class DeepStemResNet(nn.Module):
    """UniMatch's ResNet-50/101 trunk (deep stem, Bottleneck, layer4 dilated)."""

    def __init__(self, layers: list[int]) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.Conv2d(64, 128, 3, stride=1, padding=1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(128)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes, self.dilation = 128, 1
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2, dilate=True)
        _init_like_torchvision(self)
        self.low_channels, self.high_channels = 256, 2048

    def _make_layer(
        self, planes: int, blocks: int, stride: int = 1, dilate: bool = False
    ) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(
                    self.inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False
                ),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample, dilation=previous_dilation)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [
            Bottleneck(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)
        ]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c4 = self.layer4(self.layer3(self.layer2(c1)))
        return c1, c4


class TorchvisionResNet(nn.Module):
    """A small torchvision ResNet trunk at output stride 16 (layer4 without stride).

    At ``width`` 64 it is torchvision's own ``ResNet`` (its layers and initialisation); other
    widths build the same layout, parameter names and initialisation with stage widths
    ``width * (1, 2, 4, 8)``.
    """

    def __init__(self, layers: list[int], width: int = 64) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"backbone width must be a positive integer, got {width}")
        net = ResNet(BasicBlock, layers) if width == 64 else _narrow_resnet(layers, width)
        first = net.layer4[0]
        first.conv1.stride = (1, 1)
        if first.downsample is not None:
            first.downsample[0].stride = (1, 1)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.low_channels, self.high_channels = width, 8 * width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c4 = self.layer4(self.layer3(self.layer2(c1)))
        return c1, c4


def _narrow_resnet(layers: list[int], width: int) -> nn.Module:
    """torchvision's BasicBlock ResNet layout (stem, four stages) at stage widths
    ``width * (1, 2, 4, 8)``, initialised as torchvision initialises ``ResNet``."""
    net = nn.Module()
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.relu = nn.ReLU(inplace=True)
    net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    inplanes = width
    for index, (blocks, scale) in enumerate(zip(layers, (1, 2, 4, 8), strict=True)):
        planes, stride = width * scale, 1 if index == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        stage = [BasicBlock(inplanes, planes, stride, downsample)]
        stage += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        setattr(net, f"layer{index + 1}", nn.Sequential(*stage))
        inplanes = planes
    _init_like_torchvision(net)
    return net


def _init_like_torchvision(net: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal (fan out) convs, BN weight 1, bias 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
