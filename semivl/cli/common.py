"""Helpers shared by the ``semivl`` step modules (argument groups, run specs, grids)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_ERROR = 2
EXIT_STOPPED = 3  # stopped early; running the same command again resumes


def add_run_args(p: argparse.ArgumentParser, run_required: bool = True) -> None:
    p.add_argument("--dataset", required=True, help="dataset name (config/datasets/<name>.yaml)")
    p.add_argument("--split", required=run_required, help="labelled split name, e.g. 92 or 1_16")
    p.add_argument("--method", required=True, help="method (config/recipes/<method>/)")
    p.add_argument("--seed", type=int, required=run_required, help="run seed")
    p.add_argument("--data-root", type=Path, required=True, help="prepared dataset folder")
    p.add_argument(
        "--splits-dir", type=Path, required=True, help="folder with <split>/labeled.txt and val.txt"
    )
    p.add_argument(
        "--config-dir",
        type=Path,
        default=Path("config"),
        help="folder holding datasets/ and recipes/ (default: ./config)",
    )
    p.add_argument(
        "--weights-dir",
        type=Path,
        default=Path("resources/weights"),
        help="folder of pretrained backbone files (default: resources/weights)",
    )
    p.add_argument(
        "--clip-dir",
        type=Path,
        default=Path("resources/clip"),
        help="folder of fetched CLIP weights (default: resources/clip)",
    )
    p.add_argument(
        "--text-dir",
        type=Path,
        default=Path("resources/text"),
        help="folder of class text embeddings (default: resources/text)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_spec(args: argparse.Namespace, out_dir: Path):
    from semivl.engine.trainer import RunSpec
    from semivl.recipes import load_recipe

    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    fraction = getattr(args, "schedule_fraction", None)
    if fraction is not None:
        recipe = recipe.with_schedule_fraction(fraction)
    workers = getattr(args, "num_workers", None)
    if workers is not None:
        recipe = recipe.with_num_workers(workers)
    return RunSpec(
        recipe=recipe,
        data_root=args.data_root,
        labeled_split=args.splits_dir / args.split / "labeled.txt",
        unlabeled_split=args.splits_dir / args.split / "unlabeled.txt",
        val_split=args.splits_dir / "val.txt",
        out_dir=out_dir,
        seed=args.seed,
        weights_dir=args.weights_dir,
        config_dir=args.config_dir,
        clip_dir=args.clip_dir,
        text_dir=args.text_dir,
    )


def grid_recipes(grid_file: Path, config_dir: Path):
    """Every recipe the grid runs (once per method and dataset)."""
    from semivl.grid import load_grid
    from semivl.recipes import load_recipe

    grid = load_grid(grid_file)
    for method, dataset in grid.recipes():
        yield load_recipe(method, dataset, config_dir)


def grid_clip_needs(grid_file: Path, config_dir: Path) -> dict[str, set[str]]:
    """CLIP model name -> datasets, over the grid's CLIP-based recipes (and the semivl recipe of
    each dataset when the grid evaluates zero-shot CLIP)."""
    from semivl.grid import load_grid
    from semivl.recipes import load_recipe

    recipes = list(grid_recipes(grid_file, config_dir))
    grid = load_grid(grid_file)
    if grid.report.zero_shot:
        recipes += [load_recipe("semivl", d, config_dir) for d in grid.datasets]
    from semivl.models.clip_config import needs_clip, recipe_clip

    needs: dict[str, set[str]] = {}
    for recipe in recipes:
        if needs_clip(recipe):
            needs.setdefault(recipe_clip(recipe), set()).add(recipe.dataset.name)
    return needs


def read_csv(path: Path, hint: str = "run `semivl aggregate` first"):
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; {hint}")
    return pd.read_csv(path, dtype={"split": str})


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (Snakemake passes absolute
    config paths; a table must not depend on where the checkout lives)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads`` to torch (imported here: only steps that compute call this)."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
