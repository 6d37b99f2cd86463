import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassJaccardIndex

from semivl.engine.metrics import IoUAccumulator


def test_hand_computed_example():
    target = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]])
    acc = IoUAccumulator(num_classes=3)
    acc.update(pred, target)
    # valid pixels: (0,0)=0/0 (0,1)=0/1 (0,2)=1/1 (0,3)=1/1 (1,0)=2/2 (1,1)=2/0
    # class 0: I=1, P=2, T=2, U=3 -> 33.33; class 1: I=2, P=3, T=2, U=3 -> 66.67;
    # class 2: I=1, P=1, T=2, U=2 -> 50
    assert acc.iou() == pytest.approx([100 / 3, 200 / 3, 50.0])
    assert acc.miou() == pytest.approx((100 / 3 + 200 / 3 + 50) / 3)


def test_accumulates_over_split_not_per_image():
    acc = IoUAccumulator(num_classes=2)
    acc.update(np.array([0, 0]), np.array([0, 1]))
    acc.update(np.array([1, 1]), np.array([1, 1]))
    # class 0: I=1 U=2 ; class 1: I=2 U=3 (dataset-level, not the mean of per-image IoUs)
    assert acc.iou() == pytest.approx([50.0, 200 / 3])


def test_absent_class_counts_as_zero_like_upstream():
    acc = IoUAccumulator(num_classes=3)
    acc.update(np.array([0, 1]), np.array([0, 1]))
    assert acc.miou() == pytest.approx(200 / 3)


def test_matches_torchmetrics_on_random_data():
    gen = torch.Generator().manual_seed(0)
    k = 6
    metric = MulticlassJaccardIndex(num_classes=k, average="none", ignore_index=255)
    acc = IoUAccumulator(num_classes=k)
    for _ in range(5):
        target = torch.randint(0, k, (2, 17, 23), generator=gen)
        target[torch.rand(target.shape, generator=gen) < 0.1] = 255
        pred = torch.randint(0, k, (2, 17, 23), generator=gen)
        metric.update(pred, target)
        acc.update(pred, target)
    expected = metric.compute().numpy() * 100
    np.testing.assert_allclose(acc.iou(), expected, rtol=1e-5)
    assert acc.miou() == pytest.approx(float(expected.mean()), rel=1e-5)
