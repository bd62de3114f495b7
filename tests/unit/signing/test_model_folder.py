"""Model folders in model_signing's manifest format, and the messages that name what changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

import pytest

from mlsec_actions.signing import model_folder
from mlsec_actions.signing.attest import predicate_path
from mlsec_actions.signing.interface import VerificationError

A, B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()


def test_manifest_is_model_signing_statement(tmp_path: Path) -> None:
    payload = model_folder.manifest_payload(tmp_path / "iris", {"w.bin": A, "tok/v.txt": B})
    doc = json.loads(payload)
    assert doc["_type"] == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == model_folder.PREDICATE_TYPE
    assert doc["subject"][0]["name"] == "iris"
    # The subject digest is model_signing's: SHA-256 over the sorted resources' digests.
    root = hashlib.sha256(bytes.fromhex(B) + bytes.fromhex(A)).hexdigest()
    assert doc["subject"][0]["digest"]["sha256"] == root
    assert doc["predicate"]["serialization"]["ignore_paths"] == list(model_folder.IGNORED)
    assert model_folder.signed_resources(payload) == {"w.bin": A, "tok/v.txt": B}


def _model_signing_payload(folder: Path, digests: dict[str, str]) -> dict[str, object]:
    """The statement model_signing builds from the same digests, with its own types (the reference)."""
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from model_signing import manifest
    from model_signing._hashing import hashing
    from model_signing._signing import signing

    serialization = manifest._FileSerialization("sha256", allow_symlinks=False,
                                                ignore_paths=[Path(p) for p in model_folder.IGNORED])
    items = [manifest.FileManifestItem(path=PurePosixPath(n), digest=hashing.Digest("sha256", bytes.fromhex(d)))
             for n, d in digests.items()]
    payload = signing.Payload(manifest.Manifest(folder.resolve().name, items, serialization))
    doc: dict[str, object] = json.loads(json_format.MessageToJson(payload.statement.pb))
    return doc


def test_manifest_is_exactly_the_statement_model_signing_builds(tmp_path: Path) -> None:
    # Names whose part-by-part order differs from plain string order ("a-b" < "a/b" as text, after it as a path),
    # case, non-ASCII, spaces, deep paths.
    names = ["a/b", "a-b", "a/b-c/d", "a.b", "A", "z", "é/ü x", "sub dir/f", "x/y/z/w", "a0", "a/0"]
    digests = {n: hashlib.sha256(n.encode()).hexdigest() for n in names}
    ours = json.loads(model_folder.manifest_payload(tmp_path / "m-1", digests))
    assert ours == _model_signing_payload(tmp_path / "m-1", digests)


def test_diff_names_added_removed_and_changed() -> None:
    signed = {"w.bin": A, "gone.txt": A, "cfg.json": A}
    actual = {"w.bin": B, "cfg.json": A, "new.pkl": B}
    changes = model_folder.diff(signed, actual)
    assert changes[0] == "file new.pkl was added after signing"
    assert changes[1] == "file gone.txt was removed after signing"
    assert changes[2].startswith("file w.bin digest mismatch (signed sha256:" + A[:16])
    assert model_folder.diff(signed, dict(signed)) == []


def test_other_statements_are_not_model_manifests() -> None:
    with pytest.raises(VerificationError, match="not a model_signing manifest"):
        model_folder.signed_resources(b'{"predicateType": "https://slsa.dev/provenance/v1"}')
    with pytest.raises(VerificationError, match="malformed"):
        model_folder.signed_resources(b"[]")


def test_predicate_file_name() -> None:
    assert predicate_path(Path("out/gate.intoto.sigstore.json")) == Path("out/gate.predicate.json")


def test_ignored_paths_are_left_out_of_the_comparison() -> None:
    payload = b'{"predicate": {"serialization": {"ignore_paths": ["model.sig", "cache/"]}}}'
    ignore = model_folder.ignored_paths(payload)
    assert ignore == ("model.sig", "cache")
    tree = {"model.sig": A, "cache/x": A, "cachex": B, "w.bin": B}
    assert model_folder.without(tree, ignore) == {"cachex": B, "w.bin": B}


def test_a_resource_hashed_otherwise_is_not_silently_dropped() -> None:
    payload = json.dumps({"predicateType": model_folder.PREDICATE_TYPE, "predicate": {"resources": [
        {"name": "w.bin", "algorithm": "sha256", "digest": A},
        {"name": "backdoor.pkl", "algorithm": "blake2b", "digest": B}]}}).encode()
    with pytest.raises(VerificationError, match=r"digest algorithm\(s\) \['blake2b'\]; only sha256"):
        model_folder.signed_resources(payload)


def test_diff_names_links_and_special_files() -> None:
    signed = {"w.bin": A, "cfg.json": A}
    others = {"etc": "symlink -> /etc", "pipe": "FIFO", "cfg.json": "symlink -> /tmp/x"}
    assert model_folder.diff(signed, {"w.bin": A}, others) == [
        "file cfg.json was replaced by a symlink cfg.json -> /tmp/x after signing",
        "symlink etc -> /etc was added after signing",
        "FIFO pipe was added after signing",
    ]
