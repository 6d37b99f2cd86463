"""SemiVL's component ablation (docs/upstream.md, SemiVL component ablation, rows 2-5): the
ViT + DeepLabV3+ model, its recipes, the recipe merge rule for a replaced model, the ImageNet
ViT checkpoint, and a short training run of every toy row."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

from semivl.config import ConfigError, ModelConfig, load_dataset_config
from semivl.engine.optim import build_param_groups
from semivl.models import build_model, load_backbone_weights
from semivl.models.clip_config import needs_clip, needs_text, recipe_clip
from semivl.models.clip_vit import resize_pos_embed
from semivl.models.semivl_model import ModelContext
from semivl.models.vit_deeplab import DLV3PHead, TimmViT, ViTDeepLab, build_timm_vit
from semivl.recipes import load_recipe
from semivl.weights import load_pretrained

ROWS = ["unimatch_vit", "unimatch_clip_init", "unimatch_clip_sft", "semivl_no_guidance"]
TINY_TIMM = {"patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2}


def _context(config_dir, crop=32, dataset="toy"):
    return ModelContext(
        dataset=load_dataset_config(dataset, config_dir),
        crop_size=crop,
        config_dir=config_dir,
        random_init=True,
    )


def _tiny(repo, backbone="timm", finetune="full", crop=32, **extra):
    args = {
        "backbone": backbone,
        "finetune": finetune,
        "dilations": [1, 2, 3],
        "aspp_channels": 8,
        "low_level_channels": 4,
        "fuse_channels": 16,
        **extra,
    }
    if backbone == "timm":
        args.update(
            timm_model="vit_tiny_patch16_224",
            timm_args=TINY_TIMM,
            feature_blocks=[1, 2],
            drop_path_rate=0.1,
        )
    else:
        args.update(clip="tiny_clip_random", feature_blocks=[1, 4])
    torch.manual_seed(0)
    return build_model(ModelConfig("vit_deeplabv3plus", args), 5, _context(repo / "config", crop))


def _conv_params(cin, cout, k, bias=False):
    return cin * cout * k * k + (cout if bias else 0)


def test_dlv3p_head_structure_and_parameter_count():
    head = DLV3PHead(768, 768, 21)  # upstream row 2: block 11 (ASPP) and block 4 (low level)
    aspp, low, fuse = 96, 48, 256  # ASPP width = in / 8
    bn = 2  # weight and bias per channel
    expected = (
        _conv_params(768, aspp, 1)
        + 3 * _conv_params(768, aspp, 3)
        + _conv_params(768, aspp, 1)
        + _conv_params(5 * aspp, aspp, 1)
        + 6 * bn * aspp
        + _conv_params(768, low, 1)
        + bn * low
        + _conv_params(low + aspp, fuse, 3)
        + _conv_params(fuse, fuse, 3)
        + 2 * bn * fuse
        + _conv_params(fuse, 21, 1, bias=True)
    )
    assert sum(p.numel() for p in head.parameters()) == expected
    assert [type(m) for m in head.c1_proj] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert [m.dilation[0] for m in (b[0] for b in head.aspp.branches[1:4])] == [6, 12, 18]
    assert head.fuse[0][0].in_channels == low + aspp and head.classifier.bias is not None
    assert all(
        c.bias is None
        for c in head.modules()
        if isinstance(c, torch.nn.Conv2d) and c is not head.classifier
    )
    assert DLV3PHead(512, 768, 21).aspp.project[0].out_channels == 64  # the CLIP embedding
    head.eval()
    with torch.no_grad():
        out = head(torch.randn(2, 768, 8, 8), torch.randn(2, 768, 4, 4))
    assert out.shape == (2, 21, 8, 8)  # at the low-level feature's resolution


@pytest.mark.parametrize("backbone", ["timm", "clip"])
def test_feature_perturbation_contract(repo, backbone):
    model = _tiny(repo, backbone)
    assert isinstance(model, ViTDeepLab)
    seen = []
    model.decode_head.register_forward_hook(lambda _m, args, _out: seen.append(args))
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        clean, perturbed = model(x, need_fp=True, fp_rate=0.5)
        same, unperturbed = model(x, need_fp=True, fp_rate=0.0)
        odd = model(torch.randn(1, 3, 40, 56))
    assert plain.shape == clean.shape == perturbed.shape == (2, 5, 32, 32)
    assert odd.shape == (1, 5, 40, 56)  # logits at the input size
    assert torch.allclose(plain, clean, atol=1e-5) and not torch.allclose(clean, perturbed)
    assert torch.allclose(same, unperturbed, atol=1e-5)
    # The head read both features twice: clean, then channel-dropped (zero or scaled x2).
    for feat in seen[1]:
        a, b = feat.chunk(2)
        dropped = b.abs().sum(dim=(2, 3)) == 0
        assert dropped.any() and (~dropped).any()
        assert torch.allclose(b[~dropped], 2 * a[~dropped], atol=1e-5)
    # The head's 1/8-resolution logits are resized to the crop, then to the input.
    with torch.no_grad():
        low, deep = model.backbone(x)
        raw = model.decode_head(low, deep)
        assert raw.shape[-2:] == (4, 4)
        y = torch.randn(1, 3, 24, 40)
        low, deep = model.backbone(y)
        crop = F.interpolate(
            model.decode_head(low, deep), size=(32, 32), mode="bilinear", align_corners=False
        )
        expected = F.interpolate(crop, size=(24, 40), mode="bilinear", align_corners=False)
        assert torch.allclose(model(y), expected, atol=1e-6)


def test_timm_features_are_normed_block_outputs_and_drop_path_trains(repo):
    model = _tiny(repo, "timm")
    vit = model.backbone
    x = torch.randn(2, 3, 32, 32)
    vit.eval()
    with torch.no_grad():
        tokens = torch.cat((vit.cls_token.expand(2, -1, -1), vit.patch_embed(x)), 1)
        h = tokens + vit.pos_embed
        outs = []
        for block in vit.blocks:
            h = block(h)
            outs.append(vit.norm(h)[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4))
        low, deep = vit(x)
        assert torch.allclose(low, outs[1], atol=1e-5) and torch.allclose(deep, outs[2], atol=1e-5)
        # Another input size is resized to the crop first (upstream at evaluation).
        y = torch.randn(1, 3, 40, 24)
        assert torch.allclose(
            vit(y)[1], vit(F.interpolate(y, size=(32, 32), mode="bilinear", align_corners=False))[1]
        )
    drop_paths = [m for m in vit.modules() if type(m).__name__ == "DropPath"]
    assert drop_paths and max(m.drop_prob for m in drop_paths) == pytest.approx(0.1)
    vit.train()
    batch = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(vit(batch)[1], vit(batch)[1])  # stochastic depth is active


def test_parameter_names_give_upstream_lr_multipliers(repo):
    optim = load_recipe("unimatch_vit", "pascal", repo / "config").optim
    for backbone in ("timm", "clip"):
        model = _tiny(repo, backbone)
        groups = build_param_groups(model, optim)
        by_name = {n: (g["lr_mult"], g["weight_decay"]) for g in groups for n in g["names"]}
        assert set(by_name) == {n for n, _ in model.named_parameters()}
        for name, (mult, decay) in by_name.items():
            # first matching key wins: backbone norms keep decay, as with mmcv upstream
            expected = 0.001 if name.startswith("backbone.") else 10.0
            assert (mult, decay) == (expected, 0.01), name
        assert {n.split(".")[0] for n in by_name} == {"backbone", "decode_head"}


def test_finetuning_scopes(repo):
    sft = _tiny(repo, "clip", finetune="attention")
    trainable = {n for n, p in sft.backbone.named_parameters() if p.requires_grad}
    assert trainable and all(".attn." in n or n == "vit.positional_embedding" for n in trainable)
    assert "vit.positional_embedding" in trainable
    assert sum(".attn.in_proj_weight" in n for n in trainable) == 4  # every block
    assert all(p.requires_grad for p in sft.decode_head.parameters())
    full = _tiny(repo, "clip", finetune="full")
    assert all(p.requires_grad for p in full.parameters())
    timm_sft = _tiny(repo, "timm", finetune="attention")
    trainable = {n for n, p in timm_sft.backbone.named_parameters() if p.requires_grad}
    assert "pos_embed" in trainable and "blocks.0.attn.qkv.weight" in trainable
    assert "blocks.0.mlp.fc1.weight" not in trainable and "cls_token" not in trainable


def test_builder_rejects_mixed_backbone_args(repo):
    config = ModelConfig("vit_deeplabv3plus", {"backbone": "timm", "clip": "tiny_clip_random"})
    with pytest.raises(ConfigError, match="clip: null"):
        build_model(config, 5, _context(repo / "config"))
    config = ModelConfig(
        "vit_deeplabv3plus", {"backbone": "clip", "clip": "tiny_clip_random", "drop_path_rate": 0.1}
    )
    with pytest.raises(ConfigError, match="backbone timm only"):
        build_model(config, 5, _context(repo / "config"))
    config = ModelConfig(
        "vit_deeplabv3plus",
        {"backbone": "clip", "clip": "tiny_clip_random", "feature_blocks": [1, 5]},
    )
    with pytest.raises(ConfigError, match="outside"):
        build_model(config, 5, _context(repo / "config"))


def _differences(a, b, prefix=""):
    """Dotted keys where two plain-data trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = set()
        for key in set(a) | set(b):
            out |= _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return set() if a == b else {prefix.rstrip(".")}


@pytest.mark.parametrize("dataset", ["pascal", "toy"])
def test_each_row_differs_from_its_base_only_in_what_it_states(repo, dataset):
    config = repo / "config"
    r = {
        m: load_recipe(m, dataset, config).to_dict()
        for m in ["semivl", "semivl_no_definitions", *ROWS]
    }
    for row in r.values():
        row.pop("method")
    # On the toy every row's learning rate and backbone multiplier come from its own sweep
    # (docs/sweeps/toy.md, tests/test_sweep.py): the same tuning budget, not the same values.
    tuned = {"optim.lr", "optim.custom_keys.backbone.lr_mult"} if dataset == "toy" else set()

    def differences(a: str, b: str) -> set[str]:
        return _differences(r[a], r[b]) - tuned

    assert differences("semivl_no_guidance", "semivl_no_definitions") == {"guidance"}
    assert r["semivl_no_guidance"]["guidance"] is None
    sft = differences("unimatch_clip_sft", "semivl_no_guidance")
    assert {k for k in sft if not k.startswith(("model.", "resources."))} == {"train.method"}
    assert (
        differences("unimatch_clip_init", "unimatch_clip_sft")
        == {
            "model.args.finetune",
            "optim.custom_keys.backbone.lr_mult",
        }
        - tuned
    )
    vit = differences("unimatch_vit", "unimatch_clip_init")
    assert all(k.startswith("model.") for k in vit)
    assert {"model.args.backbone", "model.args.clip", "model.args.feature_blocks"} <= vit


def test_rows_follow_the_spec(repo):
    config = repo / "config"
    semivl = load_recipe("semivl", "pascal", config)
    # backbone lr mult, finetune, train.method (docs/upstream.md, SemiVL component ablation)
    expect = {
        "unimatch_vit": (0.001, "full", "unimatch"),
        "unimatch_clip_init": (0.001, "full", "unimatch"),
        "unimatch_clip_sft": (0.01, "attention", "unimatch"),
        "semivl_no_guidance": (0.01, "attention", "semivl"),
    }
    for method, (bb, finetune, algorithm) in expect.items():
        r = load_recipe(method, "pascal", config)
        keys = r.optim.custom_keys
        assert (r.optim.name, r.optim.lr, keys["head"].lr_mult) == ("adamw", 1e-4, 10.0)
        assert (keys["backbone"].lr_mult, r.model.args["finetune"], r.train.method) == (
            bb,
            finetune,
            algorithm,
        ), method
        assert r.guidance is None and r.train.conf_thresh == 0.95
        assert (r.augment, r.eval, r.train.epochs) == (semivl.augment, semivl.eval, 80)
    vit = load_recipe("unimatch_vit", "pascal", config)
    assert vit.model.args["timm_model"] == "vit_base_patch16_224"
    assert vit.model.args["feature_blocks"] == [4, 11]
    assert vit.model.args["drop_path_rate"] == 0.1
    assert vit.model.pretrained == "vit_base_patch16_224_in1k"
    sources = yaml.safe_load((config / "weights.yaml").read_text())
    assert sources[vit.model.pretrained]["urls"] == [
        "https://huggingface.co/timm/vit_base_patch16_224.augreg_in21k_ft_in1k/resolve/main/"
        "model.safetensors"
    ]
    clip = load_recipe("unimatch_clip_init", "pascal", config)
    assert clip.model.args["feature_blocks"] == [4, 12] and clip.model.pretrained is None
    # What each row reads: CLIP weights for rows 3-5, class texts only for SemiVL's decoder.
    assert [needs_clip(load_recipe(m, "pascal", config)) for m in ROWS] == [False, True, True, True]
    assert [needs_text(load_recipe(m, "pascal", config)) for m in ROWS] == [
        False,
        False,
        False,
        True,
    ]
    assert recipe_clip(clip) == "clip_vit_b16_openai" and needs_text(semivl)
    toy = load_recipe("unimatch_vit", "toy", config)
    assert recipe_clip(toy) is None and toy.model.pretrained is None
    # The toy rows train as every toy method does (crop 48, batch 4, 2 epochs).
    for method in ROWS:
        r = load_recipe(method, "toy", config)
        assert (r.augment.crop_size, r.train.batch_size, r.train.epochs) == (48, 4, 2), method
    assert recipe_clip(load_recipe("unimatch_clip_sft", "toy", config)) == "tiny_clip_toy"


def test_timm_row_model_matches_upstream_shapes(repo):
    """Row 2 on VOC: ViT-B/16 at crop 512 (32x32 tokens), ASPP 96 channels, 86M in the ViT."""
    recipe = load_recipe("unimatch_vit", "pascal", repo / "config")
    model = build_model(recipe.model, 21, _context(repo / "config", 512, "pascal"))
    assert model.backbone.pos_embed.shape == (1, 1 + 32 * 32, 768)
    assert model.decode_head.aspp.project[0].out_channels == 96
    assert sum(p.numel() for p in model.backbone.parameters()) == 85_798_656 + 768 * (1025 - 197)
    assert all(p.requires_grad for p in model.parameters())


def test_a_replaced_model_does_not_inherit_the_base_arguments(config_dir):
    folder = config_dir / "recipes" / "semivl_other"
    folder.mkdir()
    base = folder / "base.yaml"
    base.write_text(
        yaml.safe_dump(
            {
                **yaml.safe_load((config_dir / "recipes" / "unimatch" / "pascal.yaml").read_text()),
                "train": {
                    **yaml.safe_load((config_dir / "recipes" / "semivl" / "toy.yaml").read_text())[
                        "train"
                    ]
                },
            }
        )
    )
    (folder / "toy.yaml").write_text(
        "base: ../semivl/toy.yaml\nmodel:\n  name: tiny_fcn\n  args: {width: 8}\nguidance: null\n"
    )
    recipe = load_recipe("semivl_other", "toy", config_dir)
    assert recipe.model == ModelConfig("tiny_fcn", {"width": 8})  # no clip, out_blocks, ...
    assert recipe.guidance is None  # `null` removes the base's section
    # The same name keeps merging the arguments key by key.
    (folder / "toy.yaml").write_text("base: ../semivl/toy.yaml\nmodel: {args: {channels: 8}}\n")
    same = load_recipe("semivl_other", "toy", config_dir)
    assert same.model.args["channels"] == 8 and same.model.args["clip"] == "tiny_clip_random"
    # ... and a replaced model drops the base's pretrained weights too.
    (folder / "toy.yaml").write_text("base: base.yaml\nmodel:\n  name: tiny_fcn\n")
    replaced = load_recipe("semivl_other", "toy", config_dir)
    assert replaced.model == ModelConfig("tiny_fcn") and replaced.model.pretrained is None
    assert load_recipe("unimatch", "pascal", config_dir).model.pretrained == "resnet101"


def _imagenet_vit(seed=0):
    """A small timm ViT at 224-style proportions (patch 8 on 32 pixels: a 4x4 table) with an
    ImageNet-like 10-way classifier."""
    torch.manual_seed(seed)
    import timm

    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=10, img_size=32, **TINY_TIMM
    )


def test_imagenet_safetensors_checkpoint_loads_with_resized_positions(tmp_path, repo):
    from safetensors.torch import save_file

    source = _imagenet_vit()
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path / "vit.safetensors"
    save_file(state, str(path))
    torch.manual_seed(1)
    target = TimmViT(build_timm_vit("vit_tiny_patch16_224", 48, 0.1, TINY_TIMM), 48, [1, 2])
    assert set(target.state_dict()) == {k for k in state if not k.startswith("head.")}
    report = load_pretrained(target, path)
    assert report.missing == [] and report.unexpected == ["head.bias", "head.weight"]
    own = target.state_dict()
    for key, value in state.items():
        if key.startswith("head.") or key == "pos_embed":
            continue
        assert torch.equal(own[key], value), key
    # 4x4 -> 6x6: bicubic, align_corners=False, no antialiasing, the class position kept.
    expected = resize_pos_embed(state["pos_embed"][0], (4, 4), (6, 6))[None]
    assert own["pos_embed"].shape == (1, 37, 32)
    assert torch.allclose(own["pos_embed"], expected)
    assert torch.equal(own["pos_embed"][0, 0], state["pos_embed"][0, 0])
    grid = state["pos_embed"][0, 1:].T.reshape(1, 32, 4, 4)
    by_hand = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False)
    assert torch.allclose(own["pos_embed"][0, 1:], by_hand.reshape(32, 36).T, atol=1e-6)

    # Through the registry, as training loads `model.pretrained` (config/weights.yaml).
    config = tmp_path / "config"
    config.mkdir()
    (config / "weights.yaml").write_text(
        yaml.safe_dump(
            {"tiny_vit_in1k": {"file": "vit.safetensors", "urls": ["https://example.invalid/x"]}}
        )
    )
    model = _tiny(repo, "timm", crop=48)
    report = load_backbone_weights(model, "tiny_vit_in1k", tmp_path, config)
    assert report.missing == [] and report.loaded == len(state) - 2
    assert torch.equal(model.backbone.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])


def test_a_torch_checkpoint_still_loads(tmp_path):
    source = _imagenet_vit()
    path = tmp_path / "vit.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    target = TimmViT(build_timm_vit("vit_tiny_patch16_224", 32, 0.0, TINY_TIMM), 32, [2])
    report = load_pretrained(target, path)
    assert report.missing == [] and torch.equal(target.pos_embed, source.pos_embed)
    # Blocks after the deepest feature are left out of the model (no gradient would reach
    # them); their weights in the file are unexpected.
    shallow = TimmViT(build_timm_vit("vit_tiny_patch16_224", 32, 0.0, TINY_TIMM), 32, [0])
    report = load_pretrained(shallow, path)
    assert len(shallow.blocks) == 1 and report.missing == []
    assert {k.split(".")[1] for k in report.unexpected if k.startswith("blocks.")} == {"1", "2"}


def test_the_imagenet_vit_entry_is_fetched_and_pinned(tmp_path, repo):
    """`semivl weights fetch` takes row 2's weights like UniMatch's (here from a local
    server): the first file is pinned, then loaded from the safetensors file."""
    import hashlib
    import shutil

    from http_fixture import FileServer
    from safetensors.torch import save

    from semivl.weights import fetch, read_lock

    blob = save({k: v.contiguous() for k, v in _imagenet_vit().state_dict().items()})
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(repo / "config" / "weights.yaml", config / "weights.yaml")
    sources = yaml.safe_load((config / "weights.yaml").read_text())
    entry = sources["vit_base_patch16_224_in1k"]
    assert entry["file"].endswith(".safetensors")
    with FileServer({"model.safetensors": blob}) as server:
        entry["urls"] = [f"{server.url}/model.safetensors"]
        (config / "weights.yaml").write_text(yaml.safe_dump(sources))
        path = fetch(
            "vit_base_patch16_224_in1k", config, tmp_path / "cache", progress=False, retries=1
        )
    assert path.name == entry["file"] and path.read_bytes() == blob
    assert read_lock(config) == {"vit_base_patch16_224_in1k": hashlib.sha256(blob).hexdigest()}
    model = _tiny(repo, "timm", crop=48)
    report = load_backbone_weights(model, "vit_base_patch16_224_in1k", tmp_path / "cache", config)
    assert report.missing == [] and report.unexpected == ["head.bias", "head.weight"]


def test_every_toy_row_trains(toy_root, config_dir, tmp_path):
    """One epoch (the schedule rounds the recipe's iterations up to whole epochs) and a
    validation of each row on the tiny random CLIP (rows 3-5 read it through the model
    context, row 5 also the class texts); row 5 logs without guidance."""
    from semivl.cli import main
    from semivl.engine.trainer import RunSpec, train

    recipes = config_dir / "recipes"
    semivl = recipes / "semivl" / "toy.yaml"
    semivl.write_text(
        semivl.read_text().replace("iters: 6", "iters: 2").replace("batch_size: 2", "batch_size: 3")
    )
    sft = recipes / "unimatch_clip_sft" / "toy.yaml"
    sft.write_text(sft.read_text().replace("clip: tiny_clip_toy", "clip: tiny_clip_random"))
    clip_dir, text_dir = tmp_path / "clip", tmp_path / "text"
    assert (
        main(
            [
                "clip",
                "fetch",
                "--name",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--out-dir",
                str(clip_dir),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "text",
                "--dataset",
                "toy",
                "--clip",
                "tiny_clip_random",
                "--config-dir",
                str(config_dir),
                "--clip-dir",
                str(clip_dir),
                "--out-dir",
                str(text_dir),
            ]
        )
        == 0
    )
    splits = toy_root.parent / "splits"
    for method in ROWS:
        recipe = load_recipe(method, "toy", config_dir)
        assert recipe.augment.crop_size == 32 and recipe.train.batch_size == 3
        out = tmp_path / method
        spec = RunSpec(
            recipe=recipe,
            data_root=toy_root,
            labeled_split=splits / "6" / "labeled.txt",
            unlabeled_split=splits / "6" / "unlabeled.txt",
            val_split=splits / "val.txt",
            out_dir=out,
            seed=0,
            config_dir=config_dir,
            clip_dir=clip_dir,
            text_dir=text_dir,
        )
        summary = train(spec, device="cpu", progress=False, log_every=1)
        assert summary["final_iter"] == 6 and math.isfinite(summary["final_miou"]), method
        with (out / "log.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 6 and all(math.isfinite(float(r["loss_fp"])) for r in rows)
        if method == "semivl_no_guidance":
            assert rows[0]["loss_guid"] == ""  # the column of method semivl, left empty
        assert (out / "model.pt").is_file() and not (out / "weights_report.json").exists()
