"""``semivl``: one subcommand per pipeline step, one module per step group.

Each step module imports its heavy dependencies (torch, pandas, matplotlib, open_clip) inside
the commands that need them, so ``semivl --help``, ``semivl <step> --help`` and the
bookkeeping steps (``splits``, ``aggregate``, ``table``, ``plot``, ``data check|fetch``)
start without loading torch.
"""

from __future__ import annotations

import argparse
import sys

from semivl.cli import (
    bench,
    checkpoint,
    data,
    dataset,
    grid,
    methods,
    models,
    predict,
    report,
    sweep,
    training,
)
from semivl.cli.common import EXIT_ERROR, EXIT_STOPPED

__all__ = ["EXIT_ERROR", "EXIT_STOPPED", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``semivl`` argument parser; every subcommand sets ``func`` to its command."""
    parser = argparse.ArgumentParser(
        prog="semivl",
        description="Semi-supervised segmentation benchmark: every pipeline step by hand.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="<step>")
    # The order of `semivl --help`: data to model, then reporting, costs and inference.
    for add in (
        dataset.add_dataset,
        data.add_data,
        data.add_splits,
        training.add_train,
        training.add_evaluate,
        models.add_pretrain_clip,
        models.add_weights,
        models.add_clip,
        models.add_text,
        predict.add_model_summary,
        report.add_aggregate,
        report.add_table,
        report.add_plot,
        bench.add_bench,
        bench.add_plan,
        grid.add_grid,
        methods.add_methods,
        sweep.add_sweep,
        predict.add_predict,
        checkpoint.add_import_checkpoint,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``semivl`` console script."""
    from semivl.errors import TrainingStopped

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except TrainingStopped as stop:
        print(f"semivl: {stop}", file=sys.stderr)
        return EXIT_STOPPED
    # ConfigError, DataError and SplitFileError are ValueErrors, DownloadError a RuntimeError:
    # every expected failure ends as one line that names the file or key, and exit code 2.
    except (OSError, RuntimeError, ValueError) as err:
        print(f"semivl {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    return 0
