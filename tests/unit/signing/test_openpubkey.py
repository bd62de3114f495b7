"""openpubkey backend against a local OIDC issuer on loopback.

The issuer in tests/oidc_issuer.py is a STAND-IN for GitHub Actions' OIDC token service (same
endpoints and claim names); real GitHub tokens cannot be obtained here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import openpubkey as opk
from mlsec_actions.signing.interface import SigningError, VerificationError
from mlsec_actions.signing.statements import file_statement
from tests import oidc_issuer

STATEMENT = file_statement("artifact", hashlib.sha256(b"artifact").hexdigest())


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[oidc_issuer.Issuer]:
    with oidc_issuer.running_issuer() as running:
        for k, v in running.env().items():
            monkeypatch.setenv(k, v)
        yield running


def _verifier(issuer: oidc_issuer.Issuer, **kw: str) -> opk.OpenPubkeyVerifier:
    return opk.OpenPubkeyVerifier(opk.Expected(kw.pop("identity", oidc_issuer.IDENTITY), issuer.url, **kw))


def test_round_trip_fetches_jwks_from_the_issuer(issuer: oidc_issuer.Issuer) -> None:
    signer = opk.OpenPubkeySigner()
    bundle = signer.sign_statement(STATEMENT)
    # The token the issuer signed commits to the ephemeral key through its audience.
    doc = json.loads(opk._unb64url(bl.hint_of(bundle)[len(opk.HINT_PREFIX):]))  # type: ignore[index]
    assert issuer.issued[-1]["aud"] == opk.commitment(doc["cic"])
    who = _verifier(issuer).verify_dsse(bundle).signer
    assert who == f"repo:{oidc_issuer.REPO}:ref:refs/heads/main"
    strict = _verifier(issuer, repository=oidc_issuer.REPO, ref="refs/heads/main")
    assert strict.verify_dsse(bundle).payload == STATEMENT


def test_pinned_jwks_verifies_offline(issuer: oidc_issuer.Issuer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    pinned = tmp_path / "jwks.json"
    pinned.write_text(json.dumps(issuer.jwks()))

    def no_network(issuer_url: str, timeout: float = 0) -> dict[str, object]:
        raise AssertionError("a pinned JWKS must not be fetched")

    monkeypatch.setattr(opk, "fetch_jwks", no_network)
    verifier = opk.OpenPubkeyVerifier(opk.Expected(oidc_issuer.IDENTITY, issuer.url), jwks_file=pinned)
    assert verifier.verify_dsse(bundle)


def test_wrong_identity_repository_or_issuer_fail(issuer: oidc_issuer.Issuer) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    with pytest.raises(VerificationError, match="does not match"):
        _verifier(issuer, identity="https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main"
                  ).verify_dsse(bundle)
    with pytest.raises(VerificationError, match="repository"):
        _verifier(issuer, repository="evil/repo").verify_dsse(bundle)
    with pytest.raises(VerificationError, match="token issuer"):
        opk.OpenPubkeyVerifier(opk.Expected(oidc_issuer.IDENTITY, "https://token.actions.githubusercontent.com")
                               ).verify_dsse(bundle)


def test_token_for_another_key_is_rejected(issuer: oidc_issuer.Issuer) -> None:
    first, second = opk.OpenPubkeySigner(), opk.OpenPubkeySigner()
    bundle = second.sign_statement(STATEMENT)
    # Graft the first signer's token onto the second's key: the audience no longer commits to it.
    mine = json.loads(opk._unb64url(first._hint[len(opk.HINT_PREFIX):]))
    theirs = json.loads(opk._unb64url(second._hint[len(opk.HINT_PREFIX):]))
    forged = {"idToken": mine["idToken"], "cic": theirs["cic"]}
    bundle["verificationMaterial"]["publicKey"]["hint"] = opk.HINT_PREFIX + opk._b64url(json.dumps(forged).encode())
    with pytest.raises(VerificationError, match="audience does not commit"):
        _verifier(issuer).verify_dsse(bundle)


def test_token_signed_by_another_issuer_key_is_rejected(issuer: oidc_issuer.Issuer, tmp_path: Path) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    with oidc_issuer.running_issuer() as impostor:
        pinned = tmp_path / "jwks.json"
        pinned.write_text(json.dumps(impostor.jwks()))
    with pytest.raises(VerificationError, match="does not verify"):
        opk.OpenPubkeyVerifier(opk.Expected(oidc_issuer.IDENTITY, issuer.url), jwks_file=pinned
                               ).verify_dsse(bundle)


def test_tampered_signature_fails(issuer: oidc_issuer.Issuer) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    bundle["dsseEnvelope"]["payload"] = bl.b64(file_statement("artifact", hashlib.sha256(b"other").hexdigest()))
    with pytest.raises(VerificationError, match="statement was modified"):
        _verifier(issuer).verify_dsse(bundle)


def test_no_token_endpoint_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    with pytest.raises(SigningError, match="id-token: write"):
        opk.OpenPubkeySigner()


def test_plain_http_to_a_remote_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://token.example.com/_apis/token?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "x")
    with pytest.raises(SigningError, match="https only"):
        opk.OpenPubkeySigner()


def test_extra_fields_beside_the_pk_token_are_refused(issuer: oidc_issuer.Issuer) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    hint = json.loads(opk._unb64url(bl.hint_of(bundle)[len(opk.HINT_PREFIX):]))  # type: ignore[index]
    hint["messageSignature"] = {"sha256": "0" * 64}
    bundle["verificationMaterial"]["publicKey"]["hint"] = opk.HINT_PREFIX + opk._b64url(json.dumps(hint).encode())
    with pytest.raises(VerificationError, match="PK token is malformed"):
        _verifier(issuer).verify_dsse(bundle)
