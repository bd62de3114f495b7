"""actions/_setup/install.sh with the `iac` extra (what the code-scan action asks for): checkov goes into a venv
of its own inside the tool venv, never into the package's (its pins conflict with the sbom extra's), and its
command sits beside the interpreter, where code-scan finds it: a Dockerfile is scanned by the real checkov."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "actions" / "_setup" / "install.sh"


def _pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["iac"]
    return next(d for d in deps if d.startswith("checkov==")).split("==")[1]


def test_iac_extra_installs_checkov_in_its_own_venv_found_by_code_scan(tmp_path: Path) -> None:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLSEC_", "GITHUB_", "PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))}
    cache = Path.home() / ".cache" / "mlsec-setup-test"  # shared with test_setup_isolation: quick after the first
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    output = tmp_path / "github_output"
    env = {**keep, "RUNNER_TEMP": str(runner_temp), "MLSEC_SETUP_EXTRAS": "iac", "MLSEC_SETUP_CACHE_DIR": str(cache),
           "GITHUB_OUTPUT": str(output)}
    got = subprocess.run(["bash", str(INSTALL)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
                         check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    venv = runner_temp / "mlsec-venv"
    python = venv / "bin" / "python"
    assert f"python={python}" in output.read_text()
    link = venv / "bin" / "checkov"
    assert link.is_symlink() and link.resolve() == (venv / "opt" / "checkov" / "bin" / "checkov").resolve()
    probe = "import importlib.util as u; print(u.find_spec('checkov') is None)"
    alone = subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert alone.stdout.strip() == "True", "checkov was installed into the package's venv"
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "Dockerfile").write_text("FROM python:3.11\nRUN pip install flask\n")
    sarif = tmp_path / "code-scan.sarif"
    scan = subprocess.run([str(python), "-I", "-m", "mlsec_actions", "code-scan", str(tree), "--sarif", str(sarif),
                           "--vuln-db", "skip"], cwd=tmp_path, env=keep, capture_output=True, text=True, timeout=600,
                          check=False)
    # Only `iac` was asked for: trivy and gitleaks are missing (a tool error, exit 1), checkov's findings stay.
    assert scan.returncode == 1, scan.stderr
    run = json.loads(sarif.read_text())["runs"][0]
    status = {i["properties"]["tool"]: i["properties"]["status"] for i in run["invocations"]}
    assert status["checkov"] == "ok" and status["trivy"] == status["gitleaks"] == "missing", status
    versions = {i["properties"]["tool"]: i["properties"].get("version") for i in run["invocations"]}
    assert versions["checkov"] == _pin()  # the pinned checkov, read from its own report
    assert any(r["ruleId"].startswith("checkov/CKV_DOCKER_") for r in run["results"]), run["results"]
