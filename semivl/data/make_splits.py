"""`semivl splits <dataset>`: the labelled/unlabelled lists and the val list of a dataset.

Two sources:

* ``official``: the upstream lists (UniMatch's for VOC, COCO and Cityscapes; SemiVL's for
  ADE20K) downloaded from GitHub at the commit pinned in ``config/datasets/<dataset>.yaml``
  into a cache, verified by sha256 (pinned in the dataset config, or in
  ``config/data.lock.yaml`` on first download; a cached list is verified again each time it
  is used) and by line counts: labelled = the split's size, unlabelled = train - labelled,
  val = the val count (``expected_counts``). Every image they name must exist in the
  prepared dataset, and so must every labelled and val mask.
* ``generated``: nested prefixes of one shuffled list, as SemiVL's ``gen_ade_splits.py``:
  the labelled pool (sorted) is shuffled with ``random.Random(seed)``; a split of n takes the
  first n; unlabelled = the rest of the pool, then the training images outside the pool
  (sorted). For ADE20K with seed 0 this reproduces SemiVL's files.

With either source, no file may name an image twice and no training image may be in val.
"""

from __future__ import annotations

import random
from pathlib import Path

from semivl import lockfile
from semivl.config import ConfigError, DatasetConfig
from semivl.data.archives import lock_path
from semivl.data.layouts import labeled_pool, part_pairs
from semivl.data.splits import (
    Pair,
    SplitFileError,
    check_pairs_exist,
    read_split_file,
    require_disjoint_from_val,
    write_split_file,
)


def nested_split(
    pool: list[Pair], train: list[Pair], num_labeled: int, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """(labelled, unlabelled): the first ``num_labeled`` of the seeded shuffle of the sorted
    pool, and the rest of the pool followed by the training pairs outside it (sorted)."""
    pool = sorted(pool)
    if not 0 < num_labeled < len(pool):
        raise SplitFileError(
            f"a split of {num_labeled} labelled images needs 1.."
            f"{len(pool) - 1}, but the labelled pool has {len(pool)}"
        )
    random.Random(seed).shuffle(pool)
    in_pool = set(pool)
    return pool[:num_labeled], pool[num_labeled:] + sorted(p for p in train if p not in in_pool)


def generated_split(
    cfg: DatasetConfig, root: Path, num_labeled: int, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """(labelled, unlabelled) pairs of the dataset at ``root`` (see :func:`nested_split`)."""
    try:
        return nested_split(
            labeled_pool(cfg, root), part_pairs(cfg, root, "train"), num_labeled, seed
        )
    except SplitFileError as err:
        raise SplitFileError(f"{cfg.name} at {root}: {err}") from None


def official_file(
    cfg: DatasetConfig, file: str, cache_dir: Path, config_dir: Path, progress: bool = False
) -> list[Pair]:
    """Download (once) and read the upstream list ``file`` ("92/labeled.txt", "val.txt")."""
    official = cfg.official_splits
    if official is None:
        raise ConfigError(
            f"dataset {cfg.name}: no official_splits in its config; use --source generated"
        )
    dest = Path(cache_dir) / cfg.name / official.commit / file
    lock_key = f"{cfg.name}/splits/{official.commit[:12]}/{file}"
    published = official.sha256.get(file)
    lockfile.fetch_pinned(
        [official.file_url(file)],
        dest,
        lock_path(config_dir),
        lock_key,
        "dataset archives and split lists",
        expected=published,
        pinned_in=(
            f"config/datasets/{cfg.name}.yaml"
            if published
            else f"{lock_path(config_dir)}, {lock_key}"
        ),
        error=SplitFileError,
        progress=progress,
        failure=lambda err: f"official {cfg.name} split list {file}: {err}",
    )
    return read_split_file(dest)


def _require_count(pairs: list[Pair], expected: int | None, what: str) -> None:
    if expected is not None and len(pairs) != expected:
        raise SplitFileError(
            f"{what}: {len(pairs)} lines, expected {expected}; the upstream "
            f"file does not match this split's configured size"
        )


def official_split(
    cfg: DatasetConfig, split: str, cache_dir: Path, config_dir: Path
) -> tuple[list[Pair], list[Pair]]:
    """(labelled, unlabelled) pairs of the upstream split, verified by line counts."""
    labeled = official_file(cfg, f"{split}/labeled.txt", cache_dir, config_dir)
    unlabeled = official_file(cfg, f"{split}/unlabeled.txt", cache_dir, config_dir)
    _require_count(labeled, cfg.splits[split], f"{cfg.name} {split}/labeled.txt")
    both = {image for image, _ in labeled} & {image for image, _ in unlabeled}
    if both:
        raise SplitFileError(
            f"{cfg.name} {split}: {len(both)} images are both labelled and "
            f"unlabelled, e.g. {sorted(both)[0]}"
        )
    _require_count(
        unlabeled,
        None
        if cfg.expected_counts.get("train") is None
        else cfg.expected_counts["train"] - len(labeled),
        f"{cfg.name} {split}/unlabeled.txt",
    )
    return labeled, unlabeled


def write_splits(
    cfg: DatasetConfig,
    root: Path,
    out_dir: Path,
    *,
    splits: list[str],
    val: bool,
    source: str,
    seed: int,
    cache_dir: Path,
    config_dir: Path,
) -> list[Path]:
    """Write ``<out_dir>/<split>/{labeled,unlabeled}.txt`` and (``val``) ``val.txt``."""
    root, out_dir = Path(root), Path(out_dir)
    if source == "official" and seed != 0:
        raise SplitFileError(
            f"--seed {seed}: official splits have no seed; use --source generated for a new draw"
        )
    for split in splits:
        if split not in cfg.splits:
            raise SplitFileError(
                f"split {split!r} is not defined for {cfg.name}; known splits: {sorted(cfg.splits)}"
            )
    written = []
    if source == "official":
        val_pairs = official_file(cfg, "val.txt", cache_dir, config_dir)
        _require_count(val_pairs, cfg.expected_counts.get("val"), f"{cfg.name} val.txt")
    else:
        val_pairs = part_pairs(cfg, root, "val")
    for split in splits:
        if source == "official":
            labeled, unlabeled = official_split(cfg, split, cache_dir, config_dir)
        else:
            labeled, unlabeled = generated_split(cfg, root, cfg.splits[split], seed)
        folder = out_dir / split
        require_disjoint_from_val(labeled, val_pairs, f"{cfg.name} {split}/labeled.txt")
        require_disjoint_from_val(unlabeled, val_pairs, f"{cfg.name} {split}/unlabeled.txt")
        check_pairs_exist(root, labeled, folder / "labeled.txt")
        check_pairs_exist(root, unlabeled, folder / "unlabeled.txt", check_masks=False)
        write_split_file(folder / "labeled.txt", labeled)
        write_split_file(folder / "unlabeled.txt", unlabeled)
        print(
            f"wrote {folder}/labeled.txt ({len(labeled)}) and unlabeled.txt "
            f"({len(unlabeled)}) [{source}]"
        )
        written += [folder / "labeled.txt", folder / "unlabeled.txt"]
    if val:
        pairs = val_pairs
        check_pairs_exist(root, pairs, out_dir / "val.txt")
        write_split_file(out_dir / "val.txt", pairs)
        print(f"wrote {out_dir}/val.txt ({len(pairs)}) [{source}]")
        written.append(out_dir / "val.txt")
    return written
