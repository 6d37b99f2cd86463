"""A small generated dataset in the Pascal VOC on-disk layout, for the demo and the tests, with
a caption per image and a separate captioned image set for pretraining the demo's tiny CLIP.

The toy world is built to have a long tail, as the real world has for CLIP and Pascal VOC. Each
image shows a muted background (a wall, a floor of planks or a folded curtain) with one to three
animals of four classes (cat, dog, bird, fish). The animals are random blobs: shape says nothing
about the class. What does is the *look*: a colour scheme (red, blue, green, black) and a
pattern (plain, striped, spotted, checkered), both fine enough for an 8-pixel patch to see.
There are 16 looks and each belongs to exactly one class, four per class (its *appearance
modes*): class k in mode m wears scheme k + m and pattern k + 2m, added and multiplied in
GF(4), so every scheme and every pattern occurs in every class and only the pair tells them
apart. A class takes its modes with probabilities 0.4 / 0.3 / 0.2 / 0.1 (:data:`MODE_PROBS`):
a handful of labelled images shows the common looks and misses rare ones, while thousands of
captioned scenes show all of them.

Captions name each visible animal once, largest first: a cat or dog mostly by its class name,
a bird or fish seldom (one time in ten; otherwise a "parrot" or "sparrow", a "trout" or
"goldfish"), sometimes with the words of its colour and pattern; they usually end with a
background phrase and never say "background". The class definitions of
``config/classes/toy.yaml`` list these words; the class names alone are weak cues for birds,
fish and the background.

Masks are palette PNGs with 255 on object boundaries, as in VOC. Beside them,
``SegmentationMode/<id>.png`` holds each pixel's look (0 background, ``1 + 4 (class - 1) +
mode`` for an animal, 255 where the class mask is 255), so that evaluation can report accuracy
per appearance mode.

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


# How captions name each object class: (word, probability). Cats and dogs are mostly called
# by their class name; birds and fish seldom are, mostly by their kind, as web captions seldom
# use a dataset's generic class names (and never say "background"). The class definitions
# (config/classes/toy.yaml) list these words; the names alone are weak cues for birds and fish.
CAPTION_WORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "cat": (("cat", 0.5), ("kitten", 0.3), ("kitty", 0.2)),
    "dog": (("dog", 0.5), ("puppy", 0.3), ("hound", 0.2)),
    "bird": (("bird", 0.1), ("parrot", 0.45), ("sparrow", 0.45)),
    "fish": (("fish", 0.1), ("trout", 0.45), ("goldfish", 0.45)),
}
# How often a caption names an object's colour and its pattern (a plain pattern goes unsaid).
COLOUR_WORD_RATE = 0.5
PATTERN_WORD_RATE = 0.5
# Background kinds and the phrases a caption may end with (70% of captions do).
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "wall": ("by a wall", "on a wall"),
    "floor": ("on the floor", "on a floor"),
    "curtain": ("by a curtain", "on a curtain"),
}
BACKGROUND_PHRASE_RATE = 0.7
CAPTION_OPENINGS = ("a photo of", "an image of", "a picture of")
# The random stream of the pretraining images: scene i uses the seed sequence [seed, i] with
# spawn key (PRETRAIN_STREAM,), an independent stream from segmentation image i's plain
# default_rng([seed, i]).
PRETRAIN_STREAM = 1
PATTERN_PERIOD = 6  # pixels: stripes and checks 3 wide, a spot every 6


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
    """One generated scene: image, palette mask, look map, caption, background kind, and the
    looks (class, mode) visible in it."""

    image: Image.Image
    mask: Image.Image
    modes: Image.Image
    caption: str
    background: str
    looks: tuple[tuple[int, int], ...]


def _background(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
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


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple]:
    """A random smooth blob around (cx, cy): the same shape distribution for every class."""
    harmonics = [(k, rng.uniform(0, 0.22), rng.uniform(0, 2 * math.pi)) for k in (2, 3, 4)]
    points = []
    for i in range(32):
        t = 2 * math.pi * i / 32
        radius = r * (1 + sum(a * math.cos(k * t + p) for k, a, p in harmonics))
        points.append((cx + radius * math.cos(t), cy + radius * math.sin(t)))
    return points


def _pattern(rng: np.random.Generator, pattern: int, h: int, w: int) -> np.ndarray:
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
        return du * du + dv * dv < 1.7 ** 2
    return ((np.floor(u / half) + np.floor(v / half)) % 2) == 1  # checkered


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


def visible_looks(modes: np.ndarray) -> list[tuple[int, int]]:
    """(class, mode) of every look with a labelled pixel in a mode map, sorted."""
    values = np.unique(modes[(modes != IGNORE_INDEX) & (modes != 0)])
    return sorted(mode_of_value(int(v)) for v in values)


def _dominant_modes(label: np.ndarray, modes: np.ndarray) -> dict[int, int]:
    """Per visible class, the mode covering most of its pixels (ties: the lower mode)."""
    out = {}
    for cls in visible_classes(label):
        values = modes[label == cls]
        counts = np.bincount(values - mode_value(cls, 0), minlength=NUM_MODES)[:NUM_MODES]
        out[cls] = int(np.argmax(counts))
    return out


def make_caption(rng: np.random.Generator, label: np.ndarray, modes: np.ndarray,
                 background: str) -> str:
    """A caption naming every object class visible in ``label`` once, largest first, in one
    of its :data:`CAPTION_WORDS`, sometimes with the colour and pattern of its dominant look,
    usually followed by a background phrase."""
    parts = []
    for cls, mode in _dominant_modes(label, modes).items():
        words, weights = zip(*CAPTION_WORDS[CLASS_NAMES[cls]], strict=True)
        scheme, pattern = look_of(cls, mode)
        adjectives = []
        if PATTERNS[pattern] != "plain" and rng.random() < PATTERN_WORD_RATE:
            adjectives.append(PATTERNS[pattern])
        if rng.random() < COLOUR_WORD_RATE:
            adjectives.append(SCHEMES[scheme][0])
        parts.append(" ".join(["a", *adjectives, words[int(rng.choice(len(words), p=weights))]]))
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


def parse_caption(caption: str) -> tuple[list[tuple[str, list[str]]], str | None]:
    """The objects a caption mentions, in order, as (class name, look words), and its
    background kind (``None`` without a background phrase): the inverse of
    :func:`make_caption`, for checks."""
    owner = {word: name for name, options in CAPTION_WORDS.items() for word, _ in options}
    look_words = set(PATTERNS) | {name for name, _, _ in SCHEMES}
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
    objects = []
    for part in body.replace(" and ", ", ").split(", "):
        *adjectives, word = part.removeprefix("a ").split(" ")
        if word not in owner or not set(adjectives) <= look_words:
            raise ValueError(f"caption {caption!r}: unknown object words {part!r}")
        objects.append((owner[word], adjectives))
    return objects, background


def make_sample(rng: np.random.Generator, spec: ToySpec) -> ToySample:
    """Draw one scene: image, palette mask, look map, caption and background kind."""
    h = int(rng.integers(spec.min_side, spec.max_side + 1))
    w = int(rng.integers(spec.min_side, spec.max_side + 1))
    background = tuple(BACKGROUND_WORDS)[int(rng.integers(len(BACKGROUND_WORDS)))]
    pixels = _background(rng, background, h, w)
    label = np.zeros((h, w), dtype=np.uint8)
    modes = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        mode = int(rng.choice(NUM_MODES, p=MODE_PROBS))
        r = float(rng.uniform(9, max(10.0, min(h, w) / 2.8)))
        cx = float(rng.uniform(r * 0.6, w - r * 0.6))
        cy = float(rng.uniform(r * 0.6, h - r * 0.6))
        shape = Image.new("L", (w, h), 0)
        ImageDraw.Draw(shape).polygon(_blob(rng, cx, cy, r), fill=1)
        inside = np.asarray(shape, dtype=bool)
        scheme, pattern = look_of(cls, mode)
        _, body, accent = SCHEMES[scheme]
        body_rgb = np.clip(np.array(body) + rng.normal(0, 12, size=3), 0, 255)
        accent_rgb = np.clip(np.array(accent) + rng.normal(0, 12, size=3), 0, 255)
        marks = _pattern(rng, pattern, h, w)
        pixels[inside] = np.where(marks[inside][:, None], accent_rgb, body_rgb)
        label[inside] = cls
        modes[inside] = mode_value(cls, mode)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(radius=0.5))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 5, size=(h, w, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    edges = _boundaries(label)
    label[edges] = IGNORE_INDEX
    modes[edges] = IGNORE_INDEX
    caption = make_caption(rng, label, modes, background)
    mask = Image.fromarray(label, mode="P")
    mask.putpalette(voc_palette())
    return ToySample(image, mask, Image.fromarray(modes, mode="L"), caption, background,
                     tuple(visible_looks(modes)))


def pretraining_sample(seed: int, index: int, spec: ToySpec) -> ToySample:
    """Scene ``index`` of the captioned pretraining set of ``seed``."""
    stream = np.random.SeedSequence([seed, index], spawn_key=(PRETRAIN_STREAM,))
    return make_sample(np.random.default_rng(stream), spec)


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
    ``SegmentationMode/`` and ``captions.tsv``)."""
    spec = spec or ToySpec()
    out = Path(out)
    for sub in ("JPEGImages", "SegmentationClass", MODE_DIR):
        (out / sub).mkdir()
    (out / "ImageSets" / "Segmentation").mkdir(parents=True)
    total = spec.num_train + spec.num_val
    ids = [f"toy_{i:05d}" for i in range(total)]
    captions = []
    for i, sample_id in enumerate(tqdm(ids, desc="toy dataset", unit="img",
                                       disable=not progress)):
        sample = make_sample(np.random.default_rng([seed, i]), spec)
        sample.image.save(out / "JPEGImages" / f"{sample_id}.jpg", quality=spec.jpeg_quality)
        sample.mask.save(out / "SegmentationClass" / f"{sample_id}.png", optimize=False)
        sample.modes.save(out / MODE_DIR / f"{sample_id}.png", optimize=False)
        captions.append((sample_id, sample.caption))
    sets = out / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{s}\n" for s in ids[: spec.num_train]))
    (sets / "val.txt").write_text("".join(f"{s}\n" for s in ids[spec.num_train:]))
    _write_captions(out / "captions.tsv", captions)
def generate_toy(out: Path, seed: int = 0, spec: ToySpec | None = None,
                 force: bool = False) -> Path:
    """Write the toy dataset to ``out`` in the VOC layout.

    Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``,
    ``SegmentationMode/<id>.png``, ``ImageSets/Segmentation/{train,val}.txt`` (one id a line)
    and ``captions.tsv``. The dataset is built in a temporary sibling folder and renamed into
    place, so an interrupted run leaves nothing that looks complete.
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
        sample = pretraining_sample(seed, i, spec)
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
