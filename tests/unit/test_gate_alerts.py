"""Where the gate's SARIF alerts point (issue 8, build 9 / seen 10): never at `policies/default.yml`, a file
the caller's repository does not have. Every SARIF written here passes the session's validation hook
(schema, Multitool `Sarif;Ghas` rules, our contract: a location with a line on every result)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.gate import alerts, policy
from mlsec_actions.gate.engine import run_gate
from mlsec_actions.gate.provenance import NOTHING_EXPECTED, Expectations
from mlsec_actions.sarif import write_sarif
from tests.unit.test_gate import TODAY, hit, stage


def alert_locations(tmp_path: Path, pol: policy.Policy, expect: Expectations = NOTHING_EXPECTED) -> list[Any]:
    folder = tmp_path / "sarif"
    write_sarif(stage("code-scan", hit()), folder / "code-scan.sarif")
    verdict = run_gate(pol, folder, today=TODAY, expect=expect)
    out = write_sarif(alerts.violations_result(verdict), tmp_path / "out" / "gate.sarif")
    results = json.loads(out.read_text())["runs"][0]["results"]
    return [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results]


@pytest.fixture
def outside_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GITHUB_WORKFLOW_REF", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("outside_actions")
def test_builtin_policy_alert_uses_the_pseudo_location_outside_actions(tmp_path: Path) -> None:
    assert alert_locations(tmp_path, policy.load("default")) == [("gate/threshold", alerts.PSEUDO_LOCATION, 1)]


def test_builtin_policy_alert_points_at_the_calling_workflow_in_actions(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_WORKFLOW_REF", "acme/models/.github/workflows/ci.yml@refs/pull/7/merge")
    got = alert_locations(tmp_path, policy.load("strict"))
    assert {rule for rule, _, _ in got} == {"gate/required-stage-missing", "gate/threshold"}
    assert {(uri, line) for _, uri, line in got} == {(".github/workflows/ci.yml", 1)}


@pytest.mark.parametrize("ref", ["other/repo/.github/workflows/ci.yml@refs/heads/main",  # another repository's file
                                 "acme/models/.github/workflows/../../x@refs/heads/main",
                                 "acme/models/src/app.py@main", ""])
def test_a_workflow_ref_that_is_not_the_callers_workflow_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     ref: str) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_WORKFLOW_REF", ref)
    assert alerts.caller_workflow() is None
    assert alert_locations(tmp_path, policy.load("default"))[0][1] == alerts.PSEUDO_LOCATION


@pytest.mark.usefixtures("outside_actions")
def test_a_callers_policy_file_is_pointed_at_by_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".github").mkdir()
    pol = tmp_path / ".github" / "mlsec-policy.yml"
    pol.write_text("version: 1\n\nthresholds:\n  - id: no-high\n    severity: high\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert alert_locations(tmp_path, policy.load(pol)) == [("gate/threshold", ".github/mlsec-policy.yml", 4)]


@pytest.mark.usefixtures("outside_actions")
def test_a_violation_without_a_file_uses_the_pseudo_location(tmp_path: Path) -> None:
    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\n", encoding="utf-8")
    got = alert_locations(tmp_path, policy.load(pol), Expectations(stages=("model-scan",)))
    assert got == [("gate/stage-missing", alerts.PSEUDO_LOCATION, 1)]


@pytest.mark.usefixtures("outside_actions")
def test_alert_messages_are_one_safe_line(tmp_path: Path) -> None:
    folder = tmp_path / "sarif"
    bad = "code-scan\n::error::x"
    write_sarif(stage("code-scan"), folder / "code-scan.sarif", run_id=bad.replace("\n", " "))
    pol = tmp_path / "p.yml"
    pol.write_text("version: 1\n", encoding="utf-8")
    verdict = run_gate(policy.load(pol), folder, today=TODAY, expect=Expectations(run_id="r1"))
    out = write_sarif(alerts.violations_result(verdict), tmp_path / "out" / "gate.sarif")
    (result,) = json.loads(out.read_text())["runs"][0]["results"]
    assert "::" not in result["message"]["text"] and "\n" not in result["message"]["text"]
