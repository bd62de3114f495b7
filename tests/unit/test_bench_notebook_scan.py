"""benchmarks/notebook_scan.py's scoring: NB Defense's report read from a real one (tests/fixtures/nbdefense,
produced by NB Defense 1.0.5 on the benchmark's one-notebook corpus; its `scrubbed_content` fields, partly
scrubbed copies of the planted values that the benchmark never reads, are replaced by a placeholder), and mlsec's
SARIF from a real `mlsec notebook-scan` run on the same corpus."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import notebook_scan as nb

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "nbdefense" / "report-1-notebook.json"
SECRET, PII = frozenset({"secret"}), frozenset({"pii"})


def _sample() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return doc


def test_real_report_scored_by_place(tmp_path: Path) -> None:
    planted, _ = nb.build(tmp_path, 1)
    findings, errors = nb.read_nbdefense(_sample())
    score = nb.score_nbdefense(planted, findings, SECRET)
    assert score.found == 2 and score.false_positives == 0, score
    assert sorted(m.split()[1] for m in score.missed) == ["secret/anthropic-api-key", "secret/openai-api-key",
                                                          "secret/wandb-api-key"]
    assert nb.score_nbdefense(planted, findings, PII) == nb.Score(0, tuple(
        f"nb000.ipynb {p.rule} {p.logical}" for p in planted if p.kind == "pii"), 0)
    assert any(e.startswith("PII Plugin: ") and "en_core_web_trf" in e for e in errors), errors


def test_a_finding_elsewhere_is_a_false_positive_not_a_hit(tmp_path: Path) -> None:
    planted, _ = nb.build(tmp_path, 1)
    findings, _ = nb.read_nbdefense(_sample())
    moved = [dataclasses.replace(f, line=(f.line or 0) + 1) for f in findings]
    assert nb.score_nbdefense(planted, moved, SECRET) == nb.Score(0, nb.score_nbdefense(
        planted, [], SECRET).missed, 2)
    before = [dataclasses.replace(f, column=0) for f in findings]  # the right line, left of the value
    assert nb.score_nbdefense(planted, before, SECRET).found == 0
    other_kind = [dataclasses.replace(f, kind="pii") for f in findings]
    assert nb.score_nbdefense(planted, other_kind, SECRET).found == 0
    assert nb.score_nbdefense(planted, other_kind, PII).false_positives == 2
    # One finding finds one value: two planted values on one line are not both found by one issue.
    card = next(p for p in planted if p.rule == "pii/payment-card")
    one = nb.Finding(card.notebook, "pii", 2, 0, "STREAM", card.text_line, card.span[0] if card.span else None)
    assert nb.score_nbdefense(planted, [one], PII).found == 1


def test_bundles_match_only_the_cell_nbdefense_makes_of_them(tmp_path: Path) -> None:
    planted, _ = nb.build(tmp_path, 1)
    table = nb.Finding("nb000.ipynb", "pii", 1, 3, "DATAFRAME", 0, 0)
    assert nb.score_nbdefense(planted, [table], PII).found == 1  # the IBAN in the HTML table
    in_json = nb.Finding("nb000.ipynb", "secret", 1, 3, "DATAFRAME", 0, 0)
    assert nb.score_nbdefense(planted, [in_json], SECRET) == nb.Score(
        0, nb.score_nbdefense(planted, [], SECRET).missed, 1)  # the wandb key is in application/json, not the table


@pytest.mark.parametrize("change", [
    lambda d: d["notebook_issues"][0]["issues"][0].update(code="CVE"),
    lambda d: d["notebook_issues"][0]["issues"][0]["cell"].update(cell_index="1"),
    lambda d: d["notebook_issues"][0]["issues"][0].update(line_index=True),
    lambda d: d["notebook_issues"][0]["issues"][0]["cell"].update(cell_index=None),
    lambda d: d.pop("notebook_issues"),
    lambda d: d["notebook_issues"][0]["issues"][0].pop("cell"),
])
def test_a_report_of_another_shape_is_an_error(change: Any) -> None:
    doc = _sample()
    change(doc)
    with pytest.raises((ValueError, KeyError)):
        nb.read_nbdefense(doc)


def test_normalise_adds_plain_text_only_where_missing() -> None:
    doc = {"cells": [{"outputs": [{"data": {"text/html": "<table/>"}}, {"data": {"text/plain": ["x"]}},
                                  {"output_type": "stream", "text": "y"}]}]}
    outs = nb.normalise(doc)["cells"][0]["outputs"]
    assert outs == [{"data": {"text/html": "<table/>", "text/plain": [""]}}, {"data": {"text/plain": ["x"]}},
                    {"output_type": "stream", "text": "y"}]


def test_mlsec_sarif_scored_on_the_same_corpus(tmp_path: Path) -> None:
    planted, other = nb.build(tmp_path, 2)
    sarif = tmp_path / "nb.sarif"
    corpus = tmp_path / "corpus"
    proc = subprocess.run([str(Path(sys.executable).parent / "mlsec"), "notebook-scan", str(corpus), "--sarif",
                           str(sarif), "--source-root", str(corpus)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    results = nb.read_mlsec(json.loads(sarif.read_text(encoding="utf-8")))
    assert nb.score_mlsec(planted, results, SECRET | PII) == nb.Score(18, (), 0)
    assert all(o in results for o in other) and len(other) == 10
    shifted = [(r, f, (line or 0) + 1, lg) for r, f, line, lg in results]
    assert nb.score_mlsec(planted, shifted, SECRET | PII).found == 0
