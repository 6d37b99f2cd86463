"""`snakemake --profile slurm all` through a real SLURM (started by .ci/start_slurm.sh), with a
training job killed by `scancel` midway that must resume from its last.pt on the retry."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest
from conftest import TINY_UNIMATCH
from test_workflow import BIN, ENV, SMALL_GRID, _checkout, _jobs_by_rule, _run


def _slurm_idle() -> bool:
    if shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return proc.returncode == 0 and "idle" in proc.stdout


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not _slurm_idle(), reason="no idle SLURM node (start one: .ci/start_slurm.sh)"
    ),
]

GRID = {
    **SMALL_GRID,
    "grid": {
        **SMALL_GRID["grid"],
        "splits": [{"dataset": "toy", "split": "6"}],
        "methods": ["supervised", "unimatch"],
        "seeds": [0],
    },
}
# Long enough to be killed midway (checkpoint every 10 of 300 iterations), with two loader
# workers: scancel signals them too, as every process of the job step.
SLOW_UNIMATCH = (
    TINY_UNIMATCH.replace("iters: 8", "iters: 300")
    .replace("checkpoint_every_iters: 3", "checkpoint_every_iters: 10")
    .replace("eval_every_iters: 6", "eval_every_iters: 150")
    .replace("num_workers: 0", "num_workers: 2")
)
RUN = "results/demo/runs/toy/6/unimatch/seed0"


def _job_ids(comment: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True
    ).stdout
    return [line.split("|")[0] for line in out.splitlines() if comment in line]


def test_dry_run_lists_training_jobs_with_their_resources(tmp_path):
    root = _checkout(tmp_path)
    out = _run([str(BIN / "snakemake"), "--profile", "slurm", "-n", "all"], root)
    assert "rule train:" in out
    assert "gpu=4, cpus_per_gpu=8" in out and "runtime=1440" in out  # pascal SemiVL/UniMatch
    assert "torchrun --standalone --nproc_per_node=4 -m semivl.cli train" in out
    # The full default grid: four datasets x 5 splits x 3 methods x 3 seeds, and the six
    # ablation methods on VOC 92 and 1464 only, UniMatch V2 and its baseline on 18 splits.
    jobs = _jobs_by_rule(out, "train")
    assert len(jobs) == 324 and all("gpu=" in j["resources"] for j in jobs)
    assert {j["dataset"] for j in jobs} == {"pascal", "coco", "ade20k", "cityscapes"}
    assert {j["split"] for j in jobs if j["method"] == "unimatch_vit"} == {"92", "1464"}


def test_profile_runs_the_demo_and_a_killed_job_resumes(tmp_path):
    root = _checkout(tmp_path, grid=GRID, tiny=True)
    (root / "config" / "recipes" / "unimatch" / "toy.yaml").write_text(SLOW_UNIMATCH)
    cmd = [
        str(BIN / "snakemake"),
        "--profile",
        "slurm",
        "all",
        "--configfile",
        "config/demo.yaml",
        "--slurm-init-seconds-before-status-checks",
        "2",
    ]
    tic = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=root, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed = None
    try:
        deadline = time.monotonic() + 420
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            if (root / RUN / "last.pt").exists():
                jobs = _job_ids("rule_train_wildcards_toy_6_unimatch_0")
                if jobs:
                    subprocess.run(["scancel", jobs[0]], check=True)
                    killed = jobs[0]
            time.sleep(0.2)
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the plugin ignores SIGTERM while it polls
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"snakemake --profile slurm did not finish:\n{out[-4000:]}")
    wall = time.monotonic() - tic
    print(f"SLURM run: {wall:.0f} s; killed job {killed}")
    assert proc.returncode == 0, out[-4000:]
    assert killed is not None, "the unimatch job finished before it could be killed"
    attempts = [
        json.loads(line) for line in (root / RUN / "attempts.jsonl").read_text().splitlines()
    ]
    assert [a["outcome"] for a in attempts] == ["stopped", "finished"]
    assert attempts[0]["slurm_job_id"] == killed
    log = (root / "results/demo/logs/train/toy_6_unimatch_seed0.log").read_text()
    resumed = [line for line in log.splitlines() if line.startswith("resuming from")]
    assert resumed and int(resumed[0].rsplit(" ", 1)[1]) >= 10  # resumed, not restarted
    assert "DataLoader worker" not in log
    # The time guard found the job's end time inside Snakemake's job step (which removes
    # SLURM_JOB_END_TIME): from the variable if srun set it again, else from squeue.
    guards = [line for line in log.splitlines() if line.startswith("time guard:")]
    print(guards)
    assert guards and "no time guard" not in log
    provenance = json.loads((root / RUN / "provenance.json").read_text())
    assert provenance["attempts"] == 2 and provenance["seed"] == 0
    tables = (root / "results/demo/tables.md").read_text()
    assert "| Supervised" in tables and "| UniMatch |" in tables and "## Provenance" in tables
