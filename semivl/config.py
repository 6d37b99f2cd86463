"""Typed, validated configuration.

Two kinds of YAML live under ``config/``:

* the experiment grid (``config/config.yaml``, ``config/demo.yaml``), read by Snakemake and DVC
  and validated against ``workflow/schemas/config.schema.yaml``;
* recipes: ``config/datasets/<dataset>.yaml`` (facts about a dataset) and
  ``config/recipes/<method>/<dataset>.yaml`` (how one method trains on one dataset).

Recipes are loaded into the dataclasses below. Every value is checked on load, and a bad one
fails with a :class:`ConfigError` naming the file, the key path, the expected and the actual
value.

The loader is :mod:`semivl.typed_yaml`, the dataset schema :mod:`semivl.dataset_config`
(re-exported here), and recipe files are read and merged by :mod:`semivl.recipes`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from semivl.dataset_config import (  # noqa: F401 - re-exported: the schema's one import
    _DATASET_KEYS_OMITTED_AT_DEFAULT,
    CONFIG_DIR,
    AppearanceModes,
    ArchiveSource,
    DatasetConfig,
    DatasetSource,
    OfficialSplits,
    load_dataset_config,
)
from semivl.errors import ConfigError  # noqa: F401 - re-exported
from semivl.methods import get_method
from semivl.typed_yaml import (  # noqa: F401 - re-exported
    build_config,
    load_named_configs,
    read_yaml,
    require,
    to_plain,
)

# Shared `train` keys that a method's config dump (and run fingerprint) shows only when the
# method declares it reads them (Method.train_keys). The other shared keys (conf_mode,
# conf_thresh, fp_rate) predate the registry and stay in every dump, so that an old last.pt
# still resumes.
OPTIONAL_TRAIN_KEYS = {"ema_momentum"}
_SECTION_KEYS_OMITTED_AT_DEFAULT = {
    "train": {"labeled_upsample_to": None},
    "eval": {"resize_to_multiple": None},
}


@dataclass(frozen=True)
class AugmentConfig:
    """Weak (geometric) training augmentation, as in UniMatch/SemiVL (docs/upstream.md,
    Augmentation)."""

    # Side in pixels of the square random training crop (the rescaled image is padded
    # right/bottom first when smaller); also the input size the model is built for.
    crop_size: int
    # "unimatch": long side drawn uniformly in [0.5 L, 2.0 L]; "mmseg": keep-ratio Resize to
    # img_scale * r with r ~ U(ratio_range).
    resize: Literal["unimatch", "mmseg"] = "unimatch"
    # (long, short) edges of mmseg's target scale, before the random ratio; resize "mmseg" only.
    img_scale: tuple[int, int] = (2048, 512)
    # (low, high) of the random rescale: the long-side factor ("unimatch") or r ("mmseg").
    ratio_range: tuple[float, float] = (0.5, 2.0)
    hflip_prob: float = 0.5  # probability of flipping the crop (image and mask) left-right
    # Per-channel RGB mean subtracted by the normalisation (pixels scaled to [0, 1] first;
    # ImageNet's), for training, validation and `semivl predict` images alike.
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    # Per-channel RGB standard deviation the normalisation then divides by (ImageNet's).
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def check(self, path: str) -> None:
        require(self.crop_size > 0, f"{path}.crop_size", "> 0", self.crop_size)
        lo, hi = self.ratio_range
        require(0 < lo <= hi, f"{path}.ratio_range", "0 < low <= high", self.ratio_range)
        require(0 <= self.hflip_prob <= 1, f"{path}.hflip_prob", "in [0, 1]", self.hflip_prob)


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build and its constructor arguments."""

    # A registered model (entry-point group `semivl.models`, pyproject.toml, or a plug-in's);
    # `model.args` go to its builder (the builders and their arguments: config/README.md).
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    # Name of pretrained backbone weights (config/weights.yaml), loaded into `model.backbone`.
    pretrained: str | None = None

    def check(self, path: str) -> None:
        # SemiVL's class texts: this project's encoding (`semivl text`) or upstream's own
        # files (config/upstream_text.yaml); checked further in load_recipe.
        source = self.args.get("text_embeddings", "project")
        require(
            source in ("project", "upstream"),
            f"{path}.args.text_embeddings",
            "'project' or 'upstream'",
            source,
        )


@dataclass(frozen=True)
class ParamKeyConfig:
    """mmcv-style paramwise multipliers for parameters whose name contains a key."""

    lr_mult: float = 1.0  # learning rate of the matching parameters: optim.lr x this
    decay_mult: float = 1.0  # weight decay of the matching parameters: optim.weight_decay x this


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and poly schedule."""

    # torch.optim.SGD with momentum (UniMatch) or torch.optim.AdamW (SemiVL, UniMatch V2).
    name: Literal["sgd", "adamw"]
    # Base learning rate at iteration 0, decayed by the poly schedule; each parameter group
    # trains at lr x its lr_mult.
    lr: float
    # Weight decay (AdamW's decoupled one for adamw), times each parameter group's decay_mult.
    weight_decay: float
    momentum: float = 0.9  # SGD's momentum; not read by adamw
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's (beta1, beta2); not read by sgd
    # Multiplier for parameters that match no custom key (UniMatch: head = lr * lr_multi).
    default_lr_mult: float = 1.0
    # Substring -> multipliers. Keys are tried longest first (ties alphabetical) and only the
    # first that occurs in a parameter's name applies, as in mmcv's optimizer constructor.
    custom_keys: dict[str, ParamKeyConfig] = field(default_factory=dict)
    # Exponent of the poly schedule: lr x (1 - iteration / total iterations) ** poly_power, set
    # after every optimiser step.
    poly_power: float = 0.9

    def check(self, path: str) -> None:
        require(self.lr > 0, f"{path}.lr", "> 0", self.lr)
        require(self.weight_decay >= 0, f"{path}.weight_decay", ">= 0", self.weight_decay)
        require(self.poly_power >= 0, f"{path}.poly_power", ">= 0", self.poly_power)


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

    # The training algorithm, a registered method (semivl.methods); a recipe folder is named
    # after it, or after it plus "_<variant>" for ablations (config/recipes/
    # semivl_no_definitions/ trains with method semivl).
    method: str
    batch_size: int  # images per process and stream in one forward pass
    # Images per stream in one optimiser step over all processes (upstream: 4 GPUs x 2 = 8).
    # When fewer processes run, gradients are accumulated over micro-batches to keep it.
    # null: one micro-batch per step on however many processes run.
    global_batch_size: int | None = None
    # Training length in epochs, each one pass over the unlabelled list (the labelled list for
    # labelled-only methods). Give exactly one of epochs and iters.
    epochs: int | None = None
    # If set, epochs = ceil(iters / iterations per epoch) (SemiVL's `iters` key).
    iters: int | None = None
    # DataLoader workers per stream and process (upstream: 1), in training and validation;
    # cluster.num_workers (`semivl train --num-workers`) overrides it. Samples do not depend
    # on it.
    num_workers: int = 1
    # Loss on the labelled images: ce (cross-entropy over non-ignored pixels) or ohem
    # (probability-based OHEM cross-entropy, UniMatch's Cityscapes loss).
    criterion: Literal["ce", "ohem"] = "ce"
    # ohem only: pixels whose probability for their true class is at most this are kept.
    ohem_thresh: float = 0.7
    # ohem only: the threshold rises until at least this many pixels of a process's batch are
    # kept (all valid pixels when the batch has fewer, or when 0).
    ohem_min_kept: int = 200000
    # Pseudo-label confidence: "pixelwise" threshold, or SemiVL's "pixelavg" weighting.
    conf_mode: Literal["pixelwise", "pixelavg"] = "pixelwise"
    # Pseudo-labels count only where the weak view's top softmax probability is at least this
    # (conf_mode pixelwise; pixelavg uses it only for the logged mask_ratio).
    conf_thresh: float = 0.95
    # Dropout2d rate of UniMatch's feature-perturbation prediction (methods unimatch and semivl;
    # the others do not read it).
    fp_rate: float = 0.5
    # UniMatch V2's EMA teacher: momentum min(1 - 1/(it + 1), ema_momentum) after every step,
    # on parameters and buffers (docs/upstream.md, UniMatch V2). Used by method unimatch_v2 only.
    ema_momentum: float = 0.996
    # UniMatch V2's labelled-only baseline repeats the labelled list up to this many entries
    # when it is shorter (3000 Pascal/Cityscapes, 6000 ADE20K, 30000 COCO). null: as listed.
    labeled_upsample_to: int | None = None
    # Validate (val.txt mIoU; best.pt keeps the best) after every this many epochs; the end of
    # training is always validated. null: only then, or every eval_every_iters.
    eval_every_epochs: int | None = 1
    # Validate every this many iterations instead (needs eval_every_epochs: null).
    eval_every_iters: int | None = None
    # Write last.pt (the resume state) every this many iterations (and on a stop signal).
    checkpoint_every_iters: int = 500
    # Also write last.pt whenever this many minutes have passed since its last write.
    checkpoint_every_minutes: float = 10.0
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    # Train only this fraction of the schedule's iterations (at least one), with the poly
    # learning rate and the guidance weight decaying over the shortened run: a smoke run that
    # proves a cluster (config/smoke.yaml), never a result. 1.0 = the recipe's schedule.
    schedule_fraction: float = 1.0
    # The method's own arguments (its ``Method.args`` dataclass, validated by semivl.recipes);
    # null for methods that declare none, which keeps their config dump and fingerprint as
    # they were before methods had arguments.
    args: Any = None

    def check(self, path: str) -> None:
        get_method(self.method)  # an unknown method lists the registered ones
        require(self.batch_size >= 1, f"{path}.batch_size", ">= 1", self.batch_size)
        require(
            (self.epochs is None) != (self.iters is None),
            f"{path}.epochs/iters",
            "exactly one of epochs and iters",
            {"epochs": self.epochs, "iters": self.iters},
        )
        for key in ("epochs", "iters", "eval_every_epochs", "eval_every_iters"):
            value = getattr(self, key)
            require(value is None or value >= 1, f"{path}.{key}", ">= 1 or null", value)
        require(
            self.eval_every_epochs is None or self.eval_every_iters is None,
            f"{path}.eval_every_epochs/eval_every_iters",
            "at most one of the two",
            {
                "eval_every_epochs": self.eval_every_epochs,
                "eval_every_iters": self.eval_every_iters,
            },
        )
        require(self.num_workers >= 0, f"{path}.num_workers", ">= 0", self.num_workers)
        require(
            0 < self.schedule_fraction <= 1,
            f"{path}.schedule_fraction",
            "in (0, 1]",
            self.schedule_fraction,
        )
        require(0 <= self.conf_thresh <= 1, f"{path}.conf_thresh", "in [0, 1]", self.conf_thresh)
        require(0 <= self.fp_rate < 1, f"{path}.fp_rate", "in [0, 1)", self.fp_rate)
        require(0 <= self.ema_momentum < 1, f"{path}.ema_momentum", "in [0, 1)", self.ema_momentum)
        require(
            self.labeled_upsample_to is None or self.labeled_upsample_to >= 1,
            f"{path}.labeled_upsample_to",
            ">= 1 or null",
            self.labeled_upsample_to,
        )
        require(
            self.global_batch_size is None or self.global_batch_size % self.batch_size == 0,
            f"{path}.global_batch_size",
            f"a multiple of batch_size ({self.batch_size}) or null",
            self.global_batch_size,
        )
        require(
            self.checkpoint_every_iters >= 1,
            f"{path}.checkpoint_every_iters",
            ">= 1",
            self.checkpoint_every_iters,
        )


@dataclass(frozen=True)
class GuidanceConfig:
    """SemiVL's dense CLIP guidance (docs/upstream.md, SemiVL guidance and losses): labels from
    a frozen copy of the original CLIP, ``softmax(temperature x cosine)`` upsampled to the crop
    before the softmax, kept where confident; cross-entropy on both strong views and the
    perturbed prediction."""

    # Which class texts the teacher compares against (class definitions = concept_max).
    text: Literal["names", "concept_max", "concept_avg"] = "concept_max"
    # The weight decays linearly from lambda_start to lambda_end over all iterations.
    lambda_start: float = 0.1
    lambda_end: float = 0.0  # the guidance loss weight reached at the end of training
    # Teacher labels whose softmax confidence is below this become 255 (no guidance label).
    conf_thresh: float = 0.9
    # Multiplies the cosine similarities before the softmax (upstream: 100); zero-shot
    # evaluation (report.zero_shot) scales its logits by it too.
    temperature: float = 100.0
    # mean_all: CE summed over pixels / all pixels of the batch (upstream); mean_valid: / the
    # pixels that have a guidance label.
    reduce: Literal["mean_all", "mean_valid"] = "mean_all"
    # The teacher's position table is sized for this crop (upstream: 512 on every dataset)
    # and interpolated on the fly to other token grids.
    teacher_image_size: int = 512

    def check(self, path: str) -> None:
        require(0 <= self.conf_thresh <= 1, f"{path}.conf_thresh", "in [0, 1]", self.conf_thresh)
        require(self.temperature > 0, f"{path}.temperature", "> 0", self.temperature)
        require(
            self.teacher_image_size > 0,
            f"{path}.teacher_image_size",
            "> 0",
            self.teacher_image_size,
        )


@dataclass(frozen=True)
class EvalConfig:
    """Validation protocol (docs/upstream.md, Evaluation protocol)."""

    # sliding_logits: SemiVL/ZegCLIP windows shifted inside the image, raw logits averaged.
    # sliding_softmax: UniMatch windows truncated at the border, softmax summed.
    # whole: one forward on the whole image.
    # sliding_softmax_clamped: UniMatch V2 windows clamped to lie inside the image (start =
    # min(start + stride, H - crop)), softmax summed.
    mode: Literal["sliding_logits", "sliding_softmax", "sliding_softmax_clamped", "whole"]
    # Side in pixels of the square sliding window; required by the sliding modes, not read by
    # whole.
    crop_size: int | None = None
    # Pixels between window starts; required by sliding_logits and sliding_softmax_clamped;
    # null in sliding_softmax: int(crop_size * 2 / 3), as UniMatch.
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
            require(
                self.crop_size is not None and self.crop_size > 0,
                f"{path}.crop_size",
                "a positive window size for sliding modes",
                self.crop_size,
            )
        require(
            self.resize_to_multiple is None or self.resize_to_multiple >= 1,
            f"{path}.resize_to_multiple",
            ">= 1 or null",
            self.resize_to_multiple,
        )
        if self.mode in ("sliding_logits", "sliding_softmax_clamped"):
            require(
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

    gpus: int = 1  # GPUs of one training job, one process each (upstream's count)
    cpus_per_gpu: int = 4  # SLURM CPUs per GPU; also each training process's torch threads
    # Memory of one training job in MB (SLURM --mem; shared out over the nodes of a multi-node
    # job); the workflow's evaluation and prediction jobs of the recipe ask for it too.
    mem_mb: int = 32000
    # Wall time of a training job's first attempt in hours (capped at cluster.max_hours);
    # `semivl plan` counts it for a run no bench measured.
    hours: float = 24.0
    # Where ``hours`` comes from (e.g. upstream training logs); empty = a guess, which
    # `semivl plan` says.
    hours_source: str = ""

    def check(self, path: str) -> None:
        require(self.gpus >= 1, f"{path}.gpus", ">= 1", self.gpus)
        require(self.cpus_per_gpu >= 1, f"{path}.cpus_per_gpu", ">= 1", self.cpus_per_gpu)
        require(self.mem_mb >= 100, f"{path}.mem_mb", ">= 100", self.mem_mb)
        require(self.hours > 0, f"{path}.hours", "> 0", self.hours)


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
        plain = to_plain(dataclasses.asdict(self))
        for key, default in _DATASET_KEYS_OMITTED_AT_DEFAULT.items():
            if plain["dataset"].get(key, default) == default:
                plain["dataset"].pop(key, None)
        for section, keys in _SECTION_KEYS_OMITTED_AT_DEFAULT.items():
            for key, default in keys.items():
                if plain[section].get(key, default) == default:
                    plain[section].pop(key, None)
        method = get_method(plain["train"]["method"])
        for key in OPTIONAL_TRAIN_KEYS - set(method.train_keys):
            plain["train"].pop(key, None)  # only the methods that read it show it
        if plain["train"].get("args") is None:
            plain["train"].pop("args", None)
        if plain["train"]["speed"].get("tf32") == "upstream":  # as before the key existed
            plain["train"]["speed"].pop("tf32")
        return plain

    def with_num_workers(self, workers: int) -> Recipe:
        """This recipe with ``workers`` loader workers per stream and process (a site's
        setting: samples do not depend on it, and a run may resume with another)."""
        require(workers >= 0, "train.num_workers", ">= 0", workers)
        return dataclasses.replace(
            self, train=dataclasses.replace(self.train, num_workers=int(workers))
        )

    def with_schedule_fraction(self, fraction: float) -> Recipe:
        """This recipe training ``fraction`` of its schedule (``train.schedule_fraction``; the
        smoke grid's ``--schedule-fraction``), checked as that key is."""
        require(0 < fraction <= 1, "train.schedule_fraction", "in (0, 1]", fraction)
        train = dataclasses.replace(self.train, schedule_fraction=float(fraction))
        return dataclasses.replace(self, train=train)
