"""Tiny archives in the exact official layouts of VOC, COCO, ADE20K and Cityscapes.

Each ``make_<dataset>()`` returns a :class:`Fixture`: the archive bytes by file name, the
upstream split lists by path (for ``--source official``), the counts the prepared dataset
must have, and the split sizes. ``write_config`` turns the repository's dataset config into
one that points at a local server and the fixture's counts and checksums.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from semivl.data.palette import voc_palette

REPO = Path(__file__).resolve().parent.parent
COMMIT = "0" * 39 + "1"


@dataclass
class Fixture:
    name: str
    archives: dict[str, bytes]  # file name -> bytes
    split_files: dict[str, bytes] = field(default_factory=dict)  # "92/labeled.txt" -> bytes
    counts: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)


def _jpeg(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _png(array: np.ndarray, palette: bool = False) -> bytes:
    image = Image.fromarray(array.astype(np.uint8))
    if palette:
        image = image.convert("P")
        image.putpalette(voc_palette())
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _mask(w: int, h: int, seed: int, high: int, ignore: int | None = 255) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, high, (h, w)).astype(np.uint8)
    if ignore is not None:
        mask[0, :] = ignore
    return mask


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _lines(pairs: list[tuple[str, str]]) -> bytes:
    # Upstream files often lack the final newline: so do these.
    return "\n".join(f"{a} {b}" for a, b in pairs).encode()


def make_pascal() -> Fixture:
    """VOCtrainval tar (VOCdevkit/VOC2012/...) and a UniMatch-style SegmentationClass zip."""
    voc_train = [f"2007_{i:06d}" for i in range(1, 9)]  # the "high-quality" train set
    sbd = [f"2008_{i:06d}" for i in range(1, 7)]  # SBD-only train_aug ids
    val = [f"2009_{i:06d}" for i in range(1, 5)]
    detection_only = ["2010_000001", "2010_000002"]
    voc = "VOCdevkit/VOC2012"
    members = {}
    for n, image_id in enumerate(voc_train + sbd + val + detection_only):
        members[f"{voc}/JPEGImages/{image_id}.jpg"] = _jpeg(20 + n % 3, 16, n)
        members[f"{voc}/Annotations/{image_id}.xml"] = b"<annotation/>"
    for n, image_id in enumerate(voc_train + val):  # the tar's own palette masks (unused)
        members[f"{voc}/SegmentationClass/{image_id}.png"] = _png(
            _mask(20 + n % 3, 16, n, 21), palette=True
        )
    sets = f"{voc}/ImageSets/Segmentation"
    members[f"{sets}/train.txt"] = "".join(f"{i}\n" for i in voc_train).encode()
    members[f"{sets}/val.txt"] = "".join(f"{i}\n" for i in val).encode()
    members[f"{sets}/trainval.txt"] = "".join(f"{i}\n" for i in voc_train + val).encode()
    sizes = {i: 20 + n % 3 for n, i in enumerate(voc_train + sbd + val + detection_only)}
    gt = {
        f"SegmentationClass/{i}.png": _png(_mask(sizes[i], 16, 100 + n, 21))
        for n, i in enumerate(voc_train + sbd + val)
    }

    def pairs(ids):
        return [(f"JPEGImages/{i}.jpg", f"SegmentationClass/{i}.png") for i in ids]

    labeled = {"2": voc_train[3:5], "4": voc_train[:4]}
    split_files = {"val.txt": _lines(pairs(val))}
    for split, ids in labeled.items():
        split_files[f"{split}/labeled.txt"] = _lines(pairs(ids))
        split_files[f"{split}/unlabeled.txt"] = _lines(
            pairs([i for i in voc_train + sbd if i not in ids])
        )
    return Fixture(
        "pascal",
        {"VOCtrainval_11-May-2012.tar": _tar(members), "ground_truth_voc.zip": _zip(gt)},
        split_files,
        {"train": len(voc_train + sbd), "val": len(val)},
        {"2": 2, "4": 4},
    )


COCO_CATEGORY_IDS = [
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
]  # COCO's 80 sparse ids


def coco_instances(images: list[tuple[int, int, int]]) -> dict:
    """An instances JSON: per image a polygon square of category 1, an overlapping polygon of
    category 90 (class 80) and, on the first image, a crowd RLE of category 3."""
    annotations = []
    for image_id, _, _ in images:
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "iscrowd": 0,
                "category_id": 1,
                "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]],
            }
        )
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "iscrowd": 0,
                "category_id": 90,
                "segmentation": [[8, 2, 16, 2, 16, 10, 8, 10]],
            }
        )
    first_id, w, h = images[0]
    crowd = np.zeros((h, w), dtype=np.uint8)
    crowd[12:14, 0:4] = 1
    counts, flat, run, value = [], crowd.flatten(order="F"), 0, 0
    for pixel in flat:  # uncompressed RLE, column-major, starting with zeros
        if pixel != value:
            counts.append(run)
            run, value = 0, pixel
        run += 1
    counts.append(run)
    annotations.append(
        {
            "id": len(annotations) + 1,
            "image_id": first_id,
            "iscrowd": 1,
            "category_id": 3,
            "segmentation": {"size": [h, w], "counts": counts},
        }
    )
    return {
        "images": [
            {"id": i, "width": w, "height": h, "file_name": f"{i:012d}.jpg"} for i, w, h in images
        ],
        "annotations": annotations,
        "categories": [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in COCO_CATEGORY_IDS],
    }


def make_coco() -> Fixture:
    train = [(9 + 2 * n, 20, 16) for n in range(10)]
    val = [(139 + n, 18, 16) for n in range(3)]
    images_train = {f"train2017/{i:012d}.jpg": _jpeg(w, h, i) for i, w, h in train}
    images_val = {f"val2017/{i:012d}.jpg": _jpeg(w, h, i) for i, w, h in val}
    masks = {f"masks/{i:012d}.png": _png(_mask(w, h, i, 81)) for i, w, h in train + val}
    annotations = {
        "annotations/instances_train2017.json": json.dumps(coco_instances(train)),
        "annotations/instances_val2017.json": json.dumps(coco_instances(val)),
        "annotations/captions_train2017.json": "{}",
    }
    annotations = {k: v.encode() for k, v in annotations.items()}

    def pairs(items, folder):
        return [(f"{folder}/{i:012d}.jpg", f"masks/{i:012d}.png") for i, _, _ in items]

    split_files = {"val.txt": _lines(pairs(val, "val2017"))}
    for split, chosen in {"1_8": train[:2], "1_4": train[5:9]}.items():
        split_files[f"{split}/labeled.txt"] = _lines(pairs(chosen, "train2017"))
        split_files[f"{split}/unlabeled.txt"] = _lines(
            pairs([t for t in train if t not in chosen], "train2017")
        )
    return Fixture(
        "coco",
        {
            "train2017.zip": _zip(images_train),
            "val2017.zip": _zip(images_val),
            "ground_truth_coco.zip": _zip(masks),
            "annotations_trainval2017.zip": _zip(annotations),
        },
        split_files,
        {"train": len(train), "val": len(val)},
        {"1_8": 2, "1_4": 4},
    )


def make_ade20k() -> Fixture:
    root = "ADEChallengeData2016"
    members = {
        f"{root}/objectInfo150.txt": b"Idx\tRatio\tTrain\tVal\tName\n",
        # incompressible padding: big enough to cut a transfer in the middle
        f"{root}/sceneCategories.txt": np.random.default_rng(0).bytes(400_000),
    }
    train = [f"ADE_train_{i:08d}" for i in range(1, 17)]
    val = [f"ADE_val_{i:08d}" for i in range(1, 5)]
    for n, stem in enumerate(train + val):
        folder = "training" if stem in train else "validation"
        members[f"{root}/images/{folder}/{stem}.jpg"] = _jpeg(24, 18, n)
        members[f"{root}/annotations/{folder}/{stem}.png"] = _png(_mask(24, 18, n, 151, None))

    def pairs(stems, folder):
        return [(f"images/{folder}/{s}.jpg", f"annotations/{folder}/{s}.png") for s in stems]

    import random  # the generator of SemiVL's gen_ade_splits.py, for the official files

    shuffled = sorted(train)
    random.Random(0).shuffle(shuffled)
    split_files = {"val.txt": _lines(pairs(sorted(val), "validation"))}
    for split, n in {"1_8": 2, "1_4": 4}.items():
        split_files[f"{split}/labeled.txt"] = _lines(pairs(shuffled[:n], "training"))
        split_files[f"{split}/unlabeled.txt"] = _lines(pairs(shuffled[n:], "training"))
    return Fixture(
        "ade20k",
        {"ADEChallengeData2016.zip": _zip(members)},
        split_files,
        {"train": len(train), "val": len(val)},
        {"1_8": 2, "1_4": 4},
    )


CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"]}


def cityscapes_polygons(w: int, h: int) -> dict:
    """Road over the bottom half, a car box, and an out-of-image 'unlabeled' rest."""
    return {
        "imgHeight": h,
        "imgWidth": w,
        "objects": [
            {
                "label": "road",
                "polygon": [[0, h // 2], [w - 1, h // 2], [w - 1, h - 1], [0, h - 1]],
            },
            {"label": "car", "polygon": [[2, 2], [8, 2], [8, 6], [2, 6]]},
        ],
    }


def make_cityscapes() -> Fixture:
    images, fine, train, val = {}, {}, [], []
    w, h = 32, 16
    for part, cities in CITIES.items():
        for city in cities:
            for k in range(3):
                stem = f"{city}_{k:06d}_000019"
                image = f"leftImg8bit/{part}/{city}/{stem}_leftImg8bit.png"
                images[image] = _png(np.full((h, w, 3), 40 * k, dtype=np.uint8))
                base = f"gtFine/{part}/{city}/{stem}_gtFine"
                fine[f"{base}_polygons.json"] = json.dumps(cityscapes_polygons(w, h)).encode()
                fine[f"{base}_labelIds.png"] = _png(np.full((h, w), 7, dtype=np.uint8))
                fine[f"{base}_color.png"] = _png(np.zeros((h, w, 3), dtype=np.uint8))
                fine[f"{base}_instanceIds.png"] = _png(np.zeros((h, w), dtype=np.uint8))
                pair = (image, f"{base}_labelTrainIds.png")
                (train if part == "train" else val if part == "val" else []).append(pair)
    images["README"] = b"Cityscapes"
    images["license.txt"] = b"terms"
    fine["README"] = b"Cityscapes"
    fine["license.txt"] = b"terms"
    split_files = {"val.txt": _lines(val)}
    for split, chosen in {"1_8": train[:1], "1_4": train[1:3]}.items():
        split_files[f"{split}/labeled.txt"] = _lines(chosen)
        split_files[f"{split}/unlabeled.txt"] = _lines([p for p in train if p not in chosen])
    return Fixture(
        "cityscapes",
        {"leftImg8bit_trainvaltest.zip": _zip(images), "gtFine_trainvaltest.zip": _zip(fine)},
        split_files,
        {"train": len(train), "val": len(val)},
        {"1_8": 1, "1_4": 2},
    )


MAKERS = {
    "pascal": make_pascal,
    "coco": make_coco,
    "ade20k": make_ade20k,
    "cityscapes": make_cityscapes,
}
CITYSCAPES_PACKAGES = {"gtFine_trainvaltest.zip": 1, "leftImg8bit_trainvaltest.zip": 3}


def served_files(fixture: Fixture) -> dict[str, bytes]:
    """What the local server serves: archives (Cityscapes: as the site's package routes, with
    their md5) and the split lists under ``<repo>/<commit>/splits/<name>/``."""
    files = {}
    for name, data in fixture.archives.items():
        if fixture.name == "cityscapes":
            package = CITYSCAPES_PACKAGES[name]
            files[f"file-handling/?packageID={package}"] = data
            files[f"md5-sum/?packageID={package}"] = (
                f"{hashlib.md5(data).hexdigest()}  {name}\n".encode()
            )
        else:
            files[f"archives/{name}"] = data
    for path, data in fixture.split_files.items():
        files[f"upstream/{COMMIT}/splits/{fixture.name}/{path}"] = data
    return files


def write_config(fixture: Fixture, config_dir: Path, url: str, *, md5: bool = True) -> Path:
    """``config_dir/datasets/<name>.yaml``: the repository's config, pointed at ``url``."""
    data = yaml.safe_load((REPO / "config" / "datasets" / f"{fixture.name}.yaml").read_text())
    for source in data["archives"].values():
        body = fixture.archives[source["file"]]
        source["size"] = len(body)
        if fixture.name == "cityscapes":
            source["urls"] = [url]
        else:
            source["urls"] = [f"{url}/archives/{source['file']}"]
            if md5 and source.get("md5"):
                source["md5"] = hashlib.md5(body).hexdigest()
    data["expected_counts"] = dict(fixture.counts)
    data["splits"] = dict(fixture.splits)
    data["official_splits"] = {
        "repo": "upstream",
        "commit": COMMIT,
        "folder": f"splits/{fixture.name}",
        "url": url + "/{repo}/{commit}/{folder}/{file}",
    }
    path = Path(config_dir) / "datasets" / f"{fixture.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(config_dir)
