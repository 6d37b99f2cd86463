"""CLIP's ViT as SemiVL uses it: MaskCLIP value-path features (docs/upstream.md, CLIP image tower).

:class:`MaskClipViT` takes the image tower of an open_clip CLIP and evaluates it the way
SemiVL's ``MaskClipVisionTransformer`` does:

* patches padded at the bottom and right to a multiple of the patch size;
* the position embedding resized bicubically (``align_corners=False``, CLS kept) to the crop's
  token grid when built, and again on the fly for any other grid;
* at every requested block, the *value path*: the block evaluated with attention replaced by
  identity, ``v = x + out_proj(v_proj(ln_1(x)))`` then ``v = v + mlp(ln_2(v))``, computed from
  the block's normal-path input (value paths are never chained);
* the dense CLIP embedding: the last block's value path, ``ln_post``, the projection and a
  per-pixel L2 normalisation.

Upstream numerics differ from OpenAI's (docs/upstream.md, SemiVL trap 2): exact GELU instead
of QuickGELU, LayerNorm eps 1e-6 instead of 1e-5, and ImageNet-normalised input except on
Cityscapes. Each is a constructor flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipFeatures:
    """Value-path maps of the requested blocks (in request order) and the dense embedding."""

    blocks: list[torch.Tensor]
    dense: torch.Tensor | None


def resize_pos_embed(
    pos: torch.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]
) -> torch.Tensor:
    """Resize a ``[1 + h*w, C]`` position table bicubically, keeping the CLS row."""
    if tuple(src_grid) == tuple(dst_grid):
        return pos
    cls, grid = pos[:1], pos[1:]
    grid = grid.reshape(1, src_grid[0], src_grid[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=dst_grid, mode="bicubic", align_corners=False)
    return torch.cat((cls, grid.flatten(2).squeeze(0).transpose(0, 1)), dim=0)


def set_vit_finetuning(module: nn.Module, mode: str, position_name: str) -> None:
    """``full``: every parameter trains; ``attention``: only the attention projections and
    the position table (``position_name``); ``frozen``: none."""
    if mode not in ("attention", "full", "frozen"):
        raise ValueError(f"finetune: expected attention, full or frozen, got {mode!r}")
    for name, param in module.named_parameters():
        if mode == "attention":
            param.requires_grad = ".attn." in name or name == position_name
        else:
            param.requires_grad = mode == "full"


class MaskClipViT(nn.Module):
    """Dense features of an open_clip ``VisionTransformer`` (MaskCLIP value path).

    Args:
        visual: the image tower of an open_clip CLIP (its modules are taken over).
        image_size: the training crop; the position table is resized to its token grid.
        out_blocks: blocks whose value-path output to return (0-based, in this order).
        dense: also return the dense CLIP embedding.
        exact_gelu: exact ``nn.GELU`` in the MLPs (upstream SemiVL) instead of QuickGELU.
        ln_eps: LayerNorm epsilon (upstream SemiVL 1e-6; OpenAI CLIP 1e-5).
        renorm_clip_input: convert ImageNet-normalised input to CLIP's statistics first
            (SemiVL does this on Cityscapes only).
    """

    def __init__(
        self,
        visual: nn.Module,
        image_size: int,
        out_blocks: Sequence[int] = (),
        dense: bool = True,
        exact_gelu: bool = True,
        ln_eps: float = 1e-6,
        renorm_clip_input: bool = False,
    ) -> None:
        super().__init__()
        from open_clip.transformer import QuickGELU

        if getattr(visual, "attn_pool", None) is not None or not getattr(
            visual.transformer, "batch_first", False
        ):
            raise ValueError(
                "MaskClipViT needs an open_clip ViT with token pooling and a "
                "batch-first transformer"
            )
        self.patch_size = visual.conv1.kernel_size[0]
        self.width = visual.conv1.out_channels
        self.conv1 = visual.conv1
        self.class_embedding = visual.class_embedding
        self.ln_pre = visual.ln_pre
        self.resblocks = visual.transformer.resblocks
        self.ln_post = visual.ln_post
        self.proj = visual.proj
        self.embed_dim = self.proj.shape[1]
        self.num_blocks = len(self.resblocks)
        bad = [b for b in out_blocks if not 0 <= b < self.num_blocks]
        if bad:
            raise ValueError(f"out_blocks {bad} outside [0, {self.num_blocks})")
        self.out_blocks = list(out_blocks)
        self.dense = dense
        self.renorm_clip_input = renorm_clip_input
        self.exact_gelu = exact_gelu
        self.ln_eps = ln_eps
        src = int(round((visual.positional_embedding.shape[0] - 1) ** 0.5))
        self.grid = (image_size // self.patch_size, image_size // self.patch_size)
        with torch.no_grad():
            table = resize_pos_embed(visual.positional_embedding.detach(), (src, src), self.grid)
        self.positional_embedding = nn.Parameter(table.clone())
        for block in self.resblocks:
            block.mlp.gelu = nn.GELU() if exact_gelu else QuickGELU()
        for module in self.modules():
            if isinstance(module, nn.LayerNorm):
                module.eps = ln_eps
        mean_in, std_in = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        mean_clip, std_clip = torch.tensor(CLIP_MEAN), torch.tensor(CLIP_STD)
        # x_clip = (x * std_in + mean_in - mean_clip) / std_clip = x * scale + shift
        self.register_buffer("renorm_scale", (std_in / std_clip).view(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            "renorm_shift", ((mean_in - mean_clip) / std_clip).view(1, 3, 1, 1), persistent=False
        )

    def set_finetuning(self, mode: str) -> None:
        """``attention``: SemiVL's spatial fine-tuning, only the attention projections (q, k,
        v, out; weights and biases) of every block and the position table train;
        ``full``: every parameter trains; ``frozen``: none does."""
        set_vit_finetuning(self, mode, "positional_embedding")

    def value_path(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The block with attention replaced by identity (MaskCLIP)."""
        attn = block.attn
        w, b = attn.in_proj_weight, attn.in_proj_bias
        c = self.width
        v = F.linear(block.ln_1(x), w[2 * c :], None if b is None else b[2 * c :])
        v = x + block.ls_1(attn.out_proj(v))
        return v + block.ls_2(block.mlp(block.ln_2(v)))

    def _to_map(self, tokens: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        b, _, c = tokens.shape
        return tokens[:, 1:].transpose(1, 2).reshape(b, c, hw[0], hw[1])

    def forward(self, x: torch.Tensor) -> ClipFeatures:
        if self.renorm_clip_input:
            x = x * self.renorm_scale + self.renorm_shift
        p = self.patch_size
        pad_h, pad_w = (-x.shape[-2]) % p, (-x.shape[-1]) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.conv1(x)
        hw = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat((cls, x), dim=1)
        x = x + resize_pos_embed(self.positional_embedding, self.grid, hw).to(x.dtype)
        x = self.ln_pre(x)
        wanted = set(self.out_blocks)
        last = self.num_blocks - 1
        # Blocks after the last one we read from need no normal-path evaluation.
        stop = last if self.dense else max(wanted, default=-1)
        values: dict[int, torch.Tensor] = {}
        dense = None
        for i, block in enumerate(self.resblocks):
            if i in wanted or (self.dense and i == last):
                v = self.value_path(block, x)
                if i in wanted:
                    values[i] = self._to_map(v, hw)
                if self.dense and i == last:
                    emb = self._to_map(self.ln_post(v) @ self.proj, hw)
                    dense = F.normalize(emb, dim=1)
            if i >= stop:
                break
            x = block(x)
        return ClipFeatures([values[i] for i in self.out_blocks], dense)
