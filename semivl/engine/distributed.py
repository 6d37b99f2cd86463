"""Process-group setup for ``torchrun`` (one process per GPU, or CPU processes on gloo)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Rank and world size of this process (``world == 1`` when not launched by torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    NCCL on CUDA, gloo on the CPU. Without ``WORLD_SIZE`` > 1 this is a no-op.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local_rank)


def device_for(name: str, recipe_gpus: int = 0) -> torch.device:
    """``auto`` picks this process's GPU (``LOCAL_RANK``) when CUDA is available, else the CPU
    -- unless GPUs were allocated or ``recipe_gpus`` > 0: then it fails, saying why CUDA is
    not usable (:mod:`semivl.engine.cuda`). ``cpu`` always means the CPU; ``cuda`` without
    CUDA fails the same way."""
    from semivl.engine.cuda import check_cuda_expected

    if name == "auto":
        check_cuda_expected(recipe_gpus)
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        check_cuda_expected(max(recipe_gpus, 1))
    return device


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over all processes (in place; identity when not distributed)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_process(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True if ``flag`` is true on any process (so all processes stop together)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def any_processes(flags: list[bool], info: DistInfo, device: torch.device) -> list[bool]:
    """Each of ``flags`` OR-ed over all processes, in one all-reduce (one host sync)."""
    if not info.enabled:
        return list(flags)
    value = torch.tensor([1.0 if flag else 0.0 for flag in flags], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return [bool(v) for v in value.tolist()]


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for all processes (no-op when not distributed)."""
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
