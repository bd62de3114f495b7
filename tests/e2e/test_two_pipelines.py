"""One consumer workflow calls both pipelines (examples/two-pipelines) under act: issue 8 (seen 6) and issue 9 (seen 5).

Two act runs, each shared by several assertions:
- green: reviewed waivers -> both gates pass, each reads only its own pipeline's SARIF, nothing is
  uploaded twice under one artifact name, the model is signed;
- pull request: the head commit adds those waivers, the base commit's policy has none -> both gates are red,
  because on pull_request the policy comes from the base commit; the head's config (a 1 ms scanner
  timeout) is not used either, the base's is.
Faults (a crashed, stale, swapped or failing stage in either pipeline) are the generated matrix's:
tests/faults/test_act_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.signing.key import generate
from tests.e2e.act_harness import ROOT, ActRun, git_commit, head_sha, run_workflow
from tests.e2e.conftest import OFFLINE, POLICY_PATH, WORKFLOW, day, prepare_consumer, waiver_policy

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act")]

TWO = ROOT / "examples" / "two-pipelines" / ".github" / "workflows" / "mlsec.yml"
GATES = {"mlsecops": "gate before training", "devsecops": "gate before build"}
STAGES = {"mlsecops": ["code-scan", "data-scan", "model-scan", "notebook-scan"], "devsecops": ["code-scan"]}
# The policy both calls read: code-scan is required by both, model-scan exists only in mlsecops, whose gate
# expects it anyway (expect-stages).
WAIVED = waiver_policy(day(30), required="[code-scan]")
CONFIG_PATH = ".github/mlsec.yml"
UNWAIVED = ("version: 1\nrequired-stages: [code-scan]\ntool-errors: fail\n"
            "thresholds:\n  - id: no-high\n    severity: high\n")


def run_two(work: Path, *, files: dict[str, str] | None = None, head_files: dict[str, str] | None = None,
            pull_request: bool = False, env: dict[str, str] | None = None,
            secrets: dict[str, str] | None = None, variables: dict[str, str] | None = None) -> ActRun:
    """The example project with the two-pipelines workflow; `head_files` become a second commit (the PR head)."""
    consumer = prepare_consumer(work, {str(WORKFLOW): TWO.read_text(encoding="utf-8"), **(files or {})})
    base = head_sha(consumer)
    head = git_commit(consumer, head_files, "pull request") if head_files else base
    payload = None
    if pull_request:
        payload = {"number": 7, "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"},
                                                 "head": {"sha": head, "ref": "feature"}}}
    return run_workflow(consumer, consumer / WORKFLOW, work, event="pull_request" if pull_request else "push",
                        variables={**OFFLINE, "MLSEC_POLICY": POLICY_PATH, "MLSEC_SIGNING_BACKEND": "key",
                                   **(variables or {})},
                        env=env, secrets=secrets, event_payload=payload)


def verdict(run: ActRun, pipeline: str) -> dict[str, Any]:
    path = run.artifact(f"mlsec-gate-{pipeline}-4") / "gate-verdict.json"
    assert path.is_file(), run.log[-4000:]
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def gate_result(run: ActRun, pipeline: str) -> str | None:
    return run.job_result(f"{pipeline}/{GATES[pipeline]}")


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("e2e-two-key")
    generate(folder / "signing.pem", folder / "signing.pub")
    return (folder / "signing.pem").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def green(tmp_path_factory: pytest.TempPathFactory, key: str) -> ActRun:
    return run_two(tmp_path_factory.mktemp("e2e-two-green"), files={POLICY_PATH: WAIVED},
                   secrets={"MLSEC_SIGNING_KEY": key})


def test_both_pipelines_go_green_with_waivers(green: ActRun) -> None:
    assert green.returncode == 0, green.log[-4000:]
    for pipeline in GATES:
        assert gate_result(green, pipeline) == "succeeded", pipeline
        got = verdict(green, pipeline)
        assert got["verdict"] == "pass" and got["violations"] == [], got["violations"]
    assert (green.artifact("mlsec-signatures-mlsecops") / "models" / "linear.safetensors.sigstore.json").is_file()


def test_each_call_keeps_its_own_artifacts_once(green: ActRun) -> None:
    # The upload-artifact stand-in fails on a name uploaded twice in one run, as GitHub does.
    names = sorted(p.name for p in (green.record_dir / "artifacts").iterdir())
    assert names == ["mlsec-gate-devsecops-4", "mlsec-gate-mlsecops-4", "mlsec-gate-mlsecops-8",
                     "mlsec-sarif-devsecops-code-scan",
                     "mlsec-sarif-mlsecops-code-scan", "mlsec-sarif-mlsecops-data-scan",
                     "mlsec-sarif-mlsecops-evaluate", "mlsec-sarif-mlsecops-model-scan",
                     "mlsec-sarif-mlsecops-notebook-scan", "mlsec-sbom-devsecops", "mlsec-sbom-mlsecops",
                     "mlsec-signatures-mlsecops"]


def test_each_gate_reads_only_its_own_pipeline(green: ActRun) -> None:
    ml, dev = verdict(green, "mlsecops"), verdict(green, "devsecops")
    assert ml["run_id"] != dev["run_id"]
    for pipeline, got in (("mlsecops", ml), ("devsecops", dev)):
        assert sorted(got["expected_stages"]) == STAGES[pipeline]
        assert [i["path"] for i in got["inputs"]] == [f"mlsec-gate-input/{s}/{s}.sarif" for s in STAGES[pipeline]]
        # Every digest the stage jobs exported was checked and matched.
        assert sorted((d["name"], d["status"]) for d in got["sarif_digests"]) == [
            (f"{s}/{s}.sarif", "ok") for s in STAGES[pipeline]]
        for stage in STAGES[pipeline]:
            kept = green.artifact(f"mlsec-sarif-{pipeline}-{stage}") / f"{stage}.sarif"
            sarif = json.loads(kept.read_text(encoding="utf-8"))
            assert sarif["runs"][0]["properties"]["mlsec-run-id"] == got["run_id"]
    # The devsecops gate saw no model-scan finding or tool, though mlsecops ran one in the same workflow run.
    assert {t["stage"] for t in dev["tools"]} == {"code-scan"}


def test_categories_do_not_duplicate_alerts(green: ActRun) -> None:
    uploads = green.uploads()
    assert sorted(u["category"] for u in uploads) == [
        "mlsec/code-scan", "mlsec/code-scan", "mlsec/data-scan", "mlsec/evaluate", "mlsec/gate/devsecops-4",
        "mlsec/gate/mlsecops-4", "mlsec/gate/mlsecops-8", "mlsec/model-scan", "mlsec/notebook-scan"]
    # The two code-scan uploads are the same analysis (same commit, same inputs): the second replaces the first
    # under one category, so each finding is one alert.
    scans = [json.loads(Path(u["copy"]).read_text(encoding="utf-8"))
             for u in uploads if u["category"] == "mlsec/code-scan"]
    prints = [sorted(r["partialFingerprints"]["primaryLocationLineHash"] for r in s["runs"][0]["results"])
              for s in scans]
    assert prints[0] == prints[1] and prints[0]


@pytest.fixture(scope="module")
def pull_request(tmp_path_factory: pytest.TempPathFactory, key: str) -> ActRun:
    return run_two(tmp_path_factory.mktemp("e2e-two-pr"),
                   files={POLICY_PATH: UNWAIVED, CONFIG_PATH: "code-scan:\n  timeout: 600\n"},
                   head_files={POLICY_PATH: WAIVED, CONFIG_PATH: "code-scan:\n  timeout: 0.001\n"},
                   pull_request=True, variables={"MLSEC_CONFIG": CONFIG_PATH}, secrets={"MLSEC_SIGNING_KEY": key})


def test_a_pull_request_cannot_waive_its_own_findings(pull_request: ActRun) -> None:
    assert pull_request.returncode != 0, pull_request.log[-4000:]
    for pipeline in GATES:
        assert gate_result(pull_request, pipeline) == "failed", pipeline
        got = verdict(pull_request, pipeline)
        assert got["verdict"] == "fail"
        assert [v["kind"] for v in got["violations"]] == ["threshold"]
        assert got["waivers"]["used"] == [], got["waivers"]  # the head's waivers were never read
        # The base commit's policy, under its repository path (so the violation alert points at it).
        assert got["policy"]["path"] == POLICY_PATH
        assert got["policy"]["sha256"] == hashlib.sha256(UNWAIVED.encode()).hexdigest()
    assert not pull_request.artifact("mlsec-signatures-mlsecops").exists()


def test_the_policy_came_from_the_base_commit(pull_request: ActRun) -> None:
    lines = (pull_request.record_dir / "checkout.jsonl").read_text(encoding="utf-8").splitlines()
    base_checkouts = [c for c in map(json.loads, lines) if c["ref"]]
    consumer = pull_request.record_dir.parent / "consumer"
    base = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=consumer, capture_output=True, text=True,
                          check=True).stdout.strip()
    # Both gates (policy) and every stage job (config) check out the base commit, credentials not kept.
    assert sorted((c["job"], c["path"], c["ref"], c["persist_credentials"]) for c in base_checkouts) == sorted(
        [(job, ".mlsec-base", base, "false") for job in ("gate-4", "gate-4", "code-scan", "code-scan", "model-scan",
                                                          "notebook-scan", "data-scan")])
    assert pull_request.log.count("mlsec trusted files: policy and config from the base commit") == 7


def test_the_config_came_from_the_base_commit(pull_request: ActRun) -> None:
    # The head's config would time trivy out after 1 ms (a tool failure); the base's gives it 600 s.
    for pipeline in GATES:
        assert pull_request.job_result(f"{pipeline}/code-scan") == "succeeded", pipeline
        assert "tool-failed" not in {v["kind"] for v in verdict(pull_request, pipeline)["violations"]}
