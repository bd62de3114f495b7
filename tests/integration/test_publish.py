"""publish against a real MLflow tracking server and moto's S3 server on loopback, with the project's own key
signing: registered only after a passing verdict and a verify done by publish itself, idempotent, rollback,
and no credential in any output."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

from mlsec_actions import cli
from tests.supply_servers import MlflowServer, S3Server

pytestmark = pytest.mark.integration
TOKEN = "mlsec-test-token-7f3a9c1e5b"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server) -> Path:
    """A pipeline's output after a passing gate: a model file signed with a key, the gate attestation."""
    from mlsec_actions.signing import key

    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    (tmp_path / "weights.bin").write_bytes(b"model weights v1" * 100)
    (tmp_path / "card.md").write_text("# Classifier\n\nIntended use: tests.\n")
    (tmp_path / "mlsec-results").mkdir()
    _verdict(tmp_path, "pass")
    key.generate(tmp_path / "k.pem", tmp_path / "k.pub")
    _sign(tmp_path)
    return tmp_path


def _verdict(ws: Path, verdict: str) -> None:
    doc = {"verdict": verdict, "policy": {"path": "policies/default.yml", "sha256": "cd" * 32}, "inputs": [],
           "violations": [] if verdict == "pass" else [{"stage": "model-scan", "message": "x"}], "counts": {},
           "tools": []}
    (ws / "mlsec-results" / "verdict.json").write_text(json.dumps(doc))


def _sign(ws: Path) -> None:
    assert cli.main(["sign", "--backend", "key", "--key", str(ws / "k.pem"), "--verdict",
                     "mlsec-results/verdict.json", "--attest", "weights.bin"]) == 0


def _publish(name: str, server: MlflowServer, *extra: str) -> int:
    return cli.main(["publish", "weights.bin", "--name", name, "--mlflow-uri", server.uri, "--public-key", "k.pub",
                     "--verdict", "mlsec-results/verdict.json", "--attestation",
                     "mlsec-results/gate.intoto.sigstore.json", "--model-card", "card.md", *extra])


def _versions(server: MlflowServer, name: str) -> list[dict[str, object]]:
    got = server.call("/api/2.0/mlflow/model-versions/search", filter=f"name='{name}'")
    return list(got.get("model_versions") or [])  # type: ignore[call-overload]


def _tags(version: dict[str, object]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in version.get("tags") or []}  # type: ignore[attr-defined]


def test_publish_registers_with_digests_card_and_bundles_then_is_idempotent(
        ws: Path, mlflow_server: MlflowServer, s3_server: S3Server) -> None:
    s3_server.client().create_bucket(Bucket="published")
    assert _publish("clf-main", mlflow_server, "--s3", "s3://published/models", "--alias", "champion",
                    "--release", "1.0.0") == 0
    (version,) = _versions(mlflow_server, "clf-main")
    tags = _tags(version)
    sha = hashlib.sha256((ws / "weights.bin").read_bytes()).hexdigest()
    assert tags["mlsec.sha256"] == sha and tags["mlsec.verdict"] == "pass" and tags["mlsec.release"] == "1.0.0"
    assert version["description"] == (ws / "card.md").read_text()
    # Read the files back through MLflow's API and verify them with our own verify.
    source = str(version["source"]).removeprefix("mlflow-artifacts:/").removesuffix("/files")
    back = ws / "back"
    back.mkdir()
    (back / "weights.bin").write_bytes(mlflow_server.artifact(f"{source}/files/weights.bin"))
    (back / "weights.bin.sigstore.json").write_bytes(
        mlflow_server.artifact(f"{source}/bundles/weights.bin.sigstore.json"))
    assert mlflow_server.artifact(f"{source}/attestation/gate.intoto.sigstore.json")
    assert cli.main(["verify", "--public-key", "k.pub", str(back / "weights.bin")]) == 0
    alias = mlflow_server.call("/api/2.0/mlflow/registered-models/alias", name="clf-main", alias="champion")
    assert alias["model_version"]["version"] == version["version"]  # type: ignore[index]
    record = json.loads((ws / "mlsec-results" / "publish.json").read_text())
    # S3 gets the file, its bundle and the gate attestation beside it, each with its SHA-256 as metadata.
    assert record["mlflow"]["created"] is True and len(record["s3"]["uploaded"]) == 3
    prefix = f"models/{record['digest']}"
    assert sorted(record["s3"]["uploaded"]) == sorted(
        f"{prefix}/{n}" for n in ("weights.bin", "weights.bin.sigstore.json", "gate.intoto.sigstore.json"))
    for key, source in ((f"{prefix}/weights.bin", ws / "weights.bin"),
                        (f"{prefix}/gate.intoto.sigstore.json", ws / "mlsec-results" / "gate.intoto.sigstore.json")):
        head = s3_server.client().head_object(Bucket="published", Key=key)
        assert head["Metadata"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        got = s3_server.client().get_object(Bucket="published", Key=key)["Body"].read()
        assert got == source.read_bytes()
    # The same bytes again: nothing changes.
    assert _publish("clf-main", mlflow_server, "--s3", "s3://published/models", "--release", "1.0.0") == 0
    assert len(_versions(mlflow_server, "clf-main")) == 1
    record = json.loads((ws / "mlsec-results" / "publish.json").read_text())
    assert record["mlflow"]["created"] is False and record["s3"]["uploaded"] == []


def test_s3_gets_the_sbom_and_an_attestation_with_other_bytes_refuses_before_any_upload(
        ws: Path, s3_server: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    """S3 alone: with --sbom four objects; a bundle or attestation already there with other bytes (the same files
    signed again) is refused, and the check comes before the first upload, so nothing else is written."""
    client = s3_server.client()
    client.create_bucket(Bucket="attested")
    (ws / "sbom.cdx.json").write_text('{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n')
    args = ["publish", "weights.bin", "--s3", "s3://attested/m", "--public-key", "k.pub", "--verdict",
            "mlsec-results/verdict.json", "--attestation", "mlsec-results/gate.intoto.sigstore.json"]
    assert cli.main([*args, "--sbom", "sbom.cdx.json"]) == 0
    record = json.loads((ws / "mlsec-results" / "publish.json").read_text())
    prefix = f"m/{record['digest']}"
    assert sorted(record["s3"]["uploaded"]) == sorted(f"{prefix}/{n}" for n in (
        "weights.bin", "weights.bin.sigstore.json", "gate.intoto.sigstore.json", "sbom.cdx.json"))
    head = client.head_object(Bucket="attested", Key=f"{prefix}/sbom.cdx.json")
    assert head["Metadata"]["sha256"] == hashlib.sha256((ws / "sbom.cdx.json").read_bytes()).hexdigest()
    # Same files signed again (new bundle and attestation bytes): their keys are taken by other bytes. Nothing is
    # uploaded, not even the SBOM that is missing now.
    client.delete_object(Bucket="attested", Key=f"{prefix}/sbom.cdx.json")
    _sign(ws)
    capsys.readouterr()
    assert cli.main([*args, "--sbom", "sbom.cdx.json"]) == 1
    err = capsys.readouterr().err
    assert f"s3://attested/{prefix}/" in err and ".sigstore.json exists with other bytes" in err, err
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="attested").get("Contents", [])]
    assert f"{prefix}/sbom.cdx.json" not in keys and len(keys) == 3


def _registered(server: MlflowServer, name: str) -> bool:
    try:
        server.call("/api/2.0/mlflow/registered-models/get", name=name)
    except urllib.error.HTTPError:
        return False
    return True


def test_refused_after_a_failing_gate_or_a_failed_verify(ws: Path, mlflow_server: MlflowServer, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from mlsec_actions.signing import key

    _verdict(ws, "fail")
    assert _publish("clf-refused", mlflow_server) == 1
    assert "verdict" in capsys.readouterr().err
    _verdict(ws, "pass")
    _sign(ws)
    (ws / "weights.bin").write_bytes(b"swapped after signing")
    assert _publish("clf-refused", mlflow_server) == 1
    assert "verify failed" in capsys.readouterr().err
    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    (ws / "weights.bin").write_bytes(b"model weights v1" * 100)
    assert cli.main(["publish", "weights.bin", "--name", "clf-refused", "--mlflow-uri", mlflow_server.uri,
                     "--public-key", str(tmp_path / "o.pub"), "--verdict", "mlsec-results/verdict.json",
                     "--attestation", "mlsec-results/gate.intoto.sigstore.json"]) == 1
    assert cli.main(["publish", "weights.bin", "--name", "clf-refused", "--mlflow-uri", mlflow_server.uri,
                     "--public-key", "k.pub", "--verdict", "mlsec-results/verdict.json"]) == 2
    assert not _registered(mlflow_server, "clf-refused")  # nothing reached the registry


def test_other_bytes_under_a_release_are_refused_and_rollback(ws: Path, mlflow_server: MlflowServer,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _publish("clf-roll", mlflow_server, "--release", "1", "--alias", "champion") == 0
    (ws / "weights.bin").write_bytes(b"model weights v2" * 100)
    _sign(ws)
    assert _publish("clf-roll", mlflow_server, "--release", "1") == 1
    assert "release 1" in capsys.readouterr().err
    assert _publish("clf-roll", mlflow_server, "--release", "2", "--alias", "champion") == 0
    alias = mlflow_server.call("/api/2.0/mlflow/registered-models/alias", name="clf-roll", alias="champion")
    assert alias["model_version"]["version"] == "2"  # type: ignore[index]
    base = ["publish", "--name", "clf-roll", "--mlflow-uri", mlflow_server.uri, "--alias", "champion"]
    assert cli.main([*base, "--rollback", "1"]) == 0
    alias = mlflow_server.call("/api/2.0/mlflow/registered-models/alias", name="clf-roll", alias="champion")
    assert alias["model_version"]["version"] == "1"  # type: ignore[index]
    assert cli.main([*base, "--rollback", "99"]) == 1


def test_credentials_never_appear_in_any_output(ws: Path, mlflow_server: MlflowServer, tmp_path: Path) -> None:
    summary, out = tmp_path / "summary.md", tmp_path / "out.txt"
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": TOKEN, "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_OUTPUT": str(out)}
    exe = str(Path(sys.executable).parent / "mlsec")
    common = ["--public-key", "k.pub", "--verdict", "mlsec-results/verdict.json",
              "--attestation", "mlsec-results/gate.intoto.sigstore.json"]
    runs = [
        subprocess.run([exe, "publish", "weights.bin", "--name", "clf-secret", "--mlflow-uri", mlflow_server.uri,
                        *common], env=env, capture_output=True, text=True, check=False),
        # A server that is not there: the error path.
        subprocess.run([exe, "publish", "weights.bin", "--name", "clf-secret", "--mlflow-uri",
                        "http://127.0.0.1:9", *common], env=env, capture_output=True, text=True, check=False),
        # Credentials in the URI are refused, and not echoed.
        subprocess.run([exe, "publish", "weights.bin", "--name", "clf-secret", "--mlflow-uri",
                        f"http://user:{TOKEN}@127.0.0.1:9", *common], env=env, capture_output=True, text=True,
                       check=False),
        # S3 failures carry no key either.
        subprocess.run([exe, "publish", "weights.bin", "--s3", "s3://no-such-bucket-mlsec/x", *common],
                       env=env, capture_output=True, text=True, check=False),
    ]
    assert [r.returncode for r in runs] == [0, 1, 2, 1], [r.stderr for r in runs]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    written = [r.stdout + r.stderr for r in runs] + [p.read_text() for p in (summary, out) if p.exists()]
    written.append((ws / "mlsec-results" / "publish.json").read_text())
    for text in written:
        assert TOKEN not in text and secret not in text, text
    assert "Traceback" not in "".join(written)


def test_trust_policy_listed_key_publishes_unlisted_refused_malformed_exit_2(
        ws: Path, mlflow_server: MlflowServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--trust-policy` instead of `--public-key`: a policy listing the signing key publishes; one listing only
    another key is refused (exit 1) with nothing registered; a malformed one is exit 2 naming file and line."""
    from mlsec_actions.signing import key

    key.generate(tmp_path / "o.pem", tmp_path / "o.pub")
    policy = ws / "trust" / "trust.yml"
    policy.parent.mkdir()
    (policy.parent / "o.pub").write_bytes((tmp_path / "o.pub").read_bytes())
    (policy.parent / "release.pub").write_bytes((ws / "k.pub").read_bytes())
    common = ["--verdict", "mlsec-results/verdict.json", "--attestation", "mlsec-results/gate.intoto.sigstore.json",
              "--trust-policy", str(policy)]

    def publish(name: str) -> int:
        return cli.main(["publish", "weights.bin", "--name", name, "--mlflow-uri", mlflow_server.uri, *common])

    policy.write_text("signers:\n  - public-key: o.pub\n    name: someone else\n")
    assert publish("clf-policy-other") == 1
    assert "verify failed" in capsys.readouterr().err
    assert not _registered(mlflow_server, "clf-policy-other")
    policy.write_text("signers:\n  - public-key: o.pub\n  - public-key: release.pub\n    name: release key\n")
    assert publish("clf-policy") == 0
    (version,) = _versions(mlflow_server, "clf-policy")
    assert _tags(version)["mlsec.sha256"] == hashlib.sha256((ws / "weights.bin").read_bytes()).hexdigest()
    capsys.readouterr()
    policy.write_text("signers:\n  - public-key: release.pub\n    issur: x\n")
    for verdict in ("pass", "fail"):  # the policy is read first: bad input is exit 2 whatever the verdict
        _verdict(ws, verdict)
        assert publish("clf-policy-bad") == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(policy) in err[0] and "line 3" in err[0] and "issur" in err[0], err
    assert not _registered(mlflow_server, "clf-policy-bad")
