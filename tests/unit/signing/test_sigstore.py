"""sigstore backend up to the boundary we can reach here: credential detection and bundle routing."""

from __future__ import annotations

import pytest

from mlsec_actions.signing import make_signer
from mlsec_actions.signing import sigstore as sg
from mlsec_actions.signing.interface import SigningError


def test_no_ambient_credential_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "GITHUB_ACTIONS",
                sg.ENV_TOKEN, "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE", "GITLAB_CI", "CIRCLECI"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SigningError, match="id-token: write"):
        make_signer("sigstore")


def test_accepts_only_certificate_bundles() -> None:
    v = sg.SigstoreVerifier(sg.Expected("me", "https://issuer"))
    assert v.accepts({"verificationMaterial": {"certificate": {"rawBytes": "AA=="}}})
    assert v.accepts({"verificationMaterial": {"x509CertificateChain": {"certificates": []}}})
    assert not v.accepts({"verificationMaterial": {"publicKey": {"hint": "abc"}}})


def test_malformed_explicit_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sg.ENV_TOKEN, "not-a-jwt")
    with pytest.raises(SigningError, match="OIDC token is not usable"):
        make_signer("sigstore", staging=True)
