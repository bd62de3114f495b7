"""The publish jobs of both workflows (ML 10, Dev 9): targets reach the action through its inputs, credentials
through the step's environment, and the job runs only when a target is set and the guarding gate passed."""

from __future__ import annotations

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
    assert "(inputs.publish-mlflow-uri != '' || inputs.publish-s3 != '')" in job["if"]
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
                           "AWS_SECRET_ACCESS_KEY": "${{ secrets.publish-aws-secret-access-key }}"}
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
