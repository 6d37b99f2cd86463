"""The experiment grid (``config/config.yaml``, ``config/grids/*.yaml``) and run paths.

A grid is a list of blocks, each a cross product of (dataset, split) cells x methods x seeds,
so a method can run on some cells only (SemiVL's ablations on VOC 92 and 1464, as the paper
does). The older single-block form (``splits``/``methods``/``seeds`` directly under ``grid``)
is one block. Snakemake validates the same file against ``workflow/schemas/config.schema.yaml``;
this module gives the library, the CLI and the Snakefile the same view of it, with errors that
name the key. DVC reads the grid's runs from the file ``semivl grid expand`` writes beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from semivl.config import ConfigError, build_config, read_yaml
from semivl.grid_settings import (  # noqa: F401 - the grid's settings, re-exported
    ClusterSettings,
    ReleasedCheckpoint,
    ReportSettings,
)
from semivl.methods.catalog import load_catalog


@dataclass(frozen=True)
class SplitCell:
    """One labelled split of one dataset."""

    dataset: str
    split: str


@dataclass(frozen=True)
class GridBlock:
    """One cross product: these cells x these methods x these seeds."""

    splits: list[SplitCell]
    methods: list[str]
    seeds: list[int]
    # A name for `semivl plan` and error messages (default: block<i>).
    name: str = ""

    def check(self, path: str) -> None:
        for key in ("splits", "methods", "seeds"):
            if not getattr(self, key):
                raise ConfigError(f"{path}.{key}: expected a non-empty list, got []")
        for key in ("methods", "seeds"):
            values = getattr(self, key)
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ConfigError(f"{path}.{key}: {repeated[0]!r} is listed twice")
        catalog = load_catalog()
        for i, method in enumerate(self.methods):
            if method not in catalog:
                raise ConfigError(
                    f"{path}.methods[{i}]: {method!r} is not a method of config/methods.yaml "
                    f"(known: {', '.join(catalog)}); a new method needs a line there with its "
                    f"table label and group (docs/add-a-method.md)"
                )
        cells = [(c.dataset, c.split) for c in self.splits]
        repeated_cells = sorted({c for c in cells if cells.count(c) > 1})
        if repeated_cells:
            d, s = repeated_cells[0]
            raise ConfigError(f"{path}.splits: {{dataset: {d}, split: {s!r}}} is listed twice")


@dataclass(frozen=True)
class GridAxes:
    """What to run: datasets, and the blocks of (cells x methods x seeds) over them.

    Either ``blocks`` or the single-block keys ``splits``, ``methods`` and ``seeds``.
    """

    datasets: list[str]
    blocks: list[GridBlock] = field(default_factory=list)
    splits: list[SplitCell] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)

    def check(self, path: str) -> None:
        if not self.datasets:
            raise ConfigError(f"{path}.datasets: expected a non-empty list, got []")
        single = [k for k in ("splits", "methods", "seeds") if getattr(self, k)]
        if self.blocks and single:
            raise ConfigError(
                f"{path}.{single[0]}: a grid has either `blocks` or the single-block keys "
                f"splits/methods/seeds, not both; move {single[0]} into a block"
            )
        if not self.blocks:
            missing = [k for k in ("splits", "methods", "seeds") if not getattr(self, k)]
            if missing:
                raise ConfigError(
                    f"{path}.{missing[0]}: expected a non-empty list (or give `blocks:`, "
                    f"each with splits, methods and seeds)"
                )
        for b, block in enumerate(self.all_blocks()):
            where = f"{path}.blocks[{b}]" if self.blocks else path
            for i, cell in enumerate(block.splits):
                if cell.dataset not in self.datasets:
                    raise ConfigError(
                        f"{where}.splits[{i}].dataset: expected one of "
                        f"{self.datasets} (grid.datasets), got {cell.dataset!r}"
                    )
        used = {c.dataset for block in self.all_blocks() for c in block.splits}
        unused = [d for d in self.datasets if d not in used]
        if unused:
            raise ConfigError(f"{path}.datasets: {unused[0]!r} has no cell in any block's splits")
        seen: dict[tuple, int] = {}
        for b, block in enumerate(self.all_blocks()):
            for cell in block.splits:
                for method in block.methods:
                    key = (cell.dataset, cell.split, method)
                    for seed in block.seeds:
                        if (*key, seed) in seen:
                            raise ConfigError(
                                f"{path}.blocks[{b}]: {cell.dataset} {cell.split} {method} "
                                f"seed {seed} is already in blocks[{seen[(*key, seed)]}]; "
                                f"list each run once"
                            )
                        seen[(*key, seed)] = b

    def all_blocks(self) -> list[GridBlock]:
        """The blocks, the single-block form as one block named ``main``."""
        if self.blocks:
            return [
                b if b.name else GridBlock(b.splits, b.methods, b.seeds, f"block{i}")
                for i, b in enumerate(self.blocks)
            ]
        return [GridBlock(self.splits, self.methods, self.seeds, "main")]


Run = tuple[str, str, str, int]  # (dataset, split, method, seed)


def _unique(values) -> list:
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class Grid:
    """The whole experiment grid file."""

    results_dir: str
    grid: GridAxes
    data_dir: str = "data"
    config_dir: str = "config"
    # How training jobs use the machines (GPUs per job and node, how GPUs are requested).
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    # Upstream checkpoints to import and evaluate here (`snakemake released`; docs/checkpoints.md).
    released: list[ReleasedCheckpoint] = field(default_factory=list)
    # Below 1: every run trains this fraction of its recipe's iterations (a smoke grid,
    # config/smoke.yaml); the tables flag such runs. 1.0 = the recipes' schedules.
    schedule_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.schedule_fraction <= 1:
            raise ConfigError(
                f"config.schedule_fraction: expected a number in (0, 1], got "
                f"{self.schedule_fraction}"
            )

    def check(self, path: str) -> None:
        """Checks across keys (each key's own checks run when it is built)."""
        seen: dict[tuple[str, str, str], int] = {}
        for i, entry in enumerate(self.released):
            if entry.dataset not in self.grid.datasets:
                raise ConfigError(
                    f"{path}.released[{i}].dataset: expected one of "
                    f"{self.grid.datasets} (grid.datasets), got {entry.dataset!r}"
                )
            key = (entry.dataset, entry.split, entry.method)
            if key in seen:
                raise ConfigError(
                    f"{path}.released[{i}]: {entry.dataset} {entry.split} "
                    f"{entry.method} is already released[{seen[key]}]"
                )
            seen[key] = i

    @property
    def datasets(self) -> list[str]:
        return list(self.grid.datasets)

    @property
    def blocks(self) -> list[GridBlock]:
        return self.grid.all_blocks()

    def run_dir(self, dataset: str, split: str, method: str, seed: int) -> Path:
        """``<results_dir>/runs/<dataset>/<split>/<method>/seed<seed>``."""
        return Path(self.results_dir) / "runs" / dataset / split / method / f"seed{seed}"

    def runs(self) -> list[Run]:
        """Every (dataset, split, method, seed) run of every block, in a fixed sorted order."""
        return sorted(
            {
                (cell.dataset, cell.split, method, seed)
                for block in self.blocks
                for cell in block.splits
                for method in block.methods
                for seed in block.seeds
            }
        )

    def cells(self) -> list[tuple[str, str]]:
        """The (dataset, split) cells of all blocks, in the order the grid first names them."""
        return _unique((c.dataset, c.split) for block in self.blocks for c in block.splits)

    def methods(self, dataset: str | None = None) -> list[str]:
        """The methods the grid runs (on ``dataset``), in the order the grid first names them."""
        return _unique(
            m
            for block in self.blocks
            for m in block.methods
            if dataset is None or any(c.dataset == dataset for c in block.splits)
        )

    def recipes(self) -> list[tuple[str, str]]:
        """Every (method, dataset) pair the grid trains, once each."""
        return _unique(
            (m, c.dataset) for block in self.blocks for c in block.splits for m in block.methods
        )

    def _fewest_labels_split(self, dataset: str) -> str:
        from semivl.config import load_dataset_config

        counts = load_dataset_config(dataset, Path(self.config_dir)).splits
        splits = [s for d, s in self.cells() if d == dataset]
        if not splits:
            raise ConfigError(f"grid: no cell of dataset {dataset!r}")
        return min(splits, key=lambda s: (counts.get(s, 0), s))

    def qualitative_runs(self, dataset: str) -> list[tuple[str, str, int]]:
        """(method, split, seed) of each model the qualitative grid shows: the dataset's
        split with the fewest labels in the grid (where methods differ most), the methods of
        the first block that runs that split, each with that block's first seed."""
        split = self._fewest_labels_split(dataset)
        block = next(
            b
            for b in self.blocks
            if any((c.dataset, c.split) == (dataset, split) for c in b.splits)
        )
        return [(method, split, block.seeds[0]) for method in block.methods]

    def qualitative_run(self, dataset: str, method: str) -> tuple[str, int]:
        """(split, seed) of ``method``'s model in the qualitative grid of ``dataset``."""
        shown = {m: (s, k) for m, s, k in self.qualitative_runs(dataset)}
        if method not in shown:
            raise ConfigError(
                f"grid: the qualitative grid of {dataset!r} shows "
                f"{sorted(shown)}, not {method!r} (the methods of the first "
                f"block that runs the split with the fewest labels)"
            )
        return shown[method]

    def expanded(self) -> dict:
        """The grid's iteration lists for DVC (``semivl grid expand``): the cells, the runs
        and the qualitative predictions, as mappings whose keys name the DVC stages."""
        cells = {f"{d}-{s}": {"dataset": d, "split": s} for d, s in sorted(self.cells())}
        bases = {(m, d): self.tracked_bases(m, d) for m, d in self.recipes()}
        runs = {
            f"{d}-{s}-{m}-seed{k}": {
                "dataset": d,
                "split": s,
                "method": m,
                "seed": k,
                **bases[(m, d)],
            }
            for d, s, m, k in self.runs()
        }
        predictions = {
            f"{d}-{m}": {"dataset": d, "method": m}
            for d in self.datasets
            for m, _, _ in self.qualitative_runs(d)
        }
        return {"cells": cells, "runs": runs, "predictions": predictions, **self.released_lists()}

    def tracked_bases(self, method: str, dataset: str) -> dict[str, str]:
        """``recipe_base1`` .. ``recipe_base<TRACKED_BASES>`` of a run for dvc.yaml: the files
        of the recipe's ``base:`` chain, padded with the recipe itself."""
        from semivl.recipes import TRACKED_BASES, recipe_chain

        chain = [p.as_posix() for p in recipe_chain(method, dataset, self.config_dir)]
        if len(chain) - 1 > TRACKED_BASES:
            raise ConfigError(
                f"{chain[0]}: its base: chain has {len(chain) - 1} files; DVC "
                f"tracks {TRACKED_BASES} (semivl.recipes.TRACKED_BASES, dvc.yaml)"
            )
        padded = chain[1:] + [chain[0]] * (TRACKED_BASES - len(chain) + 1)
        return {f"recipe_base{i + 1}": path for i, path in enumerate(padded)}

    def released_lists(self) -> dict:
        """DVC's lists of the released checkpoints: the imports (keys
        ``<dataset>-<split>-<method>``), the URL downloads (keys: cache folder names), and the
        folder the table stage depends on (a folder it reads anyway when none is listed:
        DVC has no optional dependencies)."""
        from semivl.released import cache_path, url_key

        imports, downloads = {}, {}
        for r in sorted(self.released, key=lambda r: (r.dataset, r.split, r.method)):
            pin = f"--sha256 {r.sha256.lower()}" if r.sha256 else ""
            local = cache_path(r.url).as_posix() if r.url else r.file
            imports[f"{r.dataset}-{r.split}-{r.method}"] = {
                "dataset": r.dataset,
                "split": r.split,
                "method": r.method,
                "source": r.source,
                "checkpoint": local,
                "pin": pin,
                **self.tracked_bases(r.method, r.dataset),
            }
            if r.url:
                downloads[url_key(r.url)] = {"url": r.url, "path": local, "pin": pin}
        table_dep = (
            f"{self.results_dir}/released" if self.released else f"{self.config_dir}/datasets"
        )
        return {
            "released_imports": imports,
            "released_downloads": downloads,
            "released_table_dep": table_dep,
        }


def load_grid(path: Path) -> Grid:
    """Load and validate a grid file."""
    path = Path(path)
    try:
        return build_config(Grid, read_yaml(path), "config")
    except ConfigError as err:
        message = str(err)
        raise ConfigError(
            message if message.startswith(str(path)) else f"{path}: {message}"
        ) from None


def expanded_path(grid_file: Path) -> Path:
    """Where ``semivl grid expand`` writes a grid's lists: ``<grid>.runs.yaml`` beside it."""
    grid_file = Path(grid_file)
    return grid_file.with_name(f"{grid_file.stem}.runs.yaml")


def split_paths(data_dir: str | Path, dataset: str, split: str) -> dict[str, Path]:
    """Split-file locations of one (dataset, split) cell."""
    base = Path(data_dir) / "splits" / dataset
    return {
        "labeled": base / split / "labeled.txt",
        "unlabeled": base / split / "unlabeled.txt",
        "val": base / "val.txt",
    }
