"""UniMatch V2's network (baselines/unimatch_v2): the V2 logs' parameter counts, the output
size, complementary dropout, and the official DINOv2 files' keys."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO

import baselines.unimatch_v2.dpt as dpt
from baselines.unimatch_v2 import build_unimatch_v2, complementary_masks
from semivl.cli import main


def _millions(module: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in module.parameters()) / 1e6, 1)


@pytest.mark.parametrize(
    "size, total, encoder, decoder", [("small", 24.8, 22.1, 2.7), ("base", 97.5, 86.6, 10.9)]
)
def test_parameter_counts_match_the_v2_logs(size, total, encoder, decoder):
    """docs/upstream.md, UniMatch V2: total / encoder / decoder as V2's logs print them
    (21 classes)."""
    model = build_unimatch_v2(21, size)
    assert (_millions(model), _millions(model.backbone), _millions(model.head)) == (
        total,
        encoder,
        decoder,
    )
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()
    )  # the DPT head has no batch norm


def test_model_summary_prints_the_counts(capsys):
    assert (
        main(
            [
                "model-summary",
                "--dataset",
                "pascal",
                "--method",
                "unimatch_v2",
                "--config-dir",
                str(REPO / "config"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert round(summary["total"] / 1e6, 1) == 97.5
    assert round(summary["by_module"]["backbone"]["total"] / 1e6, 1) == 86.6
    assert round(summary["by_module"]["head"]["total"] / 1e6, 1) == 10.9


def test_logits_keep_a_multiple_of_14_and_both_views_pass_with_comp_drop():
    torch.manual_seed(0)
    model = build_unimatch_v2(5, "tiny").eval()
    assert model(torch.randn(2, 3, 70, 98)).shape == (2, 5, 70, 98)
    assert model(torch.randn(4, 3, 56, 56), comp_drop=True).shape == (4, 5, 56, 56)
    with pytest.raises(AssertionError, match="divisible by patch size"):
        model(torch.randn(1, 3, 75, 100))  # as DINOv2's own patch embedding refuses


def test_complementary_masks_sum_to_two_and_keep_half_the_samples():
    g = torch.Generator().manual_seed(3)
    b, c = 8, 64
    masks = complementary_masks(b, c, generator=g)
    m1, m2 = masks[:b], masks[b:]
    assert masks.shape == (2 * b, c)
    assert torch.equal(m1 + m2, torch.full((b, c), 2.0))
    kept = (m1 == 1).all(dim=1)
    assert int(kept.sum()) == b // 2
    dropped = m1[~kept]
    assert set(dropped.unique().tolist()) <= {0.0, 2.0}
    assert 0.3 < (dropped == 0).float().mean().item() < 0.7  # Bernoulli(0.5) channels


def test_the_same_mask_reaches_every_level_and_token(monkeypatch):
    torch.manual_seed(0)
    model = build_unimatch_v2(3, "tiny").eval()
    x = torch.randn(4, 3, 56, 56)
    clean = [t.clone() for t in model.features(x)]
    drawn = {}

    def fixed(b, channels, device="cpu", generator=None):
        drawn["mask"] = complementary_masks(b, channels, device, torch.Generator().manual_seed(1))
        return drawn["mask"]

    seen = {}
    monkeypatch.setattr(dpt, "complementary_masks", fixed)
    model.head.register_forward_pre_hook(lambda _m, args: seen.update(tokens=args[0]))
    model(x, comp_drop=True)
    mask = drawn["mask"]
    assert mask.shape == (4, 32) and len(seen["tokens"]) == 4
    for before, after in zip(clean, seen["tokens"], strict=True):
        torch.testing.assert_close(after, before * mask[:, None, :])


def test_official_dinov2_keys_load_with_the_mask_token_dropped(tmp_path):
    """An official-layout file (timm's names are DINOv2's own, plus ``mask_token``) loads into
    the encoder with nothing missing."""
    from semivl.weights import load_pretrained

    source = build_unimatch_v2(21, "small").backbone
    state = {k: v.clone() + 0.01 for k, v in source.state_dict().items()}
    state["mask_token"] = torch.zeros(1, 384)
    assert state["pos_embed"].shape == (1, 1 + 37 * 37, 384)
    assert "blocks.11.ls2.gamma" in state and "blocks.0.attn.qkv.weight" in state
    path = tmp_path / "dinov2_vits14_pretrain.pth"
    torch.save(state, path)
    target = build_unimatch_v2(21, "small")
    report = load_pretrained(target.backbone, path, drop_keys_containing=["mask_token"])
    assert not report.missing and not report.unexpected
    assert torch.equal(target.backbone.state_dict()["pos_embed"], state["pos_embed"])


def test_the_toy_recipes_train_and_evaluate_the_real_network(toy_root, config_dir, tmp_path):
    """The shipped toy recipes of unimatch_v2 and supervised_v2 train the tiny DINOv2-style
    network on CPU (EMA teacher, complementary dropout, list upsampling) and `semivl evaluate`
    scores the teacher in V2's resize-to-a-multiple mode (of the toy ViT's patch 8)."""
    from semivl.engine.trainer import RunSpec, train
    from semivl.recipes import load_recipe

    splits = toy_root.parent / "splits"
    for method in ("unimatch_v2", "supervised_v2"):
        recipe = load_recipe(method, "toy", config_dir)
        out = tmp_path / method
        summary = train(
            RunSpec(
                recipe=recipe,
                data_root=toy_root,
                labeled_split=splits / "6" / "labeled.txt",
                unlabeled_split=splits / "6" / "unlabeled.txt",
                val_split=splits / "val.txt",
                out_dir=out,
                seed=0,
            ),
            device="cpu",
            progress=False,
        )
        assert summary["total_iters"] >= 1 and 0 <= summary["best_miou"] <= 100
        assert (
            main(
                [
                    "evaluate",
                    "--dataset",
                    "toy",
                    "--split",
                    "6",
                    "--method",
                    method,
                    "--data-root",
                    str(toy_root),
                    "--splits-dir",
                    str(splits),
                    "--config-dir",
                    str(config_dir),
                    "--run-dir",
                    str(out),
                    "--seed",
                    "0",
                    "--no-progress",
                ]
            )
            == 0
        )
        metrics = json.loads((out / "metrics.json").read_text())
        assert 0 <= metrics["miou"] <= 100
    assert (tmp_path / "unimatch_v2" / "model_student.pt").is_file()
    summary = json.loads((tmp_path / "unimatch_v2" / "train_summary.json").read_text())
    assert "best_miou_student" in summary


def test_the_tiny_vit_takes_a_width_and_patch_and_the_dinov2_sizes_refuse_them():
    """The toy recipe's shape (width 64, patch 8): logits at the input's multiple of 8, DPT
    widths in DINOv2's proportions; a published size keeps DINOv2's width and patch 14."""
    model = build_unimatch_v2(5, "tiny", embed_dim=64, patch_size=8).eval()
    assert model.patch == 8 and model.backbone.embed_dim == 64
    assert [p.out_channels for p in model.head.projects] == [8, 16, 32, 64]
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 48, 64)).shape == (1, 5, 48, 64)
    with pytest.raises(ValueError, match="tiny ViT only.*vit_small_patch14_dinov2"):
        build_unimatch_v2(5, "small", patch_size=8)
    with pytest.raises(ValueError, match="embed_dim: expected an even width"):
        build_unimatch_v2(5, "tiny", embed_dim=7)
