"""Pure parts of image signing: tags, the simple-signing payload, its type check, keyless certificates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from mlsec_actions.oci import cosign
from mlsec_actions.oci.client import RegistryError
from mlsec_actions.oci.image_sign import CosignKey, _certificate_pem, image_statement
from mlsec_actions.oci.reference import parse
from mlsec_actions.signing import key
from mlsec_actions.signing.interface import SigningError
from mlsec_actions.signing.statements import Kind, require_typed

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sigstore"
DIGEST = "sha256:" + "cd" * 32


def test_signature_tags() -> None:
    assert cosign.tag_for(DIGEST, ".sig") == "sha256-" + "cd" * 32 + ".sig"
    assert cosign.tag_for(DIGEST, "") == "sha256-" + "cd" * 32
    with pytest.raises(RegistryError):
        cosign.tag_for("sha256:../../x", ".sig")


def test_simple_signing_payload_round_trip_and_type_check() -> None:
    ref = parse(f"ghcr.io/o/app@{DIGEST}")
    payload = cosign.simple_signing_payload(ref, DIGEST)
    assert cosign.read_simple_signing(payload) == ("ghcr.io/o/app", DIGEST)
    for bad in (b"[]", b"{", json.dumps({"critical": {"type": "atomic container signature"}}).encode(),
                json.dumps({"critical": {"type": cosign.COSIGN_TYPE, "image": {}}}).encode()):
        with pytest.raises(ValueError, match="signed payload"):
            cosign.read_simple_signing(bad)


def test_cosign_key_signs_only_simple_signing_payloads(tmp_path: Path) -> None:
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    signer = CosignKey(key.load_private_key(tmp_path / "k.pem"))
    statement = image_statement(Kind.IMAGE, parse(f"ghcr.io/o/app@{DIGEST}"), {})
    with pytest.raises(SigningError, match="refusing to sign"):
        signer.sign_payload(statement)  # an in-toto statement is not a cosign payload
    assert signer.sign_payload(cosign.simple_signing_payload(parse(f"ghcr.io/o/app@{DIGEST}"), DIGEST))


def test_image_statements_are_typed_and_name_the_image() -> None:
    ref = parse(f"127.0.0.1:5000/app@{DIGEST}")
    for kind in (Kind.IMAGE, Kind.IMAGE_GATE, Kind.IMAGE_SBOM):
        doc = json.loads(image_statement(kind, ref, {"x": 1}))
        require_typed(image_statement(kind, ref, {}))
        assert doc["subject"] == [{"name": "127.0.0.1:5000/app", "digest": {"sha256": "cd" * 32}}]
        assert doc["predicateType"] == kind.value and doc["predicate"] == {"x": 1}


def test_keyless_certificate_becomes_a_pem_annotation() -> None:
    bundle = json.loads((FIXTURES / "bundle_v3_github.whl.sigstore").read_text())  # a real GitHub Actions bundle
    pem = _certificate_pem(bundle)
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert "sigstore" in cert.issuer.rfc4514_string().lower()
    assert _certificate_pem({"verificationMaterial": {"publicKey": {"hint": "x"}}}) == ""
