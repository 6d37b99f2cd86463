"""Cross-checks against OpenMMLab's own code (the optional ``.[mmseg]`` test extra).

SemiVL resizes VOC and ADE20K images with mmseg's ``Resize`` (mmcv ``imrescale``, OpenCV) and
was developed on mmseg; this file checks ``resize: mmseg`` and the mIoU against mmcv-lite 2.1.0
and mmsegmentation 1.2.2 themselves. Their pure-Python parts run with torch 2.14; the models
and datasets need mmcv's compiled ops, which have no wheels (docs/upstream.md, Dependencies).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from semivl.data.transforms import (
    mmseg_ratio_scale,
    resize_mmseg,
    resize_short_side,
    short_side_scale,
)
from semivl.engine.metrics import IoUAccumulator

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mmcv", "mmseg", "mmengine")),
    reason="the mmseg test extra is not installed: pip install -e '.[test,mmseg]'",
)

# (width, height) of the source, and the ratios the training resize draws
SIZES = [(500, 375), (375, 500), (333, 517), (1024, 683), (97, 61), (2048, 1024)]
RATIOS = [0.5, 0.77, 1.0, 1.33, 2.0]


def _pair(w: int, h: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 21, (h, w), dtype=np.uint8)
    mask[rng.random((h, w)) < 0.05] = 255
    return image, mask


@pytest.mark.parametrize(("w", "h"), SIZES)
def test_training_resize_is_mmcvs_resize(w, h):
    from mmcv.transforms import Resize

    image, mask = _pair(w, h, w * h)
    for ratio in RATIOS:
        scale = mmseg_ratio_scale((2048, 512), ratio)
        want = Resize(scale=scale, keep_ratio=True)(
            {"img": image.copy(), "gt_seg_map": mask.copy(), "img_shape": image.shape[:2]}
        )
        # resize_mmseg draws r ~ U(lo, hi); a degenerate range fixes it to ``ratio``
        got_img, got_mask = resize_mmseg(
            Image.fromarray(image),
            Image.fromarray(mask),
            np.random.default_rng(0),
            (2048, 512),
            (ratio, ratio),
        )
        np.testing.assert_array_equal(np.asarray(got_img), want["img"])
        np.testing.assert_array_equal(np.asarray(got_mask), want["gt_seg_map"])


@pytest.mark.parametrize(("w", "h"), SIZES)
def test_training_resize_matches_imrescale_and_random_resize_target(w, h):
    from mmcv.image import imrescale
    from mmcv.transforms import RandomResize

    image, mask = _pair(w, h, 7)
    for ratio in RATIOS:
        scale = mmseg_ratio_scale((2048, 512), ratio)
        got_img, got_mask = resize_mmseg(
            Image.fromarray(image),
            Image.fromarray(mask),
            np.random.default_rng(0),
            (2048, 512),
            (ratio, ratio),
        )
        np.testing.assert_array_equal(np.asarray(got_img), imrescale(image, scale))
        np.testing.assert_array_equal(
            np.asarray(got_mask), imrescale(mask, scale, interpolation="nearest")
        )
    # RandomResize draws its ratio with numpy's global state: replay that draw
    np.random.seed(3)
    target = RandomResize._random_sample_ratio((2048, 512), (0.5, 2.0))
    np.random.seed(3)
    ratio = np.random.random_sample() * 1.5 + 0.5
    assert mmseg_ratio_scale((2048, 512), ratio) == target


@pytest.mark.parametrize(("w", "h"), SIZES)
def test_validation_resize_is_imrescale_to_a_512_short_side(w, h):
    from mmcv.image import imrescale

    image, _ = _pair(w, h, 11)
    got = np.asarray(resize_short_side(Image.fromarray(image), 512))
    np.testing.assert_array_equal(got, imrescale(image, short_side_scale(w, h, 512)))
    assert min(got.shape[:2]) == 512


def test_miou_matches_mmseg_iou_metric():
    """Every class occurs, so mmseg's nan-mean and upstream's mean over all classes agree."""
    from mmseg.evaluation.metrics import IoUMetric

    num_classes = 7
    rng = torch.Generator().manual_seed(0)
    metric = IoUMetric(ignore_index=255)
    metric.dataset_meta = {"classes": [f"c{i}" for i in range(num_classes)]}
    ours = IoUAccumulator(num_classes)
    samples = []
    for h, w in [(37, 53), (64, 64), (21, 90)]:
        target = torch.randint(0, num_classes, (h, w), generator=rng)
        target[torch.rand(h, w, generator=rng) < 0.2] = 255
        pred = torch.where(
            torch.rand(h, w, generator=rng) < 0.6,
            target.clamp(max=6),
            torch.randint(0, num_classes, (h, w), generator=rng),
        )
        ours.update(pred, target)
        samples.append({"pred_sem_seg": {"data": pred[None]}, "gt_sem_seg": {"data": target[None]}})
    metric.process({}, samples)
    areas = [sum(r[i] for r in metric.results) for i in range(4)]  # I, U, pred, label
    np.testing.assert_array_equal(areas[0].numpy(), ours.intersection)
    np.testing.assert_array_equal(areas[1].numpy(), ours.union)
    np.testing.assert_array_equal(areas[3].numpy(), ours.target)
    result = metric.compute_metrics(metric.results)
    assert result["mIoU"] == pytest.approx(ours.miou(), abs=0.005)  # mmseg rounds to 0.01
