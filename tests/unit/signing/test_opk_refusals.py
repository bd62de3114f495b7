"""Each refusal of the PK Token parsers, the verifier's steps and the OSM check, by its exact message, on tokens
made here (an RS256 ID token from an in-process stand-in issuer key, GQ-signed like the real thing), so every
step is reached on its own: the later steps are reached by re-signing what an earlier step checks."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mlsec_actions.signing.interface import VerificationError
from mlsec_actions.signing.opk import gq, osm, pktoken
from mlsec_actions.signing.opk import jose as j
from tests import oidc_issuer

ISSUER = oidc_issuer.Issuer("https://issuer.test", rsa.generate_private_key(public_exponent=65537, key_size=2048))
JWK = ISSUER.jwks()["keys"][0]
CLIENT = ec.generate_private_key(ec.SECP256R1())
CIC = pktoken.cic_header(CLIENT.public_key(), rz="ab" * 32)


def _seg(doc: dict[str, Any]) -> str:
    return j.b64url(j.go_json(doc))


def _forge(claims: dict[str, Any] | None = None, op: dict[str, Any] | None = None,
           cic: dict[str, Any] | None = None, original: dict[str, Any] | None = None) -> pktoken.PKToken:
    """A PK Token GQ-signed by ISSUER and CIC-signed by CLIENT, with the claims, OP header, CIC header or original
    (ID token) header changed; every signature over it is valid."""
    cic = CIC if cic is None else cic
    header = _seg({"alg": "RS256", "kid": ISSUER.kid, "typ": "JWT"} if original is None else original)
    now = int(time.time())
    payload = _seg({"iss": ISSUER.url, "aud": pktoken.commitment(cic), "iat": now, "sub": "s"} | (claims or {}))
    rsa_sig = ISSUER.key.sign(f"{header}.{payload}".encode(), *_pkcs1())
    op_seg = _seg({"alg": "GQ256", "jkt": j.rsa_thumbprint(JWK), "kid": header, "typ": "JWT"} | (op or {}))
    numbers = ISSUER.key.public_key().public_numbers()
    gq_sig = gq.sign(numbers.n, numbers.e, rsa_sig, f"{header}.{payload}".encode(), f"{op_seg}.{payload}".encode())
    cic_seg = _seg(cic)
    cic_sig = j.es256_sign(CLIENT, f"{cic_seg}.{payload}".encode())
    return pktoken.PKToken(payload, op_seg, j.b64url(gq_sig), cic_seg, j.b64url(cic_sig))


def _pkcs1() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.PKCS1v15(), hashes.SHA256()


@pytest.fixture(scope="module")
def pkt() -> pktoken.PKToken:
    return _forge()


def _refused(call: Any) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    return str(info.value)


def _jwks() -> dict[str, Any]:
    return {"keys": [JWK]}


# -- parsing ------------------------------------------------------------------------------------------------------
def test_the_json_form_holds_exactly_payload_and_signatures(pkt: pktoken.PKToken) -> None:
    doc = pkt.json()
    assert pktoken.parse_json(doc) == pkt
    shape = "openpubkey: the PK token JSON must hold exactly payload and signatures"
    for bad in ([], {"payload": pkt.payload}, {**doc, "extra": 1}, {**doc, "signatures": {}},
                {"payload": pkt.payload, "signatures": "x"}):
        assert _refused(lambda bad=bad: pktoken.parse_json(bad)) == shape
    each = "openpubkey: each PK token signature holds exactly protected and signature"
    for sig in ("x", {"protected": pkt.op_protected}, {**doc["signatures"][0], "header": {}}):
        assert _refused(lambda sig=sig: pktoken.parse_json({**doc, "signatures": [sig, doc["signatures"][1]]})) == each


def test_the_compact_form_is_bounded_and_has_five_parts(pkt: pktoken.PKToken) -> None:
    assert pktoken.parse_compact(pkt.compact()) == pkt
    assert _refused(lambda: pktoken.parse_compact(None)) == "openpubkey: the PK token is missing or too large"
    limit = pktoken.MAX_PKT_CHARS
    assert _refused(lambda: pktoken.parse_compact("a" * (limit + 1))) == (
        "openpubkey: the PK token is missing or too large")
    assert _refused(lambda: pktoken.parse_compact("a" * limit)) == (
        "openpubkey: a PK token has 5 ':'-separated parts (OP and CIC), not 1")
    assert _refused(lambda: pktoken.parse_compact(pkt.compact() + ":x:y")) == (
        "openpubkey: a PK token has 5 ':'-separated parts (OP and CIC), not 7")


def test_signature_roles_come_from_typ(pkt: pktoken.PKToken) -> None:
    op, cic = (pkt.op_protected, pkt.op_signature), (pkt.cic_protected, pkt.cic_signature)
    for typ in ("JWT", "at+jwt", "dpop+id_token", None):
        header = {"alg": "GQ256"} | ({"typ": typ} if typ else {})
        got = pktoken._roles(pkt.payload, [cic, (_seg(header), pkt.op_signature)])
        assert (got.op_protected, got.cic_protected) == (_seg(header), pkt.cic_protected)
    for typ, shown in (("JWS", "'JWS'"), (5, "5"), ("cic", "'cic'"), (["JWT"], "['JWT']"), ({}, "{}")):
        assert _refused(lambda typ=typ: pktoken._roles(pkt.payload, [cic, (_seg({"typ": typ}), "AA")])) == (
            f"openpubkey: PK token signature of unsupported typ {shown}")
    assert _refused(lambda: pktoken._roles(pkt.payload, [op, op, cic])) == (
        "openpubkey: PK token has more than one OP signature")
    assert _refused(lambda: pktoken._roles(pkt.payload, [op, cic, cic])) == (
        "openpubkey: PK token has more than one CIC signature")
    assert _refused(lambda: pktoken._roles(pkt.payload, [op])) == (
        "openpubkey: a PK token needs exactly one OP and one CIC signature")
    assert _refused(lambda: pktoken._roles(pkt.payload, [(pkt.op_protected, "A"), cic])) == (
        "openpubkey: OP signature is not base64url")
    assert _refused(lambda: pktoken._roles(pkt.payload, [op, (pkt.cic_protected, "A=")])) == (
        "openpubkey: CIC signature is not base64url")
    assert _refused(lambda: pktoken._roles(j.b64url(b"[]"), [op, cic])) == (
        "openpubkey: PK token payload is not a JSON object")


def test_issue_refuses_what_it_cannot_turn_into_a_pk_token(pkt: pktoken.PKToken) -> None:
    token = ISSUER.token(pktoken.commitment(CIC))
    assert pktoken.issue(token, JWK, CLIENT, CIC).payload == token.split(".")[1]
    with pytest.raises(ValueError, match=r"^the ID token is not a compact JWS$"):
        pktoken.issue(token + ".x", JWK, CLIENT, CIC)
    _, p, s = token.split(".")
    with pytest.raises(ValueError, match=r"^the ID token is signed with 'HS256'; GQ256 needs RS256$"):
        pktoken.issue(f"{_seg({'alg': 'HS256'})}.{p}.{s}", JWK, CLIENT, CIC)
    with pytest.raises(ValueError, match=r"^the ID token's audience is not the commitment to our key$"):
        pktoken.issue(ISSUER.token("another audience"), JWK, CLIENT, CIC)


def test_a_fresh_cic_has_a_random_nonce() -> None:
    a, b = pktoken.cic_header(CLIENT.public_key()), pktoken.cic_header(CLIENT.public_key())
    assert len(a["rz"]) == 64 and a["rz"] != b["rz"] and (a["alg"], a["typ"]) == ("ES256", "CIC")


# -- verification, step by step -------------------------------------------------------------------------------------
def test_a_forged_token_verifies_until_one_thing_is_changed(pkt: pktoken.PKToken) -> None:
    checked = pktoken.verify(pkt, ISSUER.url, _jwks())
    assert checked.claims["sub"] == "s"
    assert checked.key.public_numbers() == CLIENT.public_key().public_numbers()


def test_the_cic_names_its_key_nonce_and_algorithm() -> None:
    upk = CIC["upk"]
    cases = [
        ({"typ": "CIC", "upk": upk}, "CIC: missing ['alg', 'rz']"),
        ({"alg": "ES256", "rz": "r"}, "CIC: missing ['upk']"),
        ({**CIC, "alg": "RS256"}, "CIC: alg 'RS256' with a upk for 'ES256'; ES256 in both expected"),
        ({**CIC, "upk": "k"}, "CIC: alg 'ES256' with a upk for None; ES256 in both expected"),
        ({**CIC, "upk": {**upk, "alg": "ES384"}}, "CIC: alg 'ES256' with a upk for 'ES384'; ES256 in both expected"),
        ({**CIC, "n": 1, "a": "fine", "m": ["x"]}, "CIC: extra claims must be strings: ['m', 'n']"),
    ]
    for cic, why in cases:
        assert _refused(lambda cic=cic: pktoken.verify(_forge(cic=cic), ISSUER.url, _jwks())) == f"openpubkey: {why}"
    assert pktoken.verify(_forge(cic={**CIC, "extra": "a string"}), ISSUER.url, _jwks())


def test_the_issuer_the_op_algorithm_and_the_original_header(pkt: pktoken.PKToken) -> None:
    assert _refused(lambda: pktoken.verify(pkt, "https://other.test", _jwks())) == (
        "openpubkey: issuer: token issuer 'https://issuer.test', expected 'https://other.test'")
    assert _refused(lambda: pktoken.verify(_forge(op={"alg": "RS256"}), ISSUER.url, _jwks())) == (
        "openpubkey: OP algorithm: 'RS256', GQ256 required (an RS256 token is a bearer token anyone who saw it "
        "could replay)")
    assert _refused(lambda: pktoken.verify(_forge(op={"kid": "A"}), ISSUER.url, _jwks())) == (
        "openpubkey: original header (OP kid) is not base64url")
    forged = _forge(original={"alg": "PS256", "kid": ISSUER.kid})
    assert _refused(lambda: pktoken.verify(forged, ISSUER.url, _jwks())) == (
        "openpubkey: original header: alg 'PS256', expected RS256")


def test_the_issuer_key_is_chosen_by_kid(pkt: pktoken.PKToken) -> None:
    other = {**JWK, "kid": "another"}
    assert pktoken.verify(pkt, ISSUER.url, {"keys": ["junk", other, JWK]})
    for jwks in ({}, {"keys": {}}):
        assert _refused(lambda jwks=jwks: pktoken.verify(pkt, ISSUER.url, jwks)) == "openpubkey: JWKS: no keys"
    for jwks in ({"keys": [other]}, {"keys": [JWK, JWK]}):
        assert _refused(lambda jwks=jwks: pktoken.verify(pkt, ISSUER.url, jwks)) == (
            "openpubkey: JWKS: no single key with kid 'stand-in-key-1' in the issuer's JWKS")
    unnamed = _forge(original={"alg": "RS256"})  # no kid: only a JWKS of one key says which
    assert pktoken.verify(unnamed, ISSUER.url, {"keys": [other]})
    for jwks in ({"keys": [other, JWK]}, {"keys": ["junk"]}):
        assert _refused(lambda jwks=jwks: pktoken.verify(unnamed, ISSUER.url, jwks)) == (
            "openpubkey: JWKS: no single key with kid None in the issuer's JWKS")
    assert _refused(lambda: pktoken.verify(pkt, ISSUER.url, {"keys": [{**JWK, "kty": "EC"}]})) == (
        "openpubkey: JWKS key is not an RSA key")


def test_the_gq_signature_and_the_commitment(pkt: pktoken.PKToken) -> None:
    short = dataclasses.replace(pkt, op_signature=pkt.op_signature[:-4])
    assert _refused(lambda: pktoken.verify(short, ISSUER.url, _jwks())) == (
        "openpubkey: GQ256: the issuer's signature does not verify")
    assert _refused(lambda: pktoken.verify(_forge(op={"typ": "dpop+id_token"}), ISSUER.url, _jwks())) == (
        "openpubkey: commitment: key-bound (dpop) tokens carry no audience commitment")
    assert pktoken.verify(_forge(op={"typ": "at+jwt"}), ISSUER.url, _jwks())
    for aud in (["x"], pktoken.commitment({**CIC, "rz": "cd" * 32})):
        assert _refused(lambda aud=aud: pktoken.verify(_forge(claims={"aud": aud}), ISSUER.url, _jwks())) == (
            "openpubkey: commitment: the token's aud does not commit to the CIC")


def test_iat_and_the_age_policy() -> None:
    for iat in (None, 0, -5, True, "1", 1.5):
        claims = {"iat": iat} if iat is not None else {"iat": None}
        assert _refused(lambda claims=claims: pktoken.verify(_forge(claims=claims), ISSUER.url, _jwks())) == (
            "openpubkey: expiry: the token has no positive integer iat")
    old = _forge(claims={"iat": int(time.time()) - pktoken.MAX_AGE_SECONDS - 60})
    assert _refused(lambda: pktoken.verify(old, ISSUER.url, _jwks())) == (
        "openpubkey: expiry: the token was issued more than 86400 s ago (--max-token-age sets the policy)")
    assert pktoken.verify(old, ISSUER.url, _jwks(), max_age=None)
    assert _refused(lambda: pktoken.verify(old, ISSUER.url, _jwks(), max_age=10)).startswith(
        "openpubkey: expiry: the token was issued more than 10 s ago")
    one = _forge(claims={"iat": 1})
    assert pktoken.verify(one, ISSUER.url, _jwks(), now=1 + pktoken.MAX_AGE_SECONDS)


# -- signed messages ------------------------------------------------------------------------------------------------
def test_osm_refusals_by_step(pkt: pktoken.PKToken) -> None:
    message = b"the PAE bytes"
    good = osm.sign_detached(CLIENT, pkt, message)
    osm.verify_detached(good, pkt, message)
    header, _, signature = good.split(".")
    shape = "openpubkey: OSM: not one detached compact JWS signature"
    for bad in (None, 5, f"{header}.{signature}", f"{header}.{j.b64url(message)}.{signature}", good + "."):
        assert _refused(lambda bad=bad: osm.verify_detached(bad, pkt, message)) == shape

    def with_header(**changes: Any) -> str:
        doc = {"alg": "ES256", "kid": pkt.hash(), "typ": "osm"} | changes
        seg = _seg({k: v for k, v in doc.items() if v is not None})
        return f"{seg}..{j.b64url(j.es256_sign(CLIENT, f'{seg}.{j.b64url(message)}'.encode()))}"

    assert _refused(lambda: osm.verify_detached(with_header(typ="JWT"), pkt, message)) == (
        "openpubkey: OSM: typ 'JWT', expected 'osm'")
    assert _refused(lambda: osm.verify_detached(with_header(typ=None), pkt, message)) == (
        "openpubkey: OSM: typ None, expected 'osm'")
    assert _refused(lambda: osm.verify_detached(with_header(alg="RS256"), pkt, message)) == (
        "openpubkey: OSM: alg 'RS256' is not the CIC's ES256")
    assert _refused(lambda: osm.verify_detached(with_header(kid="x"), pkt, message)) == (
        "openpubkey: OSM: kid is not this PK token's hash (a message of another token)")
    assert _refused(lambda: osm.verify_detached(good, pkt, message + b"x")) == (
        "openpubkey: OSM: the signature does not verify under the CIC key")
    assert _refused(lambda: osm.verify_detached(f"{header}..A", pkt, message)) == (
        "openpubkey: OSM signature is not base64url")
    assert json.loads(j.unb64url(header, "h")) == {"alg": "ES256", "kid": pkt.hash(), "typ": "osm"}


def test_a_malformed_segment_is_named_in_the_refusal(pkt: pktoken.PKToken) -> None:
    def verify(**changes: str) -> str:
        return _refused(lambda: pktoken.verify(dataclasses.replace(pkt, **changes), ISSUER.url, _jwks()))

    assert verify(cic_protected="A") == "openpubkey: CIC header is not base64url"
    assert verify(cic_signature="A") == "openpubkey: CIC signature is not base64url"
    assert verify(op_protected="A") == "openpubkey: OP header is not base64url"
    p384 = {**CIC, "upk": {**CIC["upk"], "crv": "P-384"}}
    assert _refused(lambda: pktoken.verify(_forge(cic=p384), ISSUER.url, _jwks())) == (
        "openpubkey: CIC upk is not a P-256 JWK")
    assert _refused(lambda: osm.verify_detached("A..A", pkt, b"m")) == "openpubkey: OSM header is not base64url"


def test_the_osm_key_comes_from_the_cic_and_its_refusals_name_the_cic(pkt: pktoken.PKToken) -> None:
    # An OSM whose kid matches a token with a damaged CIC: the client key step names what is wrong.
    def refusal(token: pktoken.PKToken) -> str:
        seg = _seg({"alg": "ES256", "kid": token.hash(), "typ": "osm"})
        signature = j.es256_sign(CLIENT, (seg + "." + j.b64url(b"m")).encode())
        signed = f"{seg}..{j.b64url(signature)}"
        return _refused(lambda: osm.verify_detached(signed, token, b"m"))

    assert refusal(dataclasses.replace(pkt, cic_protected="A")) == "openpubkey: CIC header is not base64url"
    assert refusal(dataclasses.replace(pkt, cic_protected=j.b64url(b"[]"))) == (
        "openpubkey: CIC header is not a JSON object")
    assert refusal(dataclasses.replace(pkt, cic_protected=_seg({**CIC, "upk": "k"}))) == (
        "openpubkey: CIC upk is not a P-256 JWK")
    assert pkt.client_key().public_numbers() == CLIENT.public_key().public_numbers()


def test_a_protected_header_that_is_not_json_is_named(pkt: pktoken.PKToken) -> None:
    cic = (pkt.cic_protected, pkt.cic_signature)
    assert _refused(lambda: pktoken._roles(pkt.payload, [cic, ("A", pkt.op_signature)])) == (
        "openpubkey: PK token protected header is not base64url")
    assert _refused(lambda: pktoken.parse_compact(f"{pkt.payload}:{j.b64url(b'[1]')}:AA:{cic[0]}:{cic[1]}")) == (
        "openpubkey: PK token protected header is not a JSON object")


def test_a_cic_header_keeps_the_nonce_it_is_given() -> None:
    assert pktoken.cic_header(CLIENT.public_key(), rz="my nonce") == {
        "alg": "ES256", "rz": "my nonce", "typ": "CIC", "upk": j.ec_jwk(CLIENT.public_key())}
    assert pktoken.cic_header(CLIENT.public_key(), rz="")["rz"] == ""  # given, even empty: not replaced


def test_claims_of_a_damaged_payload_name_the_payload(pkt: pktoken.PKToken) -> None:
    assert _refused(lambda: dataclasses.replace(pkt, payload="A").claims()) == (
        "openpubkey: PK token payload is not base64url")


def test_issue_names_an_id_token_header_that_is_not_json() -> None:
    _, p, s = ISSUER.token(pktoken.commitment(CIC)).split(".")
    assert _refused(lambda: pktoken.issue(f"A.{p}.{s}", JWK, CLIENT, CIC)) == (
        "openpubkey: ID token header is not base64url")
    assert _refused(lambda: pktoken.issue(f"{j.b64url(b'[]')}.{p}.{s}", JWK, CLIENT, CIC)) == (
        "openpubkey: ID token header is not a JSON object")


def test_issue_names_the_payload_and_verify_the_client_signature_exactly(pkt: pktoken.PKToken) -> None:
    h, _, s = ISSUER.token(pktoken.commitment(CIC)).split(".")
    assert _refused(lambda: pktoken.issue(f"{h}.A.{s}", JWK, CLIENT, CIC)) == (
        "openpubkey: ID token payload is not base64url")
    other = j.b64url(j.es256_sign(CLIENT, b"something else"))
    assert _refused(lambda: pktoken.verify(dataclasses.replace(pkt, cic_signature=other), ISSUER.url, _jwks())) == (
        "openpubkey: CIC: the client signature does not verify")


def test_without_a_kid_only_a_jwks_of_exactly_one_entry_names_the_key() -> None:
    unnamed = _forge(original={"alg": "RS256"})
    assert _refused(lambda: pktoken.verify(unnamed, ISSUER.url, {"keys": ["junk", JWK]})) == (
        "openpubkey: JWKS: no single key with kid None in the issuer's JWKS")


def test_issue_names_an_issuer_key_that_is_not_rsa() -> None:
    token = ISSUER.token(pktoken.commitment(CIC))
    assert _refused(lambda: pktoken.issue(token, {**JWK, "kty": "EC"}, CLIENT, CIC)) == (
        "openpubkey: issuer key is not an RSA key")


def test_a_signature_segment_that_is_not_base64url_is_named(pkt: pktoken.PKToken) -> None:
    h, p, _ = ISSUER.token(pktoken.commitment(CIC)).split(".")
    assert _refused(lambda: pktoken.issue(f"{h}.{p}.A", JWK, CLIENT, CIC)) == (
        "openpubkey: ID token signature is not base64url")
    assert _refused(lambda: pktoken.verify(dataclasses.replace(pkt, op_signature="A"), ISSUER.url, _jwks())) == (
        "openpubkey: GQ is not base64url")


def test_a_gq_check_that_raises_is_a_refusal_not_a_pass(pkt: pktoken.PKToken, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fail closed: a key that passed the JWKS checks never makes gq.verify raise today, but if a parameter it
    # cannot use ever reaches it, the token is refused, not waved through.
    def raising(*args: object) -> bool:
        raise ValueError("GQ256 needs an odd RSA exponent of at least 3")

    monkeypatch.setattr(pktoken.gq, "verify", raising)
    assert _refused(lambda: pktoken.verify(pkt, ISSUER.url, _jwks())) == (
        "openpubkey: GQ256: the issuer's signature does not verify")
