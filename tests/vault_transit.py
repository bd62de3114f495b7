"""A loopback STAND-IN for HashiCorp Vault's transit engine, for tests only (Vault is not installable here).

It serves the documented endpoints the `vault` backend and the key backend's `vault-kv:` source use, shaped
as Vault answers them:
`GET /v1/<mount>/keys/<name>` (`data.type`, `data.latest_version`, `data.keys[<version>].public_key` PEM)
and `POST /v1/<mount>/sign/<name>/sha2-256` (`input` base64, `prehashed`, `marshaling_algorithm: asn1`,
`key_version`; answer `data.signature = "vault:v<N>:<base64 DER>"`), and KV v2 reads
(`GET /v1/<mount>/data/<path>`, answer `data.data.<field>`). The token goes in `X-Vault-Token`;
errors are `{"errors": [...]}` with Vault's status codes. Keys are real P-256 keys made per test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils

from tests.oidc_issuer import JsonHandler, serve_loopback

TOKEN = "stand-in-vault-token"


@dataclass
class Transit:
    url: str
    keys: dict[str, list[Any]] = field(default_factory=dict)
    """name -> key versions (index 0 is version 1)."""
    key_types: dict[str, str] = field(default_factory=dict)
    signed: list[str] = field(default_factory=list)
    kv: dict[str, dict[str, str]] = field(default_factory=dict)
    """KV v2 secrets: "<mount>/<path>" -> fields."""

    def add_key(self, name: str, kind: str = "ecdsa-p256") -> None:
        key = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa-p256" else rsa.generate_private_key(
            public_exponent=65537, key_size=2048)
        self.keys.setdefault(name, []).append(key)
        self.key_types[name] = kind

    def env(self) -> dict[str, str]:
        return {"VAULT_ADDR": self.url, "VAULT_TOKEN": TOKEN}


def _handler(transit: Transit) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _authorised(self) -> bool:
            if self.headers.get("X-Vault-Token") != TOKEN:
                self._json(403, {"errors": ["permission denied"]})
                return False
            return True

        def do_GET(self) -> None:
            parts = self.path.split("/")  # /v1/transit/keys/<name>, /v1/<mount>/data/<path>
            if not self._authorised():
                return
            if len(parts) >= 5 and parts[3] == "data" and f"{parts[2]}/{'/'.join(parts[4:])}" in transit.kv:
                self._json(200, {"data": {"data": transit.kv[f"{parts[2]}/{'/'.join(parts[4:])}"],
                                          "metadata": {"version": 1}}})
            elif len(parts) == 5 and parts[1:4] == ["v1", "transit", "keys"] and parts[4] in transit.keys:
                versions = transit.keys[parts[4]]
                pems = {str(i + 1): {"name": "P-256", "public_key": k.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
                    for i, k in enumerate(versions)}
                self._json(200, {"data": {"type": transit.key_types[parts[4]], "latest_version": len(versions),
                                          "keys": pems, "name": parts[4]}})
            else:
                self._json(404, {"errors": []})

        def do_POST(self) -> None:
            parts = self.path.split("/")  # /v1/transit/sign/<name>/sha2-256
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            if len(parts) != 6 or parts[1:4] != ["v1", "transit", "sign"] or parts[4] not in transit.keys:
                self._json(404, {"errors": []})
                return
            version = int(body.get("key_version") or len(transit.keys[parts[4]]))
            key = transit.keys[parts[4]][version - 1]
            digest = base64.b64decode(body["input"])
            if not body.get("prehashed") or len(digest) != 32 or parts[5] != "sha2-256":
                self._json(400, {"errors": ["this stand-in signs prehashed sha2-256 input only"]})
                return
            sig = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            transit.signed.append(parts[4])
            self._json(200, {"data": {"signature": f"vault:v{version}:{base64.b64encode(sig).decode()}",
                                      "key_version": version}})

    return Handler


@contextmanager
def running_transit() -> Iterator[Transit]:
    with serve_loopback(lambda url: Transit(url=url), _handler) as transit:
        yield transit
