"""Figures of the report, each written as PNG and SVG with byte-stable output.

Byte stability: the Agg and SVG backends are deterministic given fixed fonts (matplotlib's own
DejaVu Sans), a fixed SVG hash salt and no date or software metadata, so the same CSVs give the
same files and DVC sees no false changes.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from semivl.atomic import atomic_write  # noqa: E402
from semivl.report.published import published_for  # noqa: E402
from semivl.report.vocabulary import (  # noqa: E402
    ABLATIONS,
    METHOD_LABELS,
    dataset_order,
    main_methods,
    method_order,
    summarise,
    unfinished_note,
)

FORMATS = ("png", "svg")
STYLE = {
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "semivl",
    "svg.fonttype": "path",
    "path.simplify": True,
    "figure.dpi": 100,
}
METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
# Curve series in panel order, with their titles; others follow in name order.
SERIES_TITLES = {
    "loss": "total loss",
    "loss_x": "supervised loss",
    "loss_s": "unsupervised loss",
    "loss_fp": "feature-perturbation loss",
    "loss_guid": "dense CLIP guidance loss",
    "mask_ratio": "confident pixel ratio",
    "guid_weight": "guidance loss weight",
    "guid_ratio": "guided pixel ratio",
    "lr": "learning rate",
    "val_miou": "val mIoU (%)",
}


@contextmanager
def report_style():
    """The fixed style every figure is drawn in."""
    with plt.rc_context(STYLE), sns.axes_style("whitegrid"):
        yield


def save_figure(fig, stem: Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` atomically and close the figure."""
    stem, written = Path(stem), []
    with plt.rc_context(STYLE):  # the SVG hash salt is read at save time
        try:
            for fmt in FORMATS:
                out = stem.with_name(f"{stem.name}.{fmt}")
                atomic_write(
                    out,
                    lambda tmp, fmt=fmt: fig.savefig(
                        tmp, format=fmt, dpi=120, metadata=METADATA[fmt], bbox_inches=None
                    ),
                )
                written.append(out)
        finally:
            plt.close(fig)
    return written


def method_colours(methods) -> dict[str, tuple]:
    """One colour per method, fixed by the method's place in the papers' order."""
    # ten colour-blind-safe colours, then the darker set: a distinct colour for every method
    palette = sns.color_palette("colorblind", n_colors=10) + sns.color_palette("dark", 10)
    known = list(METHOD_LABELS)
    return {
        m: palette[(known.index(m) if m in known else len(known) + i) % len(palette)]
        for i, m in enumerate(sorted(set(methods)))
    }


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_axis_off()


def _unique_handles(axes) -> dict:
    """Legend handles of all ``axes`` by label, first occurrence first."""
    handles: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    return handles


def _empty_figure(stem: Path, text: str) -> list[Path]:
    """A small figure that says why there is nothing to draw (the outputs always exist)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    _message(ax, text)
    return save_figure(fig, stem)


def plot_miou_vs_labels(
    frame: pd.DataFrame, stem: Path, published: pd.DataFrame | None = None, metric: str = "miou"
) -> list[Path]:
    """Write :func:`miou_vs_labels_figure` as ``<stem>.png`` and ``<stem>.svg``."""
    return save_figure(miou_vs_labels_figure(frame, published, metric), stem)


def miou_vs_labels_figure(
    frame: pd.DataFrame, published: pd.DataFrame | None = None, metric: str = "miou"
):
    """One panel per dataset (in the papers' order): mean mIoU per main method over labelled
    images (log x, sample-std error bars), published values as hollow markers of the method's
    colour. The ablation variants, which run on a few cells, have figures of their own. A
    dataset without a finished run gets a panel that says so."""
    stats = summarise(frame.dropna(subset=[metric]), metric)
    datasets = dataset_order(frame["dataset"])
    colours = method_colours(frame["method"].dropna())
    any_published = False
    with report_style():
        fig, axes = plt.subplots(
            1, max(len(datasets), 1), figsize=(max(6.0, 5 * len(datasets)), 4.6), squeeze=False
        )
        if not datasets:
            _message(axes[0][0], "no runs in the metrics table")
        for ax, dataset in zip(axes[0], datasets, strict=False):
            rows_of = frame[frame["dataset"] == dataset]
            unfinished = unfinished_note(rows_of.assign(miou=rows_of[metric]))
            if unfinished:
                ax.set_title(dataset)
                _message(ax, unfinished.replace(": ", ":\n", 1))
                continue
            part = stats[stats["dataset"] == dataset]
            ticks = sorted(
                rows_of.loc[rows_of["method"].isin(main_methods(rows_of["method"])), "num_labeled"]
                .dropna()
                .astype(int)
                .unique()
            )
            for method in main_methods(rows_of["method"]):
                rows = part[part["method"] == method].sort_values("num_labeled")
                if not rows.empty:
                    ax.errorbar(
                        rows["num_labeled"],
                        rows["mean"],
                        yerr=rows["std"].fillna(0.0),
                        marker="o",
                        capsize=3,
                        color=colours[method],
                        label=METHOD_LABELS.get(method, method),
                    )
                paper = published_for(published, dataset, method)
                paper = paper[paper["labeled_images"].isin(ticks)] if ticks else paper
                if not paper.empty:
                    ax.scatter(
                        paper["labeled_images"],
                        paper["miou"],
                        marker="D",
                        facecolors="none",
                        edgecolors=[colours[method]],
                        s=40,
                    )
                    any_published = True
            ax.set_xscale("log")
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("labelled images")
            ax.set_ylabel(f"mIoU (%), {'final iteration' if metric == 'miou' else 'best on val'}")
            ax.set_title(dataset)
        handles = _unique_handles(axes.flat)
        if any_published:
            handles["published (best on val)"] = Line2D(
                [], [], marker="D", linestyle="none", markerfacecolor="none", markeredgecolor="0.3"
            )
        # Two legend columns per panel fit the figure's width.
        columns = max(1, min(len(handles), 2 * len(axes[0])))
        if handles:
            fig.legend(
                list(handles.values()),
                list(handles),
                loc="lower center",
                ncol=columns,
                fontsize="small",
                frameon=False,
            )
        rows = math.ceil(len(handles) / columns)
        fig.set_figheight(4.2 + 0.25 * rows)
        fig.tight_layout(rect=(0, (0.1 + 0.25 * rows) / (4.2 + 0.25 * rows), 1, 1))
    return fig


def plot_ablation(frame: pd.DataFrame, dataset: str, stem: Path) -> list[Path]:
    """Bars of final-iteration mIoU for SemiVL and each ablation, grouped by split (the splits
    where an ablation has runs)."""
    part = frame[(frame["dataset"] == dataset) & frame["method"].isin(["semivl", *ABLATIONS])]
    ran = part.loc[part["method"].isin(ABLATIONS), "split"]
    part = part[part["split"].isin(ran)].dropna(subset=["miou"])
    with report_style():
        fig, ax = plt.subplots(figsize=(6, 4))
        methods = method_order(part["method"])
        if "semivl" not in methods or len(methods) < 2:
            _message(ax, f"{dataset}: no ablation runs in this grid")
        else:
            stats = summarise(part)
            splits = sorted(stats["num_labeled"].unique())
            width = 0.8 / len(methods)
            colours = method_colours(methods)
            for i, method in enumerate(methods):
                rows = stats[stats["method"] == method].set_index("num_labeled")
                x = np.arange(len(splits)) + (i - (len(methods) - 1) / 2) * width
                means = [rows["mean"].get(s, np.nan) for s in splits]
                stds = [rows["std"].get(s, np.nan) for s in splits]
                ax.bar(
                    x,
                    means,
                    width,
                    yerr=np.nan_to_num(stds),
                    capsize=3,
                    color=colours[method],
                    label=METHOD_LABELS[method],
                )
            ax.set_xticks(np.arange(len(splits)))
            ax.set_xticklabels([str(s) for s in splits])
            ax.set_xlabel("labelled images")
            ax.set_ylabel("mIoU (%), final iteration")
            ax.set_title(f"{dataset}: ablation of SemiVL's components")
            ax.legend(
                loc="upper center",
                bbox_to_anchor=(0.5, -0.18),
                ncol=len(methods),
                fontsize="x-small",
            )
        fig.tight_layout()
    return save_figure(fig, stem)


def plot_per_class(
    per_class: pd.DataFrame, dataset: str, stem: Path, class_names: list[str] | None = None
) -> list[Path]:
    """Heatmap of per-class IoU (mean over seeds): a row per (method, split), a column per
    class in the dataset's class order."""
    part = per_class[per_class["dataset"] == dataset]
    with report_style():
        if part.empty:
            return _empty_figure(stem, f"{dataset}: no evaluated runs yet")
        table = (
            part.groupby(["method", "num_labeled", "class"], sort=True)["iou"]
            .mean()
            .unstack("class")
        )
        classes = [c for c in (class_names or []) if c in table.columns]
        classes += sorted(c for c in table.columns if c not in classes)
        order = [
            (m, n)
            for m in method_order(part["method"])
            for n in sorted(part.loc[part["method"] == m, "num_labeled"].unique())
        ]
        table = table.reindex(index=order, columns=classes)
        table.index = [f"{METHOD_LABELS.get(m, m)} @ {n}" for m, n in order]
        annotate = len(classes) <= 25 and len(order) <= 40
        # Up to 40 classes: a column per class. More (ADE20K's 150): a row per class, so the
        # figure grows downwards and every class name stays readable.
        tall = len(classes) > 40
        if tall:
            table = table.T
        rows, cols = table.shape
        fig, ax = plt.subplots(
            figsize=(
                max(7.0, (0.45 if tall else 0.5) * cols + 5),
                max(2.5, (0.22 if tall else 0.35) * rows + 2.2),
            )
        )
        sns.heatmap(
            table,
            ax=ax,
            vmin=0,
            vmax=100,
            cmap="viridis",
            annot=annotate,
            fmt=".0f",
            annot_kws={"fontsize": 7},
            cbar_kws={"label": "IoU (%)", "shrink": 0.5},
            xticklabels=True,
            yticklabels=True,
        )
        ax.set_xlabel("method @ labelled images" if tall else "class")
        ax.set_ylabel("class" if tall else "method @ labelled images")
        ax.set_xticks(np.arange(cols) + 0.5)
        ax.set_xticklabels(table.columns, rotation=45, ha="right", fontsize="small")
        ax.set_title(f"{dataset}: per-class IoU (%)\nfinal iteration, mean over seeds")
        fig.tight_layout()
    return save_figure(fig, stem)


def _series_order(names) -> list[str]:
    known = [s for s in SERIES_TITLES if s in set(names)]
    return known + sorted(set(names) - set(known))


def plot_training_curves(curves: pd.DataFrame, dataset: str, stem: Path) -> list[Path]:
    """Loss terms, learning rate and val mIoU against iterations: a row per split, a column per
    series, a line per method (mean over seeds)."""
    part = curves[curves["dataset"] == dataset]
    with report_style():
        if part.empty:
            return _empty_figure(stem, f"{dataset}: no training logs yet")
        series = _series_order(part["series"].unique())
        splits = sorted(part["num_labeled"].unique())
        colours = method_colours(part["method"])
        fig, axes = plt.subplots(
            len(splits), len(series), squeeze=False, figsize=(3.2 * len(series), 2.6 * len(splits))
        )
        for r, n in enumerate(splits):
            for c, name in enumerate(series):
                ax = axes[r][c]
                rows = part[(part["num_labeled"] == n) & (part["series"] == name)]
                for method in method_order(rows["method"]):
                    line = rows[rows["method"] == method].groupby("iter")["value"].mean()
                    ax.plot(
                        line.index,
                        line.values,
                        color=colours[method],
                        linewidth=1.2,
                        marker="o" if name == "val_miou" else None,
                        markersize=3,
                        label=METHOD_LABELS.get(method, method),
                    )
                if r == 0:
                    ax.set_title(SERIES_TITLES.get(name, name), fontsize="medium")
                if c == 0:
                    ax.set_ylabel(f"{n} labels")
                if r == len(splits) - 1:
                    ax.set_xlabel("iteration")
                if name == "lr":
                    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        handles = _unique_handles(axes.flat)
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="lower center",
            ncol=min(len(handles), 5),
            fontsize="small",
            frameon=False,
        )
        fig.suptitle(f"{dataset}: training curves (mean over seeds)")
        fig.tight_layout(rect=(0, 0.06 + 0.02 * math.ceil(len(handles) / 5), 1, 0.97))
    return save_figure(fig, stem)
