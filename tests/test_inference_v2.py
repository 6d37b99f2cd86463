"""UniMatch V2's evaluation modes: clamped sliding windows and the resize to multiples of 14."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semivl.engine.inference import (
    clamped_starts,
    multiple_size,
    predict,
    predict_sliding_softmax_clamped,
    predict_whole,
)


class Recorder(nn.Module):
    """Records the (top, left, H, W) of each input it sees (via a coordinate image)."""

    def __init__(self, channels=2):
        super().__init__()
        self.channels = channels
        self.shapes = []
        self.origins = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        # channel 0 holds the row index, channel 1 the column index (see _coords)
        self.origins.append((int(x[0, 0, 0, 0]), int(x[0, 1, 0, 0])))
        return torch.zeros(x.shape[0], self.channels, *x.shape[-2:])


def _coords(h, w):
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    return torch.stack([rows, cols, torch.zeros(h, w)])[None]


def _upstream_windows(h, w, grid):
    """A transcription of UniMatch-V2 ``supervised.py`` ``evaluate`` (sliding_window)."""
    windows = []
    row = 0
    while row < h:
        col = 0
        while col < w:
            windows.append((row, col))
            if col == w - grid:
                break
            col = min(col + int(grid * 2 / 3), w - grid)
        if row == h - grid:
            break
        row = min(row + int(grid * 2 / 3), h - grid)
    return windows


def test_cityscapes_window_starts():
    # rows: 0 -> min(532, 1024 - 798 = 226) = 226 (= H - crop: stop)
    assert clamped_starts(1024, 798, 532) == [0, 226]
    # columns: 0 -> 532 -> 1064 -> min(1596, 2048 - 798 = 1250) = 1250 (stop)
    assert clamped_starts(2048, 798, 532) == [0, 532, 1064, 1250]
    assert int(798 * 2 / 3) == 532  # upstream's stride
    assert _upstream_windows(1024, 2048, 798) == [
        (r, c) for r in (0, 226) for c in (0, 532, 1064, 1250)
    ]


@pytest.mark.parametrize(
    "size,crop,stride",
    [(10, 8, 5), (16, 8, 4), (8, 8, 5), (23, 7, 4), (1024, 798, 532), (2048, 798, 532)],
)
def test_starts_match_upstream_loop(size, crop, stride):
    if stride == int(crop * 2 / 3):
        assert [c for _, c in _upstream_windows(crop, size, crop)] == clamped_starts(
            size, crop, stride
        )
    starts = clamped_starts(size, crop, stride)
    assert starts[0] == 0 and starts[-1] == size - crop
    assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))


def test_clamped_windows_are_full_size_and_inside():
    rec = Recorder()
    out = predict_sliding_softmax_clamped(rec, _coords(10, 20), 2, crop=8, stride=5)
    # rows 0, 2; cols 0, 5, 10, 12; rows outer, columns inner; every window 8x8
    assert rec.shapes == [(8, 8)] * 8
    assert rec.origins == [(r, c) for r in (0, 2) for c in (0, 5, 10, 12)]
    # zero logits -> softmax 0.5 per class; pixel (0, 0) in one window, (4, 6) in 2x2
    assert out.shape == (1, 2, 10, 20)
    assert out[0, 0, 0, 0] == 0.5 and out[0, 0, 4, 6] == 4 * 0.5
    assert torch.all(out.sum(1) >= 1 - 1e-6)  # every pixel covered


def test_clamped_cityscapes_size_calls():
    rec = Recorder(channels=19)
    out = predict_sliding_softmax_clamped(rec, _coords(1024, 2048), 19, crop=798, stride=532)
    assert rec.shapes == [(798, 798)] * 8
    assert rec.origins == [(r, c) for r in (0, 226) for c in (0, 532, 1064, 1250)]
    assert out.shape == (1, 19, 1024, 2048)


def test_clamped_image_smaller_than_crop_gives_one_window():
    rec = Recorder()
    predict_sliding_softmax_clamped(rec, _coords(6, 7), 2, crop=8, stride=5)
    assert rec.shapes == [(6, 7)]


def test_clamped_batched_equals_one_at_a_time():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 5, padding=2)
    ).eval()
    image = torch.randn(2, 3, 33, 97)
    one = predict_sliding_softmax_clamped(model, image, 4, crop=32, stride=21)
    batched = predict_sliding_softmax_clamped(
        model, image, 4, crop=32, stride=21, batch_windows=True
    )
    torch.testing.assert_close(batched, one, rtol=1e-5, atol=1e-6)


def test_clamped_pointwise_model_agrees_with_whole():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, kernel_size=1).eval()
    image = torch.randn(1, 3, 40, 70)
    probs = predict(model, image, 4, "sliding_softmax_clamped", crop=24, stride=16)
    whole = predict_whole(model, image)
    assert torch.equal(probs.argmax(1), whole.argmax(1))
    torch.testing.assert_close(
        probs / probs.sum(1, keepdim=True), whole.softmax(1), rtol=1e-5, atol=1e-5
    )


def test_multiple_size_rounds_half_up():
    assert multiple_size((500, 375), 14) == (504, 378)  # 35.7 -> 36, 26.8 -> 27
    assert multiple_size((1024, 2048), 14) == (1022, 2044)  # 73.1 -> 73, 146.3 -> 146
    assert multiple_size((21, 35), 14) == (28, 42)  # 1.5 -> 2, 2.5 -> 3 (half up, not even)
    assert multiple_size((518, 518), 14) == (518, 518)
    assert multiple_size((3, 5), 14) == (14, 14)  # never 0


def test_resize_to_multiple_feeds_the_model_multiples_and_returns_original_size():
    rec = Recorder(channels=3)
    scores = predict(rec, torch.zeros(1, 3, 500, 375), 3, "whole", resize_to_multiple=14)
    assert rec.shapes == [(504, 378)]
    assert scores.shape == (1, 3, 500, 375)
    rec = Recorder(channels=3)
    scores = predict(
        rec, torch.zeros(1, 3, 500, 375), 3, "whole", out_size=(500, 375), resize_to_multiple=14
    )
    assert rec.shapes == [(504, 378)] and scores.shape == (1, 3, 500, 375)


def test_resize_to_multiple_matches_upstream_arithmetic():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 5, kernel_size=3, padding=1).eval()
    image = torch.randn(1, 3, 45, 61)
    ours = predict(model, image, 5, "whole", out_size=(45, 61), resize_to_multiple=14)
    # upstream: int(h / 14 + 0.5) * 14, bilinear align_corners=True there and back
    new_h, new_w = int(45 / 14 + 0.5) * 14, int(61 / 14 + 0.5) * 14
    assert (new_h, new_w) == (42, 56)
    with torch.no_grad():
        ref = model(F.interpolate(image, (new_h, new_w), mode="bilinear", align_corners=True))
        ref = F.interpolate(ref, (45, 61), mode="bilinear", align_corners=True)
    torch.testing.assert_close(ours, ref)


def test_resize_to_multiple_is_a_no_op_at_multiples():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, kernel_size=3, padding=1).eval()
    image = torch.randn(1, 3, 28, 42)
    rec = Recorder(channels=4)
    predict(rec, image, 4, "whole", resize_to_multiple=14)
    assert rec.shapes == [(28, 42)]
    torch.testing.assert_close(
        predict(model, image, 4, "whole", resize_to_multiple=14), predict_whole(model, image)
    )


def test_without_resize_to_multiple_the_input_is_untouched():
    rec = Recorder(channels=3)
    predict(rec, torch.zeros(1, 3, 500, 375), 3, "whole")
    assert rec.shapes == [(500, 375)]


def test_clamped_mode_needs_a_stride():
    with pytest.raises(ValueError, match="stride"):
        predict(Recorder(), torch.zeros(1, 3, 10, 10), 2, "sliding_softmax_clamped", crop=8)


class _ValItems(list):
    """A val set in memory: the sampler's keys are (index, seed)."""

    def __getitem__(self, key):
        return super().__getitem__(key[0])


def test_evaluate_dispatches_v2_modes():
    """``evaluate`` hands ``eval.resize_to_multiple`` and the clamped mode to the model."""
    import dataclasses

    from semivl.config import EvalConfig
    from semivl.engine.evaluate import evaluate
    from semivl.recipes import load_recipe

    base = load_recipe("unimatch", "toy")
    recipe = dataclasses.replace(
        base, dataset=dataclasses.replace(base.dataset, appearance_modes=None)
    )
    classes = recipe.dataset.num_classes
    items = _ValItems([(torch.zeros(3, 50, 37), torch.zeros(50, 37, dtype=torch.long), "a")])

    rec = Recorder(channels=classes)
    v2 = dataclasses.replace(recipe, eval=EvalConfig(mode="whole", resize_to_multiple=14))
    result = evaluate(rec, items, v2, torch.device("cpu"), progress=False)
    assert rec.shapes == [(56, 42)]  # 3.57 -> 4, 2.64 -> 3
    assert result.num_images == 1

    rec = Recorder(channels=classes)
    clamped = dataclasses.replace(
        recipe, eval=EvalConfig(mode="sliding_softmax_clamped", crop_size=28, stride=18)
    )
    evaluate(rec, items, clamped, torch.device("cpu"), progress=False)
    # rows 0, 18, 22 (= 50 - 28); columns 0, 9 (= 37 - 28)
    assert rec.shapes == [(28, 28)] * 6


def test_predict_with_config_reads_every_eval_key():
    from semivl.config import EvalConfig
    from semivl.engine.inference import predict_with_config

    rec = Recorder(channels=3)
    scores = predict_with_config(
        rec, torch.zeros(1, 3, 500, 375), 3, EvalConfig(mode="whole", resize_to_multiple=14)
    )
    assert rec.shapes == [(504, 378)] and scores.shape == (1, 3, 500, 375)
    rec = Recorder(channels=3)
    predict_with_config(
        rec,
        _coords(10, 20),
        3,
        EvalConfig(mode="sliding_softmax_clamped", crop_size=8, stride=5, batch_windows=True),
    )
    assert rec.shapes == [(8, 8)]  # the eight windows in one batch
