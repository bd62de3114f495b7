"""The verdict rendered: JSON contract, GitHub-flavoured markdown summary (rendered and read back), SARIF."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from mlsec_actions.findings import Severity, ToolRun, ToolStatus
from mlsec_actions.gate import alerts
from mlsec_actions.gate import report as gate_report
from mlsec_actions.gate.engine import Verdict
from mlsec_actions.sarif import write_sarif
from tests.unit.test_gate import DEFAULT_WITH, OK_TRIVY, evaluate, hit, stage, waiver

WAIVERS = DEFAULT_WITH + waiver("path: tests/**") + (
    "  - id: stale\n    rule: bandit/*\n    reason: old | noisy\n    owner: ops\n    expires: 2026-01-01\n")


@pytest.fixture
def verdict(tmp_path: Path) -> Verdict:
    return evaluate(tmp_path, WAIVERS, stage("code-scan", hit(), hit(path="tests/k.py"),
                                             hit("trivy/misconfig/DS-0001", Severity.MEDIUM, "Dockerfile", 1),
                                             tools=(OK_TRIVY, ToolRun("bandit", ToolStatus.MISSING, None,
                                                                      "not installed"))),
                    stage("model-scan", hit("pickle/global", Severity.CRITICAL, "models/m.pkl", 1),
                          tools=(ToolRun("pickle", ToolStatus.OK),)))


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table as rows of cell texts (header row first), parsed the way GitHub's GFM does."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    out: list[list[list[str]]] = []
    row: list[str] | None = None
    for tok in tokens:
        if tok.type == "table_open":
            out.append([])
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and row is not None:
            row.append(_text(tok))
        elif tok.type == "tr_close" and row is not None:
            out[-1].append(row)
            row = None
    return out


def _text(tok: Token) -> str:
    return "".join(c.content for c in tok.children or [] if c.type in ("text", "code_inline"))


def test_summary_tables_render_as_gfm(verdict: Verdict) -> None:
    md = gate_report.markdown(verdict)
    by_header = {t[0][0] if t[0][:2] != ["stage", "tool"] else "tool": t for t in tables(md)}
    counts = by_header["stage"]
    assert counts[0] == ["stage", "critical", "high", "medium", "low", "info", "counted"]
    assert counts[1] == ["code-scan", "0", "2", "1", "0", "0", "2"]
    assert counts[2] == ["model-scan", "1", "0", "0", "0", "0", "1"]
    kinds = [r[0] for r in by_header["kind"][1:]]
    assert sorted(kinds) == ["threshold", "tool-failed", "waiver-expired"]
    top = by_header["severity"]
    assert top[1][:4] == ["critical (9.5)", "model-scan", "pickle/global", "models/m.pkl:1"]
    waivers = {r[0]: r for r in by_header["waiver"][1:]}
    assert waivers["w1"][1:4] == ["used", "1", "@\u200bsec"]  # a mention is broken, so no one is pinged
    # A pipe inside a cell stays inside it.
    assert waivers["stale"][1] == "expired" and waivers["stale"][5] == "old | noisy"
    assert ["code-scan", "bandit", "unknown", "missing"] in by_header["tool"]
    assert "❌ **FAIL** (3 violation(s))" in md


def test_top_findings_link_to_the_commit_in_actions(verdict: Verdict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    monkeypatch.delenv("GITHUB_SERVER_URL", raising=False)
    html = MarkdownIt("commonmark").enable("table").render(gate_report.markdown(verdict))
    assert '<a href="https://github.com/acme/models/blob/0123abc/app.py#L3">app.py:3</a>' in html
    assert '<a href="https://github.com/acme/models/blob/0123abc/models/m.pkl#L1">models/m.pkl:1</a>' in html


def test_plain_paths_outside_actions(verdict: Verdict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    assert "](https://github.com/acme" not in gate_report.markdown(verdict)
    assert "`app.py:3`" in gate_report.markdown(verdict)


def test_verdict_json_contract(verdict: Verdict) -> None:
    doc = json.loads(json.dumps(gate_report.to_json(verdict, dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))))
    assert doc["verdict"] == "fail"
    assert doc["generated_at"] == "2026-06-01T12:00:00Z"
    assert doc["policy"] == {"path": verdict.policy.path, "sha256": verdict.policy.sha256}
    assert [set(i) for i in doc["inputs"]] == [{"path", "sha256"}] * 2
    assert all(len(i["sha256"]) == 64 for i in doc["inputs"])
    assert {v["kind"] for v in doc["violations"]} == {"threshold", "tool-failed", "waiver-expired"}
    assert doc["counts"]["code-scan"] == {"info": 0, "low": 0, "medium": 1, "high": 2, "critical": 0}
    assert [w["id"] for w in doc["waivers"]["used"]] == ["w1"]
    assert [w["id"] for w in doc["waivers"]["expired"]] == ["stale"]
    assert doc["waivers"]["unused"] == []
    assert {"stage": "code-scan", "name": "bandit", "version": "unknown", "status": "missing",
            "message": "bandit: not installed"} in doc["tools"]


def test_violations_sarif(verdict: Verdict, tmp_path: Path) -> None:
    out = write_sarif(alerts.violations_result(verdict), tmp_path / "gate.sarif")
    run = json.loads(out.read_text())["runs"][0]
    assert run["automationDetails"]["id"] == "mlsec/gate/"
    assert {r["ruleId"] for r in run["results"]} == {"gate/threshold", "gate/tool-failed", "gate/waiver-expired"}
    assert all(r["level"] == "error" for r in run["results"])
    expired = next(r for r in run["results"] if r["ruleId"] == "gate/waiver-expired")
    assert expired["locations"][0]["physicalLocation"]["region"]["startLine"] == WAIVERS.splitlines().index(
        "  - id: stale") + 1


def test_every_violation_kind_has_a_title_and_a_docs_section() -> None:
    from mlsec_actions.gate.engine import KINDS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "gate.md").read_text()
    assert set(alerts._TITLES) == set(KINDS)
    for kind in KINDS:
        assert f"\n## {kind}\n" in docs, kind


@pytest.mark.parametrize(("path", "linked"), [("127.0.0.1:8080/admin", False), ("svc.internal:443", False),
                                              ("[::1]:80/x", False), ("app.py", True), ("docs/a:b.md", True),
                                              ("src/port:80.txt", True)])
def test_service_locations_are_not_linked_as_files(path: str, linked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_SHA", "0123abc")
    got = gate_report._link(path, 3)
    assert ("](https://github.com/acme/models/blob/0123abc/" in got) is linked, got
    assert got.endswith(":3`" if not linked else "#L3)")
