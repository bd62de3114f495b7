"""The fault matrix's injection point, `MLSEC_<TOOL>_BIN`, is the caller's environment only: a config file (which a
repository can commit, and which on push events is read from the tree) cannot point a tool anywhere
(docs/guarantees.md#fault-injection). Generated from the catalog: every scan stage and external tool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlsec_actions import cli
from tests.faults.conftest import SCAN_STAGES, external_tools

CASES = [pytest.param(s.id, t, id=f"{s.id}-{t}") for s in SCAN_STAGES for t in external_tools(s)]


@pytest.mark.parametrize(("stage", "tool"), CASES)
@pytest.mark.parametrize("spelling", ["{tool}-bin", "{tool}_bin", "MLSEC_{TOOL}_BIN"])
def test_a_config_file_cannot_set_a_tool_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, stage: str, tool: str,
                                                spelling: str) -> None:
    for name in list(os.environ):
        if name.startswith(("MLSEC_", "GITHUB_")):
            monkeypatch.delenv(name)
    key = spelling.format(tool=tool, TOOL=tool.upper().replace("-", "_"))
    (tmp_path / "app.py").write_text("print('hello')\n")
    config = tmp_path / "mlsec.yml"
    config.write_text(f"{stage}:\n  {key}: {tmp_path / 'evil'}\n")
    code = cli.main([stage, str(tmp_path / "app.py"), "--config", str(config), "--sarif", str(tmp_path / "o.sarif")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{stage}.{key}: unknown option" in err
    assert not (tmp_path / "o.sarif").exists()  # refused before anything ran
