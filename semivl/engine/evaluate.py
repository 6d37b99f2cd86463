"""Evaluation of a model on a validation split (sharded over processes when distributed)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from semivl.config import Recipe
from semivl.data.dataset import SegmentationDataset, collate_val, seed_worker
from semivl.data.modes import count_mode_hits, per_mode_accuracy, read_mode_map
from semivl.data.sampling import SeededSampler
from semivl.engine.distributed import DistInfo, all_reduce_sum
from semivl.engine.inference import predict_with_config
from semivl.engine.metrics import IoUAccumulator


@dataclass
class EvalResult:
    """mIoU and per-class IoU (percent) over a split."""

    miou: float
    per_class_iou: dict[str, float]
    num_images: int
    # Datasets with appearance-mode maps (the toy): percent of each look's pixels right.
    per_mode_accuracy: dict[str, float | None] | None = None


def val_dataset(recipe: Recipe, data_root: Path, val_split: Path) -> SegmentationDataset:
    """The validation set of a recipe (short-side resize as its eval protocol says)."""
    return SegmentationDataset(
        data_root,
        val_split,
        recipe.dataset,
        "val",
        recipe.augment,
        resize_short=recipe.eval.resize_short_side,
    )


def evaluate(
    model: nn.Module,
    dataset: SegmentationDataset,
    recipe: Recipe,
    device: torch.device,
    info: DistInfo | None = None,
    progress: bool = True,
    num_workers: int = 0,
) -> EvalResult:
    """Predict every image (batch 1) and accumulate IoU over the whole split.

    With several processes each evaluates a share (padded by wrapping around, as
    ``DistributedSampler`` does upstream) and the counts are summed.
    """
    info = info or DistInfo()
    sampler = SeededSampler(
        len(dataset), seed=0, shuffle=False, num_replicas=info.world, rank=info.rank
    )
    loader = DataLoader(
        dataset,
        batch_size=1,
        sampler=sampler,
        collate_fn=collate_val,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        pin_memory=device.type == "cuda",
    )
    cfg, data_cfg = recipe.eval, recipe.dataset
    was_training = model.training
    model.eval()
    acc = IoUAccumulator(data_cfg.num_classes, data_cfg.ignore_index)
    modes = data_cfg.appearance_modes
    looks = len(modes.names()) if modes else 0
    hits, totals = np.zeros(looks, dtype=np.int64), np.zeros(looks, dtype=np.int64)
    count = 0
    with torch.no_grad():
        for image, mask, name in tqdm(
            loader,
            desc="evaluate",
            unit="img",
            leave=False,
            disable=not (progress and info.is_main and sys.stderr.isatty()),
        ):
            image = image.to(device, non_blocking=True)
            scores = predict_with_config(
                model, image, data_cfg.num_classes, cfg, out_size=tuple(mask.shape[-2:])
            )
            pred = scores.argmax(dim=1).cpu()
            acc.update(pred, mask)
            if modes:
                mode_map = read_mode_map(dataset.root, name, modes)
                count_mode_hits(pred[0].numpy(), mode_map, data_cfg, hits, totals)
            count += 1
    model.train(was_training)
    counts = torch.tensor(
        [acc.intersection.tolist(), acc.union.tolist(), [count] * len(acc.union)],
        dtype=torch.float64,
        device=device,
    )
    counts = all_reduce_sum(counts, info).cpu()
    iou = counts[0] / (counts[1] + 1e-10) * 100.0
    per_mode = None
    if modes:
        mode_counts = (
            all_reduce_sum(
                torch.tensor(np.stack([hits, totals]), dtype=torch.float64, device=device), info
            )
            .cpu()
            .numpy()
        )
        per_mode = per_mode_accuracy(mode_counts[0], mode_counts[1], modes)
    return EvalResult(
        miou=float(iou.mean()),
        per_class_iou={n: float(v) for n, v in zip(data_cfg.class_names, iou, strict=True)},
        num_images=int(counts[2][0]),
        per_mode_accuracy=per_mode,
    )


def evaluate_weights(
    recipe: Recipe,
    data_root: Path,
    val_split: Path,
    weights: Path,
    device: torch.device,
    progress: bool = True,
    context=None,
) -> EvalResult:
    """Build the recipe's model, load ``weights`` (a state_dict file) and evaluate it.

    ``context`` (a ``ModelContext``) is needed by models built from files (SemiVL).
    """
    from semivl.engine.checkpoint import load_checkpoint
    from semivl.models import build_model

    dataset = val_dataset(recipe, data_root, val_split)
    model = build_model(recipe.model, recipe.dataset.num_classes, context)
    model.load_state_dict(load_checkpoint(weights))
    return evaluate(
        model.to(device),
        dataset,
        recipe,
        device,
        progress=progress,
        num_workers=recipe.train.num_workers,
    )
