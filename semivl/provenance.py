"""Where a run came from: code version, environment, attempts, wall time and GPU-hours.

Each training attempt (first start, or a resume after a time limit or preemption) appends one
line to ``attempts.jsonl`` in the run folder; a finished run also gets ``provenance.json``.
Both hold timings and host names, so neither is a declared workflow output: the tracked files
(``model.pt``, ``train_summary.json``, ``metrics.json``) stay byte-stable across reruns.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from semivl.atomic import write_text_atomic
from semivl.download import sha256_of

PACKAGES = (
    "semivl",
    "torch",
    "torchvision",
    "open_clip_torch",
    "timm",
    "numpy",
    "pillow",
    "snakemake",
    "dvc",
)
REPO = Path(__file__).resolve().parent.parent


def code_version(repo: Path = REPO) -> dict:
    """The git commit of the code and whether the tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Python, package versions, host, CPU and GPU models."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "gpus": gpus,
        "cuda": torch.version.cuda,
        "packages": versions,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def gpus_in_use() -> int:
    """GPUs this run occupies: one per process when CUDA is available, else 0."""
    import torch

    if not torch.cuda.is_available():
        return 0
    return int(os.environ.get("WORLD_SIZE", "1"))


def record_attempt(run_dir: Path, *, outcome: str, wall_s: float, gpus: int) -> None:
    """Append one attempt to ``<run_dir>/attempts.jsonl`` (nothing if training never created
    the run folder: bad input loses and leaves nothing)."""
    if not Path(run_dir).is_dir():
        return
    line = {
        "outcome": outcome,
        "wall_s": round(wall_s, 1),
        "gpus": gpus,
        "gpu_hours": round(wall_s * gpus / 3600, 4),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    with (Path(run_dir) / "attempts.jsonl").open("a") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")


def read_attempts(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "attempts.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_provenance(
    run_dir: Path,
    *,
    seed: int,
    configs: list[Path],
    text_embeddings: dict | None = None,
    precision: dict | None = None,
    recipe_chain: list[Path] | None = None,
) -> dict:
    """Write ``<run_dir>/provenance.json``: code, inputs (recipe, dataset config, split lists
    and the dataset's ``prepared.json``, each with its sha256), the text embeddings the run
    read and their check against upstream's (``text_embeddings``, see
    :func:`semivl.models.text_reference.run_text_record`; null for models without text), seed,
    environment, attempts, total wall time and GPU-hours. ``recipe_chain``: the recipe and its
    ``base:`` files (their hashes are among the inputs), recorded when it has bases."""
    attempts = read_attempts(run_dir)
    record = {
        "code": code_version(),
        "inputs": {
            str(p): sha256_of(p) if Path(p).is_file() else None for p in configs if p is not None
        },
        "text_embeddings": text_embeddings,
        "seed": seed,
        **(
            {"recipe_chain": [str(p) for p in recipe_chain]}
            if recipe_chain and len(recipe_chain) > 1
            else {}
        ),
        # TF32 and autocast of the run (semivl.engine.precision) and where they came from.
        "precision": precision,
        "environment": environment(),
        "attempts": len(attempts),
        "wall_hours": round(sum(a["wall_s"] for a in attempts) / 3600, 4),
        "gpu_hours": round(sum(a["gpu_hours"] for a in attempts), 4),
    }
    write_text_atomic(
        json.dumps(record, indent=2, sort_keys=True) + "\n", Path(run_dir) / "provenance.json"
    )
    return record


def training_commit(run_dir: Path) -> str | None:
    """``<commit>`` or ``<commit>+dirty`` from the run's provenance.json (None if unknown)."""
    path = Path(run_dir) / "provenance.json"
    if not path.is_file():
        return None
    code = json.loads(path.read_text()).get("code") or {}
    if not code.get("commit"):
        return None
    return code["commit"][:12] + ("+dirty" if code.get("dirty") else "")
