"""SemiVL's language-guided decoder, ``VLGHead`` (docs/upstream.md, Language-guided decoder).

Per image and class: a cosine cost map between the dense CLIP embedding and the class's text
embedding; spatial reasoning on every class map with shared weights (7x7 conv, then a GroupNorm
ASPP with a residual); class reasoning with transformer layers that attend across the classes
at every location of 4x4-pooled maps, each token being the class feature joined with its
projected text embedding; two upsampling stages with skip features; a 3x3 conv to one logit per
class map at 1/4 of the input resolution. All layers keep PyTorch's default initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 16 channels per group, as upstream (at least one group)."""
    return nn.GroupNorm(max(channels // 16, 1), channels)


def conv_gn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        group_norm(cout),
        nn.ReLU(inplace=True),
    )


class GroupNormASPP(nn.Module):
    """ASPP with GroupNorm (1x1, three dilated 3x3, image pooling), projected back and added
    to its input."""

    def __init__(self, channels: int, dilations: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_gn_relu(channels, channels, 1)]
            + [conv_gn_relu(channels, channels, 3, d) for d in dilations]
        )
        self.pool = conv_gn_relu(channels, channels, 1)
        self.project = conv_gn_relu(channels * (len(dilations) + 2), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        pooled = self.pool(F.adaptive_avg_pool2d(x, 1))
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=True))
        return self.project(torch.cat(outs, dim=1)) + x


class ClassTransformerLayer(nn.Module):
    """Attention across the N class tokens at every location of the pooled class maps.

    Each token is the class feature (``channels``) joined with the class's projected text
    embedding (``text_channels``); a pre-LN encoder layer (FFN 4 x ``channels``, GELU, LN eps
    1e-5, no dropout) runs over them, the visual part is kept, upsampled back and added.
    """

    def __init__(self, channels: int, text_channels: int, num_heads: int, pool_size: int) -> None:
        super().__init__()
        self.pool_size = pool_size
        self.channels = channels
        self.layer = nn.TransformerEncoderLayer(
            d_model=channels + text_channels,
            nhead=num_heads,
            dim_feedforward=4 * channels,
            dropout=0.0,
            activation="gelu",
            layer_norm_eps=1e-5,
            batch_first=True,
            norm_first=True,
        )

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        # x: [B, C, N, h, w]; text: [B, N, T]
        b, c, n, h, w = x.shape
        # Maps smaller than the pooling window (images under 64 px) pool to one cell.
        kernel = (min(self.pool_size, h), min(self.pool_size, w))
        pooled = F.avg_pool2d(x.reshape(b, c * n, h, w), kernel, kernel)
        ph, pw = pooled.shape[-2:]
        tokens = pooled.reshape(b, c, n, ph, pw).permute(0, 3, 4, 2, 1).reshape(b * ph * pw, n, c)
        text_tokens = text[:, None, None].expand(b, ph, pw, n, -1).reshape(b * ph * pw, n, -1)
        out = self.layer(torch.cat((tokens, text_tokens), dim=-1))[..., :c]
        out = out.reshape(b, ph, pw, n, c).permute(0, 4, 3, 1, 2).reshape(b, c * n, ph, pw)
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
        return x + out.reshape(b, c, n, h, w)


class UpBlock(nn.Module):
    """Transposed conv (x2) to ``cin - skip`` channels, concat the skip, two conv-GN-ReLU."""

    def __init__(self, cin: int, skip_channels: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin - skip_channels, kernel_size=2, stride=2)
        self.convs = nn.Sequential(conv_gn_relu(cin, cout), conv_gn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor, num_maps: int) -> torch.Tensor:
        x = self.up(x)
        skip = F.interpolate(skip, size=x.shape[-2:], mode="bilinear", align_corners=True)
        skip = skip.repeat_interleave(num_maps, dim=0)
        return self.convs(torch.cat((x, skip), dim=1))


class VLGHead(nn.Module):
    """The language-guided decoder.

    Args:
        embed_dim: width of the dense CLIP and text embeddings (512 for ViT-B/16).
        channels: class-map feature width (128).
        text_channels: projected text width (128).
        num_layers, num_heads, pool_size: class transformer (2 layers, 4 heads, 4x4 pool).
        conv1_kernel: the first conv on each cost map (7).
        aspp_dilations: the ASPP's dilated branches (6, 12, 18).
        skip_in_channels: channels of each skip feature, deepest first ((768, 768)).
        skip_channels: each skip projected to this many channels ((32, 16)).
        up_channels: output channels of each upsampling stage ((64, 32)).
    """

    def __init__(
        self,
        embed_dim: int = 512,
        channels: int = 128,
        text_channels: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        pool_size: int = 4,
        conv1_kernel: int = 7,
        aspp_dilations: Sequence[int] = (6, 12, 18),
        skip_in_channels: Sequence[int] = (768, 768),
        skip_channels: Sequence[int] = (32, 16),
        up_channels: Sequence[int] = (64, 32),
    ) -> None:
        super().__init__()
        if not len(skip_in_channels) == len(skip_channels) == len(up_channels):
            raise ValueError(
                "skip_in_channels, skip_channels and up_channels need one entry "
                "per upsampling stage"
            )
        self.conv1 = nn.Conv2d(1, channels, conv1_kernel, padding=conv1_kernel // 2)
        self.aspp = GroupNormASPP(channels, aspp_dilations)
        self.text_proj = nn.Sequential(nn.Linear(embed_dim, text_channels), nn.ReLU())
        self.class_layers = nn.ModuleList(
            [
                ClassTransformerLayer(channels, text_channels, num_heads, pool_size)
                for _ in range(num_layers)
            ]
        )
        self.skip_projs = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))
                for cin, cout in zip(skip_in_channels, skip_channels, strict=True)
            ]
        )
        ups, cin = [], channels
        for skip, cout in zip(skip_channels, up_channels, strict=True):
            ups.append(UpBlock(cin, skip, cout))
            cin = cout
        self.ups = nn.ModuleList(ups)
        self.cls = nn.Conv2d(cin, 1, 3, padding=1)

    def forward(
        self, dense: torch.Tensor, text: torch.Tensor, skips: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """``dense`` [B, D, h, w], ``text`` [N, D], skips deepest first; returns [B, N, 4h, 4w]
        (one map per text embedding)."""
        b, _, h, w = dense.shape
        n = text.shape[0]
        text = F.normalize(text.float(), dim=-1)
        cost = torch.einsum("bdhw,nd->bnhw", F.normalize(dense, dim=1), text)
        x = self.aspp(self.conv1(cost.reshape(b * n, 1, h, w)))
        x = x.reshape(b, n, -1, h, w).transpose(1, 2)
        text_feat = self.text_proj(text).expand(b, n, -1)
        for layer in self.class_layers:
            x = layer(x, text_feat)
        x = x.transpose(1, 2).reshape(b * n, -1, h, w)
        for up, proj, skip in zip(self.ups, self.skip_projs, skips, strict=True):
            x = up(x, proj(skip), n)
        out = self.cls(x)
        return out.reshape(b, n, out.shape[-2], out.shape[-1])
