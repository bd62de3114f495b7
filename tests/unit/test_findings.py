from __future__ import annotations

import pytest

from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus, sort_findings

RULE = Rule(id="t/r", name="R", short_description="r")


@pytest.mark.parametrize(("text", "expected"), [
    ("HIGH", Severity.HIGH), ("critical", Severity.CRITICAL), ("Moderate", Severity.MEDIUM),
    ("UNKNOWN", Severity.INFO), ("error", Severity.HIGH), ("note", Severity.LOW),
])
def test_parse_severity_names(text: str, expected: Severity) -> None:
    assert Severity.parse(text) is expected


def test_parse_rejects_unknown_severity() -> None:
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("apocalyptic")


@pytest.mark.parametrize(("score", "expected"), [
    (9.8, Severity.CRITICAL), (9.0, Severity.CRITICAL), (7.5, Severity.HIGH), (4.0, Severity.MEDIUM),
    (0.1, Severity.LOW), (0.0, Severity.INFO),
])
def test_severity_from_score_matches_github_buckets(score: float, expected: Severity) -> None:
    assert Severity.from_score(score) is expected
    # The default score of a severity lands back in the same bucket.
    assert Severity.from_score(expected.default_score) is expected


def test_sarif_levels() -> None:
    assert [s.sarif_level for s in Severity] == ["note", "note", "warning", "error", "error"]


def test_failed_tool_makes_stage_unsuccessful() -> None:
    ok = StageResult("s", (), (ToolRun("a", ToolStatus.OK), ToolRun("b", ToolStatus.SKIPPED)))
    assert ok.succeeded
    for status in (ToolStatus.FAILED, ToolStatus.MISSING, ToolStatus.TIMEOUT):
        assert not StageResult("s", (), (ToolRun("a", ToolStatus.OK), ToolRun("b", status))).succeeded


def test_sort_is_most_severe_first_then_by_place() -> None:
    low = Finding(RULE, "m", Severity.LOW, Location("a.py", 1))
    high_b = Finding(RULE, "m", Severity.HIGH, Location("b.py", 3))
    high_a = Finding(RULE, "m", Severity.HIGH, Location("a.py", 9))
    assert sort_findings([low, high_b, high_a]) == (high_a, high_b, low)


def test_score_overrides_default() -> None:
    f = Finding(RULE, "m", Severity.HIGH, Location("a"), score=7.3)
    assert f.security_severity == 7.3
    assert Finding(RULE, "m", Severity.HIGH, Location("a")).security_severity == 8.0
