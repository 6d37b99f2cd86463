"""Cityscapes fine annotations with ``labelTrainIds`` (19 classes, 255 ignore).

``leftImg8bit_trainvaltest.zip`` (package 3) and ``gtFine_trainvaltest.zip`` (package 1) are
downloaded from cityscapes-dataset.com with the user's own login (see
:mod:`semivl.data.cityscapes_site`); the data is never re-hosted. Only train and val are
extracted (the test set has no public labels). The official archives do not ship
``*_gtFine_labelTrainIds.png``; they are generated from the polygon files with
cityscapesscripts' ``json2labelImg`` (the same conversion as ``csCreateTrainIdLabelImgs``).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from tqdm import tqdm

from semivl.data.archives import extract, under

PARTS = ("train", "val")


def required_archives(cfg) -> list[str]:
    return ["images", "fine"]


def _to_train_ids(polygons: Path) -> None:
    from cityscapesscripts.preparation.json2labelImg import json2labelImg

    target = str(polygons).replace("_gtFine_polygons.json", "_gtFine_labelTrainIds.png")
    json2labelImg(str(polygons), target, "trainIds")


def write_train_ids(root: Path, workers: int = 4, progress: bool = True) -> int:
    """Write ``*_gtFine_labelTrainIds.png`` next to every polygon file under ``root/gtFine``."""
    files = sorted(Path(root, "gtFine").glob("*/*/*_gtFine_polygons.json"))
    bar = {"total": len(files), "desc": "labelTrainIds", "unit": "img", "disable": not progress}
    if workers > 1 and len(files) > 64:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for _ in tqdm(pool.imap_unordered(_to_train_ids, files, chunksize=16), **bar):
                pass
    else:
        for path in tqdm(files, **bar):
            _to_train_ids(path)
    return len(files)


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    for part in PARTS:
        extract(
            archives["images"],
            out,
            under(
                f"leftImg8bit/{part}", keep=f"leftImg8bit/{part}", suffixes=("_leftImg8bit.png",)
            ),
            progress=progress,
        )
        extract(
            archives["fine"],
            out,
            under(
                f"gtFine/{part}",
                keep=f"gtFine/{part}",
                suffixes=("_polygons.json", "_labelIds.png", "_instanceIds.png"),
            ),
            progress=progress,
        )
    write_train_ids(out, workers=min(8, multiprocessing.cpu_count()), progress=progress)
