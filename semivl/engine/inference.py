"""Whole-image and sliding-window inference (docs/upstream.md, Evaluation protocol)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from semivl.config import EvalConfig


@torch.no_grad()
def predict_whole(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """One forward pass on the whole image; returns logits [B, C, H, W]."""
    return model(image)


def _window_outputs(
    model: nn.Module, image: torch.Tensor, boxes: list[tuple[int, int, int, int]], batched: bool
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
        crops = torch.cat(
            [image[:, :, boxes[i][0] : boxes[i][1], boxes[i][2] : boxes[i][3]] for i in indices]
        )
        for k, out in enumerate(model(crops).split(b)):
            outputs[indices[k]] = out
    yield from outputs


@torch.no_grad()
def predict_sliding_logits(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    crop: int,
    stride: int,
    batch_windows: bool = False,
) -> torch.Tensor:
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
    for (y1, y2, x1, x2), out in zip(
        boxes, _window_outputs(model, image, boxes, batch_windows), strict=True
    ):
        logits[:, :, y1:y2, x1:x2] += out
        count[:, :, y1:y2, x1:x2] += 1
    return logits / count


@torch.no_grad()
def predict_sliding_softmax(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    crop: int,
    stride: int | None = None,
    batch_windows: bool = False,
) -> torch.Tensor:
    """UniMatch windows: start at 0, stride, 2*stride, ...; border windows are truncated.

    Softmax probabilities are summed over overlapping windows. ``stride`` defaults to
    ``int(crop * 2 / 3)`` as upstream. ``batch_windows`` runs the windows of each size as one
    batch (upstream: one at a time). Returns summed probabilities [B, C, H, W].
    """
    stride = stride or int(crop * 2 / 3)
    b, _, h, w = image.shape
    boxes = [
        (row, min(h, row + crop), col, min(w, col + crop))
        for row in range(0, h, stride)
        for col in range(0, w, stride)
    ]
    total = image.new_zeros((b, num_classes, h, w))
    for (y1, y2, x1, x2), out in zip(
        boxes, _window_outputs(model, image, boxes, batch_windows), strict=True
    ):
        total[:, :, y1:y2, x1:x2] += out.softmax(dim=1)
    return total


def clamped_starts(size: int, crop: int, stride: int) -> list[int]:
    """UniMatch V2's window starts along one axis: 0, then ``min(start + stride, size - crop)``.

    Upstream (``supervised.py`` ``evaluate``, ``sliding_window``) steps ``start`` by ``stride``
    and clamps it so the last window ends at the border, stopping once a window starts at
    ``size - crop``. An axis no longer than ``crop`` gets the single start 0 (its window is
    the whole axis); upstream would index with a negative start there.
    """
    if size <= crop:
        return [0]
    starts = [0]
    while starts[-1] != size - crop:
        starts.append(min(starts[-1] + stride, size - crop))
    return starts


@torch.no_grad()
def predict_sliding_softmax_clamped(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    crop: int,
    stride: int,
    batch_windows: bool = False,
) -> torch.Tensor:
    """UniMatch V2 windows: ``crop`` x ``crop``, clamped to lie fully inside the image.

    Starts per axis from :func:`clamped_starts` (Cityscapes 1024x2048, crop 798, stride 532:
    rows 0, 226; columns 0, 532, 1064, 1250), rows outer and columns inner as upstream.
    Softmax probabilities are summed over overlapping windows. No resize to a multiple of
    the patch size happens here, as upstream (the window is already one). Returns summed
    probabilities [B, C, H, W].
    """
    b, _, h, w = image.shape
    boxes = [
        (row, min(h, row + crop), col, min(w, col + crop))
        for row in clamped_starts(h, crop, stride)
        for col in clamped_starts(w, crop, stride)
    ]
    total = image.new_zeros((b, num_classes, h, w))
    for (y1, y2, x1, x2), out in zip(
        boxes, _window_outputs(model, image, boxes, batch_windows), strict=True
    ):
        total[:, :, y1:y2, x1:x2] += out.softmax(dim=1)
    return total


def multiple_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """Each side rounded (half up) to the nearest multiple: ``int(x / m + 0.5) * m``.

    UniMatch V2's ``original`` eval mode (500x375, multiple 14 -> 504x378). A side shorter
    than ``multiple / 2`` becomes ``multiple`` instead of 0 (upstream would fail there).
    """
    return tuple(max(int(s / multiple + 0.5), 1) * multiple for s in size)


def predict(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    mode: str,
    crop: int | None = None,
    stride: int | None = None,
    out_size: tuple[int, int] | None = None,
    batch_windows: bool = False,
    resize_to_multiple: int | None = None,
) -> torch.Tensor:
    """Class scores at ``out_size`` (default: the input size) for the configured mode.

    ``batch_windows``: run a sliding mode's windows as batches (``eval.batch_windows``).

    ``resize_to_multiple`` (``eval.resize_to_multiple``, UniMatch V2's ``original`` mode):
    the image is first resized (bilinear, ``align_corners=True``) so that each side is the
    nearest multiple of it (:func:`multiple_size`), then predicted in ``mode``; the scores
    come back to ``out_size`` (or the input size) in one bilinear ``align_corners=True``
    resize, as upstream. V2 uses it with ``whole`` only; its Cityscapes sliding window leaves
    the image as it is (``null``).

    When the image was resized for inference, scores are resized back bilinearly with
    ``align_corners=True`` before the argmax, as SemiVL does.
    """
    target = tuple(out_size) if out_size is not None else None
    if resize_to_multiple is not None:
        target = target or tuple(image.shape[-2:])
        new_size = multiple_size(tuple(image.shape[-2:]), resize_to_multiple)
        if new_size != tuple(image.shape[-2:]):
            image = F.interpolate(image, size=new_size, mode="bilinear", align_corners=True)
    if mode == "whole":
        scores = predict_whole(model, image)
    elif mode == "sliding_logits":
        scores = predict_sliding_logits(model, image, num_classes, crop, stride, batch_windows)
    elif mode == "sliding_softmax":
        scores = predict_sliding_softmax(model, image, num_classes, crop, stride, batch_windows)
    elif mode == "sliding_softmax_clamped":
        if stride is None:
            raise ValueError("sliding_softmax_clamped needs a stride (eval.stride)")
        scores = predict_sliding_softmax_clamped(
            model, image, num_classes, crop, stride, batch_windows
        )
    else:
        raise ValueError(f"unknown eval mode {mode!r}")
    if target is not None and tuple(scores.shape[-2:]) != target:
        scores = F.interpolate(scores, size=target, mode="bilinear", align_corners=True)
    return scores


def predict_with_config(
    model: nn.Module,
    image: torch.Tensor,
    num_classes: int,
    cfg: EvalConfig,
    out_size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """:func:`predict` under a recipe's ``eval`` section (every key that shapes inference)."""
    return predict(
        model,
        image,
        num_classes,
        cfg.mode,
        cfg.crop_size,
        cfg.stride,
        out_size=out_size,
        batch_windows=cfg.batch_windows,
        resize_to_multiple=cfg.resize_to_multiple,
    )
