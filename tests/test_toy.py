import hashlib

import numpy as np
import pytest
from PIL import Image

from semivl.data.prepare.toy import CLASS_NAMES, ToySpec, generate_toy

SMALL = ToySpec(num_train=8, num_val=4)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path):
    a = generate_toy(tmp_path / "a", seed=1, spec=SMALL)
    b = generate_toy(tmp_path / "b", seed=1, spec=SMALL)
    c = generate_toy(tmp_path / "c", seed=2, spec=SMALL)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_voc_layout_and_masks(tmp_path):
    root = generate_toy(tmp_path / "toy", seed=0, spec=ToySpec(num_train=30, num_val=10))
    ids = (root / "ImageSets/Segmentation/train.txt").read_text().split()
    assert len(ids) == 30
    assert len((root / "ImageSets/Segmentation/val.txt").read_text().split()) == 10
    seen = set()
    for sample_id in ids:
        mask_img = Image.open(root / "SegmentationClass" / f"{sample_id}.png")
        assert mask_img.mode == "P"
        image = Image.open(root / "JPEGImages" / f"{sample_id}.jpg")
        assert image.mode == "RGB" and image.size == mask_img.size
        values = set(np.unique(np.asarray(mask_img)).tolist())
        assert values <= set(range(len(CLASS_NAMES))) | {255}
        assert 255 in values  # object boundaries are ignored, as in VOC
        seen |= values
    assert set(range(len(CLASS_NAMES))) <= seen  # background and all four object classes


def test_default_size_under_10mb(tmp_path):
    root = generate_toy(tmp_path / "toy", seed=0)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


def test_existing_output_kept_without_force(tmp_path):
    root = generate_toy(tmp_path / "toy", seed=0, spec=SMALL)
    before = _digest(root)
    with pytest.raises(FileExistsError, match="--force"):
        generate_toy(root, seed=5, spec=SMALL)
    assert _digest(root) == before
    generate_toy(root, seed=5, spec=SMALL, force=True)
    assert _digest(root) != before
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]  # no temporary folders left
