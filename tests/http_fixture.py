"""A local HTTP server for download tests (127.0.0.1 only, no network).

Serves ``files`` (path with query -> bytes), honours ``Range``, can cut the first transfer
short, and can mimic cityscapes-dataset.com: a form login at ``/login`` answering 302 and a
session cookie for good credentials, 200 for bad ones; paths under ``protected`` need the
cookie.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

COOKIE = "session=logged-in"


class FileServer:
    """Context manager: ``with FileServer(files) as server: server.url``."""

    def __init__(
        self,
        files: dict[str, bytes],
        cut_first_after: int | None = None,
        login: tuple[str, str] | None = None,
        protected: tuple[str, ...] = (),
    ) -> None:
        self.files = files
        self.cut = cut_first_after
        self.login = login
        self.protected = protected
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                server.requests.append({"path": self.path, "method": "POST"})
                user, password = form.get("username", [""])[0], form.get("password", [""])[0]
                if self.path.rstrip("/") == "/login" and (user, password) == server.login:
                    self.send_response(302)
                    self.send_header("Location", "/")
                    self.send_header("Set-Cookie", f"{COOKIE}; Path=/")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):  # noqa: N802 - http.server API
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                path = self.path.lstrip("/")
                if path.rstrip("/") == "login":
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if (
                    path.startswith(server.protected)
                    and server.protected
                    and COOKIE not in (self.headers.get("Cookie") or "")
                ):
                    self.send_response(302)
                    self.send_header("Location", "/login")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if server.cut is not None:
                    payload, server.cut = payload[: server.cut], None
                    self.wfile.write(payload)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
