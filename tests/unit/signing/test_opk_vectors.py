"""OpenPubkey reference-format facts, checked against the vectors read from the reference implementation
(`../shared/specs/openpubkey/`, copied here as data in tests/fixtures/openpubkey/ so CI has them)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.opk import gq, pktoken
from mlsec_actions.signing.opk import jose as j

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openpubkey"
VECTORS = json.loads((FIXTURES / "vectors.json").read_text())
ISO = json.loads((FIXTURES / "gq-iso-vector.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["commitment_vectors"], ids=lambda v: v["name"])
def test_commitment_vectors(vector: dict[str, object]) -> None:
    assert pktoken.commitment(vector["cic_protected_header"]) == vector["commitment"]  # type: ignore[arg-type]


def test_commitment_hashes_every_field_not_the_byte_order() -> None:
    header = dict(VECTORS["commitment_vectors"][0]["cic_protected_header"])
    reordered = dict(reversed(list(header.items())))
    assert pktoken.commitment(reordered) == VECTORS["commitment_vectors"][0]["commitment"]
    assert pktoken.commitment({**header, "extra": "x"}) != VECTORS["commitment_vectors"][0]["commitment"]


def test_rfc7638_thumbprint_vector() -> None:
    vector = VECTORS["jwk_thumbprint_vector"]
    assert j.rsa_thumbprint(vector["jwk"]) == vector["thumbprint"]


def test_go_json_escapes_as_go_does() -> None:
    expected = '{"a":"\\u2028\\u2029é","b":"\\u003c\\u0026\\u003e"}'.encode()
    assert j.go_json({"b": "<&>", "a": "\u2028\u2029é"}) == expected


def _iso() -> tuple[gq.Params, bytes]:
    n = int(ISO["n_hex"], 16)
    v = int(ISO["v_hex"], 16)
    return gq.Params(n, v, t=1, n_bytes=128, v_bytes=(v.bit_length() - 1 + 7) // 8), ISO["message_ascii"].encode()


def _sha1(data: bytes, length: int) -> bytes:
    return hashlib.sha1(data).digest()[:length]  # noqa: S324 - the ISO vector's hash


def test_iso_14888_2_gq1_vector_signs_and_verifies() -> None:
    params, message = _iso()
    sig = gq.sign_core(params, int(ISO["Q_hex"], 16), message, _sha1, [int(ISO["r_hex"], 16)])
    assert sig.hex().upper() == ISO["signature_hex"]
    assert gq.verify_core(params, int(ISO["G_hex"], 16), message, _sha1, sig)
    assert not gq.verify_core(params, int(ISO["G_hex"], 16), message + b"x", _sha1, sig)
    assert not gq.verify_core(params, int(ISO["G_hex"], 16), message, _sha1, sig[:-1] + bytes([sig[-1] ^ 1]))


def test_gq256_parameters_for_github_keys() -> None:
    n = int.from_bytes(j.unb64url(json.loads((FIXTURES / "github-jwks-snapshot.json").read_text())["keys"][0]["n"],
                                  "n"), "big")
    params = gq.Params.for_rsa(n, 65537)
    assert (params.t, params.v_bytes, params.n_bytes, params.signature_length) == (16, 2, 256, 4128)
    with pytest.raises(ValueError, match="odd"):
        gq.Params.for_rsa(n, 65536)


def test_gq256_round_trip_and_rejections() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n, e = key.public_key().public_numbers().n, 65537
    identity, message = b"header.payload", b"gqheader.payload"
    rsa_sig = key.sign(identity, padding.PKCS1v15(), hashes.SHA256())
    sig = gq.sign(n, e, rsa_sig, identity, message)
    assert len(sig) == 4128 and len(j.b64url(sig)) == 5504
    assert gq.verify(n, e, identity, message, sig)
    assert not gq.verify(n, e, b"header.other", message, sig)
    assert not gq.verify(n, e, identity, message + b"x", sig)
    zero_s = sig[:32] + bytes(256) + sig[32 + 256:]
    assert not gq.verify(n, e, identity, message, zero_s)
    big_s = sig[:32] + n.to_bytes(256, "big") + sig[32 + 256:]
    assert not gq.verify(n, e, identity, message, big_s)
    with pytest.raises(ValueError, match="does not verify"):
        gq.sign(n, e, rsa_sig, b"not what was signed", message)


@pytest.mark.parametrize("text", ["AQAB=", "AQ+B", "AQ/B", "A", "AR", " AQAB", "AQAB\n"])
def test_base64url_is_strict(text: str) -> None:
    with pytest.raises(VerificationError, match="base64url"):
        j.unb64url(text, "x")


def test_json_with_duplicate_keys_or_deep_nesting_is_refused() -> None:
    with pytest.raises(VerificationError, match="duplicate"):
        j.json_object(b'{"iss":"a","iss":"b"}', "claims")
    with pytest.raises(VerificationError, match="deep"):
        j.json_object(b'{"a":' * 40 + b"1" + b"}" * 40, "claims")
    with pytest.raises(VerificationError, match="NaN"):
        j.json_object(b'{"iat":NaN}', "claims")
