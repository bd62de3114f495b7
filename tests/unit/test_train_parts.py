"""train's pure parts: the scrubbed environment, the tree snapshot and its diff, the commit read as data, the
provenance statement's shape and domain separation, signing and verifying it with the key backend, the gate's
checkpoint sections, and every train rule's docs anchor."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest

from mlsec_actions.gate import policy
from mlsec_actions.signing import bundle as bl
from mlsec_actions.signing import key, statements
from mlsec_actions.signing.interface import SignedPayload, SigningError, VerificationError
from mlsec_actions.training import environment, provenance, rules, signing, snapshot
from tests.unit.test_docs_anchors import PREFIX, _anchors

REPO = Path(__file__).resolve().parents[2]


def test_environment_withholds_credentials_and_our_venv() -> None:
    base = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin", "HOME": "/h", "GITHUB_TOKEN": "t",
            "ACTIONS_ID_TOKEN_REQUEST_URL": "u", "ACTIONS_RUNTIME_TOKEN": "r", "MLSEC_SIGNING_KEY": "k",
            "AWS_ACCESS_KEY_ID": "a", "HF_TOKEN": "h", "DB_PASSWORD": "p", "MY_SECRET": "s", "NPM_AUTH_TOKEN": "n",
            "TOKENIZERS_PARALLELISM": "false", "KEYRING_BACKEND": "x", "CUDA_VISIBLE_DEVICES": "0",
            "GITHUB_SHA": "abc", "PYTHONHASHSEED": "0"}
    env = environment.training_env(base=base)
    assert env["PATH"] == "/usr/bin"
    assert set(env) == {"PATH", "HOME", "TOKENIZERS_PARALLELISM", "KEYRING_BACKEND", "CUDA_VISIBLE_DEVICES",
                        "GITHUB_SHA", "PYTHONHASHSEED"}
    assert "HF_TOKEN" in environment.dropped(env, base)
    assert environment.training_env(["HF_TOKEN"], base=base)["HF_TOKEN"] == "h"


@pytest.mark.parametrize(("command", "explicit", "want"), [
    (["python", "t.py"], None, "python"), (["/usr/bin/python3.11", "t.py"], None, "/usr/bin/python3.11"),
    (["bash", "train.sh"], None, None), (["bash"], "/opt/py", "/opt/py"), (["pythonista"], None, None)])
def test_interpreter_of(command: list[str], explicit: str | None, want: str | None) -> None:
    assert environment.interpreter_of(command, explicit) == want


def test_snapshot_diff_sees_create_change_remove_but_not_excluded(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "model").mkdir()
    (tmp_path / ".git").mkdir()
    before = snapshot.take(tmp_path, ("model",))
    (tmp_path / "a.txt").write_text("changed, longer")
    (tmp_path / "b.txt").unlink()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("c")
    (tmp_path / "model" / "m.bin").write_text("m")
    (tmp_path / ".git" / "index").write_text("git's own")
    changes = snapshot.diff(before, snapshot.take(tmp_path, ("model",)))
    assert changes == snapshot.Changes(("sub/c.txt",), ("a.txt",), ("b.txt",))
    assert not snapshot.diff(before, before).any


def test_snapshot_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_text("x")
    monkeypatch.setattr(snapshot, "MAX_ENTRIES", 3)
    assert snapshot.take(tmp_path).truncated


def test_git_commit_is_read_as_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert snapshot.git_commit(tmp_path) is None
    (git / "packed-refs").write_text("# pack-refs\n" + "b" * 40 + " refs/heads/main\n")
    assert snapshot.git_commit(tmp_path) == "b" * 40
    (git / "refs" / "heads" / "main").write_text("C" * 40 + "\n")
    assert snapshot.git_commit(tmp_path) == "c" * 40
    (git / "HEAD").write_text("ref: refs/../../../etc/passwd\n")
    assert snapshot.git_commit(tmp_path) is None
    monkeypatch.setenv("GITHUB_SHA", "d" * 40)
    assert snapshot.git_commit(tmp_path) == "d" * 40


def _record(**changes: object) -> provenance.RunRecord:
    now = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    fields: dict[str, object] = dict(
        command=("python", "t.py"), parameters=(("seed", "0"),), output_dir="model",
        outputs={"model/m.bin": "a" * 64}, inputs={"data.csv": "b" * 64}, commit="c" * 40, interpreter=None,
        started=now, finished=now + dt.timedelta(seconds=2), exit_code=0, timeout=60.0, run_id="r",
        log_sha256="d" * 64, dropped_env=("GITHUB_TOKEN",))
    fields.update(changes)
    return provenance.RunRecord(**fields)  # type: ignore[arg-type]


def test_statement_shape() -> None:
    doc = provenance.statement(_record())
    assert provenance.check(doc) == []
    assert doc["subject"] == [{"name": "model/m.bin", "digest": {"sha256": "a" * 64}}]
    run = doc["predicate"]["runDetails"]
    assert run["metadata"] == {"invocationId": "r", "startedOn": "2026-12-02T00:00:00.000000Z",
                               "finishedOn": "2026-12-02T00:00:02.000000Z"}
    assert run["byproducts"][0]["annotations"] == {"exitCode": 0, "stopped": False, "seconds": 2.0}
    assert provenance.check(provenance.statement(_record(outputs={}))) == ["no subjects (the run recorded no output)"]


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda d: d.update(_type="x"), "_type"), (lambda d: d.update(predicateType="x"), "predicateType"),
    (lambda d: d["predicate"]["buildDefinition"].update(buildType="https://other/builder"), "buildType"),
    (lambda d: d["subject"][0]["digest"].update(sha1="x"), "subject"),
    (lambda d: d["subject"][0].update(digest={"sha256": "short"}), "subject")])
def test_check_refuses_other_statements(edit: object, problem: str) -> None:
    doc = provenance.statement(_record())
    edit(doc)  # type: ignore[operator]
    assert problem in provenance.check(doc)[0]


def test_domain_separation_of_the_provenance_kind() -> None:
    ours = provenance.encode(provenance.statement(_record()))
    statements.require_typed(ours)
    other = json.loads(ours)
    other["predicate"]["buildDefinition"]["buildType"] = "https://slsa-framework.github.io/github-actions-buildtypes"
    with pytest.raises(SigningError, match="build type"):
        statements.require_typed(json.dumps(other).encode())
    signed = SignedPayload(payload=json.dumps(other).encode(), payload_type="application/vnd.in-toto+json",
                           signer="k")
    with pytest.raises(VerificationError, match="another builder"):
        statements.open_statement(signed, statements.Kind.TRAIN_PROVENANCE)
    signed_ours = SignedPayload(payload=ours, payload_type="application/vnd.in-toto+json", signer="k")
    with pytest.raises(VerificationError, match="expected"):
        statements.open_statement(signed_ours, statements.Kind.GATE_VERDICT)  # a provenance is not a verdict
    statements.open_statement(signed_ours, statements.Kind.TRAIN_PROVENANCE)


def test_sign_and_verify_provenance_with_the_key_backend(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    weights = tmp_path / "model" / "m.bin"
    weights.write_bytes(b"weights")
    from mlsec_actions.digests import sha256_file

    statement_file = tmp_path / "train.provenance.json"
    statement_file.write_bytes(provenance.encode(provenance.statement(
        _record(outputs={"model/m.bin": sha256_file(weights)}))))
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    signer = key.KeySigner(key.load_private_key(tmp_path / "k.pem"))
    verifier = key.KeyVerifier(bl.load_public_key(tmp_path / "k.pub"))
    raw = signing.checked_statement(statement_file, tmp_path)
    assert raw == statement_file.read_bytes()
    out = tmp_path / "train.provenance.json.sigstore.json"
    bl.write_bundle(out, signer.sign_statement(raw))
    ok, message = signing.verify(out, [verifier], tmp_path)
    assert ok, message
    weights.write_bytes(b"swapped")
    ok, message = signing.verify(out, [verifier], tmp_path)
    assert not ok and "m.bin digest mismatch" in message
    with pytest.raises(SigningError, match="changed since training"):
        signing.checked_statement(statement_file, tmp_path)
    weights.unlink()
    with pytest.raises(SigningError, match="not a regular file"):
        signing.checked_statement(statement_file, tmp_path)


def test_gate_checkpoint_section_replaces_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("version: 1\nrequired-stages: [code-scan]\nthresholds:\n  - id: top\n    max: 0\n"
                    "checkpoints:\n  \"8\":\n    required-stages: [code-scan, evaluate]\n    metrics:\n"
                    "      - id: acc\n        stage: evaluate\n        property: metrics.accuracy\n"
                    "        op: \">=\"\n        value: 0.9\n")
    top = policy.load(path)
    eight = policy.load(path, checkpoint=8)
    four = policy.load(path, checkpoint=4)
    assert top.required_stages == four.required_stages == ("code-scan",) and not top.metrics
    assert eight.required_stages == ("code-scan", "evaluate") and eight.checkpoint == 8
    assert [t.id for t in eight.thresholds] == ["top"]  # not in the section: shared
    assert eight.metrics[0].line == 10  # its own line, in the section
    assert policy.load("default", checkpoint=8).required_stages == ("code-scan", "evaluate")
    path.write_text("version: 1\ncheckpoints:\n  \"8\":\n    required-stages: [evalute]\n")
    with pytest.raises(policy.PolicyError) as typo:
        policy.load(path)  # checked at every load, not only by the gate at 8
    assert "p.yml:4: required-stages[0]: 'evalute' names no stage" in typo.value.problems[0]
    path.write_text("version: 1\ncheckpoints:\n  \"8\":\n    waivers: []\n")
    with pytest.raises(policy.PolicyError):
        policy.load(path, checkpoint=8)  # waivers are shared, never per checkpoint


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.id)
def test_train_rules_land_on_docs_headings(rule: object) -> None:
    uri = rule.help_uri  # type: ignore[attr-defined]
    page, _, fragment = uri.removeprefix(PREFIX).partition("#")
    assert fragment in _anchors(REPO / page)
