"""Security and schema lint of every workflow and action in the repository: zizmor (auditor persona, the
strictest), actionlint and check-jsonschema.

Each must report nothing on the real files; the negative tests prove each check does fail on a
workflow it should reject (so a clean result means something).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
ZIZMOR_INPUTS = ("actions", ".github", "action.yml", "examples")


def _workflows() -> list[Path]:
    return sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("examples/*/.github/workflows/*.yml")])


def _actions() -> list[Path]:
    return sorted([ROOT / "action.yml", *ROOT.glob("actions/*/action.yml")])


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _zizmor(*inputs: str | Path) -> subprocess.CompletedProcess[str]:
    # --offline: no GitHub API (online audits need a token and network); --strict-collection: a file
    # zizmor cannot parse is an error, not a warning and a silently skipped input.
    # --persona auditor: every audit at its most pedantic (concurrency-limits, undocumented-permissions, ...).
    return _run(BIN / "zizmor", "--offline", "--strict-collection", "--persona", "auditor", "--no-progress",
                "--color", "never", *inputs)


def _actionlint(*workflows: str | Path) -> subprocess.CompletedProcess[str]:
    return _run(BIN / "actionlint", "-no-color", "-oneline", *workflows)


def test_there_is_something_to_lint() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in [*_workflows(), *_actions()]}
    assert {".github/workflows/mlsecops.yml", ".github/workflows/devsecops.yml", ".github/workflows/ci.yml",
            "examples/ml-project/.github/workflows/mlsec.yml", "examples/two-pipelines/.github/workflows/mlsec.yml",
            "action.yml", "actions/code-scan/action.yml", "actions/_setup/action.yml",
            "actions/_trusted/action.yml"} <= names


def test_zizmor_reports_nothing() -> None:
    got = _zizmor(*ZIZMOR_INPUTS)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "No findings to report" in got.stdout, got.stdout + got.stderr


def test_zizmor_ignores_only_what_the_files_explain() -> None:
    # Every inline suppression names its audit and gives a reason after it.
    ignores = [(p, line) for p in [*_workflows(), *_actions()] for line in p.read_text(encoding="utf-8").splitlines()
               if "zizmor: ignore" in line]
    assert ignores, "expected the example's documented unpinned-uses suppressions"
    for path, line in ignores:
        assert re.search(r"zizmor: ignore\[[a-z-]+\] \S", line), (path, line)


def test_actionlint_reports_nothing() -> None:
    got = _actionlint(*_workflows())
    assert got.returncode == 0, got.stdout + got.stderr
    assert got.stdout == "", got.stdout


def test_workflows_match_the_github_workflow_schema() -> None:
    got = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *_workflows())
    assert got.returncode == 0, got.stdout + got.stderr


def test_actions_match_the_github_action_schema() -> None:
    got = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-actions", *_actions())
    assert got.returncode == 0, got.stdout + got.stderr


INJECTABLE = """\
name: injectable
on:
  pull_request_target:
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - run: |
          echo "title: ${{ github.event.pull_request.title }}"
"""


def test_zizmor_fails_on_template_injection(tmp_path: Path) -> None:
    wf = tmp_path / ".github" / "workflows" / "injectable.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(INJECTABLE, encoding="utf-8")
    got = _zizmor(wf)
    assert got.returncode != 0
    assert "template-injection" in got.stdout


def test_schema_check_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    wf = tmp_path / "broken.yml"
    wf.write_text("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps: not-a-list\n", encoding="utf-8")
    got = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", wf)
    assert got.returncode != 0


NO_CONCURRENCY = """\
name: no-concurrency
on:
  pull_request:
permissions: {}
jobs:
  scan:
    name: scan
    runs-on: ubuntu-latest
    permissions:
      contents: read  # checkout
    steps:
      - run: echo scanning
"""


def test_zizmor_auditor_fails_on_missing_concurrency(tmp_path: Path) -> None:
    wf = tmp_path / ".github" / "workflows" / "no-concurrency.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(NO_CONCURRENCY, encoding="utf-8")
    got = _zizmor(wf)
    assert got.returncode != 0
    assert "concurrency-limits" in got.stdout


BAD_EXPRESSION = """\
name: bad-expression
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions: {}
    steps:
      - env:
          OUT: ${{ steps.nope.outputs.value }}
        run: echo "$OUT"
"""


def test_actionlint_fails_on_an_unknown_step_reference(tmp_path: Path) -> None:
    wf = tmp_path / ".github" / "workflows" / "bad.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(BAD_EXPRESSION, encoding="utf-8")
    got = _actionlint(wf)
    assert got.returncode != 0
    assert "nope" in got.stdout


def _yaml(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _steps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, step) for every step of a workflow's jobs or an action's composite run."""
    doc = _yaml(path)
    if "jobs" in doc:
        return [(f"{path.name}:{job}", step) for job, spec in doc["jobs"].items() for step in spec.get("steps", [])]
    return [(path.name, step) for step in (doc.get("runs") or {}).get("steps", [])]


def test_expressions_reach_scripts_only_through_env() -> None:
    # `${{ }}` pasted into a script is template injection waiting for the first hostile input; env: is not.
    pasted = [(where, step.get("name")) for p in [*_workflows(), *_actions()] for where, step in _steps(p)
              if "${{" in str(step.get("run", ""))]
    assert pasted == []


_SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def test_every_action_is_pinned_by_commit_or_is_this_repository() -> None:
    for path in [*ROOT.glob(".github/workflows/*.yml"), *_actions()]:
        for where, step in _steps(path):
            uses = step.get("uses")
            if uses is None:
                continue
            # $/ resolves to this repository at the running commit; ./ only in ci.yml, which tests its own tree.
            ok = uses.startswith("$/") or (path.name == "ci.yml" and uses.startswith("./")) or _SHA_PIN.match(uses)
            assert ok, (where, uses)
    for path in ROOT.glob(".github/workflows/*.yml"):
        for job, spec in _yaml(path)["jobs"].items():
            uses = spec.get("uses")
            assert uses is None or uses.startswith("$/") or _SHA_PIN.match(uses), (path.name, job, uses)


def test_every_job_asks_for_its_own_permissions() -> None:
    for path in _workflows():
        doc = _yaml(path)
        assert doc.get("permissions") == {}, f"{path}: the workflow's default must be no permission at all"
        for job, spec in doc["jobs"].items():
            assert "permissions" in spec, f"{path}:{job} has no permissions: of its own"
            assert "write-all" not in str(spec["permissions"]) and "read-all" not in str(spec["permissions"])


def test_only_the_signing_jobs_may_mint_an_oidc_token() -> None:
    holders = [(path.name, job) for path in ROOT.glob(".github/workflows/*.yml")
               for job, spec in _yaml(path)["jobs"].items()
               if (spec.get("permissions") or {}).get("id-token") == "write"]
    assert sorted(holders) == [("ci.yml", "keyless-sign"), ("devsecops.yml", "sign"), ("devsecops.yml", "sign-image"),
                               ("interop.yml", "gh-attestation"), ("interop.yml", "openpubkey-reference"),
                               ("mlsecops.yml", "sign")]
