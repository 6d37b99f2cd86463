"""Throughput of the unlabelled data pipeline (decode, weak view, two strong views, CutMix
boxes), per worker process, on VOC-sized JPEGs written to a temporary folder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from semivl.config import Recipe
from semivl.data.dataset import SegmentationDataset, read_mask
from semivl.data.palette import voc_palette
from semivl.data.transforms import cutmix_box, normalize, strong_photometric, weak_augment

# Pascal VOC's typical image size (width, height).
VOC_SIZE = (500, 375)


def write_images(folder: Path, count: int, size: tuple[int, int] = VOC_SIZE, seed: int = 0) -> Path:
    """``count`` JPEG photos-like images with palette masks in the VOC layout; returns the
    split file naming them."""
    rng = np.random.default_rng(seed)
    (folder / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (folder / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    lines = []
    w, h = size
    for i in range(count):
        # Smooth random fields compress like photographs (pure noise would not).
        coarse = rng.integers(0, 255, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize(size, Image.BILINEAR)
        image.save(folder / "JPEGImages" / f"{i:05d}.jpg", quality=90)
        mask = Image.fromarray((np.asarray(image)[..., 0] // 52).astype(np.uint8), mode="P")
        mask.putpalette(voc_palette())
        mask.save(folder / "SegmentationClass" / f"{i:05d}.png")
        lines.append(f"JPEGImages/{i:05d}.jpg SegmentationClass/{i:05d}.png")
    split = folder / "unlabeled.txt"
    split.write_text("\n".join(lines) + "\n")
    return split


def bench_unlabeled_pipeline(recipe: Recipe, root: Path, split: Path, items: int = 16) -> dict:
    """Images per second one worker prepares for the unlabelled stream, and where the time
    goes (the same functions the dataset calls, timed one by one)."""
    dataset = SegmentationDataset(root, split, recipe.dataset, "train_u", recipe.augment)
    n = min(items, len(dataset))
    tic = time.perf_counter()
    for index in range(n):
        dataset[(index, (0, index))]
    per_image = (time.perf_counter() - tic) / n
    parts = dict.fromkeys(("decode", "weak", "strong", "cutmix", "normalize"), 0.0)
    cfg, size = recipe.augment, recipe.augment.crop_size
    for index in range(n):
        rng = np.random.default_rng([0, index])
        image_rel, mask_rel = dataset.pairs[index]
        t0 = time.perf_counter()
        image = Image.open(root / image_rel).convert("RGB")
        mask = Image.fromarray(read_mask(root / mask_rel, recipe.dataset, check=False))
        t1 = time.perf_counter()
        image, mask = weak_augment(image, mask, cfg, rng, mask_pad=254)
        t2 = time.perf_counter()
        strong = [strong_photometric(image.copy(), rng) for _ in range(2)]
        t3 = time.perf_counter()
        [cutmix_box(size, rng) for _ in range(2)]
        t4 = time.perf_counter()
        [normalize(view, cfg.mean, cfg.std) for view in (image, *strong)]
        t5 = time.perf_counter()
        for key, spent in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            parts[key] += spent / n
    return {
        "crop": size,
        "image_size": list(Image.open(root / dataset.pairs[0][0]).size),
        "items": n,
        "s_per_image": per_image,
        "images_per_s_per_worker": 1 / per_image,
        "s_per_image_by_part": parts,
    }
