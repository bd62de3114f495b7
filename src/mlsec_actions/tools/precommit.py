"""pre-commit, run on the repository's own `.pre-commit-config.yaml`, only when the caller opts in.

Hooks are the repository's code: this is the one tool we run *inside* the tree on purpose, so the stage runs
it only with `--run-hooks`, and the workflow gives that job no write token and nothing the trusted stages
need. pre-commit itself is ours (`python -I -m pre_commit`); its cache (`PRE_COMMIT_HOME`) is a folder of
ours, and the `PRE_COMMIT_*` / `SKIP` variables of the caller are removed so a hook cannot be skipped from
the environment. Each failing hook is a finding with its id and the files it changed (seen with `git status`
run with the repository's fsmonitor and hooks switched off).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from mlsec_actions.findings import Finding, Location, Rule, Severity, ToolRun, ToolStatus
from mlsec_actions.tools.base import Isolation, ToolSpec, execute, safe

SPEC = ToolSpec(
    name="pre-commit",
    executable="pre-commit",
    version_args=("--version",),
    version_pattern=r"pre-commit\s+(\S+)",
    ok_exit_codes=frozenset({0, 1}),
    install_hint="install mlsec-actions[dev] (pre-commit) or pip install pre-commit",
    isolation=Isolation(discovers=(".pre-commit-config.yaml",), env_prefixes=("PRE_COMMIT", "SKIP"),
                        python_module="pre_commit"),
)
DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/precommit.md"
HOOK_FAILED = Rule(
    id="pre-commit/hook-failed", name="PreCommitHookFailed",
    short_description="pre-commit: a hook of the repository failed",
    full_description="A hook of the repository's .pre-commit-config.yaml failed or changed files when run on "
                     "every file.",
    help_text="Run `pre-commit run --all-files` locally, fix what the hook reports and commit the result.",
    help_uri=f"{DOCS}#pre-commithook-failed", tags=("quality", "security"), precision="high")
_STATUS = re.compile(r"^(?P<title>.+?)\.{2,}(?:\([^)]*\))?(?P<status>Passed|Failed|Skipped)$")
_HOOK_ID = re.compile(r"^- hook id: (?P<id>\S+)$")
MAX_FILES = 50


def _changed(root: Path) -> list[str]:
    """Files that differ from the index after the hooks ran (git with the repository's hooks disabled)."""
    cmd = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "status", "--porcelain", "-z",
           "--untracked-files=no"]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        got = subprocess.run(cmd, cwd=root, capture_output=True, timeout=60, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return []
    entries = got.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [e[3:] for e in entries if len(e) > 3][:MAX_FILES]


def run(root: Path, config: Path, timeout: float) -> tuple[list[Finding], ToolRun]:
    """`pre-commit run --all-files` in `root`; one finding per failing hook."""
    with tempfile.TemporaryDirectory(prefix="mlsec-pre-commit-") as home:
        args = ["run", "--all-files", "--color", "never", "--config", str(config)]
        # pre-commit must run in the repository (hooks are given its files): the one deliberate exception.
        got = execute(SPEC, args, timeout=timeout, workdir=root, env={"PRE_COMMIT_HOME": home})
    if got.run.status is not ToolStatus.OK:
        return [], got.run
    text = got.stdout.decode("utf-8", "replace")
    failed = _failed(text)
    if got.run.exit_code == 1 and not failed:
        message = safe(text.strip().splitlines()[-1] if text.strip() else "exited 1 without naming a hook")
        return [], ToolRun(SPEC.name, ToolStatus.FAILED, version=got.run.version, command=got.run.command,
                           exit_code=1, message=message)
    changed = _changed(root) if failed else []
    findings = [Finding(rule=HOOK_FAILED, severity=Severity.MEDIUM, location=Location(config.name),
                        message=safe(f"pre-commit hook {hook} ({title}) failed"
                                     + (f"; files changed: {', '.join(changed)}" if changed else "")),
                        properties=(("hook", safe(hook)), ("files", safe(",".join(changed)))))
                for hook, title in failed]
    return findings, got.run


def _failed(text: str) -> list[tuple[str, str]]:
    """(hook id, title) of every hook pre-commit reported as Failed."""
    out: list[tuple[str, str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = _STATUS.match(line.strip())
        if not match or match["status"] != "Failed":
            continue
        hook = next((m["id"] for ln in lines[i + 1:i + 3] if (m := _HOOK_ID.match(ln.strip()))), match["title"])
        out.append((hook, match["title"].strip()))
    return out
