"""The registry client request by request: against Debian's real distribution registry (push, pull, HEAD, the
404s it answers) and against a recording stand-in on loopback that shows what the client sent (method, path,
headers, body) and answers what a real registry could but ours will not (another 2xx, a relative upload
Location, bearer challenges, error bodies, TLS redirects). Every refusal is checked as its exact message."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlsec_actions.oci.client import MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST, Client, Manifest, RegistryError, sha256
from mlsec_actions.sanitize import ELLIPSIS, log_line
from tests.oci_registry import Registry, oci_registry  # noqa: F401 -- the fixture (a real registry)
from tests.tls_services import make_certificate, modern_context

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": sha256(b"{}")}, "layers": []}).encode()
GOOD = sha256(MANIFEST)
OTHER = "sha256:" + "0" * 64
ACCEPT = ", ".join(MANIFEST_TYPES)
TOKEN_A = "/token?" + urllib.parse.urlencode({"service": "reg", "scope": "repository:a:pull"})


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes


Route = Callable[[BaseHTTPRequestHandler], None]


def send(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            if (k, v) != ("Content-Length", ""):
                h.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            h.send_header("Content-Length", str(len(body)))
        if (headers or {}).get("Content-Length") == "":  # none at all: the body ends when the connection does
            h.close_connection = True
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)
    return route


def endless(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Connection", "close")
    h.end_headers()
    try:
        while True:
            h.wfile.write(b" " * 65536)
    except OSError:
        h.close_connection = True


class StandIn:
    """Answers each path (with its query) from `routes`, 404 otherwise; records every request in `seen`."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                stand_in.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                          self.rfile.read(length)))
                stand_in.routes.get(self.path, send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}'))(self)

            do_GET = do_HEAD = do_PUT = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.base = f"{'https' if context else 'http'}://{self.host}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def reg() -> Iterator[StandIn]:
    stand_in = StandIn()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def _fails(call: Callable[[], object]) -> str:
    with pytest.raises(RegistryError) as info:
        call()
    return str(info.value)


# -- against the real registry -------------------------------------------------------------------------------------
def test_push_and_pull_round_trip_on_a_real_registry(oci_registry: Registry) -> None:  # noqa: F811
    client = Client(oci_registry.host, timeout=30)
    assert (client.host, client.base) == (oci_registry.host, f"http://{oci_registry.host}")
    assert client.has_blob("rt/app", sha256(b"{}")) is False
    assert client.put_blob("rt/app", b"{}") == sha256(b"{}")
    assert client.has_blob("rt/app", sha256(b"{}")) is True
    assert client.put_blob("rt/app", b"{}") == sha256(b"{}")  # already there: no second upload
    assert client.get_blob("rt/app", sha256(b"{}"), limit=2) == b"{}"
    headers = client.put_manifest("rt/app", "v1", MANIFEST, OCI_MANIFEST)
    assert headers.get("Docker-Content-Digest") == GOOD
    for ref in ("v1", GOOD):
        assert client.get_manifest("rt/app", ref) == Manifest(MANIFEST, OCI_MANIFEST, GOOD)
        assert client.head_manifest("rt/app", ref) == GOOD


def test_what_a_real_registry_lacks(oci_registry: Registry) -> None:  # noqa: F811
    client = Client(oci_registry.host, timeout=30)
    url = f"http://{oci_registry.host}/v2/rt/none/manifests/v9"
    assert client.get_manifest("rt/none", "v9", missing_ok=True) is None
    assert client.head_manifest("rt/none", "v9") is None
    assert _fails(lambda: client.get_manifest("rt/none", "v9")) == (
        f"GET {url}: HTTP 404 MANIFEST_UNKNOWN manifest unknown")
    blob = f"http://{oci_registry.host}/v2/rt/none/blobs/{OTHER}"
    assert _fails(lambda: client.get_blob("rt/none", OTHER, limit=10)) == (
        f"GET {blob}: HTTP 404 BLOB_UNKNOWN blob unknown to registry")
    assert client.referrers("rt/none", GOOD) is None  # distribution 2.x: no referrers API (404)


# -- what is sent ---------------------------------------------------------------------------------------------------
def test_requests_name_their_types_and_carry_no_credentials_unasked(reg: StandIn,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLSEC_REGISTRY_TOKEN", "MLSEC_REGISTRY_USERNAME", "MLSEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    reg.routes["/v2/a/manifests/v1"] = send(200, MANIFEST, {"Docker-Content-Digest": GOOD})
    reg.routes["/v2/a/manifests/v2"] = send(201, b"", {"Docker-Content-Digest": GOOD})
    reg.routes[f"/v2/a/referrers/{GOOD}"] = send(200, b'{"manifests": []}')
    client = Client(reg.host)
    client.get_manifest("a", "v1")
    client.put_manifest("a", "v2", MANIFEST, OCI_MANIFEST)
    assert client.referrers("a", GOOD) == {"manifests": []}
    (get, put, referrers) = reg.seen
    assert (get.method, get.headers["accept"], get.body) == ("GET", ACCEPT, b"")
    assert (put.method, put.headers["content-type"], put.body) == ("PUT", OCI_MANIFEST, MANIFEST)
    assert (referrers.method, referrers.headers["accept"]) == ("GET", OCI_INDEX)
    assert not [s for s in reg.seen if "authorization" in s.headers]


@pytest.mark.parametrize("env", [{"MLSEC_REGISTRY_USERNAME": "bot"}, {"MLSEC_REGISTRY_PASSWORD": "pw"}])
def test_half_a_login_sends_no_credentials(reg: StandIn, monkeypatch: pytest.MonkeyPatch,
                                           env: dict[str, str]) -> None:
    for name in ("MLSEC_REGISTRY_TOKEN", "MLSEC_REGISTRY_USERNAME", "MLSEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Client(reg.host).head_manifest("a", "v1") is None
    assert "authorization" not in reg.seen[0].headers


def test_a_blob_upload_is_a_post_then_one_put_at_the_location(reg: StandIn) -> None:
    data = b"layer bytes"
    digest = sha256(data)
    query = urllib.parse.urlencode({"digest": digest})
    reg.routes["/v2/a/blobs/uploads/"] = send(202, b"", {"Location": "v2/a/blobs/uploads/u1"})  # from the root
    reg.routes[f"/v2/a/blobs/uploads/u1?{query}"] = send(201)
    assert Client(reg.host).put_blob("a", data) == digest
    head, post, put = reg.seen
    assert (head.method, head.path) == ("HEAD", f"/v2/a/blobs/{digest}")
    assert (post.method, post.body) == ("POST", b"")
    assert (put.method, put.path, put.body) == ("PUT", f"/v2/a/blobs/uploads/u1?{query}", data)
    assert put.headers["content-type"] == "application/octet-stream"
    reg.routes["/v2/b/blobs/uploads/"] = send(202, b"", {"Location": "/v2/b/blobs/uploads/u2?_state=s"})
    reg.routes[f"/v2/b/blobs/uploads/u2?_state=s&{query}"] = send(201)
    assert Client(reg.host).put_blob("b", data) == digest


def test_an_upload_without_a_location_or_elsewhere_is_refused(reg: StandIn) -> None:
    base = f"http://{reg.host}/v2/a/blobs/uploads/"
    reg.routes["/v2/a/blobs/uploads/"] = send(202)
    assert _fails(lambda: Client(reg.host).put_blob("a", b"x")) == f"POST {base}: no upload Location"
    reg.routes["/v2/a/blobs/uploads/"] = send(202, b"", {"Location": "http://192.0.2.1/up"})
    assert _fails(lambda: Client(reg.host).put_blob("a", b"x")) == (
        "upload Location 'http://192.0.2.1/up' is on another host")
    assert not [s for s in reg.seen if s.method == "PUT"]


# -- what is accepted back ------------------------------------------------------------------------------------------
def test_a_status_other_than_the_one_asked_for_is_refused(reg: StandIn) -> None:
    url = f"http://{reg.host}/v2/a/manifests/v1"
    reg.routes["/v2/a/manifests/v1"] = send(200, b"", {"Docker-Content-Digest": GOOD})  # a PUT answers 201
    assert _fails(lambda: Client(reg.host).put_manifest("a", "v1", MANIFEST, OCI_MANIFEST)) == (
        f"PUT {url}: HTTP 200, expected 201")
    reg.routes["/v2/a/blobs/uploads/"] = send(201, b"", {"Location": "/v2/a/blobs/uploads/u1"})  # a POST: 202
    assert _fails(lambda: Client(reg.host).put_blob("a", b"x")) == (
        f"POST http://{reg.host}/v2/a/blobs/uploads/: HTTP 201, expected 202")
    reg.routes["/v2/a/blobs/uploads/"] = send(202, b"", {"Location": "/v2/a/blobs/uploads/u1"})
    reg.routes[f"/v2/a/blobs/uploads/u1?{urllib.parse.urlencode({'digest': sha256(b'x')})}"] = send(202)
    assert _fails(lambda: Client(reg.host).put_blob("a", b"x")).endswith(": HTTP 202, expected 201")


def test_a_manifest_stored_under_another_digest_is_refused(reg: StandIn) -> None:
    reg.routes["/v2/a/manifests/v1"] = send(201, b"", {"Docker-Content-Digest": OTHER})
    assert _fails(lambda: Client(reg.host).put_manifest("a", "v1", MANIFEST, OCI_MANIFEST)) == (
        f"PUT http://{reg.host}/v2/a/manifests/v1: the registry stored digest {OTHER}, not {GOOD}")


@pytest.mark.parametrize("call", ["put_manifest", "post", "put_blob"])
def test_write_answers_are_bounded_at_64_kib(reg: StandIn, call: str) -> None:
    big = {"Content-Length": str(64 * 1024 + 1)}
    query = urllib.parse.urlencode({"digest": sha256(b"x")})
    client = Client(reg.host)
    if call == "put_manifest":
        url = f"http://{reg.host}/v2/a/manifests/v1"
        reg.routes["/v2/a/manifests/v1"] = send(201, b"", big)
        got = _fails(lambda: client.put_manifest("a", "v1", MANIFEST, OCI_MANIFEST))
    else:
        url = f"http://{reg.host}/v2/a/blobs/uploads/" + (f"u1?{query}" if call == "put_blob" else "")
        location = {"Location": "/v2/a/blobs/uploads/u1"}
        reg.routes["/v2/a/blobs/uploads/"] = send(202, b"", {**location, **(big if call == "post" else {})})
        reg.routes[f"/v2/a/blobs/uploads/u1?{query}"] = send(201, b"", big)
        got = _fails(lambda: client.put_blob("a", b"x"))
    assert got == log_line(f"{url}: the registry announced 65537 bytes, more than the 65536 allowed")  # %3A shown


def test_a_body_past_the_limit_is_refused_exactly(reg: StandIn) -> None:
    reg.routes[f"/v2/a/blobs/{GOOD}"] = send(200, MANIFEST + b" ", {"Content-Length": ""})
    assert _fails(lambda: Client(reg.host).get_blob("a", GOOD, limit=len(MANIFEST))) == (
        f"http://{reg.host}/v2/a/blobs/{GOOD}: the registry sent more than the {len(MANIFEST)} bytes allowed")
    reg.routes[f"/v2/a/blobs/{OTHER}"] = endless  # only our count stops it
    assert _fails(lambda: Client(reg.host).get_blob("a", OTHER, limit=1000)) == (
        f"http://{reg.host}/v2/a/blobs/{OTHER}: the registry sent more than the 1000 bytes allowed")


def test_a_zero_limit_reads_no_body(reg: StandIn) -> None:
    empty = sha256(b"")  # a layer whose descriptor says size 0
    reg.routes[f"/v2/a/blobs/{empty}"] = send(200)
    reg.routes[f"/v2/b/blobs/{empty}"] = send(200, b"trailing", {"Content-Length": ""})  # no length, bytes anyway
    client = Client(reg.host)
    assert client.get_blob("a", empty, limit=0) == b""
    assert client.get_blob("b", empty, limit=0) == b""  # nothing is read, so what was asked for is what is returned


def test_manifest_reads(reg: StandIn) -> None:
    bare = json.dumps({"schemaVersion": 2}).encode()  # no mediaType: the Content-Type says what it is
    reg.routes["/v2/a/manifests/typed"] = send(200, bare, {"Content-Type": OCI_INDEX})
    reg.routes["/v2/a/manifests/untyped"] = send(200, bare)
    reg.routes[f"/v2/a/manifests/{GOOD}"] = send(200, MANIFEST, {"Docker-Content-Digest": "not-a-digest"})
    client = Client(reg.host)
    assert client.get_manifest("a", "typed") == Manifest(bare, OCI_INDEX, sha256(bare))
    got = client.get_manifest("a", "untyped")
    assert got is not None and got.media_type == ""  # http.server sends no Content-Type of its own
    assert client.get_manifest("a", GOOD) == Manifest(MANIFEST, OCI_MANIFEST, GOOD)  # by digest: the bytes decide
    reg.routes["/v2/a/manifests/text"] = send(200, b"not json", {"Docker-Content-Digest": sha256(b"not json")})
    assert _fails(lambda: client.get_manifest("a", "text")) == f"manifest {sha256(b'not json')} is not JSON"
    reg.routes["/v2/a/manifests/list"] = send(200, b"[]")
    assert _fails(lambda: client.get_manifest("a", "list")) == f"manifest {sha256(b'[]')} is not a JSON object"
    reg.routes["/v2/a/manifests/hint"] = send(200, b"", {"Docker-Content-Digest": ""})
    assert client.head_manifest("a", "hint") is None
    reg.routes["/v2/a/manifests/gone"] = send(404, b"", {"Docker-Content-Digest": GOOD})  # absent is absent
    assert client.head_manifest("a", "gone") is None


def test_blob_and_referrers_refusals(reg: StandIn) -> None:
    client = Client(reg.host)
    assert _fails(lambda: client.get_blob("a", "sha256:xyz", limit=1)) == (
        "blob digest 'sha256:xyz' is not a sha256 digest")
    url = f"http://{reg.host}/v2/a/referrers/{GOOD}"
    for body, why in ((b"{", "is not JSON"), (b"[]", "is not an image index"),
                      (b'{"manifests": {}}', "is not an image index")):
        reg.routes[f"/v2/a/referrers/{GOOD}"] = send(200, body)
        assert _fails(lambda: client.referrers("a", GOOD)) == f"GET {url}: the referrers answer {why}"
    reg.routes[f"/v2/a/referrers/{GOOD}"] = send(500)
    assert _fails(lambda: client.referrers("a", GOOD)) == f"GET {url}: HTTP 500"
    reg.routes[f"/v2/a/blobs/{GOOD}"] = send(500)
    assert _fails(lambda: client.has_blob("a", GOOD)) == f"HEAD http://{reg.host}/v2/a/blobs/{GOOD}: HTTP 500"


@pytest.mark.parametrize(("body", "text"), [
    (b"", ""), (b"not json", ""), (b"[]", ""), (b'{"errors": []}', ""), (b'{"errors": ["x"]}', ""),
    (b'{"errors": [{"message": "only a message"}]}', " only a message"),
    (b'{"errors": [{"code": "ONLY_CODE"}]}', " ONLY_CODE"),
    (b'{"errors": [{"code": "C", "message": "m"}, {"code": "D"}]}', " C m"),
    (json.dumps({"errors": [{"code": "BIG"}]}).encode().ljust(16 * 1024 + 1), ""),  # past 16 KiB: not read
    (json.dumps({"errors": [{"code": "FITS"}]}).encode().ljust(16 * 1024), " FITS"),
])
def test_error_bodies(reg: StandIn, body: bytes, text: str) -> None:
    reg.routes["/v2/a/manifests/v1"] = send(403, body)
    assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")) == (
        f"GET http://{reg.host}/v2/a/manifests/v1: HTTP 403{text}")


def test_a_refused_message_is_one_bounded_line() -> None:
    assert str(RegistryError("x" * 600)) == "x" * 600
    assert str(RegistryError("x" * 601)) == "x" * 599 + ELLIPSIS


def test_an_unreachable_or_silent_registry_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _fails(lambda: Client(f"127.0.0.1:{port}").head_manifest("a", "v1")) == (
        f"HEAD http://127.0.0.1:{port}/v2/a/manifests/v1: URLError: <urlopen error [Errno 111] Connection refused>")
    with socket.socket() as listener:  # accepted by the kernel, never answered
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        assert _fails(lambda: Client(host, timeout=1).get_blob("a", GOOD, limit=1)) == (
            f"GET http://{host}/v2/a/blobs/{GOOD}: TimeoutError: timed out")


def test_a_remote_registry_is_spoken_to_over_https() -> None:
    client = Client("registry.example:5000")
    assert (client.host, client.base) == ("registry.example:5000", "https://registry.example:5000")


def test_secrets_are_masked_in_actions(reg: StandIn, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("MLSEC_REGISTRY_TOKEN", "tok-static")
    monkeypatch.setenv("MLSEC_REGISTRY_USERNAME", "bot")
    monkeypatch.setenv("MLSEC_REGISTRY_PASSWORD", "pw-secret")
    Client(reg.host)
    assert capsys.readouterr().out.splitlines() == ["::add-mask::tok-static", "::add-mask::pw-secret"]


# -- bearer challenges ----------------------------------------------------------------------------------------------
def _guarded(reg: StandIn, path: str, route: Route, challenge: str, token: str = "tok-1") -> None:  # noqa: S107 -- a test token
    def guarded(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") == f"Bearer {token}":
            route(h)
        else:
            send(401, b"{}", {"WWW-Authenticate": challenge})(h)
    reg.routes[path] = guarded


def _token_paths(reg: StandIn) -> list[str]:
    return [s.path for s in reg.seen if s.path.startswith("/token")]


def test_every_call_asks_for_its_own_scope(reg: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLSEC_REGISTRY_TOKEN", raising=False)
    challenge = f'Bearer realm="http://{reg.host}/token",service="reg",scope="repository:other:push"'
    for scope in ("pull", "pull,push"):
        query = urllib.parse.urlencode({"service": "reg", "scope": f"repository:a:{scope}"})
        reg.routes[f"/token?{query}"] = send(200, json.dumps({"token": "tok-1"}).encode())
    _guarded(reg, "/v2/a/manifests/v1", send(200, MANIFEST), challenge)
    _guarded(reg, f"/v2/a/blobs/{GOOD}", send(200, MANIFEST), challenge)
    _guarded(reg, f"/v2/a/referrers/{GOOD}", send(200, b"{}"), challenge)
    _guarded(reg, "/v2/a/manifests/v2", send(201), challenge)
    _guarded(reg, "/v2/a/manifests/v9", send(200, b"", {"Docker-Content-Digest": GOOD}), challenge)
    _guarded(reg, "/v2/a/blobs/uploads/", send(202, b"", {"Location": "/v2/a/blobs/uploads/u1"}), challenge)
    new = sha256(b"new")  # not there: HEAD finds nothing (no challenge), then POST and PUT ask for push
    _guarded(reg, f"/v2/a/blobs/uploads/u1?{urllib.parse.urlencode({'digest': new})}", send(201), challenge)
    pull = "/token?" + urllib.parse.urlencode({"service": "reg", "scope": "repository:a:pull"})
    push = "/token?" + urllib.parse.urlencode({"service": "reg", "scope": "repository:a:pull,push"})
    for call, scope in ((lambda c: c.get_manifest("a", "v1"), pull),
                        (lambda c: c.get_blob("a", GOOD, limit=1 << 20), pull),
                        (lambda c: c.referrers("a", GOOD), pull), (lambda c: c.has_blob("a", GOOD), pull),
                        (lambda c: c.head_manifest("a", "v9"), pull),
                        (lambda c: c.put_manifest("a", "v2", MANIFEST, OCI_MANIFEST), push),
                        (lambda c: c.put_blob("a", b"new"), push)):
        reg.seen.clear()
        call(Client(reg.host))
        assert _token_paths(reg)[:1] == [scope]


def test_a_challenge_is_answered_once_per_scope(reg: StandIn, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    for name in ("MLSEC_REGISTRY_TOKEN", "MLSEC_REGISTRY_USERNAME", "MLSEC_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    reg.routes[TOKEN_A] = send(200, b'{"access_token": "tok-2"}')
    url = f"http://{reg.host}/v2/a/manifests/v1"
    _guarded(reg, "/v2/a/manifests/v1", send(200, MANIFEST), f'Bearer realm="http://{reg.host}/token",service="reg"',
             token="never")
    client = Client(reg.host)
    assert _fails(lambda: client.get_manifest("a", "v1")) == f"GET {url}: HTTP 401"
    assert _fails(lambda: client.get_manifest("a", "v1")) == f"GET {url}: HTTP 401"
    assert _token_paths(reg) == [TOKEN_A]  # the second call reuses the token it has
    assert reg.seen[2].headers["authorization"] == "Bearer tok-2"
    assert capsys.readouterr().out.splitlines() == ["::add-mask::tok-2"]


def test_a_401_without_a_bearer_challenge_is_not_retried(reg: StandIn) -> None:
    url = f"http://{reg.host}/v2/a/manifests/v1"
    for headers in ({}, {"WWW-Authenticate": 'Basic realm="registry"'}):
        reg.seen.clear()
        reg.routes["/v2/a/manifests/v1"] = send(401, b"", headers)
        assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")) == f"GET {url}: HTTP 401"
        assert len(reg.seen) == 1


@pytest.mark.parametrize(("answer", "why"), [
    (b"[]", "no token in the answer"), (b'{"token": ""}', "no token in the answer"),
    (b'{"token": 5}', "no token in the answer"), (b"{", "JSONDecodeError: Expecting property name enclosed in "
                                                   "double quotes: line 1 column 2 (char 1)"),
])
def test_token_answers_that_are_not_a_token(reg: StandIn, answer: bytes, why: str) -> None:
    reg.routes["/token?scope=repository%3Aa%3Apull"] = send(200, answer)
    reg.routes["/v2/a/manifests/v1"] = send(401, b"", {"WWW-Authenticate": f'Bearer realm="http://{reg.host}/token"'})
    realm = f"http://{reg.host}/token"
    assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")).startswith(f"registry token from {realm}: {why}")


def test_token_answers_are_bounded_at_64_kib(reg: StandIn) -> None:
    realm = f"http://{reg.host}/token"
    reg.routes["/v2/a/manifests/v1"] = send(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}"'})
    reg.routes["/token?scope=repository%3Aa%3Apull"] = send(200, b'{"token": "t"}'.ljust(64 * 1024 + 1))
    assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")) == (
        f"{realm}: the registry announced 65537 bytes, more than the 65536 allowed")


def test_token_realms_that_cannot_be_used(reg: StandIn) -> None:
    reg.routes["/v2/a/manifests/v1"] = send(401, b"", {"WWW-Authenticate": 'Bearer service="reg"'})
    assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")) == "registry token realm '' is not HTTPS"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        realm = f"http://127.0.0.1:{s.getsockname()[1]}/token"
    reg.routes["/v2/a/manifests/v1"] = send(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}"'})
    assert _fails(lambda: Client(reg.host).get_manifest("a", "v1")) == (
        f"registry token from {realm}: URLError: <urlopen error [Errno 111] Connection refused>")
    with socket.socket() as listener:  # a token service that never answers: the client's timeout holds
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        realm = f"http://127.0.0.1:{listener.getsockname()[1]}/token"
        reg.routes["/v2/a/manifests/v1"] = send(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}"'})
        assert _fails(lambda: Client(reg.host, timeout=1).get_manifest("a", "v1")) == (
            f"registry token from {realm}: TimeoutError: timed out")


# -- TLS ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """An HTTPS stand-in on 127.0.0.1 whose certificate a test CA issued; the client trusts that CA only."""
    ca_pem, _, ca, ca_key = make_certificate(tmp_path, "ca", host="127.0.0.1", days=(-1, 30), issuer=None)
    cert, key, _, _ = make_certificate(tmp_path, "server", host="127.0.0.1", days=(-1, 30), issuer=(ca, ca_key))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    stand_in = StandIn(modern_context(cert, key))
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def test_redirects_to_https_are_followed_and_never_back_to_http(reg: StandIn, tls: StandIn) -> None:
    tls.routes[f"/store/{GOOD}"] = send(200, MANIFEST)
    tls.routes["/store/down"] = send(302, b"", {"Location": f"{reg.base}/v2/a/blobs/{GOOD}"})
    tls.routes["/store/hop"] = send(302, b"", {"Location": f"{tls.base}/store/{GOOD}"})  # HTTPS to HTTPS
    tls.routes["/token?scope=repository%3Ac%3Apull"] = send(200, b'{"token": "tok-1"}')
    reg.routes[f"/v2/a/blobs/{GOOD}"] = send(307, b"", {"Location": f"{tls.base}/store/{GOOD}"})
    reg.routes[f"/v2/b/blobs/{GOOD}"] = send(307, b"", {"Location": f"{tls.base}/store/down"})
    client = Client(reg.host)
    assert client.get_blob("a", GOOD, limit=1 << 20) == MANIFEST
    reg.routes[f"/v2/d/blobs/{GOOD}"] = send(307, b"", {"Location": f"{tls.base}/store/hop"})
    assert client.get_blob("d", GOOD, limit=1 << 20) == MANIFEST
    assert _fails(lambda: client.get_blob("b", GOOD, limit=1 << 20)) == (
        f"registry redirected from HTTPS to '{reg.base}/v2/a/blobs/{GOOD}'")
    _guarded(reg, "/v2/c/manifests/v1", send(200, MANIFEST), f'Bearer realm="{tls.base}/token"')
    assert client.get_manifest("c", "v1") == Manifest(MANIFEST, OCI_MANIFEST, GOOD)  # an https realm is used


def test_a_refused_redirect_of_a_write_keeps_the_registrys_error(reg: StandIn) -> None:
    body = b'{"errors": [{"code": "MOVED", "message": "elsewhere"}]}'
    reg.routes["/v2/a/manifests/v1"] = send(307, body, {"Location": f"{reg.base}/v2/a/manifests/v2"})
    assert _fails(lambda: Client(reg.host).put_manifest("a", "v1", MANIFEST, OCI_MANIFEST)) == (
        f"PUT {reg.base}/v2/a/manifests/v1: HTTP 307 MOVED elsewhere")  # urllib follows no PUT
