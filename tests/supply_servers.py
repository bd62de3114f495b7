"""Real services for the supply-chain stages' tests, on loopback, one per session: an HTTP file server (with
redirects), moto's standalone S3 server (`moto_server`), an MLflow tracking server, and a ClamAV signature
database made with `sigtool` (freshclam's mirrors cannot be reached here, so the signatures are ours: the
EICAR test file's MD5 and a body-pattern `.ndb` rule).

Every service is a real process or socket server; nothing is mocked in-process. Import the fixtures into a
test module (`from tests.supply_servers import ...`).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Built from parts so no antivirus flags this source file; the bytes are the standard EICAR test file.
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!" + b"$H+H*")
MARKER = b"mlsec-test-" + b"malware-marker"
"""A body pattern our `.ndb` rule matches anywhere in a file."""
S3_KEY_ID, S3_SECRET = "AKIAMLSECTESTKEY0001", "mlsec-test-secret-value-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: server did not come up in {seconds:g}s")


@pytest.fixture(scope="session")
def clamav_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ClamAV database folder: `sigtool --md5` of the EICAR file, and an `.ndb` body rule for MARKER."""
    sigtool = shutil.which("sigtool")
    assert sigtool, "sigtool (Debian's clamav) is not installed: run scripts/bootstrap dev as root"
    db = tmp_path_factory.mktemp("clamav-db")
    sample = db.parent / "eicar.com"
    sample.write_bytes(EICAR)
    got = subprocess.run([sigtool, "--md5", str(sample)], capture_output=True, text=True, check=True, cwd=db.parent)
    (db / "mlsec-test.hdb").write_text(got.stdout.replace(str(sample.parent) + "/", ""))
    (db / "mlsec-test.ndb").write_text(f"MlsecTest.Marker:0:*:{MARKER.hex()}\n")
    sample.unlink()
    return db


@dataclass(frozen=True)
class HttpServer:
    """A loopback HTTP server over a folder, plus `/redirect?to=URL` answering 302 to URL."""

    root: Path
    """The folder it serves."""
    base: str
    """`http://127.0.0.1:PORT`."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", urllib.request.unquote(self.path.split("=", 1)[1]))
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    root = tmp_path_factory.mktemp("http-root")

    def handler(*args: object, **kwargs: object) -> _Handler:
        return _Handler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


@dataclass(frozen=True)
class S3Server:
    """moto's standalone S3 server on loopback."""

    endpoint: str
    """`http://127.0.0.1:PORT`, for `MLSEC_S3_ENDPOINT_URL`."""

    def env(self) -> dict[str, str]:
        """What a stage needs to reach it: endpoint and (test) credentials, from the environment only."""
        return {"MLSEC_S3_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": S3_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEY_ID,
                            aws_secret_access_key=S3_SECRET, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    exe = Path(sys.executable).parent / "moto_server"
    assert exe.is_file(), "moto_server is not installed: scripts/bootstrap dev (moto[server] is a dev extra)"
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out,
                                env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    try:
        _wait(f"http://127.0.0.1:{port}/moto-api/", proc, 300)  # a loaded 2-core machine is slow
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()


@dataclass(frozen=True)
class MlflowServer:
    """A real MLflow tracking server (SQLite backend, artifacts served by it) on loopback."""

    uri: str
    """`http://127.0.0.1:PORT`."""
    root: Path
    """Its folder (database and artifact store)."""

    def call(self, path: str, **query: str) -> dict[str, object]:
        import json
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.uri}{path}?{urlencode(query)}", timeout=60) as r:
            doc: dict[str, object] = json.loads(r.read())
            return doc

    def artifact(self, path: str) -> bytes:
        from urllib.parse import quote

        with urllib.request.urlopen(f"{self.uri}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}", timeout=60) as r:
            data: bytes = r.read()
            return data


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One per session (it takes seconds to start): every test uses its own registered-model names."""
    exe = Path(sys.executable).parent / "mlflow"
    assert exe.is_file(), "mlflow is not installed: scripts/bootstrap dev (mlflow is a dev extra)"
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with (root / "server.log").open("wb") as out:
        proc = subprocess.Popen([str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                 "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                                 "--artifacts-destination", str(root / "artifacts")],
                                stdout=out, stderr=out, env=env, cwd=root, start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{port}/health", proc, 600)
        yield MlflowServer(f"http://127.0.0.1:{port}", root)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)


@dataclass(frozen=True)
class HubServer:
    """A loopback stand-in of the Hugging Face Hub (the real Hub cannot be reached here): the Hub's resolve
    route `/[datasets/|spaces/]OWNER/REPO/resolve/REVISION/PATH` over `files`, and a CDN on another origin.

    A file whose path is in `via_cdn` is answered, as the Hub answers an LFS/Xet file, with a 302 to the CDN
    host (`cdn`), which serves it by its SHA-256; a repository in `moved` is answered with a relative 307 to
    its new name (a renamed repository); a path in `redirects` gets a 302 to that URL. Anything else is a 404
    with the Hub's `X-Error-Code` header. Every request is recorded in `seen` as (`hub`|`cdn`, path, headers)
    so tests can check which host got the token."""

    base: str
    """The Hub endpoint, `http://127.0.0.1:PORT` (for `HF_ENDPOINT`)."""
    cdn: str
    """The CDN origin, another loopback host: `http://127.0.0.2:PORT`."""
    files: dict[tuple[str, str, str], bytes]
    """(repository with type prefix, commit, path) -> bytes."""
    via_cdn: set[str]
    """Paths served through a redirect to the CDN."""
    moved: dict[str, str]
    """Old repository -> new repository (relative redirect on the Hub itself)."""
    redirects: dict[str, str]
    """Path -> absolute URL the Hub redirects it to."""
    seen: list[tuple[str, str, dict[str, str]]]
    """Every request: (which server, raw path, headers)."""

    def add(self, repo: str, commit: str, path: str, data: bytes, cdn: bool = False) -> None:
        self.files[(repo, commit, path)] = data
        if cdn:
            self.via_cdn.add(path)

    def headers(self, server: str) -> list[dict[str, str]]:
        """The headers of every request `server` (`hub` or `cdn`) received."""
        return [h for s, _, h in self.seen if s == server]


def _hub_handler(hub: list[HubServer], server: str) -> type[http.server.BaseHTTPRequestHandler]:
    import hashlib
    from urllib.parse import unquote

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state = hub[0]
            state.seen.append((server, self.path, {k.lower(): v for k, v in self.headers.items()}))
            if server == "cdn":
                blobs = {hashlib.sha256(d).hexdigest(): d for d in state.files.values()}
                data = blobs.get(self.path.removeprefix("/blob/"))
                return self._answer(200, data) if data is not None else self._answer(404, b"", "EntryNotFound")
            repo, sep, rest = self.path.lstrip("/").partition("/resolve/")
            revision, _, quoted = rest.partition("/")
            path = unquote(quoted)
            if not sep:
                return self._answer(404, b"", "RepoNotFound")
            if repo in state.moved:
                return self._redirect(307, f"/{state.moved[repo]}/resolve/{rest}")
            if path in state.redirects:
                return self._redirect(302, state.redirects[path])
            data = state.files.get((repo, revision, path))
            if data is None:
                return self._answer(404, b"", "EntryNotFound")
            if path in state.via_cdn:
                return self._redirect(302, f"{state.cdn}/blob/{hashlib.sha256(data).hexdigest()}")
            return self._answer(200, data)

        def _redirect(self, code: int, location: str) -> None:
            self.send_response(code)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _answer(self, code: int, data: bytes, error: str = "") -> None:
            self.send_response(code)
            if error:
                self.send_header("X-Error-Code", error)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def hf_hub() -> Iterator[HubServer]:
    """A fresh Hub stand-in and CDN per test (two loopback socket servers, on two hosts)."""
    state: list[HubServer] = []
    # The CDN is another host as well as another port: 127.0.0.2 (all of 127.0.0.0/8 is loopback on Linux).
    servers = [http.server.ThreadingHTTPServer((address, 0), _hub_handler(state, name))
               for name, address in (("hub", "127.0.0.1"), ("cdn", "127.0.0.2"))]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    hub_port, cdn_port = (s.server_address[1] for s in servers)
    state.append(HubServer(f"http://127.0.0.1:{hub_port}", f"http://127.0.0.2:{cdn_port}", {}, set(), {}, {}, []))
    try:
        yield state[0]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
