"""The toy world: its classes, the 16 looks (colour scheme x pattern, four per class, in
GF(4)), its size parameters and the drawing primitives (:mod:`semivl.data.prepare.toy` tells
the whole story)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = ("background", "cat", "dog", "bird", "fish")
IGNORE_INDEX = 255
NUM_MODES = 4  # appearance modes per object class
MODE_PROBS = (0.4, 0.3, 0.2, 0.1)
MODE_DIR = "SegmentationMode"

# Colour schemes: (name, body colour, pattern colour).
SCHEMES: tuple[tuple[str, tuple[int, int, int], tuple[int, int, int]], ...] = (
    ("red", (205, 45, 40), (250, 205, 70)),
    ("blue", (45, 75, 215), (235, 235, 235)),
    ("green", (40, 165, 55), (215, 235, 90)),
    ("black", (30, 30, 35), (190, 190, 200)),
)
PATTERNS = ("plain", "striped", "spotted", "checkered")
_TIMES_TWO = (0, 2, 3, 1)  # multiplication by 2 in GF(4); addition is xor


def look_of(cls: int, mode: int) -> tuple[int, int]:
    """(scheme index, pattern index) of object class ``cls`` (1-4) in appearance ``mode``."""
    k = cls - 1
    return k ^ mode, k ^ _TIMES_TWO[mode]


def look_name(cls: int, mode: int) -> str:
    """A look's words, e.g. ``"striped red"``."""
    scheme, pattern = look_of(cls, mode)
    return f"{PATTERNS[pattern]} {SCHEMES[scheme][0]}"


def mode_value(cls: int, mode: int) -> int:
    """The value of (class, mode) in a ``SegmentationMode`` map."""
    return 1 + NUM_MODES * (cls - 1) + mode


def mode_of_value(value: int) -> tuple[int, int]:
    """The inverse of :func:`mode_value`: (class, mode)."""
    return 1 + (value - 1) // NUM_MODES, (value - 1) % NUM_MODES


PATTERN_PERIOD = 6  # pixels: stripes and checks 3 wide, a spot every 6


@dataclass(frozen=True)
class ToySpec:
    """Size parameters of the toy dataset."""

    num_train: int = 240
    num_val: int = 60
    # The dev part (ImageSets/Segmentation/dev.txt): images of their own, after train and val,
    # on which `semivl sweep` tunes the toy recipes; never trained on, never reported.
    num_dev: int = 60
    min_side: int = 80
    max_side: int = 120
    jpeg_quality: int = 90
    max_objects: int = 3  # objects drawn per image: 1 to this many


def draw_background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A muted background of ``kind`` (low saturation, mid tones): no animal's look."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    grey = rng.uniform(110, 180)
    tint = rng.uniform(-15, 15, size=3)
    base = grey + tint
    if kind == "wall":  # a soft gradient
        angle = rng.uniform(0, 2 * math.pi)
        t = np.cos(angle) * xx / w + np.sin(angle) * yy / h
        shade = 25 * t
    elif kind == "floor":  # planks: bands about 12 pixels wide with dark seams
        width = rng.uniform(10, 15)
        band = np.floor((yy + rng.uniform(0, width)) / width)
        shade = 10 * np.sin(band * 2.3) - 30 * ((yy % width) < 1.5)
        base = base + np.array([12.0, 0.0, -12.0])  # a warm tone
    elif kind == "curtain":  # vertical folds
        period = rng.uniform(14, 22)
        shade = 22 * np.sin(2 * math.pi * xx / period + rng.uniform(0, 2 * math.pi))
    else:
        raise ValueError(f"unknown background kind {kind!r}")
    img = base[None, None] + shade[..., None]
    return img + rng.normal(0, 8, size=(h, w, 3))


def draw_blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple]:
    """A random smooth blob around (cx, cy): the same shape distribution for every class."""
    harmonics = [(k, rng.uniform(0, 0.22), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 4)]
    points = []
    for i in range(32):
        t = 2 * math.pi * i / 32
        radius = r * (1 + sum(a * math.cos(k * t + p) for k, a, p in harmonics))
        points.append((cx + radius * math.cos(t), cy + radius * math.sin(t)))
    return points


def draw_pattern(rng: np.random.Generator, pattern: int, h: int, w: int) -> np.ndarray:
    """Where the pattern colour goes (bool, image-sized), at a random angle and phase."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.uniform(0, math.pi)
    u = math.cos(angle) * xx + math.sin(angle) * yy + rng.uniform(0, PATTERN_PERIOD)
    v = -math.sin(angle) * xx + math.cos(angle) * yy + rng.uniform(0, PATTERN_PERIOD)
    half = PATTERN_PERIOD / 2
    if PATTERNS[pattern] == "plain":
        return np.zeros((h, w), dtype=bool)
    if PATTERNS[pattern] == "striped":
        return (np.floor(u / half) % 2) == 1
    if PATTERNS[pattern] == "spotted":
        du = (u % PATTERN_PERIOD) - half
        dv = (v % PATTERN_PERIOD) - half
        return du * du + dv * dv < 1.7**2
    return ((np.floor(u / half) + np.floor(v / half)) % 2) == 1  # checkered


def boundaries(label: np.ndarray) -> np.ndarray:
    """True where a pixel's 3x3 neighbourhood holds more than one label."""
    padded = np.pad(label, 1, mode="edge")
    h, w = label.shape
    edge = np.zeros_like(label, dtype=bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            edge |= padded[dy : dy + h, dx : dx + w] != label
    return edge


def visible_classes(label: np.ndarray) -> list[int]:
    """Object classes with at least one labelled pixel, largest area first (ties: index)."""
    counts = np.bincount(label[label != IGNORE_INDEX].ravel(), minlength=len(CLASS_NAMES))
    present = [c for c in range(1, len(CLASS_NAMES)) if counts[c] > 0]
    return sorted(present, key=lambda c: (-int(counts[c]), c))


def visible_looks(modes: np.ndarray) -> list[tuple[int, int]]:
    """(class, mode) of every look with a labelled pixel in a mode map, sorted."""
    values = np.unique(modes[(modes != IGNORE_INDEX) & (modes != 0)])
    return sorted(mode_of_value(int(v)) for v in values)


def dominant_modes(label: np.ndarray, modes: np.ndarray) -> dict[int, int]:
    """Per visible class, the mode covering most of its pixels (ties: the lower mode)."""
    out = {}
    for cls in visible_classes(label):
        values = modes[label == cls]
        counts = np.bincount(values - mode_value(cls, 0), minlength=NUM_MODES)[:NUM_MODES]
        out[cls] = int(np.argmax(counts))
    return out
