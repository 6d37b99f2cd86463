"""Class texts (``config/classes/<dataset>.yaml``: prompt template, names, definitions) and
where a CLIP's text embeddings of them are kept; torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from semivl.config import ConfigError, DatasetConfig, build_config, read_yaml


@dataclass(frozen=True)
class ClassTexts:
    """``config/classes/<dataset>.yaml``."""

    template: str
    names: list[str]
    definitions: dict[str, list[str]]
    # upstream: the definitions are SemiVL's; project: written for this benchmark.
    definitions_source: Literal["upstream", "project"]
    note: str = ""

    def check(self, path: str) -> None:
        if "{}" not in self.template:
            raise ConfigError(
                f"{path}.template: expected a '{{}}' placeholder, got {self.template!r}"
            )
        for cls, concepts in self.definitions.items():
            if not concepts:
                raise ConfigError(f"{path}.definitions.{cls}: expected at least one concept")


def load_class_texts(dataset: DatasetConfig, config_dir: Path) -> ClassTexts:
    """Load and check the class texts of ``dataset`` against its class list."""
    path = Path(config_dir) / "classes" / f"{dataset.name}.yaml"
    try:
        texts = build_config(ClassTexts, read_yaml(path), "classes")
        if len(texts.names) != dataset.num_classes:
            raise ConfigError(
                f"classes.names: expected {dataset.num_classes} names (one per "
                f"class), got {len(texts.names)}"
            )
        if list(texts.definitions) != list(dataset.class_names):
            missing = [c for c in dataset.class_names if c not in texts.definitions]
            extra = [c for c in texts.definitions if c not in dataset.class_names]
            raise ConfigError(
                f"classes.definitions: expected one entry per class of "
                f"config/datasets/{dataset.name}.yaml, in its order; missing {missing}, "
                f"unknown {extra}"
            )
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    return texts


def text_file(text_dir: Path, clip_name: str, dataset: str) -> Path:
    return Path(text_dir) / clip_name / f"{dataset}.pt"


def text_check_file(text_dir: Path, clip_name: str, dataset: str) -> Path:
    """The record of the upstream check beside :func:`text_file`."""
    return Path(text_dir) / clip_name / f"{dataset}.json"
