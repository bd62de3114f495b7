"""The composite actions' own steps in a hostile workspace (issue 9): nothing the checked-out repository holds
runs when a step starts mlsec.

Each step of every action that starts mlsec (`"$MLSEC_VENV_PYTHON" -I -m mlsec_actions <stage>`, and the
SARIF upload copy) is run as the runner runs it: `bash -eo pipefail` with the workspace as its folder, the
`${{ }}` expressions filled in from the action's input defaults and the earlier steps' outputs, and this
checkout's venv as the installed one. The workspace is the attacker's: an `mlsec` and a `python3` executable in
a folder first on PATH, an `mlsec_actions/` package, `sitecustomize.py`/`usercustomize.py`, and PYTHONPATH,
PYTHONSTARTUP and PYTHONUSERBASE pointing into it. Each plants a canary when run; none may. A control shows the
traps are live: the command the actions used to run (`mlsec <stage>` from PATH) fires them.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = Path(sys.executable)  # the checkout's venv stands for the one install.sh makes
INTERPRETER_ENV = "MLSEC_VENV_PYTHON"
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# Inputs without a default that an action requires.
# Inputs without a default that an action requires, and no vulnerability-DB lookup (offline).
REQUIRED = {"action.yml": {"stage": "model-scan", "extras": ""},
            "actions/code-scan/action.yml": {"vuln-db": "skip"}, "actions/sign/action.yml": {"artifacts": "app.py"}}


def _actions() -> list[Path]:
    """Every action that starts mlsec (the `_` helpers do not; tests/unit/test_action_steps.py holds the pattern)."""
    stages = [p for p in ROOT.glob("actions/*/action.yml") if not p.parent.name.startswith("_")]
    return sorted([ROOT / "action.yml", *stages])


def _canary_code(canary: Path, what: str) -> str:
    return f"import pathlib; pathlib.Path({str(canary)!r}).open('a').write({what!r} + '\\n')\n"


def hostile_workspace(ws: Path, canary: Path) -> dict[str, str]:
    """Write the attacker's workspace; return the environment an earlier step could have left behind."""
    (ws / "bin").mkdir(parents=True)
    for name in ("mlsec", "python", "python3"):
        exe = ws / "bin" / name
        exe.write_text(f"#!/bin/sh\necho 'PATH {name}' >> {str(canary)!r}\n", encoding="utf-8")
        exe.chmod(0o755)
    (ws / "mlsec_actions").mkdir()
    for module in ("__init__", "__main__", "cli"):
        (ws / "mlsec_actions" / f"{module}.py").write_text(_canary_code(canary, f"mlsec_actions.{module}"))
    for name in ("sitecustomize", "usercustomize", "startup"):
        (ws / f"{name}.py").write_text(_canary_code(canary, name), encoding="utf-8")
    (ws / "app.py").write_text("print('hello')\n", encoding="utf-8")
    (ws / "weights.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))  # written here, never loaded
    return {"PATH": f"{ws / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(ws),
            "PYTHONSTARTUP": str(ws / "startup.py"), "PYTHONUSERBASE": str(ws)}


_GITHUB_CONTEXT = {"github.event.repository.default_branch": "main"}


def _render(value: object, inputs: dict[str, str], outputs: dict[str, dict[str, str]], ws: Path) -> str:
    def one(match: re.Match[str]) -> str:
        return next((v for v in (term(e.strip()) for e in match.group(1).split("||")) if v), "")

    def term(expr: str) -> str:
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr)
        if step:
            return outputs.get(step.group(1), {}).get(step.group(2), "")
        if expr == "github.workspace":
            return str(ws)
        if expr in _GITHUB_CONTEXT:  # GitHub's event context, which cannot exist here: stand-in values
            return _GITHUB_CONTEXT[expr]
        raise AssertionError(f"expression the test does not know: {expr}")
    return _EXPR.sub(one, str(value))


def _read_outputs(path: Path) -> dict[str, str]:
    got: dict[str, str] = {}
    lines = iter(path.read_text(encoding="utf-8").splitlines()) if path.exists() else iter(())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<", 1)[0]:
            name, marker = line.split("<<", 1)
            got[name] = "\n".join(iter(lambda: next(lines), marker))
        elif "=" in line:
            name, value = line.split("=", 1)
            got[name] = value
    return got


def run_mlsec_steps(action: Path, ws: Path, hostile: dict[str, str], tmp: Path) -> list[tuple[str, int, str]]:
    """Every step of `action` that uses the venv interpreter, in order; (step name, exit code, output) each."""
    doc: dict[str, Any] = yaml.safe_load(action.read_text(encoding="utf-8"))
    rel = action.relative_to(ROOT).as_posix()
    inputs = {k: str(v.get("default", "")) for k, v in (doc.get("inputs") or {}).items()}
    inputs.update(REQUIRED.get(rel, {}))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "PYTHON", "VIRTUAL_ENV"))}
    outputs: dict[str, dict[str, str]] = {}
    ran = []
    for index, step in enumerate(doc["runs"]["steps"]):
        step_id = step.get("id") or f"step{index}"
        if "run" not in step:
            continue
        if "_setup/install.sh" in step["run"]:  # the install itself: tests/integration/test_setup_isolation.py
            outputs[step_id] = {"python": str(VENV_PYTHON), "bin-dir": str(VENV_PYTHON.parent)}
            continue
        if INTERPRETER_ENV not in (step.get("env") or {}):
            continue
        env_block = {k: _render(v, inputs, outputs, ws) for k, v in step["env"].items()}
        output_file = tmp / f"output-{index}"
        env = {**base, **env_block, **hostile, "HOME": str(tmp / "home"), "RUNNER_TEMP": str(tmp / "runner-temp"),
               "GITHUB_ACTION_PATH": str(action.parent), "GITHUB_WORKSPACE": str(ws),
               "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
               "GITHUB_ENV": str(tmp / "github-env"), "GITHUB_PATH": str(tmp / "github-path")}
        script = tmp / f"step-{index}.sh"
        script.write_text(_render(step["run"], inputs, outputs, ws), encoding="utf-8")
        got = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=ws, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        outputs[step_id] = _read_outputs(output_file)
        ran.append((str(step.get("name")), got.returncode, got.stdout + got.stderr))
    return ran


@pytest.mark.parametrize("action", _actions(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_action_steps_run_nothing_from_a_hostile_workspace(tmp_path: Path, action: Path) -> None:
    ws, canary = tmp_path / "ws", tmp_path / "PWNED"
    hostile = hostile_workspace(ws, canary)
    (tmp_path / "home").mkdir()
    ran = run_mlsec_steps(action, ws, hostile, tmp_path)
    assert ran, "no step of this action starts mlsec"
    assert not canary.exists(), f"workspace code ran: {canary.read_text()} {ran}"
    # Our CLI did run, and its one-line messages are ours (a usage error for inputs the test leaves empty is fine).
    name, code, log = ran[0]
    assert code in (0, 1, 2, 3), (name, code, log)
    assert "Traceback" not in log, log
    if code == 2:
        assert "mlsec: error:" in log, log


def test_scan_action_uploads_its_own_sarif(tmp_path: Path) -> None:
    # code-scan end to end through its steps: SARIF written by the real stage, then the upload copy made.
    ws, canary = tmp_path / "ws", tmp_path / "PWNED"
    hostile = hostile_workspace(ws, canary)
    (tmp_path / "home").mkdir()
    ran = run_mlsec_steps(ROOT / "actions" / "model-scan" / "action.yml", ws, hostile, tmp_path)
    assert [(name, code) for name, code, _ in ran] == [("mlsec model-scan", 0),
                                                       ("Prepare the upload under the category input", 0)], ran
    assert (ws / "mlsec-results" / "model-scan.sarif").is_file()
    assert (tmp_path / "runner-temp" / "mlsec-upload" / "model-scan.sarif").is_file()
    assert not canary.exists()


def test_the_traps_are_live(tmp_path: Path) -> None:
    # What the actions used to run, `mlsec <stage>` resolved on PATH, in the same workspace: the trap fires.
    ws, canary = tmp_path / "ws", tmp_path / "PWNED"
    hostile = hostile_workspace(ws, canary)
    subprocess.run(["bash", "-c", "mlsec code-scan"], cwd=ws, env={**os.environ, **hostile}, check=False, timeout=60)
    assert canary.read_text() == "PATH mlsec\n"
    canary.unlink()
    # And the venv's interpreter without -I imports the workspace's sitecustomize and mlsec_actions.
    subprocess.run([str(VENV_PYTHON), "-m", "mlsec_actions", "--version"], cwd=ws, env={**os.environ, **hostile},
                   capture_output=True, check=False, timeout=60)
    assert {"sitecustomize", "mlsec_actions.__init__"} <= set(canary.read_text().split()), canary.read_text()
