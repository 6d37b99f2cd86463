"""Checksum lock files: sha256 values pinned on first download and verified ever after.

Used where no checksum is published (UniMatch's backbone weights, SemiVL's preprocessed
ground-truth zips, upstream split lists too large to pin by hand, released checkpoints,
upstream text embeddings). Commit the lock files. :func:`fetch_pinned` is the one way every
downloader here gets a file: download once, verify against a pin, pin on first download.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from filelock import FileLock

from semivl.atomic import write_text_atomic
from semivl.errors import ConfigError

# Seconds a job waits for another's pin before giving up (a pin takes milliseconds).
LOCK_TIMEOUT_S = 600


def read_lock(path: Path) -> dict[str, str]:
    """Pinned sha256 per key (empty if the lock file does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of name: sha256")
    return {str(k): str(v) for k, v in data.items()}


def pin(path: Path, key: str, sha256: str, what: str) -> None:
    """Record ``key``'s sha256 in the lock file ``path`` (atomically); ``what`` heads the file.

    Parallel jobs (Snakemake fetches several archives or weights at once) pin into the same
    file: the read, edit and write happen under a file lock (``<path>.lock`` beside it), so
    no job's pin is lost to another's write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        lock = read_lock(path)
        lock[key] = sha256
        header = (
            f"# sha256 of {what}, pinned on first download (none is published).\n"
            "# Commit this file; a later download that differs is refused.\n"
        )
        write_text_atomic(header + yaml.safe_dump(dict(sorted(lock.items()))), path)


def verify_pinned(
    path: Path, pinned: str | None, pinned_in: str, error: type[Exception] = ValueError
) -> str:
    """The sha256 of the cached file ``path``; raises ``error`` naming the file, both values
    and where the pin lives (``pinned_in``) if it differs from ``pinned``. The file is kept."""
    from semivl.download import sha256_of

    actual = sha256_of(path)
    if pinned is not None and actual != pinned:
        raise error(
            f"{path}: sha256 {actual} does not match the pinned {pinned} "
            f"({pinned_in}); the cached file was changed or damaged. Delete it to "
            f"download it again (nothing was written)"
        )
    return actual


def fetch_pinned(
    urls: list[str],
    dest: Path,
    lock: Path,
    key: str,
    what: str,
    *,
    expected: str | None = None,
    pin_expected: bool = False,
    pinned_in: str | None = None,
    error: type[Exception] = ValueError,
    check: Callable[[Path], None] | None = None,
    failure: Callable[[Exception], str] | None = None,
    **download_args,
) -> str:
    """Make sure ``dest`` holds the verified file and return its sha256: download it once,
    verify it against a pin, pin it on first download.

    The sha256 it must have is ``expected`` (published in a config, or given by the user) or
    else ``key``'s pin in the lock file ``lock``. A cached ``dest`` is verified against it,
    raising ``error`` that names ``pinned_in`` on a mismatch (the file is kept); otherwise the
    ``urls`` are downloaded (:func:`semivl.download.download`: resumed, retried, checked, with
    ``download_args``), and a failure is raised again with ``failure(err)``'s message (what to
    do by hand). ``check(dest)`` may refuse the file before it is pinned. The sha256 is pinned
    under ``key`` when the lock has none, unless it came as ``expected`` (then only with
    ``pin_expected``); ``what`` heads a new lock file.
    """
    from semivl.download import DownloadError, download

    dest = Path(dest)
    pinned = expected or read_lock(lock).get(key)
    if dest.exists():
        actual = verify_pinned(dest, pinned, pinned_in or f"{lock}, {key}", error)
    else:
        try:
            actual = download(urls, dest, sha256=pinned, **download_args)
        except DownloadError as err:
            if failure is None:
                raise
            raise DownloadError(failure(err)) from None
    if check is not None:
        check(dest)
    if (expected is None or pin_expected) and read_lock(lock).get(key) is None:
        pin(lock, key, actual, what)
    return actual
