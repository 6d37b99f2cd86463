"""ADE20K (SceneParsing 2016, ``ADEChallengeData2016.zip``): 20,210 train and 2,000 val images.

Annotations are kept as published (0 = other, 1-150 = classes); ``reduce_zero_label`` in the
dataset config maps them to 0-149 and 255 when they are read, as SemiVL does.
"""

from __future__ import annotations

from pathlib import Path

from semivl.data.archives import extract, under

ROOT = "ADEChallengeData2016"


def required_archives(cfg) -> list[str]:
    return ["scene_parsing"]


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    for folder, suffix in (("images", ".jpg"), ("annotations", ".png")):
        extract(
            archives["scene_parsing"],
            out,
            under(f"{ROOT}/{folder}", keep=folder, suffixes=(suffix,)),
            progress=progress,
        )
