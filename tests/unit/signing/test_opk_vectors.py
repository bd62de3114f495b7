"""OpenPubkey reference-format facts, checked against the vectors read from the reference implementation
(`../shared/specs/openpubkey/`, copied here as data in tests/fixtures/openpubkey/ so CI has them)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

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


# -- GQ256 parameters, encoding and the forgeries its range checks stop ---------------------------------------------
def test_gq_parameters_follow_the_exponent_and_the_modulus_length() -> None:
    # t = ceil(256 / floor(log2 e)), vBytes = ceil((bits(e) - 1) / 8), nBytes = ceil(bits(n) / 8)
    odd = 2 ** 2048 + 1  # 2,049 bits: one byte more than a 2048-bit modulus
    assert (gq.Params.for_rsa(odd, 3).t, gq.Params.for_rsa(odd, 3).v_bytes) == (256, 1)
    assert (gq.Params.for_rsa(odd, 513).t, gq.Params.for_rsa(odd, 513).v_bytes) == (29, 2)
    assert (gq.Params.for_rsa(odd, 2 ** 24 + 1).t, gq.Params.for_rsa(odd, 2 ** 24 + 1).v_bytes) == (11, 3)
    assert gq.Params.for_rsa(odd, 3).n_bytes == 257
    assert gq.Params.for_rsa(2 ** 2047 + 1, 3).n_bytes == 256
    for e in (1, 2, 4, 65536, -3):
        with pytest.raises(ValueError, match=r"^GQ256 needs an odd RSA exponent of at least 3$"):
            gq.Params.for_rsa(odd, e)


def test_pkcs1_encoding_is_exact_and_needs_eleven_bytes_of_padding() -> None:
    digest = hashlib.sha256(b"m").digest()
    info = bytes.fromhex("3031300d060960864801650304020105000420")
    assert gq.pkcs1_v15_sha256(b"m", 62) == int.from_bytes(b"\x00\x01" + b"\xff" * 8 + b"\x00" + info + digest, "big")
    with pytest.raises(ValueError, match=r"^RSA modulus too short for PKCS#1 v1\.5$"):
        gq.pkcs1_v15_sha256(b"m", 61)


def test_a_gq_signature_of_zero_or_n_responses_is_refused_not_accepted() -> None:
    # With S_i = 0 (or n, or 0 mod n) every commitment is 0 whatever the challenge: anyone can compute R and so
    # forge a signature over any message without the issuer's RSA signature. Only the range check stops it.
    n = _github_modulus()
    p = gq.Params.for_rsa(n, 65537)
    g, message = gq.pkcs1_v15_sha256(b"header.payload", p.n_bytes), b"gqheader.forged"
    for s in (0, n):
        responses = s.to_bytes(p.n_bytes, "big") * p.t
        big_r = gq.shake256(bytes(p.n_bytes * p.t) + message, p.t * p.v_bytes)
        assert not gq.verify_core(p, g, message, gq.shake256, big_r + responses)
        assert not gq.verify(n, 65537, b"header.payload", message, big_r + responses)


def test_gq_sign_refuses_an_rsa_signature_outside_the_modulus() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = key.public_key().public_numbers().n
    rsa_sig = key.sign(b"identity", padding.PKCS1v15(), hashes.SHA256())
    over = (int.from_bytes(rsa_sig, "big") + n).to_bytes(257, "big")  # the same residue, not a signature value
    for bad, identity in ((over, b"identity"), (rsa_sig, b"another identity"), (bytes(256), b"identity")):
        with pytest.raises(ValueError, match=r"^the RSA signature does not verify: nothing to prove$"):
            gq.sign(n, 65537, bad, identity, b"message")


def _github_modulus() -> int:
    jwks = json.loads((FIXTURES / "github-jwks-snapshot.json").read_text())
    return int.from_bytes(j.unb64url(jwks["keys"][0]["n"], "n"), "big")


# -- JOSE: strict base64url, Go's JSON, bounded JSON, keys -------------------------------------------------------------
def test_base64url_refusals_name_what_and_why() -> None:
    assert j.unb64url("", "x") == b"" and j.unb64url("AQAB", "x") == b"\x01\x00\x01"
    for bad in (None, 5, b"AQAB", "AQAB=", "A", "AQ+B"):
        with pytest.raises(VerificationError, match=r"^openpubkey: the thing is not base64url$"):
            j.unb64url(bad, "the thing")
    with pytest.raises(VerificationError, match=r"^openpubkey: the thing is not canonical base64url$"):
        j.unb64url("AR", "the thing")  # 'AQ' with non-zero trailing bits


def test_go_json_refuses_what_go_cannot_encode() -> None:
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            j.go_json({"a": value})
    assert j.go_json({"b": [1, {"d": 2, "c": 3}], "a": None}) == b'{"a":null,"b":[1,{"c":3,"d":2}]}'


def test_json_depth_counts_brackets_outside_strings_only() -> None:
    def nested(depth: int) -> bytes:
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)

    assert j.json_object(nested(j.MAX_JSON_DEPTH), "claims")
    with pytest.raises(VerificationError, match=r"^openpubkey: claims is not a JSON object: nested too deep$"):
        j.json_object(nested(j.MAX_JSON_DEPTH + 1), "claims")
    siblings = b"{" + b",".join(b'"k%d":{"x":[]}' % i for i in range(40)) + b"}"  # wide, three deep
    assert len(j.json_object(siblings, "claims")) == 40
    brackets = b'{"a":"' + b"[{" * 40 + b'"}'  # brackets inside a string are text
    assert j.json_object(brackets, "claims") == {"a": "[{" * 40}
    escaped = b'{"a":"\\"' + b"[" * 40 + b'\\\\","b":' + b"[" * 15 + b"]" * 15 + b"}"  # \" and \\ inside it
    assert j.json_object(escaped, "claims")["a"] == '"' + "[" * 40 + "\\"
    deep_after_string = b'{"a":"x","b":' + b"[" * 16 + b"]" * 16 + b"}"  # the string ends at its quote
    with pytest.raises(VerificationError, match="nested too deep"):
        j.json_object(deep_after_string, "claims")


def test_json_object_refusals_name_what() -> None:
    for data in (b"[]", b'"s"', b"1", b"null"):
        with pytest.raises(VerificationError, match=r"^openpubkey: the header is not a JSON object$"):
            j.json_object(data, "the header")
    for data, why in ((b"\xff{}", "utf-8"), (b'{"a":Infinity}', "Infinity"), (b'{"a":-Infinity}', "-Infinity"),
                      (b"{", "Expecting")):
        with pytest.raises(VerificationError, match=rf"^openpubkey: the header is not a JSON object: .*{why}"):
            j.json_object(data, "the header")


def test_rsa_issuer_keys_are_rs256_and_2048_bits_at_least() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    def jwk(bits: int, **extra: str) -> dict[str, str]:
        nums = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key().public_numbers()
        return {"kty": "RSA", "e": j.b64url(nums.e.to_bytes(3, "big")),
                "n": j.b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))} | extra

    good = jwk(2048)
    assert j.rsa_public_key(good, "k").key_size == 2048
    assert j.rsa_public_key({**good, "alg": "RS256"}, "k").key_size == 2048
    with pytest.raises(VerificationError, match=r"^openpubkey: k is for 'PS256', not RS256$"):
        j.rsa_public_key({**good, "alg": "PS256"}, "k")
    with pytest.raises(VerificationError, match=r"^openpubkey: k is not an RSA key$"):
        j.rsa_public_key({**good, "kty": "EC"}, "k")
    with pytest.raises(VerificationError, match=r"^openpubkey: k is a 1024-bit RSA key; 2048 bits at least$"):
        j.rsa_public_key(jwk(1024), "k")
    with pytest.raises(VerificationError, match=r"^openpubkey: k is not a usable RSA key: "):
        j.rsa_public_key({**good, "e": "Ag"}, "k")  # e = 2
    with pytest.raises(VerificationError, match=r"^openpubkey: k e is not base64url$"):
        j.rsa_public_key({**good, "e": None}, "k")
    with pytest.raises(VerificationError, match=r"^openpubkey: k n is not base64url$"):
        j.rsa_public_key({**good, "n": "A"}, "k")


def test_ec_keys_are_p256_points_of_32_byte_coordinates() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = j.ec_jwk(key.public_key())
    assert j.ec_public_key(jwk, "upk").public_numbers() == key.public_key().public_numbers()
    for bad in ("k", {**jwk, "kty": "RSA"}, {**jwk, "crv": "P-384"}, {k: v for k, v in jwk.items() if k != "crv"}):
        with pytest.raises(VerificationError, match=r"^openpubkey: upk is not a P-256 JWK$"):
            j.ec_public_key(bad, "upk")
    for coords in ({"x": j.b64url(bytes(31))}, {"y": j.b64url(bytes(33))}):
        with pytest.raises(VerificationError, match=r"^openpubkey: upk coordinates are not 32 bytes$"):
            j.ec_public_key({**jwk, **coords}, "upk")
    with pytest.raises(VerificationError, match=r"^openpubkey: upk x is not base64url$"):
        j.ec_public_key({**jwk, "x": None}, "upk")
    with pytest.raises(VerificationError, match=r"^openpubkey: upk y is not base64url$"):
        j.ec_public_key({**jwk, "y": "A"}, "upk")
    with pytest.raises(VerificationError, match=r"^openpubkey: upk is not a point on P-256$"):
        j.ec_public_key({**jwk, "y": j.b64url(bytes(31) + b"\x01")}, "upk")


def test_es256_signatures_are_raw_64_bytes() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    sig = j.es256_sign(key, b"input")
    assert len(sig) == 64 and j.es256_valid(key.public_key(), sig, b"input")
    assert not j.es256_valid(key.public_key(), sig, b"other input")
    assert not j.es256_valid(key.public_key(), sig[:32] + sig[:32], b"input")  # r twice: the s half is read
    assert not j.es256_valid(key.public_key(), sig[32:] + sig[32:], b"input")  # s twice: the r half is read
    assert not j.es256_valid(key.public_key(), sig + b"\0", b"input")
    assert not j.es256_valid(key.public_key(), b"\0" + sig[:-1], b"input")


def test_each_gq256_response_uses_its_own_challenge_chunk() -> None:
    # Recomputed here from the definition: W_i = r_i^v, R = SHAKE256(W || m), S_i = r_i * Q^(R_i) mod n with R_i
    # the i-th vBytes of R, big-endian. (The ISO vector has one round, so it cannot tell the chunks apart.)
    n = _github_modulus()
    p = gq.Params.for_rsa(n, 65537)
    q, randoms, message = 0x1234567 ** 40 % n, [(i + 2) ** 99 % n for i in range(p.t)], b"op.payload"
    sig = gq.sign_core(p, q, message, gq.shake256, randoms)
    w = b"".join(pow(r, p.v, n).to_bytes(p.n_bytes, "big") for r in randoms)
    big_r = hashlib.shake_256(w + message).digest(p.t * p.v_bytes)
    assert sig[:len(big_r)] == big_r
    for i, r in enumerate(randoms):
        c = int.from_bytes(big_r[i * p.v_bytes:(i + 1) * p.v_bytes], "big")
        at = len(big_r) + i * p.n_bytes
        assert int.from_bytes(sig[at:at + p.n_bytes], "big") == r * pow(q, c, n) % n
    assert gq.verify_core(p, pow(pow(q, -1, n), p.v, n), message, gq.shake256, sig)


def test_json_depth_counts_again_after_a_string_that_held_an_escape() -> None:
    # One escape covers one character: the string still ends at its next unescaped quote, and what follows counts.
    for escape in (b"\\n", b"\\\\", b'\\"', b"\\u0041"):
        deep = b'{"a":"' + escape + b'x","b":' + b"[" * 16 + b"]" * 16 + b"}"
        with pytest.raises(VerificationError, match=r"^openpubkey: claims is not a JSON object: nested too deep$"):
            j.json_object(deep, "claims")
        assert j.json_object(b'{"a":"' + escape + b'x","b":' + b"[" * 15 + b"]" * 15 + b"}", "claims")


def test_json_depth_counts_brackets_only_not_stray_text() -> None:
    # Garbage outside strings neither opens nor closes a level: the refusal says what is wrong with the text.
    with pytest.raises(VerificationError) as e:
        j.json_object(b"X" * 17 + b"[]", "claims")
    assert str(e.value) == "openpubkey: claims is not a JSON object: Expecting value: line 1 column 1 (char 0)"
    with pytest.raises(VerificationError) as e:
        j.json_object(b"X" * 5 + b"[" * 17 + b"]" * 17, "claims")
    assert str(e.value) == "openpubkey: claims is not a JSON object: nested too deep"


def test_base64url_drops_only_padding_never_a_trailing_letter() -> None:
    # 'X' and '=' are both at the end of some encodings; only the padding goes.
    for data, text in ((b"\x00\x00\x17", "AAAX"), (b"\x00\x01\x7d", "AAF9"), (b"\x00\x05\xd7", "AAXX"),
                       (b"\x00", "AA")):
        assert j.b64url(data) == text and j.unb64url(text, "x") == data


def test_json_depth_after_a_closed_sibling_goes_on_from_the_level_it_closed_to() -> None:
    # 15 levels, an empty list closed at 16, then a sibling list two deeper: 17 levels in all.
    deep = b'{"a":' + b"[" * 14 + b"[],[[]]" + b"]" * 14 + b"}"
    with pytest.raises(VerificationError, match=r"^openpubkey: claims is not a JSON object: nested too deep$"):
        j.json_object(deep, "claims")
    assert j.json_object(b'{"a":' + b"[" * 13 + b"[],[[]]" + b"]" * 13 + b"}", "claims")  # 16 levels


@pytest.mark.parametrize("drawn", ["lowest", "highest"])
def test_gq_sign_draws_each_r_from_1_to_n_minus_1(monkeypatch: pytest.MonkeyPatch, drawn: str) -> None:
    """Each round's r is uniform in [1, n-1]: randbelow(n - 1) + 1. Off by one or two, no signature shows it
    (2 values of 2**2048), so the draw itself is checked at both ends."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=2048)
    n, e = key.public_key().public_numbers().n, key.public_key().public_numbers().e
    identity = b"header.payload"
    rsa_signature = key.sign(identity, padding.PKCS1v15(), hashes.SHA256())
    bounds: list[int] = []
    seen: list[list[int]] = []

    def randbelow(bound: int) -> int:
        bounds.append(bound)
        return 0 if drawn == "lowest" else bound - 1

    def sign_core(p: gq.Params, q: int, message: bytes, xof: Any, randoms: list[int]) -> bytes:
        seen.append(list(randoms))
        return b""

    monkeypatch.setattr("mlsec_actions.signing.opk.gq.secrets.randbelow", randbelow)
    monkeypatch.setattr(gq, "sign_core", sign_core)
    gq.sign(n, e, rsa_signature, identity, b"message")
    params = gq.Params.for_rsa(n, e)
    assert bounds == [n - 1] * params.t
    assert seen == [[1 if drawn == "lowest" else n - 1] * params.t]
