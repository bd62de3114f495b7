"""openpubkey backend against a local OIDC issuer on loopback.

The issuer in tests/oidc_issuer.py is a STAND-IN for GitHub Actions' OIDC token service (same
endpoints and claim names); real GitHub tokens cannot be obtained here.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import openpubkey as opk
from mlsec_actions.signing.interface import SigningError, VerificationError
from mlsec_actions.signing.opk import jose as j
from mlsec_actions.signing.opk import pktoken
from mlsec_actions.signing.statements import file_statement
from tests import oidc_issuer

STATEMENT = file_statement("artifact", hashlib.sha256(b"artifact").hexdigest())


@pytest.fixture
def issuer(monkeypatch: pytest.MonkeyPatch) -> Iterator[oidc_issuer.Issuer]:
    with oidc_issuer.running_issuer() as running:
        for k, v in running.env().items():
            monkeypatch.setenv(k, v)
        yield running


def _verifier(issuer: oidc_issuer.Issuer, **kw: Any) -> opk.OpenPubkeyVerifier:
    return opk.OpenPubkeyVerifier(opk.Expected(kw.pop("identity", oidc_issuer.IDENTITY), issuer.url, **kw))


def _hint(bundle: dict[str, Any]) -> dict[str, str]:
    return j.json_object(j.unb64url(bl.hint_of(bundle)[len(opk.HINT_PREFIX):], "hint"), "hint")  # type: ignore[index]


def _set_hint(bundle: dict[str, Any], doc: dict[str, str]) -> None:
    bundle["verificationMaterial"]["publicKey"]["hint"] = opk.HINT_PREFIX + j.b64url(json.dumps(doc).encode())


def test_round_trip_fetches_jwks_from_the_issuer(issuer: oidc_issuer.Issuer) -> None:
    signer = opk.OpenPubkeySigner()
    bundle = signer.sign_statement(STATEMENT)
    pkt = pktoken.parse_compact(_hint(bundle)["pkt"])
    # The token the issuer signed commits to the ephemeral key's CIC through its audience (SHA3, Go JSON).
    cic = j.segment_json(pkt.cic_protected, "cic")
    assert issuer.issued[-1]["aud"] == pktoken.commitment(cic) == pkt.claims()["aud"]
    assert set(cic) == {"alg", "rz", "typ", "upk"} and cic["upk"]["alg"] == "ES256" and len(cic["rz"]) == 64
    op = j.segment_json(pkt.op_protected, "op")
    assert op["alg"] == "GQ256" and op["typ"] == "JWT" and j.segment_json(op["kid"], "kid")["alg"] == "RS256"
    assert op["jkt"] == j.rsa_thumbprint(issuer.jwks()["keys"][0])
    assert len(pkt.op_signature) == 5504  # GQ256 over a 2048-bit key: 4,128 bytes
    who = _verifier(issuer).verify_dsse(bundle).signer
    assert who == f"repo:{oidc_issuer.REPO}:ref:refs/heads/main"
    strict = _verifier(issuer, repository=oidc_issuer.REPO, ref="refs/heads/main", event="push")
    assert strict.verify_dsse(bundle).payload == STATEMENT


def test_json_and_compact_forms_round_trip(issuer: oidc_issuer.Issuer) -> None:
    pkt = opk.OpenPubkeySigner().pkt
    assert pktoken.parse_compact(pkt.compact()) == pkt
    assert pktoken.parse_json(json.loads(json.dumps(pkt.json()))) == pkt
    # The OSM kid is the hash of the canonical JSON form.
    canonical = json.dumps(pkt.json(), separators=(",", ":")).encode()
    assert pkt.hash() == j.b64url(hashlib.sha3_256(canonical).digest())
    reordered = {"signatures": list(reversed(pkt.json()["signatures"])), "payload": pkt.payload}
    assert pktoken.parse_json(reordered) == pkt  # roles come from typ, not position
    checked = pktoken.verify(pkt, issuer.url, issuer.jwks())
    assert checked.claims["repository"] == oidc_issuer.REPO


def test_any_single_byte_change_in_the_pk_token_or_osm_fails(issuer: oidc_issuer.Issuer) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    doc = _hint(bundle)
    verifier = _verifier(issuer)
    verifier.verify_dsse(copy.deepcopy(bundle))
    for field in ("pkt", "osm"):
        text = doc[field]
        # a stride through every part (payload, headers, the 5,504-character GQ signature), and the tail
        for i in [i for i in range(len(text)) if (i % 37 == 0 or i > len(text) - 60) and text[i] not in ":."]:
            flipped = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
            forged = copy.deepcopy(bundle)
            _set_hint(forged, {**doc, field: flipped})
            with pytest.raises(VerificationError):
                verifier.verify_dsse(forged)


def test_swapped_cic_wrong_commitment_and_rs256_are_rejected_by_step(issuer: oidc_issuer.Issuer) -> None:
    first, second = opk.OpenPubkeySigner(), opk.OpenPubkeySigner()
    a, b = first.pkt, second.pkt
    jwks = issuer.jwks()
    swapped = dataclasses.replace(a, cic_protected=b.cic_protected, cic_signature=b.cic_signature)
    with pytest.raises(VerificationError, match="CIC: the client signature"):
        pktoken.verify(swapped, issuer.url, jwks)
    # A CIC whose signature is valid over this payload but is not what aud commits to: the commitment step.
    key = ec.generate_private_key(ec.SECP256R1())
    other = pktoken.cic_header(key.public_key())
    seg = j.b64url(j.go_json(other))
    resigned = dataclasses.replace(a, cic_protected=seg,
                                   cic_signature=j.b64url(j.es256_sign(key, f"{seg}.{a.payload}".encode())))
    with pytest.raises(VerificationError, match="commitment"):
        pktoken.verify(resigned, issuer.url, jwks)
    # The issuer's RS256 token itself, put in place of the GQ256 signature: refused at the algorithm step.
    raw = issuer.token(a.claims()["aud"])
    h, p, s = raw.split(".")
    cic_sig = j.b64url(j.es256_sign(first._key, f"{a.cic_protected}.{p}".encode()))
    rs = pktoken.PKToken(p, h, s, a.cic_protected, cic_sig)
    with pytest.raises(VerificationError, match=r"OP algorithm.*GQ256 required"):
        pktoken.verify(rs, issuer.url, jwks)


def test_age_policy_and_identity_claims(issuer: oidc_issuer.Issuer) -> None:
    pkt = opk.OpenPubkeySigner().pkt
    iat = pkt.claims()["iat"]
    pktoken.verify(pkt, issuer.url, issuer.jwks(), now=iat + 24 * 3600)
    with pytest.raises(VerificationError, match="expiry"):
        pktoken.verify(pkt, issuer.url, issuer.jwks(), now=iat + 24 * 3600 + 1)
    pktoken.verify(pkt, issuer.url, issuer.jwks(), max_age=None, now=iat + 400 * 24 * 3600)
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    with pytest.raises(VerificationError, match="event_name"):
        _verifier(issuer, event="pull_request_target").verify_dsse(bundle)


def test_token_from_another_issuer_key_or_unknown_kid_fails(issuer: oidc_issuer.Issuer) -> None:
    pkt = opk.OpenPubkeySigner().pkt
    with oidc_issuer.running_issuer() as impostor:
        with pytest.raises(VerificationError, match="GQ256"):
            pktoken.verify(pkt, issuer.url, impostor.jwks())
        renamed = {"keys": [{**impostor.jwks()["keys"][0], "kid": "another"}]}
        with pytest.raises(VerificationError, match="JWKS"):
            pktoken.verify(pkt, issuer.url, renamed)


def test_legacy_bundles_are_refused_with_a_reason(issuer: oidc_issuer.Issuer) -> None:
    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    bundle["verificationMaterial"]["publicKey"]["hint"] = opk.LEGACY_PREFIX + "e30"
    assert _verifier(issuer).accepts(bundle)
    with pytest.raises(VerificationError, match="re-sign"):
        _verifier(issuer).verify_dsse(bundle)


def test_osm_of_another_token_is_rejected(issuer: oidc_issuer.Issuer) -> None:
    first, second = opk.OpenPubkeySigner(), opk.OpenPubkeySigner()
    bundle = first.sign_statement(STATEMENT)
    other = _hint(second.sign_statement(STATEMENT))
    forged = copy.deepcopy(bundle)
    _set_hint(forged, {**_hint(bundle), "osm": other["osm"]})
    with pytest.raises(VerificationError, match="OSM: kid"):
        _verifier(issuer).verify_dsse(forged)


def test_token_request_sets_audience_like_go() -> None:
    url = opk.token_url("https://x.example/_apis/token?api-version=2.0&audience=old", "c/+=")
    assert url == "https://x.example/_apis/token?api-version=2.0&audience=c%2F%2B%3D"


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
    _set_hint(bundle, {**_hint(bundle), "messageSignature": "x"})
    with pytest.raises(VerificationError, match="exactly pkt and osm"):
        _verifier(issuer).verify_dsse(bundle)


def test_interop_harness_extracts_what_the_reference_verifier_reads(issuer: oidc_issuer.Issuer,
                                                                   tmp_path: Path) -> None:
    """tests/interop/opk_check.py feeds the Go reference verifier on GitHub; check its half here: the
    extracted PK Token parses, and the OSM reattached to the PAE (as the Go harness does) verifies."""
    from tests.interop import opk_check

    bundle = opk.OpenPubkeySigner().sign_statement(STATEMENT)
    bl.write_bundle(tmp_path / "a.sigstore.json", bundle)
    opk_check.extract(tmp_path / "a.sigstore.json", tmp_path)
    hint = json.loads((tmp_path / "hint.json").read_text())
    pae = (tmp_path / "pae.bin").read_bytes()
    assert pae == bl.pae("application/vnd.in-toto+json", STATEMENT)
    pkt = pktoken.parse_compact(hint["pkt"])
    header, _, signature = hint["osm"].split(".")
    attached = f"{header}.{j.b64url(pae)}.{signature}"
    h, p, s = attached.split(".")
    assert j.es256_valid(pkt.client_key(), j.unb64url(s, "sig"), f"{h}.{p}".encode())
    assert j.segment_json(h, "osm")["kid"] == pkt.hash()
