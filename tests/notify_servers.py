"""Loopback HTTP servers that record what notify sends them (Slack, Telegram, webhook, DefectDojo, PagerDuty
shapes), and a real Prometheus Pushgateway (Debian's `prometheus-pushgateway`) started on a free port.

The recorders are stand-ins for services that cannot run here (Slack, Telegram, PagerDuty are SaaS; DefectDojo
needs Django, PostgreSQL and Celery): they answer as the documented APIs do and keep every request whole, so the
tests check the exact bytes that left the runner.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.supply_servers import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Recorder:
    """What the server received, and how it answers (`status`, a `delay` in seconds, a `redirect` Location)."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    redirect: str = ""
    dojo: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    """DefectDojo mode: objects by collection (product_types, products, engagements, tests)."""


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            rec.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if rec.delay:
                time.sleep(rec.delay)
            if rec.redirect:
                self.send_response(302)
                self.send_header("Location", rec.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            out = self._dojo(body) if rec.dojo is not None and self.path.startswith("/api/v2/") else b"ok"
            self.send_response(rec.status if out is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out or b"")))
            self.end_headers()
            self.wfile.write(out or b"")

        def _dojo(self, body: bytes) -> bytes | None:
            from urllib.parse import parse_qs, urlsplit

            parts = urlsplit(self.path)
            collection = parts.path.removeprefix("/api/v2/").strip("/")
            if collection in ("import-scan", "reimport-scan"):
                test_id = len(rec.dojo.setdefault("tests", [])) + 1
                if collection == "import-scan":
                    text = body.decode("latin-1")
                    title = text.split('name="test_title"\r\n\r\n', 1)[1].split("\r\n", 1)[0]
                    rec.dojo["tests"].append({"id": test_id, "title": title})
                return json.dumps({"test": test_id, "test_id": test_id}).encode()
            rows = rec.dojo.setdefault(collection, [])
            if self.command == "GET":
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                found = [r for r in rows if all(str(r.get(k)) == v for k, v in query.items() if k in r)]
                return json.dumps({"count": len(found), "results": found}).encode()
            doc = json.loads(body)
            doc["id"] = len(rows) + 1
            rows.append(doc)
            return json.dumps(doc).encode()

        do_GET = do_POST = do_PUT = _answer

    return Handler


@contextmanager
def recorder(**answers: object) -> Iterator[Recorder]:
    rec = Recorder(**answers)  # type: ignore[arg-type]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def pushgateway(tmp: Path, users: Mapping[str, str] | None = None) -> Iterator[str]:
    """A real Pushgateway on a loopback port (no persistence); yields its base URL. `users` (name: bcrypt hash)
    turns on its own basic auth (`--web.config.file`, `basic_auth_users`) on every endpoint."""
    port = free_port()
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: an empty flag keeps every
    # gateway in memory, so no test (or session) sees another's pushes.
    argv = ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    if users:
        config = tmp / "pushgateway-web.yml"
        config.write_text("basic_auth_users:\n" + "".join(f"  {json.dumps(u)}: {json.dumps(h)}\n"
                                                         for u, h in users.items()))
        argv.append(f"--web.config.file={config}")
    proc = subprocess.Popen(argv, stdout=(tmp / "pushgateway.log").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus-pushgateway exited {proc.returncode}: "
                                   f"{(tmp / 'pushgateway.log').read_text()[-500:]}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError as e:
                if users and isinstance(e, urllib.error.HTTPError) and e.code == 401:
                    break  # up, and asking for the credentials it was given
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
