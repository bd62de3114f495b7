"""Unit tests of the upload-sarif stand-in's checks (so a passing e2e upload means something)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).parent / "standins" / "codeql-action" / "upload-sarif" / "receive_sarif.py"


@pytest.fixture(scope="module")
def receiver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("receive_sarif", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sarif(**run: Any) -> dict[str, Any]:
    base = {"tool": {"driver": {"name": "mlsec"}}, "results": [],
            "automationDetails": {"id": "mlsec/code-scan/"}}
    return {"version": "2.1.0", "runs": [{**base, **run}]}


def test_accepts_a_matching_upload(receiver: ModuleType) -> None:
    assert receiver.check(_sarif(), "mlsec/code-scan") == []
    assert receiver.check(_sarif(automationDetails=None), "mlsec/code-scan") == []


@pytest.mark.parametrize(("doc", "problem"), [
    ({"version": "2.0.0", "runs": _sarif()["runs"]}, "version"),
    ({"version": "2.1.0", "runs": []}, "runs is missing or empty"),
    (_sarif(tool={}), "tool.driver.name"),
    (_sarif(results=None), "results is not a list"),
    (_sarif(automationDetails={"id": "mlsec/model-scan/"}), "does not match category"),
    ([], "not a JSON object"),
])
def test_rejects(receiver: ModuleType, doc: Any, problem: str) -> None:
    problems = receiver.check(doc, "mlsec/code-scan")
    assert any(problem in p for p in problems), problems
