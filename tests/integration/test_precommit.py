"""precommit: the fast pass, the repository's hooks only on request, and our `.pre-commit-hooks.yaml` run by a
real `pre-commit` on a fixture repository (no network: the hooks become `repo: local` hooks with our installed
`mlsec`, the entries and filters exactly as shipped)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlsec_actions import cli
from tests import secret_corpus

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# A Hugging Face token of the scanner's shape, made like tests/secret_corpus.py's (not a real credential).
SECRET = secret_corpus.values(5)["huggingface-token"]


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned",))


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "MLSEC_RUN_ID"):
        monkeypatch.delenv(var, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "app.py").write_text("print('hello')\n")
    return repo


def _run(repo: Path, *extra: str) -> tuple[int, dict[str, object]]:
    sarif = repo.parent / "precommit.sarif"
    code = cli.main(["precommit", str(repo), "--sarif", str(sarif), *extra])
    return code, json.loads(sarif.read_text())["runs"][0]


def _rules(run: dict[str, object]) -> set[str]:
    return {r["ruleId"] for r in run.get("results", [])}  # type: ignore[attr-defined]


def test_fast_pass_finds_secrets_and_pickles_without_running_hooks(repo: Path) -> None:
    (repo / "cfg.py").write_text(f"TOKEN = '{SECRET}'\n")
    (repo / "m.pkl").write_bytes(pickle.dumps(_Evil(), protocol=2))
    (repo / "pwned").unlink(missing_ok=True)
    hook = "- repo: local\n  hooks:\n  - id: boom\n    name: boom\n    entry: touch pwned\n    language: system\n" \
           "    pass_filenames: false\n"
    (repo / ".pre-commit-config.yaml").write_text("repos:\n" + "\n".join("  " + ln for ln in hook.splitlines()))
    code, run = _run(repo)
    rules = _rules(run)
    assert code == 0
    assert any(r.startswith("secret/") for r in rules) and any(r.startswith("pickle/") for r in rules), rules
    assert not (repo / "pwned").exists()  # no --run-hooks: nothing of the repository ran


def test_run_hooks_reports_each_failing_hook_with_the_files_it_changed(repo: Path) -> None:
    (repo / "notes.txt").write_text("trailing   \n")
    config = {"repos": [{"repo": "local", "hooks": [
        {"id": "strip-trailing", "name": "strip trailing", "language": "system", "files": r"\.txt$",
         "entry": "sed -i -e s/[[:space:]]*$//"},
        {"id": "always-ok", "name": "always ok", "language": "system", "entry": "true", "pass_filenames": False},
        {"id": "always-fails", "name": "always fails", "language": "system", "entry": "false",
         "pass_filenames": False}]}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config))
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    code, run = _run(repo, "--run-hooks", "--timeout", "120")
    assert code == 0
    results = [r for r in run["results"] if r["ruleId"] == "pre-commit/hook-failed"]  # type: ignore[index]
    by_hook = {r["properties"]["hook"]: r for r in results}
    assert set(by_hook) == {"strip-trailing", "always-fails"}
    assert "notes.txt" in by_hook["strip-trailing"]["message"]["text"]
    tool = next(i for i in run["invocations"] if i["properties"]["tool"] == "pre-commit")  # type: ignore[index]
    assert tool["executionSuccessful"]


def test_shipped_hooks_run_under_real_pre_commit(repo: Path, tmp_path: Path) -> None:
    shipped = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hooks = []
    for h in shipped:
        local = {k: v for k, v in h.items() if k not in ("language", "description")}
        local["language"] = "system"
        local["entry"] = str(BIN / h["entry"].split()[0]) + " " + h["entry"].split(" ", 1)[1]
        hooks.append(local)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "PRE_COMMIT"))}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pc-home")
    pre_commit = [sys.executable, "-I", "-m", "pre_commit", "run", "--all-files", "--color", "never"]
    _git(repo, "add", ".")
    clean = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (repo / "cfg.py").write_text(f"TOKEN = '{SECRET}'\n")
    (repo / "m.pkl").write_bytes(pickle.dumps(_Evil(), protocol=2))
    _git(repo, "add", ".")
    dirty = subprocess.run(pre_commit, cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert dirty.returncode == 1
    assert "mlsec-secrets-and-models" in dirty.stdout and "mlsec-model-scan" in dirty.stdout
    assert "cfg.py" in dirty.stdout and "m.pkl" in dirty.stdout and SECRET not in dirty.stdout
    assert not list(repo.glob("mlsec-results"))  # hook mode writes no SARIF into the repository
