"""``config/clip.yaml``: the CLIP models SemiVL starts from, read without torch (the workflow
reads it when it builds the DAG). Building and fetching them is :mod:`semivl.models.clip_source`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semivl.config import ConfigError, load_named_configs

CLIP_DIR = Path("resources/clip")


@dataclass(frozen=True)
class ClipSource:
    """One CLIP model of ``config/clip.yaml``."""

    # An open_clip built-in model name (``open_clip.list_models()``) ...
    arch: str | None = None
    # ... or an inline open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``).
    model_cfg: dict[str, Any] | None = None
    # open_clip pretrained tag (``openai``), a checkpoint file path, or null for random init.
    pretrained: str | None = None
    # The activation the weights were trained with (OpenAI CLIP: QuickGELU). Used for the text
    # tower and, unless a recipe asks for upstream SemiVL's exact GELU, for the image tower.
    quick_gelu: bool = False
    init_seed: int = 0  # seed of the random init when ``pretrained`` is null
    source: str = ""
    # The config/pretrain/<name>.yaml whose `semivl pretrain-clip` writes the checkpoint
    # ``pretrained`` names (the demo's tiny CLIP); the workflow runs it before fetching.
    pretrain: str | None = None
    # True only for the weights upstream SemiVL computed its text embeddings with (OpenAI CLIP
    # ViT-B/16): `semivl text` then checks its embeddings against upstream's files
    # (config/upstream_text.yaml), and recipes may train on those files instead.
    upstream_text: bool = False

    def check(self, path: str) -> None:
        if (self.arch is None) == (self.model_cfg is None):
            raise ConfigError(
                f"{path}: expected exactly one of arch and model_cfg, got "
                f"arch={self.arch!r}, model_cfg={self.model_cfg!r}"
            )
        if self.pretrain is not None and self.pretrained != pretrained_checkpoint(self.pretrain):
            raise ConfigError(
                f"{path}.pretrained: with pretrain {self.pretrain!r} expected "
                f"{pretrained_checkpoint(self.pretrain)!r} (where `semivl "
                f"pretrain-clip` writes it), got {self.pretrained!r}"
            )


def pretrained_checkpoint(pretrain: str) -> str:
    """Where ``semivl pretrain-clip`` writes the checkpoint of ``config/pretrain/<name>``."""
    return f"resources/pretrained/{pretrain}/model.pt"


def load_clip_sources(config_dir: Path) -> dict[str, ClipSource]:
    """Read ``config/clip.yaml``."""
    return load_named_configs(Path(config_dir) / "clip.yaml", ClipSource)


def clip_source(name: str, config_dir: Path) -> ClipSource:
    """The entry ``name`` of ``config/clip.yaml``, with an error listing the known ones."""
    sources = load_clip_sources(config_dir)
    if name not in sources:
        raise ConfigError(
            f"CLIP model {name!r}: not in {Path(config_dir) / 'clip.yaml'}; "
            f"known: {sorted(sources)}"
        )
    return sources[name]


# Which files a recipe's model is built from (read by the workflow and the CLI without torch).
# Convention: a model whose ``model.args`` name a ``clip`` is built from that config/clip.yaml
# entry (resources/clip/<clip>.pt); SemiVL's language-guided decoder and the dense CLIP guidance
# also read the class text embeddings (resources/text/<clip>/<dataset>.pt).
TEXT_MODELS = ("semivl",)


def recipe_clip(recipe) -> str | None:
    """The config/clip.yaml entry ``recipe``'s model is built from, or None (no CLIP)."""
    clip = recipe.model.args.get("clip")
    return str(clip) if clip else None


def needs_clip(recipe) -> bool:
    """Whether training ``recipe`` reads CLIP weights (SemiVL and its ablations, the
    CLIP-initialised UniMatch rows of the component ablation)."""
    return recipe_clip(recipe) is not None


def needs_text(recipe) -> bool:
    """Whether training ``recipe`` reads class text embeddings (SemiVL's decoder, or the dense
    CLIP guidance)."""
    return needs_clip(recipe) and (recipe.model.name in TEXT_MODELS or recipe.guidance is not None)
