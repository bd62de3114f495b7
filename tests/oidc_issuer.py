"""A local OIDC issuer on loopback: a STAND-IN for GitHub Actions' OIDC token service, for tests only.

It serves what GitHub's does, shaped the same way: the runner's token endpoint
(`ACTIONS_ID_TOKEN_REQUEST_URL?api-version=2.0&audience=...` with a bearer request token, answering
`{"count": ..., "value": JWT}`), OpenID discovery and a JWKS. Tokens are RS256 JWTs with GitHub's
claim names (`sub`, `repository`, `ref`, `workflow_ref`, `job_workflow_ref`, ...). Real GitHub
tokens cannot be obtained here, so this is what the OpenPubkey tests sign and verify against.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

T = TypeVar("T")

REPO = "octo-org/octo-repo"
WORKFLOW_REF = f"{REPO}/.github/workflows/release.yml@refs/heads/main"
IDENTITY = f"https://github.com/{WORKFLOW_REF}"
REQUEST_TOKEN = "stand-in-request-token"


@dataclass
class Issuer:
    """The running stand-in: its URL, its token endpoint, the JWKS it serves, and the tokens it issued."""

    url: str
    key: rsa.RSAPrivateKey
    kid: str = "stand-in-key-1"
    issued: list[dict[str, Any]] = field(default_factory=list)
    claims_override: dict[str, Any] = field(default_factory=dict)

    @property
    def token_url(self) -> str:
        return f"{self.url}/_apis/token?api-version=2.0"

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, audience: str) -> str:
        """A token with GitHub's claim set and header shape (`typ`, `alg`, `x5t`, `kid`), as in the OpenPubkey
        reference docs' GitHub example; the values are this stand-in's."""
        now = int(time.time())
        claims = {"jti": f"jti-{len(self.issued)}", "sub": f"repo:{REPO}:ref:refs/heads/main", "aud": audience,
                  "ref": "refs/heads/main", "sha": "0" * 40, "repository": REPO,
                  "repository_owner": REPO.split("/")[0], "repository_owner_id": "145685596",
                  "run_id": "10133323083", "run_number": "38", "run_attempt": "1", "repository_visibility": "public",
                  "repository_id": "771245825", "actor_id": "274814", "actor": "octocat", "workflow": "release",
                  "head_ref": "", "base_ref": "", "event_name": "push", "ref_protected": "false",
                  "ref_type": "branch", "workflow_ref": WORKFLOW_REF, "workflow_sha": "0" * 40,
                  "job_workflow_ref": WORKFLOW_REF, "job_workflow_sha": "0" * 40,
                  "runner_environment": "github-hosted", "iss": self.url,
                  "nbf": now - 5, "exp": now + 300, "iat": now, **self.claims_override}
        self.issued.append(claims)
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"typ": "JWT", "x5t": "stand-in-x5t", "kid": self.kid})

    def env(self) -> dict[str, str]:
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": self.token_url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet handler that answers JSON: the base of the loopback stand-ins (this issuer, tests/vault_transit.py)."""

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _json(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks",
                                 "id_token_signing_alg_values_supported": ["RS256"]})
            elif parts.path == "/.well-known/jwks":
                self._json(200, issuer.jwks())
            elif parts.path == "/_apis/token":
                if self.headers.get("Authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
                    self._json(401, {"message": "bad request token"})
                    return
                audience = urllib.parse.parse_qs(parts.query).get("audience", [""])[0]
                self._json(200, {"count": 1, "value": issuer.token(audience)})
            else:
                self._json(404, {"message": "not found"})

    return Handler


@contextmanager
def serve_loopback(make: Callable[[str], T], handler: Callable[[T], type[BaseHTTPRequestHandler]]) -> Iterator[T]:
    """A threaded HTTP server on a free loopback port: `make(url)` builds the state its `handler(state)` serves."""
    holder: list[T] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(holder[0])(*a))
    holder.append(make(f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with serve_loopback(lambda url: Issuer(url=url, key=key), _handler) as issuer:
        yield issuer
