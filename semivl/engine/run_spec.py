"""What one training run is: its recipe, data, seed and output folder (:class:`RunSpec`), and
the resume fingerprint that refuses to continue a different run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from semivl.config import Recipe


@dataclass(frozen=True)
class RunSpec:
    """Where one training run reads its data and writes its outputs."""

    recipe: Recipe
    data_root: Path
    labeled_split: Path
    val_split: Path
    out_dir: Path
    seed: int
    unlabeled_split: Path | None = None
    weights_dir: Path = Path("resources/weights")
    config_dir: Path = Path("config")
    clip_dir: Path = Path("resources/clip")
    text_dir: Path = Path("resources/text")

    def model_context(self):
        """What model builders read beyond the recipe (CLIP weights, text embeddings)."""
        from semivl.models.semivl_model import ModelContext

        return ModelContext(
            dataset=self.recipe.dataset,
            crop_size=self.recipe.augment.crop_size,
            config_dir=Path(self.config_dir),
            clip_dir=Path(self.clip_dir),
            text_dir=Path(self.text_dir),
        )

    def fingerprint(self) -> str:
        """Hash of everything that determines the run, to refuse resuming a different one.
        The loader worker count is not part of it: samples do not depend on it, so a site may
        resume a run with another (``semivl train --num-workers``)."""
        return self._fingerprint(with_workers=False)

    def fingerprints(self) -> set[str]:
        """The fingerprints a ``last.pt`` of this run may carry: today's, and the one written
        before the worker count left the hash."""
        return {self._fingerprint(with_workers=False), self._fingerprint(with_workers=True)}

    def _fingerprint(self, with_workers: bool) -> str:
        recipe = self.recipe.to_dict()
        recipe.pop("resources")  # what the job asked the cluster for does not change the run
        if recipe["train"]["schedule_fraction"] == 1.0:
            # The default: runs written before the key existed keep their fingerprint.
            del recipe["train"]["schedule_fraction"]
        if not with_workers:
            del recipe["train"]["num_workers"]

        blob = json.dumps(
            {"recipe": recipe, "seed": self.seed, "labeled": self.labeled_split.name},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
