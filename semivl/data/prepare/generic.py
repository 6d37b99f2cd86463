"""Your own dataset (``layout: generic``): images and masks linked from the folders, or the
split list, that ``source:`` of ``config/datasets/<dataset>.yaml`` names.

``data/<dataset>/`` then holds the files at their paths inside the source (folders:
``images/<path>`` and ``masks/<path>``; a list: the paths its lines give) and two split files,
``train.txt`` and ``val.txt``, of ``image mask`` lines (``image None`` for a training image
without a mask: unlabelled only, never in val or a labelled split). Files are hard links by
default (no second copy on disk; across filesystems they are copied, and the summary says so),
symbolic links or copies (``source.link``). Masks are linked as they are: the label offset and
ignore values apply when a mask is read (:func:`semivl.data.masks.map_labels`).

:func:`scan_source` reads the source and fails, naming the file, on what no check of pairs
can see (a folder that does not exist, two images with one name, a mask without an image, a
listed file that is missing); :func:`check_source` then decodes every pair as
`semivl data check` does for a prepared folder.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from semivl.config import DatasetConfig, DatasetSource
from semivl.data.masks import DataError
from semivl.data.splits import NO_MASK, SplitFileError, read_split_file, write_split_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")  # lossless: an index mask survives
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")
RESERVED = ("train.txt", "val.txt", "prepared.json")  # what the prepared root holds itself
DEFAULT_VAL_FRACTION = 0.2
SHOW = 3


@dataclass(frozen=True)
class SourcePair:
    """One image of the source, its mask (``None``: unlabelled only) and where both go."""

    image: Path
    mask: Path | None
    image_rel: str
    mask_rel: str | None

    @property
    def line(self) -> tuple[str, str]:
        """The pair as a line of the prepared folder's split files."""
        return self.image_rel, self.mask_rel or NO_MASK

    @property
    def source_line(self) -> tuple[str, str]:
        """The pair by absolute source paths (what :func:`check_source` decodes)."""
        return str(self.image), str(self.mask) if self.mask else NO_MASK


@dataclass
class SourcePlan:
    """What :func:`scan_source` found: the training and val pairs, and files it skipped."""

    train: list[SourcePair]
    val: list[SourcePair]
    skipped: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        """Training images with a mask (the pool labelled splits are drawn from)."""
        return sum(p.mask is not None for p in self.train)


def resolve(path: str, config_dir: Path) -> Path:
    """A ``source:`` path: absolute, or relative to the folder holding ``config/``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path(config_dir).resolve().parent / p)


def required_archives(cfg) -> list[str]:
    return []


def _names(files: list[str], more: int | None = None) -> str:
    shown = ", ".join(files[:SHOW])
    extra = len(files) - SHOW if more is None else more
    return shown + (f" (and {extra} more)" if extra > 0 else "")


def _scan_folder(
    folder: Path, suffixes: tuple[str, ...], key: str
) -> tuple[dict[str, str], list[str]]:
    """{path inside ``folder`` without suffix: path inside ``folder``}, and skipped files."""
    if not folder.is_dir():
        raise DataError(f"source.{key}: folder {folder} does not exist")
    found: dict[str, str] = {}
    skipped, repeated = [], []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(
            part.startswith(".") for part in path.relative_to(folder).parts
        ):
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix.lower() not in suffixes:
            skipped.append(rel)
            continue
        stem = rel[: -len(path.suffix)]
        if stem in found:
            repeated.append(f"{folder / found[stem]} and {folder / rel}")
        found[stem] = rel
    if repeated:
        raise DataError(
            f"source.{key}: two files share a name up to the suffix, so a mask "
            f"cannot tell which image it belongs to: {_names(repeated)}"
        )
    return found, skipped


def _draw_val(labelled: list[SourcePair], source: DatasetSource) -> set[str]:
    """Image paths of the seeded ``val_fraction`` of the labelled images."""
    fraction = source.val_fraction or DEFAULT_VAL_FRACTION
    count = max(1, round(fraction * len(labelled)))
    if len(labelled) - count < 2:
        raise DataError(
            f"source.val_fraction: {len(labelled)} labelled images leave "
            f"{len(labelled) - count} for training after {count} go to val; a "
            f"dataset needs at least 2 labelled training images (a labelled split "
            f"and at least one more)"
        )
    order = sorted(p.image_rel for p in labelled)
    random.Random(source.seed).shuffle(order)
    return set(order[:count])


def _folder_plan(source: DatasetSource, config_dir: Path) -> SourcePlan:
    images_dir, masks_dir = (resolve(source.images, config_dir), resolve(source.masks, config_dir))
    images, skipped_images = _scan_folder(images_dir, IMAGE_SUFFIXES, "images")
    if not images:
        raise DataError(f"source.images: no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    masks, skipped_masks = _scan_folder(masks_dir, MASK_SUFFIXES, "masks")
    lossy = [str(masks_dir / f) for f in skipped_masks if Path(f).suffix.lower() in LOSSY_SUFFIXES]
    if lossy:
        raise DataError(
            f"source.masks: masks must be lossless index images "
            f"({', '.join(MASK_SUFFIXES)}); a lossy format alters class values at "
            f"edges: {_names(lossy)}"
        )
    orphans = [str(masks_dir / masks[k]) for k in sorted(set(masks) - set(images))]
    if orphans:
        raise DataError(
            f"source.masks: {len(orphans)} mask(s) have no image in {images_dir}: {_names(orphans)}"
        )
    pairs = [
        SourcePair(
            images_dir / rel,
            masks_dir / masks[k] if k in masks else None,
            f"images/{rel}",
            f"masks/{masks[k]}" if k in masks else None,
        )
        for k, rel in sorted(images.items())
    ]
    if source.val_list is None:
        val = _draw_val([p for p in pairs if p.mask is not None], source)
    else:
        val_file = resolve(source.val_list, config_dir)
        if not val_file.is_file():
            raise DataError(f"source.val_list: {val_file} does not exist")
        by_rel = {p.image_rel: p for p in pairs}
        val = set()
        for number, line in enumerate(val_file.read_text().splitlines(), start=1):
            if not line.split():
                continue
            name = f"images/{line.split()[0]}"
            if name not in by_rel:
                raise DataError(
                    f"{val_file}:{number}: {line.split()[0]} is not an image of {images_dir}"
                )
            if by_rel[name].mask is None:
                raise DataError(
                    f"{val_file}:{number}: {line.split()[0]} has no mask in "
                    f"{masks_dir}; val images need one"
                )
            val.add(name)
        if not val:
            raise DataError(f"source.val_list: {val_file} names no image")
    skipped = [str(images_dir / f) for f in skipped_images] + [
        str(masks_dir / f) for f in skipped_masks
    ]
    return SourcePlan(
        [p for p in pairs if p.image_rel not in val],
        [p for p in pairs if p.image_rel in val],
        skipped,
    )


def _listed(list_file: Path, root: Path, *, labelled_only: bool) -> list[SourcePair]:
    """The pairs of a source split file; fails naming the missing or unsafe files."""
    try:
        lines = read_split_file(list_file)
    except SplitFileError as err:
        raise DataError(str(err)) from None
    pairs, missing, no_mask = [], [], []
    for image, mask in lines:
        for rel in (image, mask):
            posix = PurePosixPath(rel)
            if rel != NO_MASK and (posix.is_absolute() or ".." in posix.parts or rel in RESERVED):
                raise DataError(
                    f"{list_file}: {rel}: expected a path inside {root} (no "
                    f"'..', not absolute, not {' or '.join(RESERVED)})"
                )
        if not (root / image).is_file():
            missing.append(str(root / image))
        if mask == NO_MASK:
            no_mask.append(image)
        elif not (root / mask).is_file():
            missing.append(f"{root / mask} (the mask of {image})")
        pairs.append(
            SourcePair(
                root / image,
                None if mask == NO_MASK else root / mask,
                image,
                None if mask == NO_MASK else mask,
            )
        )
    if missing:
        raise DataError(
            f"{list_file}: {len(missing)} listed file(s) do not exist: {_names(missing)}"
        )
    if labelled_only and no_mask:
        raise DataError(
            f"{list_file}: {len(no_mask)} val image(s) have no mask ('None'): "
            f"{_names(no_mask)}; val images need one"
        )
    return pairs


def _list_plan(source: DatasetSource, config_dir: Path) -> SourcePlan:
    list_file = resolve(source.list_file, config_dir)
    if not list_file.is_file():
        raise DataError(f"source.list_file: {list_file} does not exist")
    root = resolve(source.root, config_dir) if source.root else list_file.parent
    if not root.is_dir():
        raise DataError(f"source.root: folder {root} does not exist")
    pairs = _listed(list_file, root, labelled_only=False)
    if source.val_list is None:
        val_names = _draw_val([p for p in pairs if p.mask is not None], source)
        val = [p for p in pairs if p.image_rel in val_names]
    else:
        val_file = resolve(source.val_list, config_dir)
        if not val_file.is_file():
            raise DataError(f"source.val_list: {val_file} does not exist")
        val = _listed(val_file, root, labelled_only=True)
        val_names = {p.image_rel for p in val}
    return SourcePlan([p for p in pairs if p.image_rel not in val_names], val)


def scan_source(cfg: DatasetConfig, config_dir: Path) -> SourcePlan:
    """The training and val pairs of ``cfg``'s source; a :class:`DataError` names what is
    wrong (errors about a configured path start with its ``source.<key>``)."""
    if cfg.source is None:
        raise DataError(f"dataset {cfg.name}: layout {cfg.layout!r} has no source: folders")
    source = cfg.source
    plan = (_list_plan if source.list_file else _folder_plan)(source, Path(config_dir))
    masks: dict[str, str] = {}
    for pair in plan.train + plan.val:
        if (
            pair.mask_rel is not None
            and masks.setdefault(pair.mask_rel, pair.image_rel) != pair.image_rel
        ):
            raise DataError(
                f"{pair.mask}: the mask of both {masks[pair.mask_rel]} and {pair.image_rel}"
            )
    if plan.labelled < 2:
        raise DataError(
            f"dataset {cfg.name}: {plan.labelled} labelled training image(s); "
            f"a labelled split needs at least 2 to draw from"
        )
    return plan


def check_source(cfg: DatasetConfig, config_dir: Path, *, workers: int = 1, progress: bool = True):
    """`semivl data check` of the source files themselves (before ``data prepare``): the
    :class:`~semivl.data.check.CheckReport` over their absolute paths."""
    from semivl.data.check import CheckReport, check_pairs

    plan = scan_source(cfg, config_dir)
    if plan.skipped:
        print(
            f"{cfg.name}: skipped {len(plan.skipped)} file(s) that are not images or masks, "
            f"e.g. {_names(plan.skipped)}"
        )
    parts = [
        check_pairs(
            cfg, Path("/"), part, [p.source_line for p in pairs], workers=workers, progress=progress
        )
        for part, pairs in (("train", plan.train), ("val", plan.val))
    ]
    return CheckReport(cfg.name, Path(f"the source of config/datasets/{cfg.name}.yaml"), parts)


def _place(src: Path, dest: Path, link: str) -> bool:
    """Link or copy ``src`` to ``dest``; False when a hard link fell back to a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if link == "symlink":
        os.symlink(src.resolve(), dest)
        return True
    if link == "hardlink":
        try:
            os.link(src, dest)
            return True
        except OSError:  # another filesystem (EXDEV), or one without hard links
            pass
    shutil.copy2(src, dest)
    return link == "copy"


def build(
    cfg: DatasetConfig,
    archives: dict[str, Path],
    out: Path,
    progress: bool = True,
    *,
    config_dir: Path,
) -> None:
    """Place the source's files in ``out`` and write its ``train.txt`` and ``val.txt``."""
    plan = scan_source(cfg, config_dir)
    link = cfg.source.link
    fell_back = 0
    for pair in plan.train + plan.val:
        for src, rel in ((pair.image, pair.image_rel), (pair.mask, pair.mask_rel)):
            if src is not None:
                fell_back += not _place(src, Path(out) / rel, link)
    write_split_file(Path(out) / "train.txt", [p.line for p in plan.train])
    write_split_file(Path(out) / "val.txt", [p.line for p in plan.val])
    files = sum(1 + (p.mask is not None) for p in plan.train + plan.val)
    how = {"hardlink": "hard-linked", "symlink": "symlinked", "copy": "copied"}[link]
    placed = f"{files - fell_back} {how}" + (
        f", {fell_back} copied (hard links cannot cross filesystems)" if fell_back else ""
    )
    print(
        f"{cfg.name}: {files} files into {out} ({placed}): {len(plan.train)} training "
        f"images ({plan.labelled} with masks), {len(plan.val)} val"
    )
    if plan.skipped:
        print(
            f"{cfg.name}: skipped {len(plan.skipped)} file(s) that are not images or masks, "
            f"e.g. {_names(plan.skipped)}"
        )
