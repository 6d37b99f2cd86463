"""Where images and masks of each dataset layout live, as split-file pairs.

The parts are the dataset's own train and val sets (what the split lists draw from):

* ``voc`` (Pascal, toy): val = ``ImageSets/Segmentation/val.txt``; train = every mask in
  ``SegmentationClass/`` that is not in val or dev (Pascal: the 10,582 train_aug ids). The
  labelled pool is ``ImageSets/Segmentation/train.txt`` (Pascal: the 1,464 high-quality masks).
  The toy also has a dev part, ``ImageSets/Segmentation/dev.txt``: images of its own that the
  recipes are tuned on (``semivl sweep``), so that val is never used for tuning; Pascal has
  none (:data:`DEV_PART`).
* ``coco``: ``train2017/``, ``val2017/``, masks in ``masks/<id>.png``.
* ``ade20k``: ``images/{training,validation}/``, ``annotations/...``.
* ``cityscapes``: ``leftImg8bit/{train,val}/<city>/``, ``gtFine/.../*_gtFine_labelTrainIds.png``.
* ``generic`` (your own dataset): the parts are the split files ``train.txt`` and ``val.txt``
  at the root, which ``semivl data prepare`` writes (``image mask`` lines; a training image
  without a mask has ``None`` and is unlabelled only). The labelled pool is the training
  pairs that have a mask.
"""

from __future__ import annotations

from pathlib import Path

from semivl.config import DatasetConfig
from semivl.data.splits import NO_MASK, Pair, read_id_list, read_split_file, voc_pairs

PARTS = ("train", "val")
# A tuning part beside train and val (only the toy has one): ``part_pairs(cfg, root, DEV_PART)``.
DEV_PART = "dev"


def _sorted_names(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern)) if folder.is_dir() else []


def _voc_val_ids(root: Path) -> list[str]:
    return read_id_list(root / "ImageSets" / "Segmentation" / "val.txt")


def _voc_dev_ids(root: Path) -> list[str]:
    path = root / "ImageSets" / "Segmentation" / "dev.txt"
    return read_id_list(path) if path.is_file() else []


def has_dev_part(cfg: DatasetConfig, root: Path) -> bool:
    """Whether the prepared dataset has a dev part (the toy: ``ImageSets/Segmentation/dev.txt``)."""
    return cfg.layout == "voc" and bool(_voc_dev_ids(Path(root)))


def part_pairs(cfg: DatasetConfig, root: Path, part: str) -> list[Pair]:
    """All (image, mask) pairs of ``part`` ("train" or "val"), in the upstream line format."""
    if part not in (*PARTS, DEV_PART):
        raise ValueError(f"part must be one of {PARTS} or {DEV_PART!r}, got {part!r}")
    root = Path(root)
    if part == DEV_PART:
        if not has_dev_part(cfg, root):
            raise ValueError(
                f"{root}: {cfg.name} has no dev part (ImageSets/Segmentation/dev.txt); only the "
                f"toy dataset has one (regenerate it with `semivl data prepare toy --force`)"
            )
        return voc_pairs(_voc_dev_ids(root))
    if cfg.layout == "voc":
        val = _voc_val_ids(root)
        if part == "val":
            return voc_pairs(val)
        exclude = set(val) | set(_voc_dev_ids(root))
        stems = [n[:-4] for n in _sorted_names(root / "SegmentationClass", "*.png")]
        return voc_pairs([s for s in stems if s not in exclude])
    if cfg.layout == "coco":
        folder = "train2017" if part == "train" else "val2017"
        return [
            (f"{folder}/{n}", f"masks/{n[:-4]}.png") for n in _sorted_names(root / folder, "*.jpg")
        ]
    if cfg.layout == "ade20k":
        folder = "training" if part == "train" else "validation"
        return [
            (f"images/{folder}/{n}", f"annotations/{folder}/{n[:-4]}.png")
            for n in _sorted_names(root / "images" / folder, "*.jpg")
        ]
    if cfg.layout == "cityscapes":
        base = root / "leftImg8bit" / part
        images = (
            sorted(p.relative_to(root).as_posix() for p in base.glob("*/*_leftImg8bit.png"))
            if base.is_dir()
            else []
        )
        return [
            (
                img,
                img.replace("leftImg8bit/", "gtFine/", 1).replace(
                    "_leftImg8bit.png", "_gtFine_labelTrainIds.png"
                ),
            )
            for img in images
        ]
    if cfg.layout == "generic":
        listed = root / f"{part}.txt"
        return read_split_file(listed) if listed.is_file() else []
    raise ValueError(f"unknown layout {cfg.layout!r}")  # rejected by DatasetConfig already


def labeled_pool(cfg: DatasetConfig, root: Path) -> list[Pair]:
    """The training pairs labelled images are drawn from (VOC: the high-quality train set)."""
    if cfg.layout == "voc":
        return voc_pairs(read_id_list(Path(root) / "ImageSets" / "Segmentation" / "train.txt"))
    if cfg.layout == "generic":
        return [p for p in part_pairs(cfg, root, "train") if p[1] != NO_MASK]
    return part_pairs(cfg, root, "train")
