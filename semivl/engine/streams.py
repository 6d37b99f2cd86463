"""The data streams of a training run: one loader per stream, built once per run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from semivl.data.dataset import seed_worker
from semivl.data.sampling import SeededSampler
from semivl.engine.distributed import DistInfo


class Streams:
    """The run's loaders, built once: workers persist across epochs (``persistent_workers``)
    and pinned host memory feeds non-blocking copies to the GPU. Every sample is drawn from
    ``(index, aug_seed)`` pairs of :class:`SeededSampler`, so neither the worker count nor a
    resume changes what the run sees.

    Args:
        datasets, streams: one dataset per stream and the stream ids (labelled, unlabelled,
            CutMix partner) that seed their samplers.
        length: images per stream in an epoch; ``accumulation``: micro-batches a step.
    """

    def __init__(
        self,
        datasets: Sequence[Dataset],
        streams: Sequence[int],
        length: int,
        accumulation: int,
        batch_size: int,
        num_workers: int,
        seed: int,
        info: DistInfo,
        dev: torch.device,
    ) -> None:
        self.samplers, self.loaders = [], []
        self.images_per_iter = batch_size * accumulation
        for dataset, stream in zip(datasets, streams, strict=True):
            sampler = SeededSampler(
                len(dataset),
                seed=seed,
                stream=stream,
                shuffle=True,
                length=length,
                num_replicas=info.world,
                rank=info.rank,
            )
            self.samplers.append(sampler)
            self.loaders.append(
                DataLoader(
                    dataset,
                    batch_size=batch_size,
                    sampler=sampler,
                    num_workers=num_workers,
                    drop_last=True,
                    worker_init_fn=seed_worker,
                    generator=torch.Generator(),
                    persistent_workers=num_workers > 0,
                    pin_memory=dev.type == "cuda",
                )
            )

    def epoch(self, epoch: int, start_iter: int) -> Iterator[tuple]:
        """Zip the streams of ``epoch``, starting at its iteration ``start_iter``."""
        for sampler in self.samplers:
            sampler.set_epoch(epoch)
            sampler.set_start(start_iter * self.images_per_iter)
        return zip(*(iter(loader) for loader in self.loaders), strict=False)
