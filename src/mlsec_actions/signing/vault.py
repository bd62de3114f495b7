"""`vault` backend: sign with a HashiCorp Vault transit key (type `ecdsa-p256`) over Vault's HTTP API.

Each DSSE PAE is hashed here and sent prehashed (`POST /v1/<mount>/sign/<key>/sha2-256` with
`prehashed: true`, `marshaling_algorithm: asn1`), so the key never leaves Vault and a statement of any
size fits. Vault returns `vault:v<N>:<base64 DER>`: the same signature and public-key hint as the key
backend, so `mlsec verify --public-key vault.pub` accepts the bundles (`--public-key-out` exports the key
version that signed). Address and token come from `VAULT_ADDR` and `VAULT_TOKEN` (masked; e.g. from
hashicorp/vault-action's JWT login with the job's OIDC token), the mount from `MLSEC_VAULT_MOUNT`
(default `transit`). https only, plain http only to loopback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions import gha
from mlsec_actions.sanitize import log_line
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import INTOTO_PAYLOAD_TYPE, Bundle, Signer, SigningError

ENV_KEY = "MLSEC_VAULT_KEY"
"""Transit key name when `--vault-key` is not given."""
ENV_MOUNT = "MLSEC_VAULT_MOUNT"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MAX_RESPONSE = 1024 * 1024


def _base_url(addr: str) -> str:
    parts = urllib.parse.urlsplit(addr)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SigningError(f"vault backend: VAULT_ADDR must be https:// (plain http only to loopback), "
                           f"not {parts.scheme}://{parts.hostname}")
    return addr.rstrip("/")


class VaultSigner(Signer):
    name = "vault"

    def __init__(self, key_name: str, timeout: float = 30.0) -> None:
        addr, token = os.environ.get("VAULT_ADDR", ""), os.environ.get("VAULT_TOKEN", "")
        mount = os.environ.get(ENV_MOUNT, "transit")
        if not addr or not token:
            raise SigningError("vault backend: set VAULT_ADDR and VAULT_TOKEN (e.g. from hashicorp/vault-action)")
        if not key_name:
            raise SigningError(f"vault backend: no key; pass --vault-key NAME or set {ENV_KEY}")
        for what, value in (("key name", key_name), ("mount", mount)):
            if not _NAME.fullmatch(value):
                raise SigningError(f"vault backend: {what} {value!r} is not a plain Vault path segment")
        gha.mask(token)
        self._token, self._timeout = token, timeout
        self._base = f"{_base_url(addr)}/v1/{mount}"
        self._key_name = key_name
        meta = self._call("GET", f"keys/{key_name}")
        if meta.get("type") != "ecdsa-p256":
            raise SigningError(f"vault backend: transit key {key_name!r} is of type {meta.get('type')!r}, "
                               "not ecdsa-p256")
        self._version = meta.get("latest_version")
        versions = meta.get("keys")
        entry = versions.get(str(self._version)) if isinstance(versions, dict) else None
        pem = entry.get("public_key") if isinstance(entry, dict) else None
        try:
            public = serialization.load_pem_public_key(str(pem).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise SigningError(f"vault backend: key {key_name!r} version {self._version} has no usable public key"
                               ) from None
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise SigningError("vault backend: the transit key's public key is not an EC key")
        self.public_key = bl.check_p256(public, f"Vault key {key_name}")
        self._hint = bl.key_hint(self.public_key)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"X-Vault-Token": self._token, "Accept": "application/json"}
        if os.environ.get("VAULT_NAMESPACE"):
            headers["X-Vault-Namespace"] = os.environ["VAULT_NAMESPACE"]
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(f"{self._base}/{path}", data=data, method=method,  # noqa: S310 - checked
                                     headers={**headers, **({"Content-Type": "application/json"} if data else {})})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310 - scheme checked
                doc = json.loads(resp.read(_MAX_RESPONSE))
        except urllib.error.HTTPError as e:
            detail = ""
            try:
                errors = json.loads(e.read(_MAX_RESPONSE)).get("errors")
                detail = "; ".join(str(x) for x in errors) if isinstance(errors, list) else ""
            except (OSError, ValueError, AttributeError):
                pass
            raise SigningError(log_line(f"vault backend: {method} {path}: HTTP {e.code} {detail}")) from None
        except (OSError, ValueError) as e:
            raise SigningError(log_line(f"vault backend: {method} {path}: {e}")) from None
        inner = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(inner, dict):
            raise SigningError(f"vault backend: {method} {path}: the answer has no data object")
        return inner

    def _sign(self, statement: bytes) -> Bundle:
        signed = bl.pae(INTOTO_PAYLOAD_TYPE, statement)
        answer = self._call("POST", f"sign/{self._key_name}/sha2-256", {
            "input": base64.b64encode(hashlib.sha256(signed).digest()).decode("ascii"), "prehashed": True,
            "marshaling_algorithm": "asn1", "key_version": self._version})
        text = answer.get("signature")
        prefix = f"vault:v{self._version}:"
        if not isinstance(text, str) or not text.startswith(prefix):
            raise SigningError(f"vault backend: the signature is not of key version {self._version}")
        try:
            sig = base64.b64decode(text[len(prefix):], validate=True)
        except ValueError:
            raise SigningError("vault backend: the signature is not base64") from None
        if not bl.verify_data(self.public_key, sig, signed):  # a wrong key version or a broken proxy
            raise SigningError("vault backend: Vault returned a signature that does not verify under the key")
        return bl.dsse_bundle(self._hint, INTOTO_PAYLOAD_TYPE, statement, sig)
