"""Your own dataset: `semivl dataset new`, the generic layout, the label offset, `semivl data
check` and `data prepare` on it, and the whole Snakemake DAG on a fabricated one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, TINY_PRETRAIN
from PIL import Image

from semivl.cli import main
from semivl.config import ConfigError, load_dataset_config
from semivl.data.masks import DataError, map_labels, read_mask
from semivl.recipes import load_recipe
from semivl.scaffold import new_dataset

BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "HF_HUB_OFFLINE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
CLASSES = ["background", "square", "disc"]
COLOURS = {1: (210, 40, 40), 2: (40, 60, 210)}


def fabricate(
    root: Path,
    labelled: int = 20,
    unlabelled: int = 4,
    size: int = 48,
    seed: int = 0,
    stored_offset: int = 0,
) -> Path:
    """``root/images/*.jpg`` and ``root/masks/*.png``: a red square and a blue disc on noisy
    grey, masks 0 background, 1 square, 2 disc (each plus ``stored_offset``), 255 on a ring
    round the disc; the last ``unlabelled`` images have no mask."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(labelled + unlabelled):
        mask = np.zeros((size, size), np.uint8)
        x, y = rng.integers(2, size - 18, 2)
        mask[y : y + 14, x : x + 14] = 1
        cx, cy = rng.integers(9, size - 9, 2)
        r = np.hypot(xx - cx, yy - cy)
        mask[r < 7] = 2
        ring = (r >= 7) & (r < 8)
        image = rng.integers(90, 140, (size, size, 3)).astype(np.uint8)
        for cls, colour in COLOURS.items():
            image[mask == cls] = colour
        Image.fromarray(image).save(root / "images" / f"img{i:03d}.jpg", quality=95)
        if i < labelled:
            stored = mask + stored_offset
            stored[ring] = 255
            Image.fromarray(stored.astype(np.uint8)).save(root / "masks" / f"img{i:03d}.png")
    return root


@pytest.fixture
def config_dir(tmp_path) -> Path:
    """A copy of the repository's config/ folder (the scaffold writes into it)."""
    dest = tmp_path / "repo" / "config"
    shutil.copytree(REPO / "config", dest, ignore=shutil.ignore_patterns("*.runs.yaml"))
    return dest


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _new(config_dir: Path, src: Path, *extra: str, name: str = "shapes") -> int:
    return main(
        [
            "dataset",
            "new",
            name,
            "--images",
            str(src / "images"),
            "--masks",
            str(src / "masks"),
            "--classes",
            ",".join(CLASSES),
            "--base",
            "toy",
            "--config-dir",
            str(config_dir),
            "--no-progress",
            "--workers",
            "1",
            *extra,
        ]
    )


# --------------------------------------------------------------------------------------------
# Scaffolding
# --------------------------------------------------------------------------------------------


def test_scaffold_writes_the_configs_and_refuses_to_overwrite(tmp_path, config_dir):
    src = fabricate(tmp_path / "src")
    written = new_dataset(
        "shapes",
        classes=CLASSES,
        config_dir=config_dir,
        images=src / "images",
        masks=src / "masks",
        base="toy",
        splits=[4, 8],
        progress=False,
    )
    methods = sorted(p.parent.name for p in (config_dir / "recipes").glob("*/toy.yaml"))
    assert len(methods) >= 3 and {"supervised", "unimatch", "semivl"} <= set(methods)
    expected = {
        config_dir / "datasets/shapes.yaml",
        config_dir / "classes/shapes.yaml",
        config_dir / "grids/shapes.yaml",
        *(config_dir / f"recipes/{m}/shapes.yaml" for m in methods),
    }
    assert set(written) == expected
    cfg = load_dataset_config("shapes", config_dir)
    assert (cfg.layout, cfg.class_names, cfg.num_classes) == ("generic", CLASSES, 3)
    assert cfg.splits == {"4": 4, "8": 8} and cfg.ignore_values == [255]
    # 20 labelled: 4 drawn for val; 16 + the 4 without masks train.
    assert cfg.expected_counts == {"train": 20, "val": 4}
    assert Path(cfg.source.images) == (src / "images").resolve() and cfg.source.link == "hardlink"
    for method in methods:
        recipe = (config_dir / f"recipes/{method}/shapes.yaml").read_text()
        assert [line for line in recipe.splitlines() if not line.startswith("#")] == [
            "base: toy.yaml"
        ]
        ours, base = (
            load_recipe(method, "shapes", config_dir),
            load_recipe(method, "toy", config_dir),
        )
        assert ours.to_dict() | {"dataset": None} == base.to_dict() | {"dataset": None}
    texts = yaml.safe_load((config_dir / "classes/shapes.yaml").read_text())
    assert texts["names"] == CLASSES and texts["definitions"]["disc"] == ["disc"]
    grid = yaml.safe_load((config_dir / "grids/shapes.yaml").read_text())["grid"]
    assert grid["splits"] == [
        {"dataset": "shapes", "split": "4"},
        {"dataset": "shapes", "split": "8"},
    ]
    assert grid["methods"] == ["supervised", "unimatch", "semivl"]
    # On the toy's tiny recipes the grid trains on the CPU, as the demo.
    assert yaml.safe_load((config_dir / "grids/shapes.yaml").read_text())["cluster"] == {
        "device": "cpu"
    }

    before = _tree(config_dir)
    with pytest.raises(ConfigError, match=r"exist already: .*datasets/shapes\.yaml.*--force"):
        new_dataset(
            "shapes",
            classes=["bg", "a", "b"],
            config_dir=config_dir,
            images=src / "images",
            masks=src / "masks",
            base="toy",
            progress=False,
        )
    assert _tree(config_dir) == before
    definitions = tmp_path / "definitions.yaml"
    definitions.write_text("disc: [disc, circle, round blob]\nsquare: box\n")
    new_dataset(
        "shapes",
        classes=CLASSES,
        config_dir=config_dir,
        images=src / "images",
        masks=src / "masks",
        base="toy",
        definitions=definitions,
        force=True,
        progress=False,
    )
    texts = yaml.safe_load((config_dir / "classes/shapes.yaml").read_text())
    assert texts["definitions"] == {
        "background": ["background"],
        "square": ["box"],
        "disc": ["disc", "circle", "round blob"],
    }
    assert load_dataset_config("shapes", config_dir).splits == {"2": 2, "4": 4, "8": 8}


def test_the_recipes_of_the_benchmark_datasets_are_inherited(tmp_path, config_dir):
    """Base pascal (the default): a recipe for every method folder that has pascal's."""
    src = fabricate(tmp_path / "src")
    assert (
        main(
            [
                "dataset",
                "new",
                "mine",
                "--images",
                str(src / "images"),
                "--masks",
                str(src / "masks"),
                "--classes",
                ",".join(CLASSES),
                "--config-dir",
                str(config_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    pascal = sorted(p.parent.name for p in (config_dir / "recipes").glob("*/pascal.yaml"))
    mine = sorted(p.parent.name for p in (config_dir / "recipes").glob("*/mine.yaml"))
    assert mine == pascal
    recipe = load_recipe("semivl", "mine", config_dir)
    assert recipe.dataset.num_classes == 3 and recipe.train.epochs == 80
    assert (
        recipe.to_dict()["model"] == load_recipe("semivl", "pascal", config_dir).to_dict()["model"]
    )


def _bad_mask_value(src: Path) -> str:
    path = src / "masks" / "img003.png"
    mask = np.asarray(Image.open(path)).copy()
    mask[0, 0] = 7
    Image.fromarray(mask).save(path)
    return r"masks/img003\.png \(values \[7\]\)"


def _bad_size(src: Path) -> str:
    Image.fromarray(np.zeros((40, 48), np.uint8)).save(src / "masks" / "img005.png")
    return r"masks/img005\.png 48x40 vs image 48x48"


def _orphan_mask(src: Path) -> str:
    (src / "images" / "img002.jpg").unlink()
    return r"1 mask\(s\) have no image .*masks/img002\.png"


def _no_images_folder(src: Path) -> str:
    shutil.rmtree(src / "images")
    return r"source\.images: folder .*/images does not exist"


def _lossy_mask(src: Path) -> str:
    Image.open(src / "images" / "img001.jpg").save(src / "masks" / "img009.jpg")
    return r"masks must be lossless.*masks/img009\.jpg"


@pytest.mark.parametrize(
    "damage", [_bad_mask_value, _bad_size, _orphan_mask, _no_images_folder, _lossy_mask]
)
def test_bad_source_fails_naming_the_file_and_writes_nothing(tmp_path, config_dir, capsys, damage):
    src = fabricate(tmp_path / "src")
    pattern = damage(src)
    before = _tree(config_dir)
    assert _new(config_dir, src) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err
    assert _tree(config_dir) == before
    # The library call raises the same error.
    with pytest.raises((DataError, ConfigError), match=pattern):
        new_dataset(
            "shapes",
            classes=CLASSES,
            config_dir=config_dir,
            images=src / "images",
            masks=src / "masks",
            base="toy",
            progress=False,
        )
    assert _tree(config_dir) == before


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (
            ["--classes", "background,square,background"],
            r"--classes: class 'background' is listed more than once",
        ),
        (
            ["--splits", "4,30"],
            r"--splits: 30 labelled images, but the training images with "
            r"masks are 16",
        ),
        (["--base", "nosuch"], r"--base nosuch: no dataset config"),
        (
            ["--ignore-index", "1"],
            r"shapes\.yaml \(not written\): dataset\.ignore_values: "
            r"expected no stored value of a class .*got .1 \(class 1, "
            r"'square'\).",
        ),
        (["--template", "a photo"], r"--template: expected a '\{\}' placeholder"),
    ],
)
def test_bad_options_fail_naming_the_key_and_write_nothing(
    tmp_path, config_dir, capsys, extra, pattern
):
    src = fabricate(tmp_path / "src")
    before = _tree(config_dir)
    assert _new(config_dir, src, *extra) == 2
    assert re.search(pattern, capsys.readouterr().err), pattern
    assert _tree(config_dir) == before


def test_a_val_image_without_a_mask_and_a_built_in_name_are_refused(tmp_path, config_dir, capsys):
    src = fabricate(tmp_path / "src")
    val = tmp_path / "val.txt"
    val.write_text("img001.jpg\nimg022.jpg\n")  # img022 is one of the 4 without a mask
    before = _tree(config_dir)
    assert _new(config_dir, src, "--val-list", str(val)) == 2
    assert re.search(
        r"val\.txt:2: img022\.jpg has no mask in .*masks; val images need one",
        capsys.readouterr().err,
    )
    assert _new(config_dir, src, name="pascal") == 2
    assert "is one of the benchmark's datasets" in capsys.readouterr().err
    assert _tree(config_dir) == before


def test_a_list_with_a_missing_labelled_mask_fails_naming_it(tmp_path, config_dir, capsys):
    """Split-list mode: a line `image mask` whose mask does not exist."""
    src = fabricate(tmp_path / "src")
    listed = tmp_path / "all.txt"
    lines = [f"images/img{i:03d}.jpg masks/img{i:03d}.png" for i in range(20)]
    lines[7] = "images/img007.jpg masks/gone.png"
    listed.write_text("\n".join(lines + [f"images/img{i:03d}.jpg None" for i in (20, 21)]))
    before = _tree(config_dir)
    assert (
        main(
            [
                "dataset",
                "new",
                "listed",
                "--list",
                str(listed),
                "--root",
                str(src),
                "--classes",
                ",".join(CLASSES),
                "--base",
                "toy",
                "--config-dir",
                str(config_dir),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert re.search(
        r"all\.txt: 1 listed file\(s\) do not exist: .*/masks/gone\.png \(the "
        r"mask of images/img007\.jpg\)",
        err,
    ), err
    assert _tree(config_dir) == before


# --------------------------------------------------------------------------------------------
# Preparing and checking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["hardlink", "symlink", "copy"])
def test_prepare_links_the_files_and_check_passes(tmp_path, config_dir, capsys, link):
    src = fabricate(tmp_path / "src")
    assert _new(config_dir, src, "--link", link, "--splits", "4") == 0
    data = tmp_path / "data" / "shapes"
    assert (
        main(
            [
                "data",
                "prepare",
                "shapes",
                "--out",
                str(data),
                "--config-dir",
                str(config_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    image, source = data / "images" / "img000.jpg", src / "images" / "img000.jpg"
    if link == "hardlink":
        assert image.samefile(source) and not image.is_symlink()
    elif link == "symlink":
        assert image.is_symlink() and image.resolve() == source.resolve()
    else:
        assert not image.samefile(source) and image.read_bytes() == source.read_bytes()
    train = (data / "train.txt").read_text().splitlines()
    val = (data / "val.txt").read_text().splitlines()
    assert len(train) == 20 and len(val) == 4
    assert sum(line.endswith(" None") for line in train) == 4
    assert not any("None" in line for line in val)
    record = (data / "prepared.json").read_text()
    assert f'"link": "{link}"' in record and str(tmp_path) in record  # the source, as recorded
    capsys.readouterr()
    assert (
        main(
            [
                "data",
                "check",
                "shapes",
                "--data-root",
                str(data),
                "--config-dir",
                str(config_dir),
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "train: 4 of the checked images have no mask (unlabelled only)" in out
    assert out.rstrip().endswith("OK")
    # Splits: labelled from the images with masks; every mask-less image is unlabelled.
    splits = tmp_path / "splits"
    assert (
        main(
            [
                "splits",
                "shapes",
                "--data-root",
                str(data),
                "--out-dir",
                str(splits),
                "--config-dir",
                str(config_dir),
            ]
        )
        == 0
    )
    labelled = (splits / "4" / "labeled.txt").read_text().splitlines()
    unlabelled = (splits / "4" / "unlabeled.txt").read_text().splitlines()
    assert len(labelled) == 4 and not any("None" in line for line in labelled)
    assert len(unlabelled) == 16 and sum(line.endswith(" None") for line in unlabelled) == 4
    assert (splits / "val.txt").read_text().splitlines() == val


def test_data_check_names_the_bad_files(tmp_path, config_dir, capsys):
    src = fabricate(tmp_path / "src")
    assert _new(config_dir, src, "--link", "copy") == 0
    data = tmp_path / "data" / "shapes"
    assert (
        main(
            [
                "data",
                "prepare",
                "shapes",
                "--out",
                str(data),
                "--config-dir",
                str(config_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    pairs = [line.split() for line in (data / "train.txt").read_text().splitlines()]
    labelled = [mask for _, mask in pairs if mask != "None"]
    mask = np.asarray(Image.open(data / labelled[0])).copy()
    mask[3, 3] = 9
    Image.fromarray(mask).save(data / labelled[0])
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(data / labelled[1])
    (data / labelled[2]).unlink()
    capsys.readouterr()
    assert (
        main(
            [
                "data",
                "check",
                "shapes",
                "--data-root",
                str(data),
                "--config-dir",
                str(config_dir),
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 2
    )
    captured = capsys.readouterr()
    err = captured.err
    assert f"1 mask values out of range, e.g. {labelled[0]} (values [9])" in err
    assert f"1 mask size differs from image, e.g. {labelled[1]} 20x20 vs image 48x48" in err
    assert f"1 missing masks, e.g. {labelled[2]}" in err


def test_data_check_before_prepare_checks_the_source(tmp_path, config_dir, capsys):
    src = fabricate(tmp_path / "src")
    assert _new(config_dir, src) == 0
    os.chdir(tmp_path)  # no data/shapes here
    capsys.readouterr()
    args = ["data", "check", "shapes", "--config-dir", str(config_dir), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data/shapes is not prepared yet: checking the files of source:" in out
    assert out.rstrip().endswith("OK")
    _bad_mask_value(src)
    assert main(args) == 2
    assert re.search(
        r"1 mask values out of range, e\.g\. .*src/masks/img003\.png \(values "
        r"\[7\]\)",
        capsys.readouterr().err,
    )


def test_split_list_mode_with_a_val_list(tmp_path, config_dir):
    src = fabricate(tmp_path / "src", labelled=16, unlabelled=3)
    listed, val = tmp_path / "train.txt", tmp_path / "val.txt"
    listed.write_text(
        "\n".join(
            [f"images/img{i:03d}.jpg masks/img{i:03d}.png" for i in range(12)]
            + [f"images/img{i:03d}.jpg None" for i in (16, 17, 18)]
        )
    )
    val.write_text("\n".join(f"images/img{i:03d}.jpg masks/img{i:03d}.png" for i in range(12, 16)))
    new_dataset(
        "listed",
        classes=CLASSES,
        config_dir=config_dir,
        list_file=listed,
        root=src,
        val_list=val,
        base="toy",
        progress=False,
    )
    cfg = load_dataset_config("listed", config_dir)
    assert cfg.expected_counts == {"train": 15, "val": 4}
    assert cfg.splits == {"1": 1, "3": 3, "6": 6}  # about 1/8, 1/4 and 1/2 of 12
    from semivl.data.prepare import prepare_dataset

    data = prepare_dataset(
        "listed", tmp_path / "data" / "listed", tmp_path / "archives", config_dir, progress=False
    )
    assert (data / "val.txt").read_text() == val.read_text() + "\n"
    assert (data / "train.txt").read_text().count(" None") == 3


def test_hard_links_fall_back_to_copies_and_other_files_are_skipped(
    tmp_path, config_dir, capsys, monkeypatch
):
    src = fabricate(tmp_path / "src")
    (src / "images" / "notes.txt").write_text("not an image")
    assert _new(config_dir, src) == 0
    assert re.search(
        r"skipped 1 file\(s\) that are not images or masks, e\.g\. "
        r".*images/notes\.txt",
        capsys.readouterr().out,
    )

    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    data = tmp_path / "data" / "shapes"
    assert (
        main(
            [
                "data",
                "prepare",
                "shapes",
                "--out",
                str(data),
                "--config-dir",
                str(config_dir),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out  # 24 images and 20 masks
    assert re.search(
        r"44 files into .* \(0 hard-linked, 44 copied \(hard links cannot "
        r"cross filesystems\)\)",
        out,
    ), out
    assert not (data / "images" / "img000.jpg").samefile(src / "images" / "img000.jpg")


def test_a_list_line_outside_its_root_is_refused(tmp_path, config_dir):
    src = fabricate(tmp_path / "src")
    listed = tmp_path / "all.txt"
    listed.write_text("images/img000.jpg masks/img000.png\n../src/images/img001.jpg None\n")
    with pytest.raises(
        DataError,
        match=r"all\.txt: \.\./src/images/img001\.jpg: expected a "
        r"path inside",
    ):
        new_dataset(
            "listed",
            classes=CLASSES,
            config_dir=config_dir,
            list_file=listed,
            root=src,
            base="toy",
            progress=False,
        )


# --------------------------------------------------------------------------------------------
# The label offset
# --------------------------------------------------------------------------------------------


def test_label_offset_ignores_stored_zero(tmp_path, config_dir):
    """Masks stored 0 = unlabelled and 1..3 = the classes (offset -1), ignore stored 255."""
    src = fabricate(tmp_path / "src", stored_offset=1)
    new_dataset(
        "offset",
        classes=["back", "square", "disc"],
        config_dir=config_dir,
        images=src / "images",
        masks=src / "masks",
        base="toy",
        label_offset=-1,
        progress=False,
    )
    cfg = load_dataset_config("offset", config_dir)
    stored = np.asarray(Image.open(src / "masks" / "img000.png"))
    labels = read_mask(src / "masks" / "img000.png", cfg)
    assert labels.dtype == np.uint8
    assert np.array_equal(labels[stored == 1], np.zeros((stored == 1).sum(), np.uint8))
    assert (labels[stored == 3] == 2).all() and (labels[stored == 255] == 255).all()
    # Stored 0 (none in these masks): ignored. The run dumps record the offset.
    assert map_labels(np.array([[0, 1, 2, 3, 255]], np.uint8), cfg).tolist() == [
        [255, 0, 1, 2, 255]
    ]
    assert (
        load_recipe("supervised", "offset", config_dir).to_dict()["dataset"]["label_offset"] == -1
    )
    # Stored 4 is class 3, which the dataset does not have: the source check says so.
    mask = stored.copy()
    mask[0, 0] = 4
    Image.fromarray(mask).save(src / "masks" / "img000.png")
    with pytest.raises(DataError, match=r"masks/img000\.png \(values \[3\]\)"):
        new_dataset(
            "offset",
            classes=["back", "square", "disc"],
            config_dir=config_dir,
            images=src / "images",
            masks=src / "masks",
            base="toy",
            label_offset=-1,
            force=True,
            progress=False,
        )


def test_existing_datasets_read_masks_as_before(config_dir):
    """ADE20K's reduce_zero_label through the general mapping: the upstream formula, byte for
    byte; datasets without an offset get their array back untouched, and their recipes' dumps
    (and so the runs' fingerprints) hold no new keys."""
    ade = load_dataset_config("ade20k", config_dir)
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    upstream = values.astype(np.int16) - 1
    upstream[(upstream == -1) | (upstream == 254)] = 255
    mapped = map_labels(values, ade)
    assert mapped.dtype == np.uint8 and mapped.tobytes() == upstream.astype(np.uint8).tobytes()
    for name in ("toy", "pascal", "coco", "cityscapes"):
        cfg = load_dataset_config(name, config_dir)
        assert map_labels(values, cfg) is values
        dumped = load_recipe("supervised", name, config_dir).to_dict()["dataset"]
        assert not {"label_offset", "ignore_values", "source"} & set(dumped)


def test_dataset_new_does_not_import_torch(tmp_path, config_dir):
    src = fabricate(tmp_path / "src", labelled=6, unlabelled=0)
    script = textwrap.dedent(f"""
        import sys
        from semivl.cli import main
        code = main(["dataset", "new", "quick", "--images", {str(src / "images")!r},
                     "--masks", {str(src / "masks")!r}, "--classes", "a,b,c", "--base", "toy",
                     "--config-dir", {str(config_dir)!r}, "--no-progress"])
        print(code, "torch" in sys.modules)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=ENV
    )
    assert proc.stdout.strip().splitlines()[-1] == "0 False"


# --------------------------------------------------------------------------------------------
# The whole DAG
# --------------------------------------------------------------------------------------------

# What the scaffolded recipes get appended (only what differs: a shorter schedule).
SHORT = {
    "supervised": "train: {iters: 30, eval_every_iters: 15}\n",
    "unimatch": "train: {epochs: 5}\n",
    "semivl": "train: {epochs: 5}\n",
}


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_snakemake_runs_the_whole_dag_on_a_custom_dataset(tmp_path):
    """Fabricated shapes (3 classes, 24 labelled + 6 mask-less images, 48x48), scaffolded on
    the toy's recipes in a copy of the repository; `snakemake all` on the scaffolded grid
    (supervised, UniMatch, SemiVL on 8 labels, seed 0): tables.md has the dataset's rows."""
    started = time.monotonic()
    src = fabricate(tmp_path / "src", labelled=30, unlabelled=6)
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copy2(REPO / "Snakefile", root / "Snakefile")
    for name in ("workflow", "config", "semivl", "baselines"):
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache")
        )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _run(
        [
            str(BIN / "semivl"),
            "dataset",
            "new",
            "shapes",
            "--images",
            str(src / "images"),
            "--masks",
            str(src / "masks"),
            "--classes",
            ",".join(CLASSES),
            "--base",
            "toy",
            "--splits",
            "8",
            "--no-progress",
        ],
        root,
    )
    for method, override in SHORT.items():
        with open(root / "config" / "recipes" / method / "shapes.yaml", "a") as handle:
            handle.write(override)
    (root / "config" / "pretrain" / "tiny_clip_toy.yaml").write_text(TINY_PRETRAIN)
    _run(
        [str(BIN / "snakemake"), "--cores", "2", "all", "--configfile", "config/grids/shapes.yaml"],
        root,
    )
    tables = (root / "results" / "tables.md").read_text()
    shutil.copy2(root / "results" / "tables.md", tmp_path / "tables.md")
    print(f"\nwall time of the whole DAG: {time.monotonic() - started:.0f} s")
    print("\n".join(line for line in tables.splitlines() if line.startswith("| ")))
    assert "shapes" in tables and "| method | 8 |" in tables
    for method in ("| Supervised", "| UniMatch", "| SemiVL"):
        row = next(line for line in tables.splitlines() if line.startswith(method))
        cell = row.strip("|").split("|")[1].strip()
        assert re.fullmatch(r"\d+\.\d \(1\)", cell), row
    assert "↳ published" not in tables  # a dataset of your own has no published numbers
    assert (root / "data" / "shapes" / "prepared.json").is_file()
    unlabelled = (root / "data" / "splits" / "shapes" / "8" / "unlabeled.txt").read_text()
    assert unlabelled.count(" None") == 6
    assert (root / "results" / "figures" / "shapes" / "qualitative.png").is_file()
