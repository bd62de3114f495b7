"""Each scan stage on its own, then the gate, as the workflows run them: every fault makes the gate fail
and the verdict names the stage and the cause. Generated from the catalog (conftest.py)."""

from __future__ import annotations

import importlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from mlsec_actions import catalog, cli
from tests.faults.conftest import (
    SCAN_STAGES,
    SCANNER_FAULTS,
    SHARED_PATH_FAULTS,
    Fault,
    assert_names_stage_and_cause,
    clean_env,
    external_tools,
    give_input,
    make_fake,
    mlsec,
    stage_cases,
    stage_inputs,
    tool_env,
)

pytestmark = pytest.mark.integration

SCANNER_CASES = [pytest.param(s, t, f, id=f"{s.id}-{t}-{f.name}") for s in SCAN_STAGES for t, f in stage_cases(s)]
STAGE_IDS = [pytest.param(s, id=s.id) for s in SCAN_STAGES]


def _gate(sarif_dir: Path, out: Path, run_id: str, stages: list[str], policy: Path) -> tuple[int, Path]:
    verdict = out / "verdict.json"
    args = ["gate", "--sarif-dir", str(sarif_dir), "--policy", str(policy), "--run-id", run_id,
            "--verdict", str(verdict), "--summary", str(out / "summary.md"), "--sarif", str(out / "gate.sarif")]
    for s in stages:
        args += ["--expect-stage", s]
    proc = mlsec(*args, env=clean_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, verdict


def _stage(stage: catalog.StageInfo, project: Path, sarif: Path, run_id: str, **env: str) -> int:
    extra, _ = stage_inputs(stage.id, project.parent)
    proc = mlsec(stage.id, str(project), "--sarif", str(sarif), "--timeout", "1.5", *extra,
                 env=clean_env(MLSEC_RUN_ID=run_id, **env))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "::error" not in proc.stderr.replace("::error title=", "")  # no raw command from a scanner's output
    return proc.returncode


def test_matrix_covers_every_implemented_scan_stage() -> None:
    assert {s.id for s in SCAN_STAGES} == {s.id for s in catalog.implemented() if s.kind is catalog.Kind.SCAN}
    assert {"code-scan", "model-scan"} <= {s.id for s in SCAN_STAGES}
    assert all(external_tools(s) for s in SCAN_STAGES if s.id in ("code-scan", "model-scan"))


def test_every_tool_meets_its_adapter_faults_and_every_stage_every_fault() -> None:
    adapter_faults = {f.name for f in SCANNER_FAULTS} - SHARED_PATH_FAULTS
    assert adapter_faults == {"missing", "exits-1", "garbage"}
    for s in SCAN_STAGES:
        pairs = {(t, f.name) for t, f in stage_cases(s)}
        assert {f for _, f in pairs} == ({f.name for f in SCANNER_FAULTS} if external_tools(s) else set()), s.id
        for t in external_tools(s):
            assert adapter_faults <= {f for u, f in pairs if u == t}, (s.id, t)


@pytest.mark.parametrize(("stage", "tool", "fault"), SCANNER_CASES)
def test_scanner_fault_fails_the_gate(tmp_path: Path, project: Path, lenient_policy: Path,
                                      stage: catalog.StageInfo, tool: str, fault: Fault) -> None:
    run_id = str(uuid.uuid4())
    sarif_dir = tmp_path / "sarif"
    give_input(project, tool)
    fake = make_fake(tmp_path, tool, fault.body)
    # semgrep is opt-in (code-scan --semgrep): asked for, its fault must fail the stage like any tool's.
    opt_in = {"MLSEC_SEMGREP": "true"} if tool == "semgrep" else {}
    code = _stage(stage, project, sarif_dir / f"{stage.id}.sarif", run_id, **{tool_env(tool): str(fake)}, **opt_in)
    assert code == 1  # a tool error, and the SARIF says so
    run = json.loads((sarif_dir / f"{stage.id}.sarif").read_text())["runs"][0]
    assert any(not i["executionSuccessful"] and i["properties"]["tool"] == tool for i in run["invocations"])
    gate_code, verdict = _gate(sarif_dir, tmp_path / "gate", run_id, [stage.id], lenient_policy)
    assert gate_code == 3
    assert_names_stage_and_cause(verdict, stage.id, fault.causes)


@pytest.mark.parametrize("stage", STAGE_IDS)
def test_stage_that_raises_fails_the_gate(tmp_path: Path, project: Path, lenient_policy: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          stage: catalog.StageInfo) -> None:
    module = importlib.import_module(f"mlsec_actions.stages.{stage.id.replace('-', '_')}")

    def raises(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"injected fault in {ctx.root.name}")

    monkeypatch.setattr(module, "scan", raises)
    run_id = str(uuid.uuid4())
    monkeypatch.setenv("MLSEC_RUN_ID", run_id)
    sarif_dir = tmp_path / "sarif"
    assert cli.main([stage.id, str(project), "--sarif", str(sarif_dir / f"{stage.id}.sarif")]) == 1
    err = capsys.readouterr().err
    assert err == f"mlsec: error: {stage.id}: internal error while processing {project}: " \
                  f"RuntimeError: injected fault in proj\n"
    gate_code, verdict = _gate(sarif_dir, tmp_path / "gate", run_id, [stage.id], lenient_policy)
    assert gate_code == 3
    assert_names_stage_and_cause(verdict, stage.id, ("internal error", "injected fault"))


@pytest.fixture(scope="module")
def fresh_sarifs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Every scan stage run for real on a clean project under one run id: the 'nothing wrong' baseline."""
    base = tmp_path_factory.mktemp("fresh")
    proj = base / "proj"
    proj.mkdir()
    (proj / "app.py").write_text("print('hello')\n")
    run_id = str(uuid.uuid4())
    for s in SCAN_STAGES:
        proc = mlsec(s.id, str(proj), "--sarif", str(base / "sarif" / f"{s.id}.sarif"), *stage_inputs(s.id, base)[0],
                     env=clean_env(MLSEC_RUN_ID=run_id, MLSEC_VULN_DB="skip"))
        assert proc.returncode == 0, proc.stderr
    return base / "sarif", run_id


def test_clean_stages_pass_the_gate(tmp_path: Path, fresh_sarifs: tuple[Path, str], lenient_policy: Path) -> None:
    sarif_dir, run_id = fresh_sarifs
    code, verdict = _gate(sarif_dir, tmp_path, run_id, [s.id for s in SCAN_STAGES], lenient_policy)
    assert code == 0, verdict.read_text()  # the control: without a fault the same gate passes


@pytest.mark.parametrize("stage", STAGE_IDS)
def test_deleted_sarif_fails_the_gate(tmp_path: Path, fresh_sarifs: tuple[Path, str], lenient_policy: Path,
                                      stage: catalog.StageInfo) -> None:
    source, run_id = fresh_sarifs
    sarif_dir = tmp_path / "sarif"
    shutil.copytree(source, sarif_dir)
    (sarif_dir / f"{stage.id}.sarif").unlink()
    code, verdict = _gate(sarif_dir, tmp_path / "gate", run_id, [s.id for s in SCAN_STAGES], lenient_policy)
    assert code == 3
    assert_names_stage_and_cause(verdict, stage.id, ("no SARIF", "missing", "produced no"))


@pytest.mark.parametrize("stage", STAGE_IDS)
def test_sarif_from_an_earlier_run_fails_the_gate(tmp_path: Path, fresh_sarifs: tuple[Path, str],
                                                  lenient_policy: Path, stage: catalog.StageInfo) -> None:
    source, old_run = fresh_sarifs
    this_run = str(uuid.uuid4())
    sarif_dir = tmp_path / "sarif"
    shutil.copytree(source, sarif_dir)
    for s in SCAN_STAGES:  # every other stage ran again in this run; this one's file is left from the last
        if s.id != stage.id:
            path = sarif_dir / f"{s.id}.sarif"
            path.write_text(path.read_text().replace(old_run, this_run))
    code, verdict = _gate(sarif_dir, tmp_path / "gate", this_run, [s.id for s in SCAN_STAGES], lenient_policy)
    assert code == 3
    assert_names_stage_and_cause(verdict, stage.id, ("stale", "not from this run", "run id", "in this run"))
