"""The registry client against a hostile registry STAND-IN on loopback: every lie is one RegistryError line.

The stand-in answers each path with what a compromised or broken registry could send: bytes that do not hash to
the digest asked for, a tag whose claimed digest is not its bytes, bodies past the limits (announced or
streamed), redirect loops and redirects off HTTPS or off loopback, and error bodies with workflow commands.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.oci.client import MAX_MANIFEST_BYTES, OCI_MANIFEST, Client, RegistryError

Route = Callable[[BaseHTTPRequestHandler], None]
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()
GOOD = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OTHER = "sha256:" + "0" * 64


def _send(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return route


def _stream(total: int) -> Route:
    """A body with no Content-Length, sent until the client stops reading (connection close ends it)."""
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", OCI_MANIFEST)
        h.send_header("Connection", "close")
        h.end_headers()
        chunk = b" " * 65536
        try:
            for _ in range(total // len(chunk)):
                h.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True
    return route


class Stand_in:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                stand_in.seen.append(f"{self.command} {self.path}")
                stand_in.routes.get(self.path, _send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'))(self)

            do_GET = do_HEAD = do_PUT = do_POST = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture(scope="module")
def registry() -> Iterator[Stand_in]:
    stand_in = Stand_in()
    yield stand_in
    stand_in.server.shutdown()


def _fails(registry: Stand_in, call: Callable[[Client], object], expected: str) -> str:
    with pytest.raises(RegistryError) as info:
        call(Client(registry.host, timeout=10))
    text = str(info.value)
    assert expected in text, text
    assert "\n" not in text and "\r" not in text
    return text


def test_manifest_whose_bytes_are_not_the_digest_asked_for(registry: Stand_in) -> None:
    registry.routes[f"/v2/app/manifests/{OTHER}"] = _send(200, MANIFEST, {"Content-Type": OCI_MANIFEST})
    _fails(registry, lambda c: c.get_manifest("app", OTHER), f"whose digest is {GOOD}, not {OTHER}")


def test_tag_whose_claimed_digest_is_not_its_bytes(registry: Stand_in) -> None:
    registry.routes["/v2/app/manifests/v1"] = _send(200, MANIFEST, {"Docker-Content-Digest": OTHER})
    _fails(registry, lambda c: c.get_manifest("app", "v1"), f"whose digest is {GOOD}, not {OTHER}")
    registry.routes["/v2/app/manifests/v2"] = _send(200, MANIFEST, {"Docker-Content-Digest": GOOD})
    manifest = Client(registry.host).get_manifest("app", "v2")
    assert manifest is not None and manifest.digest == GOOD and manifest.media_type == OCI_MANIFEST


def test_blob_whose_bytes_are_not_its_digest(registry: Stand_in) -> None:
    registry.routes[f"/v2/app/blobs/{OTHER}"] = _send(200, b"not the blob")
    _fails(registry, lambda c: c.get_blob("app", OTHER, limit=1024), "blob whose digest is sha256:")


def test_huge_bodies_are_refused_not_truncated(registry: Stand_in) -> None:
    registry.routes["/v2/app/manifests/big"] = _send(200, b"", {"Content-Length": str(MAX_MANIFEST_BYTES + 1)})
    _fails(registry, lambda c: c.get_manifest("app", "big"), f"announced {MAX_MANIFEST_BYTES + 1} bytes")
    registry.routes["/v2/app/manifests/stream"] = _stream(8 * MAX_MANIFEST_BYTES)
    _fails(registry, lambda c: c.get_manifest("app", "stream"), f"more than the {MAX_MANIFEST_BYTES} bytes")
    registry.routes[f"/v2/app/blobs/{GOOD}"] = _send(200, MANIFEST)
    _fails(registry, lambda c: c.get_blob("app", GOOD, limit=10), "more than the 10 allowed")


def test_redirect_loops_and_unsafe_redirects(registry: Stand_in) -> None:
    base = f"http://{registry.host}"
    registry.routes["/v2/app/manifests/loop"] = _send(302, b"", {"Location": f"{base}/v2/app/manifests/loop"})
    _fails(registry, lambda c: c.get_manifest("app", "loop"), "HTTP 302")
    for n in range(8):  # a chain longer than MAX_REDIRECTS, each hop new
        nxt = f"{base}/v2/app/manifests/hop{n + 1}"
        registry.routes[f"/v2/app/manifests/hop{n}"] = _send(307, b"", {"Location": nxt})
    _fails(registry, lambda c: c.get_manifest("app", "hop0"), "HTTP 307")
    registry.routes["/v2/app/manifests/away"] = _send(302, b"", {"Location": "http://192.0.2.1/v2/x"})
    _fails(registry, lambda c: c.get_manifest("app", "away"), "only HTTPS (or HTTP on loopback) is followed")
    assert not [s for s in registry.seen if "192.0.2.1" in s]


def test_credentials_are_not_sent_along_a_redirect(registry: Stand_in, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def capture(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization"))
        _send(200, MANIFEST, {"Content-Type": OCI_MANIFEST})(h)

    def first(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Authorization"))
        _send(307, b"", {"Location": f"http://{registry.host}/storage/blob"})(h)

    registry.routes[f"/v2/app/blobs/{GOOD}"] = first
    registry.routes["/storage/blob"] = capture
    monkeypatch.setenv("MLSEC_REGISTRY_TOKEN", "secret-token")
    assert Client(registry.host).get_blob("app", GOOD, limit=1 << 20) == MANIFEST
    assert seen == ["Bearer secret-token", None]


def test_error_bodies_stay_one_line(registry: Stand_in) -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "no\n::error::forged\r\nline"}]}).encode()
    registry.routes["/v2/app/manifests/denied"] = _send(403, body)
    text = _fails(registry, lambda c: c.get_manifest("app", "denied"), "HTTP 403 DENIED")
    assert "::error::" not in text


def test_verify_image_fails_closed_on_a_lying_registry(registry: Stand_in, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from mlsec_actions.signing import key

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    registry.routes[f"/v2/lie/manifests/{OTHER}"] = _send(200, MANIFEST, {"Content-Type": OCI_MANIFEST})
    code = cli.main(["verify-image", f"{registry.host}/lie@{OTHER}", "--public-key", str(tmp_path / "k.pub"),
                     "--json", str(tmp_path / "r.json")])
    assert code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("verify-image:")]
    assert len(err) == 1 and err[0].startswith(f"verify-image: FAIL {registry.host}/lie@{OTHER} (unresolved)")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["ok"] is False and "not " + OTHER in report["images"][0]["problems"][0]


def test_sign_image_refuses_a_lying_registry_before_writing(registry: Stand_in, tmp_path: Path) -> None:
    from mlsec_actions.signing import key

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    (tmp_path / "v.json").write_text('{"verdict": "pass"}')
    registry.seen.clear()
    registry.routes["/v2/lie/manifests/v1"] = _send(200, MANIFEST, {"Docker-Content-Digest": OTHER})
    assert cli.main(["sign-image", f"{registry.host}/lie:v1", "--backend", "key", "--key", str(tmp_path / "k.pem"),
                     "--verdict", str(tmp_path / "v.json")]) == 1
    assert registry.seen == ["GET /v2/lie/manifests/v1"]  # nothing was uploaded


def test_a_registry_with_the_referrers_api_gets_no_fallback_tag(registry: Stand_in) -> None:
    from mlsec_actions.oci import cosign

    bundle = b'{"bundle": 1}'
    for blob in (b"{}", bundle):
        registry.routes[f"/v2/api/blobs/sha256:{hashlib.sha256(blob).hexdigest()}"] = _send(200, blob)
    subject = cosign.Subject(GOOD, OCI_MANIFEST, len(MANIFEST))
    registry.seen.clear()

    def put(h: BaseHTTPRequestHandler) -> None:
        stored["manifest"] = h.rfile.read(int(h.headers["Content-Length"]))
        _send(201, b"", {"OCI-Subject": GOOD})(h)

    stored: dict[str, bytes] = {}
    digest = "sha256:" + hashlib.sha256(_referrer_bytes(bundle, subject)).hexdigest()
    registry.routes[f"/v2/api/manifests/{digest}"] = put
    cosign_digest = _push_at_fixed_time(registry, subject, bundle)
    assert cosign_digest == digest
    assert [s for s in registry.seen if "manifests" in s] == [f"PUT /v2/api/manifests/{digest}"]  # no fallback tag
    # Reading: the referrers API's index is used, and an entry about another manifest is named, not trusted.
    registry.routes[f"/v2/api/manifests/{digest}"] = _send(200, stored["manifest"], {"Content-Type": OCI_MANIFEST})
    index = {"schemaVersion": 2, "manifests": [{"digest": digest, "artifactType": cosign.BUNDLE_ARTIFACT}]}
    registry.routes[f"/v2/api/referrers/{GOOD}"] = _send(200, json.dumps(index).encode())
    assert cosign.read_referrers(Client(registry.host), "api", GOOD) == ([bundle], [])
    registry.routes[f"/v2/api/referrers/{OTHER}"] = _send(200, json.dumps(index).encode())
    assert cosign.read_referrers(Client(registry.host), "api", OTHER) == (
        [], [f"referrer {digest} is about '{GOOD}', not {OTHER}"])


FIXED_TIME = "2026-01-01T00:00:00Z"


def _referrer_bytes(bundle: bytes, subject: object) -> bytes:
    from mlsec_actions.oci import cosign

    assert isinstance(subject, cosign.Subject)
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": cosign.BUNDLE_ARTIFACT,
        "config": {"mediaType": cosign.OCI_EMPTY, "size": 2, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
        "layers": [{"mediaType": cosign.BUNDLE_ARTIFACT, "size": len(bundle),
                    "digest": "sha256:" + hashlib.sha256(bundle).hexdigest()}],
        "subject": {"mediaType": subject.media_type, "size": subject.size, "digest": subject.digest},
        "annotations": {cosign.BUNDLE_CONTENT: "dsse-envelope", cosign.BUNDLE_PREDICATE: "p",
                        "org.opencontainers.image.created": FIXED_TIME}}, separators=(",", ":")).encode()


def _push_at_fixed_time(registry: Stand_in, subject: object, bundle: bytes) -> str:
    import time
    from unittest import mock

    from mlsec_actions.oci import cosign

    assert isinstance(subject, cosign.Subject)
    with mock.patch.object(time, "strftime", return_value=FIXED_TIME):
        return cosign.push_referrer(Client(registry.host), "api", subject, bundle, "dsse-envelope", "p")


def test_hostile_inputs_are_refused_before_the_registry_is_contacted(registry: Stand_in, tmp_path: Path) -> None:
    import os

    from mlsec_actions.signing import key

    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    (tmp_path / "v.json").write_text('{"verdict": "pass"}')
    (tmp_path / "spdx.json").write_text('{"spdxVersion": "SPDX-2.3"}')
    os.mkfifo(tmp_path / "fifo.json")
    registry.seen.clear()
    ref = f"{registry.host}/app@{GOOD}"
    base = ["sign-image", ref, "--backend", "key", "--key", str(tmp_path / "k.pem"), "--verdict"]
    assert cli.main([*base, str(tmp_path / "v.json"), "--sbom", str(tmp_path / "spdx.json")]) == 2
    assert cli.main([*base, str(tmp_path / "v.json"), "--sbom", str(tmp_path / "fifo.json")]) == 2
    assert cli.main([*base, str(tmp_path / "fifo.json")]) == 2
    assert cli.main(["sign-image", ref, "--backend", "key", "--key", str(tmp_path / "k.pub"), "--verdict",
                     str(tmp_path / "v.json")]) == 2  # a public key is not a signing key
    assert registry.seen == []


def test_bearer_challenge_is_answered_once_and_only_from_a_safe_realm(registry: Stand_in,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSEC_REGISTRY_USERNAME", "bot")
    monkeypatch.setenv("MLSEC_REGISTRY_PASSWORD", "pw")
    asked: list[tuple[str, str | None]] = []

    def guarded(h: BaseHTTPRequestHandler) -> None:
        asked.append((h.path, h.headers.get("Authorization")))
        if h.headers.get("Authorization") == "Bearer tok-1":
            _send(200, MANIFEST, {"Content-Type": OCI_MANIFEST})(h)
        else:
            challenge = f'Bearer realm="http://{registry.host}/token",service="reg",scope="repository:auth:pull"'
            _send(401, b"{}", {"WWW-Authenticate": challenge})(h)

    def token(h: BaseHTTPRequestHandler) -> None:
        asked.append((h.path, h.headers.get("Authorization")))
        _send(200, b'{"token": "tok-1"}')(h)

    registry.routes["/v2/auth/manifests/v1"] = guarded
    registry.routes["/token?service=reg&scope=repository%3Aauth%3Apull"] = token
    manifest = Client(registry.host).get_manifest("auth", "v1")
    assert manifest is not None and manifest.digest == GOOD
    assert asked == [("/v2/auth/manifests/v1", "Basic Ym90OnB3"),
                     ("/token?service=reg&scope=repository%3Aauth%3Apull", "Basic Ym90OnB3"),
                     ("/v2/auth/manifests/v1", "Bearer tok-1")]
    # A challenge pointing the credentials at a plain-HTTP host elsewhere is refused, not followed.
    registry.routes["/v2/auth/manifests/v2"] = _send(401, b"{}", {
        "WWW-Authenticate": 'Bearer realm="http://192.0.2.1/token",service="reg"'})
    _fails(registry, lambda c: c.get_manifest("auth", "v2"), "token realm 'http://192.0.2.1/token' is not HTTPS")


def test_signature_layers_are_bounded_by_declared_size_and_a_total(registry: Stand_in,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsec_actions.oci import cosign

    blob = b"x" * 100
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    registry.routes[f"/v2/b/blobs/{digest}"] = _send(200, blob)

    def tag(name: str, sizes: list[object]) -> None:
        layers = [{"mediaType": cosign.SIMPLE_SIGNING, "digest": digest, "size": n} for n in sizes]
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": layers}).encode()
        registry.routes[f"/v2/b/manifests/{name}"] = _send(200, body, {"Content-Type": OCI_MANIFEST})

    def read(name: str) -> list[cosign.Layer]:
        return cosign.read_layers(Client(registry.host), "b", name, cosign.SIMPLE_SIGNING)

    tag("ok", [100, 100])
    assert [len(layer.data) for layer in read("ok")] == [100, 100]
    tag("short", [50])  # the descriptor says less than the registry sends
    _fails(registry, lambda c: read("short"), "more than the 50 allowed")
    tag("long", [200])
    _fails(registry, lambda c: read("long"), "the blob is 100 bytes, its descriptor says 200")
    tag("huge", [cosign.MAX_LAYER_BYTES + 1])
    _fails(registry, lambda c: read("huge"), f"declares size {cosign.MAX_LAYER_BYTES + 1}")
    tag("bool", [True])
    _fails(registry, lambda c: read("bool"), "declares size True")
    monkeypatch.setattr(cosign, "MAX_TOTAL_BYTES", 250)
    tag("many", [100, 100, 100])
    _fails(registry, lambda c: read("many"), "add up to more than 250 bytes")
