"""The fault matrix under act (issue 8): every scan stage that is a job of a reusable workflow, times every fault
kind, makes that call's gate fail, and the verdict names the stage and the cause. One act run covers it all
(tests/faults/act_matrix.py says how the faults are assigned and injected); nothing is signed after a fault.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import catalog
from tests.e2e.act_harness import ActRun, git_init, run_workflow
from tests.faults import act_matrix
from tests.faults.act_matrix import FAULTS, Assignment

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group(name="e2e-act-b")]

ASSIGNMENTS = act_matrix.plan()
WORKFLOW = Path(".github") / "workflows" / "mlsec-faults.yml"


def test_matrix_covers_every_stage_job_and_fault() -> None:
    jobs = [j for w in catalog.PIPELINES for j in act_matrix.stage_jobs(w)]
    assert {j.stage.id for j in jobs} >= {"code-scan", "model-scan"}
    applies = {(j, f) for j in jobs for f in FAULTS if not f.scanner or act_matrix.external_tools(j.stage)}
    # Every (stage, fault) somewhere; every job of every workflow with every violation kind its gate reports.
    pairs = {(a.job.stage.id, a.fault.name) for a in ASSIGNMENTS if a.fault}
    assert pairs == {(j.stage.id, f.name) for j, f in applies}
    for job in jobs:
        kinds = {a.fault.kind for a in ASSIGNMENTS if a.job == job and a.fault}
        assert kinds == {f.kind for j, f in applies if j == job}, job
    # Each call faults every stage job of its workflow once (no call is spent on a job without a fault).
    for members in act_matrix.calls(ASSIGNMENTS).values():
        assert len(members) == len(act_matrix.stage_jobs(members[0].job.workflow))


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> ActRun:
    work = tmp_path_factory.mktemp("e2e-fault-matrix")
    consumer = work / "consumer"
    files = {**act_matrix.consumer_files(ASSIGNMENTS), str(WORKFLOW): act_matrix.consumer_workflow(ASSIGNMENTS)}
    for rel, text in files.items():
        (consumer / rel).parent.mkdir(parents=True, exist_ok=True)
        (consumer / rel).write_text(text, encoding="utf-8")
    (consumer / "weights.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))  # modelscan's input
    act_matrix.write_stale_sarifs(consumer, ASSIGNMENTS)
    git_init(consumer)
    plan, fakes = act_matrix.write_plan(work / "faults", ASSIGNMENTS)
    swapped = " ".join(a.artifact for a in ASSIGNMENTS if a.fault and a.fault.name == "swapped")
    return run_workflow(consumer, consumer / WORKFLOW, work, prepare_staged=act_matrix.inject,
                        env={"E2E_FAULT_PLAN": str(plan), "E2E_FAULT_BIN": str(fakes), "E2E_SWAP_ARTIFACTS": swapped})


def _job_result(run: ActRun, a: Assignment, job_name: str) -> str | None:
    """'succeeded' or 'failed' for a job of this call (act names it `<caller job>/<workflow>/<job name>`)."""
    prefix = re.escape(f"{a.call}/{a.job.workflow}/{job_name}")
    found = re.findall(rf"^\[{prefix}[^\]]*\]\s+\S+\s+Job (succeeded|failed)", run.log, re.M)
    return found[-1] if found else None


def _verdict(run: ActRun, a: Assignment) -> dict[str, Any]:
    gate_id, _ = act_matrix.gate_job(a.job.workflow, a.job.stage.id)
    path = run.artifact(f"mlsec-gate-{a.call}-{gate_id.removeprefix('gate-')}") / "gate-verdict.json"
    assert path.is_file(), (a.call, run.log[-3000:])
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("a", ASSIGNMENTS,
                         ids=lambda a: f"{a.call}-{a.job.stage.id}-{a.fault.name if a.fault else 'clean'}")
def test_fault_turns_the_gate_red_naming_stage_and_cause(matrix_run: ActRun, a: Assignment) -> None:
    verdict = _verdict(matrix_run, a)
    assert verdict["verdict"] == "fail"
    _, gate_name = act_matrix.gate_job(a.job.workflow, a.job.stage.id)
    assert _job_result(matrix_run, a, gate_name) == "failed"
    assert not matrix_run.artifact(f"mlsec-signatures-{a.call}").exists(), "signed after a fault"
    mine = [v for v in verdict["violations"] if v.get("stage") == a.job.stage.id]
    if a.fault is None:  # the control: a stage that cannot take this fault ran clean, and its gate says so
        assert mine == [], mine
        return
    of_kind = [str(v.get("message", "")) for v in mine if v["kind"] == a.fault.kind]
    assert of_kind, f"{a.fault.name}: no {a.fault.kind} violation for {a.job.stage.id}: {verdict['violations']}"
    assert any(c in m for m in of_kind for c in a.fault.causes), (a.fault.causes, of_kind)
    if a.fault.kind == "tool-failed":
        # The failed run's SARIF still reached code scanning (valid, saying so) before the stage job failed.
        upload = matrix_run.upload(f"{a.job.stage.category}/{a.call.rsplit('-', 1)[1]}")
        assert upload["valid"] is True
        doc = json.loads(Path(str(upload["copy"])).read_text(encoding="utf-8"))
        assert any(not i["executionSuccessful"] for i in doc["runs"][0]["invocations"])
        assert _job_result(matrix_run, a, a.job.stage.id) == "failed"
