"""Real-dataset acquisition against fixture archives on a local HTTP server: download,
prepare, check and official/generated splits, and the faults of each step."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from dataset_fixtures import (
    COMMIT,
    MAKERS,
    coco_instances,
    make_ade20k,
    make_pascal,
    served_files,
    write_config,
)
from http_fixture import FileServer
from PIL import Image

from semivl import download as download_module
from semivl.cli import main
from semivl.config import load_dataset_config
from semivl.data.archives import fetch_archive
from semivl.data.dataset import DataError
from semivl.data.make_splits import generated_split, write_splits
from semivl.data.prepare import prepare_dataset
from semivl.data.prepare.coco import instance_mask
from semivl.data.splits import SplitFileError, read_split_file
from semivl.download import DownloadError
from semivl.lockfile import read_lock

CREDENTIALS = ("alice", "s3cret")


@pytest.fixture
def no_credentials_file(tmp_path, monkeypatch):
    """Point cityscapesscripts' credentials location into tmp (never the user's own)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CITYSCAPES_USERNAME", raising=False)
    monkeypatch.delenv("CITYSCAPES_PASSWORD", raising=False)


def _serve(fixture, **kwargs):
    if fixture.name == "cityscapes":
        kwargs.setdefault("login", CREDENTIALS)
        kwargs.setdefault("protected", ("file-handling", "md5-sum"))
    return FileServer(served_files(fixture), **kwargs)


def _run(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_download_prepare_check_split_cycle(
    name, tmp_path, monkeypatch, capsys, no_credentials_file
):
    fixture = MAKERS[name]()
    monkeypatch.setenv("CITYSCAPES_USERNAME", CREDENTIALS[0])
    monkeypatch.setenv("CITYSCAPES_PASSWORD", CREDENTIALS[1])
    data, archives = tmp_path / "data" / name, tmp_path / "archives"
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        assert (
            _run(
                "data",
                "prepare",
                name,
                "--out",
                data,
                "--archive-dir",
                archives,
                "--config-dir",
                config,
                "--no-progress",
            )
            == 0
        )
        assert (
            _run(
                "splits",
                name,
                "--data-root",
                data,
                "--out-dir",
                tmp_path / "splits",
                "--config-dir",
                config,
                "--cache-dir",
                tmp_path / "cache",
            )
            == 0
        )
    out = capsys.readouterr().out
    assert "OK" in out and f"prepared {name}" in out
    record = json.loads((data / "prepared.json").read_text())
    assert record["pairs"] == fixture.counts
    cfg = load_dataset_config(name, config)
    lock = read_lock(config / "data.lock.yaml")
    for key in ("masks", "scene_parsing", "images", "fine", "images_train"):
        if key in cfg.archives and cfg.archives[key].file in record["archives"]:
            file = cfg.archives[key].file
            assert lock[f"{name}/{file}"] == hashlib.sha256(fixture.archives[file]).hexdigest()
    # The official lists are copied (normalised to end in a newline) after verification.
    for path, body in fixture.split_files.items():
        written = (tmp_path / "splits" / path).read_text()
        assert written.splitlines() == body.decode().splitlines()
    assert (
        _run("data", "check", name, "--data-root", data, "--config-dir", config, "--no-progress")
        == 0
    )
    # A second prepare finds the marker and downloads nothing.
    assert (
        _run(
            "data",
            "prepare",
            name,
            "--out",
            data,
            "--archive-dir",
            archives,
            "--config-dir",
            config,
            "--no-progress",
        )
        == 0
    )
    assert "already prepared" in capsys.readouterr().out


def test_pascal_layout_takes_masks_from_the_preprocessed_zip(tmp_path):
    fixture = make_pascal()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("pascal", tmp_path / "pascal", tmp_path / "a", config, progress=False)
    masks = sorted(p.name for p in (out / "SegmentationClass").iterdir())
    assert len(masks) == 18  # 14 train_aug + 4 val, not the tar's 12 palette masks
    assert len(list((out / "JPEGImages").iterdir())) == 20
    assert (out / "ImageSets" / "Segmentation" / "val.txt").is_file()
    assert not (out / "Annotations").exists()


def test_cityscapes_train_ids_come_from_the_polygons(tmp_path, monkeypatch, no_credentials_file):
    fixture = MAKERS["cityscapes"]()
    monkeypatch.setenv("CITYSCAPES_USERNAME", CREDENTIALS[0])
    monkeypatch.setenv("CITYSCAPES_PASSWORD", CREDENTIALS[1])
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("cityscapes", tmp_path / "cs", tmp_path / "a", config, progress=False)
    mask = np.asarray(
        Image.open(next((out / "gtFine" / "val").glob("*/*_gtFine_labelTrainIds.png")))
    )
    assert mask[12, 16] == 0  # road
    assert mask[4, 5] == 13  # car
    assert mask[0, 20] == 255  # unlabelled
    assert not (out / "leftImg8bit" / "test").exists()


def test_cityscapes_credentials_file_is_read_and_kept(tmp_path, no_credentials_file):
    fixture = MAKERS["cityscapes"]()
    from semivl.data.cityscapes_site import credentials_file

    path = credentials_file()
    assert str(tmp_path) in str(path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"username": "alice", "password": "wrong"}))
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        cfg = load_dataset_config("cityscapes", config)
        with pytest.raises(DownloadError) as err:
            fetch_archive(cfg, "fine", tmp_path / "a", config, progress=False)
        message = str(err.value)
        assert "refused for user 'alice'" in message
        assert "CITYSCAPES_USERNAME" in message and str(path) in message
        assert path.exists()  # unlike csDownload, a failed login does not delete the file
        path.write_text(json.dumps({"username": "alice", "password": "s3cret"}))
        assert fetch_archive(cfg, "fine", tmp_path / "a", config, progress=False).is_file()


def test_cityscapes_without_credentials_says_where_they_go(tmp_path, no_credentials_file):
    fixture = MAKERS["cityscapes"]()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        cfg = load_dataset_config("cityscapes", config)
        with pytest.raises(DownloadError, match="needs a login and none was found"):
            fetch_archive(cfg, "images", tmp_path / "a", config, progress=False)


def test_coco_masks_from_instances(tmp_path):
    fixture = MAKERS["coco"]()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        path = config / "datasets" / "coco.yaml"
        path.write_text(
            path.read_text().replace("masks_from: preprocessed", "masks_from: instances")
        )
        out = prepare_dataset("coco", tmp_path / "coco", tmp_path / "a", config, progress=False)
    assert "ground_truth_coco.zip" not in {p.name for p in (tmp_path / "a").iterdir()}
    mask = np.asarray(Image.open(out / "masks" / "000000000009.png"))
    assert mask.shape == (16, 20)
    assert mask[5, 4] == 1  # category 1 -> class 1
    assert mask[5, 13] == 80  # category 90 -> class 80 (sparse ids, sorted)
    assert mask[5, 9] == 255  # two instances overlap
    assert mask[12, 1] == 255  # crowd region
    assert mask[15, 19] == 0  # background


def test_instance_mask_maps_sparse_category_ids():
    data = coco_instances([(1, 20, 16)])
    class_of = {c: i + 1 for i, c in enumerate(sorted(c["id"] for c in data["categories"]))}
    mask = instance_mask(data["annotations"], 16, 20, class_of)
    assert set(np.unique(mask)) == {0, 1, 80, 255}


def test_resume_after_the_server_drops_the_connection(tmp_path):
    fixture = make_ade20k()
    body = fixture.archives["ADEChallengeData2016.zip"]
    with _serve(fixture, cut_first_after=len(body) // 3) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        cfg = load_dataset_config("ade20k", config)
        path = fetch_archive(
            cfg, "scene_parsing", tmp_path / "a", config, progress=False, backoff_s=0
        )
    assert path.read_bytes() == body
    ranges = [r["range"] for r in server.requests if "archives/" in r["path"]]
    assert ranges[0] is None
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(body) // 3  # resumed from what arrived, not restarted


def test_checksum_mismatch_keeps_the_file_aside(tmp_path):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        path = config / "datasets" / "ade20k.yaml"
        good = hashlib.md5(fixture.archives["ADEChallengeData2016.zip"]).hexdigest()
        path.write_text(path.read_text().replace(good, "f" * 32))
        with pytest.raises(DownloadError) as err:
            prepare_dataset("ade20k", tmp_path / "ade", tmp_path / "a", config, progress=False)
    message = str(err.value)
    assert "f" * 32 in message and good in message
    aside = tmp_path / "a" / "ADEChallengeData2016.zip.checksum-mismatch"
    assert aside.is_file() and str(aside) in message
    assert not (tmp_path / "a" / "ADEChallengeData2016.zip").exists()
    assert not (tmp_path / "ade").exists()
    assert read_lock(config / "data.lock.yaml") == {}


def test_truncated_archive_fails_before_extraction_and_is_not_pinned(tmp_path):
    fixture = make_pascal()
    zip_body = fixture.archives["ground_truth_voc.zip"]
    fixture.archives["ground_truth_voc.zip"] = zip_body[: len(zip_body) // 2]
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        with pytest.raises(DownloadError, match="not a readable archive"):
            prepare_dataset("pascal", tmp_path / "pascal", tmp_path / "a", config, progress=False)
    assert (tmp_path / "a" / "ground_truth_voc.zip.corrupt").is_file()
    assert not (tmp_path / "a" / "ground_truth_voc.zip").exists()
    assert not (tmp_path / "pascal").exists()
    assert "pascal/ground_truth_voc.zip" not in read_lock(config / "data.lock.yaml")


def test_pinned_sha256_is_enforced_on_a_changed_upstream_file(tmp_path):
    fixture = make_pascal()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        (config / "data.lock.yaml").write_text("pascal/ground_truth_voc.zip: " + "a" * 64 + "\n")
        cfg = load_dataset_config("pascal", config)
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            fetch_archive(cfg, "masks", tmp_path / "a", config, progress=False)


def test_not_enough_disk_fails_before_downloading(tmp_path, monkeypatch):
    fixture = make_ade20k()
    monkeypatch.setattr(
        download_module.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10, 10, 0)
    )
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        cfg = load_dataset_config("ade20k", config)
        with pytest.raises(DownloadError, match="GB free"):
            fetch_archive(cfg, "scene_parsing", tmp_path / "a", config, progress=False)
    assert not list((tmp_path / "a").glob("*.zip"))


def test_interrupted_prepare_leaves_no_folder(tmp_path, monkeypatch):
    fixture = make_ade20k()
    import semivl.data.prepare.ade20k as ade

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        monkeypatch.setattr(ade, "build", crash)
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(
                "ade20k", tmp_path / "data" / "ade20k", tmp_path / "a", config, progress=False
            )
    assert list((tmp_path / "data").iterdir()) == []
    assert (tmp_path / "a" / "ADEChallengeData2016.zip").is_file()  # kept for the rerun


def test_failed_check_keeps_nothing_and_reports_the_problem(tmp_path):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        path = config / "datasets" / "ade20k.yaml"
        path.write_text(path.read_text().replace("train: 16", "train: 20210"))
        with pytest.raises(DataError, match="train: 16 pairs, expected 20210"):
            prepare_dataset(
                "ade20k", tmp_path / "data" / "ade20k", tmp_path / "a", config, progress=False
            )
    assert list((tmp_path / "data").iterdir()) == []


def test_check_reports_bad_masks(tmp_path, capsys):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("ade20k", tmp_path / "ade", tmp_path / "a", config, progress=False)
    annotations = out / "annotations" / "validation"
    Image.fromarray(np.full((18, 24), 200, np.uint8)).save(annotations / "ADE_val_00000001.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(annotations / "ADE_val_00000002.png")
    (annotations / "ADE_val_00000003.png").unlink()
    assert (
        _run("data", "check", "ade20k", "--data-root", out, "--config-dir", config, "--no-progress")
        == 2
    )
    captured = capsys.readouterr()
    assert "1 missing masks" in captured.err and "ADE_val_00000003.png" in captured.err
    assert "1 mask size differs" in captured.err and "5x5 vs image 24x18" in captured.err
    assert "1 mask values out of range" in captured.err and "[199]" in captured.err
    assert "PROBLEMS" in captured.out


def test_existing_folder_is_adopted_only_if_it_checks(tmp_path):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("ade20k", tmp_path / "ade", tmp_path / "a", config, progress=False)
        (out / "prepared.json").unlink()
        prepare_dataset("ade20k", out, tmp_path / "unused", config, progress=False)
        assert "existing folder" in (out / "prepared.json").read_text()
        (out / "prepared.json").unlink()
        next((out / "images" / "training").iterdir()).unlink()
        with pytest.raises(DataError, match="not prepared by semivl"):
            prepare_dataset("ade20k", out, tmp_path / "unused", config, progress=False)
    assert not (out / "prepared.json").exists()
    assert not (tmp_path / "unused").exists()


def _prepared_ade(tmp_path):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("ade20k", tmp_path / "ade", tmp_path / "a", config, progress=False)
    return fixture, config, out


def test_generated_splits_are_deterministic_nested_and_match_semivl(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    cfg = load_dataset_config("ade20k", config)
    small = generated_split(cfg, root, 2, seed=0)
    large = generated_split(cfg, root, 4, seed=0)
    assert generated_split(cfg, root, 2, seed=0) == small
    assert large[0][:2] == small[0]  # nested prefixes
    assert not set(small[0]) & set(small[1])
    assert len(small[0]) + len(small[1]) == fixture.counts["train"]
    assert generated_split(cfg, root, 2, seed=1)[0] != small[0]
    # Seed 0 reproduces gen_ade_splits.py (the fixture's "official" files use its algorithm).
    for split, n in fixture.splits.items():
        labeled, unlabeled = generated_split(cfg, root, n, seed=0)
        official = fixture.split_files[f"{split}/labeled.txt"].decode().splitlines()
        assert [f"{a} {b}" for a, b in labeled] == official
        assert [f"{a} {b}" for a, b in unlabeled] == fixture.split_files[
            f"{split}/unlabeled.txt"
        ].decode().splitlines()


def test_generated_voc_split_draws_labels_from_the_high_quality_set(tmp_path):
    fixture = make_pascal()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        root = prepare_dataset("pascal", tmp_path / "p", tmp_path / "a", config, progress=False)
    cfg = load_dataset_config("pascal", config)
    labeled, unlabeled = generated_split(cfg, root, 4, seed=3)
    assert all("2007_" in image for image, _ in labeled)
    assert len(unlabeled) == 10 and len({*labeled, *unlabeled}) == 14
    write_splits(
        cfg,
        root,
        tmp_path / "s",
        splits=["4"],
        val=True,
        source="generated",
        seed=3,
        cache_dir=tmp_path / "c",
        config_dir=config,
    )
    assert read_split_file(tmp_path / "s" / "4" / "labeled.txt") == labeled
    assert len(read_split_file(tmp_path / "s" / "val.txt")) == 4


def _point_splits_at(config: Path, name: str, url: str) -> None:
    path = config / "datasets" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["official_splits"]["url"] = url + "/{repo}/{commit}/{folder}/{file}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _write_official(config, root, out, splits, val, cache):
    write_splits(
        load_dataset_config("ade20k", config),
        root,
        out,
        splits=splits,
        val=val,
        source="official",
        seed=0,
        cache_dir=cache,
        config_dir=config,
    )


def test_official_split_with_a_wrong_count_is_rejected(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    path = config / "datasets" / "ade20k.yaml"
    data = yaml.safe_load(path.read_text())
    data["splits"]["1_8"] = 3
    path.write_text(yaml.safe_dump(data))
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        with pytest.raises(SplitFileError, match="2 lines, expected 3"):
            _write_official(config, root, tmp_path / "s", ["1_8"], False, tmp_path / "c")
    assert not (tmp_path / "s" / "1_8" / "labeled.txt").exists()


def test_official_split_checksum_is_pinned_then_enforced(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        _write_official(config, root, tmp_path / "s", ["1_8"], True, tmp_path / "c")
        lock = read_lock(config / "data.lock.yaml")
        key = f"ade20k/splits/{COMMIT[:12]}/1_8/labeled.txt"
        assert lock[key] == hashlib.sha256(fixture.split_files["1_8/labeled.txt"]).hexdigest()
        # The upstream file changes: a fresh cache refuses it.
        server.files[f"upstream/{COMMIT}/splits/ade20k/1_8/labeled.txt"] = b"x y"
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            _write_official(config, root, tmp_path / "s2", ["1_8"], False, tmp_path / "c2")


def test_official_val_naming_missing_images_is_rejected(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    shutil.rmtree(root / "images" / "validation")
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        with pytest.raises(SplitFileError, match="4 file"):
            _write_official(config, root, tmp_path / "s", [], True, tmp_path / "c")
    assert not (tmp_path / "s" / "val.txt").exists()


def test_generated_ade20k_splits_reproduce_semivl_byte_for_byte(repo):
    """Seed 0 on ADE20K's 20,210 training names gives SemiVL's published lists: their sha256
    (pinned in config/datasets/ade20k.yaml) matches, written as gen_ade_splits.py writes them
    ('\\n'-joined, no final newline)."""
    from semivl.data.make_splits import nested_split

    cfg = load_dataset_config("ade20k", repo / "config")

    def pairs(prefix, folder, count):
        return [
            (f"images/{folder}/{prefix}_{i:08d}.jpg", f"annotations/{folder}/{prefix}_{i:08d}.png")
            for i in range(1, count + 1)
        ]

    def sha(lines):
        return hashlib.sha256("\n".join(f"{a} {b}" for a, b in lines).encode()).hexdigest()

    train = pairs("ADE_train", "training", cfg.expected_counts["train"])
    pinned = cfg.official_splits.sha256
    for split, n in cfg.splits.items():
        labeled, unlabeled = nested_split(train, train, n, seed=0)
        assert sha(labeled) == pinned[f"{split}/labeled.txt"], split
        assert sha(unlabeled) == pinned[f"{split}/unlabeled.txt"], split
    assert sha(pairs("ADE_val", "validation", cfg.expected_counts["val"])) == pinned["val.txt"]


def test_official_split_sharing_an_image_with_val_is_rejected(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    unlabeled = fixture.split_files["1_8/unlabeled.txt"].decode().splitlines()
    val_line = fixture.split_files["val.txt"].decode().splitlines()[0]
    fixture.split_files["1_8/unlabeled.txt"] = "\n".join([val_line, *unlabeled[1:]]).encode()
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        with pytest.raises(
            SplitFileError,
            match=r"1_8/unlabeled.txt: 1 image\(s\) are also in "
            r"the val list, e.g. images/validation/",
        ):
            _write_official(config, root, tmp_path / "s", ["1_8"], False, tmp_path / "c")
    assert not (tmp_path / "s" / "1_8").exists()


def test_official_split_with_a_repeated_line_is_rejected(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    lines = fixture.split_files["1_8/unlabeled.txt"].decode().splitlines()
    fixture.split_files["1_8/unlabeled.txt"] = "\n".join([lines[0], *lines[:-1]]).encode()
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        with pytest.raises(
            SplitFileError, match="unlabeled.txt:2: image .* already named on line 1"
        ):
            _write_official(config, root, tmp_path / "s", ["1_8"], False, tmp_path / "c")


def test_cached_official_list_is_verified_again_when_used(tmp_path):
    fixture, config, root = _prepared_ade(tmp_path)
    with FileServer(served_files(fixture)) as server:
        _point_splits_at(config, "ade20k", server.url)
        _write_official(config, root, tmp_path / "s", ["1_8"], True, tmp_path / "c")
    cached = tmp_path / "c" / "ade20k" / COMMIT / "1_8" / "labeled.txt"
    lines = cached.read_text().splitlines()
    cached.write_text("\n".join(reversed(lines)))  # same lines, same count: still wrong
    with pytest.raises(
        SplitFileError,
        match=r"labeled.txt: sha256 .* does not match the "
        r"pinned .*changed or damaged\. Delete it",
    ):
        _write_official(config, root, tmp_path / "s2", ["1_8"], False, tmp_path / "c")
    assert cached.read_text() == "\n".join(reversed(lines))  # kept for inspection
    assert not (tmp_path / "s2").exists()


def test_check_reports_an_unreadable_image_as_unreadable(tmp_path, capsys):
    fixture = make_ade20k()
    with _serve(fixture) as server:
        config = write_config(fixture, tmp_path / "config", server.url)
        out = prepare_dataset("ade20k", tmp_path / "ade", tmp_path / "a", config, progress=False)
    image = out / "images" / "validation" / "ADE_val_00000001.jpg"
    image.write_bytes(image.read_bytes()[:40])  # truncated JPEG
    assert (
        _run("data", "check", "ade20k", "--data-root", out, "--config-dir", config, "--no-progress")
        == 2
    )
    captured = capsys.readouterr()
    assert "1 unreadable images, e.g. images/validation/ADE_val_00000001.jpg" in captured.err
    assert "out of range" not in captured.err
