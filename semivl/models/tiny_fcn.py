"""``tiny_fcn``: a few convolutions, for numerical checks and quick smoke runs."""

from __future__ import annotations

import torch
from torch import nn


class TinyFCN(nn.Module):
    """A few 3x3 convs without normalisation layers.

    For numerical checks that batch norm would blur (e.g. that two data-parallel processes
    make the same update as one process with their joint batch) and for quick smoke runs.
    It has a ``backbone`` and a ``decoder`` like the real models.
    """

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
        )
        self.decoder = nn.Conv2d(width, num_classes, 1)

    def forward(self, x, need_fp: bool = False, fp_rate: float = 0.5):
        feats = self.backbone(x)
        if need_fp:
            feats = torch.cat((feats, nn.functional.dropout2d(feats, fp_rate, training=True)))
            return self.decoder(feats).chunk(2)
        return self.decoder(feats)


def build_tiny_fcn(num_classes: int, width: int = 16) -> nn.Module:
    """The registered builder of ``model.name: tiny_fcn``."""
    return TinyFCN(num_classes, width)
