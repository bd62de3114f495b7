"""`openpubkey` backend: OpenPubkey PK Tokens in the reference format, with GitHub Actions OIDC and no CA.

Signing: make an ephemeral P-256 key and its client-instance claims (CIC: `alg`, `upk`, `rz`, `typ`), ask
the Actions token endpoint for an ID token whose `aud` is the commitment to the CIC, check the issuer's
RS256 signature against its JWKS, and replace it by a GQ256 signature (so the published token is no bearer
token), then sign the token's payload with the ephemeral key (the CIC signature). Every statement is
signed twice with that key, over the same DSSE PAE bytes: as the bundle's DSSE signature (Sigstore shape)
and as an OpenPubkey signed message (OSM) whose `kid` is the PK Token's hash. The bundle's public-key hint
is `openpubkey-pkt:` + base64url of `{"pkt": <compact PK Token>, "osm": <detached OSM>}`.

Verification (`opk.pktoken.verify`): the reference verifier's checks in its order (CIC signature, issuer,
GQ256 required, original RS256 header, JWKS key by the original `kid`, GQ256, `aud` = commitment, age),
then the identity the caller requires, then the OSM and the DSSE signature over the statement.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions import gha
from mlsec_actions.errors import InputError
from mlsec_actions.inputs import load_json
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import patterns
from mlsec_actions.signing.interface import (
    INTOTO_PAYLOAD_TYPE,
    Bundle,
    SignedPayload,
    Signer,
    SigningError,
    VerificationError,
    Verifier,
)
from mlsec_actions.signing.opk import jose as j
from mlsec_actions.signing.opk import osm, pktoken

HINT_PREFIX = "openpubkey-pkt:"
"""Marks a bundle whose public-key hint carries a PK Token and the statement's OSM."""
LEGACY_PREFIX = "openpubkey:"
"""Bundles of the pre-reference format (SHA-256 commitment, raw RS256 token): refused, re-sign."""
_MAX_RESPONSE = 1024 * 1024


def request_github_token(audience: str, timeout: float = 30.0) -> str:
    """An ID token from the Actions token endpoint (needs `permissions: id-token: write`)."""
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise SigningError("openpubkey backend: no GitHub OIDC token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/"
                           "ACTIONS_ID_TOKEN_REQUEST_TOKEN unset); give the job `permissions: id-token: write`")
    gha.mask(bearer)
    req = urllib.request.Request(  # noqa: S310 - scheme checked by _checked_url
        _checked_url(token_url(url, audience), SigningError),
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            doc = json.loads(resp.read(_MAX_RESPONSE))
    except (OSError, ValueError) as e:
        raise SigningError(f"openpubkey backend: OIDC token request failed: {e}") from None
    token = doc.get("value") if isinstance(doc, dict) else None
    if not isinstance(token, str):
        raise SigningError("openpubkey backend: the OIDC token endpoint returned no token")
    gha.mask(token)
    return token


def token_url(url: str, audience: str) -> str:
    """The request URL with `audience` set (replaced if present), parameters re-sorted as Go's url.Values does."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k != "audience"]
    query = sorted([*query, ("audience", audience)], key=lambda kv: kv[0])
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _checked_url(url: str, error: type[SigningError | VerificationError]) -> str:
    """https only; plain http only to loopback (a local stand-in issuer)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise error(f"openpubkey: refusing to fetch {parts.scheme}://{parts.hostname}: https only")
    return url


def _get_json(url: str, timeout: float, error: type[SigningError | VerificationError]) -> Any:
    _checked_url(url, error)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            return json.loads(resp.read(_MAX_RESPONSE))
    except (OSError, ValueError) as e:
        raise error(f"openpubkey: cannot fetch {url}: {e}") from None


def fetch_jwks(issuer: str, timeout: float = 30.0,
               error: type[SigningError | VerificationError] = VerificationError) -> dict[str, Any]:
    """The issuer's JWKS by OpenID discovery (`{iss}/.well-known/openid-configuration`, then `jwks_uri`)."""
    config = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout, error)
    uri = config.get("jwks_uri") if isinstance(config, dict) else None
    if not isinstance(uri, str):
        raise error(f"openpubkey: {issuer} discovery document has no jwks_uri")
    jwks = _get_json(uri, timeout, error)
    if not isinstance(jwks, dict):
        raise error(f"openpubkey: {uri} is not a JWKS")
    return jwks


def _issuer_jwk(id_token: str) -> dict[str, Any]:
    """The JWK that signed `id_token`, found by discovery from its own `iss` (checked again at verify)."""
    try:
        header_seg, payload_seg, _ = id_token.split(".")
        kid = j.segment_json(header_seg, "ID token header").get("kid")
        iss = j.segment_json(payload_seg, "ID token payload").get("iss")
    except (ValueError, VerificationError) as e:
        raise SigningError(f"openpubkey backend: the OIDC token is malformed: {e}") from None
    if not isinstance(iss, str):
        raise SigningError("openpubkey backend: the OIDC token has no issuer")
    keys = fetch_jwks(iss, error=SigningError).get("keys")
    match = [k for k in keys if isinstance(k, dict) and k.get("kid") == kid] if isinstance(keys, list) else []
    if len(match) != 1:
        raise SigningError(f"openpubkey backend: the issuer's JWKS has no single key {kid!r}")
    return match[0]


class OpenPubkeySigner(Signer):
    name = "openpubkey"

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        cic = pktoken.cic_header(self._key.public_key())
        token = request_github_token(pktoken.commitment(cic))
        try:
            self.pkt = pktoken.issue(token, _issuer_jwk(token), self._key, cic)
        except (ValueError, VerificationError) as e:
            raise SigningError(f"openpubkey backend: cannot make a PK token: {e}") from None

    def _sign(self, statement: bytes) -> Bundle:
        message = osm.sign_detached(self._key, self.pkt, bl.pae(INTOTO_PAYLOAD_TYPE, statement))
        hint = HINT_PREFIX + j.b64url(j.go_json({"osm": message, "pkt": self.pkt.compact()}))
        return bl.sign_statement(self._key, hint, statement)


@dataclass(frozen=True)
class Expected:
    """What an OpenPubkey bundle's token must carry (the application policy after the token verified)."""

    identity: str
    """`sub`, or `https://github.com/<job_workflow_ref>` / `<workflow_ref>` (the Sigstore-style identity)."""
    issuer: str
    """Exact `iss`, e.g. `https://token.actions.githubusercontent.com`."""
    repository: str | None = None
    """`repository` claim (`OWNER/REPO`), when it must also match."""
    ref: str | None = None
    """`ref` claim (`refs/heads/main`), when it must also match."""
    event: str | None = None
    """`event_name` claim (`push`, `release`, ...), when it must also match."""
    max_age: int | None = pktoken.MAX_AGE_SECONDS
    """Seconds after `iat` a token is accepted; None: no age limit (long-term verification, pinned JWKS)."""


def _hint_parts(bundle: Bundle) -> tuple[pktoken.PKToken, str]:
    hint = bl.hint_of(bundle) or ""
    if hint.startswith(LEGACY_PREFIX):
        raise VerificationError("openpubkey: this bundle is of the pre-reference OpenPubkey format (before "
                                "mlsec-actions made reference PK tokens): re-sign it")
    doc = j.json_object(j.unb64url(hint[len(HINT_PREFIX):], "bundle hint"), "bundle hint")
    if set(doc) != {"pkt", "osm"}:
        raise VerificationError("openpubkey: the bundle hint must hold exactly pkt and osm")
    return pktoken.parse_compact(doc["pkt"]), str(doc["osm"])


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
        return (bl.hint_of(bundle) or "").startswith((HINT_PREFIX, LEGACY_PREFIX))

    def _check_identity(self, claims: dict[str, Any]) -> None:
        exp = self.expected
        names = {str(claims.get("sub"))}
        names.update(f"https://github.com/{claims[c]}" for c in ("job_workflow_ref", "workflow_ref") if c in claims)
        wanted = patterns.glob(exp.identity)  # anchored: the whole claim, never a part of it
        if not any(wanted.matches(n) for n in names):
            raise VerificationError(f"openpubkey: identity {claims.get('sub')!r} does not match {exp.identity!r}")
        for claim, want in (("repository", exp.repository), ("ref", exp.ref)):
            value = claims.get(claim)
            if want is not None and not (isinstance(value, str) and patterns.glob(want).matches(value)):
                raise VerificationError(f"openpubkey: token {claim} {value!r}, expected {want!r}")
        if exp.event is not None and claims.get("event_name") != exp.event:
            raise VerificationError(f"openpubkey: token event_name {claims.get('event_name')!r}, expected "
                                    f"{exp.event!r}")

    def verify_dsse(self, bundle: Bundle) -> SignedPayload:
        pkt, message = _hint_parts(bundle)
        if pkt.claims().get("iss") != self.expected.issuer:  # before any fetch: never ask a tree-named issuer
            raise VerificationError(f"openpubkey: issuer: token issuer {pkt.claims().get('iss')!r}, expected "
                                    f"{self.expected.issuer!r}")
        if self._jwks is None:
            self._jwks = fetch_jwks(self.expected.issuer)
        checked = pktoken.verify(pkt, self.expected.issuer, self._jwks, self.expected.max_age)
        self._check_identity(checked.claims)
        payload_type, payload, sig = bl.dsse_parts(bundle)
        signed = bl.pae(payload_type, payload)
        if not bl.verify_data(checked.key, sig, signed):
            raise VerificationError("openpubkey: DSSE signature does not verify: the signed statement was modified")
        osm.verify_detached(message, pkt, signed)
        return SignedPayload(payload_type, payload, str(checked.claims.get("sub")))
