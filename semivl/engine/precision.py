"""TF32 on Ampere and later GPUs: what each method's upstream ran, and the faster option.

TF32 runs fp32 matrix products and convolutions on tensor cores with a 10-bit mantissa: faster,
and numerically not fp32. Whether PyTorch uses it is a process-wide default that changed over
the years, so "the same recipe" trained on two PyTorch versions is not the same computation:

- PyTorch up to 1.11: TF32 on for matmuls (``torch.backends.cuda.matmul.allow_tf32``) and for
  cuDNN convolutions (``torch.backends.cudnn.allow_tf32``).
- PyTorch 1.12 and later: TF32 off for matmuls, still on for cuDNN convolutions.

What the upstream code ran with (none of the three sets either flag itself; each method's
declaration, ``Method.tf32``, carries its setting):

- SemiVL: its public requirements pin torch 1.10.1, but a comment in them says the paper's
  runs used torch 1.12.1 (with a locally built mmcv-full 1.4.4): matmuls fp32, convolutions
  TF32. The published numbers are those runs'.
- UniMatch (V1): the README asks for torch 1.12.1: matmuls fp32, convolutions TF32.
- UniMatch V2: no pinned version; its code needs torch 2 (``scaled_dot_product_attention``
  in DINOv2's attention): matmuls fp32, convolutions TF32.
- The labelled-only baselines are UniMatch's and UniMatch V2's own scripts: the same.

``train.speed.tf32``: ``upstream`` (the default) sets exactly that, explicitly, whatever this
PyTorch's defaults are; ``all`` turns TF32 on for both (faster ViT training, not upstream's
numerics: docs/performance.md); ``none`` runs full fp32 everywhere. The settings are written
to the run's ``config.yaml`` and ``provenance.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semivl.methods import get_method


@dataclass(frozen=True)
class Tf32:
    """TF32 for fp32 matmuls (cuBLAS) and cuDNN convolutions, and where that came from."""

    matmul: bool
    conv: bool
    source: str

    def to_dict(self) -> dict:
        return {"tf32_matmul": self.matmul, "tf32_conv": self.conv, "tf32_source": self.source}


def tf32_for(method: str, option: str) -> Tf32:
    """The TF32 settings of ``train.speed.tf32`` = ``option`` for ``method``."""
    if option == "all":
        return Tf32(True, True, "train.speed.tf32: all (faster; not upstream's numerics)")
    if option == "none":
        return Tf32(False, False, "train.speed.tf32: none (full fp32)")
    if option != "upstream":
        raise ValueError(f"train.speed.tf32: expected upstream, all or none, got {option!r}")
    matmul, conv, source = get_method(method).tf32  # what the method's upstream ran
    return Tf32(matmul, conv, source)


def apply_tf32(settings: Tf32) -> None:
    """Set PyTorch's process-wide TF32 switches. Through the ``allow_tf32`` flags: newer
    PyTorch versions also have an ``fp32_precision`` interface, but after setting it reading
    the flags (as libraries do) raises an error; the flags keep both consistent."""
    torch.backends.cuda.matmul.allow_tf32 = settings.matmul
    torch.backends.cudnn.allow_tf32 = settings.conv


def current_tf32() -> dict:
    """What PyTorch will do now, read back (for the bench and the checks)."""
    return {
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
        "tf32_conv": bool(torch.backends.cudnn.allow_tf32),
    }


def configure_backends(method: str, tf32_option: str, device: torch.device) -> dict:
    """What the trainer sets before training, and ``semivl bench`` before timing: upstream's
    ``cudnn.benchmark`` on GPUs and the TF32 of ``train.speed.tf32``. Returns the settings
    (for the run's config dump, provenance and the bench's rows)."""
    settings = tf32_for(method, tf32_option)
    apply_tf32(settings)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as upstream
    return {**settings.to_dict(), "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}
