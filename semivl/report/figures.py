"""Figures: mIoU against the number of labelled images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from semivl.atomic import atomic_write  # noqa: E402
from semivl.report.tables import METHOD_LABELS, summarise  # noqa: E402


def plot_miou_vs_labels(frame: pd.DataFrame, out: Path, metric: str = "miou") -> Path:
    """One panel per dataset: mean mIoU per method over labelled images (log x, std bars)."""
    stats = summarise(frame, metric)
    datasets = sorted(stats["dataset"].unique())
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    palette = sns.color_palette("colorblind", n_colors=max(len(stats["method"].unique()), 1))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = stats[stats["dataset"] == dataset]
        for colour, method in zip(palette, sorted(part["method"].unique()), strict=False):
            rows = part[part["method"] == method].sort_values("num_labeled")
            ax.errorbar(rows["num_labeled"], rows["mean"], yerr=rows["std"].fillna(0.0),
                        marker="o", capsize=3, color=colour,
                        label=METHOD_LABELS.get(method, method))
        ax.set_xscale("log")
        ticks = sorted(part["num_labeled"].unique())
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled images")
        ax.set_ylabel("mIoU (%)")
        ax.set_title(dataset)
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    out = Path(out)
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=120,
                                                  metadata={"Software": None}))
    finally:
        plt.close(fig)
    return out
