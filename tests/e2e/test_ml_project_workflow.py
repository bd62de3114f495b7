"""examples/ml-project's workflow under act: consumer -> mlsecops.yml -> stage actions -> trivy, model-scan.

Offline: GitHub's actions are stand-ins (tests/e2e/standins), the vulnerability DB is switched off
through the `MLSEC_VULN_DB` repository variable the example reads, and only PyPI is reached (the
composite actions install this package from the staged tree with uv). What the gate and the final
sign job do with these stages is in test_gate_workflow.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlsec_actions import catalog
from tests.e2e.act_harness import ROOT, ActRun, git_init, run_workflow, stage_self
from tests.e2e.act_rewrite import self_refs
from tests.e2e.conftest import EXAMPLE, WORKFLOW

# One xdist worker runs every act test in order (scripts/test uses --dist loadgroup): one shared
# example run, and act runs do not compete for the two cores.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]


def test_scan_stage_jobs_succeed(example_run: ActRun) -> None:
    # Findings never fail a scan stage; only the gate turns them red.
    assert example_run.job_result("code-scan") == "succeeded", example_run.log[-4000:]
    assert example_run.job_result("model-scan") == "succeeded", example_run.log[-4000:]


def test_each_stage_uploads_under_its_own_category(example_run: ActRun) -> None:
    uploads = example_run.uploads()
    assert sorted(u["category"] for u in uploads) == ["mlsec/code-scan", "mlsec/data-scan", "mlsec/gate/mlsecops-4",
                                                          "mlsec/model-scan", "mlsec/notebook-scan"]
    assert all(u["valid"] is True for u in uploads), uploads
    rules = [str(r) for r in example_run.upload("mlsec/code-scan")["rule_ids"]]
    assert any(r.startswith("trivy/secret/") for r in rules), rules
    assert any(r.startswith("trivy/misconfig/") for r in rules), rules


def test_received_sarif_has_repository_relative_paths(example_run: ActRun) -> None:
    doc = json.loads(Path(str(example_run.upload("mlsec/code-scan")["copy"])).read_text(encoding="utf-8"))
    run = doc["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert {"train.py", "Dockerfile", "infra/main.tf"} <= uris
    assert run["automationDetails"]["id"].startswith("mlsec/code-scan/")
    assert all(inv["executionSuccessful"] for inv in run["invocations"])


def test_benign_model_is_scanned_clean(example_run: ActRun) -> None:
    # models/linear.safetensors is a plain two-tensor file: every analyzer and modelscan ran, nothing found.
    doc = json.loads(Path(str(example_run.upload("mlsec/model-scan")["copy"])).read_text(encoding="utf-8"))
    run = doc["runs"][0]
    assert run["automationDetails"]["id"].startswith("mlsec/model-scan/")
    assert run["results"] == []
    assert run["invocations"] and all(inv["executionSuccessful"] for inv in run["invocations"])


def test_sarif_is_kept_as_an_artifact_for_the_gate(example_run: ActRun) -> None:
    verdict = json.loads((example_run.artifact("mlsec-gate-mlsecops-4") / "gate-verdict.json").read_text("utf-8"))
    # The gate's report.html is kept beside the verdict, with the findings of the SARIF it judged.
    report = (example_run.artifact("mlsec-gate-mlsecops-4") / "gate-report.html").read_text("utf-8")
    assert "Content-Security-Policy" in report and "trivy/secret/" in report
    assert re.fullmatch(r"[0-9]+-[0-9]+-[0-9a-f]{24}", verdict["run_id"]), verdict["run_id"]
    for stage in ("code-scan", "model-scan"):
        kept = json.loads((example_run.artifact(f"mlsec-sarif-mlsecops-{stage}") / f"{stage}.sarif").read_text("utf-8"))
        uploaded = json.loads(Path(str(example_run.upload(f"mlsec/{stage}")["copy"])).read_text(encoding="utf-8"))
        assert kept == uploaded
        # Stamped with this pipeline call's run id (the gate refuses any other).
        assert kept["runs"][0]["properties"]["mlsec-run-id"] == verdict["run_id"]


def test_checkouts_do_not_persist_credentials(example_run: ActRun) -> None:
    lines = (example_run.record_dir / "checkout.jsonl").read_text(encoding="utf-8").splitlines()
    checkouts = [json.loads(line) for line in lines]
    jobs = sorted(c["job"] for c in checkouts)
    # Past a green gate-4 the later jobs check out too (evaluate, gate-8, sbom, sign); train only with a command.
    scans = {"code-scan", "data-scan", "gate-4", "model-scan", "notebook-scan"}
    assert scans <= set(jobs) <= scans | {"train", "evaluate", "gate-8", "sbom", "sign"}, jobs
    assert [c["persist_credentials"] for c in checkouts] == ["false"] * len(checkouts)


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
          extras: trivy,secrets,sast,iac
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
  whole-pipeline:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      security-events: write
    steps:
      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1
        with:
          persist-credentials: false
      - id: run
        continue-on-error: true
        uses: mlsec-actions/mlsec-actions@v1
        with:
          stage: run
      - name: outputs reach the caller
        env:
          VERDICT: ${{ steps.run.outputs.verdict }}
          EXIT_CODE: ${{ steps.run.outputs.exit-code }}
          FINDINGS: ${{ steps.run.outputs.findings }}
          HIGH: ${{ steps.run.outputs.high }}
          SARIF: ${{ steps.run.outputs.sarif-file }}
          REPORT: ${{ steps.run.outputs.report-file }}
        run: |
          echo "verdict=$VERDICT exit-code=$EXIT_CODE findings=$FINDINGS high=$HIGH sarif=$SARIF" \
            | tee "$E2E_RECORD_DIR/run-outputs.txt"
          cp "$REPORT" "$E2E_RECORD_DIR/report.html"
"""


def test_root_action_runs_a_stage_by_id(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer"
    shutil.copytree(EXAMPLE, consumer)
    (consumer / WORKFLOW).write_text(ROOT_ACTION_WORKFLOW, encoding="utf-8")
    git_init(consumer)
    got = run_workflow(consumer, consumer / WORKFLOW, tmp_path)
    assert got.returncode == 0, got.log[-4000:]
    uploads = got.uploads()
    (upload,) = [u for u in uploads if u["category"] == "mlsec/code-scan"]
    assert upload["valid"] is True
    doc = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]}
    assert uris == {"train.py", "infra/main.tf"}  # the Dockerfile was not among the paths
    outputs = (got.record_dir / "outputs.txt").read_text(encoding="utf-8")
    assert f"findings={len(doc['runs'][0]['results'])} category=mlsec/code-scan" in outputs
    # `stage: run`: the whole pipeline in one job, every stage's SARIF in one upload (each file names its own
    # category), the example's expected red verdict and exit 3 as outputs, and the report.
    whole = [u for u in uploads if u["category"] == ""]
    names = sorted(Path(str(u["sarif_file"])).name for u in whole)
    scans = [s.id for s in catalog.pipeline("mlsecops") if s.implemented and s.kind is catalog.Kind.SCAN]
    assert names == sorted(f"{stage}.sarif" for stage in scans), names
    assert all(u["valid"] is True for u in whole), whole
    ran = (got.record_dir / "run-outputs.txt").read_text(encoding="utf-8")
    counted = 0
    for u in whole:
        run = json.loads(Path(str(u["copy"])).read_text(encoding="utf-8"))["runs"][0]
        counted += run["properties"]["mlsec-result-counts"]["total"]
    assert f"verdict=fail exit-code=3 findings={counted} " in ran, ran
    assert "<html" in (got.record_dir / "report.html").read_text(encoding="utf-8")


def _alerts(doc: dict[str, object]) -> set[tuple[str, str, int, str]]:
    """What code scanning keys an alert on: rule, location and the partial fingerprints."""
    runs = doc["runs"]
    assert isinstance(runs, list)
    return {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"].get("region", {}).get("startLine", 0),
             json.dumps(r.get("partialFingerprints", {}), sort_keys=True))
            for run in runs for r in run["results"]}


def test_mlsec_run_finds_what_the_workflow_finds(example_run: ActRun, tmp_path: Path) -> None:
    # A laptop and CI agree (issue 15): the example under `mlsec run`, with the settings the act run's workflow
    # gets, gives every scan stage the same alerts with the same fingerprints as the reusable workflow's jobs.
    project = tmp_path / "ml-project"
    shutil.copytree(EXAMPLE, project)
    (project / ".mlsec.yml").write_text("vuln-db: skip\nmodels: [models/linear.safetensors]\n"
                                        "model-card: model-card.yml\n", encoding="utf-8")
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLSEC_"))}
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "mlsec"), "run", str(project), "--out", str(out),
                           "--no-report", "--log-format", "plain"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 3, proc.stderr[-4000:]  # the example's deliberate findings: red, as in CI
    compared = 0
    for upload in example_run.uploads():
        stage = str(upload["category"]).removeprefix("mlsec/")
        local = out / "sarif" / f"{stage}.sarif"
        if "/" in stage or not local.is_file():
            continue  # the gate's own SARIF: its violations are per pipeline call
        ci = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
        assert _alerts(json.loads(local.read_text(encoding="utf-8"))) == _alerts(ci), stage
        compared += 1
    assert compared >= 4, [u["category"] for u in example_run.uploads()]
