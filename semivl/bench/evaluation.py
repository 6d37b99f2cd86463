"""Sliding-window evaluation throughput and the share of the metric in evaluation time."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from semivl.bench.hardware import synchronize
from semivl.config import Recipe
from semivl.engine.inference import predict_with_config
from semivl.engine.metrics import IoUAccumulator
from semivl.engine.precision import configure_backends
from semivl.models import build_model
from semivl.models.semivl_model import ModelContext

# A typical validation image (height, width) of each dataset, as stored: Pascal VOC images
# are at most 500 pixels on a side (375 x 500 landscape is the most common), COCO's 480 x 640,
# ADE20K's validation images vary with a short side of at most 512 (512 x 683 is typical),
# and every Cityscapes image is 1024 x 2048. Evaluation is priced at these sizes, under the
# recipe's own protocol (short-side resize, windows, stride).
VAL_IMAGE_SIZE = {
    "pascal": (375, 500),
    "coco": (480, 640),
    "ade20k": (512, 683),
    "cityscapes": (1024, 2048),
    "toy": (100, 120),
}


def protocol_size(recipe: Recipe, size: tuple[int, int]) -> tuple[int, int]:
    """The size an image of ``size`` is predicted at: after the recipe's short-side resize
    (``eval.resize_short_side``), if any."""
    short = recipe.eval.resize_short_side
    if not short:
        return size
    h, w = size
    scale = short / min(h, w)
    return round(h * scale), round(w * scale)


def bench_evaluation(
    recipe: Recipe,
    device: torch.device,
    images: int = 4,
    size: tuple[int, int] | None = None,
    config_dir: Path = Path("config"),
) -> dict:
    """Images per second of the recipe's evaluation protocol (random weights and images of
    ``size`` (height, width); default: the dataset's typical validation image,
    :data:`VAL_IMAGE_SIZE`), and the fraction of that time spent updating the IoU counts.
    cuDNN and TF32 are set as the trainer sets them."""
    stored = size or VAL_IMAGE_SIZE.get(recipe.dataset.name, (375, 500))
    size = protocol_size(recipe, stored)
    configure_backends(recipe.train.method, recipe.train.speed.tf32, device)
    torch.manual_seed(0)
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=Path(config_dir),
        random_init=True,
    )
    model = build_model(recipe.model, recipe.dataset.num_classes, context).to(device).eval()
    cfg, classes = recipe.eval, recipe.dataset.num_classes
    acc = IoUAccumulator(classes, recipe.dataset.ignore_index)
    g = torch.Generator().manual_seed(0)
    batch = [
        (torch.randn(1, 3, *size, generator=g), torch.randint(0, classes, (1, *size), generator=g))
        for _ in range(images)
    ]
    predict_s = metric_s = 0.0
    with torch.no_grad():
        predict_with_config(model, batch[0][0].to(device), classes, cfg)
        for image, mask in batch:
            tic = time.perf_counter()
            scores = predict_with_config(
                model, image.to(device), classes, cfg, out_size=tuple(mask.shape[-2:])
            )
            pred = scores.argmax(dim=1).cpu()
            synchronize(device)
            mid = time.perf_counter()
            acc.update(pred, mask)
            metric_s += time.perf_counter() - mid
            predict_s += mid - tic
    total = predict_s + metric_s
    return {
        "mode": cfg.mode,
        "crop": cfg.crop_size,
        "stored_size": list(stored),
        "image_size": list(size),
        "images": images,
        "images_per_s": images / total,
        "metric_share": metric_s / total,
    }
