"""Stopping a training run cleanly on a cluster: signals, the job's end time, loader workers.

What a SLURM site does, and what this module answers to it:

* Preemption, ``scancel`` and the wall-time limit send SIGTERM to **every process of the job
  step**, in no set order: the training processes, ``torchrun``'s agent and the DataLoader
  workers. A worker that dies of it makes the main process fail with "DataLoader worker ...
  is killed by signal: Terminated" before it can save. So workers ignore SIGTERM
  (``semivl.data.dataset.seed_worker``, every loader's ``worker_init_fn``) and the training
  process saves ``last.pt`` and exits with code 3; the loader then shuts its workers down.
  Should a worker die all the same (in the milliseconds between its start and that call),
  :func:`is_worker_death` lets the trainer recognise it and still save, as long as a stop
  signal arrives within :data:`WORKER_DEATH_GRACE_S`.
* SIGUSR1 is caught too, but only a process that receives it directly reacts: ``torchrun``'s
  agent dies of it, and Snakemake's job step forwards only SIGTERM. Through the workflow,
  signal with SIGTERM (the default of ``scancel``).
* The job's end time: ``SLURM_JOB_END_TIME`` where SLURM sets it; Snakemake's SLURM job step
  removes it (it keeps ``SLURM_JOB_ID`` only), so then it is read from ``squeue``
  (:func:`job_end_time`). The run stops ``margin`` seconds before it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import datetime

# Seconds the trainer waits for its own stop signal after a loader worker died of one.
WORKER_DEATH_GRACE_S = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def is_worker_death(error: BaseException) -> bool:
    """True for the error a DataLoader raises when one of its workers was killed."""
    return isinstance(error, RuntimeError) and "DataLoader worker" in str(error)


def job_end_time(
    environ: dict[str, str] | None = None, timeout_s: float = 10.0
) -> tuple[float | None, str]:
    """The SLURM job's end time (Unix seconds) and where it came from, or ``(None, why)``.

    ``SLURM_JOB_END_TIME`` first; else ``squeue -h -j $SLURM_JOB_ID -o %e`` (the variable is
    gone inside Snakemake's job step, the job id is kept). Outside SLURM: ``(None, ...)``.
    """
    env = os.environ if environ is None else environ
    end = env.get("SLURM_JOB_END_TIME")
    if end:
        with contextlib.suppress(ValueError):
            return float(end), "SLURM_JOB_END_TIME"
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None, "not a SLURM job (no SLURM_JOB_ID)"
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%e"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"squeue failed ({error})"
    text = proc.stdout.strip().splitlines()[0].strip() if proc.stdout.strip() else ""
    try:
        # squeue prints the local time, e.g. 2026-12-06T07:00:00; N/A or Unknown: no limit.
        return datetime.fromisoformat(text).timestamp(), f"squeue -j {job}"
    except ValueError:
        return None, f"squeue -j {job} gave no end time ({text or proc.stderr.strip()!r})"


class StopFlag:
    """Set by SIGTERM/SIGUSR1 or when the SLURM job's end time is ``margin_s`` away."""

    def __init__(
        self, margin_s: float, end_time: float | None = None, end_source: str = ""
    ) -> None:
        self.signal: str | None = None
        if end_time is None and not end_source:
            end_time, end_source = job_end_time()
        self.deadline = end_time - margin_s if end_time is not None else None
        self.end_source = end_source
        self._previous: dict = {}

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            # Outside the main thread signals cannot be caught; the time guard still works.
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, _frame) -> None:
        self.signal = signal.Signals(signum).name

    def wait_for_signal(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a stop signal (after a loader worker died of one)."""
        end = time.monotonic() + seconds
        while self.signal is None and time.monotonic() < end:
            time.sleep(0.05)
        return self.signal is not None

    def reason(self) -> str | None:
        if self.signal:
            return f"received {self.signal}"
        if self.deadline is not None and time.time() >= self.deadline:
            return f"the SLURM time limit is near (job end time from {self.end_source})"
        return None
