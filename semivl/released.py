"""Released upstream checkpoints: where a URL is cached, its pinned sha256, and the download.

No checksum is published for the authors' ``best.pth`` files, so the sha256 of the first file
fetched is pinned in ``config/released.lock.yaml`` (keyed by URL), as ``config/weights.lock.yaml``
does for the backbones; a grid entry's own ``sha256:`` (or ``--sha256``) takes precedence. A URL
is downloaded once into ``resources/released/<first 12 hex of sha256(url)>/<file name>`` and
verified against the pin ever after, so a workflow rerun never downloads again.

This module imports no torch: the Snakefile and ``semivl grid expand`` read it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from semivl import lockfile
from semivl.config import ConfigError
from semivl.download import DownloadError

CACHE_DIR = Path("resources/released")
LOCK_NAME = "released.lock.yaml"
# What a PyTorch file starts with: a zip archive (torch >= 1.6) or a legacy pickle.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def is_url(source: str) -> bool:
    """Whether a checkpoint source is a URL (else a local path)."""
    return str(source).startswith(("https://", "http://"))


def url_key(url: str) -> str:
    """The cache folder name of ``url``: the first 12 hex digits of its sha256."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def url_file_name(url: str) -> str:
    """The file name a URL's path ends in (``checkpoint.pth`` when it ends in none)."""
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return safe if safe.strip("._") else "checkpoint.pth"


def cache_path(url: str, cache_dir: Path = CACHE_DIR) -> Path:
    """``<cache_dir>/<url_key>/<file name>``: where ``url`` is downloaded to."""
    return Path(cache_dir) / url_key(url) / url_file_name(url)


def lock_path(config_dir: Path) -> Path:
    return Path(config_dir) / LOCK_NAME


def pinned_sha256(url: str, config_dir: Path, sha256: str | None = None) -> str | None:
    """The sha256 ``url`` must have: ``sha256`` (the grid's or ``--sha256``) if given, else the
    lock file's pin; fails when both exist and differ."""
    pinned = lockfile.read_lock(lock_path(config_dir)).get(url)
    if sha256 is not None and pinned is not None and sha256.lower() != pinned:
        raise ConfigError(
            f"{url}: the given sha256 {sha256} differs from the one pinned in "
            f"{lock_path(config_dir)} ({pinned}); remove the stale line of one "
            f"of them"
        )
    return sha256.lower() if sha256 is not None else pinned


def _looks_like_torch_file(path: Path) -> None:
    with Path(path).open("rb") as handle:
        head = handle.read(16)
    if not head.startswith(_TORCH_MAGIC):
        what = (
            "a web page"
            if head.lstrip().lower().startswith((b"<!doctype", b"<html"))
            else f"a file starting with {head[:8]!r}"
        )
        raise ValueError(
            f"not a PyTorch checkpoint but {what} (Google Drive and similar "
            f"share links serve a page, not the file: download it by hand and "
            f"give its path)"
        )


def fetch(
    url: str,
    config_dir: Path,
    cache_dir: Path = CACHE_DIR,
    sha256: str | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = 60.0,
) -> tuple[Path, str]:
    """Make sure the cache holds the verified file of ``url``; return (path, sha256).

    A cached file is verified against the pin (nothing is downloaded); otherwise the URL is
    downloaded (resumed, retried, checked). The sha256 is pinned in the lock file when it was
    not yet.
    """
    dest = cache_path(url, cache_dir)
    actual = lockfile.fetch_pinned(
        [url],
        dest,
        lock_path(config_dir),
        url,
        "released upstream checkpoints",
        expected=pinned_sha256(url, config_dir, sha256),
        pin_expected=True,
        pinned_in=f"{lock_path(config_dir)}" if sha256 is None else "the given sha256",
        error=DownloadError,
        validate=_looks_like_torch_file,
        retries=retries,
        timeout=timeout,
        progress=progress,
        failure=lambda err: (
            f"could not download the checkpoint {url}: {err}\nDownload it by hand and put it "
            f"at {dest.resolve()} (or give its path instead of the URL), then run the same "
            f"command again"
        ),
    )
    return dest, actual


def resolve(
    source: str,
    config_dir: Path,
    cache_dir: Path = CACHE_DIR,
    sha256: str | None = None,
    progress: bool = True,
) -> tuple[Path, str]:
    """The local file of a checkpoint ``source`` (a path, or a URL fetched into the cache) and
    its sha256, checked against ``sha256`` when given."""
    if is_url(source):
        return fetch(source, config_dir, cache_dir, sha256, progress)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: checkpoint not found (give a best.pth file or an https URL)"
        )
    actual = lockfile.verify_pinned(
        path, None if sha256 is None else sha256.lower(), "the given sha256", ValueError
    )
    return path, actual
