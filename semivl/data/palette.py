"""Colour palettes for masks: the Pascal VOC colour map, and the Cityscapes colours."""

from __future__ import annotations

from semivl.config import DatasetConfig

# Cityscapes' official colours of its 19 train ids (cityscapesscripts' label table).
CITYSCAPES_COLOURS = [
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
]


def voc_palette(num: int = 256) -> list[int]:
    """The standard Pascal VOC colour map as a flat PIL palette (index 255 is off-white)."""
    palette = []
    for index in range(num):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.extend((r, g, b))
    return palette


def dataset_palette(cfg: DatasetConfig) -> list[int]:
    """A flat 256-entry PIL palette for ``cfg``'s class indices (255 = ignore, off-white).

    Cityscapes uses its official colours; the other datasets use the VOC colour map, as
    UniMatch's and SemiVL's visualisations do.
    """
    palette = voc_palette()
    if cfg.layout == "cityscapes":
        for index, colour in enumerate(CITYSCAPES_COLOURS[: cfg.num_classes]):
            palette[3 * index : 3 * index + 3] = colour
    return palette
