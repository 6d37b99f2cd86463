"""Atomic checkpoint and JSON writes; loading with ``weights_only=True``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from semivl.atomic import atomic_write, write_text_atomic

__all__ = [
    "load_checkpoint",
    "read_resume_state",
    "save_atomic",
    "serialize",
    "write_json_atomic",
    "write_text_atomic",
]


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


def read_resume_state(path: Path) -> dict:
    """``last.pt``, or an error that names it and says what to do (the file is kept)."""
    try:
        ckpt = load_checkpoint(path)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise RuntimeError(
            f"{path}: cannot read this resume state ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}). It is left "
            f"untouched. To start the run over, move it aside (e.g. mv {path} {path}.bad) "
            f"and run the same command again"
        ) from error
    if not isinstance(ckpt, dict) or "iteration" not in ckpt:
        raise RuntimeError(
            f"{path}: not a resume state of `semivl train` (no 'iteration'); "
            f"it is left untouched. Move it aside to start the run over"
        )
    return ckpt
