"""``semivl grid expand``: a grid's iteration lists for DVC.

DVC's ``matrix:`` takes cross products only, and a grid of blocks is a union of them, so
``dvc.yaml`` iterates (``foreach:``) over the lists this command writes beside the grid
(``config/config.runs.yaml`` for ``config/config.yaml``). The Snakefile reads the grid
itself; ``tests/test_workflow.py`` checks that both declare the same outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HEADER = (
    "# Written by `semivl grid expand --grid {grid}` from that file: the runs DVC iterates\n"
    "# over (dvc.yaml). Do not edit; edit {grid} and run the command again.\n"
)


def render_expanded(grid_file: Path) -> str:
    """The text of ``grid_file``'s expanded lists."""
    import yaml

    from semivl.grid import load_grid

    body = yaml.safe_dump(
        load_grid(grid_file).expanded(), sort_keys=False, default_flow_style=None, width=100
    )
    return HEADER.format(grid=grid_file.as_posix()) + body


def cmd_expand(args: argparse.Namespace) -> None:
    from semivl.atomic import write_text_atomic
    from semivl.grid import expanded_path, load_grid

    out = args.out or expanded_path(args.grid)
    text = render_expanded(args.grid)
    if args.check:
        if not out.is_file() or out.read_text() != text:
            state = "missing" if not out.is_file() else "out of date"
            raise ValueError(
                f"{out} is {state} for {args.grid}: run `semivl grid expand "
                f"--grid {args.grid}` (DVC reads its runs from it)"
            )
        print(f"{out} is up to date with {args.grid}")
        return
    write_text_atomic(text, out)
    print(f"wrote {out} ({len(load_grid(args.grid).runs())} runs)")


def add_grid(sub: argparse._SubParsersAction) -> None:
    """``semivl grid``."""
    grid = sub.add_parser("grid", help="a grid's runs, expanded for DVC")
    steps = grid.add_subparsers(dest="grid_command", required=True, metavar="<command>")
    expand = steps.add_parser(
        "expand",
        help="write the grid's cells, runs and predictions for dvc.yaml "
        "(<grid>.runs.yaml beside the grid)",
    )
    expand.add_argument(
        "--grid", type=Path, default=Path("config/config.yaml"), help="grid file to expand"
    )
    expand.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write (default: <grid>.runs.yaml beside the grid)",
    )
    expand.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail if the file is missing or out of date",
    )
    expand.set_defaults(func=cmd_expand)
