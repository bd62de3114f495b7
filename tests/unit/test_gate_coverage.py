"""Coverage is part of the verdict (issue 8, build 3 and seen 2): what the stages could not check is read
from their SARIF, listed in the verdict and the summary, and judged by the policy's `coverage` key."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from mlsec_actions.findings import CoverageGap, GapKind, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import coverage as cov
from mlsec_actions.gate import input as gate_input
from mlsec_actions.gate import policy
from mlsec_actions.gate import report as gate_report
from mlsec_actions.gate.engine import Verdict, run_gate
from mlsec_actions.sarif import to_sarif, write_sarif
from tests.unit.test_gate import TODAY

NO_DB = CoverageGap(GapKind.VULNERABILITIES_NOT_SCANNED, "no vulnerability database (--vuln-db skip)")
BIG = CoverageGap(GapKind.FILE_SKIPPED, "larger than the 64 MiB limit", "data/huge.bin")
BIG2 = CoverageGap(GapKind.FILE_SKIPPED, "larger than the 64 MiB limit", "data/huge2.bin")


def scan(stage_id: str = "code-scan", *gaps: CoverageGap, tool: str = "trivy") -> StageResult:
    return StageResult(stage_id, (), (ToolRun(tool, ToolStatus.OK, "1.0", gaps=gaps),))


# The strict policy requires every scan stage of ML stage 3 too; clean runs of them.
ML_STAGE_3 = (scan("notebook-scan", tool="mlsec-notebook-scan"), scan("data-scan", tool="mlsec-data-scan"))


def gate(tmp_path: Path, text: str, *results: StageResult) -> Verdict:
    folder = tmp_path / "sarif"
    for r in results:
        write_sarif(r, folder / f"{r.stage}.sarif")
    folder.mkdir(parents=True, exist_ok=True)
    if text in policy.BUILTIN:
        return run_gate(policy.load(text), folder, today=TODAY)
    pol = tmp_path / "policy.yml"
    pol.write_text(text, encoding="utf-8")
    return run_gate(policy.load(pol), folder, today=TODAY)


def test_default_policy_lists_gaps_as_warnings_and_passes(tmp_path: Path) -> None:
    verdict = gate(tmp_path, "default", scan("code-scan", NO_DB))
    assert verdict.passed, verdict.violations
    assert [w for w in verdict.warnings if w.startswith("not covered: ")] == [
        f"not covered: code-scan: trivy: vulnerabilities-not-scanned: {NO_DB.detail}"]
    doc = json.loads(json.dumps(gate_report.to_json(verdict)))
    assert doc["coverage"] == {"total": 1, "by_kind": {"vulnerabilities-not-scanned": 1}, "stages": {
        "code-scan": {"total": 1, "unlisted": 0, "not_shown": 0, "tools": {"trivy": [
            {"kind": "vulnerabilities-not-scanned", "detail": NO_DB.detail, "path": ""}]}}}}
    assert doc["verdict"] == "pass" and any("not covered" in w for w in doc["warnings"])


def test_strict_policy_fails_on_any_gap(tmp_path: Path) -> None:
    verdict = gate(tmp_path, "strict", scan("code-scan", BIG), scan("model-scan", tool="pickle"), *ML_STAGE_3)
    (v,) = verdict.violations
    assert (v.kind, v.stage, v.rule) == ("coverage-gap", "code-scan", "coverage.gaps")
    assert "file-skipped" in v.message and "data/huge.bin" in v.message
    assert v.path == "policies/strict.yml" and v.line == policy.builtin_path("strict").read_text().splitlines(
    ).index("coverage:") + 1


def test_no_gaps_no_coverage_section_entries(tmp_path: Path) -> None:
    verdict = gate(tmp_path, "strict", scan("code-scan"), scan("model-scan", tool="pickle"), *ML_STAGE_3)
    assert verdict.passed and verdict.coverage == ()
    assert gate_report.to_json(verdict)["coverage"] == {"total": 0, "by_kind": {}, "stages": {}}


def test_one_violation_per_stage_tool_and_kind(tmp_path: Path) -> None:
    verdict = gate(tmp_path, "version: 1\ncoverage:\n  gaps: fail\n", scan("code-scan", BIG, BIG2, NO_DB))
    assert sorted((v.kind, v.stage) for v in verdict.violations) == [("coverage-gap", "code-scan")] * 2
    skipped = next(v for v in verdict.violations if "file-skipped" in v.message)
    assert "(and 1 more)" in skipped.message


def test_require_vulnerabilities_scanned_fails_even_when_gaps_only_warn(tmp_path: Path) -> None:
    text = "version: 1\ncoverage:\n  gaps: warn\n  require:\n    vulnerabilities: scanned\n"
    verdict = gate(tmp_path, text, scan("code-scan", NO_DB, BIG))
    (v,) = verdict.violations
    assert (v.kind, v.rule, v.line) == ("coverage-required", "coverage.require.vulnerabilities", 2)
    assert "vulnerabilities-not-scanned" in v.message
    # The other gap is only a warning.
    assert any("file-skipped" in w for w in verdict.warnings)
    assert gate(tmp_path / "ok", text, scan("code-scan", BIG)).passed


def test_third_party_sarif_with_notifications_only(tmp_path: Path) -> None:
    log = to_sarif(scan("code-scan", NO_DB))
    del log["runs"][0]["properties"]["mlsec-coverage"]
    (run,) = gate_input.read_bytes("x.sarif", json.dumps(log).encode())
    assert run.gaps == (cov.Gap("trivy", "vulnerabilities-not-scanned", NO_DB.detail),) and run.gap_total == 1


def test_property_and_notification_are_one_gap(tmp_path: Path) -> None:
    (run,) = gate_input.read_bytes("x.sarif", json.dumps(to_sarif(scan("code-scan", BIG))).encode())
    assert run.gaps == (cov.Gap("trivy", "file-skipped", BIG.detail, "data/huge.bin"),) and run.gap_total == 1


def test_other_notifications_are_not_gaps() -> None:
    log = to_sarif(StageResult("code-scan", (), (ToolRun("trivy", ToolStatus.OK, notes=("DB is 3 days old",)),)))
    (run,) = gate_input.read_bytes("x.sarif", json.dumps(log).encode())
    assert run.gaps == () and run.gap_total == 0


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mlsec-gate-cov-") as d:
        yield Path(d)


def _unlisted(folder: Path) -> Path:
    log = to_sarif(scan("code-scan", BIG))
    log["runs"][0]["properties"]["mlsec-coverage"]["total"] = 5000  # 4,999 counted past the writer's cap
    folder.mkdir(parents=True)
    (folder / "code-scan.sarif").write_text(json.dumps(log), encoding="utf-8")
    return folder


def test_gaps_counted_but_not_listed_cannot_meet_a_requirement(outside_basetemp: Path) -> None:
    folder = _unlisted(outside_basetemp / "s")
    pol = outside_basetemp / "p.yml"
    pol.write_text("version: 1\ncoverage:\n  require:\n    vulnerabilities: scanned\n", encoding="utf-8")
    verdict = run_gate(policy.load(pol), folder, today=TODAY)
    assert [v.kind for v in verdict.violations] == ["coverage-required"]
    assert "4999 more coverage gap(s) counted but not listed" in verdict.violations[0].message
    assert verdict.coverage[0].total == 5000 and verdict.coverage[0].unlisted == 4999
    warned = run_gate(policy.load("default"), folder, today=TODAY)
    assert warned.passed and any("4999 more" in w for w in warned.warnings)


def test_verdict_keeps_a_bounded_list_but_judges_every_gap(tmp_path: Path) -> None:
    gaps = tuple(CoverageGap(GapKind.FILE_UNREADABLE, "permission denied", f"f{i}") for i in range(600))
    verdict = gate(tmp_path, "version: 1\ncoverage:\n  gaps: fail\n", scan("code-scan", *gaps, NO_DB))
    (c,) = verdict.coverage
    assert (c.total, c.read, len(c.gaps), c.unlisted) == (601, 601, cov.MAX_GAPS_PER_STAGE, 0)
    # The vulnerability gap came after the cap: still judged.
    assert sorted(v.message.split(": ")[2] for v in verdict.violations) == ["file-unreadable",
                                                                             "vulnerabilities-not-scanned"]
    doc = gate_report.to_json(verdict)["coverage"]
    assert doc["by_kind"] == {"file-unreadable": 600, "vulnerabilities-not-scanned": 1}
    assert doc["stages"]["code-scan"]["not_shown"] == 101


def test_summary_shows_gaps_with_hostile_text_inert(tmp_path: Path) -> None:
    hostile = CoverageGap(GapKind.FORMAT_UNKNOWN, "not understood <img src=x onerror=alert(1)> [c](https://evil.example)",
                          "m/`x`|y.bin")
    verdict = gate(tmp_path, "default", scan("model-scan", hostile, tool="pickle"), scan("code-scan", NO_DB))
    md = gate_report.markdown(verdict)
    html = MarkdownIt("commonmark").enable("table").render(md)
    assert "<img" not in html and "evil.example\"" not in html and 'href="https://evil' not in html
    assert "### Coverage gaps (2)" in md and "listed as warnings (coverage.gaps: warn)" in md
    rows = [line for line in md.splitlines() if line.startswith("| model-scan | pickle | [format-unknown]")]
    assert len(rows) == 1 and rows[0].count(" | ") == 4  # the pipe in the path stayed inside its cell
    assert "vulnerabilities-not-scanned" in md


@pytest.mark.parametrize(("text", "problem"), [
    ("coverage:\n  gaps: maybe\n", "coverage.gaps: 'maybe' is not one of ['warn', 'fail']"),
    ("coverage:\n  require:\n    vulnerabilities: yes\n", "coverage.require.vulnerabilities: 'scanned' was expected"),
    ("coverage:\n  require:\n    secrets: scanned\n", "coverage.require.secrets: unknown key"),
    ("coverage:\n  fail: true\n", "coverage.fail: unknown key"),
])
def test_coverage_policy_keys_are_checked(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "p.yml"
    path.write_text("version: 1\n" + text, encoding="utf-8")
    with pytest.raises(policy.PolicyError) as caught:
        policy.load(path)
    assert problem in caught.value.problems[0], caught.value.problems
