"""``semivl aggregate``, ``table`` and ``plot``: from metrics files to tables and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from semivl.cli.common import read_csv, shown_path


def cmd_aggregate(args: argparse.Namespace) -> None:
    from semivl.grid import load_grid
    from semivl.report.aggregate import (
        collect_curves,
        collect_grid,
        collect_metrics,
        collect_per_class,
        grid_metrics_files,
        write_long_csv,
        write_metrics_csv,
    )

    if bool(args.grid) == bool(args.metrics):
        raise ValueError("give either --grid or a list of metrics.json files, not both")
    if args.allow_incomplete and not args.grid:
        raise ValueError("--allow-incomplete needs --grid (it reports the grid's missing runs)")
    grid = load_grid(args.grid) if args.grid else None
    frame = (
        collect_grid(grid, allow_incomplete=args.allow_incomplete)
        if grid
        else collect_metrics(args.metrics)
    )
    paths = grid_metrics_files(grid) if grid else args.metrics
    write_metrics_csv(frame, args.out)
    if args.per_class:
        write_long_csv(collect_per_class(paths), args.per_class)
    if args.curves:
        write_long_csv(collect_curves(paths), args.curves)
    print(f"wrote {len(frame)} runs to {args.out}")


def _releases(datasets, config_dir: Path) -> dict[str, str]:
    from semivl.config import load_dataset_config

    return {d: load_dataset_config(d, config_dir).release for d in sorted(set(datasets))}


def cmd_table(args: argparse.Namespace) -> None:
    import json

    from semivl.atomic import write_text_atomic
    from semivl.download import sha256_of
    from semivl.report.published import load_published
    from semivl.report.tables import render_tables

    frame = read_csv(args.metrics)
    published = load_published(args.published) if args.published else None
    grid_note = (
        f"`{shown_path(args.grid)}` (sha256 `{sha256_of(args.grid)[:12]}`)" if args.grid else None
    )
    zero_shot = {}
    for path in args.zero_shot or []:
        record = json.loads(Path(path).read_text())
        if "miou" not in record or "dataset" not in record:
            raise ValueError(
                f"{path}: not a zero-shot metrics file (`semivl evaluate "
                f"--zero-shot`); it lacks 'miou' or 'dataset'"
            )
        zero_shot[record["dataset"]] = record
    from semivl.report.released import read_released

    released = read_released(args.released, args.released_dir)
    text = render_tables(
        frame,
        args.title,
        published=published,
        releases=_releases(frame["dataset"].dropna(), args.config_dir),
        grid_note=grid_note,
        zero_shot=zero_shot,
        released=released,
    )
    write_text_atomic(text + "\n", args.out)
    print(f"wrote {args.out}")
    if args.html:
        from semivl.report.html import render_html

        write_text_atomic(render_html(text + "\n", args.title), args.html)
        print(f"wrote {args.html}")


def cmd_plot_overview(args: argparse.Namespace) -> None:
    from semivl.report.figures import plot_miou_vs_labels
    from semivl.report.published import load_published

    published = load_published(args.published) if args.published else None
    for out in plot_miou_vs_labels(
        read_csv(args.metrics), args.out_dir / "miou_vs_labels", published
    ):
        print(f"wrote {out}")


def cmd_plot_dataset(args: argparse.Namespace) -> None:
    from semivl.config import load_dataset_config
    from semivl.report.figures import plot_ablation, plot_per_class, plot_training_curves
    from semivl.report.qualitative import plot_qualitative

    cfg = load_dataset_config(args.dataset, args.config_dir)
    out = args.out_dir
    written = plot_ablation(read_csv(args.metrics), args.dataset, out / "ablation")
    written += plot_per_class(
        read_csv(args.per_class), args.dataset, out / "per_class_iou", cfg.class_names
    )
    written += plot_training_curves(read_csv(args.curves), args.dataset, out / "training_curves")
    if args.predictions:
        if not args.val:
            raise ValueError("--predictions needs --val (the val.txt the images come from)")
        methods = None
        if args.grid:
            from semivl.grid import load_grid

            methods = [m for m, _, _ in load_grid(args.grid).qualitative_runs(args.dataset)]
        written += plot_qualitative(
            cfg,
            args.data_root or Path("data") / args.dataset,
            args.val,
            args.predictions,
            out / "qualitative",
            methods,
        )
    for path in written:
        print(f"wrote {path}")


def add_aggregate(sub: argparse._SubParsersAction) -> None:
    """``semivl aggregate``."""
    aggregate = sub.add_parser("aggregate", help="collect the grid's metrics.json into a CSV")
    aggregate.add_argument(
        "--grid",
        type=Path,
        default=None,
        help="grid file (config/*.yaml): collect every run of the grid",
    )
    aggregate.add_argument(
        "metrics", type=Path, nargs="*", help="metrics.json files to collect (instead of --grid)"
    )
    aggregate.add_argument("--out", type=Path, required=True, help="CSV to write")
    aggregate.add_argument(
        "--per-class", type=Path, default=None, help="also write per-class IoU (long CSV) here"
    )
    aggregate.add_argument(
        "--curves", type=Path, default=None, help="also write the training curves (long CSV) here"
    )
    aggregate.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="with --grid: list runs without metrics as failed or not run "
        "instead of stopping (what the workflow does after a failure)",
    )
    aggregate.set_defaults(func=cmd_aggregate)


def add_table(sub: argparse._SubParsersAction) -> None:
    """``semivl table``."""
    table = sub.add_parser("table", help="write tables.md from the metrics CSV")
    table.add_argument(
        "--metrics", type=Path, required=True, help="metrics CSV written by `semivl aggregate`"
    )
    table.add_argument("--out", type=Path, required=True, help="markdown file to write")
    table.add_argument(
        "--title", default="Results", help="the page's heading (and the HTML page's title)"
    )
    table.add_argument(
        "--published",
        type=Path,
        default=None,
        help="published results CSV (config/published_results.csv) for the "
        "'published' rows and deltas",
    )
    table.add_argument(
        "--grid",
        type=Path,
        default=None,
        help="the grid file, named (with its checksum) in the footnotes",
    )
    table.add_argument("--config-dir", type=Path, default=Path("config"))
    table.add_argument(
        "--html",
        type=Path,
        default=None,
        help="also write the tables as a self-contained HTML page here",
    )
    table.add_argument(
        "--zero-shot",
        type=Path,
        nargs="*",
        default=[],
        help="zero-shot dense CLIP metrics files (`semivl evaluate --zero-shot`), "
        "shown as a reference row of their dataset's tables",
    )
    table.add_argument(
        "--released",
        type=Path,
        nargs="*",
        default=[],
        help="metrics files of released upstream checkpoints (`semivl evaluate` "
        "of `semivl import-checkpoint` folders), shown beside the "
        "published rows",
    )
    table.add_argument(
        "--released-dir",
        type=Path,
        action="append",
        default=[],
        help="also every <dir>/<dataset>/<split>/<method>/metrics.json "
        "(none when the folder does not exist)",
    )
    table.set_defaults(func=cmd_table)


def add_plot(sub: argparse._SubParsersAction) -> None:
    """``semivl plot overview|dataset``."""
    plot = sub.add_parser("plot", help="figures (PNG and SVG)")
    plot_sub = plot.add_subparsers(dest="plot_command", required=True, metavar="<kind>")
    overview = plot_sub.add_parser("overview", help="mIoU against labelled images, all datasets")
    overview.add_argument(
        "--metrics", type=Path, required=True, help="metrics CSV written by `semivl aggregate`"
    )
    overview.add_argument(
        "--published",
        type=Path,
        default=None,
        help="published results CSV, drawn as hollow markers",
    )
    overview.add_argument(
        "--out-dir", type=Path, required=True, help="folder for miou_vs_labels.png and .svg"
    )
    overview.set_defaults(func=cmd_plot_overview)
    per_dataset = plot_sub.add_parser(
        "dataset",
        help="one dataset's ablation bars, per-class IoU heatmap, training curves "
        "and (with --predictions) qualitative grid",
    )
    per_dataset.add_argument(
        "--dataset", required=True, help="dataset name (config/datasets/<name>.yaml)"
    )
    per_dataset.add_argument(
        "--metrics", type=Path, required=True, help="metrics CSV written by `semivl aggregate`"
    )
    per_dataset.add_argument(
        "--per-class",
        type=Path,
        required=True,
        help="per-class IoU CSV written by `semivl aggregate --per-class`",
    )
    per_dataset.add_argument(
        "--curves",
        type=Path,
        required=True,
        help="training curves CSV written by `semivl aggregate --curves`",
    )
    per_dataset.add_argument(
        "--predictions",
        type=Path,
        default=None,
        help="folder of <method>/masks/ written by `semivl predict`",
    )
    per_dataset.add_argument("--val", type=Path, help="val.txt (with --predictions)")
    per_dataset.add_argument("--data-root", type=Path, help="default: data/<dataset>")
    per_dataset.add_argument(
        "--grid", type=Path, help="grid file: the qualitative grid shows its methods only"
    )
    per_dataset.add_argument("--config-dir", type=Path, default=Path("config"))
    per_dataset.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="folder for the figures: ablation, per_class_iou, training_curves, qualitative",
    )
    per_dataset.set_defaults(func=cmd_plot_dataset)
