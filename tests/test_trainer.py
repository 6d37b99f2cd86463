import csv

import pytest
import torch
from conftest import TINY_RECIPE

from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.trainer import RunSpec, TrainingStopped, train
from semivl.recipes import load_recipe


def _spec(toy_root, config_dir, out, seed=0):
    splits = toy_root.parent / "splits"
    return RunSpec(
        recipe=load_recipe("supervised", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        val_split=splits / "val.txt",
        out_dir=out,
        seed=seed,
    )


def _weights(path):
    return load_checkpoint(path)


def test_resume_gives_identical_weights(toy_root, config_dir, tmp_path):
    straight = train(_spec(toy_root, config_dir, tmp_path / "a"), progress=False, log_every=1)
    with pytest.raises(TrainingStopped, match="resume"):
        train(
            _spec(toy_root, config_dir, tmp_path / "b"),
            stop_after_steps=5,
            progress=False,
            log_every=1,
        )
    assert (tmp_path / "b" / "last.pt").exists() and not (tmp_path / "b" / "model.pt").exists()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 5
    resumed = train(_spec(toy_root, config_dir, tmp_path / "b"), progress=False, log_every=1)
    a, b = _weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["history"] == straight["history"]
    assert straight["total_iters"] == 12 and len(straight["history"]) == 2
    with (tmp_path / "b" / "log.csv").open() as handle:
        iters = [int(row["iter"]) for row in csv.DictReader(handle)]
    assert iters == list(range(1, 13))  # no duplicated rows after the resume
    assert (tmp_path / "a" / "train_summary.json").read_bytes() == (
        tmp_path / "b" / "train_summary.json"
    ).read_bytes()


def test_training_changes_weights_and_seed_matters(toy_root, config_dir, tmp_path):
    train(_spec(toy_root, config_dir, tmp_path / "s0"), progress=False)
    train(_spec(toy_root, config_dir, tmp_path / "s1", seed=1), progress=False)
    a, b = _weights(tmp_path / "s0" / "model.pt"), _weights(tmp_path / "s1" / "model.pt")
    assert not torch.equal(a["decoder.classifier.weight"], b["decoder.classifier.weight"])


def test_foreign_last_checkpoint_is_kept(toy_root, config_dir, tmp_path):
    with pytest.raises(TrainingStopped):
        train(_spec(toy_root, config_dir, tmp_path / "r"), stop_after_steps=2, progress=False)
    before = (tmp_path / "r" / "last.pt").read_bytes()
    with pytest.raises(RuntimeError, match="different recipe, seed or split"):
        train(_spec(toy_root, config_dir, tmp_path / "r", seed=9), progress=False)
    assert (tmp_path / "r" / "last.pt").read_bytes() == before


def test_batch_larger_than_labelled_set(toy_root, config_dir, tmp_path):
    path = config_dir / "recipes" / "supervised" / "toy.yaml"
    path.write_text(path.read_text().replace("batch_size: 2", "batch_size: 8"))
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(_spec(toy_root, config_dir, tmp_path / "x"), progress=False)


def _semi_spec(toy_root, config_dir, out, seed=0):
    splits = toy_root.parent / "splits"
    return RunSpec(
        recipe=load_recipe("unimatch", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=splits / "6" / "unlabeled.txt",
        val_split=splits / "val.txt",
        out_dir=out,
        seed=seed,
    )


def test_unimatch_resume_is_exact(toy_root, config_dir, tmp_path):
    straight = train(_semi_spec(toy_root, config_dir, tmp_path / "a"), progress=False, log_every=1)
    # 18 unlabelled images, batch 2: 9 iterations an epoch, iters 8 -> 1 epoch of 9
    assert straight["total_iters"] == 9 and straight["num_labeled"] == 6
    with pytest.raises(TrainingStopped):
        train(
            _semi_spec(toy_root, config_dir, tmp_path / "b"),
            stop_after_steps=4,
            progress=False,
            log_every=1,
        )
    train(_semi_spec(toy_root, config_dir, tmp_path / "b"), progress=False, log_every=1)
    a, b = _weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    with (tmp_path / "a" / "log.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert 0 <= float(row["mask_ratio"]) <= 1 and float(row["loss_fp"]) >= 0


def test_semivl_resume_is_exact(toy_root, config_dir, tmp_path):
    from semivl.cli import main

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

    def spec(out):
        splits = toy_root.parent / "splits"
        return RunSpec(
            recipe=load_recipe("semivl", "toy", config_dir),
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

    straight = train(spec(tmp_path / "a"), progress=False, log_every=1)
    with pytest.raises(TrainingStopped):
        train(spec(tmp_path / "b"), stop_after_steps=4, progress=False, log_every=1)
    resumed = train(spec(tmp_path / "b"), progress=False, log_every=1)
    a, b = _weights(tmp_path / "a" / "model.pt"), _weights(tmp_path / "b" / "model.pt")
    assert a.keys() == b.keys() and "text_embeddings" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed["history"] == straight["history"]
    with (tmp_path / "a" / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    weights = [float(r["guid_weight"]) for r in rows]
    assert weights[0] == pytest.approx(0.1) and weights == sorted(weights, reverse=True)


def test_slurm_time_limit_stops_and_resumes(toy_root, config_dir, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("SLURM_JOB_END_TIME", str(int(time.time()) + 60))
    with pytest.raises(TrainingStopped, match="SLURM time limit"):
        train(_spec(toy_root, config_dir, tmp_path / "t"), progress=False)  # margin 300 s
    assert load_checkpoint(tmp_path / "t" / "last.pt")["iteration"] == 1
    monkeypatch.delenv("SLURM_JOB_END_TIME")
    assert train(_spec(toy_root, config_dir, tmp_path / "t"), progress=False)["final_iter"] == 12


def test_sigusr1_saves_and_stops(toy_root, config_dir, tmp_path):
    import os
    import signal

    from semivl.engine.unimatch import LossHook  # noqa: F401 - documents the hook type

    def signal_at_third_step(ctx):
        if ctx.iteration == 2:
            os.kill(os.getpid(), signal.SIGUSR1)
        return torch.zeros(()), {}

    with pytest.raises(TrainingStopped, match="SIGUSR1"):
        train(
            _semi_spec(toy_root, config_dir, tmp_path / "s"),
            progress=False,
            hooks=[signal_at_third_step],
        )
    assert load_checkpoint(tmp_path / "s" / "last.pt")["iteration"] == 3
    assert signal.getsignal(signal.SIGUSR1) is not None  # handlers restored afterwards


def tiny_fcn_recipe(config_dir, batch: str) -> None:
    """A BN-free model, plain SGD and no padding: updates are linear in the gradients."""
    path = config_dir / "recipes" / "supervised" / "toy.yaml"
    text = (
        TINY_RECIPE.replace("name: deeplabv3plus", "name: tiny_fcn")
        .replace(
            "args: {backbone: tv_resnet10, dilations: [1, 2, 3], aspp_channels: 16, "
            "low_level_channels: 8}",
            "args: {width: 8}",
        )
        .replace(
            "augment: {crop_size: 32, resize: unimatch}",
            "augment: {crop_size: 32, resize: unimatch, ratio_range: [1.0, 1.0]}",
        )
        .replace(
            "optim: {name: adamw, lr: 0.002, weight_decay: 0.01}",
            "optim: {name: sgd, lr: 0.5, weight_decay: 0.0}",
        )
    )
    path.write_text(text.replace("batch_size: 2", batch))


def test_gradient_accumulation_matches_the_big_batch(full_label_root, config_dir, tmp_path):
    toy_root = full_label_root
    tiny_fcn_recipe(config_dir, "batch_size: 4")
    with pytest.raises(TrainingStopped):
        train(_spec(toy_root, config_dir, tmp_path / "big"), stop_after_steps=1, progress=False)
    tiny_fcn_recipe(config_dir, "batch_size: 2\n  global_batch_size: 4")
    with pytest.raises(TrainingStopped):
        train(_spec(toy_root, config_dir, tmp_path / "acc"), stop_after_steps=1, progress=False)
    big = load_checkpoint(tmp_path / "big" / "last.pt")["model"]
    acc = load_checkpoint(tmp_path / "acc" / "last.pt")["model"]
    assert not torch.equal(big["decoder.weight"], _initial_tiny_fcn()["decoder.weight"])
    for key in big:
        torch.testing.assert_close(acc[key], big[key], rtol=1e-5, atol=1e-6)
    dump = (tmp_path / "acc" / "config.yaml").read_text()
    assert "accumulation_steps: 2" in dump and "global_batch_size: 4" in dump


def _initial_tiny_fcn():
    from semivl.models.tiny_fcn import TinyFCN

    torch.manual_seed(0)
    return TinyFCN(5, width=8).state_dict()


def test_a_training_list_sharing_images_with_val_is_refused(toy_root, config_dir, tmp_path):
    """A hand-edited list must not train on val images: nothing is written."""
    from semivl.data.splits import SplitFileError

    splits = toy_root.parent / "splits"
    unlabeled = tmp_path / "unlabeled.txt"
    val_line = (splits / "val.txt").read_text().splitlines()[0]
    unlabeled.write_text((splits / "6" / "unlabeled.txt").read_text() + val_line + "\n")
    spec = RunSpec(
        recipe=load_recipe("unimatch", "toy", config_dir),
        data_root=toy_root,
        labeled_split=splits / "6" / "labeled.txt",
        unlabeled_split=unlabeled,
        val_split=splits / "val.txt",
        out_dir=tmp_path / "run",
        seed=0,
    )
    with pytest.raises(SplitFileError, match="unlabeled.txt: 1 image.*also in the val list"):
        train(spec, progress=False)
    assert not (tmp_path / "run").exists()
