"""`mlsec notebook-scan` as a process on a tree the test builds: the corpus notebook beside hostile ones
(a huge output, deep JSON, a non-UTF-8 file name, workflow commands and HTML in cells, a symlink out of
the tree). The SARIF (validated by the session hook) has every planted value at its line, the log and the
job summary carry no planted value, no workflow command and no HTML from the notebooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import notebook_corpus
from tests.secret_corpus import values, windows

pytestmark = pytest.mark.integration


def _nb(cells: list[dict[str, object]]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}, indent=1)


def _md(text: str) -> dict[str, object]:
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("nbscan")
    root = base / "repo"
    (root / "notebooks").mkdir(parents=True)
    path, expected = notebook_corpus.build(root / "notebooks")
    token = values(41)["github-token"]
    hostile = [_md(f"::error file=x::owned {token}\n"), _md("::add-mask::x\n<img src=x onerror=alert(1)>\n"),
               _md("[click](https://evil.test/) <script>alert(1)</script>\n")]
    (root / "notebooks" / "hostile.ipynb").write_text(_nb(hostile), encoding="utf-8")
    huge = {"cell_type": "code", "execution_count": 1, "metadata": {}, "source": ["print(x)\n"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["y" * 1000 + "\n"] * 3000}]}
    (root / "notebooks" / "huge.ipynb").write_text(_nb([huge]), encoding="utf-8")
    (root / "deep.ipynb").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (root / "<b>[x](https:evil.test)<i>.ipynb").write_text("{oops", encoding="utf-8")
    (root / "outside.ipynb").symlink_to("/etc/passwd")
    (root / os.fsdecode(b"caf\xe9-\xff.ipynb")).write_bytes(b"not json")
    sarif, summary = base / "out" / "notebook-scan.sarif", base / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_"))}
    env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(base / "gh-output"), MLSEC_RUN_ID="r-1")
    exe = str(Path(sys.executable).parent / "mlsec")
    proc = subprocess.run([exe, "notebook-scan", str(root), "--sarif", str(sarif), "--max-output-kb", "256",
                           "--source-root", str(root)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    return {"proc": proc, "sarif": sarif, "summary": summary, "path": path, "expected": expected, "token": token,
            "doc": json.loads(sarif.read_text()) if sarif.is_file() else {}}


def _results(scanned: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for run in scanned["doc"]["runs"] for r in run.get("results", [])]


def test_exit_code_and_every_planted_value_at_its_line(scanned: dict[str, Any]) -> None:
    assert scanned["proc"].returncode == 0, scanned["proc"].stderr
    got = set()
    for r in _results(scanned):
        loc = r["locations"][0]
        logical = (loc.get("logicalLocations") or [{}])[0].get("fullyQualifiedName")
        got.add((r["ruleId"], loc["physicalLocation"]["artifactLocation"]["uri"],
                 loc["physicalLocation"].get("region", {}).get("startLine"), logical))
    for e in scanned["expected"]:
        want = (e.rule, "notebooks/analysis.ipynb", notebook_corpus.line_of(scanned["path"], e.value), e.logical)
        assert want in got, want
    hostile = {(rule, line) for rule, uri, line, _ in got if uri == "notebooks/hostile.ipynb"}
    token_line = notebook_corpus.line_of(scanned["path"].parent / "hostile.ipynb", scanned["token"])
    assert ("secret/github-token", token_line) in hostile, hostile


def test_hostile_notebooks_are_findings_and_gaps(scanned: dict[str, Any]) -> None:
    by_uri: dict[str, set[str]] = {}
    for r in _results(scanned):
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        by_uri.setdefault(uri, set()).add(r["ruleId"])
    assert "notebook/malformed" in by_uri["deep.ipynb"]
    assert "notebook/too-large" in by_uri["notebooks/huge.ipynb"]
    assert sum("notebook/malformed" in rules for uri, rules in by_uri.items() if uri.startswith("caf")) == 1
    gaps = scanned["doc"]["runs"][0]["properties"]["mlsec-coverage"]["gaps"]
    assert any(g.get("path") == "outside.ipynb" for g in gaps), gaps
    assert any(g["kind"] == "limit-reached" and g.get("path") == "notebooks/huge.ipynb" for g in gaps)


def test_no_value_command_or_markup_leaks(scanned: dict[str, Any]) -> None:
    outputs = scanned["sarif"].read_text() + scanned["proc"].stderr + scanned["proc"].stdout
    summary = scanned["summary"].read_text()
    planted = [*notebook_corpus.planted_values(scanned["expected"]), scanned["token"]]
    for value in planted:
        assert not [w for w in windows(value, 10) if w in outputs + summary], value
    log = scanned["proc"].stderr
    assert "::error file" not in log and "::add-mask" not in log
    for bad in ("<img", "<script", "<b>", "](https"):
        assert bad not in summary, summary
