"""Atomic checkpoint and JSON writes; loading with ``weights_only=True``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from semivl.atomic import atomic_write, write_text_atomic

__all__ = ["load_checkpoint", "save_atomic", "serialize", "write_json_atomic",
           "write_text_atomic"]


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def serialize(obj: Any) -> bytes:
    """What ``torch.save`` writes for ``obj``, in memory (to hash it before writing it)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def load_checkpoint(path: Path) -> Any:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write sorted, indented JSON atomically (byte-stable for DVC)."""

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    atomic_write(path, write)
