"""The toy's captions: how a scene is described (class words, colour and pattern words,
background phrases), parsed back, and stored (``captions.txt``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semivl.data.prepare.toy_world import CLASS_NAMES, PATTERNS, SCHEMES, dominant_modes, look_of

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


def make_caption(
    rng: np.random.Generator, label: np.ndarray, modes: np.ndarray, background: str
) -> str:
    """A caption naming every object class visible in ``label`` once, largest first, in one
    of its :data:`CAPTION_WORDS`, sometimes with the colour and pattern of its dominant look,
    usually followed by a background phrase."""
    parts = []
    for cls, mode in dominant_modes(label, modes).items():
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
    body = body[len(opening) + 1 :]
    if body == "nothing":
        return [], background
    objects = []
    for part in body.replace(" and ", ", ").split(", "):
        *adjectives, word = part.removeprefix("a ").split(" ")
        if word not in owner or not set(adjectives) <= look_words:
            raise ValueError(f"caption {caption!r}: unknown object words {part!r}")
        objects.append((owner[word], adjectives))
    return objects, background


def write_captions(path: Path, rows: list[tuple[str, str]]) -> None:
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
