"""HTTP(S) downloads that resume, retry, show progress, check free disk and verify checksums.

``requests`` + ``tqdm`` rather than pooch: pooch restarts an interrupted transfer from zero,
while model weights and dataset archives (COCO's train2017.zip is 19 GB) are large enough that
resuming with an HTTP Range request matters. A file reaches its final name only after it has
passed every check, so the existence of ``dest`` means "complete and verified".
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import requests
from tqdm import tqdm

CHUNK = 1 << 20
NET_CHUNK = 1 << 16  # small reads: an interrupted transfer keeps all but the last 64 KiB
DISK_MARGIN = 1 << 30  # keep 1 GiB free beyond what a download needs


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its checksum."""


class PermanentDownloadError(DownloadError):
    """A failure that retrying cannot fix (access denied, not enough disk)."""


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``sha256`` or ``md5``)."""
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return file_digest(path, "sha256")


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Fail before starting if ``folder``'s disk has less than ``needed`` bytes (+1 GiB) free."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + DISK_MARGIN:
        raise PermanentDownloadError(
            f"{what} needs {needed / 1e9:.1f} GB (+1 GB margin) in {folder}, but its disk has "
            f"{free / 1e9:.1f} GB free; free some space or point the folder elsewhere"
        )


def _fetch_once(
    url: str,
    part: Path,
    timeout: float,
    progress: bool,
    session: requests.Session,
    expected_size: int | None,
) -> None:
    """Append the rest of ``url`` to ``part`` (resuming from its size when the server can)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(
        url, headers=headers, stream=True, timeout=timeout, allow_redirects=True
    ) as response:
        if response.status_code == 416:  # the part file is already complete
            return
        if response.status_code in (401, 403):
            raise PermanentDownloadError(f"{url}: HTTP {response.status_code} (access denied)")
        if response.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {response.status_code}")
        if response.status_code == 200 and offset:
            offset = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else expected_size
        if total is not None:
            require_free_space(part.parent, total - offset, f"downloading {url}")
        mode = "ab" if offset else "wb"
        with (
            part.open(mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            for chunk in response.iter_content(NET_CHUNK):
                handle.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise DownloadError(
                f"{url}: connection closed after {part.stat().st_size} of {total} bytes"
            )


def _set_aside(part: Path, dest: Path, why: str) -> Path:
    """Move a rejected download out of the way under a name that says why."""
    aside = dest.with_name(f"{dest.name}.{why}")
    os.replace(part, aside)
    return aside


def download(
    urls: list[str],
    dest: Path,
    sha256: str | None = None,
    *,
    md5: str | None = None,
    size: int | None = None,
    validate: Callable[[Path], None] | None = None,
    session: requests.Session | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
    backoff_s: float = 2.0,
) -> str:
    """Download the first URL that works to ``dest`` and return the file's sha256.

    The transfer goes to ``<dest>.part``, which survives failures and is resumed (HTTP Range)
    by the next attempt or call; attempts back off linearly. The file is checked against
    ``md5`` and ``sha256`` (when given) and by ``validate`` (e.g. "is a readable archive");
    only then is it renamed to ``dest``. A file failing a check is kept aside as
    ``<dest>.checksum-mismatch`` or ``<dest>.corrupt`` and the error gives both checksums.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    errors = []
    for url in urls:
        for attempt in range(1, retries + 1):
            try:
                _fetch_once(url, part, timeout, progress, session, size)
                break
            except PermanentDownloadError:
                raise
            except (requests.RequestException, DownloadError) as err:
                errors.append(f"{url} (attempt {attempt}): {err}")
                if attempt < retries:
                    time.sleep(backoff_s * attempt)
        else:
            continue
        return _accept(part, dest, url, sha256=sha256, md5=md5, validate=validate)
    raise DownloadError("all sources failed:\n  " + "\n  ".join(errors))


def _accept(
    part: Path,
    dest: Path,
    url: str,
    *,
    sha256: str | None,
    md5: str | None,
    validate: Callable[[Path], None] | None,
) -> str:
    """Check a finished transfer and rename it to ``dest``; return its sha256."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        actual = file_digest(part, algorithm)
        if actual != expected.lower():
            aside = _set_aside(part, dest, "checksum-mismatch")
            raise DownloadError(
                f"{url}: {algorithm} mismatch for {dest.name}: expected {expected}, got "
                f"{actual}. The file was kept as {aside} for inspection; delete it to "
                f"download again. If the file changed upstream on purpose, update the pinned "
                f"checksum; otherwise retry later"
            )
    if validate is not None:
        try:
            validate(part)
        except Exception as err:  # noqa: BLE001 - any failure means "not a usable archive"
            aside = _set_aside(part, dest, "corrupt")
            raise DownloadError(
                f"{url}: {dest.name} is not a readable archive ({err}); it was kept as "
                f"{aside}. Delete it and run the same command again"
            ) from None
    actual = sha256_of(part)
    os.replace(part, dest)
    return actual
