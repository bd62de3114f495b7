"""GQ256: a Guillou-Quisquater signature that proves knowledge of the issuer's RSA signature on an ID token
without revealing it, so a published PK Token cannot be replayed as a bearer token.

The RSA signature `s` satisfies `s^e = G (mod n)` with `G` the PKCS#1 v1.5 encoding of SHA-256 of the
token's signing input; `Q = s^-1` is the secret. Parameters for an issuer key `(n, e)`: `t` rounds of
`vBytes`-long challenges, with `t = ceil(256 / floor(log2 e))` so the challenge space is 2^256 (16 rounds of
2 bytes for e = 65537). The challenge is SHAKE256 over the commitments and the new signing input. The core
(`sign_core`/`verify_core`) takes the hash and `t` as parameters, so the ISO/IEC 14888-2 vector checks it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

Challenge = Callable[[bytes, int], bytes]
"""(data, length) -> the first `length` bytes of the challenge hash over `data`."""

# DigestInfo prefix of SHA-256 in EMSA-PKCS1-v1_5 (RFC 8017, section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def shake256(data: bytes, length: int) -> bytes:
    return hashlib.shake_256(data).digest(length)


@dataclass(frozen=True)
class Params:
    """GQ parameters for one issuer key."""

    n: int
    """RSA modulus."""
    v: int
    """Public exponent (RSA `e`)."""
    t: int
    """Rounds."""
    n_bytes: int
    """Byte length of `n`: each commitment and response is this long."""
    v_bytes: int
    """Byte length of each challenge."""

    @classmethod
    def for_rsa(cls, n: int, e: int) -> Params:
        if e < 3 or e % 2 == 0:
            raise ValueError("GQ256 needs an odd RSA exponent of at least 3")
        return cls(n, e, t=math.ceil(256 / math.floor(math.log2(e))), n_bytes=(n.bit_length() + 7) // 8,
                   v_bytes=math.ceil((e.bit_length() - 1) / 8))

    @property
    def signature_length(self) -> int:
        return self.t * self.v_bytes + self.t * self.n_bytes


def pkcs1_v15_sha256(message: bytes, n_bytes: int) -> int:
    """EMSA-PKCS1-v1_5 of SHA-256(message) as an integer: what the issuer's RSA signature raised to `e` is."""
    t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    if n_bytes < len(t) + 11:
        raise ValueError("RSA modulus too short for PKCS#1 v1.5")
    return int.from_bytes(b"\x00\x01" + b"\xff" * (n_bytes - len(t) - 3) + b"\x00" + t, "big")


def sign_core(p: Params, q: int, message: bytes, challenge: Challenge, randoms: list[int]) -> bytes:
    """R || S_1..S_t for secret `q`, with the given random `r_i` (one per round)."""
    w = b"".join(pow(r, p.v, p.n).to_bytes(p.n_bytes, "big") for r in randoms)
    big_r = challenge(w + message, p.t * p.v_bytes)
    s = b"".join((r * pow(q, _chunk(big_r, i, p.v_bytes), p.n) % p.n).to_bytes(p.n_bytes, "big")
                 for i, r in enumerate(randoms))
    return big_r + s


def verify_core(p: Params, g: int, message: bytes, challenge: Challenge, signature: bytes) -> bool:
    if len(signature) != p.signature_length:
        return False
    r_len = p.t * p.v_bytes
    big_r = signature[:r_len]
    w = bytearray()
    for i in range(p.t):
        s_i = int.from_bytes(signature[r_len + i * p.n_bytes:r_len + (i + 1) * p.n_bytes], "big")
        if s_i == 0 or s_i >= p.n:
            return False
        w += (pow(s_i, p.v, p.n) * pow(g, _chunk(big_r, i, p.v_bytes), p.n) % p.n).to_bytes(p.n_bytes, "big")
    return secrets.compare_digest(challenge(bytes(w) + message, r_len), big_r)


def _chunk(data: bytes, i: int, size: int) -> int:
    return int.from_bytes(data[i * size:(i + 1) * size], "big")


def sign(n: int, e: int, rsa_signature: bytes, identity: bytes, message: bytes) -> bytes:
    """GQ256 over `message`, proving knowledge of the RSA signature over `identity` (checked first)."""
    p = Params.for_rsa(n, e)
    s = int.from_bytes(rsa_signature, "big")
    if not 0 < s < n or pow(s, e, n) != pkcs1_v15_sha256(identity, p.n_bytes):
        raise ValueError("the RSA signature does not verify: nothing to prove")
    randoms = [secrets.randbelow(n - 1) + 1 for _ in range(p.t)]
    return sign_core(p, pow(s, -1, n), message, shake256, randoms)


def verify(n: int, e: int, identity: bytes, message: bytes, signature: bytes) -> bool:
    p = Params.for_rsa(n, e)
    return verify_core(p, pkcs1_v15_sha256(identity, p.n_bytes), message, shake256, signature)
