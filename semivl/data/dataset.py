"""Datasets over split files: labelled training crops and validation images."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from semivl.config import AugmentConfig, DatasetConfig
from semivl.data.masks import DataError, read_mask, require_data_root  # noqa: F401 - re-export
from semivl.data.splits import Pair, check_pairs_exist, read_split_file
from semivl.data.transforms import (
    PAD_LABELED,
    PAD_UNLABELED,
    cutmix_box,
    mask_to_tensor,
    normalize,
    resize_short_side,
    strong_photometric,
    weak_augment,
)


class SegmentationDataset(Dataset):
    """Images and masks named by a split file.

    Modes (training modes expect ``(index, aug_seed)`` keys from
    :class:`~semivl.data.sampling.SeededSampler`):

    * ``train``: a weakly augmented labelled crop and its mask (padding 255);
    * ``train_u``: an unlabelled crop as UniMatch returns it: the weak view, two strong views,
      the ignore mask (255 where the crop was padded) and two CutMix boxes. Unlabelled masks
      are never read (as upstream): the list may name ``None`` or a file that is absent;
    * ``val``: the whole image (optionally short-side resized) and its original-size mask.
    """

    def __init__(
        self,
        root: Path,
        split_file: Path,
        dataset: DatasetConfig,
        mode: str,
        augment: AugmentConfig,
        resize_short: int | None = None,
    ) -> None:
        if mode not in ("train", "train_u", "val"):
            raise ValueError(f"mode must be 'train', 'train_u' or 'val', got {mode!r}")
        self.root = require_data_root(root, dataset.name)
        self.pairs: list[Pair] = read_split_file(split_file)
        check_pairs_exist(self.root, self.pairs, split_file, check_masks=mode != "train_u")
        self.cfg = dataset
        self.mode = mode
        self.augment = augment
        self.resize_short = resize_short

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[Image.Image, Image.Image, str]:
        image_rel, mask_rel = self.pairs[index]
        image = Image.open(self.root / image_rel).convert("RGB")
        mask = Image.fromarray(read_mask(self.root / mask_rel, self.cfg))
        return image, mask, image_rel

    def __getitem__(self, key):
        if self.mode == "train":
            index, aug_seed = key
            image, mask, _ = self._load(index)
            rng = np.random.default_rng(list(aug_seed))
            image, mask = weak_augment(image, mask, self.augment, rng, mask_pad=PAD_LABELED)
            return normalize(image, self.augment.mean, self.augment.std), mask_to_tensor(mask)
        if self.mode == "train_u":
            return self._unlabeled_item(*key)
        index = key[0] if isinstance(key, tuple) else key
        image, mask, name = self._load(index)
        if self.resize_short:
            image = resize_short_side(image, self.resize_short)
        return normalize(image, self.augment.mean, self.augment.std), mask_to_tensor(mask), name

    def _unlabeled_item(self, index: int, aug_seed: tuple[int, ...]):
        image = Image.open(self.root / self.pairs[index][0]).convert("RGB")
        # Only padding matters: an all-zero mask the augmentation pads with PAD_UNLABELED.
        mask = Image.new("L", image.size, 0)
        rng = np.random.default_rng(list(aug_seed))
        image, mask = weak_augment(image, mask, self.augment, rng, mask_pad=PAD_UNLABELED)
        size = self.augment.crop_size
        strong1 = strong_photometric(image.copy(), rng)
        box1 = cutmix_box(size, rng)
        strong2 = strong_photometric(image.copy(), rng)
        box2 = cutmix_box(size, rng)
        mean, std = self.augment.mean, self.augment.std
        ignore = torch.zeros(size, size, dtype=torch.int64)
        ignore[mask_to_tensor(mask) == PAD_UNLABELED] = 255
        return (
            normalize(image, mean, std),
            normalize(strong1, mean, std),
            normalize(strong2, mean, std),
            ignore,
            box1,
            box2,
        )


def collate_val(batch):
    """Validation batches hold one image each (sizes differ)."""
    if len(batch) != 1:
        raise ValueError("validation runs with batch size 1")
    image, mask, name = batch[0]
    return image[None], mask[None], name


def seed_worker(worker_id: int) -> None:  # noqa: ARG001 - DataLoader API
    """Every loader worker's start: one thread, no global randomness (augmentations use
    per-sample seeds), and SIGTERM / SIGUSR1 ignored.

    SLURM signals every process of a job step, loader workers included, in no set order, and
    PyTorch's worker handler exits on a SIGTERM that does not come from the parent: the main
    process would then fail before it can save. Ignored here, the main process saves its
    resume state and the loader shuts its workers down (``semivl.engine.preemption``).
    """
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    torch.set_num_threads(1)
