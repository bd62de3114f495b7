"""`mlsec run`'s step outputs for the root action's `stage: run`: counts summed over the scan stages' SARIF (their
true counts, not the truncated result lists), a stage without readable SARIF counted as a tool error, the verdict,
and the stages' own GITHUB_OUTPUT writes kept out of the step's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlsec_actions import pipeline, run_outputs
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.sarif import write_sarif


def _sarif(path: Path, *severities: Severity, failed: int = 0) -> None:
    found = tuple(Finding(rule=Rule(id="t/r", name="r", short_description="r"), message=f"r {i}", severity=sev,
                          location=Location(path="a.py", start_line=i + 1)) for i, sev in enumerate(severities))
    tools = (*(ToolRun(f"broken{i}", ToolStatus.FAILED, message="crashed") for i in range(failed)),
             ToolRun("t", ToolStatus.OK, "1.0"))
    write_sarif(StageResult(path.stem, found, tools, {}), path)


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines())


def test_counts_are_summed_over_the_scans_and_a_missing_sarif_is_a_tool_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    sarif = out / "sarif"
    sarif.mkdir(parents=True)
    _sarif(sarif / "code-scan.sarif", Severity.CRITICAL, Severity.HIGH, Severity.HIGH, *[Severity.MEDIUM] * 4,
           failed=1)
    _sarif(sarif / "model-scan.sarif", *[Severity.CRITICAL] * 3)
    _sarif(sarif / "other.sarif", *[Severity.CRITICAL] * 9)  # not a scan of this run: not counted
    (out / "verdict.json").write_text(json.dumps({"verdict": "fail"}), encoding="utf-8")
    (out / "report.html").write_text("<html></html>", encoding="utf-8")
    gh = tmp_path / "gh-output"
    gh.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(gh))
    scans = {stage: run_outputs.result_counts(sarif / f"{stage}.sarif")
             for stage in ("code-scan", "model-scan", "data-scan")}
    run_outputs.action_outputs(out, sarif, scans, 3)
    got = _outputs(gh)
    assert got["findings"] == "10" and got["critical"] == "4" and got["high"] == "2" and got["medium"] == "4"
    assert got["tool-errors"] == "2"  # code-scan's failed tool + data-scan without SARIF
    assert got["verdict"] == "fail" and got["run-exit-code"] == "3"
    assert got["sarif-file"] == str(sarif) and got["category"] == ""
    assert got["report-file"] == str(out / "report.html")


@pytest.mark.parametrize("verdict", [None, "green", ["pass"]])
def test_no_or_a_strange_verdict_is_missing_never_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       verdict: object) -> None:
    out = tmp_path / "out"
    (out / "sarif").mkdir(parents=True)
    if verdict is not None:
        (out / "verdict.json").write_text(json.dumps({"verdict": verdict}), encoding="utf-8")
    gh = tmp_path / "gh-output"
    gh.touch()
    monkeypatch.setenv("GITHUB_OUTPUT", str(gh))
    run_outputs.action_outputs(out, out / "sarif", {"code-scan": None}, 1)
    got = _outputs(gh)
    assert got["verdict"] == "missing" and got["tool-errors"] == "1"
    assert "sarif-file" not in got and "report-file" not in got


def test_stages_do_not_write_the_steps_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", "/tmp/out")
    monkeypatch.setenv("MLSEC_TRIVY_BIN", "/opt/trivy")
    monkeypatch.setenv("MLSEC_PIPELINE", "devsecops")
    env = pipeline.stage_env("run-1")
    assert "GITHUB_OUTPUT" not in env and "MLSEC_PIPELINE" not in env
    assert env["MLSEC_TRIVY_BIN"] == "/opt/trivy" and env[pipeline.RUN_ID_ENV] == "run-1"
