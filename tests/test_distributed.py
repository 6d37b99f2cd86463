"""Two data-parallel CPU processes (torchrun, gloo) make the same update as one process with
the doubled batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer import tiny_fcn_recipe

from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.trainer import RunSpec, TrainingStopped, train
from semivl.recipes import load_recipe


def one_process_reference(data_root: Path, config_dir: Path, tmp_path: Path) -> Path:
    """One step of one process on a batch of 4 (``tmp_path/one``); returns a copy of
    ``config_dir`` whose recipe has a batch of 2 per process, for two processes to match."""
    splits = data_root.parent / "splits"
    tiny_fcn_recipe(config_dir, "batch_size: 4")
    spec = RunSpec(
        recipe=load_recipe("supervised", "toy", config_dir),
        data_root=data_root,
        labeled_split=splits / "6" / "labeled.txt",
        val_split=splits / "val.txt",
        out_dir=tmp_path / "one",
        seed=0,
    )
    with pytest.raises(TrainingStopped):
        train(spec, stop_after_steps=1, progress=False)
    two_config = tmp_path / "two_config"
    shutil.copytree(config_dir, two_config)
    tiny_fcn_recipe(two_config, "batch_size: 2")
    return two_config


def train_args(data_root: Path, config_dir: Path, out: Path) -> list[str]:
    """``semivl`` arguments of one supervised CPU step on the toy, written to ``out``."""
    return [
        "train",
        "--dataset",
        "toy",
        "--split",
        "6",
        "--method",
        "supervised",
        "--seed",
        "0",
        "--data-root",
        str(data_root),
        "--splits-dir",
        str(data_root.parent / "splits"),
        "--config-dir",
        str(config_dir),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
        "--stop-after-steps",
        "1",
        "--out",
        str(out),
    ]


def assert_two_match_one(tmp_path: Path) -> None:
    """``tmp_path/two`` (2 processes x 2 images) made the update of ``tmp_path/one``."""
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert len(two["torch_rng"]) == 2 and two["iteration"] == one["iteration"] == 1
    for key in one["model"]:
        torch.testing.assert_close(two["model"][key], one["model"][key], rtol=1e-5, atol=1e-6)
    dump = (tmp_path / "two" / "config.yaml").read_text()
    assert "processes: 2" in dump and "global_batch_size: 4" in dump


def test_two_processes_equal_one_with_doubled_batch(full_label_root, config_dir, tmp_path):
    two_config = one_process_reference(full_label_root, config_dir, tmp_path)
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "semivl.cli",
        *train_args(full_label_root, two_config, tmp_path / "two"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert "stopped after 1 steps" in proc.stderr, proc.stderr[-3000:]
    assert_two_match_one(tmp_path)
