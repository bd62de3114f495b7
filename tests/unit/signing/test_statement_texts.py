"""Exact bytes of a file statement and exact refusal texts (mutants the sweep found alive in
statements.py: the statement's canonical form and every message a user reads on a refused bundle)."""

from __future__ import annotations

import hashlib
import json

import pytest

from mlsec_actions.signing.interface import INTOTO_PAYLOAD_TYPE, SignedPayload, SigningError, VerificationError
from mlsec_actions.signing.statements import (
    STATEMENT_TYPE,
    Kind,
    file_digest,
    file_statement,
    open_statement,
    require_typed,
)

D = hashlib.sha256(b"x").hexdigest()


def test_a_file_statement_is_canonical_json_with_an_empty_predicate() -> None:
    """Sorted keys, no blanks, UTF-8: the same file always yields the same signed bytes."""
    assert file_statement("m/w\u00e9.bin", D) == (
        '{"_type":"https://in-toto.io/Statement/v1","predicate":{},'
        '"predicateType":"https://mlsec-actions.dev/signed-file/v1",'
        f'"subject":[{{"digest":{{"sha256":"{D}"}},"name":"m/w\\u00e9.bin"}}]}}').encode()


def _opened(payload: bytes) -> str:
    with pytest.raises(VerificationError) as e:
        open_statement(SignedPayload(INTOTO_PAYLOAD_TYPE, payload, "k"), Kind.FILE)
    return str(e.value)


@pytest.mark.parametrize(("payload", "text"), [
    (b"{", "the signed payload is not JSON"),
    (b"[]", "the signed payload is not an in-toto Statement v1"),
    (json.dumps({"_type": STATEMENT_TYPE, "predicateType": Kind.FILE.value, "subject": []}).encode(),
     "signed statement has no subjects"),
])
def test_open_statement_says_exactly_what_is_wrong(payload: bytes, text: str) -> None:
    assert _opened(payload) == text


@pytest.mark.parametrize("subject", [[{"name": "a", "digest": {"sha256": D, "md5": "x"}}],
                                     [{"name": "a", "digest": {"sha256": D[:63]}}]])
def test_file_digest_refusals_name_the_rule(subject: list[object]) -> None:
    with pytest.raises(VerificationError) as e:
        file_digest({"subject": subject})
    assert str(e.value) == "signed file statement must have exactly one subject with one sha256 digest"


def test_require_typed_refusal_text() -> None:
    with pytest.raises(SigningError) as e:
        require_typed(b"not json")
    assert str(e.value) == "refusing to sign: not an in-toto Statement v1 of an mlsec-actions predicate type"
