"""What a SLURM site does to a training run, emulated on the CPU: SIGTERM to every process of
the run (DataLoader workers included, in either order), the job's end time without
``SLURM_JOB_END_TIME``, and a resume state that cannot be read."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_trainer import _spec, tiny_fcn_recipe

from semivl.engine.checkpoint import load_checkpoint
from semivl.engine.trainer import TrainingStopped, train

SEMIVL = Path(sys.executable).parent / "semivl"


def _long_recipe_with_workers(config_dir: Path) -> None:
    """The BN-free tiny FCN, two loader workers, far more iterations than the test waits."""
    tiny_fcn_recipe(config_dir, "batch_size: 2")
    path = config_dir / "recipes" / "supervised" / "toy.yaml"
    path.write_text(
        path.read_text()
        .replace("iters: 12", "iters: 20000")
        .replace("num_workers: 0", "num_workers: 2")
        .replace("eval_every_iters: 6", "eval_every_iters: null")
    )


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def _train_cmd(toy_root: Path, config_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        str(SEMIVL),
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
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize("order", ["workers_first", "main_first"])
def test_sigterm_to_every_process_saves_the_current_iteration(
    toy_root, config_dir, tmp_path, order
):
    _long_recipe_with_workers(config_dir)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _train_cmd(toy_root, config_dir, out),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            log = out / "log.csv"
            # Two logged rows: the loaders' workers are up and training is under way.
            if log.exists() and len(log.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert len(workers) >= 2, f"expected loader workers, found {workers}"
        # slurmstepd signals every process of the step, in no set order.
        targets = workers + [proc.pid] if order == "workers_first" else [proc.pid, *workers]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):  # already shut down by the loader
                os.kill(pid, signal.SIGTERM)
            time.sleep(0.3 if pid != proc.pid else 0.0)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, output[-3000:]
    assert "received SIGTERM" in output and "DataLoader worker" not in output, output[-3000:]
    attempts = [json.loads(line) for line in (out / "attempts.jsonl").read_text().splitlines()]
    assert [a["outcome"] for a in attempts] == ["stopped"]
    saved = load_checkpoint(out / "last.pt")
    stopped_at = saved["iteration"]
    assert 20 <= stopped_at < 20000

    # The saved state is the run's state at that iteration: a run stopped there by request
    # (no workers, no signal) holds the same weights.
    reference = config_dir.parent / "reference_config"
    shutil.copytree(config_dir, reference)
    recipe = reference / "recipes" / "supervised" / "toy.yaml"
    recipe.write_text(recipe.read_text().replace("num_workers: 2", "num_workers: 0"))
    with pytest.raises(TrainingStopped):
        train(
            _spec(toy_root, reference, tmp_path / "ref"),
            stop_after_steps=stopped_at,
            progress=False,
        )
    expected = load_checkpoint(tmp_path / "ref" / "last.pt")
    for key, value in expected["model"].items():
        assert torch.equal(saved["model"][key], value), key

    # The next attempt resumes from it.
    again = subprocess.run(
        _train_cmd(toy_root, config_dir, out, "--stop-after-steps", "3"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 3, again.stderr[-3000:]
    assert f"resuming from {out / 'last.pt'} at iteration {stopped_at}" in again.stdout
    assert load_checkpoint(out / "last.pt")["iteration"] == stopped_at + 3


def test_an_unreadable_resume_state_is_named_and_kept(toy_root, config_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(
        RuntimeError,
        match=r"last\.pt: cannot read this resume state.*"
        r"move it aside",
    ):
        train(_spec(toy_root, config_dir, out), progress=False)
    assert (out / "last.pt").read_bytes() == b"not a checkpoint at all"
    assert not (out / "model.pt").exists()


def _fake_squeue(tmp_path: Path, prints: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "squeue"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/squeue_args\necho '{prints}'\n")
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}


def test_job_end_time_without_the_variable_comes_from_squeue(tmp_path):
    from semivl.engine.preemption import job_end_time

    env = _fake_squeue(tmp_path, "2030-01-02T03:04:05")
    old_path = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    try:
        end, source = job_end_time({"SLURM_JOB_ID": "4242"})
        unlimited = job_end_time({"SLURM_JOB_ID": "4242", "SLURM_JOB_END_TIME": ""})
    finally:
        os.environ["PATH"] = old_path
    from datetime import datetime

    assert end == datetime(2030, 1, 2, 3, 4, 5).timestamp() and source == "squeue -j 4242"
    assert (tmp_path / "squeue_args").read_text().split() == ["-h", "-j", "4242", "-o", "%e"]
    assert unlimited[0] == end
    assert job_end_time({"SLURM_JOB_END_TIME": "1700000000"}) == (
        1700000000.0,
        "SLURM_JOB_END_TIME",
    )
    assert job_end_time({})[0] is None


def test_no_end_time_when_squeue_says_none(tmp_path, monkeypatch):
    from semivl.engine.preemption import job_end_time

    env = _fake_squeue(tmp_path, "N/A")
    monkeypatch.setenv("PATH", env["PATH"])
    end, why = job_end_time({"SLURM_JOB_ID": "4242"})
    assert end is None and "no end time" in why and "N/A" in why


def test_time_guard_inside_the_job_step(toy_root, config_dir, tmp_path, monkeypatch):
    """Snakemake's job step keeps SLURM_JOB_ID only: the end time comes from squeue."""
    from datetime import datetime

    from semivl.engine.preemption import StopFlag

    soon = datetime.fromtimestamp(time.time() + 60).strftime("%Y-%m-%dT%H:%M:%S")
    env = _fake_squeue(tmp_path, soon)
    monkeypatch.delenv("SLURM_JOB_END_TIME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert StopFlag(300).deadline is not None
    with pytest.raises(TrainingStopped, match=r"SLURM time limit is near.*squeue -j 4242"):
        train(_spec(toy_root, config_dir, tmp_path / "t"), progress=False)  # margin 300 s
    assert load_checkpoint(tmp_path / "t" / "last.pt")["iteration"] == 1


def test_a_run_resumes_with_another_worker_count(toy_root, config_dir, tmp_path):
    """A site's worker count (semivl train --num-workers, cluster.num_workers) changes no
    sample: a run stopped with none resumes with two to the weights of a straight run."""
    import dataclasses

    straight = train(_spec(toy_root, config_dir, tmp_path / "a"), progress=False)
    with pytest.raises(TrainingStopped):
        train(_spec(toy_root, config_dir, tmp_path / "b"), stop_after_steps=5, progress=False)
    spec = _spec(toy_root, config_dir, tmp_path / "b")
    two = dataclasses.replace(spec, recipe=spec.recipe.with_num_workers(2))
    assert two.fingerprint() == spec.fingerprint()
    resumed = train(two, progress=False)
    assert resumed["history"] == straight["history"]
    a = load_checkpoint(tmp_path / "a" / "model.pt")
    b = load_checkpoint(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
