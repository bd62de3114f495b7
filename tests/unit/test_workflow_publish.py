"""The publish jobs of both workflows (ML 10, Dev 9): targets reach the action through its inputs, credentials
through the step's environment, and the job runs only when a target is set and the guarding gate passed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _doc(workflow: str) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / f"{workflow}.yml").read_text("utf-8"))
    return doc


def _publish_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if s.get("uses") == "$/actions/publish"]
    return step


def test_the_publish_action_passes_s3_through_env_only() -> None:
    action = yaml.safe_load((ROOT / "actions" / "publish" / "action.yml").read_text("utf-8"))
    (run,) = [s for s in action["runs"]["steps"] if s.get("id") == "publish"]
    assert run["env"]["MLSEC_S3"] == "${{ inputs.s3 }}"
    assert run["env"]["MLSEC_S3_ENDPOINT_URL"] == "${{ inputs.s3-endpoint-url }}"
    assert "${{" not in run["run"]  # no expression is expanded into the script
    assert "AWS_SECRET_ACCESS_KEY" in run["run"].split("add-mask")[0]  # masked before publish runs


def test_mlsecops_publishes_to_s3_with_its_own_credentials() -> None:
    doc = _doc("mlsecops")
    call = doc[True]["workflow_call"]
    assert "publish-s3" in call["inputs"]
    assert {"publish-aws-access-key-id", "publish-aws-secret-access-key"} <= set(call["secrets"])
    job = doc["jobs"]["publish"]
    assert "(inputs.publish-mlflow-uri != '' || inputs.publish-s3 != '' || inputs.publish-nexus != '')" in job["if"]
    assert "needs.gate-8.outputs.verdict == 'pass'" in job["if"] and "needs.sign.result == 'success'" in job["if"]
    step = _publish_step(job)
    assert step["with"]["s3"] == "${{ inputs.publish-s3 }}"
    assert step["with"]["s3-endpoint-url"] == "${{ inputs.s3-endpoint-url }}"
    # publish's own keys, never fetch's: reading a lock's bucket need not mean writing the release bucket.
    assert step["env"]["AWS_ACCESS_KEY_ID"] == "${{ secrets.publish-aws-access-key-id }}"
    assert step["env"]["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.publish-aws-secret-access-key }}"
    assert job["permissions"] == {"contents": "read"}


DEV_GUARD = ("needs.gate-4.outputs.verdict == 'pass'",
             "((inputs.build-context == '' && inputs.dast-targets == '') || needs.gate-7.outputs.verdict == 'pass')",
             "(inputs.sign-image == '' || needs.sign-image.result == 'success')", "inputs.publish-s3 != ''")


def test_devsecops_signs_then_publishes_after_the_gate_that_guards_them() -> None:
    doc = _doc("devsecops")
    jobs = doc["jobs"]
    names = list(jobs)
    # Dev 8 then 9, before the deployment's stages (10, 12) in the file's order too.
    assert names.index("sign-image") < names.index("sign") < names.index("publish") < names.index("infra-scan")
    sign, publish = jobs["sign"], jobs["publish"]
    assert sign["name"] == "sign (Dev stage 8)" and publish["name"] == "publish (Dev stage 9)"
    for job in (sign, publish):
        assert {"gate-4", "gate-7", "sign-image", "fetch"} <= set(job["needs"])
        assert job["if"].startswith("${{ !cancelled() && ")
        for part in DEV_GUARD:
            assert part in job["if"], part
    assert "sign" in publish["needs"] and "needs.sign.result == 'success'" in publish["if"]
    # Least privilege: only sign mints an OIDC token; publish only reads (its own credentials are secrets).
    assert sign["permissions"] == {"contents": "read", "id-token": "write"}
    assert publish["permissions"] == {"contents": "read"}
    call = doc[True]["workflow_call"]
    assert {"publish-s3", "publish-public-key"} <= set(call["inputs"])
    assert {"publish-aws-access-key-id", "publish-aws-secret-access-key"} <= set(call["secrets"])


def _with_lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_devsecops_publishes_exactly_what_sign_signed() -> None:
    jobs = _doc("devsecops")["jobs"]
    (signing,) = [s for s in jobs["sign"]["steps"] if s.get("uses") == "$/actions/sign"]
    step = _publish_step(jobs["publish"])
    assert _with_lines(signing["with"]["artifacts"]) == _with_lines(step["with"]["artifacts"])
    assert _with_lines(step["with"]["artifacts"])[:2] == ["mlsec-results/gate-verdict.json",
                                                           "mlsec-release/image-digest.json"]
    assert signing["with"]["attest"] == "true" and signing["with"]["signing-key"] == "${{ secrets.sign-image-key }}"
    assert step["with"]["attestation"] == "mlsec-results/gate.intoto.sigstore.json"
    assert step["with"]["s3"] == "${{ inputs.publish-s3 }}"
    assert step["env"] == {"AWS_ACCESS_KEY_ID": "${{ secrets.publish-aws-access-key-id }}",
                           "AWS_SECRET_ACCESS_KEY": "${{ secrets.publish-aws-secret-access-key }}",
                           "NEXUS_USERNAME": "${{ secrets.publish-nexus-username }}",
                           "NEXUS_PASSWORD": "${{ secrets.publish-nexus-password }}"}
    # The key is read from a checkout of its own, after a path and regular-file check; never the workspace root.
    steps = jobs["publish"]["steps"]
    checkout = next(s for s in steps if "actions/checkout@" in s.get("uses", ""))
    assert checkout["with"]["path"] == "mlsec-caller"
    key = next(s for s in steps if s.get("id") == "key")
    assert key["env"] == {"KEY": "${{ inputs.publish-public-key }}"} and "${{" not in key["run"]
    assert "exit 2" in key["run"] and "-L" in key["run"]
    assert step["with"]["public-key"] == "${{ steps.key.outputs.path }}"


def test_devsecops_sign_lays_out_the_sarif_the_gate_read() -> None:
    sign = _doc("devsecops")["jobs"]["sign"]
    paths = {s["with"]["path"] for s in sign["steps"] if str(s.get("with", {}).get("name", "")).startswith(
        "mlsec-sarif-")}
    assert paths == {f"mlsec-gate-input/{stage}" for stage in ("fetch", "code-scan", "build", "image-scan", "dast")}
    record = next(s for s in sign["steps"] if s.get("name") == "The image digest record")
    assert "if" not in record and "${{" not in record["run"]
    assert "exit 1" in record["run"] and "^sha256:[0-9a-f]{64}$" in record["run"]
    upload = next(s for s in sign["steps"] if s.get("name") == "Keep the release evidence")
    assert upload["with"]["name"] == "mlsec-release-${{ needs.run-id.outputs.ns }}"
    assert "checkout" not in " ".join(str(s.get("uses", "")) for s in sign["steps"])


def _record(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    sign = _doc("devsecops")["jobs"]["sign"]
    record = next(s for s in sign["steps"] if s.get("name") == "The image digest record")
    values = {"BUILT": "false", "SIGNED": "false", "BUILT_REFERENCE": "", "BUILT_DIGEST": "", "SIGNED_IMAGE": "",
              "SIGNED_DIGEST": "", "PATH": os.environ["PATH"], **env}
    assert set(values) - {"PATH"} == set(record["env"])
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", record["run"]], cwd=tmp_path, env=values,
                          capture_output=True, text=True, timeout=30, check=False)


DIGEST = "sha256:" + "ab" * 32


def test_the_image_digest_record_names_what_was_built_and_signed(tmp_path: Path) -> None:
    proc = _record(tmp_path, BUILT="true", SIGNED="true", BUILT_REFERENCE=f"127.0.0.1:5000/s@{DIGEST}",
                   BUILT_DIGEST=DIGEST, SIGNED_IMAGE=f"127.0.0.1:5000/s@{DIGEST}", SIGNED_DIGEST=DIGEST)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "mlsec-release" / "image-digest.json").read_text("utf-8"))
    assert doc == {"built": {"reference": f"127.0.0.1:5000/s@{DIGEST}", "digest": DIGEST},
                   "signed": {"image": f"127.0.0.1:5000/s@{DIGEST}", "digest": DIGEST}}
    # Without an image the record still exists (both null); a skipped job's leftover outputs are not recorded.
    proc = _record(tmp_path, BUILT_DIGEST=DIGEST, SIGNED_DIGEST=DIGEST)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "mlsec-release" / "image-digest.json").read_text("utf-8")) == {
        "built": None, "signed": None}


@pytest.mark.parametrize("env", [
    {"BUILT": "true", "BUILT_DIGEST": ""},
    {"BUILT": "true", "BUILT_DIGEST": "sha256:" + "AB" * 32},
    {"BUILT": "true", "BUILT_DIGEST": DIGEST + "\n"},
    {"SIGNED": "true", "SIGNED_DIGEST": "sha256:$(id)"},
], ids=["no-build-digest", "upper-case", "trailing-newline", "injection"])
def test_the_image_digest_record_fails_closed_on_a_missing_or_odd_digest(tmp_path: Path, env: dict[str, str]) -> None:
    proc = _record(tmp_path, **env)
    assert proc.returncode == 1 and "::error title=mlsec sign::" in proc.stdout
    assert not (tmp_path / "mlsec-release").exists()


def _step(job: dict[str, Any], name: str) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if s.get("name") == name]
    return step


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it without a `shell:` key: `bash -e`, no pipefail."""
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd,
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=30,
                          check=False)


GUARD_7 = "((inputs.build-context == '' && inputs.dast-targets == '') || needs.gate-7.outputs.verdict == 'pass')"


def test_devsecops_sbom_follows_the_guarding_gate_without_a_token() -> None:
    jobs = _doc("devsecops")["jobs"]
    names = list(jobs)
    assert names.index("sign-image") < names.index("sbom") < names.index("sign") < names.index("verify") \
        < names.index("publish")
    sbom = jobs["sbom"]
    assert sbom["name"] == "sbom (Dev stage 8)"
    assert {"gate-4", "gate-7", "code-scan", "fetch"} <= set(sbom["needs"])
    assert "needs.gate-4.outputs.verdict == 'pass'" in sbom["if"] and GUARD_7 in sbom["if"]
    assert sbom["permissions"] == {"contents": "read"}  # it parses repository files: no id-token
    (step,) = [s for s in sbom["steps"] if s.get("uses") == "$/actions/sbom"]
    assert step["with"]["verdict"] == "mlsec-results/gate-verdict.json"
    assert step["with"]["licenses-from"].endswith("&& 'mlsec-code-scan/code-scan.sarif' || '' }}")
    check = _step(sbom, "Check code-scan's SARIF is the one its job recorded")
    assert check["env"] == {"WANT": "${{ needs.code-scan.outputs.sarif-sha256 }}"} and "exit 1" in check["run"]
    verdicts = {s["with"]["name"] for s in sbom["steps"] if s.get("name", "").startswith("Collect the gate verdict")}
    assert verdicts == {f"mlsec-gate-${{{{ needs.run-id.outputs.ns }}}}-{n}" for n in (4, 7)}
    assert sbom["outputs"]["sbom-sha256"] == "${{ steps.digest.outputs.sha256 }}"


def test_devsecops_sign_signs_the_sbom_only_when_it_is_the_sbom_jobs(tmp_path: Path) -> None:
    sign = _doc("devsecops")["jobs"]["sign"]
    assert "sbom" in sign["needs"] and "needs.sbom.result == 'success'" in sign["if"]
    (signing,) = [s for s in sign["steps"] if s.get("uses") == "$/actions/sign"]
    assert "mlsec-results/sbom.cdx.json" in _with_lines(signing["with"]["artifacts"])
    check = _step(sign, "Check the SBOM is the one the sbom job wrote")
    assert check["env"] == {"WANT": "${{ needs.sbom.outputs.sbom-sha256 }}"} and "${{" not in check["run"]
    (tmp_path / "mlsec-results").mkdir()
    (tmp_path / "mlsec-results" / "sbom.cdx.json").write_bytes(b'{"bomFormat": "CycloneDX"}\n')
    good = hashlib.sha256(b'{"bomFormat": "CycloneDX"}\n').hexdigest()
    assert _bash(check["run"], tmp_path, {"WANT": good}).returncode == 0
    for want in (hashlib.sha256(b"other").hexdigest(), "", good.upper(), f"{good}\n", "$(id)"):
        proc = _bash(check["run"], tmp_path, {"WANT": want})
        assert proc.returncode == 1 and "::error title=mlsec sign::" in proc.stdout, want
    # No SBOM downloaded and no digest exported (a failed sbom job's empty output): sha256sum fails, `got` is empty
    # too, and the two must not compare equal.
    (tmp_path / "mlsec-results" / "sbom.cdx.json").unlink()
    proc = _bash(check["run"], tmp_path, {"WANT": ""})
    assert proc.returncode == 1 and "::error title=mlsec sign::" in proc.stdout


def test_devsecops_verify_checks_what_sign_signed_before_publish_may_run() -> None:
    doc = _doc("devsecops")
    jobs = doc["jobs"]
    verify, publish = jobs["verify"], jobs["publish"]
    assert verify["name"] == "verify (Dev stage 8)" and "sign" in verify["needs"]
    assert "needs.sign.result == 'success'" in verify["if"] and "inputs.publish-s3 != ''" in verify["if"]
    # Read-only: no OIDC token, no secret reaches it.
    assert verify["permissions"] == {"contents": "read"}
    assert "secrets." not in yaml.safe_dump(verify)
    # publish waits for it and refuses to run after a failed (or skipped) verify.
    assert "verify" in publish["needs"] and "needs.verify.result == 'success'" in publish["if"]
    (signing,) = [s for s in jobs["sign"]["steps"] if s.get("uses") == "$/actions/sign"]
    (step,) = [s for s in verify["steps"] if s.get("uses") == "$/actions/verify"]
    assert _with_lines(step["with"]["artifacts"]) == _with_lines(signing["with"]["artifacts"]) \
        == _with_lines(_publish_step(publish)["with"]["artifacts"])
    assert step["with"]["attestation"] == _publish_step(publish)["with"]["attestation"]
    assert step["with"]["public-key"] == "${{ steps.key.outputs.path }}"
    assert step["with"]["identity"] == "${{ inputs.publish-identity }}"
    assert step["with"]["issuer"] == "${{ inputs.publish-issuer }}"  # the action reads it only with an identity
    # The trust policy only as _trusted hands it over (the base commit's on a pull request), to both checks.
    assert step["with"]["trust-policy"] == _publish_step(publish)["with"]["trust-policy"] \
        == "${{ steps.trusted.outputs.trust-policy }}"
    # The keyless identity is this reusable workflow's for every caller: the caller's repository is required too.
    assert step["with"]["repository"] == "${{ inputs.publish-identity != '' && github.repository || '' }}"
    assert step["env"] == {"MLSEC_JSON": "mlsec-results/verify.json"}
    keep = _step(verify, "Keep the verify report")
    assert keep["with"]["name"] == "mlsec-verify-${{ needs.run-id.outputs.ns }}" and "!cancelled()" in keep["if"]
    # The same identity reaches publish's own verification; the issuer only with it (publish takes them together).
    with_ = _publish_step(publish)["with"]
    assert with_["identity"] == "${{ inputs.publish-identity }}"
    assert with_["issuer"] == "${{ inputs.publish-identity != '' && inputs.publish-issuer || '' }}"
    call = doc[True]["workflow_call"]["inputs"]
    assert call["publish-identity"]["default"] == ""
    assert call["publish-issuer"]["default"] == "https://token.actions.githubusercontent.com"


@pytest.mark.parametrize("job", ["verify", "publish"])
def test_the_public_key_is_read_only_as_a_regular_file_of_the_checkout(job: str, tmp_path: Path) -> None:
    key = next(s for s in _doc("devsecops")["jobs"][job]["steps"] if s.get("id") == "key")
    caller = tmp_path / "mlsec-caller"
    (caller / ".mlsec").mkdir(parents=True)
    (caller / ".mlsec" / "signing.pub").write_text("PEM\n")
    (caller / "link.pub").symlink_to(caller / ".mlsec" / "signing.pub")
    (tmp_path / "outside.pub").write_text("PEM\n")
    (caller / "out").symlink_to(tmp_path)
    out = tmp_path / "github-output"
    proc = _bash(key["run"], tmp_path, {"KEY": ".mlsec/signing.pub", "GITHUB_OUTPUT": str(out)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.read_text() == "path=mlsec-caller/.mlsec/signing.pub\n"
    for bad in ("../outside.pub", "/etc/hostname", "link.pub", "out/outside.pub", "missing.pub", ".mlsec",
                "a\nb", "$(id)", ".mlsec//signing.pub"):
        out.write_text("")
        proc = _bash(key["run"], tmp_path, {"KEY": bad, "GITHUB_OUTPUT": str(out)})
        assert proc.returncode == 2 and f"::error title=mlsec {job}::" in proc.stdout, bad
        assert out.read_text() == "", bad


@pytest.mark.parametrize("name", ["mlsecops", "devsecops"])
def test_nexus_is_a_publish_target_with_its_own_credentials(name: str) -> None:
    """publish-nexus alone starts verify and publish (and, in devsecops, sign); its credentials reach publish only."""
    doc = _doc(name)
    call = doc[True]["workflow_call"]
    assert "publish-nexus" in call["inputs"]
    assert {"publish-nexus-username", "publish-nexus-password"} <= set(call["secrets"])
    jobs = doc["jobs"]
    starts = ("publish", "verify", "sign") if name == "devsecops" else ("publish", "verify")
    for job_id in starts:
        assert "inputs.publish-nexus != ''" in jobs[job_id]["if"], job_id
    step = _publish_step(jobs["publish"])
    assert step["with"]["nexus"] == "${{ inputs.publish-nexus }}"
    assert step["env"]["NEXUS_USERNAME"] == "${{ secrets.publish-nexus-username }}"
    assert step["env"]["NEXUS_PASSWORD"] == "${{ secrets.publish-nexus-password }}"
    text = (ROOT / ".github" / "workflows" / f"{name}.yml").read_text(encoding="utf-8")
    assert text.count("secrets.publish-nexus-password") == 1


@pytest.mark.parametrize("name", ["mlsecops", "devsecops"])
def test_a_trust_policy_starts_a_job_wherever_a_public_key_does(name: str) -> None:
    """trust-policy is a signer like publish-public-key: every job and step the key alone starts (or checks the
    repository out for), the trust policy alone starts too, and no other."""
    key, trust = "inputs.publish-public-key != ''", "inputs.trust-policy != ''"
    doc = _doc(name)
    assert "trust-policy" in doc[True]["workflow_call"]["inputs"]
    for job_id, job in doc["jobs"].items():
        assert (key in str(job.get("if", ""))) == (trust in str(job.get("if", ""))), job_id
        for step in job.get("steps", []):
            if "actions/checkout@" in str(step.get("uses", "")) and key in str(step.get("if", "")):
                assert trust in step["if"], (job_id, step["name"])
