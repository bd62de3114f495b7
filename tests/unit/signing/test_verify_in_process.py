"""verify.py in process (the CLI tests run it in a child the mutation sweep cannot see): a signed model
folder, a signed file and an attestation over a model folder, each changed one way at a time, with the exact
text a user reads. Kills the survivors of the sweep's signing-verify group."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mlsec_actions.signing import attest, model_folder
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing.key import KeySigner, KeyVerifier
from mlsec_actions.signing.statements import file_statement
from mlsec_actions.signing.verify import bundle_path, verify_artifact, verify_attestation

KEY = ec.generate_private_key(ec.SECP256R1())
VERIFIER = KeyVerifier(KEY.public_key())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _model(base: Path) -> Path:
    folder = base / "iris"
    (folder / "tok").mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"weights")
    (folder / "tok" / "v.txt").write_bytes(b"vocab")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_bytes(b"ref")
    return folder


def _sign_folder(folder: Path) -> None:
    payload = model_folder.manifest_payload(folder, {"w.bin": _sha(b"weights"), "tok/v.txt": _sha(b"vocab")})
    bl.write_bundle(bundle_path(folder), KeySigner(KEY).sign_statement(payload))


def test_a_signed_folder_verifies_and_ignores_its_git_folder(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    _sign_folder(folder)
    (folder / ".git" / "new").write_bytes(b"x")  # IGNORED, as model_signing ignores it
    check = verify_artifact(folder, [VERIFIER])
    assert check.ok and check.message.startswith("signed by key "), check.message


@pytest.mark.parametrize(("change", "text"), [
    (lambda f: (f / "w.bin").write_bytes(b"other"), "w.bin"),
    (lambda f: (f / "tok" / "v.txt").unlink(), "tok/v.txt"),
    (lambda f: (f / "extra.bin").write_bytes(b"x"), "extra.bin"),
    (lambda f: (f / "etc").symlink_to("/etc"), "etc"),
    (lambda f: os.mkfifo(f / "pipe"), "pipe"),
])
def test_every_change_to_a_signed_folder_is_named(tmp_path: Path, change, text: str) -> None:  # type: ignore[no-untyped-def]
    folder = _model(tmp_path)
    _sign_folder(folder)
    change(folder)
    check = verify_artifact(folder, [VERIFIER])
    assert not check.ok and text in check.message, check.message


def test_a_folder_bundle_must_be_a_model_manifest(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    bl.write_bundle(bundle_path(folder), KeySigner(KEY).sign_statement(file_statement("iris", _sha(b"x"))))
    check = verify_artifact(folder, [VERIFIER])
    assert not check.ok and "expected 'https://model_signing/signature/v1.0'" in check.message
    doc = json.loads(bundle_path(folder).read_text())
    doc["messageSignature"] = {"messageDigest": {"algorithm": "SHA2_256", "digest": ""}, "signature": ""}
    del doc["dsseEnvelope"]
    bundle_path(folder).write_text(json.dumps(doc))
    check = verify_artifact(folder, [VERIFIER])
    assert not check.ok and check.message == "a model folder's bundle must be a DSSE model_signing manifest"


def test_a_changed_file_names_both_digests(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"a")
    bl.write_bundle(bundle_path(f), KeySigner(KEY).sign_statement(file_statement("m.bin", _sha(b"a"))))
    assert verify_artifact(f, [VERIFIER]).ok
    f.write_bytes(b"b")
    check = verify_artifact(f, [VERIFIER])
    assert not check.ok
    assert check.message == f"digest mismatch: signed sha256:{_sha(b'a')}, file is now sha256:{_sha(b'b')}"


def test_a_symlink_is_not_verified_in_place_of_its_target(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"a")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    check = verify_artifact(tmp_path / "link", [VERIFIER])
    assert not check.ok and check.message == "is a symlink; verify the file or folder it points to"


def _attest(base: Path, models: list[object], subjects: dict[str, str]) -> Path:
    doc = {"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE,
           "subject": [{"name": n, "digest": {"sha256": d}} for n, d in subjects.items()],
           "predicate": {"verdict": "pass", "models": models}}
    path = base / "att.sigstore.json"
    bl.write_bundle(path, KeySigner(KEY).sign_statement(json.dumps(doc).encode()))
    return path


def test_an_attested_model_folder_reports_added_files_links_and_fifos(tmp_path: Path) -> None:
    base = tmp_path / "base"
    folder = _model(base)
    files = {"iris/w.bin": _sha(b"weights"), "iris/tok/v.txt": _sha(b"vocab")}
    path = _attest(tmp_path, [{"name": "iris", "files": sorted(files)}], files)
    check = verify_attestation(path, [VERIFIER], base)
    assert check.ok and check.message.startswith("gate verdict 'pass', 2 subjects match, signed by key "), check.message
    (folder / "tok" / "new.txt").write_bytes(b"n")
    (folder / "up").symlink_to("..")
    os.mkfifo(folder / "pipe")
    check = verify_attestation(path, [VERIFIER], base)
    assert not check.ok
    assert check.message.split("; ") == [
        "file iris/tok/new.txt was added to model folder iris after signing",
        "FIFO iris/pipe was added to model folder iris after signing",
        "symlink iris/up was added to model folder iris after signing"]


def test_attested_subjects_removed_changed_or_outside_are_each_named(tmp_path: Path) -> None:
    base = tmp_path / "base"
    _model(base)
    subjects = {"iris/w.bin": _sha(b"other"), "iris/gone.bin": _sha(b"x"), "../x": _sha(b"x")}
    check = verify_attestation(_attest(tmp_path, [], subjects), [VERIFIER], base)
    assert check.message.split("; ") == [
        "subject ../x is outside the base folder", "file iris/gone.bin was removed after signing",
        f"file iris/w.bin digest mismatch (signed sha256:{_sha(b'other')[:16]}..., now "
        f"sha256:{_sha(b'weights')[:16]}...)"]


@pytest.mark.parametrize("models", [[{"name": "iris"}], [{"files": []}], ["iris"]])
def test_a_malformed_models_entry_is_refused(tmp_path: Path, models: list[object]) -> None:
    base = tmp_path / "base"
    _model(base)
    check = verify_attestation(_attest(tmp_path, models, {"iris/w.bin": _sha(b"weights")}), [VERIFIER], base)
    assert not check.ok
    assert check.message == "attestation predicate.models entry without a name and a list of files"


def test_a_models_entry_outside_the_base_or_gone_is_not_walked(tmp_path: Path) -> None:
    base = tmp_path / "base"
    _model(base)
    subjects = {"iris/w.bin": _sha(b"weights")}
    check = verify_attestation(_attest(tmp_path, [{"name": "..", "files": []}], subjects), [VERIFIER], base)
    assert check.message == "model folder .. is outside the base folder"
    gone = verify_attestation(_attest(tmp_path, [{"name": "nothing", "files": []}], subjects), [VERIFIER], base)
    assert gone.ok, gone.message


def test_targets_and_texts_for_what_is_not_a_signed_artifact(tmp_path: Path) -> None:
    from mlsec_actions.errors import InputError

    missing = verify_artifact(tmp_path / "nothing", [VERIFIER])
    assert missing == type(missing)(str(tmp_path / "nothing"), False, "no such file or folder")
    folder = _model(tmp_path)
    _sign_folder(folder)
    assert verify_artifact(folder, [VERIFIER]).target == str(folder)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError) as e:
        verify_artifact(tmp_path / "fifo", [VERIFIER])
    assert str(e.value) == f"{tmp_path / 'fifo'}: not a regular file or folder (FIFO, socket or device)"


def test_a_subject_name_with_dot_dot_is_refused_even_when_it_stays_inside(tmp_path: Path) -> None:
    base = tmp_path / "base"
    _model(base)
    check = verify_attestation(_attest(tmp_path, [], {"iris/../iris/w.bin": _sha(b"weights")}), [VERIFIER], base)
    assert check.message == "subject iris/../iris/w.bin is outside the base folder"


@pytest.mark.parametrize("subject", ["x", {"name": "a"}, {"name": 5, "digest": {"sha256": "d"}},
                                     {"name": "a", "digest": {"sha256": 5}}, {"name": "a", "digest": "d"}])
def test_a_malformed_subject_is_refused(tmp_path: Path, subject: object) -> None:
    doc = {"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE,
           "subject": [{"name": "iris/w.bin", "digest": {"sha256": _sha(b"weights")}}, subject],
           "predicate": {"verdict": "pass", "models": []}}
    path = tmp_path / "att.sigstore.json"
    bl.write_bundle(path, KeySigner(KEY).sign_statement(json.dumps(doc).encode()))
    _model(tmp_path / "base")
    check = verify_attestation(path, [VERIFIER], tmp_path / "base")
    assert check.message == "attestation subject without a name and a sha256 digest"


def _as_message_bundle(path: Path) -> None:
    doc = json.loads(path.read_text())
    doc["messageSignature"] = {"messageDigest": {"algorithm": "SHA2_256", "digest": ""}, "signature": ""}
    del doc["dsseEnvelope"]
    path.write_text(json.dumps(doc))


def test_no_matching_verifier_says_which_kind_the_bundle_needs(tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"a")
    bl.write_bundle(bundle_path(f), KeySigner(KEY).sign_statement(file_statement("m.bin", _sha(b"a"))))
    assert verify_artifact(f, []).message == "bundle is key (needs --public-key); no matching verifier was configured"
    doc = json.loads(bundle_path(f).read_text())
    doc["verificationMaterial"]["publicKey"]["hint"] = "openpubkey:x"
    bundle_path(f).write_text(json.dumps(doc))
    assert verify_artifact(f, []).message == ("bundle is OpenPubkey (needs --identity and --issuer); no matching "
                                              "verifier was configured")
    del doc["verificationMaterial"]["publicKey"]
    bundle_path(f).write_text(json.dumps(doc))
    assert verify_artifact(f, []).message == ("bundle is keyless Sigstore (needs --identity and --issuer); no "
                                              "matching verifier was configured")


def test_attestation_problems_all_listed_verdict_first(tmp_path: Path) -> None:
    base = tmp_path / "base"
    folder = _model(base)
    (folder / "added.bin").write_bytes(b"n")
    doc = {"_type": attest.STATEMENT_TYPE, "predicateType": attest.PREDICATE_TYPE,
           "subject": [{"name": "iris/w.bin", "digest": {"sha256": _sha(b"old")}}],
           "predicate": {"verdict": "fail", "models": [{"name": "iris", "files": ["iris/w.bin", "iris/tok/v.txt"]}]}}
    path = tmp_path / "att.sigstore.json"
    bl.write_bundle(path, KeySigner(KEY).sign_statement(json.dumps(doc).encode()))
    parts = verify_attestation(path, [VERIFIER], base).message.split("; ")
    assert parts[0] == "the attested gate verdict is 'fail', not 'pass'"
    assert parts[1].startswith("file iris/w.bin digest mismatch")
    assert parts[2:] == ["file iris/added.bin was added to model folder iris after signing"]
    _as_message_bundle(path)
    assert verify_attestation(path, [VERIFIER], base).message == "an attestation bundle must be a DSSE envelope"


def test_a_models_value_that_is_not_a_list_is_not_walked(tmp_path: Path) -> None:
    base = tmp_path / "base"
    _model(base)
    path = _attest(tmp_path, {"iris": "x"}, {"iris/w.bin": _sha(b"weights")})  # type: ignore[arg-type]
    check = verify_attestation(path, [VERIFIER], base)
    assert check.ok, check.message


def test_paths_the_signer_ignored_stay_ignored_and_changes_are_all_listed(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    doc = json.loads(model_folder.manifest_payload(folder, {"w.bin": _sha(b"weights"), "tok/v.txt": _sha(b"vocab")}))
    doc["predicate"]["serialization"]["ignore_paths"].append("model.sig")  # as model_signing's own CLI does
    bl.write_bundle(bundle_path(folder), KeySigner(KEY).sign_statement(json.dumps(doc).encode()))
    (folder / "model.sig").write_bytes(b"sig")
    (folder / ".gitignore").write_bytes(b"*.tmp")
    assert verify_artifact(folder, [VERIFIER]).ok
    (folder / "w.bin").write_bytes(b"other")
    (folder / "tok" / "v.txt").unlink()
    assert verify_artifact(folder, [VERIFIER]).message == (
        f"file tok/v.txt was removed after signing; file w.bin digest mismatch (signed sha256:{_sha(b'weights')[:16]}"
        f"..., now sha256:{_sha(b'other')[:16]}...)")


def test_an_attested_model_folder_ignores_git_files_and_checks_carry_the_target(tmp_path: Path) -> None:
    from mlsec_actions.signing.verify import Check

    base = tmp_path / "base"
    folder = _model(base)
    files = {"iris/w.bin": _sha(b"weights"), "iris/tok/v.txt": _sha(b"vocab")}
    path = _attest(tmp_path, [{"name": "iris", "files": sorted(files)}], files)
    (folder / ".gitignore").write_bytes(b"*.tmp")
    (folder / ".github").mkdir()
    (folder / ".github" / "x.yml").write_bytes(b"x")
    good = verify_attestation(path, [VERIFIER], base)
    assert good.ok and good.target == str(path), good
    (folder / "w.bin").write_bytes(b"other")
    bad = verify_attestation(path, [VERIFIER], base)
    assert bad == Check(str(path), False, bad.message, "attestation") and bad.ok is False


def test_verify_all_needs_something_and_checks_artifacts_then_attestations(tmp_path: Path) -> None:
    from mlsec_actions.errors import UsageError
    from mlsec_actions.signing.verify import verify_all

    with pytest.raises(UsageError) as e:
        verify_all([], [], [VERIFIER], tmp_path)
    assert str(e.value) == "name at least one ARTIFACT or --attestation FILE"
    base = tmp_path / "base"
    _model(base)
    f = base / "iris" / "w.bin"
    bl.write_bundle(bundle_path(f), KeySigner(KEY).sign_statement(file_statement("w.bin", _sha(b"weights"))))
    path = _attest(tmp_path, [], {"iris/w.bin": _sha(b"weights")})
    checks = verify_all([f], [path], [VERIFIER], base)
    assert [(c.target, c.ok) for c in checks] == [(str(f), True), (str(path), True)]


def test_git_files_are_never_part_of_a_model_even_when_the_manifest_lists_no_ignores(tmp_path: Path) -> None:
    folder = _model(tmp_path)
    doc = json.loads(model_folder.manifest_payload(folder, {"w.bin": _sha(b"weights"), "tok/v.txt": _sha(b"vocab")}))
    doc["predicate"]["serialization"]["ignore_paths"] = []
    bl.write_bundle(bundle_path(folder), KeySigner(KEY).sign_statement(json.dumps(doc).encode()))
    (folder / ".gitignore").write_bytes(b"*.tmp")
    check = verify_artifact(folder, [VERIFIER])
    assert check.ok, check.message
