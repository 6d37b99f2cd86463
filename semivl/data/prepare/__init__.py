"""`semivl data prepare <dataset>`: fetch a dataset's archives and build ``data/<dataset>/``.

One module per dataset (``toy``, ``pascal``, ``coco``, ``ade20k``, ``cityscapes``), and
``generic`` for every dataset of that layout (your own: files linked from its ``source:``), names
the archives it needs (keys of ``archives:`` in ``config/datasets/<dataset>.yaml``) and extracts
or converts them into the layout of docs/datasets.md. This module does what they share: the
folder is built next to its final place and renamed in only after `semivl data check` passes,
with ``prepared.json`` (the archives and their checksums, the counts) written last, so an
interrupted or failed prepare never leaves a folder that looks complete.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from types import ModuleType

from semivl import lockfile
from semivl.atomic import atomic_dir, write_text_atomic
from semivl.config import DatasetConfig, load_dataset_config
from semivl.data.archives import fetch_archive, lock_path
from semivl.data.check import check_dataset, require_valid
from semivl.data.masks import DataError

MARKER = "prepared.json"
PREPARERS = ("toy", "pascal", "coco", "ade20k", "cityscapes")


def preparer(name: str, layout: str | None = None) -> ModuleType:
    """The module that prepares dataset ``name`` (any dataset of ``layout`` generic: the
    generic one)."""
    if layout == "generic":
        return importlib.import_module("semivl.data.prepare.generic")
    if name not in PREPARERS:
        raise DataError(
            f"no preparation recipe for dataset {name!r} (known: "
            f"{', '.join(PREPARERS)}); place a prepared copy in data/{name}/ "
            f"(layout: docs/datasets.md) and run `semivl data check {name}`, or "
            f"describe your own data with `semivl dataset new {name}` (layout "
            f"generic)"
        )
    return importlib.import_module(f"semivl.data.prepare.{name}")


def archive_files(cfg: DatasetConfig) -> list[str]:
    """File names of the archives ``cfg``'s dataset is prepared from."""
    return [cfg.archives[key].file for key in preparer(cfg.name, cfg.layout).required_archives(cfg)]


def _workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _provenance(cfg: DatasetConfig, config_dir: Path, report, adopted: bool) -> str:
    lock = lockfile.read_lock(lock_path(config_dir))
    archives = {}
    for key in preparer(cfg.name, cfg.layout).required_archives(cfg):
        source = cfg.archives[key]
        archives[source.file] = {"md5": source.md5, "sha256": lock.get(f"{cfg.name}/{source.file}")}
    record = {
        "dataset": cfg.name,
        "prepared_by": "an existing folder, checked" if adopted else "semivl data prepare",
        "masks_from": cfg.masks_from if cfg.layout == "coco" else None,
        "archives": {} if adopted else archives,
        "pairs": {p.part: p.pairs for p in report.parts},
    }
    if cfg.source is not None:  # your own dataset: where its files came from, as configured
        record["source"] = dataclasses.asdict(cfg.source)
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def prepare_dataset(
    name: str,
    out: Path,
    archive_dir: Path,
    config_dir: Path,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Fetch what ``name`` needs into ``archive_dir`` and build ``out``; return ``out``.

    A folder already holding ``prepared.json`` is left alone (``force`` rebuilds it). A folder
    without it (placed by hand) is checked and, if the check passes, adopted by writing the
    marker; otherwise the error lists the problems and nothing is changed.
    """
    cfg = load_dataset_config(name, Path(config_dir))
    module = preparer(name, cfg.layout)
    out = Path(out)
    if out.is_dir() and not force:
        if (out / MARKER).is_file():
            print(f"{out} is already prepared ({MARKER}); pass --force to rebuild it")
            return out
        report = check_dataset(cfg, out, workers=_workers(), progress=progress)
        print(report.summary())
        try:
            require_valid(report)
        except DataError as err:
            raise DataError(
                f"{err}\n{out} exists but was not prepared by semivl and fails "
                f"the check; fix it, move it away, or pass --force to rebuild "
                f"it from the archives"
            ) from None
        write_text_atomic(_provenance(cfg, Path(config_dir), report, adopted=True), out / MARKER)
        return out
    archives = {
        key: fetch_archive(cfg, key, Path(archive_dir), Path(config_dir), progress=progress)
        for key in module.required_archives(cfg)
    }
    with atomic_dir(out) as tmp:
        # The generic preparer resolves its source paths against the config folder.
        extra = {"config_dir": Path(config_dir)} if cfg.layout == "generic" else {}
        module.build(cfg, archives, tmp, progress=progress, **extra)
        report = check_dataset(cfg, tmp, workers=_workers(), progress=progress)
        report.root = out
        print(report.summary())
        require_valid(report)
        (tmp / MARKER).write_text(_provenance(cfg, Path(config_dir), report, adopted=False))
    print(f"prepared {name} in {out}")
    return out
