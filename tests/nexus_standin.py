"""A loopback stand-in for a Sonatype Nexus raw hosted repository, recording every request.

Nexus Repository is a Java server from Sonatype that is not installable here, so the publish tests talk to this
instead. It answers the raw format's documented upload and download as Nexus does: `PUT /repository/REPO/PATH`
stores the body (201 Created), `GET`/`HEAD` of the same path serve it (404 when absent), with basic auth when
`users` is set (401 and a `WWW-Authenticate` challenge otherwise), and 404 for another repository. Each path
segment is percent-decoded once, as a servlet container does, and a decoded `.`/`..` segment is normalised
away (what a naive server or proxy does), so a test can see whether a hostile name would leave the release path.

The knobs make it misbehave on purpose: `put_status` (answer PUTs with that code, storing nothing),
`redirect` (answer everything with 302 to that URL), `tamper` (GET serves other bytes than were stored).
"""

from __future__ import annotations

import base64
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPOSITORY = "raw-releases"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """The raw request path, as sent (still percent-encoded)."""
    authorization: str


@dataclass
class Nexus:
    """The repository's state and how it answers."""

    base: str = ""
    """`http://127.0.0.1:PORT`; the repository is at `url`."""
    users: dict[str, str] = field(default_factory=dict)
    """user: password; empty is anonymous access."""
    objects: dict[str, bytes] = field(default_factory=dict)
    """Decoded path below the repository: bytes."""
    seen: list[Request] = field(default_factory=list)
    put_status: int = 0
    redirect: str = ""
    tamper: bool = False

    @property
    def url(self) -> str:
        return f"{self.base}/repository/{REPOSITORY}"

    def methods(self) -> list[str]:
        return [r.method for r in self.seen]


def _handler(nexus: Nexus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _key(self) -> str | None:
            raw = urllib.parse.urlsplit(self.path).path
            prefix = f"/repository/{REPOSITORY}/"
            if not raw.startswith(prefix):
                return None
            segments = [urllib.parse.unquote(s) for s in raw.removeprefix(prefix).split("/")]
            return posixpath.normpath("/".join(segments)).lstrip("/")

        def _authorised(self) -> bool:
            if not nexus.users:
                return True
            got = self.headers.get("Authorization", "")
            if not got.startswith("Basic "):
                return False
            user, _, password = base64.b64decode(got[6:]).decode("utf-8", "replace").partition(":")
            return nexus.users.get(user) == password

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            nexus.seen.append(Request(self.command, self.path, self.headers.get("Authorization", "")))
            if nexus.redirect:
                self._send(302, headers={"Location": nexus.redirect})
                return
            if not self._authorised():
                self._send(401, b"Unauthorized", {"WWW-Authenticate": 'BASIC realm="Sonatype Nexus"'})
                return
            key = self._key()
            if key is None:
                self._send(404, b"Repository not found")
                return
            if self.command == "PUT":
                if nexus.put_status:
                    self._send(nexus.put_status, b"refused")
                    return
                nexus.objects[key] = body
                self._send(201)
                return
            if key not in nexus.objects:
                self._send(404, b"Not Found")
                return
            data = nexus.objects[key]
            self._send(200, b"tampered " + data if nexus.tamper else data, {"Content-Type": "application/octet-stream"})

        do_GET = do_HEAD = do_PUT = _handle

    return Handler


@contextmanager
def nexus_standin(**answers: object) -> Iterator[Nexus]:
    nexus = Nexus(**answers)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(nexus))
    server.daemon_threads = True
    nexus.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield nexus
    finally:
        server.shutdown()
        server.server_close()
