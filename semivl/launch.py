"""How a training job starts on the GPUs a cluster gives it: the command that launches
``semivl`` and the resources the job asks SLURM for.

Plain numbers in, a command prefix and a dict of resources out: the workflow calls
:func:`launcher` (``workflow/rules/common.smk``) and ``semivl plan`` uses the same node layout
(:func:`node_layout`). The resource names are those of Snakemake's SLURM executor plugin
(2.x), which turns them into sbatch flags:

- ``gpu=N`` -> ``--gpus=N`` (with ``gpu_model=M``: ``--gpus=M:N``); ``gres="gpu:N"`` ->
  ``--gres=gpu:N`` (per node); ``nodes`` -> ``--nodes``; ``cpus_per_gpu`` / ``cpus_per_task``
  -> ``--cpus-per-gpu`` / ``--cpus-per-task``; ``mem_mb`` -> ``--mem`` (per node);
  ``slurm_extra`` is appended as is (``--gpus-per-node`` travels there: the plugin has no
  resource for it).
- ``mpi`` (any value) tells the plugin's job step not to wrap the rule in its own
  ``srun -n1 --nodes=1``, which would confine it to the first node: the rule's command then runs
  once, in the batch step on the first node, and starts the per-node launchers itself with
  ``srun``. With ``mpi`` set the plugin wants ``tasks`` (``--ntasks``, one per node here) and
  would add ``--ntasks-per-gpu=<tasks>`` for a GPU job unless ``tasks_per_gpu`` is given, so it
  is set to 0 (no flag).

A ``None`` resource is unset: Snakemake drops it, so one rule declares every key and each job
gets only the ones its layout needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# What the single-process and single-node launchers put before ``train ...``.
SINGLE_PROCESS = "semivl"
# The keys of :attr:`Launch.resources`, every one present (``None`` = not requested).
RESOURCE_KEYS = (
    "gpu",
    "gpu_model",
    "gres",
    "cpus_per_gpu",
    "cpus_per_task",
    "mem_mb",
    "nodes",
    "tasks",
    "tasks_per_gpu",
    "mpi",
    "slurm_extra",
)
GPU_REQUESTS = ("gpus", "gres")


@dataclass(frozen=True)
class Launch:
    """One training job: the command prefix (``<command> train --dataset ...``), its layout
    and the resources it asks SLURM for."""

    command: str
    nodes: int
    gpus_per_node: int
    resources: dict[str, int | str | None]

    @property
    def processes(self) -> int:
        return self.nodes * self.gpus_per_node


def resource_keys(
    max_gpus_per_node: int | None = None, gpu_request: str = "gpus", gpu_model: str | None = None
) -> tuple[str, ...]:
    """The resources a rule declares for the cluster settings: only those some job can set,
    so that a key the settings never use (``slurm_extra``, ``gpu_model``, ...) keeps the value
    a profile's ``default-resources`` gives it. With the default settings these are today's
    ``gpu``, ``cpus_per_gpu`` and ``mem_mb``."""
    multi = bool(max_gpus_per_node)
    wanted = {
        "gpu": gpu_request == "gpus",
        "gpu_model": gpu_request == "gpus" and bool(gpu_model),
        "gres": gpu_request == "gres",
        "cpus_per_gpu": True,
        "cpus_per_task": multi,
        "mem_mb": True,
        "nodes": True,
        "tasks": multi,
        "tasks_per_gpu": multi,
        "mpi": multi,
        "slurm_extra": multi and gpu_request == "gpus",
    }
    return tuple(key for key in RESOURCE_KEYS if wanted[key])


def job_gpus(recipe_gpus: int, max_gpus_per_job: int | None = None) -> int:
    """The GPUs (= processes) of a job: the recipe's count, capped by ``max_gpus_per_job``."""
    return min(recipe_gpus, max_gpus_per_job) if max_gpus_per_job else recipe_gpus


def node_layout(gpus: int, max_gpus_per_node: int | None = None) -> tuple[int, int]:
    """(nodes, GPUs per node) for ``gpus`` GPUs on nodes of at most ``max_gpus_per_node``.

    One node when they fit (or without a limit); else the fewest nodes, at least
    ``ceil(gpus / max_gpus_per_node)``, over which the GPUs split evenly, so that every node
    runs the same number of processes (4 on 2 per node: 2 x 2; 8 on 3 per node: 4 x 2).
    """
    if gpus < 1:
        raise ValueError(f"gpus: expected >= 1, got {gpus}")
    if max_gpus_per_node is not None and max_gpus_per_node < 1:
        raise ValueError(f"max_gpus_per_node: expected >= 1 or None, got {max_gpus_per_node}")
    if not max_gpus_per_node or gpus <= max_gpus_per_node:
        return 1, gpus
    nodes = math.ceil(gpus / max_gpus_per_node)
    while gpus % nodes:
        nodes += 1
    return nodes, gpus // nodes


def gpu_resources(
    gpus: int, gpu_request: str = "gpus", gpu_model: str | None = None, per_node: bool = False
) -> dict[str, int | str | None]:
    """The resources that ask for ``gpus`` GPUs (per node with ``per_node``):
    ``--gpus=N`` / ``--gpus-per-node=N`` or ``--gres=gpu:N``, optionally of ``gpu_model``."""
    if gpu_request not in GPU_REQUESTS:
        raise ValueError(
            f"gpu_request: expected one of {', '.join(map(repr, GPU_REQUESTS))}, "
            f"got {gpu_request!r}"
        )
    out: dict[str, int | str | None] = {
        "gpu": None,
        "gpu_model": None,
        "gres": None,
        "slurm_extra": None,
    }
    if gpus < 1:
        return out
    typed = f"{gpu_model}:{gpus}" if gpu_model else str(gpus)
    if gpu_request == "gres":
        out["gres"] = f"gpu:{typed}"
    elif per_node:
        out["slurm_extra"] = f"--gpus-per-node={typed}"
    else:
        out["gpu"], out["gpu_model"] = gpus, gpu_model or None
    return out


def rendezvous_script(gpus_per_node: int, port: str = "$((20000 + SLURM_JOB_ID % 20000))") -> str:
    """The shell line each node's task runs: ``torchrun`` joining a c10d rendezvous on the
    job's first node. ``$SLURM_NNODES``, ``$SLURM_JOB_NODELIST`` and ``$SLURM_JOB_ID`` are
    those srun gives the task (the plugin's job step strips most SLURM variables from the
    rule's own environment); the port follows the job id, so two jobs that share a first node
    do not collide."""
    head = 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1'
    return (
        f"exec torchrun --nnodes=$SLURM_NNODES --nproc_per_node={gpus_per_node} "
        f"--rdzv_id=$SLURM_JOB_ID --rdzv_backend=c10d "
        f'--rdzv_endpoint=$({head}):{port} -m semivl.cli "$@"'
    )


def launcher(
    gpus: int,
    max_gpus_per_node: int | None = None,
    *,
    gpu_request: str = "gpus",
    gpu_model: str | None = None,
    cpus_per_gpu: int = 1,
    mem_mb: int | None = None,
) -> Launch:
    """The launcher and resources of a job with ``gpus`` GPUs (after ``max_gpus_per_job``).

    - 1 GPU: plain ``semivl``.
    - several GPUs on one node: ``torchrun --standalone --nproc_per_node=<gpus>``.
    - more GPUs than ``max_gpus_per_node``: ``nodes`` x ``gpus_per_node``
      (:func:`node_layout`); ``srun`` starts one ``torchrun`` per node (``--ntasks-per-node=1``)
      with a c10d rendezvous across them (:func:`rendezvous_script`). Each node gets its share
      of ``mem_mb`` and ``gpus_per_node x cpus_per_gpu`` CPUs.

    ``cpus_per_gpu`` is also each process's torch threads (passed to ``train --threads`` by
    the workflow).
    """
    nodes, per_node = node_layout(gpus, max_gpus_per_node)
    resources: dict[str, int | str | None] = dict.fromkeys(RESOURCE_KEYS)
    resources.update(
        gpu_resources(per_node if nodes > 1 else gpus, gpu_request, gpu_model, per_node=nodes > 1)
    )
    if nodes == 1:
        # --nodes=1: without it SLURM may spread --gpus=N over several nodes, while
        # torchrun --standalone (and a single process) sees only its own node's GPUs.
        resources.update(cpus_per_gpu=cpus_per_gpu, mem_mb=mem_mb, nodes=1)
        if gpus == 1:
            command = SINGLE_PROCESS
        else:
            command = f"torchrun --standalone --nproc_per_node={gpus} -m semivl.cli"
        return Launch(command, 1, gpus, resources)
    cpus = per_node * cpus_per_gpu
    resources.update(
        cpus_per_task=cpus,
        nodes=nodes,
        tasks=nodes,
        tasks_per_gpu=0,
        mpi="srun",
        mem_mb=math.ceil(mem_mb * per_node / gpus) if mem_mb else None,
    )
    srun = (
        f"srun --nodes={nodes} --ntasks={nodes} --ntasks-per-node=1 "
        f"--cpus-per-task={cpus} --kill-on-bad-exit=1"
    )
    command = f"{srun} bash -c '{rendezvous_script(per_node)}' semivl"
    return Launch(command, nodes, per_node, resources)


# Minutes an attempt capped at ``cluster.max_hours`` spends on anything but training: start-up
# (Snakemake's job step, imports, CLIP and data loading) and the stop before the end (the
# trainer stops 5 minutes ahead to save last.pt). A guess, on the safe side.
ATTEMPT_OVERHEAD_MIN = 15


def attempt_minutes(
    hours: float, attempt: int, schedule_fraction: float = 1.0, max_hours: float | None = None
) -> int:
    """Wall-time minutes one attempt of a training job asks for: the recipe's ``hours`` (a
    smoke grid's ``schedule_fraction`` of them plus 30 minutes), ``attempt`` x that for a
    retry, and never more than ``max_hours`` (a partition's limit)."""
    if schedule_fraction < 1:
        minutes = (60 * hours * schedule_fraction + 30) * attempt
    else:
        minutes = 60 * hours * attempt
    if max_hours:
        minutes = min(minutes, 60 * max_hours)
    return int(minutes)


def attempts_needed(hours: float, max_hours: float | None) -> int:
    """Attempts a run of ``hours`` needs when each may last ``max_hours``: 1 when it fits,
    else enough capped attempts that, less :data:`ATTEMPT_OVERHEAD_MIN` each, cover it (every
    attempt resumes from the last one's last.pt)."""
    if not max_hours or hours <= max_hours:
        return 1
    usable = max_hours - ATTEMPT_OVERHEAD_MIN / 60
    return math.ceil(hours / usable)
