"""The schedule arithmetic of a run, torch-free (``semivl plan`` computes it without data):
how the global batch is formed, iterations per epoch, epochs, and the shortened smoke
schedule."""

from __future__ import annotations

import math

from semivl.config import TrainConfig
from semivl.methods import get_method


def labeled_stream_length(cfg: TrainConfig, num_labeled: int) -> int:
    """Images in the labelled stream of a run with ``num_labeled`` listed: ``num_labeled``, or
    ``train.labeled_upsample_to`` for a labelled-only method when the list is shorter (UniMatch
    V2's ``supervised.py``). ``semivl plan`` should pass this to :func:`schedule`."""
    target = cfg.labeled_upsample_to
    if not get_method(cfg.method).reads_unlabeled and target is not None and num_labeled < target:
        return target
    return num_labeled


def upsample_labeled(cfg: TrainConfig, pairs: list) -> list:
    """The labelled list repeated ``ceil(n / len)`` times and cut to ``n`` =
    :func:`labeled_stream_length` (unchanged when no upsampling applies)."""
    n = labeled_stream_length(cfg, len(pairs))
    if n == len(pairs) or not pairs:
        return pairs
    return (pairs * math.ceil(n / len(pairs)))[:n]


def shortened_iters(cfg: TrainConfig, full_iters: int) -> int:
    """Iterations of a run whose recipe schedule has ``full_iters``: all of them, or
    ``train.schedule_fraction`` of them (rounded up, at least one) for a smoke run."""
    if cfg.schedule_fraction >= 1:
        return full_iters
    return max(1, math.ceil(cfg.schedule_fraction * full_iters))


def schedule(
    cfg: TrainConfig, stream_length: int, processes: int, where: str = "the split"
) -> tuple[int, int, int]:
    """(gradient accumulation, iterations per epoch, epochs) of a run whose epoch is one pass
    over ``stream_length`` images (the unlabelled set, or the labelled one for supervised
    training) on ``processes`` processes. ``semivl plan`` uses it without any data."""
    per_step = cfg.batch_size * processes
    global_batch = cfg.global_batch_size or per_step
    if global_batch % per_step:
        raise ValueError(
            f"train.global_batch_size={global_batch} is not a multiple of batch_size x "
            f"processes = {cfg.batch_size} x {processes}; change the number of processes"
        )
    accumulation = global_batch // per_step
    iters_per_epoch = math.ceil(stream_length / processes) // (cfg.batch_size * accumulation)
    if iters_per_epoch < 1:
        raise ValueError(
            f"{where}: {stream_length} images are fewer than one global batch "
            f"({global_batch}); lower train.batch_size or train.global_batch_size"
        )
    epochs = cfg.epochs if cfg.epochs is not None else math.ceil(cfg.iters / iters_per_epoch)
    return accumulation, iters_per_epoch, epochs
