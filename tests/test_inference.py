import torch
from torch import nn

from semivl.engine.inference import (
    predict,
    predict_sliding_logits,
    predict_sliding_softmax,
    predict_whole,
)


def _pointwise_model(channels=4):
    torch.manual_seed(0)
    return nn.Conv2d(3, channels, kernel_size=1).eval()  # no context: windows cannot differ


class ShapeRecorder(nn.Module):
    def __init__(self, channels=1):
        super().__init__()
        self.channels = channels
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        return torch.ones(x.shape[0], self.channels, *x.shape[-2:])


def test_sliding_variants_agree_with_whole_image():
    model = _pointwise_model()
    for size in [(70, 100), (20, 30), (64, 64)]:
        image = torch.randn(1, 3, *size)
        whole = predict_whole(model, image)
        logits = predict_sliding_logits(model, image, 4, crop=32, stride=24)
        probs = predict_sliding_softmax(model, image, 4, crop=32)
        torch.testing.assert_close(logits, whole, rtol=1e-5, atol=1e-5)
        assert torch.equal(probs.argmax(1), whole.argmax(1))
        count = probs.sum(1, keepdim=True)
        torch.testing.assert_close(probs / count, whole.softmax(1), rtol=1e-5, atol=1e-5)


def test_sliding_logits_windows_shift_inside():
    rec = ShapeRecorder()
    out = predict_sliding_logits(rec, torch.zeros(1, 3, 10, 20), 1, crop=8, stride=5)
    # rows = (10-8+4)//5+1 = 2, cols = (20-8+4)//5+1 = 4; every window is a full 8x8
    assert rec.shapes == [(8, 8)] * 8
    assert torch.equal(out, torch.ones_like(out))  # averaged, not summed
    rec = ShapeRecorder()
    predict_sliding_logits(rec, torch.zeros(1, 3, 6, 7), 1, crop=8, stride=5)
    assert rec.shapes == [(6, 7)]  # smaller than the window: one smaller window


def test_sliding_softmax_windows_truncate():
    rec = ShapeRecorder(channels=2)
    out = predict_sliding_softmax(rec, torch.zeros(1, 3, 10, 20), 2, crop=8)
    # stride int(8*2/3) = 5; rows start 0, 5 and cols 0, 5, 10, 15; edges are cut, not shifted
    assert rec.shapes == [(8, 8), (8, 8), (8, 8), (8, 5), (5, 8), (5, 8), (5, 8), (5, 5)]
    assert out[0, 0, 0, 0] == 0.5 and out[0, 0, 6, 6] == 4 * 0.5  # overlap of 4 windows


def test_predict_resizes_to_target():
    model = _pointwise_model()
    scores = predict(model, torch.randn(1, 3, 16, 24), 4, "whole", out_size=(32, 48))
    assert scores.shape == (1, 4, 32, 48)


def test_batched_windows_give_the_same_scores():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 5, padding=2)
    ).eval()  # context: windows differ
    for size in [(70, 100), (20, 30), (64, 64), (33, 97)]:
        image = torch.randn(2, 3, *size)
        for fn, kwargs in [(predict_sliding_logits, {"stride": 24}), (predict_sliding_softmax, {})]:
            one = fn(model, image, 4, crop=32, **kwargs)
            batched = fn(model, image, 4, crop=32, batch_windows=True, **kwargs)
            torch.testing.assert_close(batched, one, rtol=1e-5, atol=1e-6)
            assert not torch.equal(one, fn(model, image.flip(-1), 4, crop=32, **kwargs))


def test_batched_windows_run_one_forward_per_window_size():
    rec = ShapeRecorder()
    predict_sliding_logits(rec, torch.zeros(1, 3, 10, 20), 1, crop=8, stride=5, batch_windows=True)
    assert rec.shapes == [(8, 8)]  # all 8 windows in one pass
    rec = ShapeRecorder()
    out = predict_sliding_softmax(
        rec, torch.zeros(1, 3, 10, 20), 1, crop=8, stride=6, batch_windows=True
    )
    # rows at 0, 6 (heights 8, 4); cols at 0, 6, 12, 18 (widths 8, 8, 8, 2): four sizes
    assert sorted(rec.shapes) == sorted([(8, 8), (8, 2), (4, 8), (4, 2)])
    unbatched = predict_sliding_softmax(
        ShapeRecorder(), torch.zeros(1, 3, 10, 20), 1, crop=8, stride=6
    )
    assert torch.equal(out, unbatched)
