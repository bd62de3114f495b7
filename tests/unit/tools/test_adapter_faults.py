"""The two faults the stage fault matrix runs once per stage (tests/faults/conftest.py, SHARED_PATH_FAULTS), run
here through every adapter in the registry, in-process and without the rest of the stage: a tool that hangs is
a TIMEOUT at its own timeout, and a tool killed by a signal is a FAILED run, whichever adapter started it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import registry
from tests.faults.conftest import SCANNER_FAULTS, SHARED_PATH_FAULTS, make_fake, tool_env

FAULTS = {f.name: f for f in SCANNER_FAULTS if f.name in SHARED_PATH_FAULTS}


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "model.pkl").write_bytes(b"\x80\x02}q\x00.")  # read by modelscan, never loaded
    (root / "app.py").write_text("x = 1\n")  # bandit runs only on Python files
    (root / "Dockerfile").write_text("FROM scratch\n")  # checkov runs only on a tree with IaC files
    return root


def test_the_shared_faults_are_the_matrix_ones() -> None:
    assert set(FAULTS) == SHARED_PATH_FAULTS == {"hangs", "killed"}


@pytest.mark.parametrize("adapter", registry.ADAPTERS, ids=lambda a: a.spec.name)
def test_a_hanging_tool_is_a_timeout_for_every_adapter(adapter: registry.Adapter, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tool_env(adapter.spec.name), str(make_fake(tmp_path, adapter.spec.name, FAULTS["hangs"].body)))
    start = time.monotonic()
    run = adapter.run_on(_root(tmp_path), 0.5)
    assert time.monotonic() - start < 10  # the hang is cut at the tool's timeout, not waited out
    assert run.status is ToolStatus.TIMEOUT, run
    assert "timed out" in run.message


@pytest.mark.parametrize("adapter", registry.ADAPTERS, ids=lambda a: a.spec.name)
def test_a_tool_killed_by_a_signal_is_a_failed_run_for_every_adapter(adapter: registry.Adapter, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tool_env(adapter.spec.name), str(make_fake(tmp_path, adapter.spec.name, FAULTS["killed"].body)))
    run = adapter.run_on(_root(tmp_path), 30)
    assert run.status is ToolStatus.FAILED, run
    assert run.exit_code == -9 and "-9" in run.message
