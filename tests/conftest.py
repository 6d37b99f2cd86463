"""Shared fixtures: a small toy dataset, split files and a tiny recipe, all in tmp folders."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


def copy_workflow_files(root: Path) -> None:
    """Copies the repository's workflow files (Snakefile, DVC, configs, code, profile) into
    the new folder ``root``: a checkout to run the DAG in, away from the real one."""
    root.mkdir()
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy2(REPO / name, root / name)
    for name in ("workflow", "config", "semivl", "baselines", ".dvc", "slurm"):
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
        )


# The demo's CLIP pretraining, shrunk to seconds: 256 scenes, 6 steps.
TINY_PRETRAIN = """
clip: tiny_clip_toy
data: {generator: toy, num_images: 256, seed: 0, side: 48}
image_size: 48
steps: 6
batch_size: 32
warmup_steps: 2
checkpoint_every: 4
resources: {gpus: 1, cpus_per_gpu: 1, mem_mb: 2000, hours: 0.5}
"""

# Prints the local rules of the Snakefile in the working directory (run as a subprocess there).
_LOCALRULES_CODE = (
    "from pathlib import Path\n"
    "from snakemake.api import SnakemakeApi\n"
    "from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings\n"
    "with SnakemakeApi(OutputSettings(quiet=True)) as api:\n"
    "    wf = api.workflow(snakefile=Path('Snakefile'), resource_settings="
    "ResourceSettings(), config_settings=ConfigSettings())\n"
    "    print(' '.join(sorted(wf._workflow._localrules)))\n"
)


def snakemake_localrules(run) -> set[str]:
    """The rules the Snakefile runs on the login node; ``run(*argv)`` runs a command in the
    checkout and returns its output."""
    return set(run(sys.executable, "-c", _LOCALRULES_CODE).split())


os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

TINY_RECIPE = """
model:
  name: deeplabv3plus
  args: {backbone: tv_resnet10, dilations: [1, 2, 3], aspp_channels: 16, low_level_channels: 8}
augment: {crop_size: 32, resize: unimatch}
optim: {name: adamw, lr: 0.002, weight_decay: 0.01}
train:
  method: supervised
  batch_size: 2
  iters: 12
  num_workers: 0
  eval_every_iters: 6
  eval_every_epochs: null
  checkpoint_every_iters: 4
eval: {mode: sliding_softmax, crop_size: 48}
resources: {gpus: 1, cpus_per_gpu: 1, mem_mb: 2000, hours: 0.5}
"""


# The checkout's folders that `make demo` and users fill; no test may read or write them.
GUARDED = ("data", "resources", "results", ".dvc/cache")
_CHECKOUT = pytest.StashKey[dict]()


def _snapshot() -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under the guarded folders of the checkout."""
    files = {}
    for name in GUARDED:
        for folder, _dirs, names in os.walk(REPO / name):
            for file in names:
                path = Path(folder) / file
                try:
                    stat = path.lstat()
                except FileNotFoundError:
                    continue
                files[str(path.relative_to(REPO))] = (stat.st_size, stat.st_mtime_ns)
    return files


def pytest_sessionstart(session) -> None:
    session.config.stash[_CHECKOUT] = _snapshot()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Fail the run if a test changed the checkout's data/, resources/, results/ or DVC cache."""
    before, after = session.config.stash.get(_CHECKOUT, None), _snapshot()
    if before is None or before == after:
        return
    changed = sorted(
        set(before) ^ set(after) | {k for k in before if after.get(k, before[k]) != before[k]}
    )
    print(
        f"\nERROR: the tests changed {len(changed)} file(s) of the checkout's "
        f"{', '.join(GUARDED)} (tests must work in tmp_path): {changed[:10]}",
        file=sys.stderr,
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _outside_the_checkout(tmp_path_factory, monkeypatch) -> None:
    """Every test starts in an empty folder of its own (not inside its tmp_path, which stays
    the test's), so that a default path (resources/clip, data/toy, results/...) never reaches
    the checkout's files, whatever `make demo` left."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """A 24-train/6-val/6-dev toy dataset with split files for split '6' and val."""
    from semivl.data.make_splits import nested_split
    from semivl.data.prepare.toy import ToySpec, generate_toy
    from semivl.data.splits import read_id_list, voc_pairs, write_split_file

    base = tmp_path_factory.mktemp("toy")
    root = generate_toy(base / "toy", seed=3, spec=ToySpec(num_train=24, num_val=6, num_dev=6))
    sets = root / "ImageSets" / "Segmentation"
    train = voc_pairs(read_id_list(sets / "train.txt"))
    labeled, unlabeled = nested_split(train, train, 6, seed=0)
    write_split_file(base / "splits" / "6" / "labeled.txt", labeled)
    write_split_file(base / "splits" / "6" / "unlabeled.txt", unlabeled)
    write_split_file(base / "splits" / "val.txt", voc_pairs(read_id_list(sets / "val.txt")))
    return root


@pytest.fixture(scope="session")
def full_label_root(toy_root, tmp_path_factory) -> Path:
    """The toy fixture with every boundary pixel labelled background (no ignore pixels), so
    that every image contributes the same number of pixels to a loss."""
    import numpy as np
    from PIL import Image

    base = tmp_path_factory.mktemp("full")
    root = base / "toy"
    shutil.copytree(toy_root, root)
    shutil.copytree(toy_root.parent / "splits", base / "splits")
    for png in (root / "SegmentationClass").glob("*.png"):
        mask = Image.open(png)
        arr = np.asarray(mask).copy()
        arr[arr == 255] = 0
        out = Image.fromarray(arr, mode="P")
        out.putpalette(mask.getpalette())
        out.save(png)
    return root


TINY_UNIMATCH = (
    TINY_RECIPE.replace("method: supervised", "method: unimatch")
    .replace("iters: 12", "iters: 8")
    .replace("checkpoint_every_iters: 4", "checkpoint_every_iters: 3")
)


TINY_SEMIVL = """
model:
  name: semivl
  args:
    clip: tiny_clip_random
    out_blocks: [1, 0]
    channels: 16
    text_channels: 16
    num_heads: 2
    pool_size: 2
    aspp_dilations: [1, 2, 3]
    skip_channels: [8, 4]
    up_channels: [16, 8]
augment: {crop_size: 32, resize: unimatch}
optim:
  name: adamw
  lr: 0.002
  weight_decay: 0.01
  custom_keys: {backbone: {lr_mult: 0.1}, head: {lr_mult: 1.0}, norm: {decay_mult: 0.0}}
train:
  method: semivl
  batch_size: 2
  iters: 6
  num_workers: 0
  eval_every_iters: 3
  eval_every_epochs: null
  checkpoint_every_iters: 2
guidance: {text: concept_max, teacher_image_size: 32}
eval: {mode: sliding_logits, crop_size: 48, stride: 40}
resources: {gpus: 1, cpus_per_gpu: 1, mem_mb: 2000, hours: 0.5}
"""


@pytest.fixture()
def config_dir(tmp_path) -> Path:
    """A copy of config/ whose toy recipes are tiny (12, 8 and 6 iterations; the SemiVL
    ablations inherit the tiny SemiVL recipe)."""
    out = tmp_path / "config"
    shutil.copytree(REPO / "config", out)
    (out / "recipes" / "supervised" / "toy.yaml").write_text(TINY_RECIPE)
    (out / "recipes" / "unimatch" / "toy.yaml").write_text(TINY_UNIMATCH)
    (out / "recipes" / "semivl" / "toy.yaml").write_text(TINY_SEMIVL)
    return out
