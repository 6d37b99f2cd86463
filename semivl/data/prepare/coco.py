"""COCO 2017 with 81-class masks (0 = background, 1-80 = the thing classes, 255 = ignore).

Images come from the official ``train2017.zip`` and ``val2017.zip``. Masks, by
``masks_from`` in ``config/datasets/coco.yaml``:

* ``preprocessed`` (default, what UniMatch and SemiVL trained on): UniMatch's
  ``masks/<12-digit id>.png``, fetched from SemiVL's re-host ``ground_truth_coco.zip``;
* ``instances``: regenerated from ``instances_{train,val}2017.json`` with pycocotools. Each
  non-crowd instance paints its class (the 80 category ids in sorted order -> 1..80); pixels
  covered by two or more instances, and crowd regions, become 255. UniMatch never published
  its script, so these masks are not guaranteed to equal the preprocessed ones (see
  docs/deviations.md); compare on a sample before trusting numbers made with them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from semivl.data.archives import extract, under

ID_WIDTH = 12


def required_archives(cfg) -> list[str]:
    masks = "masks" if cfg.masks_from == "preprocessed" else "instances"
    return ["images_train", "images_val", masks]


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    for key, folder in (("images_train", "train2017"), ("images_val", "val2017")):
        extract(
            archives[key], out, under(folder, keep=folder, suffixes=(".jpg",)), progress=progress
        )
    if cfg.masks_from == "preprocessed":
        extract(
            archives["masks"],
            out,
            under("masks", keep="masks", suffixes=(".png",)),
            progress=progress,
        )
        return
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        extract(
            archives["instances"],
            Path(tmp),
            under("annotations", suffixes=("instances_train2017.json", "instances_val2017.json")),
            progress=progress,
        )
        for split in ("train2017", "val2017"):
            masks_from_instances(
                Path(tmp) / f"instances_{split}.json", out / "masks", progress=progress
            )


def instance_mask(
    annotations: list[dict], height: int, width: int, class_of: dict[int, int]
) -> np.ndarray:
    """The 81-class mask of one image from its COCO instance annotations."""
    from pycocotools import mask as mask_utils

    target = np.zeros((height, width), dtype=np.uint8)
    cover = np.zeros((height, width), dtype=np.uint8)
    crowd = np.zeros((height, width), dtype=bool)
    for ann in annotations:
        seg = ann["segmentation"]
        if isinstance(seg, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width))
        elif isinstance(seg["counts"], list):  # uncompressed RLE (crowd regions)
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        binary = mask_utils.decode(rle).astype(bool)
        if ann.get("iscrowd", 0):
            crowd |= binary
            continue
        target[binary] = class_of[ann["category_id"]]
        cover += binary
    target[(cover > 1) | crowd] = 255
    return target


def masks_from_instances(json_path: Path, out_dir: Path, progress: bool = True) -> int:
    """Write ``<out_dir>/<12-digit id>.png`` for every image of a COCO instances file."""
    data = json.loads(Path(json_path).read_text())
    category_ids = sorted(c["id"] for c in data["categories"])
    class_of = {cat_id: i + 1 for i, cat_id in enumerate(category_ids)}
    if len(class_of) != 80:
        raise ValueError(f"{json_path}: expected the 80 COCO thing categories, got {len(class_of)}")
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out_dir.mkdir(parents=True, exist_ok=True)
    for image in tqdm(
        data["images"], desc=f"masks {json_path.stem}", unit="img", disable=not progress
    ):
        mask = instance_mask(
            by_image.get(image["id"], []), image["height"], image["width"], class_of
        )
        Image.fromarray(mask).save(out_dir / f"{image['id']:0{ID_WIDTH}d}.png")
    return len(data["images"])
