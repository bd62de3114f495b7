"""code-scan end to end on the secret corpus: every planted credential reported once (merged across
trivy and the in-house rules), no placeholder reported, and no value in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import secret_corpus


def _run(tmp_path: Path, run_mlsec, *extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    planted, _ = secret_corpus.build(root)
    out = tmp_path / "out" / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip", *extra, env=env)
    return planted, out, proc


def test_every_planted_secret_is_one_result_and_no_value_leaks(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    planted, out, proc = _run(tmp_path, run_mlsec)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    spans = [(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
              r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"),
              r["locations"][0]["physicalLocation"].get("region", {}).get("endLine", 0), r) for r in run["results"]]
    assert len(spans) == len(planted)  # one result per planted value, whichever tools saw it
    for p in planted:
        last = p.line + p.value.count("\n")
        [hit] = [r for uri, start, end, r in spans if uri == p.path and start <= last and p.line <= max(start, end)]
        ids = hit["properties"]["mlsec-rule-ids"].split(", ")
        assert f"secret/{p.rule}" in ids, (p.rule, ids)
    places = {uri for uri, *_ in spans}
    assert "docs/setup.md" not in places
    tools = {i["properties"]["tool"]: i["executionSuccessful"] for i in run["invocations"]}
    assert tools == {"trivy": True, "gitleaks": True, "bandit": True, "mlsec-secrets": True, "mlsec-ml-sast": True,
                     "checkov": True}
    outputs = [out.read_text(), proc.stdout, proc.stderr]
    for p in planted:
        for window in secret_corpus.windows(p.value):
            assert not any(window in o for o in outputs), (p.rule, window)


@pytest.mark.parametrize("tool", ["trivy", "gitleaks", "bandit"])
def test_without_one_tool_it_is_a_failed_tool_and_the_others_still_report(tmp_path: Path, run_mlsec,  # type: ignore[no-untyped-def]
                                                                          tool: str) -> None:
    planted, out, proc = _run(tmp_path, run_mlsec, env={f"MLSEC_{tool.upper()}_BIN": str(tmp_path / "gone")})
    assert proc.returncode == 1
    run = json.loads(out.read_text())["runs"][0]
    status = {i["properties"]["tool"]: (i["properties"]["status"], i["executionSuccessful"])
              for i in run["invocations"]}
    assert status.pop(tool) == ("missing", False)
    assert set(status.values()) == {("ok", True)} and "mlsec-secrets" in status
    assert len(run["results"]) == len(planted)
    assert not any(tool in r["properties"]["mlsec-tools"] for r in run["results"])


def test_second_layout_every_value_reported_and_none_leaks(tmp_path: Path, run_mlsec) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    planted = secret_corpus.build_other(root)
    out = tmp_path / "out" / "code-scan.sarif"
    proc = run_mlsec("code-scan", str(root), "--sarif", str(out), "--vuln-db", "skip")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(out.read_text())["runs"][0]
    seen = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"), rid)
            for r in run["results"] for rid in r["properties"]["mlsec-rule-ids"].split(", ")}
    assert {(p.path, p.line, f"secret/{p.rule}") for p in planted} <= seen
    outputs = [out.read_text(), proc.stdout, proc.stderr]
    for p in planted:
        for window in secret_corpus.windows(p.value):
            assert not any(window in o for o in outputs), (p.rule, window)
