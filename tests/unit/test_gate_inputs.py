"""Weak input the gate must not read as clean (issue 9 seen 12, issue 8's mutants): a run without
invocations, `executionSuccessful: false` under a status that claims success, a truncated run's true
counts, malformed count and coverage properties, a hostile policy file."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions import cli
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.gate import input as gate_input
from mlsec_actions.gate import policy
from mlsec_actions.gate.engine import Verdict, run_gate
from mlsec_actions.sarif import to_sarif, write_sarif
from tests.unit.test_gate import TODAY, stage

TOOL_ERRORS = "version: 1\ntool-errors: fail\n"


@pytest.fixture
def outside_basetemp() -> Iterator[Path]:
    """Hand-edited or very large SARIF lives here: the session hook validates every *.sarif under basetemp."""
    with tempfile.TemporaryDirectory(prefix="mlsec-gate-inputs-") as d:
        yield Path(d)


def gate_on(folder: Path, text: str, tmp: Path) -> Verdict:
    pol = tmp / "policy.yml"
    pol.write_text(text, encoding="utf-8")
    return run_gate(policy.load(pol), folder, today=TODAY)


def edited(folder: Path, result: StageResult, edit: Any) -> Path:
    """Our SARIF for `result`, changed by `edit(log)` and written to `folder`."""
    log = to_sarif(result)
    edit(log)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{result.stage}.sarif").write_text(json.dumps(log), encoding="utf-8")
    return folder


def test_a_run_without_invocations_is_not_a_successful_run(outside_basetemp: Path) -> None:
    folder = edited(outside_basetemp / "s", stage("code-scan"), lambda log: log["runs"][0].pop("invocations"))
    verdict = gate_on(folder, TOOL_ERRORS, outside_basetemp)
    (v,) = verdict.violations
    assert (v.kind, v.stage) == ("tool-failed", "code-scan")
    assert "no invocations" in v.message


def test_an_empty_invocations_array_is_not_either(outside_basetemp: Path) -> None:
    folder = edited(outside_basetemp / "s", stage("code-scan"), lambda log: log["runs"][0].update(invocations=[]))
    assert [v.kind for v in gate_on(folder, TOOL_ERRORS, outside_basetemp).violations] == ["tool-failed"]


@pytest.mark.parametrize("claimed", ["ok", "skipped", "made-up", None])
def test_execution_not_successful_is_a_failure_whatever_status_it_claims(outside_basetemp: Path,
                                                                         claimed: str | None) -> None:
    def edit(log: dict[str, Any]) -> None:
        inv = log["runs"][0]["invocations"][0]
        inv["executionSuccessful"] = False
        if claimed is None:
            inv["properties"].pop("status")
        else:
            inv["properties"]["status"] = claimed

    folder = edited(outside_basetemp / "s", stage("code-scan"), edit)
    (run,) = gate_input.read_bytes("x.sarif", (folder / "code-scan.sarif").read_bytes())
    assert run.tools[0].status is ToolStatus.FAILED
    assert [v.kind for v in gate_on(folder, TOOL_ERRORS, outside_basetemp).violations] == ["tool-failed"]


@pytest.mark.parametrize("status", [ToolStatus.OK, ToolStatus.SKIPPED])
def test_a_successful_or_skipped_tool_is_not_a_failure(tmp_path: Path, status: ToolStatus) -> None:
    folder = tmp_path / "s"
    write_sarif(stage("code-scan", tools=(ToolRun("trivy", status),)), folder / "code-scan.sarif")
    (run,) = gate_input.read_bytes("x.sarif", (folder / "code-scan.sarif").read_bytes())
    assert run.tools[0].status is status
    assert gate_on(folder, TOOL_ERRORS, tmp_path).passed


def many(n: int, severity: Severity = Severity.HIGH) -> tuple[Finding, ...]:
    rule = Rule(id="trivy/secret/x", name="x", short_description="x")
    return tuple(Finding(rule=rule, message="m", severity=severity, location=Location(path=f"f{i}.py", start_line=1))
                 for i in range(n))


@pytest.fixture
def results_limit_250(monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub's 25,000-result limit scaled down 100 times: the same truncation, a hundredth of the time."""
    from mlsec_actions import sarif

    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 250)


@pytest.mark.usefixtures("results_limit_250")
def test_a_truncated_run_counts_its_true_counts(outside_basetemp: Path) -> None:
    """300 findings kept to 250 in the file (the limit scaled down from GitHub's 25,000): `max: 250` fails,
    `max: 300` passes (issue 9 seen 12)."""
    folder = outside_basetemp / "s"
    write_sarif(StageResult("code-scan", many(300), (ToolRun("trivy", ToolStatus.OK),)), folder / "c.sarif")
    (run,) = gate_input.read_bytes("c.sarif", (folder / "c.sarif").read_bytes())
    assert len(run.hits) == 250 and run.properties["mlsec-truncated"] is True
    assert run.dropped == {Severity.HIGH: 50}
    over = gate_on(folder, "version: 1\nthresholds:\n  - severity: high\n    max: 250\n", outside_basetemp)
    (v,) = over.violations
    assert v.kind == "threshold" and "300 findings" in v.message
    assert over.counts["code-scan"][Severity.HIGH] == 300
    assert any("50 finding(s) the stage counted are not in the file" in w for w in over.warnings)
    at = gate_on(folder, "version: 1\nthresholds:\n  - severity: high\n    max: 300\n", outside_basetemp)
    assert at.passed
    # The dropped findings keep their tool (the run has one), so a per-tool threshold counts them too.
    per_tool = gate_on(folder, "version: 1\nthresholds:\n  - tool: trivy\n    max: 299\n", outside_basetemp)
    assert [x.kind for x in per_tool.violations] == ["threshold"]


@pytest.mark.usefixtures("results_limit_250")
def test_dropped_findings_cannot_be_waived(outside_basetemp: Path) -> None:
    folder = outside_basetemp / "s"
    write_sarif(StageResult("code-scan", many(300), (ToolRun("trivy", ToolStatus.OK),)), folder / "c.sarif")
    text = ("version: 1\nthresholds:\n  - severity: high\nwaivers:\n  - rule: trivy/secret/x\n"
            "    reason: every one of them is test data\n    owner: '@sec'\n    expires: 2026-06-30\n")
    verdict = gate_on(folder, text, outside_basetemp)
    assert verdict.waived == 250
    assert "50 findings" in verdict.violations[0].message


def test_counts_below_what_the_file_holds_are_ignored(outside_basetemp: Path) -> None:
    """A count property may only add findings: the results in the file always count."""
    def edit(log: dict[str, Any]) -> None:
        log["runs"][0]["properties"]["mlsec-result-counts"] = {"total": 0, "high": 0}

    folder = edited(outside_basetemp / "s", StageResult("code-scan", many(3), (ToolRun("trivy", ToolStatus.OK),)),
                    edit)
    verdict = gate_on(folder, "version: 1\nthresholds:\n  - severity: high\n    max: 2\n", outside_basetemp)
    assert verdict.counts["code-scan"][Severity.HIGH] == 3 and not verdict.passed


@pytest.mark.parametrize(("prop", "value", "problem"), [
    ("mlsec-result-counts", [1], "mlsec-result-counts is not a map"),
    ("mlsec-result-counts", {"total": 3, "high": "3"}, "mlsec-result-counts is not a map"),
    ("mlsec-result-counts", {"total": 3, "high": -1}, "mlsec-result-counts is not a map"),
    ("mlsec-result-counts", {"total": True}, "mlsec-result-counts is not a map"),
    ("mlsec-coverage", "none", "mlsec-coverage is not an object"),
    ("mlsec-coverage", {"total": -1, "gaps": []}, "mlsec-coverage.total is not a count"),
    ("mlsec-coverage", {"total": 1, "gaps": [{"tool": "trivy", "kind": 3, "detail": "x"}]}, "gaps[0] needs"),
])
def test_malformed_run_properties_fail_closed(outside_basetemp: Path, prop: str, value: object, problem: str) -> None:
    folder = edited(outside_basetemp / "s", stage("code-scan"),
                    lambda log: log["runs"][0]["properties"].__setitem__(prop, value))
    verdict = gate_on(folder, "version: 1\n", outside_basetemp)
    (v,) = verdict.violations
    assert v.kind == "sarif-malformed" and problem in v.message, v.message


def test_an_oversized_sarif_fails_closed(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    write_sarif(stage("code-scan"), folder / "code-scan.sarif")
    size = (folder / "code-scan.sarif").stat().st_size
    ((_, _, error),) = list(gate_input.iter_dir(folder, max_bytes=size - 1))
    assert error is not None and "limit" in error.problem
    ((_, runs, error),) = list(gate_input.iter_dir(folder, max_bytes=size))
    assert error is None and len(runs) == 1


# --- the policy file is hostile too ------------------------------------------------------------------------------


def test_a_fifo_policy_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "policy.yml"
    os.mkfifo(fifo)  # nothing writes to it: a blocking open or read would hang the gate forever
    write_sarif(stage("code-scan"), tmp_path / "s" / "code-scan.sarif")
    started = time.monotonic()
    code = cli.main(["gate", "--sarif-dir", str(tmp_path / "s"), "--policy", str(fifo),
                     "--verdict", str(tmp_path / "v.json"), "--summary", str(tmp_path / "s.md"),
                     "--sarif", str(tmp_path / "gate.sarif")])
    assert code == 2 and time.monotonic() - started < 5
    assert f"{fifo}: policy is not a regular file" in capsys.readouterr().err
    assert not (tmp_path / "v.json").exists()


def test_an_oversized_policy_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "policy.yml"
    big.write_text("version: 1\n" + "# padding\n" * (policy.MAX_POLICY_BYTES // 10), encoding="utf-8")
    with pytest.raises(InputError, match=rf"policy is \d+ bytes; the limit is {policy.MAX_POLICY_BYTES}"):
        policy.load(big)


def test_a_policy_at_the_size_limit_loads(tmp_path: Path) -> None:
    text = "version: 1\n"
    path = tmp_path / "policy.yml"
    path.write_text(text + "#" * (policy.MAX_POLICY_BYTES - len(text) - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == policy.MAX_POLICY_BYTES
    assert policy.load(path).thresholds == ()


def test_policy_validate_refuses_a_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "p.yml"
    os.mkfifo(fifo)
    assert cli.main(["policy", "validate", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err


BILLION_LAUGHS = "version: 1\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)) + "description: *a9\n"


@pytest.mark.parametrize(("text", "problem"), [
    (BILLION_LAUGHS, ":2: YAML anchors and aliases are not allowed in a policy"),
    ("version: 1\ndescription: " + "[" * 100_000 + "]" * 100_000 + "\n", ":2: "),  # libyaml's own limit, or ours
    ("version: 1\nx:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)) + "  " * 40 + "v\n",
     "nested deeper than 32 levels"),
])
def test_policy_bombs_are_refused_fast(tmp_path: Path, text: str, problem: str) -> None:
    """Issue 9 seen 9: a billion-laughs policy grew past 5.7 GB; depth-100k nesting was a RecursionError."""
    path = tmp_path / "policy.yml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(policy.PolicyError) as caught:
        policy.load(path)
    assert time.monotonic() - started < 2
    (got,) = caught.value.problems
    assert got.startswith(f"{path}:") and problem in got and ("nest" in got or "alias" in got), got


def test_a_deep_but_legal_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("version: 1\nthresholds:\n  - stage: [code-scan, model-scan]\n    severity: high\n")
    assert len(policy.load(path).thresholds) == 1


def test_a_sarif_folder_a_thousand_levels_deep_fails_closed_without_recursion(tmp_path: Path) -> None:
    from mlsec_actions.analyzers import tree

    folder = tmp_path / "s"
    write_sarif(stage("code-scan"), folder / "code-scan.sarif")
    deep = folder
    for _ in range(1000):  # rglob (and os.makedirs) recurse per level
        deep = deep / "d"
        deep.mkdir()
    write_sarif(stage("model-scan"), deep / "model-scan.sarif")
    try:
        got = list(gate_input.iter_dir(folder))
    finally:
        (deep / "model-scan.sarif").unlink()
        while deep != folder:
            deep.rmdir()
            deep = deep.parent
    cut = "/".join(["d"] * (tree.MAX_DEPTH + 1))
    assert [(f.name, e.problem if e else None) for f, _, e in got] == [
        (cut, f"folder nested deeper than {tree.MAX_DEPTH} levels; its SARIF was not read"), ("code-scan.sarif", None)]
