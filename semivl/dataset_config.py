"""Facts about a dataset: ``config/datasets/<dataset>.yaml`` (classes, label format, archives,
official split lists), validated on load like every config (:mod:`semivl.typed_yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from semivl.errors import ConfigError
from semivl.typed_yaml import build_config, read_yaml, require

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

# --------------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveSource:
    """One published file a dataset is prepared from (``archives:`` of a dataset config)."""

    file: str
    # Mirrors tried in order. For a Cityscapes package: the site's base URL.
    urls: list[str]
    # The publisher's md5, where one is published; otherwise the sha256 of the first download
    # is pinned in config/data.lock.yaml.
    md5: str | None = None
    size: int | None = None  # bytes: progress total and the free-disk check
    cityscapes_package: int | None = None  # packageID on cityscapes-dataset.com (login needed)
    licence: str = ""

    def check(self, path: str) -> None:
        require(bool(self.urls), f"{path}.urls", "at least one URL", self.urls)
        require("/" not in self.file, f"{path}.file", "a file name without '/'", self.file)
        if self.md5 is not None:
            require(len(self.md5) == 32, f"{path}.md5", "32 hex digits", self.md5)


@dataclass(frozen=True)
class OfficialSplits:
    """Upstream split lists at a pinned commit (``semivl splits --source official``)."""

    repo: str  # owner/name on GitHub
    commit: str  # 40 hex digits
    folder: str  # e.g. splits/pascal
    url: str = "https://raw.githubusercontent.com/{repo}/{commit}/{folder}/{file}"
    # sha256 per file ("92/labeled.txt", "val.txt"); files not listed are pinned on first
    # download in config/data.lock.yaml.
    sha256: dict[str, str] = field(default_factory=dict)

    def check(self, path: str) -> None:
        require(len(self.commit) == 40, f"{path}.commit", "a full 40-hex commit", self.commit)

    def file_url(self, file: str) -> str:
        return self.url.format(repo=self.repo, commit=self.commit, folder=self.folder, file=file)


@dataclass(frozen=True)
class AppearanceModes:
    """Per-pixel appearance-mode maps of a generated dataset (the toy): ``<dir>/<stem>.png``
    beside the masks, value 0 for background, 255 where the mask ignores, and ``1 + i`` for
    the ``i``-th look of :attr:`looks` (classes in ``class_names`` order, then the class's
    looks in order). Evaluation reports the accuracy on each look's pixels."""

    dir: str
    looks: dict[str, list[str]]  # object class name -> its looks' names, mode 0 first

    def check_classes(self, path: str, class_names: list[str]) -> None:
        for name, looks in self.looks.items():
            require(
                name in class_names,
                f"{path}.looks.{name}",
                f"one of the class names {class_names}",
                name,
            )
            require(len(looks) > 0, f"{path}.looks.{name}", "at least one look", looks)
        require(
            len(self.names()) < 255,
            f"{path}.looks",
            "fewer than 255 looks in all",
            len(self.names()),
        )

    def names(self) -> list[str]:
        """``"<class>/<mode> <look>"`` for map values 1, 2, ... in order."""
        return [
            f"{cls}/{mode} {look}"
            for cls, looks in self.looks.items()
            for mode, look in enumerate(looks)
        ]

    def class_of(self) -> list[str]:
        """The object class of map values 1, 2, ... in order."""
        return [cls for cls, looks in self.looks.items() for _ in looks]


@dataclass(frozen=True)
class DatasetSource:
    """Where the files of a ``generic`` dataset (your own) are: ``source:`` of its config.

    Two ways to name them: ``images`` and ``masks`` folders (an image and its mask share their
    path inside the folder up to the suffix: ``images/a/b.jpg`` and ``masks/a/b.png``; images
    without a mask are unlabelled only), or ``list_file``, a split file of ``image mask`` and
    ``image None`` lines relative to ``root`` (default: the list's folder). Relative paths are
    relative to the folder that holds ``config/`` (the repository root). The val images are
    ``val_list`` (folder mode: image paths inside ``images``, one a line; list mode: a split
    file of ``image mask`` lines), or else a seeded ``val_fraction`` of the labelled images.
    ``semivl data prepare`` links the files into ``data/<dataset>/`` (``link``: hard links,
    falling back to copies across filesystems; ``symlink``; or ``copy``).
    """

    images: str | None = None
    masks: str | None = None
    list_file: str | None = None
    root: str | None = None
    val_list: str | None = None
    val_fraction: float | None = None  # default 0.2 when there is no val_list
    seed: int = 0  # draws the val_fraction images
    link: Literal["hardlink", "symlink", "copy"] = "hardlink"

    def check(self, path: str) -> None:
        folders = self.images is not None or self.masks is not None
        require(
            folders != (self.list_file is not None),
            f"{path}",
            "either images and masks folders or a list_file",
            {"images": self.images, "masks": self.masks, "list_file": self.list_file},
        )
        if folders:
            require(
                self.images is not None and self.masks is not None,
                f"{path}.images/masks",
                "both folders",
                {"images": self.images, "masks": self.masks},
            )
            require(self.root is None, f"{path}.root", "null (root goes with list_file)", self.root)
        require(
            self.val_list is None or self.val_fraction is None,
            f"{path}.val_list/val_fraction",
            "at most one of the two",
            {"val_list": self.val_list, "val_fraction": self.val_fraction},
        )
        if self.val_fraction is not None:
            require(
                0 < self.val_fraction < 1, f"{path}.val_fraction", "in (0, 1)", self.val_fraction
            )


# DatasetConfig keys left out of a recipe's plain form (config dumps, run fingerprints) while
# they hold their defaults, so the runs of datasets that do not use them hash as before.
_DATASET_KEYS_OMITTED_AT_DEFAULT = {"label_offset": 0, "ignore_values": [255], "source": None}
# Keys added for UniMatch V2, left out of a recipe's plain form at their defaults, so that the


@dataclass(frozen=True)
class DatasetConfig:
    """Facts about a dataset: classes, on-disk layout, its labelled splits and its sources."""

    name: str
    # generic: your own dataset, linked from the folders of `source` (docs/datasets.md).
    layout: Literal["voc", "coco", "ade20k", "cityscapes", "generic"]
    num_classes: int
    class_names: list[str]
    ignore_index: int = 255
    # ADE20K: stored 0 ("other") is ignored and k becomes k - 1; the same as label_offset -1.
    reduce_zero_label: bool = False
    # Added to every stored mask value when masks are read; values that fall below 0 are
    # ignored (-1: stored 0 = "unlabelled", stored 1..K = classes 0..K-1).
    label_offset: int = 0
    # Stored mask values that mean "no label"; they are read as ignore_index (255).
    ignore_values: list[int] = field(default_factory=lambda: [255])
    # generic layout only: where the images and masks are (DatasetSource).
    source: DatasetSource | None = None
    # Labelled split names -> number of labelled images (the table's column headers).
    splits: dict[str, int] = field(default_factory=dict)
    # Published files the dataset is prepared from (semivl data prepare), keyed by role.
    archives: dict[str, ArchiveSource] = field(default_factory=dict)
    # COCO only: "preprocessed" = UniMatch's 81-class masks (as the papers used); "instances"
    # = regenerated from the instance annotations with pycocotools (not byte-identical).
    masks_from: Literal["preprocessed", "instances"] = "preprocessed"
    # Where `semivl splits` takes the split lists from by default.
    split_source: Literal["official", "generated"] = "generated"
    official_splits: OfficialSplits | None = None
    # Image/mask pairs each part must hold once prepared ("train", "val"); checked by
    # `semivl data check` and used to verify official unlabelled/val list lengths.
    expected_counts: dict[str, int] = field(default_factory=dict)
    # Which release of the data, with its date (the footnote of tables.md).
    release: str = ""
    # Generated datasets only: per-pixel appearance-mode maps (see AppearanceModes).
    appearance_modes: AppearanceModes | None = None

    def check(self, path: str) -> None:
        if self.appearance_modes is not None:
            self.appearance_modes.check_classes(f"{path}.appearance_modes", self.class_names)
        require(self.num_classes >= 2, f"{path}.num_classes", ">= 2", self.num_classes)
        require(
            len(self.class_names) == self.num_classes,
            f"{path}.class_names",
            f"{self.num_classes} names (num_classes)",
            f"{len(self.class_names)} names",
        )
        require(self.ignore_index == 255, f"{path}.ignore_index", 255, self.ignore_index)
        repeated = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
        require(
            not repeated,
            f"{path}.class_names",
            "each name once",
            f"{repeated[0]!r} more than once" if repeated else None,
        )
        require(
            not (self.reduce_zero_label and self.label_offset),
            f"{path}.label_offset",
            "0 with reduce_zero_label (which is label_offset -1)",
            self.label_offset,
        )
        for value in self.ignore_values:
            require(0 <= value <= 65535, f"{path}.ignore_values", "values in [0, 65535]", value)
            label = value + self.mask_offset
            require(
                not 0 <= label < self.num_classes,
                f"{path}.ignore_values",
                "no stored value of a class (after the label offset)",
                f"{value} (class {label}, {self.class_names[label]!r})"
                if 0 <= label < self.num_classes
                else value,
            )
        require(
            (self.layout == "generic") == (self.source is not None),
            f"{path}.source",
            "a source mapping for layout 'generic' and none for the others",
            self.source,
        )
        for name, count in self.splits.items():
            require(count > 0, f"{path}.splits.{name}", "a positive image count", count)
        if self.split_source == "official":
            require(
                self.official_splits is not None,
                f"{path}.official_splits",
                "a repo/commit/folder mapping (split_source is 'official')",
                None,
            )
        require(
            self.masks_from == "preprocessed" or self.layout == "coco",
            f"{path}.masks_from",
            "'preprocessed' (only COCO masks can be regenerated)",
            self.masks_from,
        )
        for part in self.expected_counts:
            require(
                part in ("train", "val"), f"{path}.expected_counts.{part}", "'train' or 'val'", part
            )

    @property
    def mask_offset(self) -> int:
        """What reading a mask adds to each stored value (``reduce_zero_label``: -1)."""
        return -1 if self.reduce_zero_label else self.label_offset


def load_dataset_config(name: str, config_dir: Path = CONFIG_DIR) -> DatasetConfig:
    """Load ``config/datasets/<name>.yaml``."""
    path = config_dir / "datasets" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir / "datasets").glob("*.yaml"))
        raise ConfigError(f"dataset {name!r}: no recipe at {path}; known datasets: {known}")
    try:
        cfg = build_config(DatasetConfig, read_yaml(path), "dataset")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if cfg.name != name:
        raise ConfigError(f"{path}: dataset.name: expected {name!r}, got {cfg.name!r}")
    return cfg
