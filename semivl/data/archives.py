"""Dataset archives: fetch (verified, resumable), validate, and extract selected members.

An archive reaches ``<archive-dir>/<file>`` only after its checksum (the publisher's md5, or
the sha256 pinned in ``config/data.lock.yaml`` on first download) and a full read of the
archive (zip CRCs; every tar member to the end) have passed, so a present file is a good one.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from semivl import lockfile
from semivl.config import ArchiveSource, ConfigError, DatasetConfig
from semivl.data import cityscapes_site
from semivl.download import require_free_space

READ_BLOCK = 1 << 20


def lock_path(config_dir: Path) -> Path:
    return Path(config_dir) / "data.lock.yaml"


def is_tar(path: Path) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz"))


def validate_archive(path: Path) -> None:
    """Read the whole archive; raise if it is truncated or corrupt."""
    path = Path(path)
    name = path.name.removesuffix(".part")
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"CRC mismatch in member {bad}")
    elif is_tar(Path(name)):
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    while handle.read(READ_BLOCK):
                        pass
    else:
        raise ValueError(f"{name}: unknown archive type (expected .zip, .tar or .tar.gz)")


def fetch_archive(
    cfg: DatasetConfig,
    key: str,
    archive_dir: Path,
    config_dir: Path,
    *,
    progress: bool = True,
    retries: int = 3,
    backoff_s: float = 2.0,
) -> Path:
    """Make sure ``<archive_dir>/<file>`` of archive ``key`` is present and verified."""
    if key not in cfg.archives:
        raise ConfigError(f"dataset {cfg.name}: no archive {key!r}; known: {sorted(cfg.archives)}")
    source: ArchiveSource = cfg.archives[key]
    dest = Path(archive_dir) / source.file
    if dest.exists():
        return dest
    session, urls, md5 = None, list(source.urls), source.md5
    if source.cityscapes_package is not None:
        site = source.urls[0]
        session = cityscapes_site.login(site)
        md5 = md5 or cityscapes_site.package_md5(session, site, source.cityscapes_package)
        urls = [cityscapes_site.package_url(site, source.cityscapes_package)]
    lockfile.fetch_pinned(
        urls,
        dest,
        lock_path(config_dir),
        f"{cfg.name}/{source.file}",
        "dataset archives and split lists",
        md5=md5,
        size=source.size,
        validate=validate_archive,
        session=session,
        retries=retries,
        progress=progress,
        backoff_s=backoff_s,
    )
    return dest


def _members(path: Path) -> Iterator[tuple[str, int, Callable]]:
    """(name, size, open) for every regular file of a zip or tar archive."""
    if is_tar(path):
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile():
                    yield member.name, member.size, lambda m=member: archive.extractfile(m)
    else:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, lambda i=info: archive.open(i)


def _safe(relative: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"refusing to write {relative!r} outside the dataset folder")
    return path


def extract(
    archive: Path, dest: Path, select: Callable[[str], str | None], *, progress: bool = True
) -> int:
    """Write each member for which ``select(name)`` gives a relative path to ``dest/<path>``.

    Returns the number of files written. The free disk space is checked first against the
    archive's size (a zip's uncompressed total).
    """
    archive, dest = Path(archive), Path(dest)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as handle:
            needed = sum(i.file_size for i in handle.infolist())
    else:
        needed = archive.stat().st_size
    require_free_space(dest, needed, f"extracting {archive.name}")
    count = 0
    with tqdm(desc=f"extract {archive.name}", unit="file", disable=not progress) as bar:
        for name, _, opener in _members(archive):
            target = select(name)
            if target is None:
                continue
            out = dest / _safe(target)
            out.parent.mkdir(parents=True, exist_ok=True)
            with opener() as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, READ_BLOCK)
            count += 1
            bar.update(1)
    return count


def under(prefix: str, *, keep: str = "", suffixes: tuple[str, ...] = ()) -> Callable:
    """A selector: members below the folder ``prefix`` (anywhere in the path, so a zip's extra
    top-level folder does not matter), rewritten to ``keep/<rest>``, optionally by suffix."""
    marker = prefix.strip("/") + "/"

    def select(name: str) -> str | None:
        name = name.replace("\\", "/")
        at = name.find(marker)
        if at < 0 or (at > 0 and name[at - 1] != "/"):
            return None
        rest = name[at + len(marker) :]
        if not rest or (suffixes and not rest.endswith(suffixes)):
            return None
        return f"{keep.strip('/')}/{rest}" if keep else rest

    return select
