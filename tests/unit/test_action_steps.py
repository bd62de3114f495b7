"""How every composite action starts mlsec (issue 9): the venv's interpreter from the setup step's `python`
output, in isolated mode, `"$MLSEC_VENV_PYTHON" -I -m mlsec_actions <stage>`; never a bare `mlsec` (or any
program) looked up on PATH, where the checked-out repository or an earlier step can put its own.

A new `actions/<stage>/action.yml` copied from an old pattern fails here, naming the file, the step and the line
(docs/workflows.md#stage-action-pattern says what to write instead).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlsec_actions import catalog

REPO = Path(__file__).resolve().parents[2]
INTERPRETER_ENV = "MLSEC_VENV_PYTHON"
SETUP_SCRIPT = "_setup/install.sh"
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'")
_BARE_MLSEC = re.compile(r"(?:^|[\s;&|(`!])mlsec(?=$|[\s;&|)`])")
_STEP_OUTPUT = re.compile(r"^\$\{\{\s*steps\.([\w-]+)\.outputs\.python\s*\}\}$")
_CALL = re.compile(rf'"\${INTERPRETER_ENV}"(?P<flags>(?:\s+-[A-Za-z]+)*)\s+(?P<what>\S+)(?:\s+(?P<stage>"?[\w$-]+"?))?')


def _actions() -> list[Path]:
    return sorted([REPO / "action.yml", *REPO.glob("actions/*/action.yml")])


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list((doc.get("runs") or {}).get("steps") or [])


def _code_lines(script: str) -> list[tuple[int, str]]:
    """The script's lines with comments and quoted text removed (where a command name cannot be)."""
    out = []
    for number, line in enumerate(script.splitlines(), 1):
        code = _QUOTED.sub('""', line)
        code = re.sub(r"(?:^|\s)#.*$", "", code)
        out.append((number, code))
    return out


def problems(doc: dict[str, Any]) -> list[str]:
    """Every way the action's steps start mlsec other than the isolated venv interpreter of its setup step."""
    found: list[str] = []
    setup_ids = {s.get("id") for s in _steps(doc) if SETUP_SCRIPT in str(s.get("run", ""))}
    for index, step in enumerate(_steps(doc)):
        script = str(step.get("run", ""))
        name = step.get("name") or f"step {index + 1}"
        if SETUP_SCRIPT in script and not step.get("id"):
            found.append(f"{name}: the install step needs an id (its `python` output starts mlsec)")
        for number, code in _code_lines(script):
            if _BARE_MLSEC.search(code):
                found.append(f"{name}: line {number}: runs `mlsec` from PATH; use \"${INTERPRETER_ENV}\" -I -m "
                             "mlsec_actions")
        calls = list(_CALL.finditer(script))
        if not calls and "mlsec_actions" in script:
            found.append(f"{name}: starts mlsec_actions other than as \"${INTERPRETER_ENV}\" -I -m mlsec_actions")
        for call in calls:
            if "-I" not in call.group("flags").split():
                found.append(f"{name}: \"${INTERPRETER_ENV}\" without -I (isolated mode)")
        if calls:
            source = str((step.get("env") or {}).get(INTERPRETER_ENV, ""))
            match = _STEP_OUTPUT.match(source.strip())
            if not match or match.group(1) not in setup_ids:
                found.append(f"{name}: env {INTERPRETER_ENV} must be ${{{{ steps.<install step id>.outputs.python }}}},"
                             f" not {source!r}")
    return found


def stage_calls(doc: dict[str, Any]) -> list[str]:
    """The stages the action's steps start (`-m mlsec_actions <stage>`)."""
    return [str(c.group("stage") or "").strip('"') for s in _steps(doc)
            for c in _CALL.finditer(str(s.get("run", ""))) if c.group("what") == "mlsec_actions"]


@pytest.mark.parametrize("path", _actions(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_action_starts_mlsec_only_through_the_isolated_venv_interpreter(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert problems(doc) == [], path.relative_to(REPO).as_posix()


# Besides its stage, an action may run these helper commands, which only read the stage's results.
_HELPERS = {"gate": ["report"]}


def test_every_stage_action_runs_its_own_stage() -> None:
    for stage in catalog.implemented():
        path = REPO / "actions" / stage.id / "action.yml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert stage_calls(doc) == [stage.id, *_HELPERS.get(stage.id, [])], path.relative_to(REPO).as_posix()
    root = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert stage_calls(root) == ["$STAGE"]


def test_workflows_never_run_mlsec_from_path() -> None:
    for path in sorted(REPO.glob(".github/workflows/*.yml")):
        jobs = yaml.safe_load(path.read_text(encoding="utf-8"))["jobs"]
        for job_id, job in jobs.items():
            for step in job.get("steps") or []:
                bare = [n for n, code in _code_lines(str(step.get("run", ""))) if _BARE_MLSEC.search(code)]
                assert not bare, (path.name, job_id, step.get("name"), bare)


def _action(*steps: dict[str, Any]) -> dict[str, Any]:
    setup = {"name": "Install", "id": "setup", "shell": "bash", "run": '"$GITHUB_ACTION_PATH/../_setup/install.sh"'}
    return {"runs": {"using": "composite", "steps": [setup, *steps]}}


GOOD_ENV = {INTERPRETER_ENV: "${{ steps.setup.outputs.python }}"}


@pytest.mark.parametrize(("script", "env", "expected"), [
    ('rc=0\nmlsec code-scan || rc=$?\n', GOOD_ENV, "runs `mlsec` from PATH"),
    ('if mlsec gate; then echo ok; fi\n', GOOD_ENV, "runs `mlsec` from PATH"),
    ('"$(dirname "$(command -v mlsec)")/python" -I x.py\n', GOOD_ENV, "runs `mlsec` from PATH"),
    ('exec mlsec sbom .\n', GOOD_ENV, "runs `mlsec` from PATH"),
    ('python3 -m mlsec_actions code-scan\n', GOOD_ENV, "other than as"),
    ('"$MLSEC_VENV_PYTHON" -m mlsec_actions code-scan\n', GOOD_ENV, "without -I"),
    ('"$MLSEC_VENV_PYTHON" -I -m mlsec_actions code-scan\n', {}, "must be"),
    ('"$MLSEC_VENV_PYTHON" -I -m mlsec_actions code-scan\n', {INTERPRETER_ENV: "python3"}, "must be"),
    ('"$MLSEC_VENV_PYTHON" -I -m mlsec_actions code-scan\n',
     {INTERPRETER_ENV: "${{ steps.other.outputs.python }}"}, "must be"),
])
def test_the_checker_catches_the_old_patterns(script: str, env: dict[str, str], expected: str) -> None:
    got = problems(_action({"name": "scan", "shell": "bash", "env": env, "run": script}))
    assert got and all(expected in p for p in got), got


def test_the_checker_accepts_the_pattern_and_ignores_text() -> None:
    script = ('# mlsec code-scan is started below\necho "::error title=mlsec code-scan::failed"\n'
              "echo 'mlsec gate' >&2\nrc=0\n\"$MLSEC_VENV_PYTHON\" -I -m mlsec_actions code-scan || rc=$?\n")
    assert problems(_action({"name": "scan", "shell": "bash", "env": GOOD_ENV, "run": script})) == []
    no_id = _action()
    del no_id["runs"]["steps"][0]["id"]
    assert problems(no_id) == ["Install: the install step needs an id (its `python` output starts mlsec)"]
