"""devsecops.yml end to end under act (issue 18 acceptance): a service repository's caller workflow, twice in one run.

The caller is tests/e2e/fixtures/devsecops-service/.github/workflows/service.yml, the copy-paste workflow of
docs/workflows.md#service-repository, called here as two jobs of one act run (one act start-up, both pipelines
side by side, each with its own `instance`), with Dev stages 1 and 2 switched on by the test (the fast precommit
pass, and fetch of `mlsec.lock`'s one artifact from a loopback HTTP server, scanned with a ClamAV database made
here), so all twelve stages run:
- `before`: the deployment before its fixes - the vulnerable app (tests/vulnerable_app.py), a TLS 1.0 endpoint
  with an expired self-signed certificate and a port outside the allowlist (tests/tls_services.py). gate-7 fails on
  dast's findings and gate-11 on infra-scan's and runtime-probe's, so nothing is signed;
- `after`: the same repository and policy against the fixed deployment - the fixed app, the TLS 1.2+ endpoint, only
  the service port open; the policy's waiver covers the private CA. Every gate passes and sign-image signs the
  pushed image (key backend, a key made here) and attests the build's SBOM on it, which `mlsec verify-image`
  then verifies from the registry (signature, gate verdict and SBOM attestations). Then sign (Dev 8) signs the
  release evidence and publish (Dev 9) uploads it to moto's S3 server on loopback (tests/supply_servers.py), where
  the test reads every object back, compares its bytes with its sha256 metadata and the run's own files, and
  verifies the bundles with the public key (the fetched artifact, signed as a folder, among them). Before sign,
  sbom (Dev 8) writes the service's CycloneDX BOM (schema-valid, gate-7's verdict in it), which sign signs and
  publish uploads; between sign and publish, verify (Dev 8) checks every bundle and the attestation against the
  signers of the repository's trust policy (`trust-policy`, no `publish-public-key`: this call names its signer only
  there) and keeps its report. `before` publishes nothing: its prefix stays empty.
  The lock's artifact carries a bundle (signed with the same key), so both calls' fetch must verify it: through
  the trust policy, which devsecops hands fetch, verify and publish via actions/_trusted.
- `tampered`: a third, short call (code-scan, gate-4, sbom, sign, verify, publish; no build or deployment) whose
  release evidence is changed in the artifact store after sign kept it (one byte appended to the signed SBOM, by the
  upload-artifact stand-in's fault injection, E2E_TAMPER_ARTIFACTS): verify fails naming the SBOM and publish never
  runs, so its prefix stays empty.

Real here: buildah, the distribution registry (tests/oci_registry.py), trivy, nmap, OpenSCAP with ssg-debian,
wapiti, the apps and TLS services, moto's S3 server, all on loopback. The deployed service is the loopback app, not
the image (no container runtime here). Stand-ins: GitHub's own actions (tests/e2e/standins); the ZAP and buildx
steps are never taken (dast-zap off, builder buildah).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlsec_actions.signing.key import generate
from tests.e2e.act_harness import ActRun, git_init, run_workflow
from tests.e2e.conftest import day
from tests.oci_registry import Registry, oci_registry
from tests.supply_servers import S3_KEY_ID, S3_SECRET, HttpServer, S3Server, clamav_db, http_server, s3_server
from tests.tls_services import Services, plain_listeners, tls_services
from tests.vulnerable_app import Running, fixed, vulnerable

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act-b")]
# Fixtures used by name.
__all__ = ["clamav_db", "fixed", "http_server", "oci_registry", "plain_listeners", "s3_server", "tls_services",
           "vulnerable"]

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "devsecops-service"
CALLER = Path(".github") / "workflows" / "service.yml"
POLICY = Path(".mlsec") / "policy.yml"
CALLS = ("before", "after")
TAMPERED = "tampered"
GATE_7 = "gate after build and DAST"
GATE_11 = "gate on the deployment"
SIGN = "sign-image (Dev stage 8)"
SIGN_RELEASE = "sign (Dev stage 8)"
PUBLISH = "publish (Dev stage 9)"
SBOM = "sbom (Dev stage 8)"
VERIFY = "verify (Dev stage 8)"
BUCKET = "releases"
PUBLIC_KEY = Path(".mlsec") / "signing.pub"
LOCK = Path("mlsec.lock")
FETCHED = "config/service.json"
FETCHED_BYTES = json.dumps({"feature": "pinned"}).encode()
# Its key relative to itself: .mlsec/signing.pub (docs/signing.md#trust-policy).
TRUST_POLICY = Path(".mlsec") / "trust.yml"
TRUST = "signers:\n  - public-key: signing.pub\n    name: release key\n"
# The modules that find the vulnerable app's holes (as tests/integration/test_dast.py): a shorter dast job.
DAST_MODULES = "xss,sql,file,http_headers,csp"
STAGE_JOBS = ("precommit", "fetch", "code-scan", "gate before build", "build", "image-scan", "dast", "infra-scan",
              "runtime-probe")


def two_calls(caller: str) -> str:
    """The fixture's one-job caller as two jobs, `before` and `after`: each its own instance and the short wapiti
    module list, and each reading its own deployment's variables (vars.X -> vars.BEFORE_X / vars.AFTER_X; the
    MLSEC_* ones are shared)."""
    doc = yaml.safe_load(caller)
    (job,) = doc["jobs"].values()
    text = yaml.safe_dump(job, sort_keys=False)
    jobs = {}
    for call in CALLS:
        one = yaml.safe_load(text.replace("vars.", f"vars.{call.upper()}_").replace(f"vars.{call.upper()}_MLSEC_",
                                                                                      "vars.MLSEC_"))
        one["with"]["instance"] = call
        one["with"]["dast-wapiti-modules"] = DAST_MODULES
        # Dev stages 1 and 2 as well: the fast pre-commit pass, and fetch of the lock's pinned artifact from the
        # loopback HTTP server, scanned with the runner-side ClamAV database the test made (not in the docs'
        # copy-paste caller, which a repository without a lock uses unchanged).
        one["with"]["precommit"] = "fast"
        one["with"]["lock"] = LOCK.as_posix()
        one["with"]["fetch-clamav-db"] = "${{ vars.MLSEC_CLAMAV_DB }}"
        # The lock's bundle needs a verifier: the trust policy. `after` names its signer there only, so its verify
        # and publish trust the key through the policy too.
        one["with"]["trust-policy"] = TRUST_POLICY.as_posix()
        if call == "after":
            del one["with"]["publish-public-key"]
        jobs[call] = one
    # The tampered call: the same repository, policy, key and bucket, only the stages up to publish.
    short = yaml.safe_load(text.replace("vars.", "vars.TAMPERED_").replace("vars.TAMPERED_MLSEC_", "vars.MLSEC_"))
    keep = ("vuln-db", "policy", "sign-image-backend", "publish-s3", "s3-endpoint-url", "publish-public-key")
    short["with"] = {key: short["with"][key] for key in keep} | {"instance": TAMPERED}
    jobs[TAMPERED] = short
    doc["jobs"] = jobs
    # PyYAML reads the key `on` as True; written back it must be `on:` again.
    doc = {("on" if key is True else key): value for key, value in doc.items()}
    return yaml.safe_dump(doc, sort_keys=False, width=200)


def service_repo(work: Path, plain: Services, tls: Services, keys: tuple[Path, Path], http: HttpServer) -> Path:
    """The fixture, committed, with the policy's placeholder ports set to the listeners' (and an expiry date), the
    signing key's public half where the caller's MLSEC_PUBLIC_KEY and the trust policy name it, and the lock's
    artifact signed with that key (its bundle served beside it)."""
    from mlsec_actions import cli

    repo = work / "service"
    shutil.copytree(FIXTURE, repo)
    shutil.copyfile(keys[1], repo / PUBLIC_KEY)
    (repo / TRUST_POLICY).write_text(TRUST, encoding="utf-8")
    policy = (repo / POLICY).read_text(encoding="utf-8")
    policy = (policy.replace("@SERVICE_PORT@", str(plain.ports["allowed"]))
              .replace("@TLS_PORTS@", f"{tls.ports['modern']},{tls.ports['legacy']}")
              .replace("@EXPIRES@", day(30)))
    (repo / POLICY).write_text(policy, encoding="utf-8")
    (http.root / "service.json").write_bytes(FETCHED_BYTES)
    assert cli.main(["sign", "--backend", "key", "--key", str(keys[0]), str(http.root / "service.json"),
                     "--digest-cache", str(work / "digests.json")]) == 0
    lock = {"version": 1, "require_signatures": True,
            "artifacts": [{"name": FETCHED, "url": f"{http.base}/service.json",
                           "sha256": hashlib.sha256(FETCHED_BYTES).hexdigest(),
                           "bundle": f"{http.base}/service.json.sigstore.json"}]}
    (repo / LOCK).write_text(json.dumps(lock, indent=1), encoding="utf-8")
    (repo / CALLER).write_text(two_calls((FIXTURE / CALLER).read_text(encoding="utf-8")), encoding="utf-8")
    git_init(repo)
    return repo


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("e2e-devsecops-key")
    generate(folder / "signing.pem", folder / "signing.pub")
    return folder / "signing.pem", folder / "signing.pub"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, oci_registry: Registry, vulnerable: Running, fixed: Running,
             plain_listeners: Services, tls_services: Services, keys: tuple[Path, Path],
             s3_server: S3Server, clamav_db: Path, http_server: HttpServer) -> ActRun:
    work = tmp_path_factory.mktemp("e2e-devsecops")
    repo = service_repo(work, plain_listeners, tls_services, keys, http_server)
    s3_server.client().create_bucket(Bucket=BUCKET)
    plain, tls = plain_listeners, tls_services
    deployments = {
        "BEFORE": {"SERVICE_URL": vulnerable.url,
                   "SERVICE_HOST": f"{plain.host}:{plain.ports['allowed']},{plain.ports['extra']}",
                   "TLS_HOST": f"{tls.host}:{tls.ports['legacy']}"},
        "AFTER": {"SERVICE_URL": fixed.url, "SERVICE_HOST": f"{plain.host}:{plain.ports['allowed']}",
                  "TLS_HOST": f"{tls.host}:{tls.ports['modern']}"},
    }
    variables = {"MLSEC_VULN_DB": "skip", "MLSEC_SIGNING_BACKEND": "key", "MLSEC_S3_ENDPOINT": s3_server.endpoint,
                 "MLSEC_PUBLIC_KEY": PUBLIC_KEY.as_posix(), "MLSEC_CLAMAV_DB": str(clamav_db)}
    for call, values in deployments.items():
        values["IMAGE"] = f"http://{oci_registry.host}/service:{call.lower()}"
        values["PUBLISH_S3"] = f"s3://{BUCKET}/{call.lower()}"
        variables.update({f"{call}_{name}": value for name, value in values.items()})
    variables["TAMPERED_PUBLISH_S3"] = f"s3://{BUCKET}/{TAMPERED}"
    run = run_workflow(repo, repo / CALLER, work, variables=variables,
                       env={"E2E_TAMPER_ARTIFACTS": f"mlsec-release-devsecops-{TAMPERED} mlsec-results/sbom.cdx.json"},
                       secrets={"MLSEC_SIGNING_KEY": keys[0].read_text(encoding="utf-8"),
                                "MLSEC_AWS_ACCESS_KEY_ID": S3_KEY_ID, "MLSEC_AWS_SECRET_ACCESS_KEY": S3_SECRET},
                       timeout=1800)
    print(f"devsecops e2e: three pipeline calls in one act run, {run.seconds:.1f} s")
    return run


def _job(run: ActRun, call: str, name: str) -> str | None:
    """'succeeded' or 'failed' for the job of the `call` job's pipeline whose name starts with `name` (act names
    it `<call>/devsecops/<name>`); None when it never ran."""
    found = re.findall(rf"^\[{call}/devsecops/{re.escape(name)}[^\]]*\]\s+\S+\s+Job (succeeded|failed)", run.log, re.M)
    return found[-1] if found else None


def _gate(run: ActRun, call: str, checkpoint: int) -> dict[str, Any]:
    path = run.artifact(f"mlsec-gate-devsecops-{call}-{checkpoint}") / "gate-verdict.json"
    assert path.is_file(), run.log[-6000:]
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _rules(run: ActRun, call: str, stage: str) -> set[str]:
    upload = run.upload(f"mlsec/{stage}/{call}")
    assert upload["valid"] is True, upload
    return set(upload["rule_ids"])


def _image(run: ActRun, call: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run.artifact(f"mlsec-image-devsecops-{call}") / "image.json")
                                     .read_text(encoding="utf-8"))
    return doc


def test_every_stage_job_runs_in_both_calls(pipeline: ActRun) -> None:
    for call in CALLS:
        for job in STAGE_JOBS:
            assert _job(pipeline, call, job) == "succeeded", (call, job, pipeline.log[-6000:])
        assert _gate(pipeline, call, 4)["verdict"] == "pass"


def test_before_the_fixes_gates_7_and_11_are_red_and_nothing_is_signed(pipeline: ActRun) -> None:
    assert pipeline.returncode != 0
    assert _job(pipeline, "before", GATE_7) == "failed"
    assert _job(pipeline, "before", GATE_11) == "failed"
    assert _job(pipeline, "before", SIGN) is None
    assert _job(pipeline, "before", SIGN_RELEASE) is None and _job(pipeline, "before", PUBLISH) is None
    assert _job(pipeline, "before", SBOM) is None and _job(pipeline, "before", VERIFY) is None
    assert {"wapiti/sql-injection", "wapiti/reflected-cross-site-scripting",
            "dast/directory-listing"} <= _rules(pipeline, "before", "dast")
    assert {"nmap/port-not-allowed", "tls/old-protocol", "tls/cert-expired"} <= _rules(pipeline, "before",
                                                                                       "infra-scan")
    assert {"runtime-probe/sql-injection", "runtime-probe/path-traversal"} <= _rules(pipeline, "before",
                                                                                     "runtime-probe")
    late = _gate(pipeline, "before", 7)
    assert late["verdict"] == "fail" and late["policy"]["checkpoint"] == 7
    assert {v["kind"] for v in late["violations"]} == {"threshold"}
    deploy = _gate(pipeline, "before", 11)
    assert deploy["verdict"] == "fail" and sorted(deploy["expected_stages"]) == ["infra-scan", "runtime-probe"]


def test_after_the_fixes_and_waivers_every_gate_passes_and_the_image_is_signed(pipeline: ActRun) -> None:
    for job in (GATE_7, GATE_11, SIGN):
        assert _job(pipeline, "after", job) == "succeeded", (job, pipeline.log[-6000:])
    late = _gate(pipeline, "after", 7)
    assert late["verdict"] == "pass" and sorted(late["expected_stages"]) == ["build", "dast", "image-scan"]
    deploy = _gate(pipeline, "after", 11)
    assert deploy["verdict"] == "pass" and deploy["violations"] == []
    assert {w["id"]: w["matched"] for w in deploy["waivers"]["used"]} == {"tls-test-ca": 1}
    # The fixed deployment still shows what is below the bar (OpenSCAP's shadow permissions: medium).
    assert "openscap/file_permissions_etc_shadow" in _rules(pipeline, "after", "infra-scan")
    assert not {"wapiti/sql-injection", "dast/directory-listing"} & _rules(pipeline, "after", "dast")


def test_the_signed_image_verifies_from_the_registry(pipeline: ActRun, oci_registry: Registry,
                                                     keys: tuple[Path, Path]) -> None:
    image = _image(pipeline, "after")
    (pushed,) = image["pushed"]
    assert pushed["pinned"] == f"{oci_registry.host}/service@{image['digest']}"
    verify = [sys.executable, "-I", "-m", "mlsec_actions", "verify-image", pushed["pinned"], "--public-key",
              str(keys[1]), "--require-attestation", "gate", "--require-attestation", "sbom"]
    proc = subprocess.run(verify, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The SBOM attested (cosign's .att layout) is the build's own: the same JSON document.
    sbom = pipeline.artifact("mlsec-image-devsecops-after") / "image.cdx.json"
    built = json.loads(sbom.read_text(encoding="utf-8"))
    assert _attested_sbom(oci_registry, image["digest"]) == built
    # The image built before the fixes was pushed too, and never signed.
    before = _image(pipeline, "before")["pushed"][0]["pinned"]
    if before != pushed["pinned"]:  # buildah's timestamps usually make the two digests differ
        proc = subprocess.run([*verify[:5], before, *verify[6:]], capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode != 0, proc.stdout


def _attested_sbom(registry: Registry, digest: str) -> Any:
    """The predicate of the one CycloneDX layer of the image's `sha256-<hex>.att` manifest."""
    from mlsec_actions.oci import cosign
    from mlsec_actions.oci.client import Client

    client = Client(registry.host)
    (layer,) = [x for x in cosign.read_layers(client, "service", cosign.tag_for(digest, ".att"), cosign.DSSE_LAYER)
                if x.annotations.get("predicateType") == "https://cyclonedx.org/bom"]
    return json.loads(base64.b64decode(json.loads(layer.data)["payload"]))["predicate"]


def test_the_service_repository_section_of_the_docs_is_the_fixtures_caller() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")
    section = docs.split("\n## service-repository\n", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    fixture = yaml.safe_load((FIXTURE / CALLER).read_text(encoding="utf-8"))["jobs"]["devsecops"]
    documented = yaml.safe_load(snippet)["jobs"]["devsecops"]
    assert documented["with"] == fixture["with"] and documented["permissions"] == fixture["permissions"]
    assert documented["secrets"] == fixture["secrets"]


def _published(s3: S3Server, prefix: str) -> dict[str, tuple[bytes, str]]:
    """Every object under `prefix/`: key -> (bytes, its sha256 metadata)."""
    client = s3.client()
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            got = client.get_object(Bucket=BUCKET, Key=item["Key"])
            out[item["Key"]] = (got["Body"].read(), got["Metadata"].get("sha256", ""))
    return out


def test_before_the_fixes_nothing_is_published(pipeline: ActRun, s3_server: S3Server) -> None:
    assert _published(s3_server, "before") == {}
    assert _job(pipeline, "after", PUBLISH) is not None  # the same run did publish: the bucket was reachable


def test_after_the_fixes_the_signed_release_evidence_is_published_and_reads_back(
        pipeline: ActRun, s3_server: S3Server, keys: tuple[Path, Path], tmp_path: Path) -> None:
    for job in (SIGN_RELEASE, PUBLISH):
        assert _job(pipeline, "after", job) == "succeeded", (job, pipeline.log[-6000:])
    record = json.loads((pipeline.artifact("mlsec-publish-devsecops-after") / "publish.json").read_text("utf-8"))
    objects = _published(s3_server, "after")
    base = f"after/{record['digest']}"
    names = {key.removeprefix(f"{base}/") for key in objects}
    assert all(key.startswith(f"{base}/") for key in objects), sorted(objects)
    evidence = {"gate-verdict.json", "image-digest.json", "image.cdx.json", "sbom.cdx.json"}
    # What fetch placed (the artifact and its upstream bundle), signed as a folder.
    fetched = {f"mlsec-fetched/{FETCHED}", f"mlsec-fetched/{FETCHED}.sigstore.json", "mlsec-fetched.sigstore.json"}
    attestation = {"gate.intoto.sigstore.json"}  # beside the files; the SBOM is one of them (uploaded once)
    assert names == evidence | {f"{name}.sigstore.json" for name in evidence} | fetched | attestation, sorted(names)
    for key, (body, sha) in objects.items():
        assert hashlib.sha256(body).hexdigest() == sha, key
        local = tmp_path / key.removeprefix(f"{base}/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(body)
    assert {name: record["files"][name] for name in evidence} == {name: objects[f"{base}/{name}"][1]
                                                                  for name in evidence}
    # The fetched artifact is the lock's pinned bytes, as the HTTP server served them.
    assert (tmp_path / "mlsec-fetched" / FETCHED).read_bytes() == FETCHED_BYTES
    # The bytes are the run's own: gate-7's verdict, the build's SBOM, the digests build and sign-image reported.
    assert json.loads((tmp_path / "gate-verdict.json").read_text("utf-8")) == _gate(pipeline, "after", 7)
    sbom = pipeline.artifact("mlsec-image-devsecops-after") / "image.cdx.json"
    assert (tmp_path / "image.cdx.json").read_bytes() == sbom.read_bytes()
    bom = pipeline.artifact("mlsec-sbom-devsecops-after") / "sbom.cdx.json"
    assert (tmp_path / "sbom.cdx.json").read_bytes() == bom.read_bytes()
    image = _image(pipeline, "after")
    digests = json.loads((tmp_path / "image-digest.json").read_text("utf-8"))
    assert digests["built"]["digest"] == digests["signed"]["digest"] == image["digest"]
    assert digests["signed"]["image"] == image["pushed"][0]["pinned"]
    # Each bundle verifies with the public key against the bytes read back; a changed byte does not.
    verify = [sys.executable, "-I", "-m", "mlsec_actions", "verify",
              *(str(tmp_path / n) for n in (*sorted(evidence), "mlsec-fetched")),
              "--public-key", str(keys[1])]
    proc = subprocess.run(verify, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tmp_path / "image-digest.json").write_bytes(b" " + (tmp_path / "image-digest.json").read_bytes())
    proc = subprocess.run(verify, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0, proc.stdout


def _verify_report(run: ActRun, call: str) -> dict[str, Any]:
    path = run.artifact(f"mlsec-verify-devsecops-{call}") / "verify.json"
    assert path.is_file(), run.log[-6000:]
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def test_after_the_fixes_the_sbom_is_schema_valid_and_carries_the_guarding_gates_verdict(pipeline: ActRun) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert _job(pipeline, "after", SBOM) == "succeeded", pipeline.log[-6000:]
    text = (pipeline.artifact("mlsec-sbom-devsecops-after") / "sbom.cdx.json").read_text(encoding="utf-8")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    props = {p["name"]: p["value"] for p in bom["metadata"].get("properties", [])}
    verdict = _gate(pipeline, "after", 7)
    assert props["mlsec:gate:verdict"] == verdict["verdict"] == "pass", props
    assert props["mlsec:gate:violations"] == "0"
    assert props.get("mlsec:gate:policy:sha256") == verdict["policy"].get("sha256"), props


def test_after_the_fixes_verify_checks_every_signed_file_and_the_attestation(pipeline: ActRun) -> None:
    assert _job(pipeline, "after", VERIFY) == "succeeded", pipeline.log[-6000:]
    report = _verify_report(pipeline, "after")
    assert report["ok"] is True and all(c["ok"] for c in report["checks"]), report
    targets = {Path(c["target"]).as_posix() for c in report["checks"]}
    signed = {"mlsec-results/gate-verdict.json", "mlsec-release/image-digest.json", "mlsec-results/sbom.cdx.json",
              "mlsec-release/image.cdx.json", "mlsec-fetched"}
    assert signed <= targets, targets
    assert any("gate.intoto.sigstore.json" in t for t in targets), targets
    # No publish-public-key in this call: every check passed on the trust policy's entry, read from the checkout.
    trusted = {c["trusted"] for c in report["checks"]}
    assert trusted == {f"mlsec-caller/{TRUST_POLICY.as_posix()} signers[0] (release key)"}, report


def test_a_release_changed_after_sign_fails_verify_and_is_not_published(pipeline: ActRun, s3_server: S3Server) -> None:
    for job in ("code-scan", "gate before build", SBOM, SIGN_RELEASE):
        assert _job(pipeline, TAMPERED, job) == "succeeded", (job, pipeline.log[-6000:])
    assert _job(pipeline, TAMPERED, VERIFY) == "failed"
    assert _job(pipeline, TAMPERED, PUBLISH) is None
    report = _verify_report(pipeline, TAMPERED)
    failed = {Path(c["target"]).as_posix() for c in report["checks"] if not c["ok"]}
    assert report["ok"] is False and "mlsec-results/sbom.cdx.json" in failed, report
    assert all(c["ok"] for c in report["checks"] if "sbom.cdx.json" not in c["target"]
               and "intoto" not in c["target"]), report
    assert _published(s3_server, TAMPERED) == {}
