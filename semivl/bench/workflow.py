"""The workflow tools' own overhead: planning the full grid and DVC's status check."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path


def _timed(cmd: list[str], cwd: Path, timeout: int = 300, ok: tuple[int, ...] = (0,)) -> dict:
    exe = shutil.which(cmd[0]) or str(Path(sys.executable).parent / cmd[0])
    tic = time.perf_counter()
    try:
        proc = subprocess.run(
            [exe, *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"command": " ".join(cmd), "seconds": None, "error": str(err)}
    seconds = time.perf_counter() - tic
    result = {"command": " ".join(cmd), "seconds": seconds, "returncode": proc.returncode}
    if proc.returncode not in ok:
        result["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ""
    return result


def bench_workflow(repo: Path, grid: str = "config/config.yaml") -> dict:
    """Seconds of ``snakemake -n`` over ``grid`` (building the whole DAG) and ``dvc status``."""
    return {
        "snakemake_dry_run": _timed(
            ["snakemake", "-n", "--quiet", "all", "--configfile", grid], repo
        ),
        # --quiet: exit code 1 means "something changed", not a failure.
        "dvc_status": _timed(["dvc", "status", "--quiet"], repo, ok=(0, 1)),
    }
