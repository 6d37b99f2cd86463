"""Split files in the upstream (UniMatch/SemiVL) format, and the generator for nested splits.

A split file holds one ``<image relative path> <mask relative path>`` pair a line, relative
to the dataset root. Upstream files often lack a final newline, so readers must not assume one
and writers must not concatenate files blindly. Unlabelled lists may name no mask
(``<image> None``, as upstream's loader never reads unlabelled masks); labelled and val lists
must name one. An image appears at most once in a file.
"""

from __future__ import annotations

from pathlib import Path

from semivl.atomic import write_text_atomic

Pair = tuple[str, str]
NO_MASK = "None"  # upstream's mask field of an unlabelled image without a mask


class SplitFileError(ValueError):
    """A split file is missing, malformed or names files that do not exist."""


def read_split_file(path: Path) -> list[Pair]:
    """Read ``image mask`` pairs; tolerant of a missing final newline, CRLF and blank lines.

    A line that names an image already named on an earlier line is an error (a repeated line
    would otherwise weigh that image twice while the line count still looks right).
    """
    path = Path(path)
    if not path.is_file():
        raise SplitFileError(f"{path}: split file not found; create it with `semivl splits`")
    pairs = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise SplitFileError(
                f"{path}:{number}: expected '<image> <mask>' (two fields), got {line!r}"
            )
        if fields[0] in first_seen:
            raise SplitFileError(
                f"{path}:{number}: image {fields[0]} is already named on line "
                f"{first_seen[fields[0]]}; each image may appear once in a split file, "
                f"remove the repeated line or create the file again with `semivl splits`"
            )
        first_seen[fields[0]] = number
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise SplitFileError(f"{path}: split file is empty")
    return pairs


def require_disjoint_from_val(pairs: list[Pair], val: list[Pair], what: str, show: int = 3) -> None:
    """Fail, naming a few, if a training list shares images with the val list."""
    shared = sorted({image for image, _ in pairs} & {image for image, _ in val})
    if shared:
        raise SplitFileError(
            f"{what}: {len(shared)} image(s) are also in the val list, e.g. "
            f"{', '.join(shared[:show])}; training on validation images would inflate the "
            f"reported mIoU, so fix or replace the list"
        )


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    """Write ``lines`` (newline-terminated) to ``path`` through a temporary file and a rename."""
    write_text_atomic("".join(f"{line}\n" for line in lines), path)


def write_split_file(path: Path, pairs: list[Pair]) -> None:
    """Write pairs in the upstream format (atomically)."""
    write_lines_atomic(path, [f"{image} {mask}" for image, mask in pairs])


def voc_pairs(ids: list[str]) -> list[Pair]:
    """Split-file pairs for VOC-layout ids."""
    return [(f"JPEGImages/{i}.jpg", f"SegmentationClass/{i}.png") for i in ids]


def read_id_list(path: Path) -> list[str]:
    """Read a VOC ``ImageSets`` id list (one id a line)."""
    path = Path(path)
    if not path.is_file():
        raise SplitFileError(f"{path}: id list not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def check_pairs_exist(
    root: Path, pairs: list[Pair], split_path: Path, *, check_masks: bool = True, show: int = 5
) -> None:
    """Fail with the count and the first few names if a split line names a missing file.

    With ``check_masks`` (labelled and val lists) every line must name an existing mask; a
    ``None`` mask is accepted only where masks are not checked (unlabelled lists).
    """
    root = Path(root)
    missing, no_mask = [], []
    for image, mask in pairs:
        if not (root / image).is_file():
            missing.append(image)
        if check_masks and mask == NO_MASK:
            no_mask.append(image)
        elif check_masks and not (root / mask).is_file():
            missing.append(mask)
    if no_mask:
        raise SplitFileError(
            f"{split_path}: {len(no_mask)} image(s) have no mask ('{NO_MASK}'), e.g. "
            f"{', '.join(no_mask[:show])}; only unlabelled lists may omit masks"
        )
    if missing:
        head = ", ".join(missing[:show])
        more = f" (and {len(missing) - show} more)" if len(missing) > show else ""
        raise SplitFileError(
            f"{split_path}: {len(missing)} file(s) named in the split are missing under "
            f"{root}: {head}{more}"
        )
