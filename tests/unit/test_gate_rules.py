"""The gate's rule functions called directly, each assertion killing a mutant the mutmut sweep found alive
(tests/mutation/sweep.py, group gate-rules): the exact texts users and alerts read, type edge cases of
metric values, and the waiver matcher's corner cases."""

from __future__ import annotations

import datetime as dt

import pytest

from mlsec_actions.findings import Severity
from mlsec_actions.gate import rules
from mlsec_actions.gate.input import Hit
from mlsec_actions.gate.model import MetricRule, Waiver

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
