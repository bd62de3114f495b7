"""Issue 9 item 12, "weak input checks", through the real CLI on the hostile repository's payloads
(`weak_inputs.py`): each is a failed tool, a red gate or a refused policy, never a green result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.adversarial import observe
from tests.adversarial.hostile_repo import HostileRepo
from tests.adversarial.observe import Observed
from tests.adversarial.weak_inputs import TRUE_COUNT, write_truncated

pytestmark = pytest.mark.integration


def _held(h: HostileRepo, obs: Observed) -> None:
    problems = observe.all_problems(h, obs)
    assert problems == [], "\n".join(problems) + "\n\n" + obs.describe()


def _gate(h: HostileRepo, work: Path, sarif_dir: Path, *extra: str) -> tuple[Observed, dict[str, Any]]:
    obs = observe.run(h, work, "gate", "--sarif-dir", str(sarif_dir), "--verdict", str(work / "verdict.json"),
                      "--summary", str(work / "summary.md"), "--sarif", str(work / "gate.sarif"), *extra,
                      trace=False)
    _held(h, obs)
    verdict = json.loads((work / "verdict.json").read_text()) if (work / "verdict.json").is_file() else {}
    return obs, verdict


def test_trivy_printing_an_empty_object_is_a_failed_tool_and_a_red_gate(hostile: HostileRepo, work: Path) -> None:
    weak = hostile.weak
    sarif = work / "sarif" / "code-scan.sarif"
    obs = observe.run(hostile, work, "code-scan", str(hostile.root / "weak"), "--sarif", str(sarif),
                      "--vuln-db", "skip", env={"MLSEC_TRIVY_BIN": str(weak.empty_report_trivy)}, trace=False)
    _held(hostile, obs)
    assert obs.returncode != 0, obs.describe()
    run = json.loads(sarif.read_text())["runs"][0]
    trivy = [inv for inv in run["invocations"]
             if any("trivy" in json.dumps(n) for n in inv.get("toolExecutionNotifications", []))]
    assert trivy and all(inv["executionSuccessful"] is False for inv in trivy), run["invocations"]
    assert "not a trivy report" in json.dumps(trivy)
    gate, verdict = _gate(hostile, work / "gate", sarif.parent, "--policy", "default")
    assert gate.returncode == 3 and verdict["verdict"] == "fail", gate.describe()
    assert any(v["kind"] == "tool-failed" and "trivy" in v["message"] for v in verdict["violations"]), verdict


def test_sarif_without_invocations_is_not_a_successful_run(hostile: HostileRepo, work: Path) -> None:
    obs, verdict = _gate(hostile, work, hostile.weak.no_invocations, "--policy", "default")
    assert obs.returncode == 3 and verdict["verdict"] == "fail", obs.describe()
    assert any("no invocations" in v["message"] for v in verdict["violations"]), verdict["violations"]


@pytest.mark.parametrize("command", ["gate", "policy"])
def test_a_threshold_on_stage_bracket_is_refused(hostile: HostileRepo, work: Path, command: str) -> None:
    policy = hostile.weak.bad_stage_policy
    if command == "gate":
        obs, verdict = _gate(hostile, work, hostile.weak.no_invocations, "--policy", str(policy))
        assert not verdict, "a verdict was written for a policy that was refused"
    else:
        obs = observe.run(hostile, work, "policy", "validate", str(policy), trace=False)
        _held(hostile, obs)
    assert obs.returncode == 2, obs.describe()
    line = (obs.stderr + obs.stdout).strip()
    assert policy.name in line and "'[' names no stage" in line, obs.describe()
    assert "Traceback" not in obs.stderr


def test_a_truncated_run_is_counted_whole(hostile: HostileRepo, work: Path) -> None:
    write_truncated(hostile.weak)
    doc = json.loads((hostile.weak.truncated / "code-scan.sarif").read_text())
    kept = len(doc["runs"][0]["results"])
    assert kept == 25_000 and doc["runs"][0]["properties"]["mlsec-truncated"] is True
    obs, verdict = _gate(hostile, work, hostile.weak.truncated, "--policy", str(hostile.weak.max_kept_policy))
    assert obs.returncode == 3 and verdict["verdict"] == "fail", obs.describe()
    (violation,) = verdict["violations"]
    assert violation["kind"] == "threshold" and f"{TRUE_COUNT} findings" in violation["message"], violation
