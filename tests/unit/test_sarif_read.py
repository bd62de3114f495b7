from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import sarif
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.sarif_read import read_sarif

RULE = Rule(id="demo/r", name="R", short_description="r")


def test_round_trip_keeps_findings_fingerprints_and_tool_status(tmp_path: Path) -> None:
    result = StageResult("code-scan", (
        Finding(RULE, "one", Severity.CRITICAL, Location("a.py", 3), score=9.8),
        Finding(RULE, "two", Severity.LOW, Location("m.pkl", logical="x::os.system")),
    ), (ToolRun("trivy", ToolStatus.TIMEOUT, message="timed out after 5s"),))
    out = sarif.write_sarif(result, tmp_path / "code-scan.sarif")
    (run,) = read_sarif(out)
    assert run.category == "mlsec/code-scan"
    assert run.result.stage == "code-scan"
    assert [f.severity for f in run.result.findings] == [Severity.CRITICAL, Severity.LOW]
    assert run.result.findings[0].score == 9.8
    assert run.result.findings[1].location.logical == "x::os.system"
    written = json.loads(out.read_text())["runs"][0]["results"]
    assert [f.fingerprint for f in run.result.findings] == [
        r["partialFingerprints"]["primaryLocationLineHash"] for r in written]
    assert run.result.tools[0].status is ToolStatus.TIMEOUT
    assert not run.result.succeeded


@pytest.mark.parametrize("claimed", ["ok", "skipped"])
def test_execution_not_successful_reads_as_failed_whatever_status_it_claims(tmp_path: Path, claimed: str) -> None:
    doc = sarif.to_sarif(StageResult("code-scan", (), (ToolRun("trivy", ToolStatus.OK),)))
    inv = doc["runs"][0]["invocations"][0]
    inv["executionSuccessful"] = False
    inv["properties"]["status"] = claimed
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    (run,) = read_sarif(path)
    assert run.result.tools[0].status is ToolStatus.FAILED and not run.result.succeeded


def test_a_run_without_invocations_is_not_a_successful_run(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "other"}}, "results": []}]}))
    (run,) = read_sarif(path)
    assert [(t.name, t.status) for t in run.result.tools] == [("other", ToolStatus.FAILED)]
    assert not run.result.succeeded


def test_third_party_sarif_levels_map_to_severity(tmp_path: Path) -> None:
    doc = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "other", "rules": [
            {"id": "X1", "properties": {"security-severity": "9.1"}},
            {"id": "Z3", "defaultConfiguration": {"level": "error"}}]}},
        "results": [{"ruleId": "X1", "message": {"text": "bad"}},
                    {"ruleId": "Y2", "level": "note", "message": {"text": "meh"}},
                    {"ruleId": "Z3", "message": {"text": "level from the rule"}},
                    {"ruleId": "Q4", "message": {"text": "no level anywhere: warning"}}]}]}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    (run,) = read_sarif(path)
    assert run.category == "other"
    assert [f.severity for f in run.result.findings] == [Severity.CRITICAL, Severity.LOW, Severity.HIGH,
                                                          Severity.MEDIUM]


@pytest.mark.parametrize(("content", "problem"), [
    ('{"version": "2.1.0", "runs": [', "not valid JSON"),
    ("[]", "no 'runs' array"),
    ('{"version": "2.0.0", "runs": []}', "unsupported SARIF version"),
    ('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": {}}]}', "results is not an array"),
    ('{"version": "2.1.0", "runs": [{"results": []}]}', "tool is not an object"),
])
def test_malformed_sarif_is_a_clear_input_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem) as info:
        read_sarif(path)
    assert str(path) in info.value.diagnostics()
