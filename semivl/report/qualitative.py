"""The qualitative grid: val images, their ground truth and each method's prediction."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

from semivl.config import DatasetConfig  # noqa: E402
from semivl.data.masks import read_mask  # noqa: E402
from semivl.data.palette import dataset_palette  # noqa: E402
from semivl.data.splits import read_split_file  # noqa: E402
from semivl.report.figures import report_style, save_figure  # noqa: E402
from semivl.report.vocabulary import METHOD_LABELS, method_order  # noqa: E402


def _rgb(mask: np.ndarray, palette: list[int]) -> np.ndarray:
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    return colours[mask.astype(np.uint8)]


def _class_legend(cfg: DatasetConfig, palette: list[int], limit: int = 40) -> list[Patch]:
    """Colour patches naming the classes (none for datasets with more than ``limit``)."""
    if cfg.num_classes > limit:
        return []
    colours = np.asarray(palette, dtype=float).reshape(-1, 3) / 255
    entries = list(enumerate(cfg.class_names)) + [(cfg.ignore_index, "ignored")]
    return [Patch(facecolor=colours[i], edgecolor="0.5", label=name) for i, name in entries]


def plot_qualitative(
    cfg: DatasetConfig,
    data_root: Path,
    val_split: Path,
    predictions: Path,
    stem: Path,
    methods: list[str] | None = None,
) -> list[Path]:
    """A row per predicted val image (in val.txt order): the image, its ground truth and each
    method's mask from ``<predictions>/<method>/masks/<image name>.png``, in the dataset
    palette (white: ignored pixels)."""
    predictions = Path(predictions)
    methods = method_order(methods or [p.name for p in predictions.iterdir() if p.is_dir()])
    if not methods:
        raise FileNotFoundError(f"{predictions}: no predictions; run `semivl predict` first")
    names = {m: {p.stem for p in (predictions / m / "masks").glob("*.png")} for m in methods}
    for method, found in names.items():
        if not found:
            raise FileNotFoundError(
                f"{predictions / method / 'masks'}: no masks; run `semivl predict` for this method"
            )
    pairs = [
        (img, mask)
        for img, mask in read_split_file(val_split)
        if all(Path(img).stem in found for found in names.values())
    ]
    if not pairs:
        raise ValueError(f"the masks under {predictions} name no image of {val_split}")
    palette = dataset_palette(cfg)
    columns = ["image", "ground truth", *[METHOD_LABELS.get(m, m) for m in methods]]
    with report_style():
        fig, axes = plt.subplots(
            len(pairs),
            len(columns),
            squeeze=False,
            figsize=(2.2 * len(columns), 2.2 * len(pairs) + 0.4),
        )
        for r, (image_rel, mask_rel) in enumerate(pairs):
            name = Path(image_rel).stem
            panels = [
                np.asarray(Image.open(Path(data_root) / image_rel).convert("RGB")),
                _rgb(read_mask(Path(data_root) / mask_rel, cfg, check=False), palette),
            ]
            panels += [
                _rgb(np.asarray(Image.open(predictions / m / "masks" / f"{name}.png")), palette)
                for m in methods
            ]
            for c, panel in enumerate(panels):
                ax = axes[r][c]
                ax.imshow(panel, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(columns[c], fontsize="small")
                if c == 0:
                    ax.set_ylabel(name, fontsize="x-small")
        fig.suptitle(f"{cfg.name}: val images, ground truth and predictions")
        legend = _class_legend(cfg, palette)
        if legend:
            fig.legend(
                handles=legend,
                loc="lower center",
                ncol=min(len(legend), 8),
                fontsize="x-small",
                frameon=False,
            )
        fig.tight_layout(rect=(0, 0.06 if legend else 0, 1, 1))
    return save_figure(fig, stem)
