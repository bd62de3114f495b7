"""train under every fault of its command (missing, exiting 1, hanging past the timeout, killed) and of itself
(raising): exit 1, a SARIF saying so, and the gate at checkpoint 8 failing with a verdict that names train and the
cause. The control (a command that works) passes the same gate."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from mlsec_actions import cli
from mlsec_actions.training import runner
from tests.faults.conftest import assert_names_stage_and_cause, clean_env, mlsec

pytestmark = pytest.mark.integration

WRITE = "import pathlib; pathlib.Path('model/m.bin').write_bytes(b'w')"
FAULTS = [
    pytest.param(["/nonexistent/trainer"], ("missing", "cannot start"), id="train-missing"),
    pytest.param([sys.executable, "-c", "raise SystemExit(1)"], ("exited 1",), id="train-exits-1"),
    pytest.param([sys.executable, "-c", "import time; time.sleep(120)"], ("timed out",), id="train-hangs"),
    pytest.param([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"], ("killed by signal 9",),
                 id="train-killed"),
]


def _gate(sarif_dir: Path, out: Path, run_id: str, policy: Path) -> tuple[int, Path]:
    verdict = out / "verdict.json"
    proc = mlsec("gate", "--sarif-dir", str(sarif_dir), "--policy", str(policy), "--checkpoint", "8",
                 "--run-id", run_id, "--expect-stage", "train", "--verdict", str(verdict),
                 "--summary", str(out / "summary.md"), "--sarif", str(out / "gate.sarif"), env=clean_env())
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, verdict


def _train(project: Path, sarif_dir: Path, run_id: str, command: list[str]) -> int:
    proc = mlsec("train", "--workdir", str(project), "--output", "model", "--timeout", "1.5",
                 "--sarif", str(sarif_dir / "train.sarif"), "--provenance", str(sarif_dir.parent / "prov.json"),
                 "--log", str(sarif_dir.parent / "train.log"), "--", *command, env=clean_env(MLSEC_RUN_ID=run_id))
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode


def test_working_command_passes_the_gate(tmp_path: Path, project: Path, lenient_policy: Path) -> None:
    run_id = str(uuid.uuid4())
    assert _train(project, tmp_path / "sarif", run_id, [sys.executable, "-c", WRITE]) == 0
    code, verdict = _gate(tmp_path / "sarif", tmp_path / "gate", run_id, lenient_policy)
    assert code == 0, verdict.read_text()


@pytest.mark.parametrize(("command", "causes"), FAULTS)
def test_command_fault_fails_the_gate(tmp_path: Path, project: Path, lenient_policy: Path, command: list[str],
                                      causes: tuple[str, ...]) -> None:
    run_id = str(uuid.uuid4())
    assert _train(project, tmp_path / "sarif", run_id, command) == 1
    code, verdict = _gate(tmp_path / "sarif", tmp_path / "gate", run_id, lenient_policy)
    assert code == 3
    assert_names_stage_and_cause(verdict, "train", causes)


def test_train_that_raises_fails_the_gate(tmp_path: Path, project: Path, lenient_policy: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def raises(plan: runner.Plan) -> runner.Attempt:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(runner, "execute", raises)
    run_id = str(uuid.uuid4())
    monkeypatch.setenv("MLSEC_RUN_ID", run_id)
    sarif_dir = tmp_path / "sarif"
    assert cli.main(["train", "--workdir", str(project), "--output", "model", "--sarif", str(sarif_dir / "train.sarif"),
                     "--provenance", str(tmp_path / "p.json"), "--log", str(tmp_path / "l"), "--", "true"]) == 1
    assert capsys.readouterr().err == "mlsec: error: train: internal error: RuntimeError: injected fault\n"
    code, verdict = _gate(sarif_dir, tmp_path / "gate", run_id, lenient_policy)
    assert code == 3
    assert_names_stage_and_cause(verdict, "train", ("internal error", "injected fault"))
