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
from mlsec_actions.signing.interface import BUNDLE_MEDIA_TYPE, INTOTO_PAYLOAD_TYPE, SigningError, VerificationError
from mlsec_actions.signing.statements import file_statement

STATEMENT = file_statement("weights.bin", hashlib.sha256(b"model weights").hexdigest())


@pytest.fixture
def keypair(tmp_path: Path) -> tuple[Path, Path]:
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    return tmp_path / "k.pem", tmp_path / "k.pub"


def _pair(keypair: tuple[Path, Path]) -> tuple[key.KeySigner, key.KeyVerifier]:
    return (key.KeySigner(key.load_private_key(keypair[0])),
            key.KeyVerifier(bl.load_public_key(keypair[1])))


def test_statement_round_trip_and_bundle_shape(keypair: tuple[Path, Path]) -> None:
    signer, verifier = _pair(keypair)
    bundle = signer.sign_statement(STATEMENT)
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(keypair[1].read_bytes()).hexdigest()
    assert bundle["dsseEnvelope"]["payloadType"] == INTOTO_PAYLOAD_TYPE
    assert "messageSignature" not in bundle
    SigstoreBundle.from_json(json.dumps(bundle))  # the protobuf-JSON shape Sigstore clients parse
    assert verifier.accepts(bundle)
    signed = verifier.verify_dsse(bundle)
    assert signed.payload == STATEMENT
    assert signed.signer.startswith("key ")


def test_dsse_edit_is_detected(keypair: tuple[Path, Path]) -> None:
    signer, verifier = _pair(keypair)
    bundle = signer.sign_statement(STATEMENT)
    bundle["dsseEnvelope"]["payload"] = bl.b64(STATEMENT.replace(b"weights", b"backdoor"))
    with pytest.raises(VerificationError, match="statement was modified"):
        verifier.verify_dsse(bundle)


def test_a_bare_digest_bundle_is_not_accepted(keypair: tuple[Path, Path]) -> None:
    """What mlsec-actions signed for files before typed statements: refused, whoever made it."""
    _, verifier = _pair(keypair)
    with pytest.raises(VerificationError, match=r"messageSignature bundle .* not accepted: re-sign"):
        verifier.verify_message({"messageSignature": {}}, b"\0" * 32)


def test_other_key_is_rejected(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    signer, _ = _pair(keypair)
    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    other = key.KeyVerifier(bl.load_public_key(tmp_path / "o.pub"))
    with pytest.raises(VerificationError, match="different key"):
        other.verify_dsse(signer.sign_statement(STATEMENT))


def test_forged_hint_does_not_help(keypair: tuple[Path, Path], tmp_path: Path) -> None:
    _, verifier = _pair(keypair)
    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    forger = key.KeySigner(key.load_private_key(tmp_path / "o.pem"))
    bundle = forger.sign_statement(STATEMENT)
    bundle["verificationMaterial"]["publicKey"]["hint"] = bl.key_hint(bl.load_public_key(keypair[1]))
    with pytest.raises(VerificationError, match="does not verify"):
        verifier.verify_dsse(bundle)


def test_key_from_environment(keypair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(key.ENV_KEY, keypair[0].read_text())
    signer = key.KeySigner(key.load_private_key(None))
    verifier = key.KeyVerifier(bl.load_public_key(keypair[1]))
    verifier.verify_dsse(signer.sign_statement(STATEMENT))


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(key.ENV_KEY, raising=False)
    monkeypatch.delenv("MLSEC_KEY_SOURCE", raising=False)
    with pytest.raises(SigningError, match="--key FILE or --key-source, or set MLSEC_SIGNING_KEY"):
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


def test_key_from_environment_is_masked_line_by_line(keypair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """In Actions, every line of the PEM from MLSEC_SIGNING_KEY is masked before anything else is printed."""
    pem = keypair[0].read_text()
    monkeypatch.setenv(key.ENV_KEY, pem)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    key.load_private_key(None)
    out = capsys.readouterr().out.splitlines()
    body = [line for line in pem.splitlines() if line.strip() and not line.startswith("-----")]
    assert body, "the key has base64 lines to mask"
    for line in body:
        assert f"::add-mask::{line}" in out


def test_key_file_is_read_as_a_bounded_regular_file(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        key.load_private_key(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        bl.load_public_key(fifo)


@pytest.mark.parametrize("payload", [
    b"DSSEv1 28 application/vnd.in-toto+json 2 {}",  # raw bytes, e.g. a file's content
    b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1"}',
    b'{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://mlsec-actions.dev/signed-file/v1"}',
    b"[]",
])
def test_a_signer_signs_only_our_typed_statements(keypair: tuple[Path, Path], payload: bytes) -> None:
    signer, _ = _pair(keypair)
    with pytest.raises(SigningError, match="refusing to sign: not an in-toto Statement v1"):
        signer.sign_statement(payload)
