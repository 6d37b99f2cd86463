"""Evaluation of a model on a validation split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from semivl.config import DatasetConfig, EvalConfig
from semivl.data.dataset import collate_val
from semivl.engine.inference import predict
from semivl.engine.metrics import IoUAccumulator


@dataclass
class EvalResult:
    """mIoU and per-class IoU (percent) over a split."""

    miou: float
    per_class_iou: dict[str, float]
    num_images: int


def evaluate(model: nn.Module, loader: DataLoader, dataset: DatasetConfig, cfg: EvalConfig,
             device: torch.device, progress: bool = True) -> EvalResult:
    """Predict every image of ``loader`` (batch 1) and accumulate IoU over the split."""
    was_training = model.training
    model.eval()
    acc = IoUAccumulator(dataset.num_classes, dataset.ignore_index)
    count = 0
    for image, mask, _name in tqdm(loader, desc="evaluate", unit="img", disable=not progress,
                                   leave=False):
        image = image.to(device)
        scores = predict(model, image, dataset.num_classes, cfg.mode, cfg.crop_size,
                         cfg.stride, out_size=tuple(mask.shape[-2:]))
        acc.update(scores.argmax(dim=1).cpu(), mask)
        count += 1
    model.train(was_training)
    iou = acc.iou()
    return EvalResult(
        miou=float(iou.mean()),
        per_class_iou={name: float(v) for name, v in zip(dataset.class_names, iou, strict=True)},
        num_images=count,
    )


def evaluate_weights(recipe, data_root, val_split, weights, device: torch.device,
                     progress: bool = True) -> EvalResult:
    """Build the recipe's model, load ``weights`` (a state_dict file) and evaluate it."""
    from semivl.data.dataset import SegmentationDataset  # noqa: I001
    from semivl.engine.checkpoint import load_checkpoint
    from semivl.models import build_model

    dataset = SegmentationDataset(data_root, val_split, recipe.dataset, "val", recipe.augment,
                                  resize_short=recipe.eval.resize_short_side)
    loader = DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=collate_val,
                        num_workers=recipe.train.num_workers)
    model = build_model(recipe.model, recipe.dataset.num_classes)
    model.load_state_dict(load_checkpoint(weights))
    return evaluate(model.to(device), loader, recipe.dataset, recipe.eval, device, progress)
