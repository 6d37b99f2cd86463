"""Dense CLIP guidance: labels (threshold, ignore, CutMix), reduction and weight schedule; and
the whole SemiVL step on a tiny model."""

import pytest
import torch
import torch.nn.functional as F

from semivl.config import GuidanceConfig, TrainConfig, load_dataset_config
from semivl.engine.guidance import DenseClipGuidance, guidance_weight
from semivl.engine.unimatch import UniMatchContext
from semivl.models.clip_vit import ClipFeatures


class FixedTeacher(torch.nn.Module):
    """Returns a given dense embedding whatever the image."""

    def __init__(self, dense):
        super().__init__()
        self.dense = dense

    def forward(self, images):
        return ClipFeatures([], self.dense[: images.shape[0]])


def _guidance(dense, cfg=None, concept_class=None, text=None):
    text = torch.eye(2) if text is None else text
    return DenseClipGuidance(
        FixedTeacher(dense), text, concept_class, 2, cfg or GuidanceConfig(teacher_image_size=8)
    )


def test_labels_threshold_upsampling_and_padding():
    # 1x2 token grid: left token is class 1, right token is half-way between the classes.
    tie = torch.tensor([1.0, 1.0]) / 2**0.5
    dense = torch.stack([torch.tensor([0.0, 1.0]), tie], dim=-1).view(1, 2, 1, 2)
    guidance = _guidance(dense)
    ignore = torch.zeros(1, 4, 8)
    ignore[:, :, 7] = 255  # padded column
    labels = guidance.labels(torch.zeros(1, 3, 4, 8), ignore)
    sim = F.interpolate(
        torch.einsum("bdhw,nd->bnhw", dense, torch.eye(2)),
        size=(4, 8),
        mode="bilinear",
        align_corners=False,
    )
    conf, expected = (100 * sim).softmax(1).max(1)
    expected[conf < 0.9] = 255
    expected[ignore == 255] = 255
    assert torch.equal(labels, expected)
    assert (labels[:, :, :2] == 1).all()  # confident class-1 region
    assert (labels[:, :, 6:] == 255).all()  # the tie (and the padding) are ignored
    # Upsampling happens before the softmax: the blend region keeps confident labels
    # where 100 x (cosine difference) is large, which a softmax-then-upsample would blur.
    assert (labels[:, :, 3] == 1).all()


def test_concept_max_happens_before_the_softmax():
    # Three concepts, the first two of class 0. A pixel close to concept 1 is class 0.
    text = F.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), dim=-1)
    dense = F.normalize(torch.tensor([0.1, 1.0, 0.05]), dim=0).view(1, 3, 1, 1)
    guidance = _guidance(dense, text=text, concept_class=torch.tensor([0, 0, 1]))
    assert guidance.labels(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2)).eq(0).all()


def _context(pred_s1, pred_s2, pred_fp, box1, box2, iteration=0, total=10):
    b, _, h, w = pred_s1.shape
    zeros = torch.zeros(b, h, w)
    img = torch.zeros(b, 3, h, w)
    return UniMatchContext(
        img,
        img,
        img,
        img,
        box1,
        box2,
        zeros,
        zeros.clone(),
        pred_s1,
        pred_s2,
        pred_fp,
        iteration,
        total,
    )


def test_cutmix_consistency_and_mean_all_reduction():
    # Main batch: every pixel class 0; partner: every pixel class 1 (both confident).
    dense = torch.stack(
        [
            torch.tensor([1.0, 0.0]).view(2, 1, 1).expand(2, 2, 2),
            torch.tensor([0.0, 1.0]).view(2, 1, 1).expand(2, 2, 2),
        ]
    )
    guidance = _guidance(dense)
    box1 = torch.zeros(1, 2, 2)
    box1[0, 0, 0] = 1
    box2 = torch.ones(1, 2, 2)
    logits = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2).clone()
    ctx = _context(logits, logits, logits, box1, box2)
    ce0 = F.cross_entropy(logits[:, :, :1, :1], torch.zeros(1, 1, 1, dtype=torch.long)).item()
    ce1 = F.cross_entropy(logits[:, :, :1, :1], torch.ones(1, 1, 1, dtype=torch.long)).item()
    loss, logs = guidance(ctx)
    # s1: the box pixel takes the partner's label 1, three pixels keep 0; s2: all partner's;
    # fp: the un-mixed labels (all 0). Each divided by all 4 pixels.
    s1 = (ce1 + 3 * ce0) / 4
    s2 = ce1
    fp = ce0
    assert logs["loss_guid"] == pytest.approx(0.25 * s1 + 0.25 * s2 + 0.5 * fp, rel=1e-5)
    assert loss.item() == pytest.approx(0.1 * logs["loss_guid"], rel=1e-5)
    assert logs["guid_weight"] == pytest.approx(0.1) and logs["guid_ratio"] == 1.0


def test_mean_all_counts_ignored_pixels():
    dense = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    mean_all = _guidance(dense)
    mean_valid = _guidance(dense, GuidanceConfig(reduce="mean_valid", teacher_image_size=8))
    logits = torch.zeros(1, 2, 2, 2)
    label = torch.tensor([[[0, 255], [255, 255]]])
    assert mean_all._reduce(logits, label).item() == pytest.approx(torch.log(torch.tensor(2.0)) / 4)
    assert mean_valid._reduce(logits, label).item() == pytest.approx(torch.log(torch.tensor(2.0)))


def test_weight_decays_linearly_from_start_to_end():
    cfg = GuidanceConfig()
    assert guidance_weight(cfg, 0, 100) == pytest.approx(0.1)
    assert guidance_weight(cfg, 50, 100) == pytest.approx(0.05)
    assert guidance_weight(cfg, 99, 100) == pytest.approx(0.001)
    assert guidance_weight(
        GuidanceConfig(lambda_start=0.2, lambda_end=0.1), 100, 100
    ) == pytest.approx(0.1)


def test_teacher_is_frozen_and_stays_in_eval_mode():
    teacher = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    guidance = DenseClipGuidance(teacher, torch.eye(2), None, 2, GuidanceConfig())
    guidance.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_semivl_step_decreases_the_loss(toy_root, repo, tmp_path):
    """The whole SemiVL step (UniMatch losses + guidance) on a tiny model and toy batches."""
    from semivl.config import AugmentConfig
    from semivl.data.dataset import SegmentationDataset
    from semivl.engine.guidance import build_guidance
    from semivl.engine.unimatch import unimatch_step
    from semivl.models.semivl_model import ModelContext, build_semivl

    cfg_data = load_dataset_config("toy", repo / "config")
    context = ModelContext(
        dataset=cfg_data, crop_size=32, config_dir=repo / "config", random_init=True
    )
    torch.manual_seed(0)
    model = build_semivl(
        5,
        context,
        clip="tiny_clip_random",
        out_blocks=[1, 0],
        channels=16,
        text_channels=16,
        num_heads=2,
        pool_size=2,
        aspp_dilations=[1, 2, 3],
        skip_channels=[8, 4],
        up_channels=[16, 8],
    )

    class _Recipe:  # build_guidance reads only these fields
        guidance = GuidanceConfig(teacher_image_size=32)
        model = type("M", (), {"args": {"clip": "tiny_clip_random"}})()
        dataset = cfg_data

    hook = build_guidance(_Recipe(), model, context)
    splits = toy_root.parent / "splits" / "6"
    aug = AugmentConfig(crop_size=32)
    lab = SegmentationDataset(toy_root, splits / "labeled.txt", cfg_data, "train", aug)
    unl = SegmentationDataset(toy_root, splits / "unlabeled.txt", cfg_data, "train_u", aug)

    def stack(items):
        return tuple(torch.stack(t) for t in zip(*items, strict=True))

    batch = (
        stack([lab[(i, (0, i))] for i in range(4)]),
        stack([unl[(i, (1, i))] for i in range(4)]),
        stack([unl[(i, (2, i))] for i in range(4)]),
    )
    train_cfg = TrainConfig(method="semivl", batch_size=4, iters=20, conf_thresh=0.0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=255)
    losses = []
    for it in range(15):
        loss, logs = unimatch_step(
            model, batch, criterion, train_cfg, torch.device("cpu"), it, 20, [hook]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert {"loss_guid", "guid_weight", "guid_ratio", "loss_x"} <= set(logs)
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3
    assert all(p.grad is None for p in hook.parameters())
