"""No silent CPU fallback: a job that was given GPUs, or whose recipe needs them, and finds CUDA
unusable stops at once and says why.

The usual cause on a cluster is the driver: a torch wheel built for CUDA 13 needs an NVIDIA
driver of branch 580 or newer, and many A100/H100 nodes run older ones. ``make setup
TORCH_INDEX=<PyTorch's wheel index for your CUDA>`` installs a build for an older CUDA
(docs/cluster.md, "Set up once").
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# The oldest Linux driver branch each CUDA major release runs on (NVIDIA's CUDA toolkit
# release notes, "minor version compatibility": every 12.x build runs on r525, every 11.x
# build on r450; CUDA 13.0 needs r580).
MIN_DRIVER = {11: 450, 12: 525, 13: 580}
# Values of CUDA_VISIBLE_DEVICES that mean "no GPU" (SLURM writes NoDevFiles when a job
# asked for GPUs the node does not have).
NO_GPU_VALUES = {"", "-1", "NoDevFiles", "none"}


class CudaUnavailable(RuntimeError):
    """GPUs were expected and CUDA is not usable."""


def allocated_gpus(environ: dict[str, str] | None = None) -> str | None:
    """The variable that says this process was given GPUs (``NAME=value``), or ``None``."""
    env = os.environ if environ is None else environ
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):  # GPU indices
        value = env.get(name)
        if value is not None and value.strip() not in NO_GPU_VALUES:
            return f"{name}={value}"
    count = env.get("SLURM_GPUS_ON_NODE", "").strip()  # a count
    if count.isdigit() and int(count) > 0:
        return f"SLURM_GPUS_ON_NODE={count}"
    return None


def driver_version() -> str | None:
    """The NVIDIA kernel driver's version on this machine (``None`` where there is none)."""
    path = Path("/proc/driver/nvidia/version")
    if path.is_file():
        match = re.search(
            r"Kernel Module\s+(?:for \S+\s+)?(\d+\.\d+(?:\.\d+)?)", path.read_text(errors="replace")
        )
        if match:
            return match.group(1)
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.stdout.strip().splitlines()
    return first[0].strip() if out.returncode == 0 and first else None


def unusable_message(why: str, torch_cuda: str | None, driver: str | None) -> str:
    """What a person reads when CUDA is not usable: the build, the driver it needs, the driver
    found and what to do."""
    if torch_cuda is None:
        build = "this torch is a CPU-only build (torch.version.cuda is None)"
        fix = "install a CUDA build of torch: make setup TORCH_INDEX=<PyTorch's wheel index>"
    else:
        major = int(torch_cuda.split(".")[0])
        need = MIN_DRIVER.get(major)
        build = (
            f"this torch is built for CUDA {torch_cuda}, which needs NVIDIA driver {need} or newer"
            if need
            else f"this torch is built for CUDA {torch_cuda}"
        )
        fix = (
            "update the driver, or install a torch build for the CUDA your driver runs: "
            "make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126 (CUDA 12.6, "
            "driver 525 or newer; README, 'On a SLURM cluster')"
        )
    found = f"driver found: {driver}" if driver else "no NVIDIA driver found on this machine"
    return (
        f"CUDA is not usable although {why}: {build}; {found}. To fix it, {fix}. To train "
        f"on the CPU on purpose, pass --device cpu (a grid: cluster.device: cpu)."
    )


def check_cuda_expected(recipe_gpus: int = 0, environ: dict[str, str] | None = None) -> None:
    """Raise :class:`CudaUnavailable` when GPUs are expected (allocated, or ``recipe_gpus`` >
    0) and ``torch.cuda.is_available()`` is false. Call it for ``--device auto`` only."""
    import torch

    if torch.cuda.is_available():
        return
    allocated = allocated_gpus(environ)
    if allocated:
        why = f"GPUs were allocated to this job ({allocated})"
    elif recipe_gpus > 0:
        why = f"the recipe asks for {recipe_gpus} GPU(s) (resources.gpus)"
    else:
        return
    raise CudaUnavailable(unusable_message(why, torch.version.cuda, driver_version()))
