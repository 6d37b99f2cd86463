"""Weak (geometric) augmentation and normalisation, following UniMatch/SemiVL
(docs/upstream.md, Augmentation).

All randomness comes from the ``numpy.random.Generator`` passed in, so a sample's augmentation
is reproducible from its seed.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from semivl.config import AugmentConfig

PAD_LABELED = 255
PAD_UNLABELED = 254  # marks padding in unlabelled masks; becomes the ignore mask


def resize_unimatch(
    img: Image.Image, mask: Image.Image, rng: np.random.Generator, ratio_range: tuple[float, float]
) -> tuple[Image.Image, Image.Image]:
    """New long side drawn uniformly from the integers in [lo * L, hi * L], aspect kept.

    UniMatch's ``dataset/transform.py`` resizes with PIL (bilinear image, nearest mask), and
    so does this function.
    """
    w, h = img.size
    long_side = int(
        rng.integers(int(max(h, w) * ratio_range[0]), int(max(h, w) * ratio_range[1]) + 1)
    )
    if h > w:
        oh, ow = long_side, int(1.0 * w * long_side / h + 0.5)
    else:
        ow, oh = long_side, int(1.0 * h * long_side / w + 0.5)
    return img.resize((ow, oh), Image.BILINEAR), mask.resize((ow, oh), Image.NEAREST)


def mmseg_rescale_size(w: int, h: int, scale: tuple[float, float]) -> tuple[int, int]:
    """mmcv ``rescale_size`` with keep_ratio: fit (long, short) = scale, rounding half up."""
    long_edge, short_edge = max(scale), min(scale)
    factor = min(long_edge / max(h, w), short_edge / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def mmseg_ratio_scale(img_scale: tuple[int, int], ratio: float) -> tuple[int, int]:
    """mmseg's ``random_sample_ratio`` target: each edge of ``img_scale`` times ``ratio``,
    truncated."""
    return int(img_scale[0] * ratio), int(img_scale[1] * ratio)


def _cv2_resize(array: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    import cv2  # imported here: the CLI's start-up must not pay for OpenCV

    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(array), size, interpolation=interpolation)


def rescale_mmseg(
    img: Image.Image, mask: Image.Image | None, scale: tuple[float, float]
) -> tuple[Image.Image, Image.Image | None]:
    """mmcv ``imrescale`` (keep ratio, OpenCV backend) of the image (bilinear) and the mask
    (OpenCV ``INTER_NEAREST``, whose sampling grid is not pixel-centred, unlike PIL's)."""
    size = mmseg_rescale_size(*img.size, scale)
    out = Image.fromarray(_cv2_resize(np.asarray(img), size, nearest=False))
    if mask is None:
        return out, None
    return out, Image.fromarray(_cv2_resize(np.asarray(mask), size, nearest=True))


def resize_mmseg(
    img: Image.Image,
    mask: Image.Image,
    rng: np.random.Generator,
    img_scale: tuple[int, int],
    ratio_range: tuple[float, float],
) -> tuple[Image.Image, Image.Image]:
    """mmseg ``Resize(img_scale, ratio_range, keep_ratio=True)``: r ~ U(lo, hi), then
    :func:`rescale_mmseg` to ``img_scale * r``."""
    ratio = float(rng.uniform(ratio_range[0], ratio_range[1]))
    return rescale_mmseg(img, mask, mmseg_ratio_scale(img_scale, ratio))


def pad_and_crop(
    img: Image.Image, mask: Image.Image, size: int, rng: np.random.Generator, mask_pad: int
) -> tuple[Image.Image, Image.Image]:
    """Pad right/bottom to ``size`` (image 0, mask ``mask_pad``), then crop a random square."""
    w, h = img.size
    pad_w, pad_h = max(size - w, 0), max(size - h, 0)
    if pad_w or pad_h:
        padded = Image.new(img.mode, (w + pad_w, h + pad_h), 0)
        padded.paste(img, (0, 0))
        padded_mask = Image.new(mask.mode, (w + pad_w, h + pad_h), mask_pad)
        if mask.mode == "P":
            padded_mask.putpalette(mask.getpalette())
        padded_mask.paste(mask, (0, 0))
        img, mask = padded, padded_mask
    w, h = img.size
    x = int(rng.integers(0, w - size + 1))
    y = int(rng.integers(0, h - size + 1))
    box = (x, y, x + size, y + size)
    return img.crop(box), mask.crop(box)


def hflip(
    img: Image.Image, mask: Image.Image, rng: np.random.Generator, p: float
) -> tuple[Image.Image, Image.Image]:
    """Horizontal flip with probability ``p``."""
    if rng.random() < p:
        return img.transpose(Image.FLIP_LEFT_RIGHT), mask.transpose(Image.FLIP_LEFT_RIGHT)
    return img, mask


def weak_augment(
    img: Image.Image,
    mask: Image.Image,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    mask_pad: int = PAD_LABELED,
) -> tuple[Image.Image, Image.Image]:
    """Random rescale, pad-and-crop, horizontal flip (in this order, as upstream)."""
    if cfg.resize == "unimatch":
        img, mask = resize_unimatch(img, mask, rng, cfg.ratio_range)
    else:
        img, mask = resize_mmseg(img, mask, rng, cfg.img_scale, cfg.ratio_range)
    img, mask = pad_and_crop(img, mask, cfg.crop_size, rng, mask_pad)
    return hflip(img, mask, rng, cfg.hflip_prob)


def normalize(img: Image.Image, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """PIL RGB image to a normalised float tensor [3, H, W]."""
    arr = torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0
    mean_t = torch.tensor(mean, dtype=torch.float32)[:, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[:, None, None]
    return (arr - mean_t) / std_t


def mask_to_tensor(mask: Image.Image | np.ndarray) -> torch.Tensor:
    """Index mask to a long tensor [H, W]."""
    return torch.from_numpy(np.asarray(mask, dtype=np.int64).copy())


def short_side_scale(w: int, h: int, short: int) -> tuple[float, float]:
    """The ``(h, w)`` scale mmseg 0.x's ``Resize(min_size=short)`` hands to ``imrescale``
    when the short side is to become ``short`` (aspect kept, the long side uncapped)."""
    return (short * h / w, short) if h > w else (short, short * w / h)


def resize_short_side(img: Image.Image, short: int) -> Image.Image:
    """SemiVL's VOC/ADE20K validation resize: the short side to ``short`` pixels, aspect kept
    and the long side uncapped, with mmcv's ``imrescale`` (OpenCV bilinear)."""
    return rescale_mmseg(img, None, short_side_scale(*img.size, short))[0]


# --------------------------------------------------------------------------------------------
# Strong augmentation of unlabelled images (UniMatch; docs/upstream.md, Augmentation)
# --------------------------------------------------------------------------------------------


def color_jitter(
    img: Image.Image,
    rng: np.random.Generator,
    brightness: float = 0.5,
    contrast: float = 0.5,
    saturation: float = 0.5,
    hue: float = 0.25,
) -> Image.Image:
    """torchvision ``ColorJitter``: the four adjustments in random order, random factors."""
    from torchvision.transforms import functional as TF

    adjustments = [
        (TF.adjust_brightness, float(rng.uniform(max(0.0, 1 - brightness), 1 + brightness))),
        (TF.adjust_contrast, float(rng.uniform(max(0.0, 1 - contrast), 1 + contrast))),
        (TF.adjust_saturation, float(rng.uniform(max(0.0, 1 - saturation), 1 + saturation))),
        (TF.adjust_hue, float(rng.uniform(-hue, hue))),
    ]
    for op in rng.permutation(4):
        adjust, factor = adjustments[op]
        img = adjust(img, factor)
    return img


def strong_photometric(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Colour jitter (p 0.8), grayscale (p 0.2) and Gaussian blur (p 0.5, sigma 0.1-2)."""
    from PIL import ImageFilter

    if rng.random() < 0.8:
        img = color_jitter(img, rng)
    if rng.random() < 0.2:
        img = img.convert("L").convert("RGB")
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.1, 2.0))))
    return img


def cutmix_box(
    size: int,
    rng: np.random.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 1 / 0.3),
) -> torch.Tensor:
    """A [size, size] 0/1 mask with one box (probability ``p``), resampled until it fits."""
    mask = torch.zeros(size, size, dtype=torch.int64)
    if rng.random() > p:
        return mask
    box_area = float(rng.uniform(*area)) * size * size
    while True:
        aspect = float(rng.uniform(*ratio))
        w = int(np.sqrt(box_area / aspect))
        h = int(np.sqrt(box_area * aspect))
        x = int(rng.integers(0, size))  # upstream: np.random.randint(0, size), size excluded
        y = int(rng.integers(0, size))
        if x + w <= size and y + h <= size:
            break
    mask[y : y + h, x : x + w] = 1
    return mask
