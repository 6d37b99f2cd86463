"""A small generated dataset in the Pascal VOC on-disk layout, for the demo and the tests, with
a caption per image and a separate captioned image set for pretraining the demo's tiny CLIP.

Each image shows a background of one of three kinds (a plain gradient wall, stripes or
scribbles) with one to three objects of four shape classes (disc, square, triangle, ring). Each
class prefers one colour of a shared palette but often takes another, the stripes and
scribbles use the same colours, and shapes are rotated, scaled and may occlude each other:
colour is a weak cue and shape the reliable one, so a handful of labels is not enough to learn
the classes well. Masks are palette PNGs with 255 on object boundaries, as in VOC.

Each image also gets a caption naming the object classes visible in its mask (largest first)
and, usually, the background kind, in the words of :data:`CAPTION_WORDS` and
:data:`BACKGROUND_WORDS`. Like web captions, they rarely use the class's own name for some
classes ("hoop" or "circle outline" for a ring) and never say "background": the class
definitions of ``config/classes/toy.yaml`` list these words, the class names alone do not.

The output is a pure function of the seed (same seed, same bytes). The pretraining set draws
from a different random stream than the segmentation images, so it never contains them.
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

# How captions name each object class: (words, probability). The class name is one option.
CAPTION_WORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "disc": (("disc", 0.2), ("dot", 0.4), ("filled circle", 0.4)),
    "square": (("square", 0.5), ("block", 0.3), ("box", 0.2)),
    "triangle": (("triangle", 0.8), ("wedge", 0.2)),
    "ring": (("ring", 0.15), ("hoop", 0.45), ("circle outline", 0.4)),
}
# Background kinds and the phrases a caption may end with (70% of captions do).
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "wall": ("on a plain wall", "on a wall"),
    "stripes": ("on stripes", "with stripes"),
    "scribbles": ("with scribbles", "on scribbles"),
}
BACKGROUND_PHRASE_RATE = 0.7
CAPTION_OPENINGS = ("a photo of", "an image of", "a picture of")
# The random stream of the pretraining images: scene i uses the seed sequence [seed, i] with
# spawn key (PRETRAIN_STREAM,), an independent stream from segmentation image i's plain
# default_rng([seed, i]).
PRETRAIN_STREAM = 1

# Colours shared by all object classes and by the background stripes and scribbles.
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
    max_objects: int = 3  # objects drawn per image: 1 to this many


@dataclass(frozen=True)
class ToySample:
    """One generated scene: the image, its palette mask, its caption and background kind."""

    image: Image.Image
    mask: Image.Image
    caption: str
    background: str


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c0, c1 = rng.uniform(60, 190, size=(2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1) / 2
    img = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    img += rng.normal(0, 12, size=(h, w, 3))
    return img


def _palette_colour(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(v) for v in _PALETTE_RGB[rng.integers(len(_PALETTE_RGB))])


def _draw_background_kind(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str,
                          h: int, w: int) -> None:
    if kind == "scribbles":  # random lines in the object colours
        for _ in range(int(rng.integers(3, 7))):
            x0, x1 = rng.uniform(0, w, size=2)
            y0, y1 = rng.uniform(0, h, size=2)
            draw.line([(x0, y0), (x1, y1)], fill=_palette_colour(rng),
                      width=int(rng.integers(1, 3)))
    elif kind == "stripes":  # parallel lines of one object colour
        colour = _palette_colour(rng)
        angle = rng.uniform(0, math.pi)
        gap = rng.uniform(7, 12)
        offset = rng.uniform(0, gap)
        dx, dy = math.cos(angle), math.sin(angle)
        length = 2 * max(h, w)
        for k in range(-int(length / gap), int(length / gap) + 1):
            cx, cy = w / 2 - dy * (k * gap + offset), h / 2 + dx * (k * gap + offset)
            draw.line([(cx - dx * length, cy - dy * length),
                       (cx + dx * length, cy + dy * length)], fill=colour, width=2)


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


def visible_classes(label: np.ndarray) -> list[int]:
    """Object classes with at least one labelled pixel, largest area first (ties: index)."""
    counts = np.bincount(label[label != IGNORE_INDEX].ravel(), minlength=len(CLASS_NAMES))
    present = [c for c in range(1, len(CLASS_NAMES)) if counts[c] > 0]
    return sorted(present, key=lambda c: (-int(counts[c]), c))


def make_caption(rng: np.random.Generator, label: np.ndarray, background: str) -> str:
    """A caption naming every object class visible in ``label`` once, largest first, in one
    of its :data:`CAPTION_WORDS`, usually followed by a background phrase."""
    parts = []
    for cls in visible_classes(label):
        words, weights = zip(*CAPTION_WORDS[CLASS_NAMES[cls]], strict=True)
        parts.append("a " + words[int(rng.choice(len(words), p=weights))])
    if not parts:  # every object occluded or outside the image
        objects = "nothing"
    elif len(parts) == 1:
        objects = parts[0]
    else:
        objects = ", ".join(parts[:-1]) + " and " + parts[-1]
    caption = f"{CAPTION_OPENINGS[int(rng.integers(len(CAPTION_OPENINGS)))]} {objects}"
    if rng.random() < BACKGROUND_PHRASE_RATE:
        phrases = BACKGROUND_WORDS[background]
        caption += " " + phrases[int(rng.integers(len(phrases)))]
    return caption


def parse_caption(caption: str) -> tuple[list[str], str | None]:
    """The class names a caption mentions (in order) and its background kind (``None`` without
    a background phrase): the inverse of :func:`make_caption`, for checks."""
    owner = {word: name for name, options in CAPTION_WORDS.items() for word, _ in options}
    body, background = caption, None
    for kind, phrases in BACKGROUND_WORDS.items():
        for phrase in phrases:
            if body.endswith(" " + phrase):
                body, background = body[: -len(phrase) - 1], kind
    opening = next((o for o in CAPTION_OPENINGS if body.startswith(o + " ")), None)
    if opening is None:
        raise ValueError(f"caption {caption!r}: does not start with one of {CAPTION_OPENINGS}")
    body = body[len(opening) + 1:]
    if body == "nothing":
        return [], background
    names = []
    for part in body.replace(" and ", ", ").split(", "):
        word = part.removeprefix("a ")
        if word not in owner:
            raise ValueError(f"caption {caption!r}: unknown object words {part!r}")
        names.append(owner[word])
    return names, background


def make_sample(rng: np.random.Generator, spec: ToySpec) -> ToySample:
    """Draw one scene: image, palette mask, caption and background kind."""
    h = int(rng.integers(spec.min_side, spec.max_side + 1))
    w = int(rng.integers(spec.min_side, spec.max_side + 1))
    pixels = _background(rng, h, w)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    background = tuple(BACKGROUND_WORDS)[int(rng.integers(len(BACKGROUND_WORDS)))]
    _draw_background_kind(draw, rng, background, h, w)
    label = Image.new("L", (w, h), 0)
    label_draw = ImageDraw.Draw(label)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
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
    caption = make_caption(rng, label_arr, background)
    mask = Image.fromarray(label_arr, mode="P")
    mask.putpalette(voc_palette())
    return ToySample(image, mask, caption, background)


def _write_captions(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("".join(f"{sample_id}\t{caption}\n" for sample_id, caption in rows))


def read_captions(path: Path) -> dict[str, str]:
    """``captions.tsv`` (``<id><TAB><caption>`` a line) as a dict."""
    out = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        sample_id, sep, caption = line.partition("\t")
        if not sep or not caption:
            raise ValueError(f"{path}:{number}: expected '<id><TAB><caption>', got {line!r}")
        out[sample_id] = caption
    return out


def write_toy(out: Path, seed: int = 0, spec: ToySpec | None = None,
              progress: bool = True) -> None:
    """Write the toy dataset into the existing, empty folder ``out`` (VOC layout plus
    ``captions.tsv``)."""
    spec = spec or ToySpec()
    out = Path(out)
    (out / "JPEGImages").mkdir()
    (out / "SegmentationClass").mkdir()
    (out / "ImageSets" / "Segmentation").mkdir(parents=True)
    total = spec.num_train + spec.num_val
    ids = [f"toy_{i:05d}" for i in range(total)]
    captions = []
    for i, sample_id in enumerate(tqdm(ids, desc="toy dataset", unit="img",
                                       disable=not progress)):
        sample = make_sample(np.random.default_rng([seed, i]), spec)
        sample.image.save(out / "JPEGImages" / f"{sample_id}.jpg", quality=spec.jpeg_quality)
        sample.mask.save(out / "SegmentationClass" / f"{sample_id}.png", optimize=False)
        captions.append((sample_id, sample.caption))
    sets = out / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{s}\n" for s in ids[: spec.num_train]))
    (sets / "val.txt").write_text("".join(f"{s}\n" for s in ids[spec.num_train:]))
    _write_captions(out / "captions.tsv", captions)


def generate_toy(out: Path, seed: int = 0, spec: ToySpec | None = None,
                 force: bool = False) -> Path:
    """Write the toy dataset to ``out`` in the VOC layout.

    Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``,
    ``ImageSets/Segmentation/{train,val}.txt`` (one id a line) and ``captions.tsv``. The
    dataset is built in a temporary sibling folder and renamed into place, so an interrupted
    run leaves nothing that looks complete.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to regenerate it")
    with atomic_dir(out) as tmp:
        write_toy(tmp, seed, spec)
    return out


def write_caption_set(out: Path, num_images: int, seed: int = 0, spec: ToySpec | None = None,
                      progress: bool = True) -> None:
    """Write ``num_images`` captioned scenes (no masks) into the existing, empty folder ``out``:
    ``images/<id>.jpg`` and ``captions.tsv``. They come from the pretraining stream, so none
    is a segmentation image (train or val) of the same seed."""
    spec = spec or ToySpec()
    out = Path(out)
    (out / "images").mkdir()
    rows = []
    for i in tqdm(range(num_images), desc="captioned scenes", unit="img", disable=not progress):
        sample_id = f"scene_{i:06d}"
        stream = np.random.SeedSequence([seed, i], spawn_key=(PRETRAIN_STREAM,))
        sample = make_sample(np.random.default_rng(stream), spec)
        sample.image.save(out / "images" / f"{sample_id}.jpg", quality=spec.jpeg_quality)
        rows.append((sample_id, sample.caption))
    _write_captions(out / "captions.tsv", rows)


def generate_caption_set(out: Path, num_images: int, seed: int = 0,
                         spec: ToySpec | None = None, force: bool = False,
                         progress: bool = True) -> Path:
    """Write the captioned pretraining scenes to ``out`` (atomically; see
    :func:`write_caption_set`)."""
    out = Path(out)
    if num_images < 1:
        raise ValueError(f"num_images: expected at least 1, got {num_images}")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to regenerate it")
    with atomic_dir(out) as tmp:
        write_caption_set(tmp, num_images, seed, spec, progress=progress)
    return out


# `semivl data prepare toy`: the toy dataset has no archives; it is generated (seed 0).


def required_archives(cfg) -> list[str]:
    return []


def build(cfg, archives: dict[str, Path], out: Path, progress: bool = True) -> None:
    write_toy(out, seed=0, progress=progress)
