"""``semivl predict``: run a trained model on images and write coloured masks and overlays.

The model is rebuilt from the run folder's ``config.yaml`` (the recipe it was trained with) and
its ``model.pt``; inference follows the recipe's evaluation protocol (short-side resize, sliding
window), so a mask here is what ``semivl evaluate`` scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from tqdm import tqdm

from semivl.atomic import atomic_dir
from semivl.config import ConfigError, Recipe, build_config
from semivl.data.palette import dataset_palette
from semivl.data.transforms import normalize, resize_short_side
from semivl.engine.inference import predict_with_config

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
OVERLAY_ALPHA = 0.5


def load_run_recipe(run_dir: Path) -> Recipe:
    """The recipe a run was trained with (``<run_dir>/config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; is {run_dir} a run folder written by `semivl train`?"
        )
    data = yaml.safe_load(path.read_text()) or {}
    if "recipe" not in data:
        raise ConfigError(f"{path}: no 'recipe' key; retrain the run with this version")
    return build_config(Recipe, data["recipe"], f"{path}:recipe")


def find_images(paths: list[Path]) -> list[Path]:
    """Image files among ``paths`` (folders are searched, not recursively), sorted by name."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such image or folder")
    if not found:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}"
        )
    stems = [p.stem for p in found]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise ValueError(
            f"two inputs share the name {clash[0]!r}; their masks would "
            "overwrite each other: predict them into separate folders"
        )
    return found


def colour_mask(mask: np.ndarray, palette: list[int]) -> Image.Image:
    """A palette PNG image of class indices (the palette colours them in any viewer)."""
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(palette)
    return image


def overlay(image: Image.Image, mask: Image.Image, alpha: float = OVERLAY_ALPHA) -> Image.Image:
    """The image with the coloured mask blended over it."""
    return Image.blend(image.convert("RGB"), mask.convert("RGB"), alpha)


def predict_masks(
    run_dir: Path,
    images: list[Path],
    out_dir: Path,
    *,
    weights: Path | None = None,
    config_dir: Path = Path("config"),
    clip_dir: Path = Path("resources/clip"),
    text_dir: Path = Path("resources/text"),
    device: torch.device | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write ``out_dir/masks/<name>.png`` (class indices, dataset palette, the input's size)
    and ``out_dir/overlays/<name>.png`` for each image; return the mask paths.

    ``out_dir`` is built beside its place and renamed in, so it is never half-written.
    """
    from semivl.engine.checkpoint import load_checkpoint
    from semivl.models import build_model
    from semivl.models.semivl_model import ModelContext

    run_dir = Path(run_dir)
    recipe = load_run_recipe(run_dir)
    weights = Path(weights or run_dir / "model.pt")
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained weights; run `semivl train` first")
    device = device or torch.device("cpu")
    data_cfg = recipe.dataset
    context = ModelContext(
        dataset=data_cfg,
        crop_size=recipe.augment.crop_size,
        config_dir=Path(config_dir),
        clip_dir=Path(clip_dir),
        text_dir=Path(text_dir),
    )
    model = build_model(recipe.model, data_cfg.num_classes, context)
    model.load_state_dict(load_checkpoint(weights))
    model.to(device).eval()
    palette = dataset_palette(data_cfg)
    written = []
    with atomic_dir(Path(out_dir)) as tmp, torch.no_grad():
        (tmp / "masks").mkdir()
        (tmp / "overlays").mkdir()
        for path in tqdm(images, desc="predict", unit="img", disable=not progress):
            image = Image.open(path).convert("RGB")
            scaled = (
                resize_short_side(image, recipe.eval.resize_short_side)
                if recipe.eval.resize_short_side
                else image
            )
            tensor = normalize(scaled, recipe.augment.mean, recipe.augment.std)[None]
            cfg = recipe.eval
            scores = predict_with_config(
                model,
                tensor.to(device),
                data_cfg.num_classes,
                cfg,
                out_size=(image.height, image.width),
            )
            mask = colour_mask(scores.argmax(dim=1)[0].cpu().numpy(), palette)
            mask.save(tmp / "masks" / f"{path.stem}.png")
            overlay(image, mask).save(tmp / "overlays" / f"{path.stem}.png")
            written.append(Path(out_dir) / "masks" / f"{path.stem}.png")
    return written
