"""``semivl dataset new``: the configs of your own dataset (no torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _ints(text: str, flag: str) -> list[int]:
    from semivl.config import ConfigError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers, got {text!r}") from None


def cmd_dataset_new(args: argparse.Namespace) -> None:
    from semivl.scaffold import new_dataset, parse_classes

    new_dataset(
        args.name,
        classes=parse_classes(args.classes),
        config_dir=args.config_dir,
        images=args.images,
        masks=args.masks,
        list_file=args.list,
        root=args.root,
        base=args.base,
        ignore_values=_ints(args.ignore_index, "--ignore-index"),
        label_offset=args.label_offset,
        val_fraction=args.val_fraction,
        val_list=args.val_list,
        splits=_ints(args.splits, "--splits") if args.splits else None,
        definitions=args.definitions,
        template=args.template,
        link=args.link,
        seed=args.seed,
        force=args.force,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(
        f"next: semivl data prepare {args.name}, then snakemake --cores 4 all --configfile "
        f"{args.config_dir}/grids/{args.name}.yaml"
    )


def add_dataset(sub: argparse._SubParsersAction) -> None:
    """``semivl dataset new``."""
    dataset = sub.add_parser("dataset", help="add your own dataset (configs from its folders)")
    steps = dataset.add_subparsers(dest="dataset_command", required=True, metavar="<command>")
    new = steps.add_parser(
        "new",
        help="write config/datasets/NAME.yaml, classes/NAME.yaml, the recipes and a "
        "grid for a folder of images and masks",
        description="Reads and checks the images and masks, then writes "
        "config/datasets/NAME.yaml, config/classes/NAME.yaml, "
        "config/recipes/<method>/NAME.yaml (inheriting BASE's recipe) and "
        "config/grids/NAME.yaml. Writes nothing on an error, and overwrites "
        "nothing without --force.",
    )
    new.add_argument("name", help="dataset name (letters, digits, '_')")
    new.add_argument("--images", type=Path, help="folder of images (subfolders allowed)")
    new.add_argument(
        "--masks",
        type=Path,
        help="folder of index masks, same relative paths as the images up to the "
        "suffix (.png); an image without a mask is unlabelled only",
    )
    new.add_argument(
        "--list",
        type=Path,
        help="instead of folders: a split file of 'image mask' / 'image None' lines",
    )
    new.add_argument(
        "--root", type=Path, help="what --list's paths are relative to (default: its folder)"
    )
    new.add_argument(
        "--classes", required=True, help="class names in index order, comma-separated: a,b,c"
    )
    new.add_argument(
        "--base",
        default="pascal",
        help="the dataset whose recipes NAME inherits (default pascal; toy: tiny CPU models)",
    )
    new.add_argument(
        "--ignore-index",
        default="255",
        help="stored mask value(s) that mean 'no label', comma-separated (default 255)",
    )
    new.add_argument(
        "--label-offset",
        type=int,
        default=0,
        help="added to stored mask values; -1: stored 0 = unlabelled (ignored), "
        "1..K = the classes (default 0)",
    )
    new.add_argument(
        "--val-fraction",
        type=float,
        help="share of the labelled images drawn for val (default 0.2)",
    )
    new.add_argument(
        "--val-list",
        type=Path,
        help="the val images instead: image paths inside --images, or a split file with --list",
    )
    new.add_argument(
        "--splits",
        help="labelled split sizes, comma-separated (default: about "
        "1/8, 1/4 and 1/2 of the labelled training images)",
    )
    new.add_argument(
        "--definitions",
        type=Path,
        help="YAML: class -> concepts (SemiVL's class definitions; default: each class's name)",
    )
    new.add_argument("--template", default="a photo of a {}", help="prompt template")
    new.add_argument(
        "--link",
        choices=["hardlink", "symlink", "copy"],
        default="hardlink",
        help="how `semivl data prepare` places the files (default hardlink)",
    )
    new.add_argument("--seed", type=int, default=0, help="seed of the val draw (default 0)")
    new.add_argument("--force", action="store_true", help="overwrite existing config files")
    new.add_argument("--config-dir", type=Path, default=Path("config"))
    new.add_argument("--workers", type=int, default=4, help="mask-decoding processes")
    new.add_argument("--no-progress", action="store_true", help="hide progress bars")
    new.set_defaults(func=cmd_dataset_new)
