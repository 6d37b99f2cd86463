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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from semivl.atomic import atomic_dir
from semivl.data.palette import voc_palette
from semivl.data.prepare.toy_captions import (  # noqa: F401 - the toy's public names
    BACKGROUND_PHRASE_RATE,
    BACKGROUND_WORDS,
    CAPTION_OPENINGS,
    CAPTION_WORDS,
    COLOUR_WORD_RATE,
    PATTERN_WORD_RATE,
    make_caption,
    parse_caption,
    read_captions,
    write_captions,
)
from semivl.data.prepare.toy_world import (  # noqa: F401
    CLASS_NAMES,
    IGNORE_INDEX,
    MODE_DIR,
    MODE_PROBS,
    NUM_MODES,
    PATTERN_PERIOD,
    PATTERNS,
    SCHEMES,
    ToySpec,
    boundaries,
    dominant_modes,
    draw_background,
    draw_blob,
    draw_pattern,
    look_name,
    look_of,
    mode_of_value,
    mode_value,
    visible_classes,
    visible_looks,
)

# The random stream of the pretraining images: scene i uses the seed sequence [seed, i] with
# spawn key (PRETRAIN_STREAM,), an independent stream from segmentation image i's plain
# default_rng([seed, i]).
PRETRAIN_STREAM = 1


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


def make_sample(rng: np.random.Generator, spec: ToySpec) -> ToySample:
    """Draw one scene: image, palette mask, look map, caption and background kind."""
    h = int(rng.integers(spec.min_side, spec.max_side + 1))
    w = int(rng.integers(spec.min_side, spec.max_side + 1))
    background = tuple(BACKGROUND_WORDS)[int(rng.integers(len(BACKGROUND_WORDS)))]
    pixels = draw_background(rng, background, h, w)
    label = np.zeros((h, w), dtype=np.uint8)
    modes = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, spec.max_objects + 1))):
        cls = int(rng.integers(1, len(CLASS_NAMES)))
        mode = int(rng.choice(NUM_MODES, p=MODE_PROBS))
        r = float(rng.uniform(9, max(10.0, min(h, w) / 2.8)))
        cx = float(rng.uniform(r * 0.6, w - r * 0.6))
        cy = float(rng.uniform(r * 0.6, h - r * 0.6))
        shape = Image.new("L", (w, h), 0)
        ImageDraw.Draw(shape).polygon(draw_blob(rng, cx, cy, r), fill=1)
        inside = np.asarray(shape, dtype=bool)
        scheme, pattern = look_of(cls, mode)
        _, body, accent = SCHEMES[scheme]
        body_rgb = np.clip(np.array(body) + rng.normal(0, 12, size=3), 0, 255)
        accent_rgb = np.clip(np.array(accent) + rng.normal(0, 12, size=3), 0, 255)
        marks = draw_pattern(rng, pattern, h, w)
        pixels[inside] = np.where(marks[inside][:, None], accent_rgb, body_rgb)
        label[inside] = cls
        modes[inside] = mode_value(cls, mode)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(radius=0.5))
    noisy = np.asarray(image, dtype=np.float64) + rng.normal(0, 5, size=(h, w, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    edges = boundaries(label)
    label[edges] = IGNORE_INDEX
    modes[edges] = IGNORE_INDEX
    caption = make_caption(rng, label, modes, background)
    mask = Image.fromarray(label, mode="P")
    mask.putpalette(voc_palette())
    return ToySample(
        image,
        mask,
        Image.fromarray(modes, mode="L"),
        caption,
        background,
        tuple(visible_looks(modes)),
    )


def pretraining_sample(seed: int, index: int, spec: ToySpec) -> ToySample:
    """Scene ``index`` of the captioned pretraining set of ``seed``."""
    stream = np.random.SeedSequence([seed, index], spawn_key=(PRETRAIN_STREAM,))
    return make_sample(np.random.default_rng(stream), spec)


def write_toy(out: Path, seed: int = 0, spec: ToySpec | None = None, progress: bool = True) -> None:
    """Write the toy dataset into the existing, empty folder ``out`` (VOC layout plus
    ``SegmentationMode/`` and ``captions.tsv``)."""
    spec = spec or ToySpec()
    out = Path(out)
    for sub in ("JPEGImages", "SegmentationClass", MODE_DIR):
        (out / sub).mkdir()
    (out / "ImageSets" / "Segmentation").mkdir(parents=True)
    total = spec.num_train + spec.num_val + spec.num_dev
    ids = [f"toy_{i:05d}" for i in range(total)]
    captions = []
    for i, sample_id in enumerate(tqdm(ids, desc="toy dataset", unit="img", disable=not progress)):
        sample = make_sample(np.random.default_rng([seed, i]), spec)
        sample.image.save(out / "JPEGImages" / f"{sample_id}.jpg", quality=spec.jpeg_quality)
        sample.mask.save(out / "SegmentationClass" / f"{sample_id}.png", optimize=False)
        sample.modes.save(out / MODE_DIR / f"{sample_id}.png", optimize=False)
        captions.append((sample_id, sample.caption))
    sets = out / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("".join(f"{s}\n" for s in ids[: spec.num_train]))
    val_end = spec.num_train + spec.num_val
    (sets / "val.txt").write_text("".join(f"{s}\n" for s in ids[spec.num_train : val_end]))
    if spec.num_dev:
        (sets / "dev.txt").write_text("".join(f"{s}\n" for s in ids[val_end:]))
    write_captions(out / "captions.tsv", captions)


def generate_toy(
    out: Path, seed: int = 0, spec: ToySpec | None = None, force: bool = False
) -> Path:
    """Write the toy dataset to ``out`` in the VOC layout.

    Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``,
    ``SegmentationMode/<id>.png``, ``ImageSets/Segmentation/{train,val,dev}.txt`` (one id a
    line; dev holds the tuning images, drawn after train and val so that those stay the same
    bytes) and ``captions.tsv``. The dataset is built in a temporary sibling folder and renamed into
    place, so an interrupted run leaves nothing that looks complete.
    """
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to regenerate it")
    with atomic_dir(out) as tmp:
        write_toy(tmp, seed, spec)
    return out


def write_caption_set(
    out: Path, num_images: int, seed: int = 0, spec: ToySpec | None = None, progress: bool = True
) -> None:
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
    write_captions(out / "captions.tsv", rows)


def generate_caption_set(
    out: Path,
    num_images: int,
    seed: int = 0,
    spec: ToySpec | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
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
