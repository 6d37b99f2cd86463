"""A grid's settings beside its axes: the report, how jobs use the cluster, and released
upstream checkpoints to evaluate beside the trained runs (:mod:`semivl.grid`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from semivl.config import ConfigError
from semivl.methods.catalog import released_methods


@dataclass(frozen=True)
class ReportSettings:
    """What the report shows beyond the metrics."""

    # Val images in the qualitative grid (the first ones of val.txt).
    qualitative_images: int = 4
    # Evaluate each dataset's frozen CLIP zero-shot (dense labels of the semivl recipe's CLIP
    # and guidance texts, no training) and show it as a reference row of the tables.
    zero_shot: bool = False

    def check(self, path: str) -> None:
        if not 1 <= self.qualitative_images <= 32:
            raise ConfigError(
                f"{path}.qualitative_images: expected 1 to 32, got {self.qualitative_images}"
            )


@dataclass(frozen=True)
class ClusterSettings:
    """How training jobs use the machines (``cluster:`` of a grid; read by the workflow and
    ``semivl plan``; semivl.launch builds the launcher and the SLURM resources from it)."""

    # Cap on the recipes' GPU count per job (null: the recipe's, upstream's count). Fewer
    # GPUs keep the global batch by gradient accumulation.
    max_gpus_per_job: int | None = None
    # GPUs of the site's nodes (null: no limit). A job with more GPUs runs on several nodes
    # (srun + torchrun with a c10d rendezvous), each with the same number of GPUs.
    max_gpus_per_node: int | None = None
    # How jobs ask SLURM for GPUs: `gpus` (--gpus=N; --gpus-per-node=N on several nodes) or
    # `gres` (--gres=gpu:N, per node), for sites that accept only the latter.
    gpu_request: Literal["gpus", "gres"] = "gpus"
    # A GPU type of the site (--gpus=a100:N, --gres=gpu:a100:N); null: any GPU.
    gpu_model: str | None = None
    # The longest wall time one job may ask for, in hours (a partition's limit; null: none).
    # Each attempt of a longer run asks for this much and stops itself before it ends,
    # saving last.pt; the next attempt resumes (semivl plan counts the attempts).
    max_hours: float | None = None
    # Where training runs: auto (the GPU when CUDA works; a job given GPUs, or a GPU recipe,
    # fails if it does not), cpu (on purpose: the toy, the CI's fake GPUs) or cuda.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Loader workers per stream and process for every training job instead of the recipes'
    # train.num_workers (null: the recipes'): a site's CPUs per GPU. Samples do not depend on
    # it and runs resume with another count.
    num_workers: int | None = None

    def check(self, path: str) -> None:
        for key in ("max_gpus_per_job", "max_gpus_per_node"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{path}.{key}: expected an integer >= 1 or null, got {value}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(
                f"{path}.num_workers: expected an integer >= 0 or null, got {self.num_workers}"
            )
        if self.max_hours is not None and self.max_hours < 1:
            raise ConfigError(
                f"{path}.max_hours: expected hours >= 1 or null (a partition's "
                f"wall-time limit), got {self.max_hours}"
            )
        if self.gpu_model is not None and not re.fullmatch(r"[A-Za-z0-9_.]+", self.gpu_model):
            raise ConfigError(
                f"{path}.gpu_model: expected a GPU type of letters, digits, '_' "
                f"and '.' (as in gres.conf, e.g. a100), got {self.gpu_model!r}"
            )

    def job_gpus(self, recipe_gpus: int) -> int:
        """A job's GPUs: the recipe's count, capped by ``max_gpus_per_job``."""
        from semivl.launch import job_gpus

        return job_gpus(recipe_gpus, self.max_gpus_per_job)


@dataclass(frozen=True)
class ReleasedCheckpoint:
    """One released upstream checkpoint (``released:`` of a grid): imported into
    ``<results_dir>/released/<dataset>/<split>/<method>/`` and evaluated here."""

    dataset: str
    split: str
    method: str
    file: str | None = None  # a local best.pth
    url: str | None = None  # or an http(s) URL, downloaded once (resources/released/)
    sha256: str | None = None  # expected sha256 (else pinned on first download)

    def check(self, path: str) -> None:
        released = released_methods()  # config/methods.yaml
        if self.method not in released:
            raise ConfigError(
                f"{path}.method: expected one of {released} (upstream layouts "
                f"import-checkpoint maps), got {self.method!r}"
            )
        if (self.file is None) == (self.url is None):
            raise ConfigError(
                f"{path}: expected exactly one of `file` (a path) and `url`, "
                f"got {'both' if self.file else 'neither'}"
            )
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ConfigError(f"{path}.url: expected an https URL, got {self.url!r}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
            raise ConfigError(f"{path}.sha256: expected 64 hex digits, got {self.sha256!r}")

    @property
    def source(self) -> str:
        return self.url or self.file or ""
