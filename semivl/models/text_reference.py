"""Upstream SemiVL's own text embeddings (``config/upstream_text.yaml``): a check and an option.

Upstream ships, per dataset and variant, a float16 ``.npy`` of one L2-normalised row per text,
computed with OpenAI's CLIP ViT-B/16. This module

* fetches those files at a pinned commit into a download cache (sha256 from the config, else
  pinned in ``config/upstream_text.lock.yaml`` on first download, and verified on every use),
* compares this project's embeddings with them row by row (:func:`check_against_upstream`,
  run by ``semivl text`` for a CLIP marked ``upstream_text: true``), and
* serves their rows to a recipe with ``model.args.text_embeddings: upstream``
  (:func:`upstream_text_rows`), from the verified copies ``semivl text`` puts in
  ``<text_dir>/upstream/<commit>/``.

Only the loading of the config is torch-free: the workflow validates recipes with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from semivl import lockfile
from semivl.atomic import atomic_write
from semivl.config import ConfigError, DatasetConfig, build_config, read_yaml
from semivl.models.clip_config import clip_source

COSINE_MIN = 0.999  # per row, between this project's embedding and upstream's
CONFIG_FILE = "upstream_text.yaml"
LOCK_FILE = "upstream_text.lock.yaml"
CACHE_DIR = Path("resources/cache/text")
NORM_TOLERANCE = 0.01  # float16 rows of unit length are within 1e-3; anything further is not
VariantKey = Literal["names", "concepts", "concept_avg"]
VARIANT_KEYS: tuple[str, ...] = ("names", "concepts", "concept_avg")
# A recipe's text variant -> the key of the embeddings it reads.
RECIPE_VARIANTS = {"names": "names", "concept_max": "concepts", "concept_avg": "concept_avg"}


class TextReferenceError(ValueError):
    """Upstream's text embeddings are unusable, or this project's disagree with them."""


@dataclass(frozen=True)
class UpstreamText:
    """``config/upstream_text.yaml``: where upstream's files are and which variant each is."""

    repo: str
    commit: str  # 40 hex digits
    folder: str
    url: str = "https://raw.githubusercontent.com/{repo}/{commit}/{folder}/{file}"
    sha256: dict[str, str] = field(default_factory=dict)  # file -> sha256; others: lock file
    # dataset -> variant -> upstream file name.
    datasets: dict[str, dict[VariantKey, str]] = field(default_factory=dict)

    def check(self, path: str) -> None:
        if not re.fullmatch(r"[0-9a-f]{40}", self.commit):
            raise ConfigError(f"{path}.commit: expected a full 40-hex commit, got {self.commit!r}")
        for dataset, files in self.datasets.items():
            for key, file in files.items():
                if "/" in file or not file.endswith(".npy"):
                    raise ConfigError(
                        f"{path}.datasets.{dataset}.{key}: expected a .npy file "
                        f"name without '/', got {file!r}"
                    )

    def file_url(self, file: str) -> str:
        return self.url.format(repo=self.repo, commit=self.commit, folder=self.folder, file=file)

    def lock_key(self, file: str) -> str:
        return f"{self.commit[:12]}/{file}"

    def files_of(self, dataset: str) -> dict[str, str]:
        return dict(self.datasets.get(dataset, {}))


def load_upstream_text(config_dir: Path) -> UpstreamText:
    """Read and check ``config/upstream_text.yaml``."""
    path = Path(config_dir) / CONFIG_FILE
    try:
        return build_config(UpstreamText, read_yaml(path), "upstream_text")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def pinned_sha256(ref: UpstreamText, file: str, config_dir: Path) -> str | None:
    """The sha256 ``file`` must have: from the config, else from the lock file (or None)."""
    lock = lockfile.read_lock(Path(config_dir) / LOCK_FILE)
    return ref.sha256.get(file) or lock.get(ref.lock_key(file))


def _verify(path: Path, ref: UpstreamText, file: str, config_dir: Path) -> str:
    """The sha256 of a stored copy, refused when it differs from the pin."""
    return lockfile.verify_pinned(
        path,
        pinned_sha256(ref, file, config_dir),
        f"{Path(config_dir) / CONFIG_FILE} or {LOCK_FILE}",
        TextReferenceError,
    )


def fetch_upstream_file(
    ref: UpstreamText, file: str, config_dir: Path, cache_dir: Path, progress: bool = False
) -> tuple[Path, str]:
    """Make sure ``<cache_dir>/<commit>/<file>`` is upstream's verified file; return it and its
    sha256. A first download is read (format check) before its sha256 is pinned."""
    dest = Path(cache_dir) / ref.commit / file
    pinned = pinned_sha256(ref, file, config_dir)

    def readable(path: Path) -> None:
        try:
            read_upstream_rows(path, file)
        except TextReferenceError:
            if pinned is None:  # never pin a file that is not what upstream ships
                os.replace(path, path.with_name(path.name + ".corrupt"))
            raise

    sha = lockfile.fetch_pinned(
        [ref.file_url(file)],
        dest,
        Path(config_dir) / LOCK_FILE,
        ref.lock_key(file),
        "upstream SemiVL's text embeddings",
        expected=ref.sha256.get(file),
        pinned_in=f"{Path(config_dir) / CONFIG_FILE} or {LOCK_FILE}",
        error=TextReferenceError,
        check=readable,
        progress=progress,
        failure=lambda err: (
            f"upstream text embeddings {file}: {err}\nRun `semivl text` where "
            f"{ref.file_url(file)} can be reached (it needs internet once), or download that "
            f"file by hand to {dest.resolve()} and run it again"
        ),
    )
    return dest, sha


def read_upstream_rows(path: Path, file: str):
    """The rows of an upstream ``.npy`` as a float16 tensor [N, D]; errors name the file."""
    import numpy as np
    import torch

    try:
        array = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - numpy raises ValueError, OSError, EOFError...
        raise TextReferenceError(
            f"upstream text embeddings {file} ({path}): not a readable "
            f".npy file ({type(err).__name__}: {err})"
        ) from None
    if array.dtype != np.float16 or array.ndim != 2 or 0 in array.shape:
        raise TextReferenceError(
            f"upstream text embeddings {file} ({path}): expected a float16 array of shape "
            f"[rows, dim], got {array.dtype} of shape {tuple(array.shape)}"
        )
    norms = np.linalg.norm(array.astype(np.float64), axis=1)
    if not np.all(np.abs(norms - 1) <= NORM_TOLERANCE):
        raise TextReferenceError(
            f"upstream text embeddings {file} ({path}): rows are not L2-normalised (norms "
            f"{norms.min():.4f} to {norms.max():.4f})"
        )
    return torch.from_numpy(array.copy())


def row_texts(texts) -> dict[str, list[str]]:
    """What each row of each variant encodes (``texts``: a ``ClassTexts``), for messages."""
    return {
        "names": list(texts.names),
        "concepts": [c for concepts in texts.definitions.values() for c in concepts],
        "concept_avg": [f"mean of {cls}'s concepts" for cls in texts.definitions],
    }


def compare_rows(
    ours, theirs, texts: list[str], *, dataset: str, variant: str, file: str
) -> dict[str, Any]:
    """Per-row cosine of two [N, D] tensors; the worst row, or an error naming it."""
    import torch

    where = f"text embeddings of {dataset}, variant {variant}, vs upstream {file}"
    if ours.shape[0] != theirs.shape[0]:
        raise TextReferenceError(
            f"{where}: {ours.shape[0]} rows here (config/classes/{dataset}.yaml) but "
            f"{theirs.shape[0]} upstream; the texts do not correspond row by row"
        )
    if ours.shape[1] != theirs.shape[1]:
        raise TextReferenceError(
            f"{where}: {ours.shape[1]} dimensions here but {theirs.shape[1]} upstream"
        )
    cos = torch.nn.functional.cosine_similarity(ours.double(), theirs.double(), dim=1)
    cos = torch.nan_to_num(cos, nan=-1.0)
    worst = int(cos.argmin())
    result = {
        "rows": int(ours.shape[0]),
        "min_cosine": round(float(cos[worst]), 6),
        "worst_row": {"index": worst, "text": texts[worst], "cosine": round(float(cos[worst]), 6)},
    }
    if float(cos[worst]) < COSINE_MIN:
        raise TextReferenceError(
            f"{where}: row {worst} ({texts[worst]!r}) has cosine {float(cos[worst]):.6f}, "
            f"below {COSINE_MIN}; this project's text or CLIP does not reproduce upstream's"
        )
    return result


def check_against_upstream(
    embeddings: dict,
    texts,
    dataset: str,
    clip_name: str,
    config_dir: Path,
    cache_dir: Path = CACHE_DIR,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Compare the variants of :func:`~semivl.models.text.class_text_embeddings` with
    upstream's; return the record for the sidecar and the verified files (file -> path).
    Raises :class:`TextReferenceError` on any disagreement."""
    record: dict[str, Any] = {"clip": clip_name, "dataset": dataset, "cosine_threshold": COSINE_MIN}
    if not clip_source(clip_name, config_dir).upstream_text:
        record["check"] = (
            f"not compared: CLIP {clip_name!r} is not the model upstream "
            f"computed its text embeddings with (OpenAI CLIP ViT-B/16; "
            f"upstream_text is false in config/clip.yaml)"
        )
        return record, {}
    ref = load_upstream_text(config_dir)
    files, found, variants = ref.files_of(dataset), {}, {}
    rows = row_texts(texts)
    for key in VARIANT_KEYS:
        file = files.get(key)
        if file is None:
            why = (
                "its class definitions are this project's own (definitions_source: project)"
                if key != "names" and texts.definitions_source == "project"
                else f"{CONFIG_FILE} names no upstream file for it"
            )
            variants[key] = {"check": f"not compared: {why}"}
            continue
        path, sha = fetch_upstream_file(ref, file, config_dir, cache_dir, progress)
        found[file] = path
        result = compare_rows(
            embeddings[key].float(),
            read_upstream_rows(path, file).float(),
            rows[key],
            dataset=dataset,
            variant=key,
            file=file,
        )
        variants[key] = {"check": "passed", "file": file, "sha256": sha, **result}
    record["check"] = (
        "passed" if found else f"not compared: upstream ships no text embeddings for {dataset}"
    )
    record["upstream"] = {"repo": ref.repo, "commit": ref.commit}
    record["variants"] = variants
    return record, found


def upstream_copy(text_dir: Path, ref: UpstreamText, file: str) -> Path:
    """Where ``semivl text`` keeps the verified upstream file that training reads."""
    return Path(text_dir) / "upstream" / ref.commit[:12] / file


def install_upstream_files(files: dict[str, Path], text_dir: Path, config_dir: Path) -> None:
    """Copy verified upstream files next to the text embeddings (atomically, each)."""
    ref = load_upstream_text(config_dir)
    for file, path in files.items():
        atomic_write(
            upstream_copy(text_dir, ref, file), lambda tmp, src=path: shutil.copyfile(src, tmp)
        )


def upstream_text_rows(text_dir: Path, config_dir: Path, dataset: DatasetConfig, variant: str):
    """The upstream rows of a recipe's text ``variant`` (and, for ``concept_max``, each row's
    class, from ``config/classes``), verified against the pin on every use."""
    import torch

    from semivl.models.class_texts import load_class_texts

    ref, key = load_upstream_text(config_dir), RECIPE_VARIANTS.get(variant)
    file = ref.files_of(dataset.name).get(key)
    if file is None:
        raise ConfigError(
            f"model.args.text_embeddings: 'upstream' has no file for the "
            f"{variant} texts of {dataset.name} ({Path(config_dir) / CONFIG_FILE})"
            f"; use text_embeddings: project"
        )
    path = upstream_copy(text_dir, ref, file)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: upstream text embeddings are missing; `semivl text "
            f"--dataset {dataset.name} --clip <clip> --out-dir {text_dir}` "
            f"fetches them for a CLIP with upstream_text: true"
        )
    _verify(path, ref, file, config_dir)
    rows = read_upstream_rows(path, file)
    if key != "concepts":
        return rows, None
    texts = load_class_texts(dataset, config_dir)
    owner = torch.tensor([i for i, c in enumerate(texts.definitions.values()) for _ in c])
    if len(owner) != rows.shape[0]:
        raise TextReferenceError(
            f"upstream text embeddings {file}: {rows.shape[0]} rows, but "
            f"config/classes/{dataset.name}.yaml has {len(owner)} concepts"
        )
    return rows, owner


def text_variants(model, guidance) -> dict[str, str]:
    """The text variants a SemiVL recipe reads, by the key that sets each."""
    used = {"model.args.decoder_text": model.args.get("decoder_text", "names")}
    if guidance is not None:
        used["guidance.text"] = guidance.text
    return used


def check_upstream_recipe(
    path: Path, model, guidance, dataset: DatasetConfig, config_dir: Path
) -> None:
    """At recipe load: ``text_embeddings: upstream`` needs a SemiVL model on the CLIP upstream
    used and an upstream file for every text variant the recipe reads."""
    where = f"{path}: model.args.text_embeddings: 'upstream'"
    if model.name != "semivl":
        raise ConfigError(f"{where}: only the semivl model reads text embeddings")
    clip = model.args.get("clip")
    if not clip_source(clip, config_dir).upstream_text:
        raise ConfigError(
            f"{where}: needs the CLIP upstream computed them with; {clip!r} has "
            f"upstream_text: false in {Path(config_dir) / 'clip.yaml'}"
        )
    files = load_upstream_text(config_dir).files_of(dataset.name)
    for key, variant in text_variants(model, guidance).items():
        if RECIPE_VARIANTS.get(variant) not in files:
            raise ConfigError(
                f"{where}: upstream has no {variant} text embeddings for "
                f"{dataset.name} ({key}; {CONFIG_FILE} lists "
                f"{sorted(files) or 'none'}); use text_embeddings: project"
            )


def run_text_record(recipe, text_dir: Path, config_dir: Path) -> dict[str, Any] | None:
    """What ``provenance.json`` records of a run's text embeddings: their source, the file and
    the check ``semivl text`` recorded beside it (None for models without text)."""
    from semivl.download import sha256_of
    from semivl.models.class_texts import text_check_file, text_file

    if recipe.model.name != "semivl":
        return None
    clip, dataset = recipe.model.args.get("clip"), recipe.dataset.name
    pt, sidecar = text_file(text_dir, clip, dataset), text_check_file(text_dir, clip, dataset)
    record: dict[str, Any] = {
        "source": recipe.model.args.get("text_embeddings", "project"),
        "file": str(pt),
        "sha256": sha256_of(pt) if pt.is_file() else None,
        "check": (
            json.loads(sidecar.read_text())
            if sidecar.is_file()
            else f"unknown: {sidecar} is missing (`semivl text` writes it)"
        ),
    }
    if record["source"] == "upstream":
        ref = load_upstream_text(config_dir)
        files = ref.files_of(dataset)
        used = {
            files[RECIPE_VARIANTS[v]] for v in text_variants(recipe.model, recipe.guidance).values()
        }
        record["upstream"] = {
            "repo": ref.repo,
            "commit": ref.commit,
            "files": {f: pinned_sha256(ref, f, config_dir) for f in sorted(used)},
        }
    return record
