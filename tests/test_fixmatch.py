"""FixMatch, the method plug-in in ``baselines/fixmatch``: its step against upstream's formulas
(UniMatch's ``fixmatch.py``), its argument check, and a short end-to-end run on the toy."""

import copy
import csv
import math
import subprocess
import sys

import pytest
import torch
from conftest import TINY_UNIMATCH
from torch import nn

from baselines.fixmatch import METHOD, FixMatchArgs
from baselines.fixmatch.step import fixmatch_step
from semivl.config import ConfigError, TrainConfig
from semivl.engine.losses import build_labeled_criterion
from semivl.methods import get_method

K = 3  # classes


class _TinyBN(nn.Module):
    """1x1 conv, BatchNorm, 1x1 conv: train and eval mode differ, and a train-mode forward
    of a concatenated batch differs from two separate ones (BatchNorm's batch statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, K, 1)
        with torch.no_grad():
            self.bn.running_mean.copy_(torch.tensor([0.5, -0.5, 1.0, 0.0]))
            self.bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5, 3.0]))
            self.conv2.weight.mul_(4.0)  # confidences spread over (1/K, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


def _batch(b=2, size=8):
    gen = torch.Generator().manual_seed(5)
    img = lambda: torch.randn(b, 3, size, size, generator=gen)  # noqa: E731
    mask = torch.randint(0, K, (b, size, size), generator=gen)
    mask[:, 0, :] = 255
    ignore = torch.zeros(b, size, size, dtype=torch.int64)
    ignore[:, -2:, :] = 255  # padding at the bottom of the unlabelled batch ...
    ignore_mix = torch.zeros(b, size, size, dtype=torch.int64)
    ignore_mix[:, :, -3:] = 255  # ... and at the right of the partner's
    box1 = torch.zeros(b, size, size, dtype=torch.int64)
    box1[0, 3:8, 4:8] = 1  # overlaps both paddings
    box1[1, 0:3, 0:3] = 1
    box2 = torch.zeros(b, size, size, dtype=torch.int64)
    box2[:, 1:4, 1:6] = 1  # unused by FixMatch
    unlabeled = (img(), img(), img(), ignore, box1, box2)
    mix = (img(), img(), img(), ignore_mix, 1 - box1, box2.clone())
    return (img(), mask), unlabeled, mix


def _upstream_loss(model, batch, thresh, lambda_u=1.0):
    """UniMatch's fixmatch.py, one iteration, written from its source (boolean-index CutMix,
    argmax labels, CE without reduction) on clones of the batch."""
    (
        (img_x, mask_x),
        (img_u_w, img_u_s, _, ignore_mask, cutmix_box, _),
        (img_u_w_mix, img_u_s_mix, _, ignore_mask_mix, _, _),
    ) = copy.deepcopy(batch)
    with torch.no_grad():
        model.eval()
        pred_u_w_mix = model(img_u_w_mix).detach()
        conf_u_w_mix = pred_u_w_mix.softmax(dim=1).max(dim=1)[0]
        mask_u_w_mix = pred_u_w_mix.argmax(dim=1)
    box3 = cutmix_box.unsqueeze(1).expand(img_u_s.shape) == 1
    img_u_s[box3] = img_u_s_mix[box3]
    model.train()
    num_lb, num_ulb = img_x.shape[0], img_u_w.shape[0]
    pred_x, pred_u_w = model(torch.cat((img_x, img_u_w))).split([num_lb, num_ulb])
    pred_u_s = model(img_u_s)
    pred_u_w = pred_u_w.detach()
    conf_u_w = pred_u_w.softmax(dim=1).max(dim=1)[0]
    mask_u_w = pred_u_w.argmax(dim=1)
    mask_c, conf_c, ignore_c = mask_u_w.clone(), conf_u_w.clone(), ignore_mask.clone()
    mask_c[cutmix_box == 1] = mask_u_w_mix[cutmix_box == 1]
    conf_c[cutmix_box == 1] = conf_u_w_mix[cutmix_box == 1]
    ignore_c[cutmix_box == 1] = ignore_mask_mix[cutmix_box == 1]
    loss_x = nn.CrossEntropyLoss(ignore_index=255)(pred_x, mask_x)
    loss_u_s = nn.CrossEntropyLoss(reduction="none")(pred_u_s, mask_c)
    loss_u_s = loss_u_s * ((conf_c >= thresh) & (ignore_c != 255))
    loss_u_s = loss_u_s.sum() / (ignore_c != 255).sum().item()
    loss = (loss_x + lambda_u * loss_u_s) / 2.0
    mask_ratio = ((conf_u_w >= thresh) & (ignore_mask != 255)).sum().item() / (
        ignore_mask != 255
    ).sum().item()
    return loss, {"loss_x": loss_x.item(), "loss_s": loss_u_s.item(), "mask_ratio": mask_ratio}


def _cfg(thresh, unsup_weight=1.0):
    return TrainConfig(
        method="fixmatch",
        batch_size=2,
        iters=1,
        conf_thresh=thresh,
        args=FixMatchArgs(unsup_weight=unsup_weight),
    )


@pytest.mark.parametrize("unsup_weight", [1.0, 0.3])
def test_step_matches_upstream_formulas(unsup_weight):
    torch.manual_seed(0)
    model = _TinyBN()
    reference = copy.deepcopy(model)
    batch = _batch()
    thresh = 0.6
    before = copy.deepcopy(batch)

    loss, logs = fixmatch_step(
        model,
        batch,
        build_labeled_criterion("ce"),
        _cfg(thresh, unsup_weight),
        torch.device("cpu"),
        0,
        1,
        None,
    )
    expected, expected_logs = _upstream_loss(reference, batch, thresh, unsup_weight)

    assert 0 < logs["mask_ratio"] < 1  # the threshold keeps some pixels and drops others
    assert set(logs) == set(METHOD.log_fields) == set(expected_logs)
    for key in expected_logs:
        assert logs[key] == pytest.approx(expected_logs[key], rel=1e-6, abs=1e-7), key
    torch.testing.assert_close(loss, expected)
    assert loss.item() == pytest.approx((logs["loss_x"] + unsup_weight * logs["loss_s"]) / 2)
    # Same gradients: pseudo-labels carry none, and the labelled and weak views share a
    # train-mode forward (BatchNorm's batch statistics), the partner's is eval-mode.
    loss.backward()
    expected.backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
    for name, buf in model.named_buffers():  # the same forwards in the same modes
        torch.testing.assert_close(buf, dict(reference.named_buffers())[name], msg=name)
    assert model.training
    flat = lambda b: [t for part in b for t in part]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(flat(batch), flat(before), strict=True))


class _Uniform(nn.Module):
    """Logits zero everywhere: every pixel's CE is log K, its confidence 1/K, its label 0."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, K, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        return self.conv(x)


def test_step_by_hand():
    batch = _batch()
    crit = build_labeled_criterion("ce")
    # Threshold 0: every non-padded pixel counts; loss_x = loss_s = log K, loss = log K.
    loss, logs = fixmatch_step(_Uniform(), batch, crit, _cfg(0.0), "cpu", 0, 1, [])
    assert loss.item() == pytest.approx(math.log(K))
    assert logs == pytest.approx({"loss_x": math.log(K), "loss_s": math.log(K), "mask_ratio": 1.0})
    # Threshold above 1/K: nothing is confident, loss_s = 0, loss = log K / 2.
    loss, logs = fixmatch_step(_Uniform(), batch, crit, _cfg(0.5, 2.0), "cpu", 0, 1, [])
    assert loss.item() == pytest.approx(math.log(K) / 2)
    assert logs["loss_s"] == 0.0 and logs["mask_ratio"] == 0.0


def test_step_refuses_loss_hooks():
    with pytest.raises(ValueError, match="no loss hooks"):
        fixmatch_step(
            _Uniform(),
            _batch(),
            build_labeled_criterion("ce"),
            _cfg(0.0),
            "cpu",
            0,
            1,
            [lambda ctx: (torch.tensor(0.0), {})],
        )


def test_registered_through_its_entry_point():
    method = get_method("fixmatch")
    # Declared in pyproject.toml's entry-point group (read from the source tree and from the
    # installed metadata alike), never by editing semivl/.
    assert method == METHOD and method.origin.endswith("fixmatch")
    assert "entry-points.semivl.methods" in method.origin or "entry point" in method.origin
    assert method.load("step") is fixmatch_step


def test_the_declaration_imports_no_torch():
    """Grids and recipes import the declaration; only training imports the step."""
    code = (
        "import sys; from semivl.recipes import load_recipe; "
        "load_recipe('fixmatch', 'pascal'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unsup_weight_must_not_be_negative(config_dir):
    from semivl.recipes import load_recipe

    FixMatchArgs(0.0).check("train.args")
    with pytest.raises(ConfigError, match=r"^x\.unsup_weight: expected >= 0, got -0\.5$"):
        FixMatchArgs(-0.5).check("x")
    path = config_dir / "recipes" / "fixmatch" / "toy.yaml"
    path.write_text(path.read_text().replace("unsup_weight: 1.0", "unsup_weight: -1"))
    with pytest.raises(ConfigError, match=r"toy\.yaml: train\.args\.unsup_weight: expected >= 0"):
        load_recipe("fixmatch", "toy", config_dir)
    path.write_text(path.read_text().replace("unsup_weight: -1", "lambda_u: 1"))
    with pytest.raises(ConfigError, match="train.args.lambda_u"):
        load_recipe("fixmatch", "toy", config_dir)


def test_fixmatch_trains_on_the_toy(toy_root, config_dir, tmp_path):
    from semivl.engine.checkpoint import load_checkpoint
    from semivl.engine.trainer import RunSpec, train
    from semivl.recipes import load_recipe

    (config_dir / "recipes" / "fixmatch" / "toy.yaml").write_text(
        TINY_UNIMATCH.replace("method: unimatch", "method: fixmatch")
    )
    splits = toy_root.parent / "splits"
    spec = RunSpec(
        recipe=load_recipe("fixmatch", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=splits / "6" / "unlabeled.txt",
        val_split=splits / "val.txt",
        out_dir=tmp_path / "run",
        seed=0,
    )
    assert spec.recipe.train.args == FixMatchArgs(1.0)  # the default, with no train.args
    summary = train(spec, device="cpu", progress=False, log_every=1)
    assert summary["total_iters"] == 9 and summary["num_labeled"] == 6
    with (tmp_path / "run" / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9
    assert {"loss_x", "loss_s", "mask_ratio"} <= set(rows[0]) and "loss_fp" not in rows[0]
    for row in rows:
        assert math.isfinite(float(row["loss"])) and float(row["loss_s"]) >= 0
        assert 0 <= float(row["mask_ratio"]) <= 1
    weights = load_checkpoint(tmp_path / "run" / "model.pt")
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
