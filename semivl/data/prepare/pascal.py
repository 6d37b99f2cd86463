"""Pascal VOC 2012 with the SBD-augmented masks, as UniMatch and SemiVL train on it.

Images and the ``ImageSets/Segmentation`` lists come from the official
``VOCtrainval_11-May-2012.tar``. The masks are UniMatch's preprocessed ``SegmentationClass``
(10,582 train_aug + 1,449 val index PNGs, 255 = boundary), fetched from SemiVL's re-host
``ground_truth_voc.zip``; the VOC tar's own palette masks (2,913) are not used.
"""

from __future__ import annotations

from pathlib import Path

from semivl.data.archives import extract, under

VOC = "VOCdevkit/VOC2012"


def required_archives(cfg) -> list[str]:
    return ["images", "masks"]


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    extract(
        archives["images"],
        out,
        under(f"{VOC}/JPEGImages", keep="JPEGImages", suffixes=(".jpg",)),
        progress=progress,
    )
    extract(
        archives["images"],
        out,
        under(f"{VOC}/ImageSets/Segmentation", keep="ImageSets/Segmentation", suffixes=(".txt",)),
        progress=progress,
    )
    extract(
        archives["masks"],
        out,
        under("SegmentationClass", keep="SegmentationClass", suffixes=(".png",)),
        progress=progress,
    )
