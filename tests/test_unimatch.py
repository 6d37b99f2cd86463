import numpy as np
import pytest
import torch
from PIL import Image

from baselines.unimatch import DeepLabV3Plus
from semivl.config import AugmentConfig, TrainConfig, load_dataset_config
from semivl.data.dataset import SegmentationDataset
from semivl.data.transforms import cutmix_box
from semivl.engine.losses import build_labeled_criterion
from semivl.engine.unimatch import paste, unimatch_step
from semivl.models.tiny_fcn import TinyFCN


def test_cutmix_box_statistics():
    rng = np.random.default_rng(0)
    size, n, with_box = 64, 2000, 0
    areas, aspects = [], []
    for _ in range(n):
        box = cutmix_box(size, rng)
        if box.sum() == 0:
            continue
        with_box += 1
        ys, xs = torch.nonzero(box, as_tuple=True)
        h, w = int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)
        assert box.sum() == h * w  # one solid rectangle inside the crop
        areas.append(h * w / size**2)
        aspects.append(h / w)
    assert 0.45 < with_box / n < 0.55
    assert min(areas) > 0.015 and max(areas) <= 0.4
    assert np.mean(areas) == pytest.approx(0.21, abs=0.02)
    assert min(aspects) > 0.25 and max(aspects) < 1 / 0.25


def test_unlabeled_item_marks_padding(tmp_path, repo):
    root = tmp_path / "data"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    Image.new("RGB", (20, 16), (120, 30, 200)).save(root / "JPEGImages" / "a.jpg")
    Image.fromarray(np.full((16, 20), 3, dtype=np.uint8)).save(root / "SegmentationClass/a.png")
    split = tmp_path / "unlabeled.txt"
    split.write_text("JPEGImages/a.jpg SegmentationClass/a.png")
    cfg = load_dataset_config("toy", repo / "config")
    aug = AugmentConfig(crop_size=48, ratio_range=(1.0, 1.0), hflip_prob=0.0)
    data = SegmentationDataset(root, split, cfg, "train_u", aug)
    weak, s1, s2, ignore, box1, box2 = data[(0, (1, 2, 3, 4))]
    assert weak.shape == s1.shape == s2.shape == (3, 48, 48)
    assert ignore.shape == box1.shape == box2.shape == (48, 48)
    assert (ignore[:16, :20] == 0).all() and (ignore[16:] == 255).all()
    assert (ignore[:, 20:] == 255).all()
    again = data[(0, (1, 2, 3, 4))]
    assert all(
        torch.equal(a, b) for a, b in zip(again, (weak, s1, s2, ignore, box1, box2), strict=True)
    )


def test_feature_perturbation_changes_only_the_decoder_input():
    torch.manual_seed(0)
    model = DeepLabV3Plus(
        5, backbone="tv_resnet10", dilations=(1, 2, 3), aspp_channels=16, low_level_channels=8
    ).eval()
    seen = {}
    model.backbone.register_forward_hook(lambda m, i, o: seen.setdefault("backbone", []).append(o))
    model.decoder.register_forward_hook(lambda m, i, o: seen.setdefault("decoder_in", []).append(i))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        clean, perturbed = model(x, need_fp=True)
    (c1, c4), (c1_fp, c4_fp) = seen["backbone"]
    assert torch.equal(c1, c1_fp) and torch.equal(c4, c4_fp)  # the backbone is untouched
    dec_c1, dec_c4 = seen["decoder_in"][1]
    assert dec_c1.shape[0] == 4 and torch.equal(dec_c1[:2], c1) and torch.equal(dec_c4[:2], c4)
    dropped = dec_c4[2:]
    zero = dropped.flatten(2).abs().sum(-1) == 0
    assert 0.3 < zero.float().mean() < 0.7  # whole channels dropped at rate 0.5 ...
    assert torch.allclose(dropped[~zero], 2 * c4[~zero])  # ... survivors scaled by 2
    torch.testing.assert_close(clean, plain)  # eval mode: the clean half is the plain forward
    assert not torch.allclose(perturbed, plain)


def _batch(b=2, size=16, k=3):
    gen = torch.Generator().manual_seed(1)
    img = lambda: torch.randn(b, 3, size, size, generator=gen)  # noqa: E731
    mask = torch.randint(0, k, (b, size, size), generator=gen)
    ignore = torch.zeros(b, size, size, dtype=torch.int64)
    ignore[:, -3:] = 255
    box = torch.zeros(b, size, size, dtype=torch.int64)
    box[:, 2:8, 2:8] = 1
    unlabeled = (img(), img(), img(), ignore, box, box.clone())
    mix = (img(), img(), img(), ignore.clone(), box, box)
    return (img(), mask), unlabeled, mix


def test_unimatch_step_and_loss_hook():
    cfg = TrainConfig(method="unimatch", batch_size=2, iters=1, conf_thresh=0.0)
    model = TinyFCN(3)
    crit = build_labeled_criterion("ce")
    calls = []

    def hook(ctx):
        calls.append(ctx)
        return torch.tensor(1.5), {"extra": 1.5}

    torch.manual_seed(0)
    loss, logs = unimatch_step(model, _batch(), crit, cfg, torch.device("cpu"), 3, 10)
    torch.manual_seed(0)
    loss_h, logs_h = unimatch_step(model, _batch(), crit, cfg, torch.device("cpu"), 3, 10, [hook])
    assert torch.isfinite(loss) and set(logs) == {"loss_x", "loss_s", "loss_fp", "mask_ratio"}
    assert loss_h.item() == pytest.approx(loss.item() + 1.5) and logs_h["extra"] == 1.5
    ctx = calls[0]
    assert ctx.iteration == 3 and ctx.total_iters == 10 and ctx.pred_u_s1.requires_grad
    assert model.training  # back in train mode after the partner's eval-mode forward
    assert logs["mask_ratio"] == 1.0  # threshold 0: every non-padded pixel is confident


def test_paste_uses_boxes():
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    box = torch.zeros(1, 4, 4, dtype=torch.int64)
    box[0, 1:3, 1:3] = 1
    out = paste(a, b, box)
    assert out.sum() == 3 * 4 and a.sum() == 0
    labels = paste(torch.zeros(1, 4, 4, dtype=torch.int64), torch.full((1, 4, 4), 7), box)
    assert labels[0, 1, 1] == 7 and labels[0, 0, 0] == 0 and labels.sum() == 4 * 7


def test_backbone_width_scales_the_small_resnets():
    from torchvision.models.resnet import BasicBlock, ResNet

    from baselines.unimatch.resnet import TorchvisionResNet

    torch.manual_seed(0)
    default = TorchvisionResNet([1, 1, 1, 1])
    torch.manual_seed(0)
    reference = ResNet(BasicBlock, [1, 1, 1, 1])  # width 64 is torchvision's own net
    ref = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(default.state_dict()[k], v) for k, v in ref.items())
    assert list(default.state_dict()) == list(ref)
    narrow = TorchvisionResNet([1, 1, 1, 1], width=32)
    assert list(narrow.state_dict()) == list(ref)  # same layout and names, half the widths
    assert narrow.layer4[0].conv2.weight.shape == (256, 256, 3, 3)
    c1, c4 = narrow(torch.randn(2, 3, 64, 64))
    assert c1.shape == (2, 32, 16, 16) and c4.shape == (2, 256, 4, 4)  # layer4 keeps stride 16
    model = DeepLabV3Plus(
        5,
        backbone="tv_resnet18",
        dilations=(1, 2, 3),
        aspp_channels=16,
        low_level_channels=8,
        backbone_width=16,
    )
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5, 32, 32)
    with pytest.raises(ValueError, match="backbone_width applies to"):
        DeepLabV3Plus(5, backbone="resnet50", backbone_width=32)
