"""The device under test: its name, and its measured dense matmul rate (the practical peak)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

from semivl.provenance import cpu_model


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: the first CUDA device if there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_info(device: torch.device) -> dict:
    """What the numbers were measured on."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, memory = props.name, round(props.total_memory / 2**30, 1)
    else:
        name, memory = cpu_model(), None
    return {
        "type": device.type,
        "name": name,
        "memory_gib": memory,
        "torch_threads": torch.get_num_threads(),
        "cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def matmul_rate(
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    n: int = 1024,
    min_seconds: float = 0.5,
) -> dict:
    """Dense ``n x n`` matmul throughput in TFLOP/s (2 n^3 per product), best of the timed
    repetitions after a warm-up: the rate the training step is compared with."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    synchronize(device)
    best, spent, reps = float("inf"), 0.0, 0
    while spent < min_seconds or reps < 3:
        tic = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        elapsed = time.perf_counter() - tic
        best, spent, reps = min(best, elapsed), spent + elapsed, reps + 1
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "n": n,
        "repetitions": reps,
        "tflops": 2 * n**3 / best / 1e12,
    }


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on a GPU; on the CPU the process's peak
    resident set (VmHWM, reset through /proc/self/clear_refs where Linux allows it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb: float | None = None
        # A process's resident set rarely shrinks (the allocator keeps freed pages), so on a
        # CPU each number also holds what earlier measurements left resident.
        self.kind = (
            "CUDA max allocated"
            if device.type == "cuda"
            else "process peak RSS (includes memory kept from earlier measurements)"
        )

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.kind = "process peak RSS since start"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.mb = int(line.split()[1]) / 1024
        except OSError:
            self.mb = None
