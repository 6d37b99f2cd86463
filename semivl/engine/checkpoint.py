"""Atomic checkpoint and JSON writes; loading with ``weights_only=True``."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    _atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: Path) -> Any:
    """Load a checkpoint written by :func:`save_atomic` (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def write_json_atomic(obj: Any, path: Path) -> None:
    """Write sorted, indented JSON atomically (byte-stable for DVC)."""

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    _atomic(path, write)


def write_text_atomic(text: str, path: Path) -> None:
    """Write text atomically."""
    _atomic(path, lambda tmp: Path(tmp).write_text(text))
