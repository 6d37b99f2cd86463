from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semivl.config import AugmentConfig, load_dataset_config
from semivl.data.dataset import DataError, SegmentationDataset, read_mask, require_data_root
from semivl.data.make_splits import nested_split
from semivl.data.sampling import SeededSampler
from semivl.data.splits import (
    SplitFileError,
    check_pairs_exist,
    read_split_file,
)
from semivl.data.transforms import (
    PAD_LABELED,
    PAD_UNLABELED,
    mmseg_rescale_size,
    pad_and_crop,
    resize_mmseg,
    resize_unimatch,
    weak_augment,
)


def test_split_file_without_final_newline(tmp_path):
    path = tmp_path / "labeled.txt"
    path.write_text(
        "JPEGImages/a.jpg SegmentationClass/a.png\r\n\nJPEGImages/b.jpg SegmentationClass/b.png"
    )
    assert read_split_file(path) == [
        ("JPEGImages/a.jpg", "SegmentationClass/a.png"),
        ("JPEGImages/b.jpg", "SegmentationClass/b.png"),
    ]


def test_malformed_split_line_names_line(tmp_path):
    path = tmp_path / "labeled.txt"
    path.write_text("a.jpg a.png\nonly_one_field\n")
    with pytest.raises(SplitFileError, match=r"labeled.txt:2: expected"):
        read_split_file(path)


def test_missing_files_reported_with_count_and_names(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    pairs = [("a.jpg", "a.png")] + [(f"m{i}.jpg", f"m{i}.png") for i in range(4)]
    with pytest.raises(SplitFileError) as err:
        check_pairs_exist(tmp_path, pairs, tmp_path / "split.txt")
    assert "8 file(s)" in str(err.value) and "m0.jpg, m0.png" in str(err.value)
    assert "(and 3 more)" in str(err.value)


def test_nested_splits_are_prefixes():
    ids = [(f"id{i:03d}.jpg", f"id{i:03d}.png") for i in range(50)]
    small, rest_small = nested_split(ids, ids, 5, seed=0)
    large, rest_large = nested_split(list(reversed(ids)), ids, 20, seed=0)
    assert large[:5] == small
    assert sorted(small + rest_small) == sorted(ids) and not set(small) & set(rest_small)
    assert len(rest_large) == 30
    with pytest.raises(SplitFileError):
        nested_split(ids, ids, 50, seed=0)


def test_nested_splits_draw_from_the_pool_and_append_the_rest():
    train = [(f"t{i:02d}.jpg", f"t{i:02d}.png") for i in range(12)]
    labeled, unlabeled = nested_split(train[:6], train, 3, seed=1)
    assert set(labeled) <= set(train[:6])
    assert unlabeled[3:] == train[6:]  # outside the pool, sorted, after the pool's rest
    assert sorted(labeled + unlabeled) == train


def test_missing_data_root_says_how_to_create(tmp_path):
    with pytest.raises(DataError, match=r"semivl data prepare toy --out .*nowhere"):
        require_data_root(tmp_path / "nowhere", "toy")


def test_mask_value_out_of_range(tmp_path, repo):
    cfg = load_dataset_config("toy", repo / "config")
    arr = np.zeros((8, 8), dtype=np.uint8)
    arr[2, 3] = 7
    path = tmp_path / "bad.png"
    Image.fromarray(arr).save(path)
    with pytest.raises(DataError, match=r"bad.png: mask value 7 is outside \[0, 5\)"):
        read_mask(path, cfg)
    arr[2, 3] = 255
    Image.fromarray(arr).save(path)
    assert read_mask(path, cfg).max() == 255


def test_pad_values_labeled_and_unlabeled():
    img = Image.new("RGB", (20, 10), (9, 9, 9))
    mask = Image.fromarray(np.ones((10, 20), dtype=np.uint8))
    rng = np.random.default_rng(0)
    for pad in (PAD_LABELED, PAD_UNLABELED):
        out_img, out_mask = pad_and_crop(img, mask, 32, rng, pad)
        m, i = np.asarray(out_mask), np.asarray(out_img)
        assert m.shape == (32, 32) and i.shape == (32, 32, 3)
        assert (m[:10, :20] == 1).all() and (m[10:] == pad).all() and (m[:, 20:] == pad).all()
        assert (i[10:] == 0).all() and (i[:10, :20] == 9).all()


def test_resize_ranges():
    img, mask = Image.new("RGB", (100, 50)), Image.new("L", (100, 50))
    rng = np.random.default_rng(0)
    for _ in range(50):
        out, out_mask = resize_unimatch(img, mask, rng, (0.5, 2.0))
        assert 50 <= out.size[0] <= 200 and out.size == out_mask.size
        assert abs(out.size[0] / out.size[1] - 2.0) < 0.1
    # mmseg keep-ratio rescale to (2048, 512): the short side becomes 512 for a 500x375 image
    assert mmseg_rescale_size(500, 375, (2048, 512)) == (683, 512)


def test_mmseg_resize_samples_masks_on_opencvs_grid():
    """``resize: mmseg`` is mmcv's OpenCV resize: INTER_NEAREST takes source pixel
    floor(x * src / dst), not PIL NEAREST's pixel-centred floor((x + 0.5) * src / dst)."""
    mask = Image.fromarray(np.tile(np.arange(8, dtype=np.uint8), (4, 1)))  # 8 x 4, column ids
    img = Image.new("RGB", mask.size)
    # (8, 4) x 0.5 fits the 8 x 4 image to 4 x 2: every second column from the first
    _, out = resize_mmseg(img, mask, np.random.default_rng(0), (8, 4), (0.5, 0.5))
    out = np.asarray(out)
    assert out.shape == (2, 4) and out[0].tolist() == [0, 2, 4, 6]
    assert np.asarray(mask.resize((4, 2), Image.NEAREST))[0].tolist() == [1, 3, 5, 7]


def test_weak_augment_shapes_deterministic():
    cfg = AugmentConfig(crop_size=24)
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8))
    mask = Image.fromarray(np.random.default_rng(2).integers(0, 5, (30, 40), dtype=np.uint8))
    a = weak_augment(img, mask, cfg, np.random.default_rng(7))
    b = weak_augment(img, mask, cfg, np.random.default_rng(7))
    assert a[0].size == (24, 24) and a[1].size == (24, 24)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))


def test_dataset_items(toy_root, repo):
    cfg = load_dataset_config("toy", repo / "config")
    aug = AugmentConfig(crop_size=32)
    splits = toy_root.parent / "splits"
    train = SegmentationDataset(toy_root, splits / "6" / "labeled.txt", cfg, "train", aug)
    image, mask = train[(0, (0, 0, 0, 0))]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert mask.shape == (32, 32) and mask.dtype == torch.int64
    assert torch.equal(train[(0, (0, 0, 0, 0))][0], image)  # same seed, same crop
    val = SegmentationDataset(toy_root, splits / "val.txt", cfg, "val", aug)
    image, mask, name = val[0]
    assert image.shape[-2:] == mask.shape and name.startswith("JPEGImages/")


def test_sampler_resume_and_sharding():
    sampler = SeededSampler(10, seed=3, length=14)
    sampler.set_epoch(2)
    full = list(sampler)
    assert len(full) == 14 and {i for i, _ in full} == set(range(10))
    sampler.set_start(5)
    assert list(sampler) == full[5:]
    sampler.set_epoch(3)
    sampler.set_start(0)
    assert [i for i, _ in sampler] != [i for i, _ in full]
    shards = [list(SeededSampler(10, seed=3, length=14, num_replicas=2, rank=r)) for r in (0, 1)]
    one = list(SeededSampler(10, seed=3, length=14))
    merged = [x for pair in zip(*shards, strict=True) for x in pair]
    assert [(i, s[3]) for i, s in merged] == [(i, s[3]) for i, s in one]


def test_failed_atomic_write_keeps_the_old_file_and_names_it(tmp_path):
    from semivl.atomic import atomic_write

    target = tmp_path / "model.pt"
    target.write_text("old")

    def fail(tmp):
        Path(tmp).write_text("half")
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos")

    with pytest.raises(OSError, match="could not write .*model.pt.*GB free.*unchanged"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_repeated_split_line_is_rejected_with_both_line_numbers(tmp_path):
    path = tmp_path / "labeled.txt"
    path.write_text("a.jpg a.png\nb.jpg b.png\na.jpg a.png\n")
    with pytest.raises(
        SplitFileError,
        match=r"labeled.txt:3: image a.jpg is already named on "
        r"line 1",
    ):
        read_split_file(path)


def test_only_unlabelled_lists_may_omit_masks(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    pairs = [("a.jpg", "None")]
    check_pairs_exist(tmp_path, pairs, tmp_path / "unlabeled.txt", check_masks=False)
    with pytest.raises(SplitFileError, match="have no mask.*only unlabelled lists"):
        check_pairs_exist(tmp_path, pairs, tmp_path / "labeled.txt")


def test_unlabelled_images_need_no_masks(toy_root, repo, tmp_path):
    """Upstream's loader never reads unlabelled masks: 'image None' lines and absent mask
    files give the same items as the list with masks."""
    cfg = load_dataset_config("toy", repo / "config")
    aug = AugmentConfig(crop_size=32)
    listed = toy_root.parent / "splits" / "6" / "unlabeled.txt"
    pairs = read_split_file(listed)[:4]
    root = tmp_path / "root"
    for image, _ in pairs:  # the images only: no mask file exists under this root
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        (root / image).write_bytes((toy_root / image).read_bytes())
    with_masks = tmp_path / "with_masks.txt"
    with_masks.write_text("".join(f"{i} {m}\n" for i, m in pairs))
    no_masks = tmp_path / "none.txt"
    no_masks.write_text("".join(f"{i} None\n" for i, _ in pairs))
    reference = SegmentationDataset(toy_root, with_masks, cfg, "train_u", aug)
    for split_file in (no_masks, with_masks):  # 'None', and names of absent files
        dataset = SegmentationDataset(root, split_file, cfg, "train_u", aug)
        for key in [(0, (1, 2, 3, 4)), (3, (5, 6, 7, 8))]:
            for got, want in zip(dataset[key], reference[key], strict=True):
                assert torch.equal(torch.as_tensor(got), torch.as_tensor(want))
    with pytest.raises(SplitFileError, match="only unlabelled lists"):
        SegmentationDataset(root, no_masks, cfg, "train", aug)
