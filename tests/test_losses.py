import pytest
import torch
import torch.nn.functional as F

from semivl.engine.losses import ProbOhemCrossEntropy, unsupervised_loss


def _logits(probs):
    """Logits whose softmax is ``probs`` ([B, C, H, W])."""
    return torch.log(torch.tensor(probs, dtype=torch.float32))


def test_pixelwise_threshold_and_non_padded_denominator():
    # one image, 2 classes, 1x4 pixels; pixel 3 is padding
    pred = _logits([[[[0.9, 0.2, 0.6, 0.5]], [[0.1, 0.8, 0.4, 0.5]]]])
    pseudo = torch.tensor([[[0, 1, 1, 0]]])
    conf = torch.tensor([[[0.99, 0.96, 0.5, 0.99]]])
    ignore = torch.tensor([[[0, 0, 0, 255]]])
    ce = F.cross_entropy(pred, pseudo, reduction="none")[0, 0]
    expected = (ce[0] + ce[1]) / 3  # confident, non-padded pixels over 3 non-padded pixels
    got = unsupervised_loss(pred, pseudo, conf, ignore, "pixelwise", 0.95)
    assert got.item() == pytest.approx(expected.item())
    assert unsupervised_loss(pred, pseudo, conf, ignore, "pixelwise", 0.0).item() == pytest.approx(
        (ce[0] + ce[1] + ce[2]).item() / 3
    )


def test_pixelavg_weighting():
    pred = _logits([[[[0.9, 0.2]], [[0.1, 0.8]]], [[[0.3, 0.6]], [[0.7, 0.4]]]])
    pseudo = torch.tensor([[[0, 1]], [[1, 0]]])
    conf = torch.tensor([[[0.8, 0.6]], [[0.5, 0.9]]])
    ignore = torch.tensor([[[0, 0]], [[0, 255]]])
    ce = F.cross_entropy(pred, pseudo, reduction="none")
    mean_conf = 0.7 + 0.5  # image 0: (0.8 + 0.6) / 2; image 1: only its non-padded pixel
    expected = ce.sum() * mean_conf / 3  # CE over all pixels, padded included
    got = unsupervised_loss(pred, pseudo, conf, ignore, "pixelavg", 0.95)
    assert got.item() == pytest.approx(expected.item())


def test_ohem_keeps_hard_pixels():
    torch.manual_seed(0)
    pred = torch.randn(1, 3, 4, 5)
    target = torch.randint(0, 3, (1, 4, 5))
    target[0, 0, 0] = 255
    prob = pred.softmax(1)
    true_prob = prob.gather(1, target.clamp(max=2)[:, None])[:, 0]
    valid = target != 255
    # min_kept larger than the valid count: plain CE over all valid pixels
    full = ProbOhemCrossEntropy(0.7, 1000)(pred, target)
    assert full.item() == pytest.approx(F.cross_entropy(pred, target, ignore_index=255).item())
    # min_kept 0 (upstream util/ohem.py): no threshold, every valid pixel is kept
    assert ProbOhemCrossEntropy(0.7, 0)(pred, target).item() == pytest.approx(full.item())
    # min_kept 1: pixels whose true-class probability is at most 0.7 (the smallest is below)
    kept = valid & (true_prob <= 0.7)
    assert 0 < int(kept.sum()) < int(valid.sum())
    expected = F.cross_entropy(pred, torch.where(kept, target, 255), ignore_index=255)
    assert ProbOhemCrossEntropy(0.7, 1)(pred, target).item() == pytest.approx(expected.item())
    # min_kept raises the threshold to the k-th smallest probability (invalid pixels count 1)
    probs = torch.where(valid, true_prob, torch.ones_like(true_prob)).flatten()
    kth = probs.sort().values[14]
    kept = valid & (true_prob <= max(kth.item(), 0.1))
    expected = F.cross_entropy(pred, torch.where(kept, target, 255), ignore_index=255)
    assert ProbOhemCrossEntropy(0.1, 15)(pred, target).item() == pytest.approx(expected.item())
