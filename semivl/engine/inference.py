"""Whole-image and sliding-window inference (spec section 5 and unimatch.md section 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def predict_whole(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """One forward pass on the whole image; returns logits [B, C, H, W]."""
    return model(image)


@torch.no_grad()
def predict_sliding_logits(model: nn.Module, image: torch.Tensor, num_classes: int,
                           crop: int, stride: int) -> torch.Tensor:
    """SemiVL/ZegCLIP windows: shifted back inside the image, raw logits averaged.

    ``max(H - crop + stride - 1, 0) // stride + 1`` windows per axis; a window that would cross
    the border is moved back to end at it; an image smaller than ``crop`` gives one smaller
    window. Returns averaged logits [B, C, H, W].
    """
    b, _, h, w = image.shape
    rows = max(h - crop + stride - 1, 0) // stride + 1
    cols = max(w - crop + stride - 1, 0) // stride + 1
    logits = image.new_zeros((b, num_classes, h, w))
    count = image.new_zeros((b, 1, h, w))
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, h), min(c * stride + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            logits[:, :, y1:y2, x1:x2] += model(image[:, :, y1:y2, x1:x2])
            count[:, :, y1:y2, x1:x2] += 1
    return logits / count


@torch.no_grad()
def predict_sliding_softmax(model: nn.Module, image: torch.Tensor, num_classes: int,
                            crop: int, stride: int | None = None) -> torch.Tensor:
    """UniMatch windows: start at 0, stride, 2*stride, ...; border windows are truncated.

    Softmax probabilities are summed over overlapping windows. ``stride`` defaults to
    ``int(crop * 2 / 3)`` as upstream. Returns summed probabilities [B, C, H, W].
    """
    stride = stride or int(crop * 2 / 3)
    b, _, h, w = image.shape
    total = image.new_zeros((b, num_classes, h, w))
    row = 0
    while row < h:
        col = 0
        while col < w:
            window = image[:, :, row:min(h, row + crop), col:min(w, col + crop)]
            total[:, :, row:min(h, row + crop), col:min(w, col + crop)] += (
                model(window).softmax(dim=1)
            )
            col += stride
        row += stride
    return total


def predict(model: nn.Module, image: torch.Tensor, num_classes: int, mode: str,
            crop: int | None = None, stride: int | None = None,
            out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Class scores at ``out_size`` (default: the input size) for the configured mode.

    When the image was resized for inference, scores are resized back bilinearly with
    ``align_corners=True`` before the argmax, as SemiVL does.
    """
    if mode == "whole":
        scores = predict_whole(model, image)
    elif mode == "sliding_logits":
        scores = predict_sliding_logits(model, image, num_classes, crop, stride)
    elif mode == "sliding_softmax":
        scores = predict_sliding_softmax(model, image, num_classes, crop, stride)
    else:
        raise ValueError(f"unknown eval mode {mode!r}")
    if out_size is not None and tuple(scores.shape[-2:]) != tuple(out_size):
        scores = F.interpolate(scores, size=out_size, mode="bilinear", align_corners=True)
    return scores
