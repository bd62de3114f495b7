"""`openpubkey` backend: the PK-token idea, with GitHub Actions OIDC and no certificate authority.

Signing: generate an ephemeral P-256 key, build the client-instance claims `cic = {alg, upk, rz}`
(public key as a JWK and a random nonce), and request an OIDC ID token whose audience is the
commitment `base64url(sha256(canonical-JSON(cic)))`. The issuer's signature over that token now
binds the ephemeral key to the workflow identity. Statements (never bare digests) are signed with the ephemeral key; the
token and `cic` travel in the bundle's public-key hint (`openpubkey:<base64url JSON>`), which keeps
the bundle valid Sigstore v0.3 JSON.

Verification: the token's issuer must be the expected one; its signature is checked against the
issuer's JWKS (discovered via `/.well-known/openid-configuration`, or a pinned JWKS file for
offline checks); its audience must equal the commitment to the key in `cic`; its identity claims
must match; then the artifact signature is checked with that key. Token expiry is not enforced:
the token only has to have been valid when it was issued (`iat` is recorded); pin the JWKS in
long-term storage, since issuers rotate their keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions import gha
from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.interface import Bundle, SignedPayload, Signer, SigningError, VerificationError, Verifier

HINT_PREFIX = "openpubkey:"
"""Marks a bundle whose public-key hint carries an OIDC token and the key commitment."""
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64url(n: int) -> str:
    return _b64url(n.to_bytes(32, "big"))


def cic_for(key: ec.EllipticCurvePublicKey, nonce: str) -> dict[str, Any]:
    nums = key.public_numbers()
    upk = {"kty": "EC", "crv": "P-256", "x": _int_b64url(nums.x), "y": _int_b64url(nums.y)}
    return {"alg": "ES256", "upk": upk, "rz": nonce}


def commitment(cic: dict[str, Any]) -> str:
    """The audience value: what the issuer signs to vouch for the ephemeral key."""
    canonical = json.dumps(cic, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def key_from_cic(cic: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    upk = cic.get("upk")
    if cic.get("alg") != "ES256" or not isinstance(upk, dict) or upk.get("crv") != "P-256":
        raise VerificationError("openpubkey: the committed key is not an ES256 P-256 JWK")
    try:
        x = int.from_bytes(_unb64url(str(upk["x"])), "big")
        y = int.from_bytes(_unb64url(str(upk["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError):
        raise VerificationError("openpubkey: the committed key is not a valid P-256 point") from None


def request_github_token(audience: str, timeout: float = 30.0) -> str:
    """An ID token from the Actions token endpoint (needs `permissions: id-token: write`)."""
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise SigningError("openpubkey backend: no GitHub OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/"
                           "ACTIONS_ID_TOKEN_REQUEST_TOKEN unset); give the job `permissions: id-token: write`")
    gha.mask(bearer)
    full = _checked_url(f"{url}{'&' if '?' in url else '?'}audience={urllib.parse.quote(audience, safe='')}",
                        SigningError)
    req = urllib.request.Request(  # noqa: S310 - scheme checked by _checked_url
        full, headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            doc = json.loads(resp.read())
    except (OSError, ValueError) as e:
        raise SigningError(f"openpubkey backend: OIDC token request failed: {e}") from None
    token = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(token, str):
        raise SigningError("openpubkey backend: the OIDC token endpoint returned no token")
    gha.mask(token)
    return token


def _checked_url(url: str, error: type[SigningError | VerificationError]) -> str:
    """https only; plain http only to loopback (a local stand-in issuer)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise error(f"openpubkey: refusing to fetch {parts.scheme}://{parts.hostname}: https only")
    return url


class OpenPubkeySigner(Signer):
    name = "openpubkey"

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        cic = cic_for(self._key.public_key(), secrets.token_hex(32))
        token = request_github_token(commitment(cic))
        self._hint = HINT_PREFIX + _b64url(json.dumps({"idToken": token, "cic": cic}).encode("utf-8"))

    def _sign(self, statement: bytes) -> Bundle:
        return bl.sign_statement(self._key, self._hint, statement)


@dataclass(frozen=True)
class Expected:
    """The identity an OpenPubkey bundle's token must carry."""

    identity: str
    """`sub`, or `https://github.com/<job_workflow_ref>` / `<workflow_ref>` (the Sigstore-style identity)."""
    issuer: str
    """Exact `iss`, e.g. `https://token.actions.githubusercontent.com`."""
    repository: str | None = None
    """`repository` claim (`OWNER/REPO`), when it must also match."""
    ref: str | None = None
    """`ref` claim (`refs/heads/main`), when it must also match."""


def _get_json(url: str, timeout: float) -> Any:
    _checked_url(url, VerificationError)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            return json.loads(resp.read())
    except (OSError, ValueError) as e:
        raise VerificationError(f"openpubkey: cannot fetch {url}: {e}") from None


def fetch_jwks(issuer: str, timeout: float = 30.0) -> dict[str, Any]:
    config = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout)
    uri = config.get("jwks_uri") if isinstance(config, dict) else None
    if not isinstance(uri, str):
        raise VerificationError(f"openpubkey: {issuer} discovery document has no jwks_uri")
    jwks = _get_json(uri, timeout)
    if not isinstance(jwks, dict):
        raise VerificationError(f"openpubkey: {uri} is not a JWKS")
    return jwks


class OpenPubkeyVerifier(Verifier):
    name = "openpubkey"

    def __init__(self, expected: Expected, jwks_file: Path | None = None) -> None:
        self.expected = expected
        self._jwks: dict[str, Any] | None = None
        if jwks_file is not None:
            jwks = load_json(jwks_file, "JWKS", 1024 * 1024)
            if not isinstance(jwks, dict):
                raise InputError(jwks_file, "JWKS is not a JSON object")
            self._jwks = jwks

    def accepts(self, bundle: Bundle) -> bool:
        return (bl.hint_of(bundle) or "").startswith(HINT_PREFIX)

    def _key(self, bundle: Bundle) -> tuple[ec.EllipticCurvePublicKey, str]:
        try:
            doc = json.loads(_unb64url((bl.hint_of(bundle) or "")[len(HINT_PREFIX):]))
            if set(doc) != {"idToken", "cic"} or not isinstance(doc["cic"], dict):
                raise ValueError("unexpected PK token fields")
            token, cic = str(doc["idToken"]), dict(doc["cic"])
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (ValueError, KeyError, TypeError, jwt.PyJWTError):
            raise VerificationError("openpubkey: the bundle's PK token is malformed") from None
        if unverified.get("iss") != self.expected.issuer:
            raise VerificationError(f"openpubkey: token issuer {unverified.get('iss')!r}, expected "
                                    f"{self.expected.issuer!r}")
        if self._jwks is None:
            self._jwks = fetch_jwks(self.expected.issuer)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = jwt.PyJWKSet.from_dict(self._jwks)[str(kid)]
            claims = jwt.decode(token, key=jwk.key, algorithms=_ALGORITHMS, audience=commitment(cic),
                                issuer=self.expected.issuer, options={"verify_exp": False, "verify_nbf": False})
        except KeyError:
            raise VerificationError("openpubkey: the token's signing key is not in the issuer's JWKS") from None
        except jwt.InvalidAudienceError:
            raise VerificationError("openpubkey: token audience does not commit to the signing key") from None
        except jwt.PyJWTError as e:
            raise VerificationError(f"openpubkey: ID token does not verify: {e}") from None
        self._check_identity(claims)
        return key_from_cic(cic), str(claims.get("sub"))

    def _check_identity(self, claims: dict[str, Any]) -> None:
        exp = self.expected
        names = {str(claims.get("sub"))}
        names.update(f"https://github.com/{claims[c]}" for c in ("job_workflow_ref", "workflow_ref") if c in claims)
        if exp.identity not in names:
            raise VerificationError(f"openpubkey: identity {claims.get('sub')!r} does not match {exp.identity!r}")
        for claim, want in (("repository", exp.repository), ("ref", exp.ref)):
            if want is not None and claims.get(claim) != want:
                raise VerificationError(f"openpubkey: token {claim} {claims.get(claim)!r}, expected {want!r}")

    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        key, who = self._key(bundle)
        payload_type, payload, sig = bl.dsse_parts(bundle)
        if not bl.verify_data(key, sig, bl.pae(payload_type, payload)):
            raise VerificationError("openpubkey: DSSE signature does not verify: the signed statement was modified")
        return SignedPayload(payload_type, payload, who)
