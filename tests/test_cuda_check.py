"""No silent CPU fallback: a job given GPUs, or a GPU recipe, without usable CUDA stops at once
and says why; an explicit --device cpu still trains."""

from __future__ import annotations

import pytest
import torch

from semivl.cli import EXIT_ERROR, main
from semivl.engine.cuda import allocated_gpus, check_cuda_expected, unusable_message

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _train_args(toy_root, config_dir, out, *extra):
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
        str(toy_root),
        "--splits-dir",
        str(toy_root.parent / "splits"),
        "--config-dir",
        str(config_dir),
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_allocated_gpus_read_from_the_environment():
    assert allocated_gpus({"CUDA_VISIBLE_DEVICES": "0"}) == "CUDA_VISIBLE_DEVICES=0"
    assert allocated_gpus({"SLURM_JOB_GPUS": "2,3"}) == "SLURM_JOB_GPUS=2,3"
    assert allocated_gpus({"SLURM_GPUS_ON_NODE": "4"}) == "SLURM_GPUS_ON_NODE=4"
    for nothing in (
        {},
        {"CUDA_VISIBLE_DEVICES": ""},
        {"CUDA_VISIBLE_DEVICES": "-1"},
        {"CUDA_VISIBLE_DEVICES": "NoDevFiles"},
        {"SLURM_GPUS_ON_NODE": "0"},
    ):
        assert allocated_gpus(nothing) is None, nothing


def test_the_message_names_build_driver_and_fix():
    old_driver = unusable_message(
        "GPUs were allocated (CUDA_VISIBLE_DEVICES=0)", "13.0", "535.104.05"
    )
    assert "built for CUDA 13.0, which needs NVIDIA driver 580 or newer" in old_driver
    assert "driver found: 535.104.05" in old_driver
    assert "make setup TORCH_INDEX=" in old_driver and "--device cpu" in old_driver
    cpu_build = unusable_message("the recipe asks for 4 GPU(s)", None, None)
    assert "CPU-only build" in cpu_build and "no NVIDIA driver found" in cpu_build


def test_a_job_given_gpus_does_not_train_on_the_cpu(
    toy_root, config_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    out = tmp_path / "run"
    assert main(_train_args(toy_root, config_dir, out)) == EXIT_ERROR
    err = capsys.readouterr().err
    assert (
        "CUDA is not usable although GPUs were allocated to this job "
        "(CUDA_VISIBLE_DEVICES=0)" in err
    )
    assert f"CUDA {torch.version.cuda}" in err or "CPU-only build" in err
    assert not out.exists()  # nothing started
    # On purpose, with the same variables: it trains on the CPU.
    assert main(_train_args(toy_root, config_dir, out, "--device", "cpu")) == 0
    assert (out / "model.pt").exists()


def test_a_gpu_recipe_with_device_auto_needs_cuda(
    toy_root, config_dir, tmp_path, monkeypatch, capsys
):
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE"):
        monkeypatch.delenv(name, raising=False)
    assert main(_train_args(toy_root, config_dir, tmp_path / "run")) == EXIT_ERROR
    assert "the recipe asks for 1 GPU(s) (resources.gpus)" in capsys.readouterr().err
    check_cuda_expected(0, {})  # a CPU recipe (gpus: 0) on a machine without GPUs is fine
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        from semivl.engine.distributed import device_for

        device_for("cuda")


def test_make_setup_installs_torch_for_an_older_cuda_without_editing_a_file(repo):
    """`make setup TORCH_INDEX=...` installs the pinned torch from that index first."""
    import re
    import subprocess

    index = "https://download.pytorch.org/whl/cu126"
    out = subprocess.run(
        ["make", "-n", "-B", "setup", f"TORCH_INDEX={index}"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = re.findall(r'"(torch(?:vision)?==[^"]+)"', (repo / "pyproject.toml").read_text())
    assert len(pins) == 2
    first_pip = next(line for line in out.splitlines() if "pip install" in line)
    assert f"install -q {pins[0]} {pins[1]} --index-url {index}" in first_pip
    plain = subprocess.run(
        ["make", "-n", "-B", "setup"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert "--index-url" not in plain
