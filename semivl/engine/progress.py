"""What a person watching a training run sees: a progress bar on a terminal, a plain line every
few minutes in a cluster log, and TensorBoard event files (upstream UniMatch and SemiVL write
them too; ``tensorboard --logdir results/`` shows every run).

A tqdm bar redraws on every iteration; written to a file (a SLURM or Snakemake log) that is one
line per iteration, millions over a run. So the bar is used only when standard error is a
terminal, and otherwise one line is printed every ``line_every_s`` seconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

# Seconds between two progress lines in a log file.
LINE_EVERY_S = 300.0


class TrainingProgress:
    """Progress of one run on the main process (a no-op elsewhere, or with ``enabled=False``).

    Args:
        total: iterations of the run; ``start``: the iteration it (re)starts at.
        tensorboard_dir: where event files go (``None``: none are written).
        interactive: draw a tqdm bar (default: when standard error is a terminal).
    """

    def __init__(
        self,
        desc: str,
        total: int,
        start: int,
        enabled: bool,
        tensorboard_dir: Path | None = None,
        interactive: bool | None = None,
        line_every_s: float = LINE_EVERY_S,
    ) -> None:
        self.desc, self.total, self.start, self.enabled = desc, total, start, enabled
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar = tqdm(
            total=total, initial=start, desc=desc, unit="it", disable=not (enabled and interactive)
        )
        self.lines = enabled and not interactive
        self.line_every_s = line_every_s
        self.tic = self.last_line = time.perf_counter()
        self.iteration = start
        self.writer = None
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: a resumed run drops the events its previous attempt wrote after the
            # iteration it resumes from, so the curves do not fold back on themselves.
            self.writer = SummaryWriter(
                str(tensorboard_dir), purge_step=start + 1 if start else None
            )

    def step(self, iteration: int) -> None:
        """Iteration ``iteration`` (1-based) is done."""
        self.bar.update(iteration - self.iteration)
        self.iteration = iteration
        now = time.perf_counter()
        if self.lines and (now - self.last_line >= self.line_every_s or iteration == self.total):
            self.last_line = now
            done = iteration - self.start
            rate = (now - self.tic) / done if done else 0.0
            eta_h = rate * (self.total - iteration) / 3600
            print(
                f"{self.desc}: iteration {iteration}/{self.total} "
                f"({100 * iteration / self.total:.1f}%), {rate:.2f} s/it, "
                f"{eta_h:.1f} h left",
                file=sys.stderr,
                flush=True,
            )

    def scalars(self, values: dict[str, float], iteration: int, prefix: str = "train") -> None:
        """Log values (losses, lr) at ``iteration`` to TensorBoard and the bar's postfix."""
        if not self.enabled:
            return
        if "loss" in values:
            self.bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
        if self.writer is not None:
            for key, value in values.items():
                if key == "iter":
                    continue
                self.writer.add_scalar(f"{prefix}/{key}", value, iteration)
            self.writer.flush()

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
