"""The PK Token: one ID-token payload, signed by the issuer (GQ256 in place of its RS256) and by the client
key the token's `aud` commits to (the CIC signature).

Serialisations: JSON `{"payload", "signatures": [OP, CIC]}` and compact `P:Hop:Sop:Hcic:Scic`. The payload
segment is never re-encoded: every signature covers those exact bytes. Verification follows the reference
verifier's order, and each failure names its step.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.opk import gq
from mlsec_actions.signing.opk import jose as j

CIC_ALG = "ES256"
"""The client key's algorithm (the reference also allows RS256 and EdDSA; we make and read ES256 only)."""
MAX_AGE_SECONDS = 24 * 3600
"""The reference verifier's default: a token is accepted until 24 hours after its `iat`."""
_RESERVED_CIC = frozenset({"alg", "upk", "rz", "typ"})


def commitment(cic_header: dict[str, Any]) -> str:
    """base64url(SHA3-256(Go JSON of the CIC protected header)): the value GitHub puts in `aud`."""
    return j.b64url(hashlib.sha3_256(j.go_json(cic_header)).digest())


def cic_header(key: ec.EllipticCurvePublicKey, rz: str | None = None) -> dict[str, Any]:
    return {"alg": CIC_ALG, "rz": rz if rz is not None else secrets.token_hex(32), "typ": "CIC",
            "upk": j.ec_jwk(key)}


@dataclass(frozen=True)
class PKToken:
    """The five base64url segments of a PK Token (no cosigner)."""

    payload: str
    """The ID token's payload segment, verbatim."""
    op_protected: str
    """The GQ256 header: `alg`, `jkt`, `kid` (the original header segment), `typ`."""
    op_signature: str
    """GQ256 signature (4,128 bytes for a 2048-bit issuer key)."""
    cic_protected: str
    """The CIC header the `aud` commits to."""
    cic_signature: str
    """ES256 signature by the client key over `cic_protected.payload`."""

    def compact(self) -> str:
        return ":".join((self.payload, self.op_protected, self.op_signature, self.cic_protected, self.cic_signature))

    def json(self) -> dict[str, Any]:
        return {"payload": self.payload, "signatures": [
            {"protected": self.op_protected, "signature": self.op_signature},
            {"protected": self.cic_protected, "signature": self.cic_signature}]}

    def hash(self) -> str:
        """The OSM `kid`: SHA3-256 of the canonical JSON form (never of the bytes received)."""
        return j.b64url(hashlib.sha3_256(j.go_json(self.json())).digest())

    def claims(self) -> dict[str, Any]:
        return j.segment_json(self.payload, "PK token payload")

    def client_key(self) -> ec.EllipticCurvePublicKey:
        return j.ec_public_key(j.segment_json(self.cic_protected, "CIC header").get("upk"), "CIC upk")


MAX_PKT_CHARS = 64 * 1024
"""A GitHub PK Token is about 7 KB; larger is refused before it is split."""


def parse_compact(text: object) -> PKToken:
    if not isinstance(text, str) or len(text) > MAX_PKT_CHARS:
        raise VerificationError("openpubkey: the PK token is missing or too large")
    parts = text.split(":")
    if len(parts) != 5:  # the reference allows a cosigner (7) and a refreshed token; we make neither
        raise VerificationError(f"openpubkey: a PK token has 5 ':'-separated parts (OP and CIC), not {len(parts)}")
    return _roles(parts[0], [(parts[1], parts[2]), (parts[3], parts[4])])


def parse_json(doc: object) -> PKToken:
    if not isinstance(doc, dict) or set(doc) != {"payload", "signatures"} or not isinstance(doc["signatures"], list):
        raise VerificationError("openpubkey: the PK token JSON must hold exactly payload and signatures")
    pairs = []
    for sig in doc["signatures"]:
        if not isinstance(sig, dict) or set(sig) != {"protected", "signature"}:
            raise VerificationError("openpubkey: each PK token signature holds exactly protected and signature")
        pairs.append((sig["protected"], sig["signature"]))
    return _roles(doc["payload"], pairs)


def _roles(payload: object, pairs: list[tuple[object, object]]) -> PKToken:
    """Each signature's role from its `typ`: JWT (or none) is the issuer's, CIC the client's."""
    found: dict[str, tuple[str, str]] = {}
    for protected, signature in pairs:
        typ = j.segment_json(protected, "PK token protected header").get("typ", "JWT")
        role = {"JWT": "op", "at+jwt": "op", "dpop+id_token": "op", "CIC": "cic"}.get(typ) if isinstance(
            typ, str) else None
        if role is None:
            raise VerificationError(f"openpubkey: PK token signature of unsupported typ {typ!r}")
        if role in found:
            raise VerificationError(f"openpubkey: PK token has more than one {role.upper()} signature")
        j.unb64url(signature, f"{role.upper()} signature")
        found[role] = (str(protected), str(signature))
    if set(found) != {"op", "cic"}:
        raise VerificationError("openpubkey: a PK token needs exactly one OP and one CIC signature")
    j.segment_json(payload, "PK token payload")
    return PKToken(str(payload), *found["op"], *found["cic"])


def issue(id_token: str, jwk: dict[str, Any], key: ec.EllipticCurvePrivateKey, cic: dict[str, Any]) -> PKToken:
    """A PK Token from an RS256 ID token whose `aud` is `commitment(cic)`, GQ-signed with the issuer key `jwk`."""
    parts = id_token.split(".")
    if len(parts) != 3:
        raise ValueError("the ID token is not a compact JWS")
    header_seg, payload_seg, sig_seg = parts
    header = j.segment_json(header_seg, "ID token header")
    if header.get("alg") != "RS256":
        raise ValueError(f"the ID token is signed with {header.get('alg')!r}; GQ256 needs RS256")
    if j.segment_json(payload_seg, "ID token payload").get("aud") != commitment(cic):
        raise ValueError("the ID token's audience is not the commitment to our key")
    rsa_key = j.rsa_public_key(jwk, "issuer key").public_numbers()
    op_header = {"alg": "GQ256", "jkt": j.rsa_thumbprint(jwk), "kid": header_seg, "typ": "JWT"}
    op_seg = j.b64url(j.go_json(op_header))
    signature = gq.sign(rsa_key.n, rsa_key.e, j.unb64url(sig_seg, "ID token signature"),
                        f"{header_seg}.{payload_seg}".encode("ascii"), f"{op_seg}.{payload_seg}".encode("ascii"))
    cic_seg = j.b64url(j.go_json(cic))
    cic_sig = j.es256_sign(key, f"{cic_seg}.{payload_seg}".encode("ascii"))
    return PKToken(payload_seg, op_seg, j.b64url(signature), cic_seg, j.b64url(cic_sig))


@dataclass(frozen=True)
class Checked:
    """A PK Token that verified: its claims and the client key it binds."""

    claims: dict[str, Any]
    """The ID token's claims."""
    key: ec.EllipticCurvePublicKey
    """The client key (CIC `upk`)."""


def verify(pkt: PKToken, issuer: str, jwks: dict[str, Any], max_age: int | None = MAX_AGE_SECONDS,
           now: float | None = None) -> Checked:
    """The reference verifier's checks, in its order; the first that fails names itself."""
    key = _check_cic(pkt)
    claims = pkt.claims()
    if claims.get("iss") != issuer:  # 2. the issuer selects the provider
        raise VerificationError(f"openpubkey: issuer: token issuer {claims.get('iss')!r}, expected {issuer!r}")
    op = j.segment_json(pkt.op_protected, "OP header")
    if op.get("alg") != "GQ256":  # 3. GitHub's RS256 signature must have been replaced
        raise VerificationError(f"openpubkey: OP algorithm: {op.get('alg')!r}, GQ256 required (an RS256 token "
                                "is a bearer token anyone who saw it could replay)")
    original = j.segment_json(op.get("kid"), "original header (OP kid)")  # 4.
    if original.get("alg") != "RS256":
        raise VerificationError(f"openpubkey: original header: alg {original.get('alg')!r}, expected RS256")
    rsa_key = _jwks_key(jwks, original.get("kid"))  # 5.
    nums = rsa_key.public_numbers()
    try:  # 6.
        ok = gq.verify(nums.n, nums.e, f"{op['kid']}.{pkt.payload}".encode("ascii"),
                       f"{pkt.op_protected}.{pkt.payload}".encode("ascii"), j.unb64url(pkt.op_signature, "GQ"))
    except ValueError:
        ok = False
    if not ok:
        raise VerificationError("openpubkey: GQ256: the issuer's signature does not verify")
    if op.get("typ", "JWT") == "dpop+id_token":  # 7.
        raise VerificationError("openpubkey: commitment: key-bound (dpop) tokens carry no audience commitment")
    aud = claims.get("aud")
    if not isinstance(aud, str) or not secrets.compare_digest(
            aud, commitment(j.segment_json(pkt.cic_protected, "CIC header"))):
        raise VerificationError("openpubkey: commitment: the token's aud does not commit to the CIC")
    iat = claims.get("iat")  # 8.
    if not isinstance(iat, int) or isinstance(iat, bool) or iat <= 0:
        raise VerificationError("openpubkey: expiry: the token has no positive integer iat")
    if max_age is not None and (time.time() if now is None else now) > iat + max_age:
        raise VerificationError(f"openpubkey: expiry: the token was issued more than {max_age} s ago "
                                "(--max-token-age sets the policy)")
    return Checked(claims, key)


def _check_cic(pkt: PKToken) -> ec.EllipticCurvePublicKey:
    """1. The CIC names its key and nonce, the key's own `alg` agrees, and the CIC signature verifies."""
    cic = j.segment_json(pkt.cic_protected, "CIC header")
    missing = sorted(k for k in ("rz", "upk", "alg") if k not in cic)
    if missing:
        raise VerificationError(f"openpubkey: CIC: missing {missing}")
    upk = cic["upk"]
    if cic["alg"] != CIC_ALG or not isinstance(upk, dict) or upk.get("alg") != cic["alg"]:
        raise VerificationError(f"openpubkey: CIC: alg {cic['alg']!r} with a upk for "
                                f"{upk.get('alg') if isinstance(upk, dict) else None!r}; ES256 in both expected")
    key = j.ec_public_key(upk, "CIC upk")
    extra = sorted(k for k in cic if k not in _RESERVED_CIC and not isinstance(cic[k], str))
    if extra:
        raise VerificationError(f"openpubkey: CIC: extra claims must be strings: {extra}")
    if not j.es256_valid(key, j.unb64url(pkt.cic_signature, "CIC signature"),
                         f"{pkt.cic_protected}.{pkt.payload}".encode("ascii")):
        raise VerificationError("openpubkey: CIC: the client signature does not verify")
    return key


def _jwks_key(jwks: dict[str, Any], kid: object) -> rsa.RSAPublicKey:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise VerificationError("openpubkey: JWKS: no keys")
    chosen = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid] if kid is not None else (
        [k for k in keys if isinstance(k, dict)] if len(keys) == 1 else [])
    if len(chosen) != 1:
        raise VerificationError(f"openpubkey: JWKS: no single key with kid {kid!r} in the issuer's JWKS")
    return j.rsa_public_key(chosen[0], "JWKS key")
