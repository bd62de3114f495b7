"""`key` backend: an ECDSA P-256 PEM key, for air-gapped and local use.

The private key comes from `--key FILE` or the `MLSEC_SIGNING_KEY` environment variable (fed by a
secret or a KMS fetch in the caller); it is never printed. Bundles carry a public-key hint (hex
SHA-256 of the PEM public key) where keyless bundles carry a certificate.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions import gha
from mlsec_actions.errors import InputError
from mlsec_actions.inputs import read_regular
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import Bundle, SignedPayload, Signer, SigningError, VerificationError, Verifier

ENV_KEY = "MLSEC_SIGNING_KEY"
"""Environment variable holding the PEM private key."""
ENV_PASSWORD = "MLSEC_SIGNING_KEY_PASSWORD"  # noqa: S105 - a variable name, not a password
"""Optional password of an encrypted PEM key."""


def load_private_key(path: Path | None, source: str = "") -> ec.EllipticCurvePrivateKey:
    """The signing key from a file, a secret store (`--key-source`, `MLSEC_KEY_SOURCE`), else from
    `MLSEC_SIGNING_KEY`."""
    from mlsec_actions.signing import key_sources

    where: object
    source = source or ("" if path is not None else os.environ.get(key_sources.ENV_SOURCE, ""))
    if path is not None:
        data = read_regular(path, "private key", 64 * 1024)
        where = path
    elif source:
        data, where = key_sources.fetch(source)
    elif os.environ.get(ENV_KEY):
        data = os.environ[ENV_KEY].encode("utf-8")
        gha.mask(os.environ[ENV_KEY])
        where = f"${ENV_KEY}"
    else:
        raise SigningError(f"key backend: no key; pass --key FILE or --key-source, or set {ENV_KEY} to a PEM "
                           "private key")
    password = os.environ.get(ENV_PASSWORD)
    try:
        key = serialization.load_pem_private_key(data, password.encode("utf-8") if password else None)
    except (ValueError, TypeError) as e:
        raise InputError(where, f"not a usable PEM private key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(where, "not an ECDSA key; the key backend uses P-256")
    bl.check_p256(key, where)
    return key


def generate(private_out: Path, public_out: Path) -> None:
    """Write a fresh unencrypted P-256 key pair (tests and `docs/signing.md` examples)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private_out.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    private_out.chmod(0o600)
    public_out.write_bytes(bl.public_pem(key.public_key()))


class KeySigner(Signer):
    name = "key"

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._hint = bl.key_hint(key.public_key())

    def _sign(self, statement: bytes) -> Bundle:
        return bl.sign_statement(self._key, self._hint, statement)


class KeyVerifier(Verifier):
    name = "key"

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._key = public_key
        self._hint = bl.key_hint(public_key)

    def accepts(self, bundle: Bundle) -> bool:
        hint = bl.hint_of(bundle)
        return hint is not None and not hint.startswith("openpubkey")

    def _check_hint(self, bundle: Bundle) -> None:
        if bl.hint_of(bundle) != self._hint:
            raise VerificationError(f"signed by a different key (hint {bl.hint_of(bundle)}, expected {self._hint})")

    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        self._check_hint(bundle)
        payload_type, payload, sig = bl.dsse_parts(bundle)
        if not bl.verify_data(self._key, sig, bl.pae(payload_type, payload)):
            raise VerificationError("DSSE signature does not verify: the signed statement was modified")
        return SignedPayload(payload_type, payload, f"key {self._hint[:16]}")
