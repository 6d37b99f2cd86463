"""``semivl import-checkpoint``: an upstream ``best.pth`` (file or URL) as a run folder.

The folder is what ``semivl evaluate --run-dir`` reads, so the authors' released weights are
evaluated by this project's own code under the recipe's protocol (``docs/checkpoints.md``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semivl.cli.common import set_threads


def _sha256(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"expected 64 hex digits, got {text!r}")
    return value


def cmd_import_checkpoint(args: argparse.Namespace) -> None:
    from semivl import released

    if args.download_only:
        if not released.is_url(args.source):
            raise ValueError(f"--download-only needs a URL, got {args.source!r}")
        path, sha = released.fetch(
            args.source, args.config_dir, args.cache_dir, args.sha256, progress=not args.no_progress
        )
        print(f"{args.source} -> {path} (sha256 {sha})")
        return
    missing = [f"--{n}" for n in ("method", "dataset", "split") if getattr(args, n) is None]
    if missing:
        raise ValueError(f"import-checkpoint needs {', '.join(missing)}")
    set_threads(args)
    from semivl.engine.import_run import describe, import_checkpoint
    from semivl.models.semivl_model import ModelContext
    from semivl.recipes import load_recipe

    recipe = load_recipe(args.method, args.dataset, args.config_dir)
    # Resolve the recipe first: a wrong method or dataset fails before any download.
    from semivl.engine.upstream_checkpoint import method_map

    method_map(recipe.train.method, recipe.model.name)
    path, sha = released.resolve(
        args.source, args.config_dir, args.cache_dir, args.sha256, progress=not args.no_progress
    )
    out = args.out or Path("results/released") / args.dataset / args.split / args.method
    context = ModelContext(
        dataset=recipe.dataset,
        crop_size=recipe.augment.crop_size,
        config_dir=args.config_dir,
        clip_dir=args.clip_dir,
        text_dir=args.text_dir,
    )
    result = import_checkpoint(
        path,
        recipe,
        context,
        split=args.split,
        method=args.method,
        source=args.source,
        sha256=sha,
        out_dir=out,
        config_dir=args.config_dir,
        weights_key=args.weights_key,
    )
    print(
        f"imported upstream {recipe.train.method} checkpoint {args.source} for "
        f"{args.method} on {args.dataset}/{args.split}"
    )
    for line in describe(result, recipe.train.method):
        print(f"  {line}")


def add_import_checkpoint(sub: argparse._SubParsersAction) -> None:
    """``semivl import-checkpoint``."""
    p = sub.add_parser(
        "import-checkpoint",
        help="convert an upstream SemiVL/UniMatch/UniMatch V2 best.pth "
        "into a run folder that `semivl evaluate` reads",
        description="Reads an upstream best.pth ({'model' or 'ema_model': DDP state_dict, ...}), "
        "renames its tensors to this project's modules (docs/upstream.md, "
        "Checkpoint layouts), checks every shape against the recipe's model and "
        "writes <out>/model.pt, config.yaml, train_summary.json and "
        "provenance.json. A partial fit is refused. A URL is downloaded once into "
        "--cache-dir and its sha256 pinned in <config-dir>/released.lock.yaml.",
    )
    p.add_argument("source", help="best.pth file, or an https URL of one")
    p.add_argument(
        "--method",
        help="recipe folder (config/recipes/<method>/): semivl, "
        "unimatch or unimatch_v2, or a variant of them",
    )
    p.add_argument("--dataset", help="dataset name (config/datasets/<name>.yaml)")
    p.add_argument("--split", help="the labelled split the checkpoint was trained on")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: results/released/<dataset>/<split>/<method>)",
    )
    p.add_argument("--config-dir", type=Path, default=Path("config"))
    p.add_argument(
        "--clip-dir",
        type=Path,
        default=Path("resources/clip"),
        help="fetched CLIP weights (SemiVL's model is built from them)",
    )
    p.add_argument(
        "--text-dir",
        type=Path,
        default=Path("resources/text"),
        help="class text embeddings (SemiVL)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("resources/released"),
        help="download cache for URLs (default: resources/released)",
    )
    p.add_argument(
        "--sha256",
        type=_sha256,
        default=None,
        help="expected sha256 of the file (default: the pin in released.lock.yaml, "
        "set on first download)",
    )
    p.add_argument(
        "--weights-key",
        default=None,
        help="the file's entry to read (default: 'model', then 'ema_model'; "
        "UniMatch V2: 'model_ema', its reported EMA teacher, then 'model', "
        "its student)",
    )
    p.add_argument(
        "--download-only",
        action="store_true",
        help="only download and verify the URL (the workflow's login-node step)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide the download's progress")
    p.set_defaults(func=cmd_import_checkpoint)
