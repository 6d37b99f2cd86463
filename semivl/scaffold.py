"""`semivl dataset new`: the configs of your own dataset, written from its folders.

:func:`new_dataset` reads the source (``images/`` and ``masks/`` folders, or a split list of
``image mask`` / ``image None`` lines), checks every pair as `semivl data check` does, and only
then writes, for dataset ``NAME`` and a base dataset ``BASE`` whose recipes it inherits:

* ``config/datasets/NAME.yaml``: ``layout: generic``, the classes, the ignore values and the
  label offset, the labelled splits (label counts), the counts it found, and ``source:``;
* ``config/classes/NAME.yaml``: the prompt template, the class names the text encoder reads
  and the class definitions (by default each class's own name);
* ``config/recipes/<method>/NAME.yaml`` for every method with a recipe for ``BASE``: a
  ``base:`` line, and room for what differs;
* ``config/grids/NAME.yaml``: a grid over the new splits (supervised, UniMatch, SemiVL).

An existing file is kept unless ``force``; on any error nothing is written (files written
before a failing recipe check are removed again, or get their old text back).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from semivl.atomic import write_text_atomic
from semivl.config import ConfigError, DatasetConfig, build_config, read_yaml
from semivl.data.masks import DataError
from semivl.recipes import load_recipe

BUILT_IN = ("toy", "pascal", "coco", "ade20k", "cityscapes")
NAME = re.compile(r"^[A-Za-z0-9_]+$")  # the workflow's wildcard constraint
GRID_METHODS = ("supervised", "unimatch", "semivl")
TEMPLATE = "a photo of a {}"


def parse_classes(text: str) -> list[str]:
    """``"a,b,c"`` -> ``["a", "b", "c"]``; fails naming an empty or repeated name."""
    names = [n.strip() for n in text.split(",")]
    if any(not n for n in names):
        raise ConfigError(
            f"--classes: expected comma-separated class names, got an empty name in {text!r}"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"--classes: class {repeated[0]!r} is listed more than once in {text!r}")
    if len(names) < 2:
        raise ConfigError(f"--classes: expected at least 2 classes, got {names}")
    return names


def default_splits(labelled: int) -> list[int]:
    """Label counts for a pool of ``labelled`` images: about 1/8, 1/4 and 1/2 of it."""
    counts = sorted({max(1, labelled // d) for d in (8, 4, 2)})
    return [n for n in counts if n < labelled]


def _relative_or_absolute(path: Path, config_dir: Path) -> str:
    """A source path as the config records it: relative to the folder holding ``config/``
    when inside it (the checkout stays movable), absolute otherwise."""
    path, top = Path(path).expanduser().resolve(), Path(config_dir).resolve().parent
    try:
        return path.relative_to(top).as_posix()
    except ValueError:
        return str(path)


def _definitions(path: Path | None, classes: list[str]) -> dict[str, list[str]]:
    """Each class's concepts: those of the YAML ``path`` (class -> list or string), else the
    class's own name."""
    found: dict[str, Any] = {}
    if path is not None:
        found = read_yaml(Path(path))
        unknown = [k for k in found if k not in classes]
        if unknown:
            raise ConfigError(f"{path}: {unknown[0]}: not one of the classes {classes}")
        for cls, concepts in found.items():
            concepts = [concepts] if isinstance(concepts, str) else concepts
            if (
                not isinstance(concepts, list)
                or not concepts
                or not all(isinstance(c, str) and c.strip() for c in concepts)
            ):
                raise ConfigError(
                    f"{path}: {cls}: expected a concept or a non-empty list of "
                    f"concepts, got {found[cls]!r}"
                )
            found[cls] = [c.strip() for c in concepts]
    return {c: found.get(c, [c.replace("_", " ")]) for c in classes}


def _dump(data: dict) -> str:
    return yaml.safe_dump(
        data, sort_keys=False, default_flow_style=None, width=96, allow_unicode=True
    )


def _recipe_methods(base: str, config_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in (Path(config_dir) / "recipes").glob(f"*/{base}.yaml"))


def _texts(
    name: str,
    base: str,
    dataset_cfg: dict,
    source: dict,
    counts: dict,
    classes_cfg: dict,
    methods: list[str],
    grid: dict,
) -> dict[str, str]:
    """Relative path inside the config folder -> text."""
    files = {
        f"datasets/{name}.yaml": (
            f"# {name}: your own dataset, written by `semivl dataset new` (docs/datasets.md,\n"
            f'# "Your own dataset"). `semivl data prepare {name}` links the files of source: into '
            f"data/{name}/.\n# Masks are read as stored value + label_offset; a value below 0, or "
            f"one of ignore_values,\n# is ignored (255).\n"
            + _dump(dataset_cfg)
            + "# The pairs found when this file was written (`semivl data check` compares).\n"
            + _dump({"expected_counts": counts})
            + "# Where the files are (relative paths: to the folder that holds config/).\n"
            + _dump({"source": source})
        ),
        f"classes/{name}.yaml": (
            f"# Class texts of {name} for SemiVL's text embeddings (`semivl text`): the template,\n"
            f"# the name the text encoder reads per class, and each class's definitions (the\n"
            f"# concepts the dense CLIP guidance takes the max over). Edit freely.\n"
            + _dump(classes_cfg)
        ),
        f"grids/{name}.yaml": (
            f"# {name} only: its splits x the baselines and SemiVL, one seed (add seeds for a\n"
            f"# mean and spread). snakemake --cores 4 all --configfile config/grids/{name}.yaml\n"
            + _dump(grid)
        ),
    }
    for method in methods:
        files[f"recipes/{method}/{name}.yaml"] = (
            f"# {method} on {name}: the {base} recipe; add below only what differs for this\n"
            f"# dataset (e.g. `train: {{epochs: 40}}`; README, Configuration).\n"
            f"base: {base}.yaml\n"
        )
    return files


def new_dataset(
    name: str,
    *,
    classes: list[str],
    config_dir: Path = Path("config"),
    images: Path | None = None,
    masks: Path | None = None,
    list_file: Path | None = None,
    root: Path | None = None,
    base: str = "pascal",
    ignore_values: list[int] | None = None,
    label_offset: int = 0,
    val_fraction: float | None = None,
    val_list: Path | None = None,
    splits: list[int] | None = None,
    definitions: Path | None = None,
    template: str = TEMPLATE,
    link: str = "hardlink",
    seed: int = 0,
    force: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> list[Path]:
    """Write the configs of dataset ``name`` (module docstring); returns the files written."""
    from semivl.data.check import require_valid
    from semivl.data.prepare.generic import check_source

    config_dir = Path(config_dir)
    if not NAME.match(name):
        raise ConfigError(f"dataset name {name!r}: expected letters, digits and '_' only")
    if name in BUILT_IN:
        raise ConfigError(
            f"dataset name {name!r} is one of the benchmark's datasets "
            f"({', '.join(BUILT_IN)}); choose another"
        )
    if not (config_dir / "datasets" / f"{base}.yaml").is_file():
        known = sorted(p.stem for p in (config_dir / "datasets").glob("*.yaml"))
        raise ConfigError(
            f"--base {base}: no dataset config {config_dir}/datasets/{base}.yaml; known: {known}"
        )
    methods = _recipe_methods(base, config_dir)
    if not methods:
        raise ConfigError(f"--base {base}: no recipe config/recipes/<method>/{base}.yaml")
    if "{}" not in template:
        raise ConfigError(f"--template: expected a '{{}}' placeholder, got {template!r}")
    concepts = _definitions(definitions, classes)
    source: dict[str, Any] = {}
    if list_file is not None:
        if images is not None or masks is not None:
            raise ConfigError("--list: give either --images and --masks or --list")
        source["list_file"] = _relative_or_absolute(list_file, config_dir)
        if root is not None:
            source["root"] = _relative_or_absolute(root, config_dir)
    else:
        if images is None or masks is None:
            raise ConfigError("--images and --masks (or --list): where the dataset's files are")
        source["images"] = _relative_or_absolute(images, config_dir)
        source["masks"] = _relative_or_absolute(masks, config_dir)
    if val_list is not None:
        source["val_list"] = _relative_or_absolute(val_list, config_dir)
    else:
        source["val_fraction"] = 0.2 if val_fraction is None else val_fraction
    source.update(seed=seed, link=link)
    dataset_cfg: dict[str, Any] = {
        "name": name,
        "release": f"your own data ({name}: see `source` in config/datasets/{name}.yaml)",
        "layout": "generic",
        "num_classes": len(classes),
        "class_names": list(classes),
        "ignore_index": 255,
        "ignore_values": [255] if ignore_values is None else list(ignore_values),
        "label_offset": label_offset,
        "split_source": "generated",
        "archives": {},
    }

    def build(extra: dict) -> DatasetConfig:
        try:
            return build_config(
                DatasetConfig, {**dataset_cfg, **extra, "source": source}, "dataset"
            )
        except ConfigError as err:
            raise ConfigError(f"config/datasets/{name}.yaml (not written): {err}") from None

    # The source, checked pair by pair, before anything is written.
    report = check_source(build({}), config_dir, workers=workers, progress=progress)
    print(report.summary())
    require_valid(report)
    train, val = report.parts
    labelled = train.pairs - train.unlabelled
    counts = splits or default_splits(labelled)
    for n in counts:
        if not 0 < n < labelled:
            raise ConfigError(
                f"--splits: {n} labelled images, but the training images with "
                f"masks are {labelled}: a split takes 1..{labelled - 1}"
            )
    if not counts:
        raise ConfigError(f"{name}: {labelled} labelled training images leave no split")
    dataset_cfg["splits"] = {str(n): n for n in sorted(set(counts))}
    expected = {"train": train.pairs, "val": val.pairs}
    build({"expected_counts": expected})
    classes_cfg = {
        "template": template,
        "definitions_source": "project",
        "names": [c.replace("_", " ") for c in classes],
        "definitions": concepts,
    }
    grid_methods = [m for m in GRID_METHODS if m in methods]
    grid = {
        "results_dir": "results",
        "data_dir": "data",
        "config_dir": "config",
        "grid": {
            "datasets": [name],
            "splits": [{"dataset": name, "split": s} for s in dataset_cfg["splits"]],
            "methods": grid_methods,
            "seeds": [0],
        },
        "report": {"zero_shot": "semivl" in grid_methods},
    }
    if base == "toy":  # the toy's tiny recipes train on the CPU, as the demo does
        grid["cluster"] = {"device": "cpu"}
    texts = _texts(name, base, dataset_cfg, source, expected, classes_cfg, methods, grid)
    targets = {config_dir / rel: text for rel, text in texts.items()}
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"dataset {name}: {len(existing)} file(s) exist already: "
            f"{', '.join(existing)}; pass --force to overwrite them"
        )
    old = {p: p.read_text() for p in targets if p.exists()}
    written: list[Path] = []
    try:
        for path, text in targets.items():
            write_text_atomic(text, path)
            written.append(path)
        # Every recipe loads (with the dataset config just written).
        for method in methods:
            load_recipe(method, name, config_dir)
    except (ConfigError, DataError, OSError):
        for path in written:
            if path in old:
                write_text_atomic(old[path], path)
            else:
                path.unlink(missing_ok=True)
        raise
    for path in written:
        print(f"wrote {path}")
    return written
