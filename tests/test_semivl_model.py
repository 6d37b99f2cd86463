"""SemiVL's model pieces on tiny random CLIPs: value path, fine-tuning scope, decoder shapes,
text variants and parameter groups."""

import math

import pytest
import torch
import torch.nn.functional as F

from semivl.config import ModelConfig, OptimConfig, ParamKeyConfig, load_dataset_config
from semivl.engine.optim import build_param_groups
from semivl.models import build_model
from semivl.models.clip_vit import MaskClipViT, resize_pos_embed
from semivl.models.semivl_model import ModelContext, build_semivl
from semivl.models.text import ClassTexts, class_text_embeddings, max_over_concepts
from semivl.models.vlg_head import VLGHead


def tiny_clip(image_size=32, layers=3, width=32, embed_dim=24, seed=0):
    import open_clip

    torch.manual_seed(seed)
    return open_clip.CLIP(
        embed_dim=embed_dim,
        quick_gelu=True,
        vision_cfg={
            "image_size": image_size,
            "layers": layers,
            "width": width,
            "head_width": 16,
            "patch_size": 8,
        },
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    ).eval()


def _ln(x, module, eps):
    return F.layer_norm(x, module.normalized_shape, module.weight, module.bias, eps)


def _value_path_by_hand(block, x, width, eps):
    qkv = F.linear(_ln(x, block.ln_1, eps), block.attn.in_proj_weight, block.attn.in_proj_bias)
    v = F.linear(qkv[..., 2 * width :], block.attn.out_proj.weight, block.attn.out_proj.bias) + x
    hidden = F.gelu(
        F.linear(_ln(v, block.ln_2, eps), block.mlp.c_fc.weight, block.mlp.c_fc.bias)
    )  # exact GELU, not QuickGELU
    return v + F.linear(hidden, block.mlp.c_proj.weight, block.mlp.c_proj.bias)


def test_value_path_equals_a_direct_computation():
    clip = tiny_clip()
    visual = clip.visual
    vit = MaskClipViT(visual, image_size=32, out_blocks=[1, 0], dense=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = vit(x)
        eps, width = 1e-6, 32
        patches = visual.conv1(x).flatten(2).transpose(1, 2)
        cls = visual.class_embedding.expand(2, 1, -1)
        h = _ln(torch.cat((cls, patches), 1) + visual.positional_embedding, visual.ln_pre, eps)
        blocks = visual.transformer.resblocks
        expected = {}
        for i, block in enumerate(blocks):
            v = _value_path_by_hand(block, h, width, eps)
            expected[i] = v
            h = block(h)  # the normal path (attention) feeds the next block
        maps = {i: v[:, 1:].transpose(1, 2).reshape(2, width, 4, 4) for i, v in expected.items()}
        dense = _ln(expected[2], visual.ln_post, eps) @ visual.proj
        dense = dense[:, 1:].transpose(1, 2).reshape(2, -1, 4, 4)
        dense = dense / dense.norm(dim=1, keepdim=True)
    assert torch.allclose(feats.blocks[0], maps[1], atol=1e-5)  # request order kept
    assert torch.allclose(feats.blocks[1], maps[0], atol=1e-5)
    assert torch.allclose(feats.dense, dense, atol=1e-5)
    assert torch.allclose(feats.dense.norm(dim=1), torch.ones(2, 4, 4), atol=1e-5)
    # Value paths are never chained: block 1's differs from one computed from block 0's.
    chained = _value_path_by_hand(blocks[1], expected[0], width, eps)[:, 1:]
    assert not torch.allclose(chained.transpose(1, 2).reshape(2, width, 4, 4), maps[1])


def test_numerics_flags():
    from open_clip.transformer import QuickGELU

    upstream = MaskClipViT(tiny_clip().visual, 32)
    openai = MaskClipViT(tiny_clip().visual, 32, exact_gelu=False, ln_eps=1e-5)
    assert all(type(b.mlp.gelu) is torch.nn.GELU for b in upstream.resblocks)
    assert all(isinstance(b.mlp.gelu, QuickGELU) for b in openai.resblocks)
    lns = [m for m in upstream.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert len(lns) == 2 + 2 * 3 and all(m.eps == 1e-6 for m in lns)
    assert all(m.eps == 1e-5 for m in openai.modules() if isinstance(m, torch.nn.LayerNorm))
    x = torch.randn(1, 3, 32, 32)
    renorm = MaskClipViT(tiny_clip().visual, 32, renorm_clip_input=True)
    imagenet = (torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225]))
    clip_stats = (
        torch.tensor([0.48145466, 0.4578275, 0.40821073]),
        torch.tensor([0.26862954, 0.26130258, 0.27577711]),
    )
    pixels = x * imagenet[1].view(1, 3, 1, 1) + imagenet[0].view(1, 3, 1, 1)
    as_clip = (pixels - clip_stats[0].view(1, 3, 1, 1)) / clip_stats[1].view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(renorm(x).dense, upstream(as_clip).dense, atol=1e-5)


def test_position_table_resized_at_load_and_on_the_fly():
    visual = tiny_clip(image_size=32).visual
    original = visual.positional_embedding.detach().clone()
    vit = MaskClipViT(visual, image_size=64)  # 4x4 grid -> 8x8 at load
    assert vit.positional_embedding.shape == (1 + 64, 32)
    assert torch.equal(vit.positional_embedding[0], original[0])  # CLS row kept
    expected = F.interpolate(
        original[1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2),
        size=(8, 8),
        mode="bicubic",
        align_corners=False,
    )
    assert torch.allclose(
        vit.positional_embedding[1:], expected.flatten(2)[0].transpose(0, 1), atol=1e-6
    )
    assert resize_pos_embed(original, (4, 4), (4, 4)) is original
    with torch.no_grad():
        feats = MaskClipViT(tiny_clip().visual, 32, out_blocks=[0])(torch.randn(1, 3, 70, 50))
    # 70 x 50 is padded at the bottom/right to 72 x 56: a 9 x 7 token grid.
    assert feats.dense.shape == (1, 24, 9, 7) and feats.blocks[0].shape == (1, 32, 9, 7)


def test_spatial_finetuning_trains_exactly_attention_and_positions():
    vit = MaskClipViT(tiny_clip().visual, 32, out_blocks=[0])
    vit.set_finetuning("attention")
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    expected = {"positional_embedding"} | {
        f"resblocks.{i}.attn.{name}"
        for i in range(3)
        for name in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    }
    assert trainable == expected
    frozen = {n for n, p in vit.named_parameters() if not p.requires_grad}
    assert {
        "conv1.weight",
        "class_embedding",
        "ln_pre.weight",
        "ln_post.bias",
        "proj",
        "resblocks.0.ln_1.weight",
        "resblocks.2.mlp.c_fc.weight",
    } <= frozen
    vit.set_finetuning("full")
    assert all(p.requires_grad for p in vit.parameters())
    with pytest.raises(ValueError, match="finetune"):
        vit.set_finetuning("lora")


@pytest.mark.parametrize("size", [(4, 4), (4, 6)])
def test_decoder_output_shapes(size):
    head = VLGHead(
        embed_dim=24,
        channels=16,
        text_channels=8,
        num_heads=2,
        pool_size=2,
        aspp_dilations=(1, 2, 3),
        skip_in_channels=(32, 32),
        skip_channels=(8, 4),
        up_channels=(16, 8),
    )
    h, w = size
    dense = F.normalize(torch.randn(2, 24, h, w), dim=1)
    out = head(dense, torch.randn(7, 24), [torch.randn(2, 32, h, w), torch.randn(2, 32, h, w)])
    assert out.shape == (2, 7, 4 * h, 4 * w)
    # Each class map is processed with shared weights: permuting texts permutes outputs, and
    # the class transformer makes a class's map depend on the other classes.
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    text = torch.randn(7, 24)
    skips = [torch.randn(2, 32, h, w), torch.randn(2, 32, h, w)]
    with torch.no_grad():
        a, b = head(dense, text, skips), head(dense, text[perm], skips)
        c = head(dense, text[:3], skips)
    assert torch.allclose(a[:, perm], b, atol=1e-5)
    assert not torch.allclose(a[:, :3], c, atol=1e-4)


def _context(config_dir, dataset="toy", crop=64):
    return ModelContext(
        dataset=load_dataset_config(dataset, config_dir),
        crop_size=crop,
        config_dir=config_dir,
        random_init=True,
    )


@pytest.mark.parametrize("shape", [(64, 64), (48, 80)])
def test_segmentor_shapes_and_feature_perturbation(repo, shape):
    torch.manual_seed(0)
    model = build_semivl(
        5,
        _context(repo / "config"),
        clip="tiny_clip_random",
        out_blocks=[1],
        channels=16,
        text_channels=16,
        num_heads=2,
        pool_size=2,
        aspp_dilations=[1, 2, 3],
        skip_channels=[8, 4],
        up_channels=[16, 8],
        conv_encoder=True,
        decoder_text="concept_max",
    )
    x = torch.randn(2, 3, *shape)
    model.eval()
    with torch.no_grad():
        out = model(x)
        clean, perturbed = model(x, need_fp=True, fp_rate=0.5)
    assert out.shape == clean.shape == perturbed.shape == (2, 5, *shape)
    assert torch.allclose(out, clean, atol=1e-5) and not torch.allclose(clean, perturbed)
    # concept_max: 15 toy concepts in the decoder, max-reduced to 5 classes.
    assert model.text_embeddings.shape[0] == 15 and model.concept_class.max() == 4


def test_double_interpolation_of_the_head_output(repo):
    torch.manual_seed(0)
    model = build_semivl(
        5,
        _context(repo / "config"),
        clip="tiny_clip_random",
        out_blocks=[1, 0],
        channels=16,
        text_channels=16,
        num_heads=2,
        pool_size=2,
        aspp_dilations=[1, 2, 3],
        skip_channels=[8, 4],
        up_channels=[16, 8],
    ).eval()
    x = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        feats = model.backbone(x)
        raw = model.decode_head(feats.dense, model.text_embeddings, feats.blocks)
        crop = F.interpolate(raw, size=(64, 64), mode="bilinear", align_corners=False)
        expected = F.interpolate(crop, size=(48, 80), mode="bilinear", align_corners=False)
        assert torch.allclose(model(x), expected, atol=1e-6)


class _TableClip(torch.nn.Module):
    """Stands in for CLIP: a fixed vector per prompt."""

    context_length = 16

    def __init__(self, table):
        super().__init__()
        self.table = table


def test_text_variants_on_hand_examples(monkeypatch):
    from semivl.models import text as text_module

    table = {
        "a photo of a cat": [1.0, 0.0],
        "a photo of a dog": [0.0, 1.0],
        "a photo of a kitten": [3.0, 0.0],
        "a photo of a tabby": [0.0, 1.0],
        "a photo of a puppy": [0.0, 2.0],
    }
    monkeypatch.setattr(
        text_module,
        "encode_texts",
        lambda clip, texts: torch.tensor([clip.table[t] for t in texts]),
    )
    texts = ClassTexts(
        template="a photo of a {}",
        names=["cat", "dog"],
        definitions={"cat": ["kitten", "tabby"], "dog": ["puppy"]},
        definitions_source="project",
    )
    emb = class_text_embeddings(_TableClip(table), texts)
    assert emb["names"].dtype == torch.float16
    assert torch.equal(emb["concept_class"], torch.tensor([0, 0, 1]))
    assert torch.allclose(emb["concepts"].float(), torch.tensor([[1.0, 0], [0, 1], [0, 1]]))
    # Mean of the *un-normalised* concepts (3, 0) and (0, 1) is (1.5, 0.5), then normalised;
    # averaging the normalised ones would give (1, 1) / sqrt(2).
    expected = torch.tensor([1.5, 0.5]) / math.hypot(1.5, 0.5)
    assert torch.allclose(emb["concept_avg"][0].float(), expected, atol=1e-3)
    scores = torch.tensor([[[0.1], [0.7], [0.3]]])  # [B=1, M=3 concepts, 1 pixel]
    assert torch.equal(
        max_over_concepts(scores, emb["concept_class"], 2), torch.tensor([[[0.7], [0.3]]])
    )
    assert max_over_concepts(scores, None, 3) is scores


def test_each_parameter_gets_the_upstream_lr_and_decay(repo):
    model = build_semivl(
        5,
        _context(repo / "config"),
        clip="tiny_clip_random",
        out_blocks=[1],
        conv_encoder=True,
        channels=16,
        text_channels=16,
        num_heads=2,
        pool_size=2,
        skip_channels=[8, 4],
        up_channels=[16, 8],
    )
    keys = {
        "backbone": ParamKeyConfig(lr_mult=0.01),
        "text_encoder": ParamKeyConfig(0.0),
        "conv_encoder": ParamKeyConfig(lr_mult=0.1),
        "head": ParamKeyConfig(lr_mult=10.0),
        "norm": ParamKeyConfig(decay_mult=0.0),
        "ln": ParamKeyConfig(decay_mult=0.0),
    }
    cfg = OptimConfig(name="adamw", lr=1e-4, weight_decay=0.01, custom_keys=keys)
    got = {}
    for group in build_param_groups(model, cfg):
        for name in group["names"]:
            got[name] = (group["lr"], group["weight_decay"])
    assert got["backbone.resblocks.0.attn.in_proj_weight"] == pytest.approx((1e-6, 0.01))
    assert got["backbone.positional_embedding"] == pytest.approx((1e-6, 0.01))
    # 'head' is tried before 'norm': the decoder's GroupNorm and biases keep weight decay.
    assert got["decode_head.aspp.project.1.weight"] == pytest.approx((1e-3, 0.01))
    assert got["decode_head.class_layers.0.layer.norm1.bias"] == pytest.approx((1e-3, 0.01))
    assert got["conv_encoder.stem.1.weight"] == pytest.approx((1e-5, 0.01))
    assert "backbone.resblocks.0.ln_1.weight" not in got  # frozen: no group at all
    assert not any(name.startswith("backbone.resblocks.0.mlp") for name in got)
    assert all(n.startswith(("backbone.", "decode_head.", "conv_encoder.")) for n in got)


def test_registry_builds_semivl_and_checks_args(repo):
    context = _context(repo / "config")
    cfg = ModelConfig(
        "semivl",
        {
            "clip": "tiny_clip_random",
            "out_blocks": [1, 0],
            "pool_size": 2,
            "aspp_dilations": [1, 2, 3],
        },
    )
    assert build_model(cfg, 5, context).num_classes == 5
    from semivl.config import ConfigError

    with pytest.raises(ConfigError, match="model.args.context: unknown argument"):
        build_model(ModelConfig("semivl", {"clip": "x", "context": 1}), 5, context)
    with pytest.raises(ValueError, match="needs a ModelContext"):
        build_model(cfg, 5)
