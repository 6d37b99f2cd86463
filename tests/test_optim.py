import pytest
import torch
from torch import nn

from semivl.config import OptimConfig, ParamKeyConfig
from semivl.engine.optim import build_optimizer, match_custom_key, poly_lr, set_poly_lr


def test_mmcv_key_order_longest_first():
    keys = ["backbone", "head", "norm", "ln", "conv_encoder", "text_encoder"]
    assert match_custom_key("decode_head.norm.weight", keys) == "head"
    assert match_custom_key("backbone.ln_1.weight", keys) == "backbone"
    assert match_custom_key("conv_encoder.backbone.bn.weight", keys) == "conv_encoder"
    assert match_custom_key("classifier.weight", keys) is None


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_groups_and_poly_schedule():
    cfg = OptimConfig(
        name="sgd",
        lr=0.01,
        weight_decay=1e-4,
        default_lr_mult=10.0,
        custom_keys={"backbone": ParamKeyConfig(lr_mult=1.0)},
    )
    opt = build_optimizer(Net(), cfg)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([0.01, 0.1])
    assert sum(len(g["params"]) for g in opt.param_groups) == 4  # frozen params left out
    set_poly_lr(opt, cfg, 50, 100)
    expected = 0.01 * 0.5**0.9
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([expected, 10 * expected])
    assert poly_lr(1.0, 0, 10, 0.9) == 1.0 and poly_lr(1.0, 10, 10, 0.9) == 0.0


def test_adamw_decay_mult():
    cfg = OptimConfig(
        name="adamw",
        lr=1e-4,
        weight_decay=0.01,
        custom_keys={"head": ParamKeyConfig(lr_mult=10.0, decay_mult=0.0)},
    )
    opt = build_optimizer(Net(), cfg)
    assert isinstance(opt, torch.optim.AdamW)
    by_lr = {round(g["lr"], 8): g["weight_decay"] for g in opt.param_groups}
    assert by_lr == {1e-4: 0.01, 1e-3: 0.0}
