"""Sliding-window evaluation throughput and the share of the metric in evaluation time."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from semivl.bench.hardware import synchronize
from semivl.config import Recipe
from semivl.engine.inference import predict_with_config
from semivl.engine.metrics import IoUAccumulator
from semivl.models import build_model
from semivl.models.semivl_model import ModelContext


def bench_evaluation(recipe: Recipe, device: torch.device, images: int = 4,
                     size: tuple[int, int] = (375, 500), config_dir: Path = Path("config")
                     ) -> dict:
    """Images per second of the recipe's evaluation protocol (random weights and images of
    ``size`` (height, width)), and the fraction of that time spent updating the IoU counts."""
    torch.manual_seed(0)
    context = ModelContext(dataset=recipe.dataset, crop_size=recipe.augment.crop_size,
                           config_dir=Path(config_dir), random_init=True)
    model = build_model(recipe.model, recipe.dataset.num_classes, context).to(device).eval()
    cfg, classes = recipe.eval, recipe.dataset.num_classes
    acc = IoUAccumulator(classes, recipe.dataset.ignore_index)
    g = torch.Generator().manual_seed(0)
    batch = [(torch.randn(1, 3, *size, generator=g),
              torch.randint(0, classes, (1, *size), generator=g)) for _ in range(images)]
    predict_s = metric_s = 0.0
    with torch.no_grad():
        predict_with_config(model, batch[0][0].to(device), classes, cfg)
        for image, mask in batch:
            tic = time.perf_counter()
            scores = predict_with_config(model, image.to(device), classes, cfg,
                                         out_size=tuple(mask.shape[-2:]))
            pred = scores.argmax(dim=1).cpu()
            synchronize(device)
            mid = time.perf_counter()
            acc.update(pred, mask)
            metric_s += time.perf_counter() - mid
            predict_s += mid - tic
    total = predict_s + metric_s
    return {"mode": cfg.mode, "crop": cfg.crop_size, "image_size": list(size),
            "images": images, "images_per_s": images / total, "metric_share": metric_s / total}
