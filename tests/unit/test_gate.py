"""Gate evaluation, one table row per rule type and failure mode. SARIF is written by our own writer."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import input as gate_input
from mlsec_actions.gate import policy
from mlsec_actions.gate.engine import Verdict, run_gate
from mlsec_actions.sarif import to_sarif, write_sarif

TODAY = dt.date(2026, 6, 1)
OK_TRIVY = ToolRun("trivy", ToolStatus.OK, "0.76.0")


def hit(rule: str = "trivy/secret/aws-access-key-id", severity: Severity = Severity.HIGH, path: str = "app.py",
        line: int = 3, score: float | None = None) -> Finding:
    return Finding(rule=Rule(id=rule, name=rule, short_description=rule), message=f"{rule} in {path}",
                   severity=severity, location=Location(path=path, start_line=line), score=score)


def stage(stage_id: str, *findings: Finding, tools: tuple[ToolRun, ...] = (OK_TRIVY,),
          extra: dict[str, object] | None = None) -> StageResult:
    return StageResult(stage_id, tuple(findings), tools, dict(extra or {}))


def write_all(folder: Path, *results: StageResult) -> Path:
    for r in results:
        write_sarif(r, folder / f"{r.stage}.sarif")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def evaluate(tmp_path: Path, policy_text: str, *results: StageResult, baseline: tuple[StageResult, ...] | None = None,
             today: dt.date = TODAY) -> Verdict:
    pol_file = tmp_path / "policy.yml"
    pol_file.write_text(policy_text, encoding="utf-8")
    sarif_dir = write_all(tmp_path / "sarif", *results)
    base_dir = write_all(tmp_path / "baseline", *baseline) if baseline is not None else None
    return run_gate(policy.load(pol_file), sarif_dir, base_dir, today=today)


DEFAULT = (Path(__file__).resolve().parents[2] / "policies" / "default.yml").read_text()


def waiver(match: str, expires: str = "2026-07-31") -> str:
    return (f"waivers:\n  - id: w1\n    {match}\n    reason: test data, not a real key\n    owner: '@sec'\n"
            f"    expires: {expires}\n")


DEFAULT_WITH = DEFAULT.replace("waivers: []\n", "")


@dataclass(frozen=True)
class Case:
    policy: str
    results: tuple[StageResult, ...]
    passed: bool
    kinds: tuple[str, ...] = ()
    waivers: dict[str, str] = field(default_factory=dict)
    baseline: tuple[StageResult, ...] | None = None


CASES = {
    "clean-code-scan-passes": Case(DEFAULT, (stage("code-scan"),), True),
    "medium-passes-default": Case(DEFAULT, (stage("code-scan", hit(severity=Severity.MEDIUM)),), True),
    "high-fails-default": Case(DEFAULT, (stage("code-scan", hit()),), False, ("threshold",)),
    "critical-in-any-stage-fails": Case(DEFAULT, (stage("code-scan"), stage("model-scan", hit(
        "pickle/dangerous-global", Severity.CRITICAL, "model.pkl"), tools=(ToolRun("pickle", ToolStatus.OK),))),
        False, ("threshold",)),
    "required-stage-missing-fails": Case(DEFAULT, (stage("model-scan"),), False, ("required-stage-missing",)),
    "no-sarif-at-all-fails": Case(DEFAULT, (), False, ("no-inputs", "required-stage-missing")),
    "tool-error-fails-default": Case(DEFAULT, (stage("code-scan", tools=(
        ToolRun("trivy", ToolStatus.FAILED, message="exit 2"),)),), False, ("tool-failed",)),
    "missing-tool-fails-default": Case(DEFAULT, (stage("code-scan", tools=(
        ToolRun("trivy", ToolStatus.MISSING, message="not on PATH"),)),), False, ("tool-failed",)),
    "timeout-in-other-stage-fails": Case(DEFAULT, (stage("code-scan"), stage("model-scan", tools=(
        ToolRun("modelscan", ToolStatus.TIMEOUT),))), False, ("tool-failed",)),
    "skipped-tool-passes": Case(DEFAULT, (stage("code-scan", tools=(ToolRun("trivy", ToolStatus.SKIPPED),)),), True),
    "tool-errors-warn-passes": Case(DEFAULT.replace("tool-errors: fail", "tool-errors: warn"), (stage(
        "code-scan", tools=(ToolRun("trivy", ToolStatus.FAILED),)),), True),
    "max-count-at-limit-passes": Case("version: 1\nthresholds:\n  - severity: high\n    max: 2\n", (stage(
        "code-scan", hit(line=1), hit(line=2)),), True),
    "max-count-over-limit-fails": Case("version: 1\nthresholds:\n  - severity: high\n    max: 2\n", (stage(
        "code-scan", hit(line=1), hit(line=2), hit(line=3)),), False, ("threshold",)),
    "per-tool-threshold-ignores-other-tools": Case("version: 1\nthresholds:\n  - tool: bandit\n", (stage(
        "code-scan", hit()),), True),
    "per-tool-threshold-catches-its-tool": Case("version: 1\nthresholds:\n  - tool: trivy\n    severity: low\n",
                                                (stage("code-scan", hit(severity=Severity.LOW)),), False,
                                                ("threshold",)),
    "per-stage-exclusion": Case("version: 1\nthresholds:\n  - stage: ['*', '!data-scan']\n", (stage(
        "data-scan", hit("pii/email", Severity.MEDIUM, "data.csv"), tools=(ToolRun("pii", ToolStatus.OK),)),), True),
    "security-severity-threshold": Case("version: 1\nthresholds:\n  - security-severity: 7.0\n", (stage(
        "code-scan", hit(severity=Severity.MEDIUM, score=7.5)),), False, ("threshold",)),
    "security-severity-below-bar-passes": Case("version: 1\nthresholds:\n  - security-severity: 7.0\n", (stage(
        "code-scan", hit(severity=Severity.HIGH, score=6.9)),), True),
    "severity-and-score-both-needed": Case(
        "version: 1\nthresholds:\n  - severity: high\n    security-severity: 9.0\n",
        (stage("code-scan", hit(severity=Severity.HIGH, score=8.0)),), True),
    "metric-below-bound-fails": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: metrics.accuracy\n    op: '>='\n    value: 0.9\n",
        (stage("evaluate", extra={"metrics": {"accuracy": 0.85}}),), False, ("metric",)),
    "metric-within-bound-passes": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: metrics.accuracy\n    op: '>='\n    value: 0.9\n",
        (stage("evaluate", extra={"metrics": {"accuracy": 0.93}}),), True),
    "metric-equality-on-strings": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: model.format\n    op: '!='\n    value: pickle\n",
        (stage("evaluate", extra={"model": {"format": "pickle"}}),), False, ("metric",)),
    "metric-missing-fails": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: metrics.auc\n    op: '>'\n    value: 0.5\n",
        (stage("evaluate", extra={"metrics": {"accuracy": 0.9}}),), False, ("metric-missing",)),
    "metric-stage-absent-fails": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: metrics.auc\n    op: '>'\n    value: 0.5\n",
        (stage("code-scan"),), False, ("metric-missing",)),
    "metric-missing-may-pass": Case(
        "version: 1\nmetrics:\n  - stage: evaluate\n    property: metrics.auc\n    op: '>'\n    value: 0.5\n"
        "    missing: pass\n", (stage("code-scan"),), True),
    "waiver-by-rule-glob-passes": Case(DEFAULT_WITH + waiver("rule: trivy/secret/*"), (stage("code-scan", hit()),),
                                       True, waivers={"w1": "used"}),
    "waiver-by-path-glob-passes": Case(DEFAULT_WITH + waiver("path: tests/**/*.py"), (stage(
        "code-scan", hit(path="tests/fixtures/keys.py")),), True, waivers={"w1": "used"}),
    "waiver-path-glob-misses-other-folders": Case(DEFAULT_WITH + waiver("path: tests/**/*.py"), (stage(
        "code-scan", hit(path="src/keys.py")),), False, ("threshold",), waivers={"w1": "unused"}),
    "waiver-other-stage-does-not-apply": Case(DEFAULT_WITH + waiver("rule: trivy/*\n    stage: model-scan"), (stage(
        "code-scan", hit()),), False, ("threshold",), waivers={"w1": "unused"}),
    "expired-waiver-fails": Case(DEFAULT_WITH + waiver("rule: trivy/secret/*", expires="2026-05-31"), (stage(
        "code-scan", hit()),), False, ("threshold", "waiver-expired"), waivers={"w1": "expired"}),
    "waiver-valid-through-its-last-day": Case(DEFAULT_WITH + waiver("rule: trivy/secret/*", expires="2026-06-01"),
                                              (stage("code-scan", hit()),), True, waivers={"w1": "used"}),
    "expired-unused-waiver-still-fails": Case(DEFAULT_WITH + waiver("rule: nothing/*", expires="2020-01-01"),
                                              (stage("code-scan"),), False, ("waiver-expired",),
                                              waivers={"w1": "expired"}),
    "unused-waiver-is-reported-not-failed": Case(DEFAULT_WITH + waiver("rule: nothing/*"), (stage("code-scan"),),
                                                 True, waivers={"w1": "unused"}),
    "waiver-longer-than-allowed-fails": Case(DEFAULT_WITH.replace("waiver-max-days: 90", "waiver-max-days: 30")
                                             + waiver("rule: trivy/*"), (
        stage("code-scan", hit()),), False, ("waiver-too-long",), waivers={"w1": "used"}),
    "baseline-hides-old-findings": Case(DEFAULT, (stage("code-scan", hit()),), True,
                                        baseline=(stage("code-scan", hit()),)),
    "baseline-catches-new-findings": Case(DEFAULT, (stage("code-scan", hit(), hit(path="new.py")),), False,
                                          ("threshold",), baseline=(stage("code-scan", hit()),)),
}


@pytest.mark.parametrize("name", CASES)
def test_rule_table(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    verdict = evaluate(tmp_path, case.policy, *case.results, baseline=case.baseline)
    assert verdict.passed is case.passed, verdict.violations
    assert tuple(sorted(v.kind for v in verdict.violations)) == tuple(sorted(case.kinds))
    assert {u.waiver.id: u.status for u in verdict.waivers} == case.waivers


def test_threshold_violation_points_at_the_policy_line_and_counts_per_stage(tmp_path: Path) -> None:
    verdict = evaluate(tmp_path, DEFAULT, stage("code-scan", hit(), hit(path="b.py")), stage(
        "model-scan", hit("pickle/global", Severity.CRITICAL, "m.pkl"), tools=(ToolRun("pickle", ToolStatus.OK),)))
    (v,) = verdict.violations
    line = DEFAULT.splitlines().index("  - id: no-high-or-critical") + 1
    assert (v.kind, v.rule, v.path, v.line) == ("threshold", "no-high-or-critical", str(tmp_path / "policy.yml"), line)
    assert "3 findings" in v.message and "code-scan: 2" in v.message and "model-scan: 1" in v.message
    assert verdict.counts["code-scan"][Severity.HIGH] == 2
    assert verdict.counts["model-scan"][Severity.CRITICAL] == 1
    assert verdict.top[0][0] == "model-scan" and verdict.top[0][1].severity is Severity.CRITICAL


def test_waived_and_baseline_findings_are_still_counted_and_reported(tmp_path: Path) -> None:
    text = DEFAULT_WITH + waiver("path: waived.py")
    verdict = evaluate(tmp_path, text, stage("code-scan", hit(path="waived.py"), hit(path="old.py"),
                                             hit(path="new.py", severity=Severity.LOW)),
                       baseline=(stage("code-scan", hit(path="old.py")),))
    assert verdict.passed
    assert verdict.counts["code-scan"][Severity.HIGH] == 2
    assert verdict.counted["code-scan"][Severity.HIGH] == 0
    assert (verdict.waived, verdict.in_baseline) == (1, 1)
    assert [u.matched for u in verdict.waivers] == [1]
    assert len(verdict.baseline_inputs) == 1


def test_waiver_by_fingerprint(tmp_path: Path) -> None:
    fingerprint = to_sarif(stage("code-scan", hit()))["runs"][0]["results"][0]["partialFingerprints"][
        "primaryLocationLineHash"]
    verdict = evaluate(tmp_path, DEFAULT_WITH + waiver(f"fingerprint: '{fingerprint}'"),
                       stage("code-scan", hit(), hit(path="other.py")))
    assert not verdict.passed
    assert [u.matched for u in verdict.waivers] == [1]
    assert verdict.counted["code-scan"][Severity.HIGH] == 1


def test_expired_waiver_violation_names_owner_date_and_line(tmp_path: Path) -> None:
    text = DEFAULT_WITH + waiver("rule: trivy/*", expires="2026-01-15")
    verdict = evaluate(tmp_path, text, stage("code-scan"))
    (v,) = verdict.violations
    assert (v.kind, v.rule, v.line) == ("waiver-expired", "w1", text.splitlines().index("  - id: w1") + 1)
    assert "owner @sec" in v.message and "2026-01-15" in v.message


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    """Deliberately broken *.sarif files live here: the session hook validates every *.sarif under basetemp."""
    with tempfile.TemporaryDirectory(prefix="mlsec-gate-bad-") as d:
        yield Path(d)


GOOD_LOG = json.dumps(to_sarif(stage("code-scan")))
DEEP_LOG = ('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "properties": '
            + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}]}")
"""100,000 nested objects: past msgspec's (the interpreter's) recursion limit."""
MALFORMED = {
    "truncated": GOOD_LOG[: len(GOOD_LOG) // 2],
    "empty": "",
    "not-json": "<html>502 Bad Gateway</html>",
    "no-runs": '{"version": "2.1.0"}',
    "wrong-version": GOOD_LOG.replace('"version": "2.1.0"', '"version": "2.0.0"'),
    "wrong-type": GOOD_LOG.replace('"results": []', '"results": {}'),
    "nested-100k": DEEP_LOG,
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_sarif_fails_closed_naming_the_file(outside_basetemp: Path, tmp_path: Path, name: str) -> None:
    sarif_dir = outside_basetemp / "sarif"
    write_all(sarif_dir, stage("code-scan"))
    bad = sarif_dir / "nested" / f"{name}.sarif"
    bad.parent.mkdir()
    bad.write_text(MALFORMED[name], encoding="utf-8")
    verdict = run_gate(policy.load("default"), sarif_dir, today=TODAY)
    assert not verdict.passed
    (v,) = verdict.violations
    assert v.kind == "sarif-malformed"
    assert v.path == str(bad) and v.message.startswith(f"{bad}: ")
    assert "fails closed" in v.message
    # Its digest is still recorded: the verdict says exactly what it saw.
    assert str(bad) in {f.path for f in verdict.inputs}


def test_malformed_baseline_fails_closed_too(outside_basetemp: Path, tmp_path: Path) -> None:
    sarif_dir = write_all(tmp_path / "sarif", stage("code-scan"))
    base = outside_basetemp / "base"
    base.mkdir()
    (base / "old.sarif").write_text(GOOD_LOG[:100], encoding="utf-8")
    verdict = run_gate(policy.load("default"), sarif_dir, base, today=TODAY)
    assert [v.kind for v in verdict.violations] == ["sarif-malformed"]


@pytest.mark.parametrize(("text", "problem"), [
    (GOOD_LOG[:-3], "truncated or corrupt SARIF"),
    ('{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": 5}}}]}', "$.runs[0].tool.driver.name"),
    (DEEP_LOG, "nested too deeply"),
])
def test_reader_errors_say_what_and_where(text: str, problem: str) -> None:
    with pytest.raises(InputError, match=r"x\.sarif") as caught:
        gate_input.read_bytes("x.sarif", text.encode())
    assert problem in caught.value.problem


def test_missing_folders_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such folder"):
        run_gate(policy.load("default"), tmp_path / "nope")
    with pytest.raises(InputError, match="no such folder"):
        run_gate(policy.load("default"), write_all(tmp_path / "s", stage("code-scan")), tmp_path / "nobase")


def test_third_party_sarif_severity_from_level_score_and_rule_defaults() -> None:
    log = {"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "Bandit", "rules": [
            {"id": "B105", "properties": {"security-severity": "9.1"}},
            {"id": "B101", "defaultConfiguration": {"level": "note"}}]}},
        "automationDetails": {"id": "bandit/"},
        "results": [
            {"ruleIndex": 0, "message": {"text": "hardcoded password"}},
            {"ruleId": "B101", "message": {"text": "assert"}},
            {"ruleId": "B999", "level": "error", "message": {"text": "x"}},
            {"ruleId": "B998", "message": {"text": "y"}},
            {"ruleId": "B997", "kind": "pass", "message": {"text": "not a finding"}},
        ]}]}
    (run,) = gate_input.read_bytes("b.sarif", json.dumps(log).encode())
    assert run.stage == "bandit"
    # No invocations: nothing shows Bandit ran, so the run reads as a failed tool (fails closed).
    assert run.tools[0].name == "Bandit" and run.tools[0].status is ToolStatus.FAILED
    assert run.tools[0].message == gate_input.NO_INVOCATIONS
    assert [(h.rule, h.tool, h.severity, h.score) for h in run.hits] == [
        ("B105", "Bandit", Severity.CRITICAL, 9.1), ("B101", "Bandit", Severity.LOW, 2.0),
        ("B999", "Bandit", Severity.HIGH, 8.0), ("B998", "Bandit", Severity.MEDIUM, 5.5)]


def test_reader_agrees_with_sarif_read_on_our_sarif(tmp_path: Path) -> None:
    from mlsec_actions.sarif_read import read_sarif

    result = stage("code-scan", hit(), hit("trivy/misconfig/DS-0002", Severity.MEDIUM, "Dockerfile", 1, 6.1),
                   hit("trivy/misconfig/DS-0026", Severity.LOW, "Dockerfile", 1), tools=(
                       OK_TRIVY, ToolRun("bandit", ToolStatus.FAILED, "1.8", message="crashed")))
    path = write_sarif(result, tmp_path / "code-scan.sarif")
    (full,) = read_sarif(path)
    (lean,) = gate_input.read_bytes(str(path), path.read_bytes())
    assert lean.stage == full.result.stage
    assert [(t.name, t.status, t.version, t.message) for t in lean.tools] == [
        (t.name, t.status, t.version, t.message) for t in full.result.tools]
    assert [(h.rule, h.severity, h.score, h.fingerprint, h.path, h.line, h.message) for h in lean.hits] == [
        (f.rule.id, f.severity, f.security_severity, f.fingerprint, f.location.path, f.location.start_line,
         f.message) for f in full.result.findings]


def test_a_gates_own_sarif_is_not_counted(tmp_path: Path) -> None:
    gate_out = stage("gate", hit("gate/threshold", Severity.HIGH, "policy.yml"), tools=(ToolRun("gate",
                                                                                                 ToolStatus.OK),))
    verdict = evaluate(tmp_path, DEFAULT, stage("code-scan"), gate_out)
    assert verdict.passed
    assert "gate" not in verdict.counts
    assert any("a gate's own SARIF" in w for w in verdict.warnings)
