"""Deduplication across code-scan's tools: same file, line and issue -> one result naming every tool."""

from __future__ import annotations

from mlsec_actions.findings import Finding, Location, Rule, Severity
from mlsec_actions.stages.code_scan_merge import issue_of, merge, tool_of


def _f(rid: str, path: str = "a.py", line: int | None = 3, sev: Severity = Severity.HIGH,
       tags: tuple[str, ...] = ()) -> Finding:
    return Finding(Rule(rid, "R", rid, tags=tags), f"{rid} here", sev, Location(path, line))


def test_three_secret_scanners_on_one_line_are_one_result_listing_all() -> None:
    [kept] = merge([_f("secret/github-token", tags=("secret",)), _f("gitleaks/github-pat", sev=Severity.MEDIUM),
                    _f("trivy/secret/github-pat", sev=Severity.CRITICAL, tags=("secret",))])
    props = dict(kept.properties)
    assert kept.rule.id == "trivy/secret/github-pat" and kept.severity is Severity.CRITICAL
    assert props["mlsec-tools"] == "trivy, mlsec-secrets, gitleaks"
    assert set(props["mlsec-rule-ids"].split(", ")) == {"secret/github-token", "gitleaks/github-pat",
                                                       "trivy/secret/github-pat"}


def test_kept_finding_takes_the_worst_severity_and_its_default_score() -> None:
    low = Finding(Rule("ml/pickle-load", "R", "x"), "m", Severity.MEDIUM, Location("a.py", 3), score=5.0)
    [kept] = merge([low, _f("bandit/B301", sev=Severity.HIGH)])
    assert kept.rule.id == "ml/pickle-load" and kept.severity is Severity.HIGH and kept.score is None
    [same] = merge([low])
    assert same.score == 5.0


def test_different_lines_files_or_issues_stay_apart() -> None:
    out = merge([_f("bandit/B301"), _f("bandit/B301", line=4), _f("bandit/B301", path="b.py"),
                 _f("bandit/B506"), _f("secret/x", tags=("secret",))])
    assert len(out) == 5


def test_findings_without_a_line_are_never_merged() -> None:
    assert len(merge([_f("trivy/vuln/CVE-1", line=None), _f("trivy/vuln/CVE-1", line=None)])) == 2


def test_equivalent_sast_ids_share_an_issue_and_tools_are_named_by_prefix() -> None:
    assert issue_of(_f("bandit/B301")) == issue_of(_f("ml/pickle-load")) == "pickle-load"
    assert issue_of(_f("bandit/B999")) == "bandit/B999"
    assert issue_of(_f("gitleaks/anything")) == "secret" == issue_of(_f("bandit/B106"))
    assert [tool_of(_f(r)) for r in ("secret/a", "ml/b", "trivy/c/d", "bandit/B1")] == [
        "mlsec-secrets", "mlsec-ml-sast", "trivy", "bandit"]


def test_overlapping_line_ranges_of_one_issue_merge_and_disjoint_ones_do_not() -> None:
    ours = Finding(Rule("secret/private-key", "R", "x", tags=("secret",)), "m", Severity.CRITICAL, Location("k", 1, 8))
    trivy = Finding(Rule("trivy/secret/private-key", "R", "x"), "m", Severity.HIGH, Location("k", 2, 7))
    later = Finding(Rule("trivy/secret/private-key", "R", "x"), "m", Severity.HIGH, Location("k", 9, 12))
    out = merge([ours, trivy, later])
    assert sorted((f.location.start_line, dict(f.properties)["mlsec-tools"]) for f in out) == [
        (2, "trivy, mlsec-secrets"), (9, "trivy")]
