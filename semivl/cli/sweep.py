"""``semivl sweep``: tune recipes on a dev split with one budget for every method."""

from __future__ import annotations

import argparse
from pathlib import Path


def _require_inputs(paths) -> None:
    """The sweep trains on what ``make demo`` prepares; say so when it is missing."""
    missing = [
        str(p) for p in (paths.data_root, paths.clip_dir, paths.text_dir) if not Path(p).exists()
    ]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)}: missing; the sweep trains on the toy data, the tiny CLIP "
            "and its text embeddings that `make demo` prepares: run it first"
        )


def cmd_sweep(args: argparse.Namespace) -> None:
    from semivl.atomic import write_text_atomic
    from semivl.sweep import (
        SweepPaths,
        jobs,
        load_sweep,
        read_rows,
        run_sweep,
        selected,
        sweep_markdown,
        write_rows,
    )

    sweep = load_sweep(args.sweep)
    name = args.sweep.stem
    table = args.table or Path("docs") / "sweeps" / f"{name}.csv"
    page = table.with_suffix(".md")
    if not args.render_only:
        paths = SweepPaths(
            config_dir=args.config_dir,
            data_root=args.data_root or Path("data") / sweep.dataset,
            clip_dir=args.clip_dir,
            text_dir=args.text_dir,
            weights_dir=args.weights_dir,
        )
        _require_inputs(paths)
        out = args.out_dir or Path("results") / "sweeps" / name
        rows = run_sweep(sweep, paths, out, methods=args.methods, workers=args.jobs)
        table.parent.mkdir(parents=True, exist_ok=True)
        write_rows(rows, table)
    else:
        jobs(sweep, args.methods)  # validates --methods
    rows = read_rows(table)
    if not rows:
        raise FileNotFoundError(f"{table}: no sweep results; run `semivl sweep {args.sweep}`")
    write_text_atomic(sweep_markdown(rows, sweep, str(args.sweep)), page)
    print(f"wrote {table} and {page}")
    for method in sweep.methods():
        if any(r["method"] == method for r in rows):
            point = selected(rows, method)
            print(f"  {method}: lr {point.lr:g}, backbone x{point.backbone_lr_mult:g}")


def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="tune the toy recipes on the dev images: one grid of points for every method",
        description="Trains every (method, point, split, seed) of a sweep file that has not "
        "finished (results/sweeps/<name>/), scores each on the dataset's dev images, and writes "
        "docs/sweeps/<name>.csv (one row a run) and .md (the tables, selected points marked). "
        "Run after `make demo`, which prepares the toy data, the tiny CLIP and its texts.",
    )
    p.add_argument("sweep", type=Path, help="sweep file, e.g. config/sweeps/toy.yaml")
    p.add_argument("--methods", nargs="+", default=None, help="sweep these methods only")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    p.add_argument("--out-dir", type=Path, default=None, help="run folders (results/sweeps/<name>)")
    p.add_argument(
        "--table", type=Path, default=None, help="results table (docs/sweeps/<name>.csv)"
    )
    p.add_argument("--render-only", action="store_true", help="rewrite the page from the table")
    p.add_argument("--config-dir", type=Path, default=Path("config"))
    p.add_argument("--data-root", type=Path, default=None, help="default: data/<dataset>")
    p.add_argument(
        "--clip-dir",
        type=Path,
        default=Path("resources/clip"),
        help="folder of fetched CLIP weights (the SemiVL runs' models are built from them)",
    )
    p.add_argument(
        "--text-dir",
        type=Path,
        default=Path("resources/text"),
        help="folder of class text embeddings (`semivl text`; the SemiVL runs)",
    )
    p.add_argument("--weights-dir", type=Path, default=Path("resources/weights"))
    p.set_defaults(func=cmd_sweep)
