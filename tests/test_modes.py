"""Appearance modes (the toy's looks): per-look accuracy and the tables.md section."""

import json

import numpy as np
import pandas as pd
import pytest

from semivl.config import AppearanceModes, ConfigError, DatasetConfig, build_config
from semivl.data.modes import count_mode_hits, per_mode_accuracy, split_modes
from semivl.report.modes_table import modes_section

MODES = AppearanceModes(dir="SegmentationMode", looks={"cat": ["red", "blue"], "dog": ["green"]})
CFG = DatasetConfig(
    name="t",
    layout="voc",
    num_classes=3,
    class_names=["background", "cat", "dog"],
    appearance_modes=MODES,
)


def test_a_hand_example_counts_each_looks_pixels_predicted_as_its_class():
    mode_map = np.array([[0, 1, 1, 2], [2, 3, 3, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 2, 1], [0, 2, 0, 1]])
    hits, totals = np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    count_mode_hits(pred, mode_map, CFG, hits, totals)
    # look 1 (cat red): 1 of 2 right; look 2 (cat blue): 1 of 2; look 3 (dog green): 1 of 2
    assert totals.tolist() == [2, 2, 2] and hits.tolist() == [1, 1, 1]
    scores = per_mode_accuracy(hits, np.array([2, 2, 0]), MODES)
    assert scores == {"cat/0 red": 50.0, "cat/1 blue": 50.0, "dog/0 green": None}
    with pytest.raises(ValueError, match="original image size"):
        count_mode_hits(pred[:, :2], mode_map, CFG, hits, totals)


def test_split_modes_names_the_looks_of_the_given_images_and_a_missing_map(tmp_path):
    from PIL import Image

    (tmp_path / "SegmentationMode").mkdir()
    Image.fromarray(np.array([[0, 3], [255, 3]], dtype=np.uint8)).save(
        tmp_path / "SegmentationMode" / "a.png"
    )
    assert split_modes(tmp_path, ["JPEGImages/a.jpg"], MODES) == ["dog/0 green"]
    with pytest.raises(FileNotFoundError, match=r"b.png.*--force"):
        split_modes(tmp_path, ["JPEGImages/b.jpg"], MODES)


def test_the_config_rejects_looks_of_an_unknown_class():
    data = {
        "name": "t",
        "layout": "voc",
        "num_classes": 2,
        "class_names": ["background", "cat"],
        "appearance_modes": {"dir": "M", "looks": {"cow": ["red"]}},
    }
    with pytest.raises(ConfigError, match=r"toy.appearance_modes.looks.cow"):
        build_config(DatasetConfig, data, "toy")


def _row(method, seed, split, n, acc, shown):
    return {
        "dataset": "t",
        "split": split,
        "num_labeled": n,
        "method": method,
        "seed": seed,
        "miou": 50.0,
        "status": "ok",
        "per_mode_accuracy": json.dumps(acc),
        "labelled_modes": json.dumps(shown),
    }


def test_the_section_splits_looks_into_shown_and_missed_by_the_labels():
    looks = ["cat/0 red", "cat/1 blue", "dog/0 green"]
    rows = [
        _row(
            "supervised",
            s,
            "2",
            2,
            {"cat/0 red": 90.0 + s, "cat/1 blue": 10.0, "dog/0 green": 80.0},
            ["cat/0 red", "dog/0 green"],
        )
        for s in (0, 1)
    ]
    rows += [_row("semivl", 0, "2", 2, {k: 70.0 for k in looks}, ["cat/0 red", "dog/0 green"])]
    rows += [_row("supervised", 0, "8", 8, {k: 95.0 for k in looks}, looks)]
    zero_shot = {"per_mode_accuracy": {"cat/0 red": 60.0, "cat/1 blue": 40.0, "dog/0 green": None}}
    text = "\n".join(modes_section(pd.DataFrame(rows), zero_shot))
    assert "### Accuracy per look (appearance mode), 2 labels" in text
    assert "| cat/0 red | yes | 60.0 | 90.5 | 70.0 |" in text  # mean over the two seeds
    assert "| cat/1 blue | no | 40.0 | 10.0 | 70.0 |" in text
    assert "| dog/0 green | yes | – | 80.0 | 70.0 |" in text
    assert "| 2 | 2 shown | 60.0 | 85.2 | 70.0 |" in text
    assert "| 2 | 1 missed | 40.0 | 10.0 | 70.0 |" in text
    assert "| 8 | 3 shown | 50.0 | 95.0 | – |" in text
    assert "missed" not in text.split("| 8 |")[-1]


def test_no_section_without_mode_data():
    frame = pd.DataFrame(
        [
            {
                "dataset": "t",
                "split": "2",
                "num_labeled": 2,
                "method": "semivl",
                "seed": 0,
                "miou": 1.0,
                "per_mode_accuracy": None,
            }
        ]
    )
    assert modes_section(frame, None) == []
