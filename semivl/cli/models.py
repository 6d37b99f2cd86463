"""``semivl pretrain-clip``, ``weights``, ``clip`` and ``text``: what training starts from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semivl.cli.common import EXIT_STOPPED, grid_clip_needs, grid_recipes, set_threads


def cmd_pretrain_clip(args: argparse.Namespace) -> None:
    set_threads(args)
    from semivl.engine.pretrain_clip import PRETRAIN_DIR, load_pretrain_config, pretrain_clip

    cfg = load_pretrain_config(args.name, args.config_dir)
    out = args.out or PRETRAIN_DIR / args.name
    result = pretrain_clip(
        cfg,
        args.name,
        args.config_dir,
        args.data,
        out,
        progress=not args.no_progress,
        stop_after_steps=args.stop_after_steps,
    )
    if result.steps < cfg.steps:
        print(f"stopped after {result.steps} of {cfg.steps} steps; the same command resumes")
        sys.exit(EXIT_STOPPED)
    print(
        f"pretrained {cfg.clip} for {result.steps} steps in {result.seconds:.0f} s: "
        f"contrastive loss {result.first_loss:.3f} -> {result.final_loss:.3f}; "
        f"wrote {out / 'model.pt'}"
    )


def cmd_clip_fetch(args: argparse.Namespace) -> None:
    from semivl.models.clip_source import fetch_clip

    if bool(args.grid) == bool(args.name):
        raise ValueError("give either --grid or one or more --name, not both")
    names = sorted(args.name or grid_clip_needs(args.grid, args.config_dir))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        out = args.out_dir / f"{name}.pt"
        if fetch_clip(name, args.config_dir, out, args.cache_dir, force=args.force):
            print(f"wrote {out}")
        else:
            print(f"{out}: up to date with config/clip.yaml (--force fetches again)")
    if not names:
        print("no CLIP model needed by this grid")


def cmd_text(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.models.clip_source import load_clip
    from semivl.models.text import write_text_embeddings

    if args.grid:
        if args.dataset or args.clip:
            raise ValueError("give either --grid or --dataset with --clip, not both")
        jobs = sorted(
            (clip, dataset)
            for clip, datasets in grid_clip_needs(args.grid, args.config_dir).items()
            for dataset in datasets
        )
    elif args.dataset and args.clip:
        jobs = [(args.clip, args.dataset)]
    else:
        raise ValueError("give --grid, or --dataset and --clip")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    clips = {}
    for clip_name, dataset in jobs:
        if clip_name not in clips:
            clips[clip_name] = load_clip(clip_name, args.config_dir, args.clip_dir)
        out, record = write_text_embeddings(
            clips[clip_name],
            load_dataset_config(dataset, args.config_dir),
            args.config_dir,
            args.out_dir,
            clip_name,
            cache_dir=args.cache_dir,
        )
        print(f"wrote {out}; {_text_check_summary(record)}")
    if not jobs:
        print("no text embeddings needed by this grid")


def _text_check_summary(record: dict) -> str:
    """One line on the upstream check of ``semivl text`` (the sidecar's record)."""
    if record["check"] != "passed":
        return f"upstream check {record['check']}"
    parts = []
    for key, variant in record["variants"].items():
        if variant["check"] != "passed":
            parts.append(f"{key} {variant['check']}")
            continue
        worst = variant["worst_row"]
        parts.append(
            f"{key} min cosine {worst['cosine']:.6f} (row {worst['index']} "
            f"{worst['text']!r}) vs {variant['file']}"
        )
    return "upstream check passed: " + "; ".join(parts)


def cmd_weights_fetch(args: argparse.Namespace) -> None:
    from semivl.weights import fetch, link_into

    if bool(args.grid) == bool(args.name):
        raise ValueError("give either --grid or one or more --name, not both")
    names = set(args.name or [])
    if args.grid:
        names |= {
            r.model.pretrained
            for r in grid_recipes(args.grid, args.config_dir)
            if r.model.pretrained
        }
    files = [
        fetch(name, args.config_dir, args.cache_dir, progress=not args.no_progress)
        for name in sorted(names)
    ]
    link_into(files, args.out_dir)
    print(f"{args.out_dir}: {', '.join(sorted(names)) or 'no pretrained weights needed'}")


def add_pretrain_clip(sub: argparse._SubParsersAction) -> None:
    """``semivl pretrain-clip``."""
    pretrain = sub.add_parser(
        "pretrain-clip",
        help="contrastive image-caption pretraining of a small CLIP",
        description="Trains the config/clip.yaml architecture named by config/pretrain/"
        "<name>.yaml on captioned scenes (no masks) and writes an open_clip "
        "checkpoint, model.pt, that `semivl clip fetch` loads.",
    )
    pretrain.add_argument("--name", required=True, help="config/pretrain/<name>.yaml")
    pretrain.add_argument(
        "--data", type=Path, required=True, help="captioned scenes (`semivl data captions`)"
    )
    pretrain.add_argument(
        "--out", type=Path, help="output folder (default: resources/pretrained/<name>)"
    )
    pretrain.add_argument("--config-dir", type=Path, default=Path("config"))
    pretrain.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    pretrain.add_argument(
        "--stop-after-steps",
        type=int,
        default=None,
        help=f"stop after N steps (exit code {EXIT_STOPPED}); the same command resumes",
    )
    pretrain.add_argument("--no-progress", action="store_true", help="hide progress bars")
    pretrain.set_defaults(func=cmd_pretrain_clip)


def add_weights(sub: argparse._SubParsersAction) -> None:
    """``semivl weights fetch``."""
    weights = sub.add_parser("weights", help="pretrained backbone weights")
    weights_sub = weights.add_subparsers(dest="weights_command", required=True, metavar="<cmd>")
    fetch = weights_sub.add_parser(
        "fetch", help="download, verify (sha256 pinned in config/weights.lock.yaml) and link"
    )
    fetch.add_argument("--name", action="append", help="weights name (config/weights.yaml)")
    fetch.add_argument("--grid", type=Path, help="fetch every file the grid's recipes need")
    fetch.add_argument("--config-dir", type=Path, default=Path("config"))
    fetch.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("resources/cache/weights"),
        help="download cache (kept across runs)",
    )
    fetch.add_argument(
        "--out-dir",
        type=Path,
        default=Path("resources/weights"),
        help="folder the training jobs read",
    )
    fetch.add_argument("--no-progress", action="store_true", help="hide the downloads' progress")
    fetch.set_defaults(func=cmd_weights_fetch)


def add_clip(sub: argparse._SubParsersAction) -> None:
    """``semivl clip fetch``."""
    clip = sub.add_parser("clip", help="CLIP weights for SemiVL (config/clip.yaml)")
    clip_sub = clip.add_subparsers(dest="clip_command", required=True, metavar="<cmd>")
    clip_fetch = clip_sub.add_parser(
        "fetch",
        help="resolve CLIP weights once (needs internet for a pretrained tag) and "
        "write <out-dir>/<name>.pt, which training reads offline",
    )
    clip_fetch.add_argument("--name", action="append", help="CLIP name (config/clip.yaml)")
    clip_fetch.add_argument("--grid", type=Path, help="fetch every CLIP the grid's recipes need")
    clip_fetch.add_argument("--config-dir", type=Path, default=Path("config"))
    clip_fetch.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("resources/cache/open_clip"),
        help="download cache of open_clip / Hugging Face (kept)",
    )
    clip_fetch.add_argument(
        "--out-dir",
        type=Path,
        default=Path("resources/clip"),
        help="folder the <name>.pt files go to (training's --clip-dir)",
    )
    clip_fetch.add_argument("--force", action="store_true", help="fetch files already present")
    clip_fetch.set_defaults(func=cmd_clip_fetch)


def add_text(sub: argparse._SubParsersAction) -> None:
    """``semivl text``."""
    text = sub.add_parser(
        "text",
        help="encode class names and definitions with CLIP's text "
        "tower (config/classes/<dataset>.yaml)",
        description="For the CLIP upstream used (upstream_text: true in "
        "config/clip.yaml) the embeddings are compared with "
        "upstream's, row by row (needs internet once).",
    )
    text.add_argument("--dataset", help="dataset name")
    text.add_argument("--clip", help="CLIP name (config/clip.yaml)")
    text.add_argument("--grid", type=Path, help="every (CLIP, dataset) the grid needs")
    text.add_argument("--config-dir", type=Path, default=Path("config"))
    text.add_argument(
        "--clip-dir",
        type=Path,
        default=Path("resources/clip"),
        help="folder of fetched CLIP weights (`semivl clip fetch`); they encode the texts",
    )
    text.add_argument(
        "--out-dir",
        type=Path,
        default=Path("resources/text"),
        help="writes <out-dir>/<clip>/<dataset>.pt and, beside it, .json: the "
        "check against upstream's embeddings (config/upstream_text.yaml)",
    )
    text.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("resources/cache/text"),
        help="download cache of upstream's embeddings (kept across runs)",
    )
    text.set_defaults(func=cmd_text)
