"""UniMatch V2's step, EMA teacher and trainer integration (docs/upstream.md, UniMatch V2)."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_UNIMATCH
from torch import nn

from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.losses import IGNORE, unsupervised_loss
from semivl.engine.run_layout import make_plan
from semivl.engine.trainer import (
    RunSpec,
    TrainingStopped,
    labeled_stream_length,
    schedule,
    train,
    upsample_labeled,
)
from semivl.engine.unimatch_v2 import (
    ema_momentum,
    flip_partner,
    make_ema,
    unimatch_v2_step,
    update_ema,
)
from semivl.models.registry import MODELS, register_model
from semivl.recipes import load_recipe


class _CompDropFCN(nn.Module):
    """A tiny conv net with a BatchNorm (buffers) whose ``comp_drop`` applies complementary
    channel dropout (M, 2 - M) to the two halves of its batch."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.decoder = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor, comp_drop: bool = False) -> torch.Tensor:
        feats = self.backbone(x)
        if comp_drop:
            half = feats.shape[0] // 2
            mask = torch.bernoulli(torch.full((half, feats.shape[1], 1, 1), 0.5)) * 2
            feats = feats * torch.cat((mask, 2 - mask))
        return self.decoder(feats)


if "test_v2_fcn" not in MODELS:
    register_model("test_v2_fcn")(lambda num_classes, width=8: _CompDropFCN(num_classes, width))


class _Param2(nn.Module):
    def __init__(self, a: float, b: float, buf: float, count: int) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))
        self.register_buffer("run", torch.tensor(buf))
        self.register_buffer("count", torch.tensor(count))


def test_ema_update_by_hand():
    ema, student = _Param2(1.0, 2.0, 3.0, 0), _Param2(5.0, -2.0, 7.0, 4)
    assert update_ema(ema, student, 0, 0.996) == 0.0  # it = 0: momentum 0, a copy
    assert ema.a.item() == 5.0 and ema.b.item() == -2.0 and ema.run.item() == 7.0
    assert ema.count.item() == 4
    ema = _Param2(1.0, 2.0, 3.0, 0)
    m = update_ema(ema, student, 9, 0.996)  # 1 - 1/10 = 0.9 < 0.996
    assert m == pytest.approx(0.9)
    torch.testing.assert_close(ema.a, torch.tensor(1.0 * 0.9 + 5.0 * 0.1))
    torch.testing.assert_close(ema.run, torch.tensor(3.0 * 0.9 + 7.0 * 0.1))
    ema = _Param2(1.0, 2.0, 3.0, 0)
    assert update_ema(ema, student, 5000, 0.996) == 0.996  # capped
    torch.testing.assert_close(ema.b, torch.tensor(2.0 * 0.996 - 2.0 * 0.004))
    assert ema_momentum(1, 0.996) == 0.5


def test_make_ema_is_frozen_and_in_eval():
    model = _CompDropFCN(3).train()
    ema = make_ema(model)
    assert not ema.training and all(not p.requires_grad for p in ema.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_reversed_partner():
    img = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 2, 2).clone()  # image i holds i
    label = torch.tensor([0, 1, 2]).view(3, 1, 1).expand(3, 2, 2).clone()
    conf = torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).expand(3, 2, 2).clone()
    ignore = torch.zeros(3, 2, 2, dtype=torch.long)
    ignore[2] = IGNORE
    box = torch.zeros(3, 2, 2, dtype=torch.long)
    box[:, 0, 0] = 1
    out_img, out_label, out_conf, out_ignore = flip_partner(img, label, conf, ignore, box)
    for i, partner in enumerate((2, 1, 0)):
        assert torch.all(out_img[i, :, 0, 0] == partner) and out_img[i, 0, 1, 1] == i
        assert out_label[i, 0, 0] == partner and out_label[i, 1, 1] == i
        assert out_conf[i, 0, 0] == conf[partner, 0, 0] and out_conf[i, 1, 0] == conf[i, 1, 0]
        assert out_ignore[i, 0, 0] == ignore[partner, 0, 0]
        assert out_ignore[i, 0, 1] == ignore[i, 0, 1]
    assert torch.equal(img[:, 0, 0, 0], torch.arange(3.0))  # inputs untouched


class _Recorder(nn.Module):
    """Fixed logits per call kind; records how it was called."""

    def __init__(self, weak: torch.Tensor, lab: torch.Tensor, strong: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.weak, self.lab, self.strong = weak, lab, strong
        self.calls: list[tuple[str, bool, bool, torch.Tensor]] = []

    def forward(self, x: torch.Tensor, comp_drop: bool = False) -> torch.Tensor:
        self.calls.append(("call", comp_drop, self.training, x.clone()))
        if comp_drop:
            return self.strong + self.w
        if x.shape[0] == self.lab.shape[0] and x[0, 0, 0, 0] < 0:
            return self.lab + self.w
        return self.weak + self.w


def _cfg(conf_thresh: float = 0.5):
    cfg = load_recipe("unimatch", "pascal").train
    return dataclasses.replace(
        cfg,
        **{
            "method": "unimatch_v2",
            "conf_thresh": conf_thresh,
            "conf_mode": "pixelwise",
            "criterion": "ce",
        },
    )


def test_step_losses_teacher_and_comp_drop():
    torch.manual_seed(0)
    b, k, h, w = 2, 3, 4, 4
    img_x = -torch.rand(b, 3, h, w) - 1  # negative: the recorder tells it from the others
    mask_x = torch.randint(0, k, (b, h, w))
    img_u_w, s1, s2 = (torch.rand(b, 3, h, w) for _ in range(3))
    ignore = torch.zeros(b, h, w, dtype=torch.long)
    ignore[:, 0] = IGNORE
    box1 = torch.zeros(b, h, w, dtype=torch.long)
    box1[:, 2:, 2:] = 1
    box2 = torch.zeros(b, h, w, dtype=torch.long)
    box2[:, :2, :2] = 1
    weak, lab, strong = (torch.randn(n, k, h, w) * 3 for n in (b, b, 2 * b))
    student = _Recorder(weak * 0, lab, strong)
    teacher = _Recorder(weak, lab, strong).train()
    cfg = _cfg()
    loss, logs = unimatch_v2_step(
        student,
        teacher,
        ((img_x, mask_x), (img_u_w, s1, s2, ignore, box1, box2)),
        nn.CrossEntropyLoss(ignore_index=IGNORE),
        cfg,
        torch.device("cpu"),
    )
    # The teacher predicted the weak view once, in eval mode, without comp_drop.
    assert len(teacher.calls) == 1
    _, drop, training, x = teacher.calls[0]
    assert not drop and not training and torch.equal(x, img_u_w)
    # The student: labelled batch alone, then cat(s1, s2) CutMixed with the reversed batch.
    assert [(c[1], c[2]) for c in student.calls] == [(False, True), (True, True)]
    assert torch.equal(student.calls[0][3], img_x)
    m1, m2 = box1.bool().unsqueeze(1), box2.bool().unsqueeze(1)
    mixed1 = torch.where(m1, s1.flip(0), s1)
    mixed2 = torch.where(m2, s2.flip(0), s2)
    assert torch.equal(student.calls[1][3], torch.cat((mixed1, mixed2)))
    # The loss weights.
    conf, label = weak.softmax(1).max(1)
    lx = nn.functional.cross_entropy(lab, mask_x)
    parts = []
    for box, pred in ((box1, strong[:b]), (box2, strong[b:])):
        sel = box == 1
        parts.append(
            unsupervised_loss(
                pred,
                torch.where(sel, label.flip(0), label),
                torch.where(sel, conf.flip(0), conf),
                torch.where(sel, ignore.flip(0), ignore),
                "pixelwise",
                0.5,
            )
        )
    l1, l2 = parts
    assert l1 > 0 and l2 > 0
    torch.testing.assert_close(loss, (lx + (l1 + l2) / 2) / 2)
    assert logs["loss_x"] == pytest.approx(lx.item())
    assert logs["loss_s"] == pytest.approx((l1.item() + l2.item()) / 2)
    loss.backward()
    assert student.w.grad is not None and teacher.w.grad is None


def test_labeled_upsample_repeats_the_list():
    cfg = load_recipe("supervised", "pascal").train
    up = dataclasses.replace(cfg, **{"labeled_upsample_to": 7})
    big = dataclasses.replace(cfg, **{"labeled_upsample_to": 3000})
    pairs = [("a", "A"), ("b", "B"), ("c", "C")]
    assert upsample_labeled(up, pairs) == (pairs * 3)[:7]
    assert labeled_stream_length(up, 3) == 7 and labeled_stream_length(up, 10) == 10
    assert upsample_labeled(up, pairs * 4) == pairs * 4  # longer lists are kept
    assert upsample_labeled(cfg, pairs) == pairs and labeled_stream_length(cfg, 3) == 3
    semi = dataclasses.replace(up, **{"method": "unimatch"})
    assert labeled_stream_length(semi, 3) == 3  # only the labelled-only baseline upsamples
    assert schedule(big, labeled_stream_length(big, 92), 1)[1] == 3000 // 16  # 16 per step


TINY_V2 = (
    TINY_UNIMATCH.replace("method: unimatch", "method: unimatch_v2")
    .replace("name: deeplabv3plus", "name: test_v2_fcn")
    .replace(
        "args: {backbone: tv_resnet10, dilations: [1, 2, 3], aspp_channels: 16, "
        "low_level_channels: 8}",
        "args: {width: 8}",
    )
    .replace(
        "checkpoint_every_iters: 3",
        "checkpoint_every_iters: 3\n  ema_momentum: 0.9\n  conf_thresh: 0.5",
    )
    .replace("eval_every_iters: 6", "eval_every_iters: 4")
)


def _v2_spec(toy_root: Path, config_dir: Path, out: Path, seed: int = 0) -> RunSpec:
    (config_dir / "recipes" / "unimatch_v2" / "toy.yaml").write_text(TINY_V2)
    splits = toy_root.parent / "splits"
    return RunSpec(
        recipe=load_recipe("unimatch_v2", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=splits / "6" / "unlabeled.txt",
        val_split=splits / "val.txt",
        out_dir=out,
        seed=seed,
    )


def test_v2_plan_has_no_mix_stream(toy_root, config_dir, tmp_path):
    from semivl.engine import distributed as D

    plan = make_plan(_v2_spec(toy_root, config_dir, tmp_path / "p"), D.DistInfo())
    assert plan.streams == [0, 1] and len(plan.datasets) == 2


def test_v2_training_resume_is_exact(toy_root, config_dir, tmp_path):
    straight = train(_v2_spec(toy_root, config_dir, tmp_path / "a"), progress=False, log_every=1)
    assert straight["total_iters"] == 9
    with pytest.raises(TrainingStopped):
        train(
            _v2_spec(toy_root, config_dir, tmp_path / "b"),
            stop_after_steps=5,
            progress=False,
            log_every=1,
        )
    assert "ema" in load_checkpoint(tmp_path / "b" / "last.pt")
    resumed = train(_v2_spec(toy_root, config_dir, tmp_path / "b"), progress=False, log_every=1)
    for name in ("model.pt", "model_student.pt", "best.pt"):
        a, b = load_checkpoint(tmp_path / "a" / name), load_checkpoint(tmp_path / "b" / name)
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    assert resumed["history"] == straight["history"]
    assert (tmp_path / "a" / "train_summary.json").read_bytes() == (
        tmp_path / "b" / "train_summary.json"
    ).read_bytes()
    ema, student = (load_checkpoint(tmp_path / "a" / n) for n in ("model.pt", "model_student.pt"))
    assert not torch.equal(ema["decoder.weight"], student["decoder.weight"])
    summary = json.loads((tmp_path / "a" / "train_summary.json").read_text())
    assert {"best_miou_student", "final_miou_student", "final_eval_student"} <= summary.keys()
    assert all("miou_student" in h for h in summary["history"])
    assert summary["best_miou"] == max(h["miou"] for h in summary["history"])
    assert summary["final_eval"]["miou"] == summary["final_miou"]
    assert summary["final_eval_student"]["miou"] == summary["final_miou_student"]
    assert not (tmp_path / "a" / "last.pt").exists()


def test_supervised_plan_upsamples_the_labelled_split(toy_root, config_dir, tmp_path):
    from semivl.engine import distributed as D

    path = config_dir / "recipes" / "supervised" / "toy.yaml"
    path.write_text(path.read_text().replace("iters: 12", "iters: 12\n  labeled_upsample_to: 10"))
    splits = toy_root.parent / "splits"
    spec = RunSpec(
        recipe=load_recipe("supervised", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        val_split=splits / "val.txt",
        out_dir=tmp_path / "s",
        seed=0,
    )
    plan = make_plan(spec, D.DistInfo())
    pairs = plan.datasets[0].pairs
    assert len(pairs) == 10 and pairs[6:] == pairs[:4] and plan.num_labeled == 6
    assert plan.stream_length == 10 and plan.iters_per_epoch == 5  # batch 2


_DDP_SCRIPT = """
import sys
from pathlib import Path

sys.path.insert(0, {tests!r})
import test_unimatch_v2_step  # noqa: F401 - registers the test model
from semivl.recipes import load_recipe
from semivl.engine.trainer import RunSpec, TrainingStopped, train

splits = Path({root!r}).parent / "splits"
spec = RunSpec(recipe=load_recipe("unimatch_v2", "toy", Path({config!r})),
               data_root=Path({root!r}), labeled_split=splits / "6" / "labeled.txt",
               unlabeled_split=splits / "6" / "unlabeled.txt", val_split=splits / "val.txt",
               out_dir=Path({out!r}), seed=0)
try:
    train(spec, device="cpu", stop_after_steps=2, progress=False)
except TrainingStopped as err:
    print("STOPPED", err)
"""


@pytest.mark.slow
def test_v2_two_processes_keep_an_ema(toy_root, config_dir, tmp_path):
    import os
    import subprocess
    import sys

    (config_dir / "recipes" / "unimatch_v2" / "toy.yaml").write_text(TINY_V2)
    script = tmp_path / "run.py"
    script.write_text(
        _DDP_SCRIPT.format(
            tests=str(Path(__file__).parent),
            root=str(toy_root),
            config=str(config_dir),
            out=str(tmp_path / "two"),
        )
    )
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.stdout.count("STOPPED") == 2, proc.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "two" / "last.pt")
    assert ckpt["iteration"] == 2 and len(ckpt["torch_rng"]) == 2
    # After two steps the teacher is the mean of the student after steps 1 and 2.
    assert ckpt["ema"].keys() == ckpt["model"].keys()
    assert not torch.equal(ckpt["ema"]["decoder.weight"], ckpt["model"]["decoder.weight"])
