"""The fetched artifacts' path through both workflows: only what fetch placed, checked by digest before use.

The `mlsec-fetched-<ns>` artifact is uploaded by the fetch job; any later job of the run could upload under the
same name (a train step runs repository code), so every job that downloads it compares it with the digest the
fetch job exported before a step of its own reads it. publish follows gate-8, whose verdict sign attests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "mlsecops.yml"


def _jobs(workflow: Path = WORKFLOW) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    return doc["jobs"]  # type: ignore[no-any-return]


DEVSECOPS = ROOT / ".github" / "workflows" / "devsecops.yml"
USERS = {WORKFLOW: ["publish", "sbom", "sign", "verify"], DEVSECOPS: ["publish", "sbom", "sign", "verify"]}


@pytest.mark.parametrize("workflow", [WORKFLOW, DEVSECOPS], ids=["mlsecops", "devsecops"])
def test_fetch_exports_a_digest_of_what_it_placed(workflow: Path) -> None:
    fetch = _jobs(workflow)["fetch"]
    assert fetch["outputs"]["fetched-sha256"] == "${{ steps.fetched.outputs.sha256 }}"
    steps = fetch["steps"]
    digest = next(i for i, s in enumerate(steps) if s.get("id") == "fetched")
    upload = next(i for i, s in enumerate(steps) if s.get("with", {}).get("path") == "mlsec-fetched")
    assert digest < upload and "sha256sum" in steps[digest]["run"]


@pytest.mark.parametrize("workflow", [WORKFLOW, DEVSECOPS], ids=["mlsecops", "devsecops"])
def test_every_job_that_downloads_the_fetched_artifacts_checks_them_first(workflow: Path) -> None:
    users = []
    for name, job in _jobs(workflow).items():
        steps = job.get("steps", [])
        for i, step in enumerate(steps):
            if "download-artifact" in step.get("uses", "") and str(step["with"].get("name", "")).startswith(
                    "mlsec-fetched-"):
                users.append(name)
                assert "fetch" in job["needs"], name
                check = steps[i + 1]
                assert check["env"]["WANT"] == "${{ needs.fetch.outputs.fetched-sha256 }}", name
                assert 'if [[ "$got" != "$WANT" ]]' in check["run"] and "exit 1" in check["run"], name
                # Under act the step ran with fetch skipped (no lock): the condition names the lock too.
                wanted = "inputs.lock != '' && needs.fetch.outputs.fetched-sha256 != ''"
                assert check["if"] == step["if"] == wanted, name
    assert sorted(users) == USERS[workflow]


def test_publish_follows_the_gate_whose_verdict_sign_attests() -> None:
    jobs = _jobs()
    publish = jobs["publish"]
    assert "gate-8" in publish["needs"] and "gate-4" not in publish["needs"]
    assert "needs.gate-8.outputs.verdict == 'pass'" in publish["if"]
    names = [s.get("with", {}).get("name", "") for s in publish["steps"]]
    assert "mlsec-gate-${{ needs.run-id.outputs.ns }}-8" in names
    assert "mlsec-sbom-${{ needs.run-id.outputs.ns }}" in names
    sign_verdict = [s for s in jobs["sign"]["steps"] if s.get("name") == "Collect the gate verdict"]
    assert sign_verdict[0]["with"]["name"] == "mlsec-gate-${{ needs.run-id.outputs.ns }}-8"


def test_the_runner_side_clamav_database_reaches_the_fetch_action() -> None:
    for workflow in ("mlsecops", "devsecops"):
        doc = yaml.safe_load((ROOT / ".github" / "workflows" / f"{workflow}.yml").read_text(encoding="utf-8"))
        assert "fetch-clamav-db" in doc[True]["workflow_call"]["inputs"], workflow
        step = next(s for s in doc["jobs"]["fetch"]["steps"] if s.get("id") == "fetch")
        assert step["with"]["clamav-db"] == "${{ inputs.fetch-clamav-db }}", workflow


SOURCE_ENV = {"HF_ENDPOINT": "${{ inputs.fetch-hf-endpoint }}", "HF_TOKEN": "${{ secrets.fetch-hf-token }}",
              "MLFLOW_TRACKING_URI": "${{ inputs.fetch-mlflow-uri }}",
              "MLFLOW_TRACKING_TOKEN": "${{ secrets.fetch-mlflow-tracking-token }}"}


@pytest.mark.parametrize("workflow", [WORKFLOW, DEVSECOPS], ids=["mlsecops", "devsecops"])
def test_only_the_fetch_step_gets_the_hub_and_mlflow_servers_and_tokens(workflow: Path) -> None:
    """hf:// and models:/ entries need their server and token in fetch's environment, and nowhere else."""
    jobs = _jobs(workflow)
    fetch = next(s for s in jobs["fetch"]["steps"] if s.get("id") == "fetch")
    assert {k: fetch["env"][k] for k in SOURCE_ENV} == SOURCE_ENV
    text = workflow.read_text(encoding="utf-8")
    for secret in ("secrets.fetch-hf-token", "secrets.fetch-mlflow-tracking-token"):
        assert text.count(secret) == 1, secret
