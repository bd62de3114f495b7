"""Attestation checks that only a hand-made (validly signed) statement can reach."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.signing import attest
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.key import KeySigner, KeyVerifier
from mlsec_actions.signing.verify import verify_attestation


def _attestation(tmp_path: Path, subjects: dict[str, str], verdict: str) -> tuple[Path, KeyVerifier]:
    key = ec.generate_private_key(ec.SECP256R1())
    doc = {"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE,
           "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects.items()],
           "predicate": {"verdict": verdict, "models": []}}
    path = tmp_path / "att.sigstore.json"
    bl.write_bundle(path, KeySigner(key).sign_statement(json.dumps(doc).encode()))
    return path, KeyVerifier(key.public_key())


def test_subjects_outside_the_base_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "secret").write_bytes(b"s")
    digest = hashlib.sha256(b"s").hexdigest()
    path, verifier = _attestation(tmp_path, {"../secret": digest, "/etc/hostname": digest}, "pass")
    check = verify_attestation(path, [verifier], tmp_path / "base")
    assert not check.ok
    assert "subject ../secret is outside the base folder" in check.message
    assert "subject /etc/hostname is outside the base folder" in check.message


@pytest.mark.parametrize("verdict", ["fail", "unknown"])
def test_an_attested_non_passing_verdict_fails(tmp_path: Path, verdict: str) -> None:
    (tmp_path / "f").write_bytes(b"x")
    path, verifier = _attestation(tmp_path, {"f": hashlib.sha256(b"x").hexdigest()}, verdict)
    check = verify_attestation(path, [verifier], tmp_path)
    assert not check.ok
    assert f"the attested gate verdict is {verdict!r}, not 'pass'" in check.message


def test_a_passing_statement_verifies(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    path, verifier = _attestation(tmp_path, {"f": hashlib.sha256(b"x").hexdigest()}, "pass")
    check = verify_attestation(path, [verifier], tmp_path)
    assert check.ok, check.message
    assert "1 subjects match" in check.message


def test_a_subject_reached_through_a_symlink_out_of_the_base_is_not_read(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsec_actions import digests

    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"s")
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "link").symlink_to(tmp_path / "outside")
    read: list[Path] = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda p: read.append(p) or real(p))
    path, verifier = _attestation(tmp_path, {"link/secret": hashlib.sha256(b"s").hexdigest()}, "pass")
    check = verify_attestation(path, [verifier], tmp_path / "base")
    assert not check.ok
    assert "subject link/secret is outside the base folder" in check.message
    assert read == []


def test_a_model_folder_outside_the_base_is_not_walked(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    doc = {"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE, "subject": [],
           "predicate": {"verdict": "pass", "models": [{"name": "../..", "files": []}]}}
    doc["subject"] = [{"name": "x", "digest": {"sha256": hashlib.sha256(b"x").hexdigest()}}]
    (tmp_path / "base" / "x").write_bytes(b"x")
    path = tmp_path / "att.sigstore.json"
    bl.write_bundle(path, KeySigner(key).sign_statement(json.dumps(doc).encode()))
    check = verify_attestation(path, [KeyVerifier(key.public_key())], tmp_path / "base")
    assert not check.ok
    assert "model folder ../.. is outside the base folder" in check.message
