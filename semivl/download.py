"""HTTP(S) downloads that resume, retry, show progress and verify a sha256.

``requests`` + ``tqdm`` rather than pooch: pooch restarts an interrupted transfer from zero,
while model weights and dataset archives are large enough that resuming with an HTTP Range
request matters.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import requests
from tqdm import tqdm

CHUNK = 1 << 20
NET_CHUNK = 1 << 16  # small reads: an interrupted transfer keeps all but the last 64 KiB


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its checksum."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (resuming from its size when the server can)."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416:  # the part file is already complete
            return
        if response.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {response.status_code}")
        if response.status_code == 200 and offset:
            offset = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        with part.open(mode) as handle, tqdm(total=total, initial=offset, unit="B",
                                             unit_scale=True, desc=part.name.removesuffix(
                                                 ".part"), disable=not progress) as bar:
            for chunk in response.iter_content(NET_CHUNK):
                handle.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise DownloadError(f"{url}: connection closed after {part.stat().st_size} of "
                                f"{total} bytes")


def download(urls: list[str], dest: Path, sha256: str | None = None, retries: int = 3,
             timeout: float = 60.0, progress: bool = True, backoff_s: float = 2.0) -> str:
    """Download the first URL that works to ``dest`` and return the file's sha256.

    The transfer goes to ``<dest>.part``, which survives failures and is resumed by the next
    attempt or call. Only a file whose sha256 matches ``sha256`` (when given) is renamed to
    ``dest``; a mismatching download is removed and reported.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        for attempt in range(1, retries + 1):
            try:
                _fetch_once(url, part, timeout, progress)
                break
            except (requests.RequestException, DownloadError) as err:
                errors.append(f"{url} (attempt {attempt}): {err}")
                if attempt < retries:
                    time.sleep(backoff_s * attempt)
        else:
            continue
        actual = sha256_of(part)
        if sha256 is not None and actual != sha256:
            part.unlink()
            raise DownloadError(
                f"{url}: sha256 mismatch for {dest.name}: expected {sha256}, got {actual}; "
                f"the download was removed. If the file changed upstream on purpose, update "
                f"the pinned checksum; otherwise retry later"
            )
        os.replace(part, dest)
        return actual
    raise DownloadError("all sources failed:\n  " + "\n  ".join(errors))
