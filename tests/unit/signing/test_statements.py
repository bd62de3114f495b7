"""Typed statements: each check `open_statement` and `file_digest` make, one input that only it catches."""

from __future__ import annotations

import hashlib
import json

import pytest

from mlsec_actions.signing.interface import INTOTO_PAYLOAD_TYPE, SignedPayload, VerificationError
from mlsec_actions.signing.statements import STATEMENT_TYPE, Kind, file_digest, file_statement, open_statement

D = hashlib.sha256(b"x").hexdigest()


def _signed(doc: object, payload_type: str = INTOTO_PAYLOAD_TYPE) -> SignedPayload:
    return SignedPayload(payload_type, json.dumps(doc).encode(), "key test")


def test_a_file_statement_round_trips() -> None:
    doc = open_statement(SignedPayload(INTOTO_PAYLOAD_TYPE, file_statement("w.bin", D), "k"), Kind.FILE)
    assert file_digest(doc) == D
    assert doc["subject"][0]["name"] == "w.bin"


def test_a_non_utf8_name_is_escaped_not_fatal() -> None:
    doc = json.loads(file_statement("w\udce9.bin", D))
    assert doc["subject"][0]["name"] == "w\\udce9.bin"


@pytest.mark.parametrize(("signed", "message"), [
    (SignedPayload("application/json", file_statement("w", D), "k"), "unexpected DSSE payload type"),
    (SignedPayload(INTOTO_PAYLOAD_TYPE, b"not json", "k"), "not JSON"),
    (_signed({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": Kind.FILE.value,
              "subject": [{"name": "w", "digest": {"sha256": D}}]}), "not an in-toto Statement v1"),
    (_signed({"_type": STATEMENT_TYPE, "predicateType": Kind.GATE_VERDICT.value,
              "subject": [{"name": "w", "digest": {"sha256": D}}]}), "expected 'https://mlsec-actions.dev/signed-file"),
    (_signed({"_type": STATEMENT_TYPE, "predicateType": Kind.FILE.value, "subject": []}), "no subjects"),
])
def test_open_statement_refuses(signed: SignedPayload, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        open_statement(signed, Kind.FILE)


@pytest.mark.parametrize("subjects", [
    [{"name": "w", "digest": {"sha256": D}}, {"name": "v", "digest": {"sha256": D}}],
    [{"name": "w", "digest": {"sha256": D, "sha512": "0" * 128}}],
    [{"name": "w", "digest": {"sha512": "0" * 128}}],
    [{"name": "w", "digest": {"sha256": D[:-1]}}],
    ["w"],
])
def test_a_file_statement_names_exactly_one_sha256(subjects: list[object]) -> None:
    doc = {"_type": STATEMENT_TYPE, "predicateType": Kind.FILE.value, "subject": subjects}
    with pytest.raises(VerificationError, match="exactly one subject with one sha256 digest"):
        file_digest(doc)
