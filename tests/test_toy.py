import hashlib

import numpy as np
import pytest
from PIL import Image

from semivl.data.prepare.toy import (
    BACKGROUND_WORDS,
    CAPTION_WORDS,
    CLASS_NAMES,
    MODE_DIR,
    MODE_PROBS,
    NUM_MODES,
    PATTERNS,
    SCHEMES,
    ToySpec,
    generate_caption_set,
    generate_toy,
    look_name,
    look_of,
    make_sample,
    mode_of_value,
    parse_caption,
    pretraining_sample,
    read_captions,
    visible_classes,
)

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


def test_the_dev_part_is_disjoint_and_leaves_train_and_val_as_they_were(tmp_path):
    """Dev images come after train and val: the same train and val bytes with or without
    them, none of them in the training part, and the sweep reads them as their own part."""
    from semivl.data.layouts import DEV_PART, has_dev_part, part_pairs
    from semivl.dataset_config import load_dataset_config

    with_dev = generate_toy(
        tmp_path / "a", seed=0, spec=ToySpec(num_train=12, num_val=4, num_dev=5)
    )
    without = generate_toy(tmp_path / "b", seed=0, spec=ToySpec(num_train=12, num_val=4, num_dev=0))
    sets = "ImageSets/Segmentation"
    for name in ("train.txt", "val.txt"):
        assert (with_dev / sets / name).read_bytes() == (without / sets / name).read_bytes()
    for image in (with_dev / sets / "val.txt").read_text().split():
        jpg = f"JPEGImages/{image}.jpg"
        assert (with_dev / jpg).read_bytes() == (without / jpg).read_bytes()
    cfg = load_dataset_config("toy")
    dev = part_pairs(cfg, with_dev, DEV_PART)
    assert [image for image, _ in dev] == [f"JPEGImages/toy_{i:05d}.jpg" for i in range(16, 21)]
    train = {image for image, _ in part_pairs(cfg, with_dev, "train")}
    val = {image for image, _ in part_pairs(cfg, with_dev, "val")}
    assert len(train) == 12 and not train & {image for image, _ in dev} and not val & train
    assert has_dev_part(cfg, with_dev) and not has_dev_part(cfg, without)
    with pytest.raises(ValueError, match="no dev part"):
        part_pairs(cfg, without, DEV_PART)


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


def test_captions_are_deterministic_and_name_exactly_the_classes_in_the_mask(tmp_path):
    spec = ToySpec(num_train=40, num_val=10, num_dev=0)
    a = read_captions(generate_toy(tmp_path / "a", seed=4, spec=spec) / "captions.tsv")
    b = read_captions(generate_toy(tmp_path / "b", seed=4, spec=spec) / "captions.tsv")
    assert a == b and len(a) == 50
    for sample_id, caption in a.items():
        mask = np.asarray(Image.open(tmp_path / "a" / "SegmentationClass" / f"{sample_id}.png"))
        objects, _ = parse_caption(caption)
        named = [name for name, _ in objects]
        present = sorted(set(np.unique(mask).tolist()) - {0, 255})
        # every visible object class once, largest area first; nothing that is not there
        assert sorted(CLASS_NAMES.index(n) for n in named) == present, (sample_id, caption)
        assert [CLASS_NAMES.index(n) for n in named] == visible_classes(mask)
        # look words are those of one of the class's looks in the image
        modes = np.asarray(Image.open(tmp_path / "a" / MODE_DIR / f"{sample_id}.png"))
        for name, words in objects:
            cls = CLASS_NAMES.index(name)
            looks = {look_name(*mode_of_value(int(v))) for v in np.unique(modes[mask == cls])}
            assert any(set(words) <= set(look.split()) for look in looks), (caption, looks)
    # the background phrase names the background actually drawn
    for i in range(40):
        sample = make_sample(np.random.default_rng([4, i]), spec)
        _, background = parse_caption(sample.caption)
        assert background in (None, sample.background)
    # every caption word is among the class definitions the SemiVL recipes read
    import yaml
    from conftest import REPO

    definitions = yaml.safe_load((REPO / "config/classes/toy.yaml").read_text())["definitions"]
    for name, options in CAPTION_WORDS.items():
        assert {word for word, _ in options} <= set(definitions[name])
    for phrases in BACKGROUND_WORDS.values():
        assert all(
            any(concept in phrase for concept in definitions["background"]) for phrase in phrases
        )


def test_pretraining_scenes_never_repeat_a_segmentation_image(tmp_path):
    seg = generate_toy(tmp_path / "toy", seed=0, spec=ToySpec(num_train=40, num_val=20))
    scenes = generate_caption_set(tmp_path / "scenes", 60, seed=0, progress=False)
    captions = read_captions(scenes / "captions.tsv")
    assert len(captions) == 60 and len(list((scenes / "images").glob("*.jpg"))) == 60

    def digests(folder):
        return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.jpg")}

    assert not digests(seg / "JPEGImages") & digests(scenes / "images")
    again = generate_caption_set(tmp_path / "again", 60, seed=0, progress=False)
    assert _digest(again) == _digest(scenes)
    with pytest.raises(FileExistsError, match="--force"):
        generate_caption_set(scenes, 60, seed=1)


def test_captions_fit_the_tiny_clip_context():
    from conftest import REPO

    from semivl.engine.pretrain_clip import tokenize_captions
    from semivl.models.clip_source import clip_source

    context = clip_source("tiny_clip_toy", REPO / "config").model_cfg["text_cfg"]["context_length"]
    longest = max((w for opts in CAPTION_WORDS.values() for w, _ in opts), key=len)
    pattern = max(PATTERNS, key=len)
    colour = max((name for name, _, _ in SCHEMES), key=len)
    animal = f"a {pattern} {colour} {longest}"
    worst = (
        f"a picture of {animal}, {animal} and {animal} "
        f"{max((p for ps in BACKGROUND_WORDS.values() for p in ps), key=len)}"
    )
    tokenize_captions([worst], context)
    with pytest.raises(ValueError, match="context_length"):
        tokenize_captions([worst + " and more words" * 5], context)


def test_every_look_belongs_to_one_class_and_no_colour_or_pattern_alone_tells_the_class():
    looks = {look_of(cls, mode): (cls, mode) for cls in range(1, 5) for mode in range(NUM_MODES)}
    assert len(looks) == 16  # 4 schemes x 4 patterns, each the look of exactly one class
    for cls in range(1, 5):
        assert {look_of(cls, m)[0] for m in range(NUM_MODES)} == set(range(len(SCHEMES)))
        assert {look_of(cls, m)[1] for m in range(NUM_MODES)} == set(range(len(PATTERNS)))


def test_the_dataset_config_names_the_generators_looks(repo):
    from semivl.config import load_dataset_config

    cfg = load_dataset_config("toy", repo / "config")
    assert tuple(cfg.class_names) == CLASS_NAMES
    assert cfg.appearance_modes.dir == MODE_DIR
    assert cfg.appearance_modes.names() == [
        f"{CLASS_NAMES[c]}/{m} {look_name(c, m)}" for c in range(1, 5) for m in range(NUM_MODES)
    ]


def _split_looks(tmp_path, repo):
    """The demo's toy dataset (seed 0) and the looks each of its labelled splits shows."""
    from semivl.config import load_dataset_config
    from semivl.data.make_splits import generated_split
    from semivl.data.modes import split_modes

    cfg = load_dataset_config("toy", repo / "config")
    root = generate_toy(tmp_path / "toy", seed=0, spec=ToySpec(num_val=0))
    out = {}
    for count in cfg.splits.values():
        labelled, _ = generated_split(cfg, root, count, seed=0)
        out[count] = split_modes(root, [image for image, _ in labelled], cfg.appearance_modes)
    return cfg, out


def test_few_label_splits_miss_looks_that_more_labels_and_the_pretraining_scenes_show(
    tmp_path, repo
):
    cfg, shown = _split_looks(tmp_path, repo)
    # measured on the demo's data: 6 labels show 8 of the 16 looks (cat/0, the commonest
    # cat, among the missed), 12 show 11, 24 and 48 show 15 (all but dog/3 plain green)
    assert len(shown[6]) <= 10 and len(shown[48]) >= 14
    assert set(shown[6]) <= set(shown[12]) <= set(shown[24]) <= set(shown[48])  # nested
    # the captioned pretraining scenes (the recipe's first 600 of 10000) show every look,
    # each about as often as its mode probability says
    from semivl.engine.pretrain_config import load_pretrain_config

    spec = load_pretrain_config("tiny_clip_toy", repo / "config").data.spec()
    counts = np.zeros((4, NUM_MODES))
    for i in range(600):
        for cls, mode in pretraining_sample(0, i, spec).looks:
            counts[cls - 1, mode] += 1
    assert counts.min() > 0
    share = counts.sum(axis=0) / counts.sum()
    assert np.allclose(share, MODE_PROBS, atol=0.05), share
