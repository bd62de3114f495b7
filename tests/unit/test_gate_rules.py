"""The gate's rule functions called directly, each assertion killing a mutant the mutmut sweep found alive
(tests/mutation/sweep.py, group gate-rules): the exact texts users and alerts read, type edge cases of
metric values, and the waiver matcher's corner cases."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from mlsec_actions.findings import Severity
from mlsec_actions.gate import coverage as cov
from mlsec_actions.gate import rules
from mlsec_actions.gate.input import Hit
from mlsec_actions.gate.model import MetricRule, Selector, Threshold, Waiver

TODAY = dt.date(2026, 6, 1)


def metric(op: str = ">=", value: float | str | bool = 0.9, missing_fails: bool = True,
           prop: tuple[str, ...] = ("metrics", "accuracy")) -> MetricRule:
    return MetricRule(id="acc", stage="evaluate", property=prop, op=op, value=value, missing_fails=missing_fails,
                      line=7)


def test_metric_missing_messages_name_the_stage_and_the_dotted_property() -> None:
    (none,) = rules.metric(metric(), [], "p.yml")
    assert none == rules.Violation("metric-missing", "metric acc: stage evaluate produced no SARIF", "acc",
                                   "evaluate", "p.yml", 7)
    (absent,) = rules.metric(metric(), [("e.sarif", {"metrics": {"auc": 1}})], "p.yml")
    assert absent.message == "metric acc: stage evaluate has no property metrics.accuracy"
    assert list(rules.metric(metric(missing_fails=False), [], "p.yml")) == []


@pytest.mark.parametrize(("value", "passes"), [("0.95", True), ("0.85", False), ("high", False), (None, False),
                                               ([0.95], False), ({"v": 1}, False), (True, False), (0.9, True)])
def test_metric_values_of_every_type_compare_as_numbers_or_fail(value: object, passes: bool) -> None:
    """A number sent as text compares as a number; anything else that is not a number fails, never crashes."""
    got = list(rules.metric(metric(), [("e.sarif", {"metrics": {"accuracy": value}})], "p.yml"))
    assert (got == []) is passes, got
    if not passes:
        assert got[0].kind == "metric" and f"= {value!r}, needs >= 0.9 (e.sarif)" in got[0].message


def test_metric_equality_keeps_strings_and_numbers_apart() -> None:
    fmt = metric(op="!=", value="pickle", prop=("model", "format"))
    assert list(rules.metric(fmt, [("s", {"model": {"format": "onnx"}})], "p")) == []
    assert [v.kind for v in rules.metric(fmt, [("s", {"model": {"format": "pickle"}})], "p")] == ["metric"]
    assert list(rules.metric(metric(op="==", value=1), [("s", {"metrics": {"accuracy": "1.0"}})], "p")) == []


def hit(path: str, rule: str = "trivy/secret/x") -> Hit:
    return Hit(rule, "trivy", Severity.HIGH, 0.0, None, path, 1, "m")


def test_waiver_path_answers_are_per_path_not_cached_across_paths() -> None:
    w = rules.Waivers((Waiver("w", "r", "o", TODAY, rule="trivy/*", path="tests/**"),), TODAY)
    assert w.waived("code-scan", hit("tests/a.py"))
    assert not w.waived("code-scan", hit("src/a.py"))
    assert w.waived("code-scan", hit("tests/b/c.py"))
    assert not w.waived("code-scan", hit("src/a.py"))
    assert w.matched == [2]


def test_metric_violation_carries_every_field() -> None:
    (v,) = rules.metric(metric(), [("evaluate.sarif", {"metrics": {"accuracy": 0.5}})], "p.yml")
    assert v == rules.Violation("metric", "metric acc: evaluate metrics.accuracy = 0.5, needs >= 0.9 "
                                "(evaluate.sarif)", "acc", "evaluate", "p.yml", 7)


@pytest.mark.parametrize(("op", "value", "expected", "passes"), [
    ("==", "onnx", "onnx", True), ("==", "onnx", "pickle", False), ("!=", "x", 1, True), ("==", "x", 1, False),
    ("==", "1.0", 1, True), ("!=", "1.0", 1, False), ("==", 2, "2", True), ("<", "0.1", 0.2, True)])
def test_equality_compares_as_numbers_only_when_both_sides_are_numbers(op: str, value: object, expected: object,
                                                                       passes: bool) -> None:
    rule = metric(op=op, value=expected)  # type: ignore[arg-type]
    got = list(rules.metric(rule, [("s", {"metrics": {"accuracy": value}})], "p"))
    assert (got == []) is passes, got


@pytest.mark.parametrize(("uri", "path"), [("file://tests/a.py", "tests/a.py"), ("./tests/a.py", "tests/a.py"),
                                           ("tests/x%20y.py", "tests/x y.py"), ("a./", "a./"),
                                           ("file://./t/b.py", "t/b.py"), ("src/file://", "src/file://")])
def test_normal_path_strips_only_leading_scheme_and_dot_slash(uri: str, path: str) -> None:
    assert rules.normal_path(uri) == path


def test_waiver_candidates_are_cached_per_stage_and_rule() -> None:
    """A waiver of one rule must not apply to another rule's finding met later (nor in another stage)."""
    w = rules.Waivers((Waiver("w", "r", "o", TODAY, rule="trivy/secret/a", stage="code-scan"),), TODAY)
    assert w.waived("code-scan", hit("x.py", rule="trivy/secret/a"))
    assert not w.waived("code-scan", hit("x.py", rule="trivy/secret/b"))
    assert not w.waived("model-scan", hit("x.py", rule="trivy/secret/a"))
    assert w.waived("code-scan", hit("y.py", rule="trivy/secret/a"))


def fp_hit(fingerprint: str | None, path: str = "x.py", rule: str = "trivy/secret/a") -> Hit:
    return Hit(rule, "trivy", Severity.HIGH, 0.0, fingerprint, path, 1, "m")


def test_a_fingerprint_waiver_waives_only_that_finding_and_lets_later_waivers_match() -> None:
    w = rules.Waivers((Waiver("by-fp", "r", "o", TODAY, fingerprint="f1"),), TODAY)
    assert w.waived("code-scan", fp_hit("f1")) and not w.waived("code-scan", fp_hit("f2"))
    assert not w.waived("code-scan", fp_hit(None))
    both = rules.Waivers((Waiver("by-fp", "r", "o", TODAY, fingerprint="f1"),
                          Waiver("by-rule", "r", "o", TODAY, rule="trivy/secret/a")), TODAY)
    assert both.waived("code-scan", fp_hit("f2")) and both.matched == [0, 1]


def test_a_path_miss_lets_a_later_waiver_match() -> None:
    w = rules.Waivers((Waiver("tests", "r", "o", TODAY, rule="trivy/*", path="tests/**"),
                       Waiver("src", "r", "o", TODAY, rule="trivy/*", path="src/**")), TODAY)
    assert w.waived("code-scan", fp_hit(None, "src/a.py")) and w.matched == [0, 1]


def test_expired_waivers_waive_nothing_and_count_each_match_on_the_first() -> None:
    old = TODAY - dt.timedelta(days=1)
    w = rules.Waivers((Waiver("old1", "r", "o", old, rule="trivy/*"), Waiver("old2", "r", "o", old, rule="trivy/*"),
                       Waiver("live", "r", "o", TODAY, rule="other/*")), TODAY)
    assert w.active == [False, False, True]
    assert not w.waived("code-scan", fp_hit(None)) and not w.waived("code-scan", fp_hit(None, "y.py"))
    assert w.matched == [2, 0, 0]


def threshold(severity: Severity | None = Severity.HIGH, security: float | None = None, max_: int = 0,
              stage: tuple[str, ...] = ("*",)) -> Threshold:
    return Threshold(id="t", stage=Selector(stage), tool=Selector(), severity=severity, security_severity=security,
                     max=max_, line=3)


def tally(*rows: tuple[str, str, Severity, float, int]) -> rules.Tally:
    out: rules.Tally = Counter()
    for stage, tool, sev, score, n in rows:  # insertion order is the order threshold() meets them in
        out[(stage, tool, f"{tool}/x", sev, score)] = n
    return out


def test_threshold_counts_every_row_past_ones_below_the_bar_and_sums_tools_of_a_stage() -> None:
    agg = tally(("code-scan", "bandit", Severity.LOW, 2.0, 5), ("code-scan", "trivy", Severity.HIGH, 8.0, 2),
                ("code-scan", "gitleaks", Severity.CRITICAL, 9.5, 3))
    v = rules.threshold(threshold(), agg, "p.yml")
    assert v == rules.Violation("threshold", "5 findings at severity high or above (max 0; code-scan: 5)", "t",
                                "code-scan", "p.yml", 3)
    assert rules.threshold(threshold(max_=5), agg, "p.yml") is None


def test_security_severity_bar_is_inclusive_and_skipping_does_not_stop_the_count() -> None:
    agg = tally(("model-scan", "x", Severity.HIGH, 6.9, 1), ("model-scan", "x", Severity.HIGH, 7.0, 1),
                ("code-scan", "y", Severity.HIGH, 9.0, 2))
    v = rules.threshold(threshold(severity=None, security=7.0), agg, "p.yml")
    assert v is not None and v.message == "3 findings at security-severity >= 7.0 (max 0; code-scan: 2, model-scan: 1)"
    assert v.stage is None  # two stages: the violation is not about one
    both = rules.threshold(threshold(security=7.0), agg, "p.yml")
    assert both is not None and both.message.startswith("3 findings at severity high or above and security-severity")
    anything = rules.threshold(threshold(severity=None), agg, "p.yml")
    assert anything is not None and anything.message.startswith("4 findings at any severity (max 0; ")


def test_waiver_violations_carry_every_field() -> None:
    old = Waiver("w1", "r", "ann", dt.date(2026, 5, 1), rule="x", stage="code-scan", line=9)
    assert list(rules.waiver_violations(old, False, TODAY, 90, "p.yml")) == [rules.Violation(
        "waiver-expired", "waiver w1 (owner ann) expired on 2026-05-01", "w1", "code-scan", "p.yml", 9)]
    far = Waiver("w2", "r", "ann", TODAY + dt.timedelta(days=91), rule="x", stage="code-scan", line=11)
    assert list(rules.waiver_violations(far, True, TODAY, 90, "p.yml")) == [rules.Violation(
        "waiver-too-long", "waiver w2 expires in 91 days; the policy allows at most 90", "w2", "code-scan",
        "p.yml", 11)]


def _coverage(*gaps: cov.Gap, stage: str = "code-scan", extra: int = 0) -> tuple[cov.StageCoverage, ...]:
    tally = cov.CoverageTally()
    tally.add(stage, gaps, len(gaps) + extra)
    return tally.result()


def test_a_required_coverage_gap_is_a_violation_with_every_field() -> None:
    gap = cov.Gap("trivy", "vulnerabilities-not-scanned", "no DB")
    (v,), warnings = rules.coverage_violations(_coverage(gap, gap), False, ("vulnerabilities",), "p.yml", 4)
    assert warnings == []
    assert v == rules.Violation("coverage-required", "code-scan: trivy: vulnerabilities-not-scanned: no DB (and 1 "
                                "more); the policy requires vulnerabilities: scanned",
                                "coverage.require.vulnerabilities", "code-scan", "p.yml", 4)


def test_other_gaps_warn_or_fail_by_policy_and_unlisted_ones_count() -> None:
    gap = cov.Gap("bandit", "file-skipped", "too big", "a.py")
    none, warnings = rules.coverage_violations(_coverage(gap), False, (), "p.yml", 4)
    assert none == [] and warnings == ["not covered: code-scan: bandit: file-skipped: too big (a.py)"]
    (v,), _ = rules.coverage_violations(_coverage(gap), True, (), "p.yml", 4)
    assert v == rules.Violation("coverage-gap", "code-scan: bandit: file-skipped: too big (a.py); the policy fails "
                                "on coverage gaps", "coverage.gaps", "code-scan", "p.yml", 4)
    # Gaps counted but not listed have no known kind: under a requirement they cannot show it was met.
    listed, unlisted = rules.coverage_violations(_coverage(gap, extra=1), False, ("vulnerabilities",), "p.yml", 4)
    assert [(x.kind, x.stage) for x in listed] == [("coverage-required", "code-scan")] and unlisted == [
        "not covered: code-scan: bandit: file-skipped: too big (a.py)"]
    assert listed[0].message.startswith("code-scan: 1 more coverage gap(s) counted but not listed in its SARIF; ")
