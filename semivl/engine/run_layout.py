"""How a run's data streams and global batch are laid out: one dataset per stream its method
declares (``Method.streams``), the seed stream of each, and the schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from semivl.data.dataset import SegmentationDataset
from semivl.data.splits import read_split_file, require_disjoint_from_val
from semivl.engine import distributed as D
from semivl.engine.run_spec import RunSpec
from semivl.engine.schedule import schedule, shortened_iters, upsample_labeled
from semivl.methods import get_method

# The seed stream of each kind of data stream (semivl.methods.STREAM_KINDS): a stream's
# samples depend on the run's seed and its kind only.
STREAM_IDS = {"labeled": 0, "unlabeled": 1, "mix": 2}


@dataclass
class Plan:
    """How the data streams and the global batch are laid out."""

    datasets: list[SegmentationDataset]
    streams: list[int]
    stream_length: int
    accumulation: int
    iters_per_epoch: int
    epochs: int
    # Iterations the run trains: epochs x iters_per_epoch, or fewer for a shortened schedule
    # (train.schedule_fraction; the last epoch then stops early).
    total_iters: int = 0
    # Images in the labelled split file (before train.labeled_upsample_to repeats them).
    num_labeled: int = 0

    def __post_init__(self) -> None:
        if not self.total_iters:
            self.total_iters = self.epochs * self.iters_per_epoch


def make_plan(spec: RunSpec, info: D.DistInfo) -> Plan:
    """The run's datasets, one per stream its method declares, and its schedule; fails on bad
    data (a split that overlaps val, too few images) before anything is written."""
    recipe, cfg = spec.recipe, spec.recipe.train
    labeled = SegmentationDataset(
        spec.data_root, spec.labeled_split, recipe.dataset, "train", recipe.augment
    )
    val_pairs = read_split_file(spec.val_split)  # hand-edited lists must not train on val
    require_disjoint_from_val(labeled.pairs, val_pairs, str(spec.labeled_split))
    num_labeled = len(labeled)
    labeled.pairs = upsample_labeled(cfg, labeled.pairs)
    method = get_method(cfg.method)
    if method.reads_unlabeled:
        if spec.unlabeled_split is None:
            raise ValueError(f"method {cfg.method} needs an unlabelled split file")
        unlabeled = SegmentationDataset(
            spec.data_root, spec.unlabeled_split, recipe.dataset, "train_u", recipe.augment
        )
        require_disjoint_from_val(unlabeled.pairs, val_pairs, str(spec.unlabeled_split))
        length = len(unlabeled)  # an epoch is one pass over the unlabelled set
    else:
        length = len(labeled)
    datasets = [labeled if kind == "labeled" else unlabeled for kind in method.streams]
    streams = [STREAM_IDS[kind] for kind in method.streams]
    accumulation, iters_per_epoch, epochs = schedule(
        cfg, length, info.world, str(spec.labeled_split)
    )
    total = shortened_iters(cfg, epochs * iters_per_epoch)
    return Plan(
        datasets,
        streams,
        length,
        accumulation,
        iters_per_epoch,
        math.ceil(total / iters_per_epoch),
        total,
        num_labeled,
    )
