"""Which CLIP model a recipe starts from, and how its weights reach ``resources/clip/``.

``config/clip.yaml`` names each CLIP model: an open_clip architecture (a built-in name such as
``ViT-B-16`` or an inline config for tiny test models) and where the weights come from (an
open_clip pretrained tag such as ``openai``, a local checkpoint file, or ``null`` for a seeded
random init). ``semivl clip fetch`` resolves that once, on a machine with internet, and writes
the whole CLIP (image and text towers) as a plain state_dict to ``resources/clip/<name>.pt``.
Everything after that (text embeddings, training, evaluation) reads only that file, so compute
nodes never need the network.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semivl.atomic import atomic_write, write_text_atomic
from semivl.config import ConfigError
from semivl.models.clip_config import (  # noqa: F401 - re-export
    CLIP_DIR,
    ClipSource,
    clip_source,
    load_clip_sources,
    pretrained_checkpoint,
)


def _model_cfg(source: ClipSource) -> dict[str, Any]:
    import open_clip

    if source.model_cfg is not None:
        cfg = dict(source.model_cfg)
    else:
        cfg = open_clip.get_model_config(source.arch)
        if cfg is None:
            raise ConfigError(
                f"arch {source.arch!r} is not an open_clip model; see open_clip.list_models()"
            )
        cfg = dict(cfg)
    cfg["quick_gelu"] = source.quick_gelu
    return cfg


def build_clip(source: ClipSource) -> nn.Module:
    """The open_clip CLIP architecture of ``source`` with random weights (fp32)."""
    import open_clip

    cfg = _model_cfg(source)
    cfg.pop("custom_text", None)
    return open_clip.CLIP(**cfg)


def fetch_clip(
    name: str, config_dir: Path, out: Path, cache_dir: Path | None = None, force: bool = False
) -> bool:
    """Resolve the weights of CLIP model ``name`` and write them to ``out`` (atomically).

    A pretrained tag is fetched through open_clip (Hugging Face hub; cached in ``cache_dir``),
    a file is loaded with open_clip's checkpoint loader, and ``null`` gives a random init
    seeded by ``init_seed`` (the stand-in for CLIP in the demo and the tests). A sidecar
    ``<out>.json`` records the ``config/clip.yaml`` entry; when it matches, the file is kept
    (returns False) unless ``force``.
    """
    source = clip_source(name, config_dir)
    out = Path(out)
    fields = dataclasses.asdict(source)
    if source.pretrained is not None and Path(source.pretrained).is_file():
        from semivl.download import sha256_of

        # A local checkpoint may be rewritten (a new pretraining): refetch when it changes.
        fields["pretrained_sha256"] = sha256_of(Path(source.pretrained))
    record = json.dumps(fields, sort_keys=True)
    sidecar = out.with_suffix(".json")
    if not force and out.is_file() and sidecar.is_file() and sidecar.read_text() == record:
        return False
    if source.pretrained is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(source.init_seed)
            model = build_clip(source)
    elif (
        Path(source.pretrained).suffix in (".pt", ".pth", ".bin", ".safetensors")
        or Path(source.pretrained).exists()
    ):
        import open_clip

        model = build_clip(source)
        path = Path(source.pretrained).expanduser()
        if not path.is_file():
            made_by = (
                f"; make it with `semivl pretrain-clip --name {source.pretrain}`"
                if source.pretrain
                else ""
            )
            raise FileNotFoundError(
                f"{path}: CLIP checkpoint named by {name!r} in "
                f"{Path(config_dir) / 'clip.yaml'} does not exist{made_by}"
            )
        open_clip.load_checkpoint(model, str(path), strict=True)
    else:
        model = _fetch_pretrained_tag(name, source, cache_dir)
    state = {"clip": name, "state_dict": model.state_dict()}
    atomic_write(out, lambda tmp: torch.save(state, tmp))
    write_text_atomic(record, sidecar)
    return True


def _fetch_pretrained_tag(name: str, source: ClipSource, cache_dir: Path | None) -> nn.Module:
    import open_clip

    if source.arch is None:
        raise ConfigError(f"{name}: a pretrained tag needs an open_clip arch, not model_cfg")
    logging.getLogger("open_clip").setLevel(logging.WARNING)
    try:
        model = open_clip.create_model(
            source.arch,
            pretrained=source.pretrained,
            cache_dir=str(cache_dir) if cache_dir else None,
            force_quick_gelu=source.quick_gelu,
        )
    except Exception as err:  # open_clip raises RuntimeError, OSError or hub errors
        raise RuntimeError(
            f"could not fetch CLIP {source.arch} / {source.pretrained!r} ({name}): {err}\n"
            f"Run `semivl clip fetch --name {name}` on a machine with internet (it fills "
            f"{cache_dir or 'the Hugging Face cache'}), or download the checkpoint by hand "
            f"and set `pretrained: /path/to/file` for {name!r} in config/clip.yaml."
        ) from None
    return model.float()


def load_clip(name: str, config_dir: Path, clip_dir: Path = CLIP_DIR) -> nn.Module:
    """The CLIP model ``name`` with the weights from ``<clip_dir>/<name>.pt``."""
    source = clip_source(name, config_dir)
    path = Path(clip_dir) / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: CLIP weights {name!r} are missing; fetch them with "
            f"`semivl clip fetch --name {name} --out {path}` (needs internet once)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise various pickle errors
        raise ValueError(
            f"{path}: unreadable ({type(err).__name__}); fetch it again with "
            f"`semivl clip fetch --name {name} --force`"
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"{path}: not a file written by `semivl clip fetch`; fetch it again")
    model = build_clip(source)
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"{path}: does not fit the architecture of {name!r} in "
            f"config/clip.yaml ({err}); fetch it again"
        ) from None
    return model.eval()
