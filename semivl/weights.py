"""Pretrained backbone weights: where they come from, their pinned checksums, and loading.

``config/weights.yaml`` names each file and its download mirrors. No checksums are published
for UniMatch's ImageNet backbones (nor for timm's ViT on the Hugging Face hub), so the sha256
of the first file fetched (or placed by hand) is pinned in ``config/weights.lock.yaml``; later
fetches must match it. Commit the lock file.

Files are fetched into a download cache (``resources/cache/weights/``) and then linked into
the folder the workflow declares (``resources/weights/``), so rebuilding that folder never
downloads again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from semivl import lockfile
from semivl.atomic import atomic_dir
from semivl.config import ConfigError, load_named_configs
from semivl.download import DownloadError


@dataclass(frozen=True)
class WeightSource:
    """One pretrained file: its name on disk, mirrors, provenance and key filter."""

    file: str
    urls: list[str]
    source: str = ""
    # Checkpoint keys containing any of these substrings are dropped before loading
    # (UniMatch drops 'itr', 'tmp' and 'track' from the Xception checkpoint).
    drop_keys_containing: list[str] = field(default_factory=list)


def load_sources(config_dir: Path) -> dict[str, WeightSource]:
    """Read ``config/weights.yaml``."""
    return load_named_configs(Path(config_dir) / "weights.yaml", WeightSource)


def _lock_path(config_dir: Path) -> Path:
    return Path(config_dir) / "weights.lock.yaml"


def read_lock(config_dir: Path) -> dict[str, str]:
    """Pinned sha256 per weights name (empty if nothing is pinned yet)."""
    return lockfile.read_lock(_lock_path(config_dir))


def fetch(
    name: str,
    config_dir: Path,
    cache_dir: Path,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Make sure ``<cache_dir>/<file>`` holds the verified weights ``name``; return its path.

    A file already in the cache is verified against the pin (or pinned if there is none).
    Otherwise the mirrors are tried in order. When all fail, the error says where to put a
    manually downloaded file.
    """
    sources = load_sources(config_dir)
    if name not in sources:
        raise ConfigError(
            f"weights {name!r}: not in {Path(config_dir) / 'weights.yaml'}; "
            f"known: {sorted(sources)}"
        )
    source = sources[name]
    dest = Path(cache_dir) / source.file
    lockfile.fetch_pinned(
        source.urls,
        dest,
        _lock_path(config_dir),
        name,
        "pretrained files",
        pinned_in=str(_lock_path(config_dir)),
        error=DownloadError,
        retries=retries,
        timeout=timeout,
        progress=progress,
        failure=lambda err: (
            f"could not download weights {name!r}: {err}\n"
            f"Download {source.file} by hand ({source.source or source.urls[0]}) and "
            f"put it at {dest.resolve()}, then run the same command again."
        ),
    )
    return dest


def link_into(files: list[Path], out_dir: Path) -> Path:
    """Build ``out_dir`` holding ``files`` (hard links, or copies across file systems).

    The folder is assembled next to its final place and renamed over it, so it is never seen
    half-built.
    """
    with atomic_dir(out_dir) as tmp:
        for path in files:
            target = tmp / path.name
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
    return Path(out_dir)


@dataclass
class KeyReport:
    """What loading a checkpoint into a module matched and did not."""

    loaded: int
    missing: list[str]
    unexpected: list[str]
    dropped: list[str]

    def to_dict(self) -> dict:
        return {
            "loaded": self.loaded,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "dropped": self.dropped,
        }


def load_pretrained(
    module: nn.Module,
    path: Path,
    drop_keys_containing: list[str] | None = None,
    allow_missing: bool = False,
) -> KeyReport:
    """Load a state_dict file into ``module`` non-strictly and report the key match.

    Reads PyTorch files (``torch.load`` with ``weights_only``) and ``.safetensors`` files (the
    Hugging Face hub's format, e.g. timm's ImageNet ViTs). Accepts ``{"state_dict": ...}``/
    ``{"model": ...}`` wrappers and a ``module.`` prefix. A module with an
    ``adapt_pretrained(state) -> state`` method adapts the tensors first (a ViT resizes the
    position table to its crop's grid). Missing parameters fail unless ``allow_missing``;
    unexpected keys (e.g. an ImageNet ``fc``/``head`` classifier) are reported and ignored, as
    upstream's ``strict=False`` does.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: pretrained weights not found; fetch them with `semivl weights fetch`"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    drops = drop_keys_containing or []
    dropped = sorted(k for k in state if any(s in k for s in drops))
    state = {k: v for k, v in state.items() if k not in dropped}
    adapt = getattr(module, "adapt_pretrained", None)
    if callable(adapt):
        state = adapt(state)
    own = module.state_dict()
    mismatched = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if mismatched:
        k = mismatched[0]
        raise ValueError(
            f"{path}: {len(mismatched)} tensor(s) have the wrong shape, e.g. {k}: "
            f"{tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the "
            f"model"
        )
    result = module.load_state_dict(state, strict=False)
    missing = sorted(k for k in result.missing_keys if not k.endswith("num_batches_tracked"))
    report = KeyReport(
        loaded=len(state) - len(result.unexpected_keys),
        missing=missing,
        unexpected=sorted(result.unexpected_keys),
        dropped=dropped,
    )
    if missing and not allow_missing:
        raise ValueError(
            f"{path}: {len(missing)} parameter(s) of the model are not in the "
            f"file, e.g. {missing[:5]}; is it the right checkpoint?"
        )
    return report
