"""key backend: bundles round-trip, are valid Sigstore v0.3 JSON, and reject other keys and edits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore_models.bundle.v1 import Bundle as SigstoreBundle

from mlsec_actions.errors import InputError
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import key
from mlsec_actions.signing.interface import BUNDLE_MEDIA_TYPE, SigningError, VerificationError

DIGEST = hashlib.sha256(b"model weights").digest()
STATEMENT = b'{"_type": "https://in-toto.io/Statement/v1"}'


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    return tmp_path / "k.pem", tmp_path / "k.pub"


def _pair(keypair: tuple[Path, Path]) -> tuple[key.KeySigner, key.KeyVerifier]:
    return (key.KeySigner(key.load_private_key(keypair[0])),
            key.KeyVerifier(bl.load_public_key(keypair[1])))


def test_digest_round_trip_and_bundle_shape(keypair: tuple[Path, Path]) -> None:
    signer, verifier = _pair(keypair)
    bundle = signer.sign_digest(DIGEST)
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(keypair[1].read_bytes()).hexdigest()
    SigstoreBundle.from_json(json.dumps(bundle))  # the protobuf-JSON shape Sigstore clients parse
    assert verifier.accepts(bundle)
    assert verifier.verify_digest(bundle, DIGEST).startswith("key ")


def test_digest_of_another_file_is_named(keypair: tuple[Path, Path]) -> None:
    signer, verifier = _pair(keypair)
    bundle = signer.sign_digest(DIGEST)
    other = hashlib.sha256(b"other").digest()
    with pytest.raises(VerificationError, match=f"digest mismatch.*{other.hex()}"):
        verifier.verify_digest(bundle, other)


def test_dsse_round_trip_and_edit(keypair: tuple[Path, Path]) -> None:
    signer, verifier = _pair(keypair)
    bundle = signer.sign_dsse("application/vnd.in-toto+json", STATEMENT)
    SigstoreBundle.from_json(json.dumps(bundle))
    assert verifier.verify_dsse(bundle).payload == STATEMENT
    bundle["dsseEnvelope"]["payload"] = bl.b64(STATEMENT.replace(b"v1", b"v2"))
    with pytest.raises(VerificationError, match="statement was modified"):
        verifier.verify_dsse(bundle)


def test_other_key_is_rejected(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    signer, _ = _pair(keypair)
    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    other = key.KeyVerifier(bl.load_public_key(tmp_path / "o.pub"))
    with pytest.raises(VerificationError, match="different key"):
        other.verify_digest(signer.sign_digest(DIGEST), DIGEST)


def test_forged_hint_does_not_help(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    _, verifier = _pair(keypair)
    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    forger = key.KeySigner(key.load_private_key(tmp_path / "o.pem"))
    bundle = forger.sign_digest(DIGEST)
    bundle["verificationMaterial"]["publicKey"]["hint"] = bl.key_hint(bl.load_public_key(keypair[1]))
    with pytest.raises(VerificationError, match="does not verify"):
        verifier.verify_digest(bundle, DIGEST)


def test_key_from_environment(keypair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key.ENV_KEY, keypair[0].read_text())
    signer = key.KeySigner(key.load_private_key(None))
    verifier = key.KeyVerifier(bl.load_public_key(keypair[1]))
    verifier.verify_digest(signer.sign_digest(DIGEST), DIGEST)


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(key.ENV_KEY, raising=False)
    with pytest.raises(SigningError, match="--key FILE or set MLSEC_SIGNING_KEY"):
        key.load_private_key(None)


def test_non_p256_key_is_refused(tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP384R1())
    path = tmp_path / "p384.pem"
    path.write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    with pytest.raises(InputError, match="P-256"):
        key.load_private_key(path)


def test_pae_matches_the_dsse_spec() -> None:
    # The example from the DSSE v1 protocol document.
    assert bl.pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
