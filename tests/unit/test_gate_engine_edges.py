"""Gate evaluation edges the mutation sweep found untested: every finding after a waiver check counts,
baseline files are reported by name, a score that is not a number falls back to the level."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mlsec_actions.findings import Severity
from mlsec_actions.gate import input as gate_input
from tests.unit.test_gate import evaluate, hit, stage, waiver


def test_findings_after_a_kept_one_still_count_when_waivers_are_on(tmp_path: Path) -> None:
    found = [hit(path=f"f{i}.py") for i in range(4)]
    verdict = evaluate(tmp_path, "version: 1\n" + waiver("path: nothing/**"), stage("code-scan", *found))
    assert verdict.counted["code-scan"][Severity.HIGH] == 4
    (tmp_path / "w").mkdir()
    verdict = evaluate(tmp_path / "w", "version: 1\n" + waiver("path: f1.py"), stage("code-scan", *found))
    assert verdict.counted["code-scan"][Severity.HIGH] == 3 and verdict.waived == 1


def test_baseline_files_are_reported_with_their_digest(tmp_path: Path) -> None:
    verdict = evaluate(tmp_path, "version: 1\n", stage("code-scan", hit()), baseline=(stage("code-scan", hit()),))
    (base,) = verdict.baseline_inputs
    file = tmp_path / "baseline" / "code-scan.sarif"
    assert base.path == str(file) and base.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert verdict.in_baseline == 1


def test_a_score_that_is_not_a_number_is_as_if_absent(tmp_path: Path) -> None:
    log = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "x", "rules": [{"id": "x/r", "properties": {"security-severity": "high"}}]}},
        "invocations": [{"executionSuccessful": True}],
        "results": [{"ruleId": "x/r", "level": "note", "message": {"text": "m"},
                     "properties": {"security-severity": "high"}},
                    {"ruleId": "x/r", "level": "note", "message": {"text": "m"},
                     "properties": {"security-severity": "high"}}]}]}
    (run,) = gate_input.read_bytes("x.sarif", json.dumps(log).encode())
    assert [(h.severity, h.score) for h in run.hits] == [(Severity.LOW, 2.0), (Severity.LOW, 2.0)]
