"""devsecops.yml on a pull request whose head tries to trust its own signer (issue 16): the trust policy reaches
fetch, verify and publish only through actions/_trusted, so all three read the base commit's policy and keys.

The base commit trusts `.mlsec/signing.pub` through `.mlsec/trust.yml`; the lock's one artifact is signed with that
key (its bundle served beside it, `require_signatures`), and so is everything the sign job signs (`sign-image-key`).
The pull request's head swaps `.mlsec/signing.pub` for its author's key and adds a second entry for that key. Had
any of the three jobs read the head's files, fetch would refuse the lock's bundle and verify and publish this run's
own bundles (each signed by a key the head no longer lists). Reading the base commit's, the call is green up to the
upload: fetch places the artifact, verify reports the base policy's entry for every check (from
`$RUNNER_TEMP/mlsec-trusted/`, not the `mlsec-caller/` checkout of the head), and publish uploads to moto's S3
server on loopback. The mlsecops twin, a pull request refused at fetch, is tests/e2e/test_supply_workflow.py.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml

from mlsec_actions import cli
from mlsec_actions.signing.key import generate
from tests.e2e.act_harness import ActRun, git_commit, git_init, head_sha, run_workflow
from tests.supply_servers import S3_KEY_ID, S3_SECRET, HttpServer, S3Server, clamav_db, http_server, s3_server

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]
__all__ = ["clamav_db", "http_server", "s3_server"]  # fixtures used by name

FIXTURE_CALLER = Path(__file__).resolve().parent / "fixtures" / "devsecops-service" / ".github" / "workflows" / \
    "service.yml"
CALLER = Path(".github") / "workflows" / "service.yml"
BUCKET = "releases-pr"
FETCHED = "config/service.json"
FETCHED_BYTES = json.dumps({"feature": "pinned in the base"}).encode()
TRUST = "signers:\n  - public-key: signing.pub\n    name: release key\n"
POLICY = """version: 1
required-stages: [code-scan]
tool-errors: fail
thresholds:
  - id: no-high-or-critical
    severity: high
    max: 0
"""
FROM_BASE = "mlsec trusted files: trust policy and its keys from the base commit (pull request)"


def _caller() -> str:
    """The service fixture's caller, cut to the stages up to publish, on pull_request, with a lock and a trust
    policy (no publish-public-key: the trust policy names the only signer)."""
    doc = yaml.safe_load(FIXTURE_CALLER.read_text(encoding="utf-8"))
    (job,) = doc["jobs"].values()
    job["with"] = {"vuln-db": "skip", "policy": ".mlsec/policy.yml", "lock": "mlsec.lock",
                   "fetch-clamav-db": "${{ vars.CLAMAV_DB }}", "trust-policy": ".mlsec/trust.yml",
                   "sign-image-backend": "key", "publish-s3": f"s3://{BUCKET}/pr",
                   "s3-endpoint-url": "${{ vars.S3_ENDPOINT }}"}
    doc = {("on" if key is True else key): value for key, value in doc.items()}
    doc["on"] = {"pull_request": {}}
    return yaml.safe_dump(doc, sort_keys=False, width=200)


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory, clamav_db: Path, http_server: HttpServer,
                 s3_server: S3Server) -> ActRun:
    work = tmp_path_factory.mktemp("e2e-devsecops-pr")
    for who in ("release", "author"):
        generate(work / f"{who}.pem", work / f"{who}.pub")
    served = http_server.root / "pr-base" / "service.json"
    served.parent.mkdir(parents=True, exist_ok=True)
    served.write_bytes(FETCHED_BYTES)
    assert cli.main(["sign", "--backend", "key", "--key", str(work / "release.pem"), str(served),
                     "--digest-cache", str(work / "digests.json")]) == 0
    url = f"{http_server.base}/pr-base/service.json"
    lock = {"version": 1, "require_signatures": True,
            "artifacts": [{"name": FETCHED, "url": url, "sha256": hashlib.sha256(FETCHED_BYTES).hexdigest(),
                           "bundle": f"{url}.sigstore.json"}]}
    repo = work / "service"
    base = {CALLER.as_posix(): _caller(), ".mlsec/policy.yml": POLICY, ".mlsec/trust.yml": TRUST,
            ".mlsec/signing.pub": (work / "release.pub").read_text(encoding="utf-8"),
            "mlsec.lock": json.dumps(lock, indent=1), "README.md": "# service\n", "app/index.html": "<p>ok</p>\n"}
    for rel, text in base.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git_init(repo)
    base_sha = head_sha(repo)
    author = (work / "author.pub").read_text(encoding="utf-8")
    head = {".mlsec/signing.pub": author, ".mlsec/author.pub": author,
            ".mlsec/trust.yml": TRUST + "  - public-key: author.pub\n    name: the pull request's author\n"}
    payload = {"number": 16, "pull_request": {"number": 16, "base": {"sha": base_sha, "ref": "main"},
                                              "head": {"sha": git_commit(repo, head, "trust me"), "ref": "pr"}}}
    s3_server.client().create_bucket(Bucket=BUCKET)
    run = run_workflow(repo, repo / CALLER, work, event="pull_request", event_payload=payload, timeout=1500,
                       variables={"CLAMAV_DB": str(clamav_db), "S3_ENDPOINT": s3_server.endpoint},
                       secrets={"MLSEC_SIGNING_KEY": (work / "release.pem").read_text(encoding="utf-8"),
                                "MLSEC_AWS_ACCESS_KEY_ID": S3_KEY_ID, "MLSEC_AWS_SECRET_ACCESS_KEY": S3_SECRET})
    print(f"devsecops pull-request e2e: {run.seconds:.1f} s")
    return run


def test_the_head_cannot_trust_its_own_key_in_fetch_verify_or_publish(pull_request: ActRun,
                                                                      s3_server: S3Server) -> None:
    run = pull_request
    for job in ("fetch (Dev stage 2)", "code-scan", "sbom (Dev stage 8)", "sign (Dev stage 8)", "verify (Dev stage 8)",
                "publish (Dev stage 9)"):
        assert run.job_result(job) == "succeeded", (job, run.log[-6000:])
    assert run.returncode == 0, run.log[-6000:]
    for job in ("fetch", "verify", "publish"):
        lines = [line for line in run.log.splitlines() if FROM_BASE in line and re.search(rf"/{job} \(Dev", line)]
        assert lines, (job, run.log[-6000:])
    # The fetched artifact is the base's pinned bytes, its bundle beside it: verified with the base commit's key.
    fetched = run.artifact("mlsec-fetched-devsecops")
    assert (fetched / FETCHED).read_bytes() == FETCHED_BYTES
    # verify trusted every bundle and the attestation through the base commit's entry, copied out of the checkout.
    report = json.loads((run.artifact("mlsec-verify-devsecops") / "verify.json").read_text(encoding="utf-8"))
    assert report["ok"] is True and report["checks"], report
    for check in report["checks"]:
        assert check["trusted"].endswith("/mlsec-trusted/.mlsec/trust.yml signers[0] (release key)"), check
        assert "mlsec-caller" not in check["trusted"], check
    listed = s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix="pr/").get("Contents", [])
    assert any(item["Key"].endswith("/gate.intoto.sigstore.json") for item in listed), listed
