"""``semivl bench`` and ``semivl plan``: measured costs and GPU-hours."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from semivl.cli.common import set_threads


def cmd_bench(args: argparse.Namespace) -> None:
    set_threads(args)
    import json

    from semivl.atomic import write_text_atomic
    from semivl.bench.hardware import resolve_device
    from semivl.bench.run import run_bench
    from semivl.grid import load_grid

    if args.show:
        from semivl.bench.markdown import render_bench

        print(render_bench(json.loads(args.show.read_text())))
        return
    if args.acceptance:
        from semivl.bench.acceptance import run_acceptance, summarise

        result = run_acceptance(
            args.acceptance, resolve_device(args.device), args.config_dir, budget_s=args.budget_s
        )
        summary = summarise(result)
        write_text_atomic(summary + "\n", args.acceptance / "summary.md")
        print(summary)
        return
    datasets = tuple(load_grid(args.grid).grid.datasets) if args.grid else ("pascal",)

    def save(partial: dict) -> None:  # after every row: an interrupted run keeps its rows
        if args.out:
            write_text_atomic(json.dumps(partial, indent=2) + "\n", args.out)

    result = run_bench(
        args.quick,
        resolve_device(args.device),
        Path.cwd(),
        args.config_dir,
        paper_datasets=datasets,
        workflow=not args.no_workflow,
        progress=lambda what: print(f"bench: {what}", file=sys.stderr, flush=True),
        save=save,
    )
    text = json.dumps(result, indent=2)
    if args.out:
        save(result)
        print(f"bench: wrote {args.out}", file=sys.stderr)
    print(text)


def cmd_plan(args: argparse.Namespace) -> None:
    import json

    from semivl.bench.plan import plan_grid, render_plan
    from semivl.grid import load_grid

    bench = None
    if args.bench:
        if not args.bench.is_file():
            raise FileNotFoundError(
                f"{args.bench}: not found; write it with `semivl bench --out FILE` on a GPU machine"
            )
        bench = json.loads(args.bench.read_text())
    rows = plan_grid(load_grid(args.grid), bench, args.config_dir)
    print(json.dumps(rows, indent=2) if args.json else render_plan(rows))


def add_bench(sub: argparse._SubParsersAction) -> None:
    """``semivl bench``."""
    bench = sub.add_parser(
        "bench",
        help="measure training, loader, evaluation and workflow "
        "costs; prints JSON (docs/performance.md)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="tiny configuration only: under a minute on a laptop CPU",
    )
    bench.add_argument(
        "--grid",
        type=Path,
        default=None,
        help="without --quick: measure the recipes of this grid's datasets (default: pascal)",
    )
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument(
        "--no-workflow", action="store_true", help="skip timing snakemake -n and dvc status"
    )
    bench.add_argument("--out", type=Path, help="also write the JSON here")
    bench.add_argument(
        "--show",
        type=Path,
        help="measure nothing: print the markdown tables of this earlier bench JSON",
    )
    bench.add_argument(
        "--acceptance",
        type=Path,
        metavar="DIR",
        help="the GPU acceptance check (benchmarks/gpu_check.sh): every "
        "method's recipe in three precisions, rows written to DIR as they "
        "finish; reduced on a CPU",
    )
    bench.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="with --acceptance: start no row after this many seconds",
    )
    bench.add_argument("--config-dir", type=Path, default=Path("config"))
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bench.set_defaults(func=cmd_bench)


def add_plan(sub: argparse._SubParsersAction) -> None:
    """``semivl plan``."""
    plan = sub.add_parser("plan", help="GPU-hours of every cell of a grid and in total")
    plan.add_argument(
        "--grid", type=Path, default=Path("config/config.yaml"), help="grid file to cost"
    )
    plan.add_argument("--bench", type=Path, help="`semivl bench` JSON measured on a GPU")
    plan.add_argument(
        "--config-dir", type=Path, default=None, help="default: the grid's config_dir"
    )
    plan.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plan.set_defaults(func=cmd_plan)
