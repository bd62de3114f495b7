"""The SARIF validator the whole suite relies on really rejects what GitHub would reject."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import sarif
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult
from tests import sarif_validation

RULE = Rule(id="demo/r", name="R", short_description="r")


def _good(tmp_path: Path) -> dict:  # type: ignore[type-arg]
    (tmp_path / "a.py").write_text("key = 1\n")
    result = StageResult("code-scan", (Finding(RULE, "m", Severity.HIGH, Location("a.py", 1)),))
    return sarif.to_sarif(result, tmp_path)


def test_our_sarif_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "good.sarif.check"
    path.write_text(json.dumps(_good(tmp_path)))
    assert sarif_validation.validate([path]) == {}


def _break_level(doc: dict) -> None:  # type: ignore[type-arg]
    doc["runs"][0]["results"][0]["level"] = "fatal"


def _break_message(doc: dict) -> None:  # type: ignore[type-arg]
    doc["runs"][0]["results"][0]["message"] = {"id": "nope", "arguments": []}


def _break_uri(doc: dict) -> None:  # type: ignore[type-arg]
    doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "file:///etc/x"


def _break_fingerprint(doc: dict) -> None:  # type: ignore[type-arg]
    del doc["runs"][0]["results"][0]["partialFingerprints"]


@pytest.mark.parametrize(("breaker", "expected"), [
    (_break_level, "schema:"),
    (_break_message, "multitool GH"),
    (_break_uri, "not repository-relative"),
    (_break_fingerprint, "no primaryLocationLineHash"),
])
def test_validator_rejects_broken_sarif(tmp_path: Path, breaker, expected: str) -> None:  # type: ignore[no-untyped-def]
    doc = _good(tmp_path)
    breaker(doc)
    path = tmp_path / "broken.sarif.bad"
    path.write_text(json.dumps(doc))
    problems = sarif_validation.validate([path])
    assert path.resolve() in problems, problems
    assert any(expected in p for p in problems[path.resolve()]), problems
