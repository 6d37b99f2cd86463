"""Class texts and their CLIP text embeddings (docs/upstream.md, SemiVL text embeddings).

``config/classes/<dataset>.yaml`` holds, as data, the prompt template, the name the text
encoder reads for each class, and the class definitions: a list of concept names per class.
``semivl text`` encodes them once with the CLIP text tower and stores, in float16 like
upstream's ``.npy`` files, in ``resources/text/<clip>/<dataset>.pt``:

* ``names`` [C, D]: one L2-normalised embedding per class name;
* ``concepts`` [M, D] and ``concept_class`` [M]: one per concept and the class it belongs to
  (the concept-max variant takes the max similarity over a class's concepts);
* ``concept_avg`` [C, D]: per class, the mean of the *un-normalised* concept embeddings,
  normalised afterwards.

A model asks for a variant with :func:`select_text`.

For the CLIP upstream used (``upstream_text: true`` in ``config/clip.yaml``) every variant is
checked against upstream's own files (:mod:`semivl.models.text_reference`); the result, or why
nothing was compared, goes to ``resources/text/<clip>/<dataset>.json`` beside the ``.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from semivl.atomic import atomic_write, write_text_atomic
from semivl.config import DatasetConfig
from semivl.models.class_texts import (  # noqa: F401 - re-exported
    ClassTexts,
    load_class_texts,
    text_check_file,
    text_file,
)
from semivl.models.text_reference import (
    CACHE_DIR,
    check_against_upstream,
    install_upstream_files,
)

TEXT_DIR = Path("resources/text")
TextVariant = Literal["names", "concept_max", "concept_avg"]


@torch.no_grad()
def encode_texts(clip: nn.Module, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Un-normalised CLIP text embeddings [len(texts), D] (fp32)."""
    import open_clip

    out = []
    for start in range(0, len(texts), batch_size):
        tokens = open_clip.tokenize(
            texts[start : start + batch_size], context_length=clip.context_length
        )
        out.append(clip.encode_text(tokens).float())
    return torch.cat(out)


def class_text_embeddings(clip: nn.Module, texts: ClassTexts) -> dict[str, torch.Tensor]:
    """All variants (float16) for one dataset; see the module docstring."""
    prompt = texts.template.format
    names = encode_texts(clip, [prompt(n) for n in texts.names])
    concepts, owner = [], []
    for index, concept_list in enumerate(texts.definitions.values()):
        concepts.extend(concept_list)
        owner.extend([index] * len(concept_list))
    raw = encode_texts(clip, [prompt(c) for c in concepts])
    owner_t = torch.tensor(owner, dtype=torch.int64)
    avg = torch.zeros(len(texts.names), raw.shape[1]).index_add_(0, owner_t, raw)
    avg = avg / torch.bincount(owner_t, minlength=len(texts.names)).clamp(min=1)[:, None]
    normalize = torch.nn.functional.normalize
    return {
        "names": normalize(names, dim=-1).half(),
        "concepts": normalize(raw, dim=-1).half(),
        "concept_class": owner_t,
        "concept_avg": normalize(avg, dim=-1).half(),
    }


def write_text_embeddings(
    clip: nn.Module,
    dataset: DatasetConfig,
    config_dir: Path,
    text_dir: Path,
    clip_name: str,
    cache_dir: Path = CACHE_DIR,
    progress: bool = False,
) -> tuple[Path, dict]:
    """Encode the class texts of ``dataset``, check them against upstream's (for the CLIP
    upstream used) and save ``<text_dir>/<clip>/<dataset>.pt`` with the check's record beside
    it (``.json``), and the verified upstream files under ``<text_dir>/upstream/``. Every
    file is written atomically, and only once the check has passed: a failed check writes
    nothing. Returns the ``.pt`` path and the record."""
    texts = load_class_texts(dataset, config_dir)
    embeddings = class_text_embeddings(clip, texts)
    record, upstream = check_against_upstream(
        embeddings, texts, dataset.name, clip_name, config_dir, cache_dir, progress
    )
    state = {
        **embeddings,
        "clip": clip_name,
        "dataset": dataset.name,
        "definitions_source": texts.definitions_source,
    }
    out = text_file(text_dir, clip_name, dataset.name)
    install_upstream_files(upstream, text_dir, config_dir)
    atomic_write(out, lambda tmp: torch.save(state, tmp))
    write_text_atomic(
        json.dumps(record, indent=2, sort_keys=True) + "\n",
        text_check_file(text_dir, clip_name, dataset.name),
    )
    return out, record


def load_text_embeddings(text_dir: Path, clip_name: str, dataset: str) -> dict:
    """Read ``<text_dir>/<clip>/<dataset>.pt`` with an error naming the command that makes it."""
    path = text_file(text_dir, clip_name, dataset)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: text embeddings are missing; compute them with `semivl text --dataset "
            f"{dataset} --clip {clip_name} --out-dir {text_dir}`"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign files raise various pickle errors
        raise ValueError(
            f"{path}: unreadable ({type(err).__name__}); compute it again with "
            f"`semivl text --dataset {dataset} --clip {clip_name}`"
        ) from None


def select_text(embeddings: dict, variant: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The embeddings of a variant and, for ``concept_max``, each row's class index."""
    if variant == "names":
        return embeddings["names"], None
    if variant == "concept_avg":
        return embeddings["concept_avg"], None
    if variant == "concept_max":
        return embeddings["concepts"], embeddings["concept_class"]
    raise ValueError(f"text variant: expected names, concept_max or concept_avg, got {variant!r}")


def max_over_concepts(
    scores: torch.Tensor, concept_class: torch.Tensor | None, num_classes: int
) -> torch.Tensor:
    """Per class, the max of its concepts' scores along dim 1 ([B, M, ...] -> [B, C, ...])."""
    if concept_class is None:
        return scores
    index = concept_class.to(scores.device).view(1, -1, *([1] * (scores.dim() - 2)))
    out = scores.new_full((scores.shape[0], num_classes, *scores.shape[2:]), float("-inf"))
    return out.scatter_reduce(1, index.expand_as(scores), scores, reduce="amax")


def definitions_used(recipe, config_dir: Path) -> str | None:
    """Whose class definitions a recipe's run uses: ``"upstream"`` or ``"project"`` (from
    ``config/classes/<dataset>.yaml``), or ``None`` when it reads only plain class names."""
    variants = [
        recipe.model.args.get("decoder_text", "names") if recipe.model.name == "semivl" else "names"
    ]
    if recipe.guidance is not None:
        variants.append(recipe.guidance.text)
    if all(v == "names" for v in variants):
        return None
    return load_class_texts(recipe.dataset, config_dir).definitions_source
