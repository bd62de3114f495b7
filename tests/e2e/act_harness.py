"""Run a consumer repository's workflow under act in host mode, offline, against this working tree.

Chain exercised: consumer workflow -> this repo's reusable workflow -> composite action -> the
package installed from the staged tree -> real trivy. GitHub-owned actions are replaced by the
stand-ins in `standins/` via `--local-repository OWNER/REPO@SHA=DIR`; this repository itself is
mapped the same way, at the ref the consumer names and at the ref `$/` references are rewritten to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.act_rewrite import rewrite_self_refs, self_refs

ROOT = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
ACT = ROOT / ".venv" / "bin" / "act"
SELF_REPO = "mlsec-actions/mlsec-actions"
SELF_REF = "e2e-self"  # what `$/` is rewritten to; any ref works, it only has to be mapped
# Shared by every act job of every run (uv's cache is safe for concurrent use): a job's install takes
# seconds instead of the half minute a cold cache costs.
SETUP_CACHE = Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "mlsec-setup-e2e"
# What the package install needs, plus everything YAML a workflow can reach.
STAGED = ("action.yml", "actions", ".github", "src", "policies", "pyproject.toml", "README.md", "LICENSE")
_PIN = re.compile(r"uses:\s*([\w.-]+/[\w.-]+)(?:/[\w./-]+)?@([0-9a-f]{40})")
STANDIN_FOR = {
    "actions/checkout": STANDINS / "checkout",
    "github/codeql-action": STANDINS / "codeql-action",
    "actions/upload-artifact": STANDINS / "upload-artifact",
    "actions/download-artifact": STANDINS / "download-artifact",
    "actions/cache": STANDINS / "cache",
    # Steps the e2e runs never take (builder: buildx, dast-zap: true): mapped so act resolves their pins; they fail
    # loudly if run (no Docker engine here).
    "zaproxy/action-baseline": STANDINS / "zap-baseline",
    "docker/setup-buildx-action": STANDINS / "setup-buildx",
    "docker/build-push-action": STANDINS / "build-push",
}


@dataclass(frozen=True)
class ActRun:
    """One finished act run and what the stand-ins recorded."""

    returncode: int
    """act's exit code (0 when every job succeeded)."""
    log: str
    """act's combined stdout and stderr."""
    record_dir: Path
    """Where the stand-ins wrote their records (under the test's tmp_path)."""
    seconds: float = 0.0
    """Wall-clock time of the act run (reported, never asserted)."""

    def artifact(self, name: str) -> Path:
        """Where the upload-artifact stand-in kept the artifact `name` (missing when it was never uploaded)."""
        return self.record_dir / "artifacts" / name

    def uploads(self) -> list[dict[str, Any]]:
        """One entry per SARIF file the upload-sarif stand-in received."""
        path = self.record_dir / "upload-sarif.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def upload(self, category: str) -> dict[str, Any]:
        """The one SARIF upload under `category` (fails the test when there is not exactly one)."""
        got = [u for u in self.uploads() if u["category"] == category]
        assert len(got) == 1, (category, [u["category"] for u in self.uploads()], self.log[-4000:])
        return got[0]

    def job_result(self, name: str) -> str | None:
        """'succeeded' or 'failed' for the job whose display name starts with `name`; None when it never ran."""
        found = re.findall(rf"^\[[^\]]*/{re.escape(name)}[^\]]*\]\s+\S+\s+Job (succeeded|failed)", self.log, re.M)
        return found[-1] if found else None


def stage_self(dest: Path) -> Path:
    """Copy the parts of this working tree a workflow needs, with `$/` spelled out for act."""
    dest.mkdir(parents=True)
    for name in STAGED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.is_file():
            shutil.copy2(src, dest / name)
    for yml in [*dest.rglob("*.yml"), *dest.rglob("*.yaml")]:
        text = yml.read_text(encoding="utf-8")
        if self_refs(text):
            yml.write_text(rewrite_self_refs(text, SELF_REPO, SELF_REF), encoding="utf-8")
    return dest


def pinned_actions(tree: Path) -> set[tuple[str, str]]:
    """Every (owner/repo, sha) a workflow or action in `tree` pins."""
    found = set()
    for yml in [*tree.rglob("*.yml"), *tree.rglob("*.yaml")]:
        found.update(_PIN.findall(yml.read_text(encoding="utf-8")))
    return found


_GIT_ENV = {"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
            "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.invalid"}


def git_init(repo: Path) -> None:
    """Make `repo` a one-commit git repository (act reads the sha, ref and remote from it)."""
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "e2e"],
                 ["remote", "add", "origin", "https://github.com/example-org/ml-project.git"]):
        subprocess.run(["git", *args], cwd=repo, env={**os.environ, **_GIT_ENV}, check=True, capture_output=True)


def git_commit(repo: Path, files: dict[str, str], message: str) -> str:
    """Write `files` (path -> text) into `repo`, commit them, and return the new commit's SHA."""
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    env = {**os.environ, **_GIT_ENV}
    subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True, capture_output=True)
    return head_sha(repo)


def head_sha(repo: Path) -> str:
    got = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    return got.stdout.strip()


def run_workflow(consumer: Path, workflow: Path, work: Path, *, event: str = "push",
                 variables: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 secrets: dict[str, str] | None = None, event_payload: dict[str, Any] | None = None,
                 timeout: float = 900, prepare_staged: Callable[[Path], None] | None = None,
                 trace: Path | None = None, inspect: Callable[[Path], None] | None = None,
                 wrapper: tuple[str, ...] = ()) -> ActRun:
    """Run `workflow` of the git repository `consumer` under act; everything it writes goes in `work`.

    `variables` become `vars.*` (`--var`), `env` extra environment for every step (`--env`), `secrets`
    the repository's `secrets.*` (written to a dotenv `--secret-file`, so values stay off act's command line),
    `event_payload` the event's payload (`github.event`, act's `-e`), `prepare_staged` a change to the staged copy
    of this project before act installs it (the fault matrix's injection; never the working tree), `trace` a file
    for an `strace -f` log of every file act and every process of every job opened, `inspect` a look at the jobs'
    folders (workspaces, runner temp, step summaries: act's cache folder) before they are removed, `wrapper` a
    command act is started through (benchmarks/workflow.py: one that stamps each line of act's output with the time).

    Nothing of the consumer's tree configures act: its env, secret, var and input files and its `.actrc` are
    ours (empty when not given), so a hostile tree's `.env` never becomes the jobs' environment.
    """
    staged = stage_self(work / "mlsec-actions")
    if prepare_staged is not None:
        prepare_staged(staged)
    record = work / "record"
    record.mkdir()
    mappings = [f"{SELF_REPO}@{ref}={staged}" for ref in (SELF_REF, *_self_refs_in(workflow))]
    # The consumer's pins are in its workflows; its tree is not walked (it may be ~1,000 folders deep or link to /).
    for repo, sha in sorted(pinned_actions(staged) | pinned_actions(consumer / ".github")):
        # Pins without a stand-in (setup-python in ci.yml) are not on the e2e path; if one ever is,
        # act fails offline on it, loudly.
        if repo in STANDIN_FOR:
            mappings.append(f"{repo}@{sha}={STANDIN_FOR[repo]}")
    home = work / "home"
    home.mkdir()
    # act asks which default image to use on first start unless it finds a config file.
    (home / ".actrc").write_text("-P ubuntu-latest=-self-hosted\n", encoding="utf-8")
    cmd = [str(ACT), event, "-W", str(workflow), "-C", str(consumer),
           "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode", "--no-skip-checkout",
           "--action-cache-path", str(work / "act-cache"), "--cache-server-path", str(work / "act-cache-server"),
           "--no-cache-server", "--env", f"E2E_RECORD_DIR={record}", "--env", f"E2E_CHECKOUT_SOURCE={consumer}",
           # The actions/cache stand-in's entries: one folder per act run (an act session's cache).
           "--env", f"E2E_CACHE_DIR={work / 'cache'}",
           # install.sh ignores UV_*/PIP_* from the job; its own cache setting keeps the installs quick.
           "--env", f"MLSEC_SETUP_CACHE_DIR={SETUP_CACHE}"]
    for mapping in mappings:
        cmd += ["--local-repository", mapping]
    if event_payload is not None:
        (work / "event.json").write_text(json.dumps(event_payload), encoding="utf-8")
        cmd += ["-e", str(work / "event.json")]
    for name, value in (variables or {}).items():
        cmd += ["--var", f"{name}={value}"]
    for name, value in (env or {}).items():
        cmd += ["--env", f"{name}={value}"]
    secret_file = work / "act.secrets"
    secret_file.write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in (secrets or {}).items()), encoding="utf-8")
    secret_file.chmod(0o600)
    # act's defaults are `.env`, `.vars`, `.input` and `.secrets` in the consumer's folder: files the tree controls.
    for flag, name in (("--env-file", "act.env"), ("--var-file", "act.vars"), ("--input-file", "act.input")):
        (work / name).write_text("", encoding="utf-8")
        cmd += [flag, str(work / name)]
    cmd += ["--secret-file", str(secret_file)]
    if trace is not None:
        cmd = [*strace_prefix(trace), *cmd]
    cmd = [*wrapper, *cmd]
    host_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLSEC_", "RUNNER_"))}
    host_env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               UV_CACHE_DIR=os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
               PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")))
    started = time.monotonic()
    # Started in `work`, not in the consumer: act also reads an `.actrc` from its current folder.
    proc = subprocess.run(cmd, cwd=work, env=host_env, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (work / "act.log").write_text(log, encoding="utf-8")  # kept for debugging a failed run
    if inspect is not None:
        inspect(work / "act-cache")
    _discard(work / "act-cache")
    print(f"act run in {work}: exit {proc.returncode} after {seconds:.1f} s")  # shown with pytest -s / -rP
    return ActRun(proc.returncode, log, record, seconds)


def strace_prefix(log: Path) -> list[str]:
    """`strace -f` recording every successful open of every process, as `tests/adversarial/observe.py` parses it
    (`-y`: the folder of a relative open and the file the kernel gave); seccomp-bpf stops only on those calls."""
    found = shutil.which("strace")
    assert found, "strace is not installed: run scripts/bootstrap dev (it installs strace with apt-get)"
    return [found, "-f", "--seccomp-bpf", "-qq", "-y", "-e", "trace=open,openat,openat2", "-e", "status=successful",
            "-o", str(log), "--"]


def _discard(folder: Path) -> None:
    """Remove the jobs' workspaces and venvs (tens of MB and thousands of files per job) without waiting for it.

    What the tests read is in the record folder; left in place, the session's SARIF check would validate every
    workspace's copy of every SARIF again. The folder is moved out of pytest's base folder at once and removed
    by a background process, so its many unlinks overlap with the next tests instead of delaying them.
    """
    if not folder.is_dir():
        return
    trash = Path(tempfile.mkdtemp(prefix="mlsec-e2e-discard-"))
    try:
        folder.rename(trash / folder.name)
    except OSError:  # another filesystem: remove it here
        shutil.rmtree(folder, ignore_errors=True)
    subprocess.Popen(["rm", "-rf", "--", str(trash)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)


def _self_refs_in(workflow: Path) -> list[str]:
    """Refs at which the consumer calls this repository (`mlsec-actions/mlsec-actions/...@REF`)."""
    pattern = re.compile(rf"uses:\s*{re.escape(SELF_REPO)}(?:/[\w./-]+)?@([\w./-]+)")
    return sorted(set(pattern.findall(workflow.read_text(encoding="utf-8"))))
