"""Log in to cityscapes-dataset.com and name a package's download URL and md5.

This follows the protocol of cityscapesscripts' ``csDownload`` (form login expecting a 302,
``/md5-sum/?packageID=N``, ``/file-handling/?packageID=N``) and reads the credentials file that
tool writes, but it does not call it: ``csDownload`` has the host hard-wired, prompts on the
terminal when it finds no credentials (a pipeline job would hang), deletes the credentials
file after a failed login, and writes the archive in place without an atomic rename. The file
transfer itself goes through :func:`semivl.download.download` (resume, retries, md5).

Credentials, first found wins (never stored in the repository):

1. the environment variables ``CITYSCAPES_USERNAME`` and ``CITYSCAPES_PASSWORD``;
2. cityscapesscripts' file ``credentials.json`` (``{"username": ..., "password": ...}``) in
   ``appdirs.user_data_dir("cityscapesscripts", "cityscapes")``, i.e.
   ``~/.local/share/cityscapesscripts/credentials.json`` on Linux (``csDownload`` offers to
   write it; keep it mode 0600).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import appdirs
import requests

from semivl.download import DownloadError

REGISTER = "https://www.cityscapes-dataset.com/register/"


def credentials_file() -> Path:
    """Where cityscapesscripts keeps its credentials on this machine."""
    return Path(appdirs.user_data_dir("cityscapesscripts", "cityscapes")) / "credentials.json"


def where_credentials_go() -> str:
    return (
        f"set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD in the environment, or write "
        f'{{"username": "...", "password": "..."}} to {credentials_file()} (mode 0600; '
        f"cityscapesscripts' csDownload offers to store it there). An account is made at "
        f"{REGISTER}; the data may not be redistributed"
    )


def read_credentials() -> tuple[str, str]:
    """(username, password) from the environment or cityscapesscripts' file."""
    user, password = os.environ.get("CITYSCAPES_USERNAME"), os.environ.get("CITYSCAPES_PASSWORD")
    if user and password:
        return user, password
    path = credentials_file()
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            return str(data["username"]), str(data["password"])
        except (ValueError, KeyError, TypeError) as err:
            raise DownloadError(
                f"{path}: not a cityscapesscripts credentials file ({err}); "
                f"{where_credentials_go()}"
            ) from None
    raise DownloadError(f"Cityscapes needs a login and none was found: {where_credentials_go()}")


def login(site: str, timeout: float = 60.0) -> requests.Session:
    """A session logged in to ``site``; a refused login says where credentials go."""
    user, password = read_credentials()
    session = requests.Session()
    url = site.rstrip("/") + "/login"
    try:
        session.get(url, allow_redirects=False, timeout=timeout).raise_for_status()
        response = session.post(
            url,
            data={"username": user, "password": password, "submit": "Login"},
            allow_redirects=False,
            timeout=timeout,
        )
        response.raise_for_status()
    except requests.RequestException as err:
        raise DownloadError(f"{url}: could not reach the Cityscapes login ({err})") from None
    if response.status_code != 302:  # the site redirects after a successful login
        raise DownloadError(
            f"{url}: the Cityscapes login was refused for user {user!r} "
            f"(wrong username or password?); {where_credentials_go()}"
        )
    return session


def package_md5(session: requests.Session, site: str, package: int, timeout: float = 60.0) -> str:
    """The md5 the site publishes for ``package``."""
    url = f"{site.rstrip('/')}/md5-sum/?packageID={package}"
    response = session.get(url, allow_redirects=False, timeout=timeout)
    if response.status_code != 200 or not response.text.split():
        raise DownloadError(
            f"{url}: HTTP {response.status_code}; could not read the package "
            f"md5 (is the account allowed to download package {package}?)"
        )
    return response.text.split()[0].lower()


def package_url(site: str, package: int) -> str:
    return f"{site.rstrip('/')}/file-handling/?packageID={package}"
