"""report.html without a browser: the CSP allows exactly the page's own style and script, everything from the
inputs is escaped, and an unreadable input shows as a problem, never as a clean report."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from pathlib import Path

from mlsec_actions import report
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.report.collect import Sources, collect
from mlsec_actions.report.page import render
from mlsec_actions.sarif import write_sarif

HOSTILE = '"><img src=x onerror=alert(1)><svg onload=alert(2)>'


def _sarif(folder: Path, stage: str = "code-scan", message: str = "leak", n: int = 1) -> None:
    rule = Rule("mlsec/t/r", "r", "rule", help_uri="javascript:alert(1)")
    findings = tuple(Finding(rule, f"{message} {i}", Severity.HIGH, Location(f"src/{HOSTILE}.py", i + 1))
                     for i in range(n))
    write_sarif(StageResult(stage, findings, (ToolRun("mlsec-t", ToolStatus.OK, "1"),)), folder / f"{stage}.sarif")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_csp_allows_only_the_inline_style_and_script(tmp_path: Path) -> None:
    _sarif(tmp_path / "sarif")
    html = report.write(Sources(tmp_path / "sarif"), tmp_path / "r.html").read_text()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp is not None
    policy = csp.group(1)
    style = re.findall(r"<style>(.*?)</style>", html, re.S)
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(style) == 1 and len(scripts) == 1
    assert f"style-src {_digest(style[0])};" in policy and f"script-src {_digest(scripts[0])};" in policy
    assert "default-src 'none'" in policy and "unsafe" not in policy
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html)  # nothing to load, nothing linked statically


def test_input_text_is_escaped_everywhere(tmp_path: Path) -> None:
    _sarif(tmp_path / "sarif", stage="code-scan", message=HOSTILE)
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps({"verdict": "fail", "violations": [
        {"kind": "threshold", "rule": HOSTILE, "stage": "code-scan",
         "message": "</section><script>alert(3)</script>"}]}))
    html = render(collect(Sources(tmp_path / "sarif", verdict)))
    body = html.split("<body>", 1)[1]
    assert "<img" not in body and "<svg onload" not in body and "alert(3)</script>" not in body
    assert "&lt;/section&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in body
    assert "javascript:" not in body  # a help link that is not https is dropped
    assert body.count("<script") == 2


def test_text_cannot_break_lines_or_reorder_the_page(tmp_path: Path) -> None:
    _sarif(tmp_path / "sarif", message="a\n::error title=x::pwned \u202ereversed\u202c")
    html = report.write(Sources(tmp_path / "sarif"), tmp_path / "r.html").read_text()
    assert "\u202e" not in html and not any(line.startswith("::") for line in html.splitlines())
    assert r"a\\x0a:\\:error title=x:\\:pwned \\u202ereversed" in html  # escaped, in the JSON data block


def test_unreadable_sarif_and_missing_verdict_are_shown_as_problems(tmp_path: Path) -> None:
    # The broken file lives outside pytest's folder: the session hook validates every *.sarif in there.
    with tempfile.TemporaryDirectory() as outside:
        folder = Path(outside)
        _sarif(folder)
        (folder / "model-scan.sarif").write_text('{"version": "2.1.0", "runs": [')
        doc = collect(Sources(folder, tmp_path / "nope.json"))
    assert doc["verdict"] == "missing"
    assert any("model-scan.sarif" in p for p in doc["problems"])
    assert any("nope.json" in p for p in doc["problems"])
    html = render(doc)
    assert 'class="missing"' in html and "Inputs the report could not read" in html


def test_counts_include_findings_a_truncated_sarif_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "sarif"
    _sarif(folder, n=3)
    # As a run truncated to GitHub's limit says it: the true counts in the run, fewer results in the file.
    path = folder / "code-scan.sarif"
    doc = json.loads(path.read_text())
    doc["runs"][0]["properties"]["mlsec-result-counts"].update(total=13, high=13)
    path.write_text(json.dumps(doc))
    found = collect(Sources(folder))["findings"]
    assert len(found["rows"]) == 3 and found["chart"]["code-scan"]["high"] == 13 and found["dropped"] == 10
