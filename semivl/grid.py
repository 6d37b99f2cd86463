"""The experiment grid (``config/config.yaml``, ``config/demo.yaml``) and run paths.

Snakemake validates the same file against ``workflow/schemas/config.schema.yaml``; this module
gives the library and the CLI the same view of it, with errors that name the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from semivl.config import ConfigError, build_config, read_yaml


@dataclass(frozen=True)
class SplitCell:
    """One labelled split of one dataset."""

    dataset: str
    split: str


@dataclass(frozen=True)
class GridAxes:
    """What to run: datasets x (their splits) x methods x seeds."""

    datasets: list[str]
    splits: list[SplitCell]
    methods: list[str]
    seeds: list[int]

    def check(self, path: str) -> None:
        for key in ("datasets", "splits", "methods", "seeds"):
            if not getattr(self, key):
                raise ConfigError(f"{path}.{key}: expected a non-empty list, got []")
        for i, cell in enumerate(self.splits):
            if cell.dataset not in self.datasets:
                raise ConfigError(f"{path}.splits[{i}].dataset: expected one of "
                                  f"{self.datasets} (grid.datasets), got {cell.dataset!r}")
        unused = sorted(set(self.datasets) - {c.dataset for c in self.splits})
        if unused:
            raise ConfigError(f"{path}.datasets: {unused[0]!r} has no entry in grid.splits")


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
            raise ConfigError(f"{path}.qualitative_images: expected 1 to 32, got "
                              f"{self.qualitative_images}")


@dataclass(frozen=True)
class Grid:
    """The whole experiment grid file."""

    results_dir: str
    grid: GridAxes
    data_dir: str = "data"
    config_dir: str = "config"
    # How training jobs use the machines ({max_gpus_per_job: N}); read by the workflow.
    cluster: dict[str, int | None] = field(default_factory=dict)
    report: ReportSettings = field(default_factory=ReportSettings)

    def run_dir(self, dataset: str, split: str, method: str, seed: int) -> Path:
        """``<results_dir>/runs/<dataset>/<split>/<method>/seed<seed>``."""
        return Path(self.results_dir) / "runs" / dataset / split / method / f"seed{seed}"

    def qualitative_run(self, dataset: str) -> tuple[str, int]:
        """(split, seed) whose models the qualitative grid shows: the dataset's split with the
        fewest labels in the grid (where methods differ most) and the first seed."""
        from semivl.config import load_dataset_config

        counts = load_dataset_config(dataset, Path(self.config_dir)).splits
        splits = [c.split for c in self.grid.splits if c.dataset == dataset]
        if not splits:
            raise ConfigError(f"grid.splits: no split of dataset {dataset!r}")
        return min(splits, key=lambda s: (counts.get(s, 0), s)), self.grid.seeds[0]

    def runs(self) -> list[tuple[str, str, str, int]]:
        """Every (dataset, split, method, seed) cell, in a fixed sorted order."""
        return sorted(
            (cell.dataset, cell.split, method, seed)
            for cell in self.grid.splits for method in self.grid.methods
            for seed in self.grid.seeds
        )


def load_grid(path: Path) -> Grid:
    """Load and validate a grid file."""
    path = Path(path)
    try:
        return build_config(Grid, read_yaml(path), "config")
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}"
                          ) from None


def split_paths(data_dir: str | Path, dataset: str, split: str) -> dict[str, Path]:
    """Split-file locations of one (dataset, split) cell."""
    base = Path(data_dir) / "splits" / dataset
    return {"labeled": base / split / "labeled.txt", "unlabeled": base / split / "unlabeled.txt",
            "val": base / "val.txt"}
