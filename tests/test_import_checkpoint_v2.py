"""`semivl import-checkpoint --method unimatch_v2`: UniMatch V2's best.pth ({'model',
'model_ema', ...}) read into this project's DINOv2 + DPT network.

The upstream names below are written out from LiheYoung/UniMatch-V2's modules
(model/backbone/dinov2.py with block_chunks=0, model/semseg/dpt.py, model/util/blocks.py),
not derived from the map under test.
"""

from __future__ import annotations

import json

import torch
from test_import_checkpoint import _args, _evaluate, _model, _refused

from semivl.cli import main
from semivl.engine import upstream_checkpoint as U


def upstream_v2_names(depth: int) -> set[str]:
    """Every key of upstream's ``DPT(...).state_dict()`` for a DINOv2 of ``depth`` blocks."""
    wb = ("weight", "bias")
    names = {
        "backbone.cls_token",
        "backbone.pos_embed",
        "backbone.mask_token",
        *(f"backbone.patch_embed.proj.{p}" for p in wb),
        *(f"backbone.norm.{p}" for p in wb),
    }
    for n in range(depth):
        block = f"backbone.blocks.{n}."
        names |= {
            f"{block}{m}.{p}"
            for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
            for p in wb
        }
        names |= {f"{block}ls1.gamma", f"{block}ls2.gamma"}
    names |= {f"head.projects.{i}.{p}" for i in range(4) for p in wb}
    names |= {f"head.resize_layers.{i}.{p}" for i in (0, 1, 3) for p in wb}  # 2: Identity
    names |= {f"head.scratch.layer{k}_rn.weight" for k in range(1, 5)}  # bias=False
    for k in range(1, 5):
        fusion = f"head.scratch.refinenet{k}."
        names |= {f"{fusion}out_conv.{p}" for p in wb}
        names |= {f"{fusion}resConfUnit{u}.conv{c}.{p}" for u in (1, 2) for c in (1, 2) for p in wb}
    names |= {f"head.scratch.output_conv.{i}.{p}" for i in (0, 2) for p in wb}
    return names


def test_v2_map_covers_the_dinov2_base_model_both_ways():
    """All 237 tensors of upstream's DINOv2-B DPT (175 encoder, 62 head) have a place here,
    the mask token apart, and come back unchanged."""
    from baselines.unimatch_v2 import build_unimatch_v2

    state = build_unimatch_v2(21, "base").state_dict()
    names = upstream_v2_names(12)
    assert len(names) == 237
    up = U.to_upstream(state, "unimatch_v2")
    assert set(up) == names - {"backbone.mask_token"}
    assert up["backbone.pos_embed"].shape == (1, 1 + 37 * 37, 768)
    file = {**up, "backbone.mask_token": torch.zeros(1, 768)}
    back = U.to_project(file, "unimatch_v2")
    assert back.unmapped == [] and back.dropped == ["backbone.mask_token"]
    assert set(back.state) == set(state)
    assert all(torch.equal(back.state[k], state[k]) for k in state)
    assert (
        back.origin["head.fusion.3.res1.conv2.bias"]
        == "head.scratch.refinenet4.resConfUnit1.conv2.bias"
    )
    assert back.origin["head.scratch.0.weight"] == "head.scratch.layer1_rn.weight"
    assert back.origin["head.output.2.weight"] == "head.scratch.output_conv.2.weight"


def _v2_file(config_dir, student_seed: int = 1, teacher_seed: int = 0) -> tuple[dict, dict]:
    """An upstream V2 checkpoint of the toy recipe's network: student and EMA teacher differ."""
    student, teacher = (
        _model("unimatch_v2", config_dir, seed=s) for s in (student_seed, teacher_seed)
    )
    width = student["backbone.cls_token"].shape[-1]
    mask = {"module.backbone.mask_token": torch.zeros(1, width)}

    def ddp(state):
        return {
            **{f"module.{k}": v for k, v in U.to_upstream(state, "unimatch_v2").items()},
            **mask,
        }

    file = {
        "model": ddp(student),
        "model_ema": ddp(teacher),
        "optimizer": {},
        "epoch": 59,
        "previous_best": 70.5,
        "previous_best_ema": 71.25,
        "best_epoch": 59,
        "best_epoch_ema": 58,
    }
    return file, {"student": student, "teacher": teacher}


def test_v2_import_reads_the_ema_teacher_and_evaluates_like_it(
    toy_root, config_dir, tmp_path, capsys
):
    file, states = _v2_file(config_dir)
    assert set(file["model"]) == {f"module.{k}" for k in upstream_v2_names(4)}
    best = tmp_path / "best.pth"
    torch.save(file, best)
    run = tmp_path / "run"
    assert main([*_args("unimatch_v2", config_dir, run), str(best)]) == 0
    out = capsys.readouterr().out
    teacher = states["teacher"]
    assert "read 'model_ema' of epoch 59" in out
    assert f"mapped {len(teacher)} " in out and "dropped 1 (backbone.*: DINOv2's mask token" in out
    imported = torch.load(run / "model.pt", weights_only=True)
    assert imported.keys() == teacher.keys()
    assert all(torch.equal(imported[k], teacher[k]) for k in teacher)
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["weights_key"] == "model_ema"

    original = tmp_path / "original"
    original.mkdir()
    for name in ("config.yaml", "train_summary.json", "provenance.json"):
        (original / name).write_bytes((run / name).read_bytes())
    torch.save(teacher, original / "model.pt")
    a = _evaluate(run, "unimatch_v2", toy_root, config_dir)
    b = _evaluate(original, "unimatch_v2", toy_root, config_dir)
    assert a["miou"] == b["miou"] and a["per_class_iou"] == b["per_class_iou"]

    student_run = tmp_path / "student"
    assert (
        main([*_args("unimatch_v2", config_dir, student_run), "--weights-key", "model", str(best)])
        == 0
    )
    assert "read 'model' of epoch 59" in capsys.readouterr().out
    imported = torch.load(student_run / "model.pt", weights_only=True)
    assert all(torch.equal(imported[k], states["student"][k]) for k in teacher)


def test_v2_refusals_name_the_layout_and_the_key(config_dir, tmp_path, capsys):
    file, _ = _v2_file(config_dir)
    v2 = tmp_path / "v2.pth"
    torch.save(file, v2)
    out = tmp_path / "out"
    err = _refused([*_args("unimatch", config_dir, out), str(v2)], out, capsys)
    assert "UniMatch V2 DINOv2 + DPT" in err and "pass --method unimatch_v2" in err

    v1 = tmp_path / "v1.pth"
    torch.save(U.upstream_file(_model("unimatch", config_dir), "unimatch"), v1)
    err = _refused([*_args("unimatch_v2", config_dir, out), str(v1)], out, capsys)
    assert "pass --method unimatch." in err

    err = _refused(
        [*_args("unimatch_v2", config_dir, out), "--weights-key", "ema_model", str(v2)], out, capsys
    )
    assert "has weights under ['model', 'model_ema']" in err
    assert "pass --weights-key model" in err

    del file["model_ema"]["module.head.scratch.refinenet2.out_conv.bias"]
    torch.save(file, v2)
    err = _refused([*_args("unimatch_v2", config_dir, out), str(v2)], out, capsys)
    assert "head.fusion.1.out_conv.bias" in err and "not in the file" in err
