"""The publish jobs of both workflows (ML 10, Dev 9): targets reach the action through its inputs, credentials
through the step's environment, and the job runs only when a target is set and the guarding gate passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
