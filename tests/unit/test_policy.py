"""Gate policies: loading, schema and semantic checks, errors that name file, line and key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest

from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity
from mlsec_actions.gate import policy
from mlsec_actions.gate.model import Selector, path_glob
from mlsec_actions.gate.policy import PolicyError

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
version: 1
required-stages: [code-scan, model-scan]
tool-errors: warn
waiver-max-days: 90
thresholds:
  - id: no-critical
    severity: critical
  - stage: [code-scan, "!data-*"]
    tool: trivy
    security-severity: 7.5
    max: 3
metrics:
  - id: accuracy
    stage: evaluate
    property: metrics.accuracy
    op: ">="
    value: 0.9
    missing: pass
waivers:
  - id: old-key
    rule: trivy/secret/*
    path: tests/**
    reason: fixture keys, not real
    owner: "@sec-team"
    expires: 2027-01-31
"""


def _write(tmp_path: Path, text: str, name: str = "policy.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_policy_loads_into_the_model(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    pol = policy.load(path)
    assert pol.path == str(path)
    assert pol.sha256 == hashlib.sha256(GOOD.encode()).hexdigest()
    assert pol.required_stages == ("code-scan", "model-scan")
    assert pol.required_line == 2
    assert pol.tool_errors_fail is False
    assert pol.waiver_max_days == 90
    first, second = pol.thresholds
    assert (first.id, first.severity, first.max, first.line) == ("no-critical", Severity.CRITICAL, 0, 6)
    assert (second.id, second.security_severity, second.max) == ("thresholds[1]", 7.5, 3)
    assert second.stage.matches("code-scan") and not second.stage.matches("data-scan")
    assert second.tool.matches("trivy") and not second.tool.matches("bandit")
    (metric,) = pol.metrics
    assert (metric.property, metric.op, metric.value, metric.missing_fails) == (("metrics", "accuracy"), ">=", 0.9,
                                                                                  False)
    (waiver,) = pol.waivers
    assert (waiver.id, waiver.owner, waiver.expires, waiver.line) == ("old-key", "@sec-team", dt.date(2027, 1, 31), 20)
    assert pol.warnings == ()


@pytest.mark.parametrize("name", policy.BUILTIN)
def test_builtin_policies_are_valid_and_fail_closed(name: str) -> None:
    pol = policy.load(name)
    assert pol.path == f"policies/{name}.yml"
    assert "code-scan" in pol.required_stages
    assert pol.tool_errors_fail
    assert any(t.severity is not None and t.severity <= Severity.HIGH and t.max == 0 for t in pol.thresholds)


def test_schema_is_a_valid_2020_12_schema_and_accepts_the_builtins() -> None:
    schema = json.loads((REPO / "policies" / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


WAIVER = "waivers:\n  - rule: trivy/*\n    owner: me\n    reason: accepted\n    expires: 2027-01-01\n"

# (policy text, expected problem: line and message fragment)
INVALID = [
    pytest.param("version: 2\n", "1: version: 1 was expected", id="wrong-version"),
    pytest.param("thresholds: []\n", "1: (top): 'version' is a required property", id="no-version"),
    pytest.param("version: 1\nthreshold: []\n", "2: threshold: unknown key (allowed: version, description",
                 id="unknown-top-key"),
    pytest.param("version: 1\nthresholds:\n  - severity: hgh\n", "3: thresholds[0].severity: 'hgh' is not one of",
                 id="bad-severity"),
    pytest.param("version: 1\nthresholds:\n  - max: -1\n", "3: thresholds[0].max: -1 is less than the minimum",
                 id="negative-max"),
    pytest.param("version: 1\nthresholds:\n  - security-severity: 11\n",
                 "3: thresholds[0].security-severity: 11 is greater than the maximum", id="score-over-10"),
    pytest.param("version: 1\n" + WAIVER.replace("    reason: accepted\n", ""),
                 "3: waivers[0]: 'reason' is a required property", id="waiver-without-reason"),
    pytest.param("version: 1\n" + WAIVER.replace("    owner: me\n", ""),
                 "3: waivers[0]: 'owner' is a required property", id="waiver-without-owner"),
    pytest.param("version: 1\n" + WAIVER.replace("    expires: 2027-01-01\n", ""),
                 "3: waivers[0]: 'expires' is a required property", id="waiver-without-expiry"),
    pytest.param("version: 1\n" + WAIVER.replace("reason: accepted", "reason: '  '"),
                 "5: waivers[0].reason: must not be blank", id="blank-reason"),
    pytest.param("version: 1\n" + WAIVER.replace("2027-01-01", "2027-02-30"),
                 "6: waivers[0].expires: '2027-02-30' is not a 'date'", id="impossible-date"),
    pytest.param("version: 1\n" + WAIVER.replace("2027-01-01", "next year"),
                 "6: waivers[0].expires: 'next year' is not a 'date'", id="words-for-date"),
    pytest.param("version: 1\n" + WAIVER.replace("rule: trivy/*", "stage: code-scan"),
                 "3: waivers[0]: a waiver needs at least one of 'rule', 'fingerprint', 'path'",
                 id="waiver-matching-everything"),
    pytest.param("version: 1\nmetrics:\n  - stage: evaluate\n    property: acc\n    op: '>='\n    value: high\n",
                 "6: metrics[0].value: '>=' needs a number", id="ordering-a-string"),
    pytest.param("version: 1\nmetrics:\n  - stage: evaluate\n    property: acc\n    op: '=>'\n    value: 1\n",
                 "5: metrics[0].op: '=>' is not one of", id="bad-operator"),
    pytest.param("version: 1\nthresholds:\n  - max: 1\n    max: 2\n", "4: thresholds[0].max: duplicate key",
                 id="duplicate-key"),
    pytest.param("version: 1\nthresholds: [\n", "3: not valid YAML", id="truncated-yaml"),
    pytest.param("version: 1\nthresholds:\n  - id: a\n  - id: a\n", "a: id used more than once", id="duplicate-id"),
    pytest.param("- 1\n", "1: (top): [1] is not of type 'object'", id="not-a-mapping"),
]


@pytest.mark.parametrize(("text", "problem"), INVALID)
def test_invalid_policies_name_file_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        policy.load(path)
    assert any(p.startswith(f"{path}:") and problem in p for p in caught.value.problems), caught.value.problems
    assert caught.value.diagnostics().startswith(f"{path}:")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nthresholds:\n  - severity: hgh\n    max: -1\n" + WAIVER.replace(
        "    owner: me\n", ""))
    with pytest.raises(PolicyError) as caught:
        policy.load(path)
    assert [p.split(": ", 2)[1] for p in caught.value.problems] == [
        "thresholds[0].severity", "thresholds[0].max", "waivers[0]"]
    assert "(and 2 more" in caught.value.diagnostics()


@pytest.mark.parametrize(("text", "problem"), [
    ("required-stages: [code-scan, evalute]\n", ":2: required-stages[1]: 'evalute' names no stage"),
    ("thresholds:\n  - stage: [codescan, 'data-*']\n", ":3: thresholds[0].stage: 'codescan' names no stage"),
    ("thresholds:\n  - stage: '['\n", ":3: thresholds[0].stage: '[' names no stage"),
    ("thresholds:\n  - stage: ['*', '!nothing-*']\n", ":3: thresholds[0].stage: 'nothing-*' names no stage"),
    ("metrics:\n  - {stage: evalute, property: a, op: '>', value: 1}\n", ":3: metrics[0].stage: 'evalute'"),
    ("waivers:\n  - {rule: trivy/x, stage: 'mdl-*', reason: a long reason, owner: me, expires: 2026-07-01}\n",
     ":3: waivers[0].stage: 'mdl-*' names no stage"),
])
def test_stage_names_must_name_catalog_stages(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, "version: 1\n" + text)
    with pytest.raises(PolicyError) as caught:
        policy.load(path)
    assert caught.value.problems[0].startswith(str(path) + problem), caught.value.problems


def test_stage_globs_that_match_a_stage_load(tmp_path: Path) -> None:
    pol = policy.load(_write(tmp_path, "version: 1\nrequired-stages: [code-scan, evaluate]\nthresholds:\n"
                                       "  - stage: ['*', '!data-*', 'model-sc?n']\n"))
    assert pol.required_stages == ("code-scan", "evaluate") and pol.warnings == ()


def test_unreadable_policy_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read policy"):
        policy.load(tmp_path / "missing.yml")


@pytest.mark.parametrize(("patterns", "name", "expected"), [
    (("*",), "code-scan", True),
    (("code-*",), "code-scan", True),
    (("code-*",), "model-scan", False),
    (("*", "!model-*"), "model-scan", False),
    (("*", "!model-*"), "data-scan", True),
    (("!model-scan",), "code-scan", True),
    (("a", "b"), "b", True),
])
def test_selector(patterns: tuple[str, ...], name: str, expected: bool) -> None:
    assert Selector(patterns).matches(name) is expected


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("src/*.py", "src/app.py", True),
    ("src/*.py", "src/pkg/app.py", False),
    ("src/**", "src/pkg/app.py", True),
    ("**/test_*.py", "test_x.py", True),
    ("**/test_*.py", "a/b/test_x.py", True),
    ("tests/**/*.json", "tests/data/x.json", True),
    ("tests/**/*.json", "tests/x.json", True),
    ("Dockerfile", "app/Dockerfile", False),
    ("app/?.py", "app/a.py", True),
    ("a.b", "axb", False),
])
def test_path_glob(pattern: str, path: str, expected: bool) -> None:
    assert (path_glob(pattern).match(path) is not None) is expected


def test_the_docs_example_policy_is_valid(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "gate.md").read_text()
    examples = [b for b in re.findall(r"```yaml\n(.*?)```", docs, re.S) if "version: 1" in b]
    assert examples
    for i, text in enumerate(examples):
        assert policy.load(_write(tmp_path, text, f"example{i}.yml")).warnings == ()
