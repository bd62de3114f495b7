"""actions/_setup/install.sh with the `wapiti` extra (what the dast action asks for when it has targets): wapiti3
goes into a venv of its own inside the tool venv, never into the package's (its pins fight ours), at the pin
scripts/install-wapiti uses for the dev venv, and its command sits beside the interpreter, where dast finds it:
the vulnerable app's SQL injection is found by the real wapiti."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.vulnerable_app import Running, vulnerable

pytestmark = pytest.mark.integration
__all__ = ["vulnerable"]  # session fixture used by name

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "actions" / "_setup" / "install.sh"


def _pin(path: Path, pattern: str) -> str:
    found = re.search(pattern, path.read_text(encoding="utf-8"))
    assert found, path
    return found.group(1)


def test_the_setup_and_the_dev_venv_pin_the_same_wapiti() -> None:
    setup = _pin(INSTALL, r'wapiti_pin="wapiti3==([0-9.]+)"')
    assert setup == _pin(ROOT / "scripts" / "install-wapiti", r'pin="wapiti3==([0-9.]+)"')


def test_wapiti_extra_installs_wapiti_in_its_own_venv_found_by_dast(tmp_path: Path, vulnerable: Running) -> None:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLSEC_", "GITHUB_", "PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))}
    cache = Path.home() / ".cache" / "mlsec-setup-test"  # shared with the other setup tests: quick after the first
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    output = tmp_path / "github_output"
    env = {**keep, "RUNNER_TEMP": str(runner_temp), "MLSEC_SETUP_EXTRAS": "wapiti",
           "MLSEC_SETUP_CACHE_DIR": str(cache), "GITHUB_OUTPUT": str(output)}
    got = subprocess.run(["bash", str(INSTALL)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
                         check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    venv = runner_temp / "mlsec-venv"
    python = venv / "bin" / "python"
    assert f"python={python}" in output.read_text()
    link = venv / "bin" / "wapiti"
    assert link.is_symlink() and link.resolve() == (venv / "opt" / "wapiti" / "bin" / "wapiti").resolve()
    probe = "import importlib.util as u; print(u.find_spec('wapitiCore') is None)"
    alone = subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert alone.stdout.strip() == "True", "wapiti was installed into the package's venv"
    sarif = tmp_path / "dast.sarif"
    scan = subprocess.run([str(python), "-I", "-m", "mlsec_actions", "dast", "--sarif", str(sarif), "--target",
                           vulnerable.url + "/", "--wapiti-modules", "sql", "--depth", "1", "--timeout", "150"],
                          cwd=tmp_path, env=keep, capture_output=True, text=True, timeout=300, check=False)
    assert scan.returncode == 0, scan.stderr
    run = json.loads(sarif.read_text())["runs"][0]
    status = {i["properties"]["tool"]: i["properties"]["status"] for i in run["invocations"]}
    assert status["wapiti"] == "ok", status
    assert "wapiti/sql-injection" in {r["ruleId"] for r in run["results"]}
