"""`semivl data check`: is a prepared dataset complete and consistent?

Per part (train, val): the number of image/mask pairs against the configured count, images or
masks missing, images or masks that cannot be decoded, masks whose size differs from their
image, and mask values outside ``[0, num_classes) ∪ {ignore}`` (after ``reduce_zero_label`` or
``label_offset``). A training image listed without a mask (``None``, your own dataset's
unlabelled-only images) is decoded and counted; in val it is a missing mask.
Images and masks are decoded in a worker pool; a ``sample`` checks a fixed, evenly spaced
subset of pairs (counts are always complete).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from semivl.config import DatasetConfig
from semivl.data.layouts import PARTS, part_pairs
from semivl.data.masks import DataError, read_mask
from semivl.data.splits import NO_MASK, Pair

SHOW = 3  # example file names per problem in the summary


@dataclass
class PartReport:
    """What the check found in one part."""

    part: str
    pairs: int
    expected: int | None
    checked: int = 0
    missing_images: list[str] = field(default_factory=list)
    missing_masks: list[str] = field(default_factory=list)
    unreadable_images: list[str] = field(default_factory=list)
    unreadable_masks: list[str] = field(default_factory=list)
    size_mismatch: list[str] = field(default_factory=list)
    bad_values: list[str] = field(default_factory=list)
    values: set[int] = field(default_factory=set)
    unlabelled: int = 0  # checked training images listed without a mask (unlabelled only)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.expected is not None and self.pairs != self.expected:
            found.append(f"{self.part}: {self.pairs} pairs, expected {self.expected}")
        for what, names in (
            ("missing images", self.missing_images),
            ("missing masks", self.missing_masks),
            ("unreadable images", self.unreadable_images),
            ("unreadable masks", self.unreadable_masks),
            ("mask size differs from image", self.size_mismatch),
            ("mask values out of range", self.bad_values),
        ):
            if names:
                found.append(f"{self.part}: {len(names)} {what}, e.g. {', '.join(names[:SHOW])}")
        return found


@dataclass
class CheckReport:
    """The whole dataset's check; ``summary()`` is the one-screen table."""

    dataset: str
    root: Path
    parts: list[PartReport]

    @property
    def problems(self) -> list[str]:
        return [p for part in self.parts for p in part.problems]

    def summary(self) -> str:
        head = (
            f"{'part':<6} {'pairs':>8} {'expected':>9} {'checked':>8} {'no image':>9} "
            f"{'no mask':>8} {'unreadable':>10} {'size':>6} {'values':>7}  mask values seen"
        )
        lines = [f"data check: {self.dataset} at {self.root}", head, "-" * len(head)]
        for p in self.parts:
            seen = sorted(p.values)
            shown = f"{seen[0]}..{seen[-1]} ({len(seen)} distinct)" if seen else "-"
            expected = "-" if p.expected is None else str(p.expected)
            lines.append(
                f"{p.part:<6} {p.pairs:>8} {expected:>9} {p.checked:>8} "
                f"{len(p.missing_images):>9} {len(p.missing_masks):>8} "
                f"{len(p.unreadable_images) + len(p.unreadable_masks):>10} "
                f"{len(p.size_mismatch):>6} {len(p.bad_values):>7}  {shown}"
            )
        lines += [
            f"{p.part}: {p.unlabelled} of the checked images have no mask (unlabelled only)"
            for p in self.parts
            if p.unlabelled
        ]
        problems = self.problems
        lines.append("OK" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems))
        return "\n".join(lines)


def _check_pair(
    pair: Pair, root: Path, cfg: DatasetConfig, unlabelled_ok: bool = False
) -> tuple[str, str, list[int]]:
    """('ok'|'unlabelled'|'no_image'|'no_mask'|'bad_image'|'bad_mask'|'size'|'values', name,
    distinct mask values) of one pair. A ``None`` mask is 'unlabelled' where ``unlabelled_ok``
    (a training part) once the image decodes, and 'no_mask' elsewhere."""
    image, mask = pair
    image_path, mask_path = root / image, root / mask
    if not image_path.is_file():
        return "no_image", image, []
    if mask == NO_MASK:
        if not unlabelled_ok:
            return "no_mask", f"{image} (listed without a mask)", []
        try:
            with Image.open(image_path) as handle:
                handle.load()
        except OSError as err:
            return "bad_image", f"{image} ({type(err).__name__}: {err})", []
        return "unlabelled", image, []
    if not mask_path.is_file():
        return "no_mask", mask, []
    try:
        with Image.open(image_path) as handle:
            handle.load()  # decodes: a truncated or corrupt file fails here, not in training
            size = handle.size
    except OSError as err:
        return "bad_image", f"{image} ({type(err).__name__}: {err})", []
    try:
        labels = read_mask(mask_path, cfg, check=False)
    except OSError as err:
        return "bad_mask", f"{mask} ({type(err).__name__}: {err})", []
    except DataError as err:
        return "values", f"{mask} ({err})", []
    values = np.unique(labels).tolist()
    if (labels.shape[1], labels.shape[0]) != size:
        found = f"{labels.shape[1]}x{labels.shape[0]}"
        return "size", f"{mask} {found} vs image {size[0]}x{size[1]}", values
    bad = [v for v in values if v >= cfg.num_classes and v != cfg.ignore_index]
    if bad:
        return "values", f"{mask} (values {bad[:5]})", values
    return "ok", mask, values


def _sample(pairs: list[Pair], sample: int | None) -> list[Pair]:
    if sample is None or sample >= len(pairs):
        return pairs
    step = len(pairs) / sample
    return [pairs[int(i * step)] for i in range(sample)]


def check_pairs(
    cfg: DatasetConfig,
    root: Path,
    part: str,
    pairs: list[Pair],
    *,
    sample: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PartReport:
    """Check the ``pairs`` of one part (paths relative to ``root``, or absolute)."""
    report = PartReport(part, len(pairs), cfg.expected_counts.get(part))
    chosen = _sample(pairs, sample)
    check = partial(_check_pair, root=Path(root), cfg=cfg, unlabelled_ok=part == "train")
    bar = partial(
        tqdm, total=len(chosen), desc=f"check {cfg.name} {part}", unit="pair", disable=not progress
    )
    if workers > 1 and len(chosen) > 256:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = list(bar(pool.imap(check, chosen, chunksize=64)))
    else:
        results = list(bar(map(check, chosen)))
    buckets = {
        "no_image": report.missing_images,
        "no_mask": report.missing_masks,
        "bad_image": report.unreadable_images,
        "bad_mask": report.unreadable_masks,
        "size": report.size_mismatch,
        "values": report.bad_values,
    }
    for status, name, values in results:
        report.values.update(values)
        if status in buckets:
            buckets[status].append(name)
        report.unlabelled += status == "unlabelled"
    report.checked = len(chosen)
    return report


def check_dataset(
    cfg: DatasetConfig,
    root: Path,
    *,
    sample: int | None = None,
    workers: int = 1,
    progress: bool = True,
) -> CheckReport:
    """Check the prepared dataset at ``root``; problems are in the report, not raised."""
    root = Path(root)
    reports = [
        check_pairs(
            cfg,
            root,
            part,
            part_pairs(cfg, root, part),
            sample=sample,
            workers=workers,
            progress=progress,
        )
        for part in PARTS
    ]
    return CheckReport(cfg.name, root, reports)


def require_valid(report: CheckReport) -> None:
    """Raise :class:`DataError` listing the problems if the check found any."""
    if report.problems:
        raise DataError(
            f"{report.root}: the {report.dataset} data check failed:\n  "
            + "\n  ".join(report.problems)
        )
