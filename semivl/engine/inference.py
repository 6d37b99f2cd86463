"""Whole-image and sliding-window inference (spec section 5 and unimatch.md section 2)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def predict_whole(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """One forward pass on the whole image; returns logits [B, C, H, W]."""
    return model(image)


def _window_outputs(model: nn.Module, image: torch.Tensor,
                    boxes: list[tuple[int, int, int, int]], batched: bool
                    ) -> Iterator[torch.Tensor]:
    """The model's output on each window ``(y1, y2, x1, x2)`` of ``image``, in ``boxes`` order.

    One forward pass per window, lazily (one window's output in memory at a time), unless
    ``batched``: then the windows of one size run as one batch (the same arithmetic per
    window; only float rounding may differ).
    """
    if not batched:
        for y1, y2, x1, x2 in boxes:
            yield model(image[:, :, y1:y2, x1:x2])
        return
    b = image.shape[0]
    by_size: dict[tuple[int, int], list[int]] = {}
    for index, (y1, y2, x1, x2) in enumerate(boxes):
        by_size.setdefault((y2 - y1, x2 - x1), []).append(index)
    outputs: list[torch.Tensor | None] = [None] * len(boxes)
    for indices in by_size.values():
        crops = torch.cat([image[:, :, boxes[i][0]:boxes[i][1], boxes[i][2]:boxes[i][3]]
                           for i in indices])
        for k, out in enumerate(model(crops).split(b)):
            outputs[indices[k]] = out
    yield from outputs


@torch.no_grad()
def predict_sliding_logits(model: nn.Module, image: torch.Tensor, num_classes: int,
                           crop: int, stride: int, batch_windows: bool = False) -> torch.Tensor:
    """SemiVL/ZegCLIP windows: shifted back inside the image, raw logits averaged.

    ``max(H - crop + stride - 1, 0) // stride + 1`` windows per axis; a window that would cross
    the border is moved back to end at it; an image smaller than ``crop`` gives one smaller
    window. ``batch_windows`` runs the windows as one batch (upstream: one at a time); the sum
    keeps the window order. Returns averaged logits [B, C, H, W].
    """
    b, _, h, w = image.shape
    rows = max(h - crop + stride - 1, 0) // stride + 1
    cols = max(w - crop + stride - 1, 0) // stride + 1
    boxes = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * stride + crop, h), min(c * stride + crop, w)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    logits = image.new_zeros((b, num_classes, h, w))
    count = image.new_zeros((b, 1, h, w))
    for (y1, y2, x1, x2), out in zip(boxes, _window_outputs(model, image, boxes, batch_windows),
                                     strict=True):
        logits[:, :, y1:y2, x1:x2] += out
        count[:, :, y1:y2, x1:x2] += 1
    return logits / count


@torch.no_grad()
def predict_sliding_softmax(model: nn.Module, image: torch.Tensor, num_classes: int,
                            crop: int, stride: int | None = None,
                            batch_windows: bool = False) -> torch.Tensor:
    """UniMatch windows: start at 0, stride, 2*stride, ...; border windows are truncated.

    Softmax probabilities are summed over overlapping windows. ``stride`` defaults to
    ``int(crop * 2 / 3)`` as upstream. ``batch_windows`` runs the windows of each size as one
    batch (upstream: one at a time). Returns summed probabilities [B, C, H, W].
    """
    stride = stride or int(crop * 2 / 3)
    b, _, h, w = image.shape
    boxes = [(row, min(h, row + crop), col, min(w, col + crop))
             for row in range(0, h, stride) for col in range(0, w, stride)]
    total = image.new_zeros((b, num_classes, h, w))
    for (y1, y2, x1, x2), out in zip(boxes, _window_outputs(model, image, boxes, batch_windows),
                                     strict=True):
        total[:, :, y1:y2, x1:x2] += out.softmax(dim=1)
    return total


def predict(model: nn.Module, image: torch.Tensor, num_classes: int, mode: str,
            crop: int | None = None, stride: int | None = None,
            out_size: tuple[int, int] | None = None, batch_windows: bool = False
            ) -> torch.Tensor:
    """Class scores at ``out_size`` (default: the input size) for the configured mode.

    ``batch_windows``: run a sliding mode's windows as batches (``eval.batch_windows``).

    When the image was resized for inference, scores are resized back bilinearly with
    ``align_corners=True`` before the argmax, as SemiVL does.
    """
    if mode == "whole":
        scores = predict_whole(model, image)
    elif mode == "sliding_logits":
        scores = predict_sliding_logits(model, image, num_classes, crop, stride,
                                        batch_windows)
    elif mode == "sliding_softmax":
        scores = predict_sliding_softmax(model, image, num_classes, crop, stride,
                                         batch_windows)
    else:
        raise ValueError(f"unknown eval mode {mode!r}")
    if out_size is not None and tuple(scores.shape[-2:]) != tuple(out_size):
        scores = F.interpolate(scores, size=out_size, mode="bilinear", align_corners=True)
    return scores
