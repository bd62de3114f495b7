"""Each builtin policy, at each gate of devsecops.yml, requires only stages whose SARIF that gate job collects.

A gate job reads only the artifacts `mlsec-sarif-<ns>-<stage>` it downloads; a policy requiring any other stage
there (code-scan at gate 7, say: gate-4 judged it) turns every devsecops call red with required-stage-missing,
whatever the scans found. The checkpoint a job passes (`checkpoint:` of its gate step) picks the policy section,
and its `pipeline:` narrows the required stages to that pipeline's (gate.scope: strict's ML stages at gate-4).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlsec_actions import cli
from mlsec_actions.findings import StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import policy
from mlsec_actions.gate.scope import for_pipeline
from mlsec_actions.sarif import write_sarif

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "devsecops.yml"
_COLLECTED = re.compile(r"^mlsec-sarif-\$\{\{ needs\.run-id\.outputs\.ns \}\}-([a-z0-9-]+)$")


def _jobs(workflow: Path = WORKFLOW) -> dict[str, Any]:
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    jobs: dict[str, Any] = doc["jobs"]
    return jobs


def gates() -> dict[str, tuple[int | None, frozenset[str]]]:
    """gate job id -> (the checkpoint its gate step passes, the stages whose SARIF it downloads)."""
    found = {}
    for job_id, job in _jobs().items():
        if not job_id.startswith("gate-"):
            continue
        collected, checkpoint = set(), None
        for step in job["steps"]:
            uses, args = str(step.get("uses", "")), step.get("with") or {}
            if uses.startswith("actions/download-artifact@"):
                match = _COLLECTED.match(str(args.get("name", "")))
                assert match, (job_id, args)
                collected.add(match.group(1))
            if uses == "$/actions/gate" and "checkpoint" in args:
                checkpoint = int(args["checkpoint"])
        found[job_id] = (checkpoint, frozenset(collected))
    return found


def gate_pipelines(workflow: Path) -> dict[str, str | None]:
    """gate job id -> the `pipeline:` its gate step passes."""
    return {job_id: next((str(s["with"].get("pipeline")) if "pipeline" in s["with"] else None
                          for s in job["steps"] if s.get("uses") == "$/actions/gate"), None)
            for job_id, job in _jobs(workflow).items() if job_id.startswith("gate-")}


def unmet(source: str | Path, checkpoint: int | None, collected: frozenset[str],
          pipeline: str | None = "devsecops") -> set[str]:
    """Stages the policy requires at `checkpoint` of `pipeline` that the gate never sees."""
    pol = for_pipeline(policy.load(source, checkpoint=checkpoint), pipeline)
    return set(pol.required_stages) - collected


def test_the_workflow_has_the_three_devsecops_gates() -> None:
    assert {job: checkpoint for job, (checkpoint, _) in gates().items()} == {"gate-4": None, "gate-7": 7,
                                                                             "gate-11": 11}
    assert gates()["gate-7"][1] == {"build", "image-scan", "dast"}
    assert gates()["gate-11"][1] == {"infra-scan", "runtime-probe"}


@pytest.mark.parametrize("job", ["gate-7", "gate-11"])
@pytest.mark.parametrize("builtin", policy.BUILTIN)
def test_builtin_checkpoints_require_only_stages_their_gate_collects(builtin: str, job: str) -> None:
    checkpoint, collected = gates()[job]
    assert unmet(builtin, checkpoint, collected) == set()


@pytest.mark.parametrize("builtin", policy.BUILTIN)
def test_every_builtin_passes_the_pre_build_gate_on_code_scan_alone(builtin: str) -> None:
    checkpoint, collected = gates()["gate-4"]
    assert collected == {"fetch", "code-scan"}
    assert unmet(builtin, checkpoint, collected) == set()


def test_strict_at_the_pre_build_gate_required_ml_stages_before_pipelines_were_named() -> None:
    # The check above can fail: without the pipeline, strict's notebook-, data- and model-scan are unmet.
    checkpoint, collected = gates()["gate-4"]
    assert unmet("strict", checkpoint, collected, None) == {"notebook-scan", "data-scan", "model-scan"}


@pytest.mark.parametrize(("workflow", "pipeline", "jobs"), [("devsecops.yml", "devsecops", 3),
                                                             ("mlsecops.yml", "mlsecops", 2)])
def test_every_gate_job_names_its_pipeline(workflow: str, pipeline: str, jobs: int) -> None:
    found = gate_pipelines(WORKFLOWS / workflow)
    assert len(found) == jobs and set(found.values()) == {pipeline}, found


def _gate(tmp_path: Path, source: str | Path, stages: tuple[str, ...], *extra: str) -> tuple[int, dict[str, Any]]:
    sarif = tmp_path / "sarif"
    sarif.mkdir(exist_ok=True)
    for stage in stages:
        write_sarif(StageResult(stage, (), (ToolRun("trivy", ToolStatus.OK, "0.76.0"),)), sarif / f"{stage}.sarif")
    verdict = tmp_path / "verdict.json"
    code = cli.main(["gate", "--sarif-dir", str(sarif), "--policy", str(source), "--verdict", str(verdict),
                     "--summary", str(tmp_path / "summary.md"), "--sarif", str(tmp_path / "gate.sarif"), *extra])
    doc: dict[str, Any] = json.loads(verdict.read_text(encoding="utf-8"))
    return code, doc


def _missing(doc: dict[str, Any]) -> list[str]:
    return sorted(v["stage"] for v in doc["violations"] if v["kind"] == "required-stage-missing")


def test_strict_devsecops_gate_passes_on_its_own_stages_and_says_what_it_left_out(tmp_path: Path) -> None:
    code, doc = _gate(tmp_path, "strict", ("code-scan",), "--pipeline", "devsecops")
    assert (code, doc["verdict"], doc["violations"]) == (0, "pass", [])
    assert doc["policy"]["pipeline"] == "devsecops" and doc["policy"]["required_stages"] == ["code-scan"]
    assert any("notebook-scan, data-scan, model-scan not in the devsecops pipeline" in w for w in doc["warnings"])
    # Without the pipeline, the same SARIF is red: what devsecops.yml's gate-4 did with policy: strict.
    code, doc = _gate(tmp_path, "strict", ("code-scan",))
    assert code == 3 and _missing(doc) == ["data-scan", "model-scan", "notebook-scan"]
    assert "pipeline" not in doc["policy"]


def test_a_required_stage_of_the_pipeline_stays_required(tmp_path: Path) -> None:
    # Fail closed: the devsecops gate without code-scan's SARIF, and the ML gate without the ML scans, are red.
    code, doc = _gate(tmp_path, "strict", (), "--pipeline", "devsecops")
    assert code == 3 and _missing(doc) == ["code-scan"]
    code, doc = _gate(tmp_path, "strict", ("code-scan",), "--pipeline", "mlsecops")
    assert code == 3 and _missing(doc) == ["data-scan", "model-scan", "notebook-scan"]
    # A devsecops stage stays required at a gate that comes before it (build after gate 4): the policy asked.
    own = tmp_path / "own.yml"
    own.write_text("version: 1\nrequired-stages: [code-scan, build, model-scan]\nthresholds: []\n", encoding="utf-8")
    code, doc = _gate(tmp_path, own, ("code-scan",), "--pipeline", "devsecops")
    assert code == 3 and _missing(doc) == ["build"]
    assert doc["policy"]["required_stages"] == ["code-scan", "build"]


def test_an_unknown_pipeline_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["gate", "--sarif-dir", str(tmp_path), "--pipeline", "ops"]) == 2
    assert "--pipeline" in capsys.readouterr().err


def test_gate_7_requires_the_build_and_its_image_scan() -> None:
    # Gate 7 is the image's gate: with the builtins, a call with dast-targets but no build-context fails there
    # (required-stage-missing); a DAST-only pipeline sets its own checkpoints."7" in its policy.
    for builtin in policy.BUILTIN:
        assert policy.load(builtin, checkpoint=7).required_stages == ("build", "image-scan")


def test_a_checkpoint_requiring_an_earlier_gates_stage_is_caught(tmp_path: Path) -> None:
    # The check above can fail: the policies as they were (code-scan required at gate 7, nothing at 11).
    stale = tmp_path / "stale.yml"
    stale.write_text("version: 1\nrequired-stages: [code-scan]\nthresholds: []\n"
                     "checkpoints:\n  \"7\":\n    required-stages: [code-scan, build, image-scan]\n", encoding="utf-8")
    for job, want in (("gate-7", {"code-scan"}), ("gate-11", {"code-scan"})):
        checkpoint, collected = gates()[job]
        assert unmet(stale, checkpoint, collected) == want
