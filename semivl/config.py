"""Typed, validated configuration.

Two kinds of YAML live under ``config/``:

* the experiment grid (``config/config.yaml``, ``config/demo.yaml``), read by Snakemake and DVC
  and validated against ``workflow/schemas/config.schema.yaml``;
* recipes: ``config/datasets/<dataset>.yaml`` (facts about a dataset) and
  ``config/recipes/<method>/<dataset>.yaml`` (how one method trains on one dataset).

Recipes are loaded into the dataclasses below. Every value is checked on load, and a bad one
fails with a :class:`ConfigError` naming the file, the key path, the expected and the actual
value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type or range."""


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
        _require(bool(self.urls), f"{path}.urls", "at least one URL", self.urls)
        _require("/" not in self.file, f"{path}.file", "a file name without '/'", self.file)
        if self.md5 is not None:
            _require(len(self.md5) == 32, f"{path}.md5", "32 hex digits", self.md5)


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
        _require(len(self.commit) == 40, f"{path}.commit", "a full 40-hex commit", self.commit)

    def file_url(self, file: str) -> str:
        return self.url.format(repo=self.repo, commit=self.commit, folder=self.folder,
                               file=file)


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
            _require(name in class_names, f"{path}.looks.{name}",
                     f"one of the class names {class_names}", name)
            _require(len(looks) > 0, f"{path}.looks.{name}", "at least one look", looks)
        _require(len(self.names()) < 255, f"{path}.looks", "fewer than 255 looks in all",
                 len(self.names()))

    def names(self) -> list[str]:
        """``"<class>/<mode> <look>"`` for map values 1, 2, ... in order."""
        return [f"{cls}/{mode} {look}" for cls, looks in self.looks.items()
                for mode, look in enumerate(looks)]

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
        _require(folders != (self.list_file is not None), f"{path}",
                 "either images and masks folders or a list_file",
                 {"images": self.images, "masks": self.masks, "list_file": self.list_file})
        if folders:
            _require(self.images is not None and self.masks is not None,
                     f"{path}.images/masks", "both folders", {"images": self.images,
                                                               "masks": self.masks})
            _require(self.root is None, f"{path}.root", "null (root goes with list_file)",
                     self.root)
        _require(self.val_list is None or self.val_fraction is None,
                 f"{path}.val_list/val_fraction", "at most one of the two",
                 {"val_list": self.val_list, "val_fraction": self.val_fraction})
        if self.val_fraction is not None:
            _require(0 < self.val_fraction < 1, f"{path}.val_fraction", "in (0, 1)",
                     self.val_fraction)


# DatasetConfig keys left out of a recipe's plain form (config dumps, run fingerprints) while
# they hold their defaults, so the runs of datasets that do not use them hash as before.
_DATASET_KEYS_OMITTED_AT_DEFAULT = {"label_offset": 0, "ignore_values": [255], "source": None}
# Keys added for UniMatch V2, left out of a recipe's plain form at their defaults, so that the
# config dumps and run fingerprints of every other method stay as they were.
_SECTION_KEYS_OMITTED_AT_DEFAULT = {"train": {"labeled_upsample_to": None},
                                    "eval": {"resize_to_multiple": None}}


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
        _require(self.num_classes >= 2, f"{path}.num_classes", ">= 2", self.num_classes)
        _require(
            len(self.class_names) == self.num_classes,
            f"{path}.class_names",
            f"{self.num_classes} names (num_classes)",
            f"{len(self.class_names)} names",
        )
        _require(self.ignore_index == 255, f"{path}.ignore_index", 255, self.ignore_index)
        repeated = sorted({n for n in self.class_names if self.class_names.count(n) > 1})
        _require(not repeated, f"{path}.class_names", "each name once",
                 f"{repeated[0]!r} more than once" if repeated else None)
        _require(not (self.reduce_zero_label and self.label_offset), f"{path}.label_offset",
                 "0 with reduce_zero_label (which is label_offset -1)", self.label_offset)
        for value in self.ignore_values:
            _require(0 <= value <= 65535, f"{path}.ignore_values", "values in [0, 65535]",
                     value)
            label = value + self.mask_offset
            _require(not 0 <= label < self.num_classes, f"{path}.ignore_values",
                     "no stored value of a class (after the label offset)",
                     f"{value} (class {label}, {self.class_names[label]!r})"
                     if 0 <= label < self.num_classes else value)
        _require((self.layout == "generic") == (self.source is not None), f"{path}.source",
                 "a source mapping for layout 'generic' and none for the others", self.source)
        for name, count in self.splits.items():
            _require(count > 0, f"{path}.splits.{name}", "a positive image count", count)
        if self.split_source == "official":
            _require(self.official_splits is not None, f"{path}.official_splits",
                     "a repo/commit/folder mapping (split_source is 'official')", None)
        _require(self.masks_from == "preprocessed" or self.layout == "coco",
                 f"{path}.masks_from", "'preprocessed' (only COCO masks can be regenerated)",
                 self.masks_from)
        for part in self.expected_counts:
            _require(part in ("train", "val"), f"{path}.expected_counts.{part}",
                     "'train' or 'val'", part)

    @property
    def mask_offset(self) -> int:
        """What reading a mask adds to each stored value (``reduce_zero_label``: -1)."""
        return -1 if self.reduce_zero_label else self.label_offset


@dataclass(frozen=True)
class AugmentConfig:
    """Weak (geometric) training augmentation, as in UniMatch/SemiVL (spec section 4.1)."""

    crop_size: int
    # "unimatch": long side drawn uniformly in [0.5 L, 2.0 L]; "mmseg": keep-ratio Resize to
    # img_scale * r with r ~ U(ratio_range).
    resize: Literal["unimatch", "mmseg"] = "unimatch"
    img_scale: tuple[int, int] = (2048, 512)
    ratio_range: tuple[float, float] = (0.5, 2.0)
    hflip_prob: float = 0.5
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def check(self, path: str) -> None:
        _require(self.crop_size > 0, f"{path}.crop_size", "> 0", self.crop_size)
        lo, hi = self.ratio_range
        _require(0 < lo <= hi, f"{path}.ratio_range", "0 < low <= high", self.ratio_range)
        _require(0 <= self.hflip_prob <= 1, f"{path}.hflip_prob", "in [0, 1]", self.hflip_prob)


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build and its constructor arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    # Name of pretrained backbone weights (config/weights.yaml), loaded into `model.backbone`.
    pretrained: str | None = None

    def check(self, path: str) -> None:
        # SemiVL's class texts: this project's encoding (`semivl text`) or upstream's own
        # files (config/upstream_text.yaml); checked further in load_recipe.
        source = self.args.get("text_embeddings", "project")
        _require(source in ("project", "upstream"), f"{path}.args.text_embeddings",
                 "'project' or 'upstream'", source)


@dataclass(frozen=True)
class ParamKeyConfig:
    """mmcv-style paramwise multipliers for parameters whose name contains a key."""

    lr_mult: float = 1.0
    decay_mult: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and poly schedule."""

    name: Literal["sgd", "adamw"]
    lr: float
    weight_decay: float
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    # Multiplier for parameters that match no custom key (UniMatch: head = lr * lr_multi).
    default_lr_mult: float = 1.0
    # Substring -> multipliers. Keys are tried longest first (ties alphabetical) and only the
    # first that occurs in a parameter's name applies, as in mmcv's optimizer constructor.
    custom_keys: dict[str, ParamKeyConfig] = field(default_factory=dict)
    poly_power: float = 0.9

    def check(self, path: str) -> None:
        _require(self.lr > 0, f"{path}.lr", "> 0", self.lr)
        _require(self.weight_decay >= 0, f"{path}.weight_decay", ">= 0", self.weight_decay)
        _require(self.poly_power >= 0, f"{path}.poly_power", ">= 0", self.poly_power)


@dataclass(frozen=True)
class SpeedConfig:
    """Speed options (docs/performance.md). The defaults are the faithful path: fp32, with
    TF32 where the method's upstream had it."""

    # Forward passes under torch.autocast in bfloat16 (losses and optimiser stay fp32).
    amp: Literal["none", "bf16"] = "none"
    # Models and image batches in channels-last memory format (convolutions).
    channels_last: bool = False
    # The fused (single-kernel) implementation of SGD / AdamW.
    fused_optimizer: bool = False
    # torch.compile the model (the first iterations compile; the weights file is unchanged).
    compile: bool = False
    # TF32 on Ampere+ GPUs (semivl.engine.precision): upstream = what the method's upstream
    # ran (matmuls fp32, cuDNN convolutions TF32, for all methods here), all = TF32 for both
    # (faster ViTs, not upstream's numerics), none = full fp32.
    tf32: Literal["upstream", "all", "none"] = "upstream"


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and loop settings of one method."""

    # The training algorithm; a recipe folder is named after it, or after it plus "_<variant>"
    # for ablations (config/recipes/semivl_no_definitions/ trains with method semivl).
    method: Literal["supervised", "unimatch", "semivl", "unimatch_v2"]
    batch_size: int  # images per process and stream in one forward pass
    # Images per stream in one optimiser step over all processes (upstream: 4 GPUs x 2 = 8).
    # When fewer processes run, gradients are accumulated over micro-batches to keep it.
    # null: one micro-batch per step on however many processes run.
    global_batch_size: int | None = None
    epochs: int | None = None
    # If set, epochs = ceil(iters / iterations per epoch) (SemiVL's `iters` key).
    iters: int | None = None
    num_workers: int = 1
    criterion: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 200000
    # Pseudo-label confidence: "pixelwise" threshold, or SemiVL's "pixelavg" weighting.
    conf_mode: Literal["pixelwise", "pixelavg"] = "pixelwise"
    conf_thresh: float = 0.95
    fp_rate: float = 0.5
    # UniMatch V2's EMA teacher: momentum min(1 - 1/(it + 1), ema_momentum) after every step,
    # on parameters and buffers (spec unimatch.md 4.2). Used by method unimatch_v2 only.
    ema_momentum: float = 0.996
    # UniMatch V2's labelled-only baseline repeats the labelled list up to this many entries
    # when it is shorter (3000 Pascal/Cityscapes, 6000 ADE20K, 30000 COCO). null: as listed.
    labeled_upsample_to: int | None = None
    eval_every_epochs: int | None = 1
    eval_every_iters: int | None = None
    checkpoint_every_iters: int = 500
    checkpoint_every_minutes: float = 10.0
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    # Train only this fraction of the schedule's iterations (at least one), with the poly
    # learning rate and the guidance weight decaying over the shortened run: a smoke run that
    # proves a cluster (config/smoke.yaml), never a result. 1.0 = the recipe's schedule.
    schedule_fraction: float = 1.0

    def check(self, path: str) -> None:
        _require(self.batch_size >= 1, f"{path}.batch_size", ">= 1", self.batch_size)
        _require(
            (self.epochs is None) != (self.iters is None),
            f"{path}.epochs/iters",
            "exactly one of epochs and iters",
            {"epochs": self.epochs, "iters": self.iters},
        )
        for key in ("epochs", "iters", "eval_every_epochs", "eval_every_iters"):
            value = getattr(self, key)
            _require(value is None or value >= 1, f"{path}.{key}", ">= 1 or null", value)
        _require(
            self.eval_every_epochs is None or self.eval_every_iters is None,
            f"{path}.eval_every_epochs/eval_every_iters",
            "at most one of the two",
            {"eval_every_epochs": self.eval_every_epochs,
             "eval_every_iters": self.eval_every_iters},
        )
        _require(self.num_workers >= 0, f"{path}.num_workers", ">= 0", self.num_workers)
        _require(0 < self.schedule_fraction <= 1, f"{path}.schedule_fraction", "in (0, 1]",
                 self.schedule_fraction)
        _require(0 <= self.conf_thresh <= 1, f"{path}.conf_thresh", "in [0, 1]", self.conf_thresh)
        _require(0 <= self.fp_rate < 1, f"{path}.fp_rate", "in [0, 1)", self.fp_rate)
        _require(0 <= self.ema_momentum < 1, f"{path}.ema_momentum", "in [0, 1)",
                 self.ema_momentum)
        _require(self.labeled_upsample_to is None or self.labeled_upsample_to >= 1,
                 f"{path}.labeled_upsample_to", ">= 1 or null", self.labeled_upsample_to)
        _require(
            self.global_batch_size is None or self.global_batch_size % self.batch_size == 0,
            f"{path}.global_batch_size",
            f"a multiple of batch_size ({self.batch_size}) or null",
            self.global_batch_size,
        )
        _require(
            self.checkpoint_every_iters >= 1,
            f"{path}.checkpoint_every_iters",
            ">= 1",
            self.checkpoint_every_iters,
        )


@dataclass(frozen=True)
class GuidanceConfig:
    """SemiVL's dense CLIP guidance (spec semivl.md 3): labels from a frozen copy of the
    original CLIP, ``softmax(temperature x cosine)`` upsampled to the crop before the softmax,
    kept where confident; cross-entropy on both strong views and the perturbed prediction."""

    # Which class texts the teacher compares against (class definitions = concept_max).
    text: Literal["names", "concept_max", "concept_avg"] = "concept_max"
    # The weight decays linearly from lambda_start to lambda_end over all iterations.
    lambda_start: float = 0.1
    lambda_end: float = 0.0
    conf_thresh: float = 0.9
    temperature: float = 100.0
    # mean_all: CE summed over pixels / all pixels of the batch (upstream); mean_valid: / the
    # pixels that have a guidance label.
    reduce: Literal["mean_all", "mean_valid"] = "mean_all"
    # The teacher's position table is sized for this crop (upstream: 512 on every dataset)
    # and interpolated on the fly to other token grids.
    teacher_image_size: int = 512

    def check(self, path: str) -> None:
        _require(0 <= self.conf_thresh <= 1, f"{path}.conf_thresh", "in [0, 1]",
                 self.conf_thresh)
        _require(self.temperature > 0, f"{path}.temperature", "> 0", self.temperature)
        _require(self.teacher_image_size > 0, f"{path}.teacher_image_size", "> 0",
                 self.teacher_image_size)


@dataclass(frozen=True)
class EvalConfig:
    """Validation protocol (spec section 5)."""

    # sliding_logits: SemiVL/ZegCLIP windows shifted inside the image, raw logits averaged.
    # sliding_softmax: UniMatch windows truncated at the border, softmax summed.
    # whole: one forward on the whole image.
    # sliding_softmax_clamped: UniMatch V2 windows clamped to lie inside the image (start =
    # min(start + stride, H - crop)), softmax summed.
    mode: Literal["sliding_logits", "sliding_softmax", "sliding_softmax_clamped", "whole"]
    crop_size: int | None = None
    stride: int | None = None
    # VOC/ADE in SemiVL: resize the short side to this many pixels before inference (the GT
    # keeps its size; logits are resized back). null keeps the original resolution.
    resize_short_side: int | None = None
    # UniMatch V2's "original" mode: resize (bilinear, align_corners=True) each side to the
    # nearest multiple of this (round(h / 14) * 14) before the forward, logits resized back.
    # null: no such resize.
    resize_to_multiple: int | None = None
    # Run a sliding mode's windows as one batch per window size instead of one at a time as
    # upstream does: the same arithmetic per window, fewer and larger forward passes (the CPU
    # demo's small models gain most). Float rounding may differ: docs/deviations.md.
    batch_windows: bool = False

    def check(self, path: str) -> None:
        if self.mode != "whole":
            _require(
                self.crop_size is not None and self.crop_size > 0,
                f"{path}.crop_size",
                "a positive window size for sliding modes",
                self.crop_size,
            )
        _require(self.resize_to_multiple is None or self.resize_to_multiple >= 1,
                 f"{path}.resize_to_multiple", ">= 1 or null", self.resize_to_multiple)
        if self.mode in ("sliding_logits", "sliding_softmax_clamped"):
            _require(
                self.stride is not None and self.stride > 0,
                f"{path}.stride",
                f"a positive stride for {self.mode}",
                self.stride,
            )


@dataclass(frozen=True)
class ResourcesConfig:
    """What one training job asks the cluster for (``resources:`` of a recipe).

    ``gpus`` is upstream's GPU count; a cluster may lower it (``cluster.max_gpus_per_job`` in
    the grid) and the engine keeps ``train.global_batch_size`` by gradient accumulation.
    Later attempts of a job (after a time limit) get ``attempt x hours``.
    """

    gpus: int = 1
    cpus_per_gpu: int = 4
    mem_mb: int = 32000
    hours: float = 24.0
    # Where ``hours`` comes from (e.g. upstream training logs); empty = a guess, which
    # `semivl plan` says.
    hours_source: str = ""

    def check(self, path: str) -> None:
        _require(self.gpus >= 1, f"{path}.gpus", ">= 1", self.gpus)
        _require(self.cpus_per_gpu >= 1, f"{path}.cpus_per_gpu", ">= 1", self.cpus_per_gpu)
        _require(self.mem_mb >= 100, f"{path}.mem_mb", ">= 100", self.mem_mb)
        _require(self.hours > 0, f"{path}.hours", "> 0", self.hours)


@dataclass(frozen=True)
class Recipe:
    """Everything one (method, dataset) cell needs to train and evaluate."""

    method: str
    dataset: DatasetConfig
    model: ModelConfig
    augment: AugmentConfig
    optim: OptimConfig
    train: TrainConfig
    eval: EvalConfig
    guidance: GuidanceConfig | None = None
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for config dumps next to each run."""
        plain = _to_plain(dataclasses.asdict(self))
        for key, default in _DATASET_KEYS_OMITTED_AT_DEFAULT.items():
            if plain["dataset"].get(key, default) == default:
                plain["dataset"].pop(key, None)
        for section, keys in _SECTION_KEYS_OMITTED_AT_DEFAULT.items():
            for key, default in keys.items():
                if plain[section].get(key, default) == default:
                    plain[section].pop(key, None)
        if plain["train"]["method"] != "unimatch_v2":
            plain["train"].pop("ema_momentum", None)  # only V2 has an EMA teacher
        if plain["train"]["speed"].get("tf32") == "upstream":  # as before the key existed
            plain["train"]["speed"].pop("tf32")
        return plain

    def with_num_workers(self, workers: int) -> Recipe:
        """This recipe with ``workers`` loader workers per stream and process (a site's
        setting: samples do not depend on it, and a run may resume with another)."""
        _require(workers >= 0, "train.num_workers", ">= 0", workers)
        return dataclasses.replace(self, train=dataclasses.replace(self.train,
                                                                   num_workers=int(workers)))

    def with_schedule_fraction(self, fraction: float) -> Recipe:
        """This recipe training ``fraction`` of its schedule (``train.schedule_fraction``; the
        smoke grid's ``--schedule-fraction``), checked as that key is."""
        _require(0 < fraction <= 1, "train.schedule_fraction", "in (0, 1]", fraction)
        train = dataclasses.replace(self.train, schedule_fraction=float(fraction))
        return dataclasses.replace(self, train=train)


# --------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------


def _require(ok: bool, key: str, expected: Any, actual: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {actual!r}")


def _to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (lists to tuples etc.)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{path}: expected one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_config(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)} values, got {value!r}")
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in pairs)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return {
            _convert(str(k), args[0], f"{path}.{k}"): _convert(v, args[1], f"{path}.{k}")
            for k, v in value.items()
        }
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str | int):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a bug in this module


def build_config(cls: type, data: Any, path: str) -> Any:
    """Build dataclass ``cls`` from ``data``, checking every key; ``path`` prefixes errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{path}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        key = f"{path}.{name}"
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(path)
    return obj


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, failing with the file name on a syntax error or a non-mapping."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {data!r}")
    return data


def load_named_configs(path: Path, cls: type) -> dict[str, Any]:
    """A YAML mapping of name -> ``cls`` entries (``config/weights.yaml``, ``config/clip.yaml``),
    each validated; errors name the file and the entry."""
    data = read_yaml(path)
    try:
        return {name: build_config(cls, value, name) for name, value in data.items()}
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


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


def load_recipe(method: str, dataset: str, config_dir: Path = CONFIG_DIR) -> Recipe:
    """Load and validate the recipe for ``method`` on ``dataset``."""
    dataset_cfg = load_dataset_config(dataset, config_dir)
    path = config_dir / "recipes" / method / f"{dataset}.yaml"
    if not path.is_file():
        known = sorted(str(p.relative_to(config_dir / "recipes")) for p in
                       (config_dir / "recipes").glob("*/*.yaml"))
        raise ConfigError(f"no recipe for method {method!r} on {dataset!r} at {path}; "
                          f"known recipes: {known}")
    data = _read_recipe(path)
    sections = {
        "model": ModelConfig,
        "augment": AugmentConfig,
        "optim": OptimConfig,
        "train": TrainConfig,
        "eval": EvalConfig,
    }
    optional = {"guidance": GuidanceConfig, "resources": ResourcesConfig}
    unknown = sorted(set(data) - set(sections) - set(optional))
    try:
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown key; expected one of "
                              f"{', '.join(sorted({**sections, **optional}))}")
        built = {}
        for key, cls in sections.items():
            if key not in data:
                raise ConfigError(f"{key}: required key is missing")
            built[key] = build_config(cls, data[key], key)
        if data.get("guidance") is not None:
            built["guidance"] = build_config(GuidanceConfig, data["guidance"], "guidance")
        if data.get("resources") is not None:
            built["resources"] = build_config(ResourcesConfig, data["resources"], "resources")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    algorithm = built["train"].method
    if method != algorithm and not method.startswith(f"{algorithm}_"):
        raise ConfigError(
            f"{path}: train.method: expected {method!r} (the recipe folder), or a folder named "
            f"'{algorithm}_<variant>' for a variant of {algorithm!r}; got {algorithm!r}"
        )
    if "guidance" in built and algorithm != "semivl":
        raise ConfigError(f"{path}: guidance: only method semivl uses dense CLIP guidance; "
                          f"remove the section or set train.method: semivl")
    if built["model"].args.get("text_embeddings") == "upstream":
        from semivl.models.text_reference import check_upstream_recipe

        check_upstream_recipe(path, built["model"], built.get("guidance"), dataset_cfg,
                              config_dir)
    return Recipe(method=method, dataset=dataset_cfg, **built)


def _merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; ``override`` wins, lists and scalars are replaced whole."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _merge_recipe(base: dict, override: dict) -> dict:
    """:func:`_merge` of a recipe over its base, except that a ``model.name`` other than the
    base's replaces the base's model whole: its ``args`` and ``pretrained`` belong to another
    model and are not inherited."""
    model = override.get("model")
    base_model = base.get("model")
    if (isinstance(model, dict) and isinstance(base_model, dict) and "name" in model
            and model["name"] != base_model.get("name")):
        base = {**base, "model": {k: v for k, v in base_model.items()
                                  if k not in ("args", "pretrained")}}
    return _merge(base, override)


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe; a top-level ``base: <file>`` (relative to the recipe) is read first and
    the recipe's own keys are merged over it (an ablation states only what it changes).

    Merging is recursive: mappings merge key by key, lists and scalars are replaced whole, and
    ``null`` replaces a value too (``guidance: null`` removes the base's guidance, which
    :func:`load_recipe` treats as absent). One exception: when the recipe's ``model.name``
    differs from its base's, the base's ``model.args`` and ``model.pretrained`` are not
    inherited (a different model's arguments do not carry over); the recipe states its
    model's arguments in full.
    """
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: base: recipes include each other in a loop")
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a recipe file path, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: {base_path} does not exist")
    return _merge_recipe(_read_recipe(base_path, (*seen, path)), data)
