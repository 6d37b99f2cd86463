"""Seeded, resumable, shardable sampling.

The sampler yields ``(index, aug_seed)`` pairs. ``aug_seed`` is derived from the run seed, the
epoch, the stream and the sample's global position in the epoch, and the dataset draws all its
augmentation randomness from it. Data order and augmentations are therefore a pure function of
the seed: independent of the number of DataLoader workers, identical after a resume, and the
same for one process with batch 2B as for two processes with batch B.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class SeededSampler(Sampler[tuple[int, tuple[int, ...]]]):
    """Shuffled (or ordered) indices, optionally oversampled to ``length``, sharded by rank.

    Args:
        dataset_len: number of items in the dataset.
        seed: run seed.
        stream: an id that separates streams drawing from the same seed (labelled,
            unlabelled, CutMix partner), so their augmentations are independent.
        shuffle: permute indices each epoch (seeded by ``seed`` and the epoch).
        length: if set, the id list is repeated and truncated to this length before
            shuffling (UniMatch oversamples the labelled set to the unlabelled length).
        num_replicas, rank: data-parallel sharding, as DistributedSampler does (padding by
            wrapping around so every rank gets the same number of items).
    """

    def __init__(
        self,
        dataset_len: int,
        seed: int,
        stream: int = 0,
        shuffle: bool = True,
        length: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if dataset_len < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.dataset_len = dataset_len
        self.seed = seed
        self.stream = stream
        self.shuffle = shuffle
        self.length = length or dataset_len
        self.num_replicas = num_replicas
        self.rank = rank
        self.num_samples = math.ceil(self.length / num_replicas)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose permutation is drawn next."""
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` items of this rank's share (for resuming mid-epoch)."""
        self.start = start

    def _global_order(self) -> np.ndarray:
        ids = np.arange(self.dataset_len)
        if self.length != self.dataset_len:
            ids = np.tile(ids, math.ceil(self.length / self.dataset_len))[: self.length]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch, 7919])
            ids = ids[rng.permutation(len(ids))]
        total = self.num_samples * self.num_replicas
        if total > len(ids):
            ids = np.concatenate([ids, ids[: total - len(ids)]])
        return ids

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        order = self._global_order()
        for local in range(self.start, self.num_samples):
            position = local * self.num_replicas + self.rank
            yield int(order[position]), (self.seed, self.epoch, self.stream, position)

    def __len__(self) -> int:
        return self.num_samples - self.start
