"""JOSE pieces the PK Token needs, each as the reference implementation does it.

Base64url is decoded strictly (no padding, no stray characters, canonical trailing bits), since two
encodings of one value are two tokens to a verifier that compares strings. JSON is read with duplicate
keys refused: a parser that keeps the first and one that keeps the last would judge different claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from mlsec_actions.json_strict import no_duplicate_keys
from mlsec_actions.signing.interface import VerificationError

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
MIN_RSA_BITS = 2048
"""GitHub's keys are 2048-bit; a smaller issuer key (a pinned JWKS can name anything) is refused."""
MAX_JSON_DEPTH = 16
"""Headers and claims are shallow; anything deeper is refused before it is parsed."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: object, what: str) -> bytes:
    """Strict base64url without padding, or a VerificationError naming `what`."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise VerificationError(f"openpubkey: {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VerificationError(f"openpubkey: {what} is not base64url") from None
    if b64url(data) != text:  # non-zero trailing bits: a second spelling of the same bytes
        raise VerificationError(f"openpubkey: {what} is not canonical base64url")
    return data


def go_json(value: Any) -> bytes:
    """Go's `json.Marshal` of a map: keys sorted at every level, no spaces, `<>&` and U+2028/9 escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text.encode("utf-8")


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object (UTF-8, no duplicate keys, shallow), or a VerificationError naming `what`."""
    try:
        text = data.decode("utf-8")
        if _depth(text) > MAX_JSON_DEPTH:
            raise ValueError("nested too deep")
        doc = json.loads(text, object_pairs_hook=no_duplicate_keys,
                         parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise VerificationError(f"openpubkey: {what} is not a JSON object: {e}") from None
    if not isinstance(doc, dict):
        raise VerificationError(f"openpubkey: {what} is not a JSON object")
    return doc


def segment_json(segment: object, what: str) -> dict[str, Any]:
    """A base64url JOSE segment holding a JSON object."""
    return json_object(unb64url(segment, what), what)


def _uint(value: object, what: str) -> int:
    return int.from_bytes(unb64url(value, what), "big")


def rsa_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an RSA JWK (the PK Token's `jkt`)."""
    members = {"e": jwk.get("e"), "kty": "RSA", "n": jwk.get("n")}
    return b64url(hashlib.sha256(go_json(members)).digest())


def rsa_public_key(jwk: dict[str, Any], what: str) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA":
        raise VerificationError(f"openpubkey: {what} is not an RSA key")
    if jwk.get("alg", "RS256") != "RS256":
        raise VerificationError(f"openpubkey: {what} is for {jwk.get('alg')!r}, not RS256")
    try:
        key = rsa.RSAPublicNumbers(_uint(jwk.get("e"), f"{what} e"), _uint(jwk.get("n"), f"{what} n")).public_key()
    except ValueError as e:
        raise VerificationError(f"openpubkey: {what} is not a usable RSA key: {e}") from None
    if key.key_size < MIN_RSA_BITS:
        raise VerificationError(f"openpubkey: {what} is a {key.key_size}-bit RSA key; {MIN_RSA_BITS} bits at least")
    return key


def ec_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The CIC's `upk`: a P-256 JWK that names its algorithm (the reference requires `alg` inside)."""
    nums = key.public_numbers()
    return {"alg": "ES256", "crv": "P-256", "kty": "EC",
            "x": b64url(nums.x.to_bytes(32, "big")), "y": b64url(nums.y.to_bytes(32, "big"))}


def ec_public_key(jwk: object, what: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise VerificationError(f"openpubkey: {what} is not a P-256 JWK")
    x, y = unb64url(jwk.get("x"), f"{what} x"), unb64url(jwk.get("y"), f"{what} y")
    if len(x) != 32 or len(y) != 32:
        raise VerificationError(f"openpubkey: {what} coordinates are not 32 bytes")
    try:
        return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                             ec.SECP256R1()).public_key()
    except ValueError:
        raise VerificationError(f"openpubkey: {what} is not a point on P-256") from None


def es256_sign(key: ec.EllipticCurvePrivateKey, signing_input: bytes) -> bytes:
    """JWS ES256: raw r||s, 64 bytes (not DER)."""
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def es256_valid(key: ec.EllipticCurvePublicKey, signature: bytes, signing_input: bytes) -> bool:
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
