"""evaluate's pure parts: metrics files as hostile data, the policy's bounds, regression direction, and the
policy's evaluate section (NaN bounds refused)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mlsec_actions.analyzers import metrics as mx
from mlsec_actions.analyzers import metrics_checks as checks
from mlsec_actions.errors import InputError


def test_plain_nested_and_fold_metrics() -> None:
    assert mx.parse({"accuracy": 0.9, "n": 3}, "m").values == {"accuracy": 0.9, "n": 3.0}
    assert mx.parse({"metrics": {"f1": 0.5}}, "m").values == {"f1": 0.5}
    folds = mx.parse({"auc": [0.8, 0.9, 1.0]}, "m")
    assert folds.values == {"auc": pytest.approx(0.9)} and folds.folds == {"auc": (0.8, 0.9, 1.0)}


@pytest.mark.parametrize(("value", "why"), [
    (float("nan"), "NaN"), (float("inf"), "infinite"), (-float("inf"), "infinite"), (True, "not a number (bool)"),
    ("0.99", "not a number (str)"), (None, "not a number (NoneType)"), ({"x": 1}, "not a number (dict)"),
    ([], "needs 1 to"), ([0.5, float("nan")], "fold NaN"), ([1e308, 1e308], "folds overflow"),
    (10**400, "infinite"), ([0.5, 10**400], "fold infinite"),  # a JSON integer past the float range
])
def test_unusable_values_are_invalid_never_metrics(value: object, why: str) -> None:
    got = mx.parse({"accuracy": value}, "m")
    assert got.values == {}
    assert got.invalid[0][0] == "accuracy" and why in got.invalid[0][1]


@pytest.mark.parametrize("name", ["", "bad name", "a" * 65, "x\n::error::y", "-lead", "ümlaut"])
def test_names_outside_the_pattern_are_invalid(name: str) -> None:
    got = mx.parse({name: 0.5}, "m")
    assert got.values == {} and len(got.invalid) == 1
    assert "\n" not in got.invalid[0][0] or len(got.invalid[0][0]) <= 63


def test_not_a_mapping_and_too_many_metrics_are_bad_input() -> None:
    with pytest.raises(InputError, match="mapping"):
        mx.parse([0.9], "m.json")
    with pytest.raises(InputError, match="limit"):
        mx.parse({f"m{i}": 1 for i in range(mx.MAX_METRICS + 1)}, "m.json")


def test_json_nan_literal_and_deep_nesting_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"accuracy": NaN, "f1": Infinity, "ok": 1}')
    got = mx.load(path)
    assert got.values == {"ok": 1.0} and {n for n, _ in got.invalid} == {"accuracy", "f1"}
    path.write_text('{"metrics": ' + "[" * 50 + "]" * 50 + "}")
    with pytest.raises(InputError, match="nested deeper"):
        mx.load(path)
    yml = tmp_path / "m.yaml"
    yml.write_text("accuracy: .nan\nloss: .inf\nf1: 0.5\n")
    got = mx.load(yml)
    assert got.values == {"f1": 0.5} and len(got.invalid) == 2


@pytest.mark.parametrize(("name", "lower"), [("loss", True), ("val_loss", True), ("rmse", True), ("error_rate", True),
                                             ("accuracy", False), ("f1", False), ("lossless_ratio", False)])
def test_direction_from_the_name(name: str, lower: bool) -> None:
    assert mx.better_is_lower(name) is lower
    assert mx.better_is_lower(name, "higher") is False and mx.better_is_lower(name, "lower") is True


def _policy(**bounds: checks.Bound) -> checks.EvaluatePolicy:
    return checks.EvaluatePolicy(source="p.yml", bounds=bounds)


def test_floor_ceiling_and_exact_boundaries() -> None:
    pol = _policy(accuracy=checks.Bound(min=0.9), rmse=checks.Bound(max=2.0))
    assert checks.bounds(pol, {"accuracy": 0.9, "rmse": 2.0}, {}, {}, []) == []  # bounds are inclusive
    got = checks.bounds(pol, {"accuracy": 0.8999, "rmse": 2.0001}, {}, {"accuracy": "m.json"}, [])
    assert [f.rule.id for f in got] == ["evaluate/metric-below-min", "evaluate/metric-above-max"]
    assert "0.8999" in got[0].message and "0.9" in got[0].message and got[0].location.path == "m.json"


def test_regression_in_each_direction() -> None:
    pol = _policy(accuracy=checks.Bound(max_drop=0.05), rmse=checks.Bound(max_drop=0.1))
    ok = checks.bounds(pol, {"accuracy": 0.85, "rmse": 1.1}, {"accuracy": 0.9, "rmse": 1.0}, {}, [])
    assert ok == []  # exactly the allowed drop (0.05 / 0.1 within float error) passes
    bad = checks.bounds(pol, {"accuracy": 0.80, "rmse": 1.2}, {"accuracy": 0.9, "rmse": 1.0}, {}, [])
    assert [f.rule.id for f in bad] == ["evaluate/regression"] * 2
    assert "0.8 against the baseline's 0.9: worse by 0.1" in bad[0].message
    better = checks.bounds(pol, {"accuracy": 0.99, "rmse": 0.5}, {"accuracy": 0.9, "rmse": 1.0}, {}, [])
    assert better == []  # improving is never a regression, in either direction


def test_missing_metric_fails_or_notes() -> None:
    pol = _policy(auc=checks.Bound(min=0.7), f1=checks.Bound(max_drop=0.1))
    got = checks.bounds(pol, {"f1": 0.9}, {}, {}, [])
    assert [f.rule.id for f in got] == ["evaluate/metric-missing", "evaluate/metric-missing"]
    notes: list[str] = []
    lenient = checks.EvaluatePolicy(source="p.yml", bounds=pol.bounds, missing_fails=False)
    assert checks.bounds(lenient, {"f1": 0.9}, {}, {}, notes) == [] and len(notes) == 2


def test_policy_section_refuses_non_finite_bounds() -> None:
    got = checks.from_section({"metrics": {"accuracy": {"min": 0.9, "direction": "higher"}},
                               "fairness": {"sensitive-column": "g", "max-demographic-parity-difference": 0.1},
                               "robustness": {"min-accuracy": 0.5, "attack": "hopskipjump", "epsilon": 0.3}}, "p")
    assert got.bounds["accuracy"] == checks.Bound(min=0.9, direction="higher")
    assert got.fairness_column == "g" and got.robustness is not None and got.robustness.attack == "hopskipjump"
    for bad in (math.nan, math.inf):
        with pytest.raises(InputError, match="finite"):
            checks.from_section({"metrics": {"accuracy": {"min": bad}}}, "p.yml")


def test_fairness_and_robustness_findings_carry_numbers() -> None:
    pol = checks.EvaluatePolicy(source="p", fairness_column="g", max_demographic_parity=0.1, max_equalized_odds=0.2,
                                min_robust_accuracy=0.7)
    assert checks.fairness(pol, 0.1, 0.2, "p.csv") == []
    got = checks.fairness(pol, 0.25, 0.3, "p.csv")
    assert [f.rule.id for f in got] == ["evaluate/demographic-parity", "evaluate/equalized-odds"]
    assert "0.25" in got[0].message
    assert checks.robustness(pol, {"attacked_accuracy": 0.7, "clean_accuracy": 0.9}, "m") == []
    low = checks.robustness(pol, {"attacked_accuracy": 0.5, "clean_accuracy": 0.9, "attack": "noise",
                                  "epsilon": 0.1, "samples": 10}, "m")
    assert low[0].rule.id == "evaluate/robustness" and "0.5" in low[0].message
    assert checks.robustness(pol, {"attacked_accuracy": math.nan}, "m")[0].rule.id == "evaluate/metric-invalid"
    assert checks.robustness(pol, {"refused": "not a skops file"}, "m")[0].rule.id == "evaluate/model-refused"
    json.dumps([f.message for f in low])
