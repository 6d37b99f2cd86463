import csv

import pytest
import torch

from semivl.config import load_recipe
from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.trainer import RunSpec, TrainingStopped, train


def _spec(toy_root, config_dir, out, seed=0):
    splits = toy_root.parent / "splits"
    return RunSpec(recipe=load_recipe("supervised", "toy", config_dir), data_root=toy_root,
                   labeled_split=splits / "6" / "labeled.txt", val_split=splits / "val.txt",
                   out_dir=out, seed=seed)


def _weights(path):
    return load_checkpoint(path)


def test_resume_gives_identical_weights(toy_root, config_dir, tmp_path):
    straight = train(_spec(toy_root, config_dir, tmp_path / "a"), progress=False, log_every=1)
    with pytest.raises(TrainingStopped, match="resume"):
        train(_spec(toy_root, config_dir, tmp_path / "b"), stop_after_steps=5, progress=False,
              log_every=1)
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
        tmp_path / "b" / "train_summary.json").read_bytes()


def test_training_changes_weights_and_seed_matters(toy_root, config_dir, tmp_path):
    train(_spec(toy_root, config_dir, tmp_path / "s0"), progress=False)
    train(_spec(toy_root, config_dir, tmp_path / "s1", seed=1), progress=False)
    a, b = _weights(tmp_path / "s0" / "model.pt"), _weights(tmp_path / "s1" / "model.pt")
    assert not torch.equal(a["classifier.weight"], b["classifier.weight"])


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
    with pytest.raises(ValueError, match="fewer than one batch"):
        train(_spec(toy_root, config_dir, tmp_path / "x"), progress=False)
