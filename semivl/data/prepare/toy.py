"""A small generated dataset in the Pascal VOC on-disk layout, for the demo and the tests.

Each image shows a textured background with one to three objects of four shape classes (disc,
square, triangle, ring). Each class prefers one colour of a shared palette but often takes
another, backgrounds carry clutter in the same colours, and shapes are rotated, scaled and may
occlude each other: colour is a weak cue and shape the reliable one, so a handful of labels is
not enough to learn the classes well. Masks are palette PNGs with 255 on object boundaries, as
in VOC.

The output is a pure function of the seed (same seed, same bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from semivl.atomic import atomic_dir
from semivl.data.palette import voc_palette

CLASS_NAMES = ("background", "disc", "square", "triangle", "ring")
IGNORE_INDEX = 255

# Colours shared by all object classes and by the background clutter.
_PALETTE_RGB = np.array(
    [
        (200, 60, 50),
        (60, 160, 70),
        (50, 90, 200),
        (220, 190, 60),
        (160, 80, 180),
        (70, 180, 190),
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class ToySpec:
    """Size parameters of the toy dataset."""

    num_train: int = 240
    num_val: int = 60
    min_side: int = 80
    max_side: int = 120
    jpeg_quality: int = 90


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c0, c1 = rng.uniform(60, 190, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    img += rng.normal(0, 12, size=(h, w, 3))
    return img


def _polygon(cx: float, cy: float, radius: float, sides: int, angle: float) -> list[tuple]:
    return [
        (cx + radius * math.cos(angle + 2 * math.pi * k / sides),
         cy + radius * math.sin(angle + 2 * math.pi * k / sides))
        for k in range(sides)
    ]


def _draw_shape(draw: ImageDraw.ImageDraw, cls: int, cx: float, cy: float, r: float,
                angle: float, fill) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if cls == 1:  # disc
        draw.ellipse(box, fill=fill)
    elif cls == 2:  # square
        draw.polygon(_polygon(cx, cy, r * 1.1, 4, angle), fill=fill)
    elif cls == 3:  # triangle
        draw.polygon(_polygon(cx, cy, r * 1.2, 3, angle), fill=fill)
    elif cls == 4:  # ring
        draw.ellipse(box, outline=fill, width=max(4, int(r * 0.45)))
    else:
        raise ValueError(f"unknown toy class {cls}")


def _boundaries(label: np.ndarray) -> np.ndarray:
    """True where a pixel's 3x3 neighbourhood holds more than one label."""
    padded = np.pad(label, 1, mode="edge")
    h, w = label.shape
    edge = np.zeros_like(label, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            edge |= padded[dy:dy + h, dx:dx + w] != label
    return edge


def make_sample(rng: np.random.Generator, spec: ToySpec) -> tuple[Image.Image, Image.Image]:
    """Draw one image and its palette mask."""
    h = int(rng.integers(spec.min_side, spec.max_side + 1))
    w = int(rng.integers(spec.min_side, spec.max_side + 1))
    pixels = _background(rng, h, w)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    # Background clutter in the object colours: lines and small blobs labelled background.
    for _ in range(int(rng.integers(2, 6))):
        colour = tuple(int(v) for v in _PALETTE_RGB[rng.integers(len(_PALETTE_RGB))])
        x0, x1 = rng.uniform(0, w, size=2)
        y0, y1 = rng.uniform(0, h, size=2)
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))
    label = Image.new("L", (w, h), 0)
    label_draw = ImageDraw.Draw(label)
    for _ in range(int(rng.integers(1, 4))):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        r = float(rng.uniform(10, min(h, w) / 2.8))
        cx = float(rng.uniform(r * 0.6, w - r * 0.6))
        cy = float(rng.uniform(r * 0.6, h - r * 0.6))
        angle = float(rng.uniform(0, 2 * math.pi))
        # Each class prefers one palette colour but takes any other colour 40% of the time.
        tone = cls - 1 if rng.random() < 0.6 else int(rng.integers(len(_PALETTE_RGB)))
        base = _PALETTE_RGB[tone]
        colour = tuple(int(v) for v in np.clip(base + rng.normal(0, 18, size=3), 0, 255))
        _draw_shape(draw, cls, cx, cy, r, angle, colour)
        _draw_shape(label_draw, cls, cx, cy, r, angle, cls)
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 6, size=(h, w, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    label_arr = np.asarray(label).copy()
    label_arr[_boundaries(label_arr)] = IGNORE_INDEX
    mask = Image.fromarray(label_arr, mode="P")
    mask.putpalette(voc_palette())
    return image, mask


def write_toy(out: Path, seed: int = 0, spec: ToySpec | None = None,
              progress: bool = True) -> None:
    """Write the toy dataset into the existing, empty folder ``out`` (VOC layout)."""
    spec = spec or ToySpec()
    out = Path(out)
    (out / "JPEGImages").mkdir()
    (out / "SegmentationClass").mkdir()
    (out / "ImageSets" / "Segmentation").mkdir(parents=True)
    total = spec.num_train + spec.num_val
    ids = [f"toy_{i:05d}" for i in range(total)]
    for i, sample_id in enumerate(tqdm(ids, desc="toy dataset", unit="img",
                                       disable=not progress)):
        rng = np.random.default_rng([seed, i])
        image, mask = make_sample(rng, spec)
        image.save(out / "JPEGImages" / f"{sample_id}.jpg", quality=spec.jpeg_quality)
        mask.save(out / "SegmentationClass" / f"{sample_id}.png", optimize=False)
    sets = out / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{s}\n" for s in ids[: spec.num_train]))
    (sets / "val.txt").write_text("".join(f"{s}\n" for s in ids[spec.num_train:]))


def generate_toy(out: Path, seed: int = 0, spec: ToySpec | None = None,
                 force: bool = False) -> Path:
    """Write the toy dataset to ``out`` in the VOC layout.

    Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` and
    ``ImageSets/Segmentation/{train,val}.txt`` (one id a line). The dataset is built in a
    temporary sibling folder and renamed into place, so an interrupted run leaves nothing
    that looks complete.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to regenerate it")
    with atomic_dir(out) as tmp:
        write_toy(tmp, seed, spec)
    return out


# `semivl data prepare toy`: the toy dataset has no archives; it is generated (seed 0).


def required_archives(cfg) -> list[str]:
    return []


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    write_toy(out, seed=0, progress=progress)
