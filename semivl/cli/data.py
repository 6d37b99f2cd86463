"""``semivl data ...`` and ``semivl splits``: datasets and split files (no torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_data_toy(args: argparse.Namespace) -> None:
    from semivl.data.prepare.toy import ToySpec, generate_toy

    spec = ToySpec(num_train=args.num_train, num_val=args.num_val, num_dev=args.num_dev)
    out = generate_toy(args.out, seed=args.seed, spec=spec, force=args.force)
    print(f"wrote the toy dataset to {out}")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from semivl.config import ConfigError, load_dataset_config
    from semivl.data.archives import fetch_archive
    from semivl.data.prepare import preparer

    cfg = load_dataset_config(args.dataset, args.config_dir)
    keys = preparer(args.dataset, cfg.layout).required_archives(cfg)
    if args.file:
        by_file = {cfg.archives[k].file: k for k in cfg.archives}
        if args.file not in by_file:
            raise ConfigError(
                f"{args.dataset} has no archive named {args.file!r}; known: {sorted(by_file)}"
            )
        keys = [by_file[args.file]]
    archive_dir = args.archive_dir or Path("resources/archives") / args.dataset
    for key in keys:
        path = fetch_archive(cfg, key, archive_dir, args.config_dir, progress=not args.no_progress)
        print(f"{path}: present and verified")


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from semivl.data.prepare import prepare_dataset

    prepare_dataset(
        args.dataset,
        args.out or Path("data") / args.dataset,
        args.archive_dir or Path("resources/archives") / args.dataset,
        args.config_dir,
        force=args.force,
        progress=not args.no_progress,
    )


def cmd_data_check(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.data.check import check_dataset, require_valid
    from semivl.data.masks import require_data_root

    cfg = load_dataset_config(args.dataset, args.config_dir)
    root = args.data_root or Path("data") / args.dataset
    if args.source and cfg.layout != "generic":
        raise ValueError(
            f"--source: {args.dataset} is prepared from archives (layout "
            f"{cfg.layout}); only your own datasets (layout generic) have one"
        )
    if cfg.layout == "generic" and (args.source or not root.is_dir()):
        # Your own dataset before (or besides) `data prepare`: the files its source names.
        from semivl.data.prepare.generic import check_source

        if not args.source:
            print(
                f"{root} is not prepared yet: checking the files of source: in "
                f"{args.config_dir}/datasets/{args.dataset}.yaml"
            )
        report = check_source(
            cfg, args.config_dir, workers=args.workers, progress=not args.no_progress
        )
    else:
        root = require_data_root(root, args.dataset)
        report = check_dataset(
            cfg, root, sample=args.sample, workers=args.workers, progress=not args.no_progress
        )
    print(report.summary())
    require_valid(report)


def cmd_splits(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.data.make_splits import write_splits
    from semivl.data.masks import require_data_root

    cfg = load_dataset_config(args.dataset, args.config_dir)
    root = require_data_root(args.data_root or Path("data") / args.dataset, args.dataset)
    splits = args.split or ([] if args.val else list(cfg.splits))
    write_splits(
        cfg,
        root,
        args.out_dir or Path("data/splits") / args.dataset,
        splits=splits,
        val=args.val or not args.split,
        source=args.source or cfg.split_source,
        seed=args.seed,
        cache_dir=args.cache_dir,
        config_dir=args.config_dir,
    )


def cmd_data_captions(args: argparse.Namespace) -> None:
    from semivl.data.prepare.toy import generate_caption_set
    from semivl.engine.pretrain_config import load_pretrain_config

    cfg = load_pretrain_config(args.pretrain, args.config_dir).data
    out = generate_caption_set(
        args.out,
        cfg.num_images,
        seed=cfg.seed,
        spec=cfg.spec(),
        force=args.force,
        progress=not args.no_progress,
    )
    print(f"wrote {cfg.num_images} captioned scenes (seed {cfg.seed}) to {out}")


def add_data(sub: argparse._SubParsersAction) -> None:
    """``semivl data toy|captions|fetch|prepare|check``."""
    data = sub.add_parser("data", help="create or fetch datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="<dataset>")
    toy = data_sub.add_parser("toy", help="generate the embedded toy dataset (VOC layout)")
    toy.add_argument("--out", type=Path, default=Path("data/toy"), help="output folder")
    toy.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    toy.add_argument("--num-train", type=int, default=240, help="training images")
    toy.add_argument("--num-val", type=int, default=60, help="validation images")
    toy.add_argument(
        "--num-dev", type=int, default=60, help="dev images (tuning only; `semivl sweep`)"
    )
    toy.add_argument("--force", action="store_true", help="replace an existing folder")
    toy.set_defaults(func=cmd_data_toy)

    captions = data_sub.add_parser(
        "captions", help="generate the captioned scenes a CLIP pretraining learns from"
    )
    captions.add_argument(
        "--pretrain", required=True, help="pretraining name (config/pretrain/<name>.yaml: its data)"
    )
    captions.add_argument("--out", type=Path, required=True, help="output folder")
    captions.add_argument("--config-dir", type=Path, default=Path("config"))
    captions.add_argument("--force", action="store_true", help="replace an existing folder")
    captions.add_argument("--no-progress", action="store_true", help="hide progress bars")
    captions.set_defaults(func=cmd_data_captions)

    def dataset_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = data_sub.add_parser(name, help=help_text)
        p.add_argument("dataset", help="dataset name (config/datasets/<dataset>.yaml)")
        p.add_argument("--config-dir", type=Path, default=Path("config"))
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")
        p.set_defaults(func=func)
        return p

    fetch_data = dataset_command(
        "fetch", "download and verify a dataset's archives", cmd_data_fetch
    )
    fetch_data.add_argument("--file", help="only this archive (its file name)")
    fetch_data.add_argument(
        "--archive-dir", type=Path, help="default: resources/archives/<dataset>"
    )
    prepare = dataset_command(
        "prepare",
        "fetch the archives and build data/<dataset>/ (ends with `data check`)",
        cmd_data_prepare,
    )
    prepare.add_argument("--out", type=Path, help="default: data/<dataset>")
    prepare.add_argument("--archive-dir", type=Path, help="default: resources/archives/<dataset>")
    prepare.add_argument(
        "--force", action="store_true", help="rebuild a folder that is already prepared"
    )
    check = dataset_command(
        "check", "counts, sizes and mask values of a prepared dataset", cmd_data_check
    )
    check.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    check.add_argument(
        "--sample",
        type=int,
        help="decode only this many pairs per part (evenly spaced); counts are always complete",
    )
    check.add_argument("--workers", type=int, default=4, help="mask-decoding processes")
    check.add_argument(
        "--source",
        action="store_true",
        help="your own dataset: check the files its source: names, not "
        "data/<dataset>/ (the default while that is not prepared)",
    )


def add_splits(sub: argparse._SubParsersAction) -> None:
    """``semivl splits``."""
    splits = sub.add_parser(
        "splits",
        help="write labelled/unlabelled split files and val.txt",
        description="Without --split or --val: every configured split and val.txt.",
    )
    splits.add_argument("dataset", help="dataset name (config/datasets/<dataset>.yaml)")
    splits.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    splits.add_argument(
        "--out-dir",
        type=Path,
        help="writes <out-dir>/<split>/"
        "{labeled,unlabeled}.txt and val.txt; default: data/splits/<dataset>",
    )
    splits.add_argument(
        "--split",
        action="append",
        help="labelled split name (repeatable; config/datasets/<dataset>.yaml)",
    )
    splits.add_argument("--val", action="store_true", help="write val.txt")
    splits.add_argument(
        "--source",
        choices=["official", "generated"],
        help="default: split_source of the dataset config",
    )
    splits.add_argument(
        "--seed", type=int, default=0, help="shuffle seed of generated splits (default 0)"
    )
    splits.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("resources/cache/splits"),
        help="where official lists are downloaded",
    )
    splits.add_argument("--config-dir", type=Path, default=Path("config"))
    splits.set_defaults(func=cmd_splits)
