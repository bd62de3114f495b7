"""code-scan `--since REV` on a real git repository the test builds: a secret added and deleted again is found in
the history (redacted, with its commit), the tree's gitleaks files do not steer it, and `--commit-signatures`
reports the unsigned commit and the one signed by a key that is not an allowed signer (SSH keys made here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import git_history
from mlsec_actions.tools.decoys import base62

pytestmark = pytest.mark.integration
MLSEC = str(Path(sys.executable).parent / "mlsec")
_BODY = "Hq3Xw9Lm2Np8Rt4Vy6Bc1Df5Gh7Jk0"
TOKEN = "gh" "p_" + _BODY + base62(zlib.crc32(_BODY.encode()))


def _git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _key(folder: Path, name: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(folder / name)], check=True)
    return folder / name


def build_repo(base: Path) -> dict[str, Any]:
    """base -> leak (unsigned) -> delete (signed, allowed key) -> readme (signed, unknown key) = HEAD."""
    trusted, stranger = _key(base, "trusted"), _key(base, "stranger")
    allowed = base / "allowed_signers"
    allowed.write_text(f"dev@example.test {(base / 'trusted.pub').read_text()}")
    repo = base / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.email", "dev@example.test"), ("user.name", "Dev"), ("gpg.format", "ssh"),
                       ("commit.gpgsign", "false")):
        _git(repo, "config", key, value)
    (repo / "README.md").write_text("# demo\n")
    # The tree's own gitleaks files, committed before the range: they must not steer the history scan.
    (repo / ".gitleaks.toml").write_text('title = "x"\n[[rules]]\nid = "nothing"\nregex = "zzqqzzqq"\n')
    (repo / ".gitleaksignore").write_text("app/config.py:github-pat:2\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    since = _git(repo, "rev-parse", "HEAD")
    (repo / "app").mkdir()
    (repo / "app" / "config.py").write_text(f'DEBUG = True\nTOKEN = "{TOKEN}"  # gitleaks:allow\n')
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "add config")
    leak = _git(repo, "rev-parse", "HEAD")
    (repo / "app" / "config.py").write_text("DEBUG = True\n")
    _git(repo, "-c", f"user.signingkey={trusted}", "commit", "-q", "-S", "-am", "remove the token")
    good = _git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("# demo\n\nmore\n")
    _git(repo, "-c", f"user.signingkey={stranger}", "commit", "-q", "-S", "-am", "docs")
    unknown = _git(repo, "rev-parse", "HEAD")
    return {"repo": repo, "since": since, "leak": leak, "good": good, "unknown": unknown, "allowed": allowed}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], Path]:
    base = tmp_path_factory.mktemp("history")
    built = build_repo(base)
    out = base / "code-scan.sarif"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSEC_", "GITHUB_", "GIT_"))}
    env |= {"MLSEC_SINCE": built["since"], "MLSEC_COMMIT_SIGNATURES": "true", "GITLEAKS_CONFIG":
            str(built["repo"] / ".gitleaks.toml"), "GIT_EXTERNAL_DIFF": str(base / "never-run")}
    proc = subprocess.run([MLSEC, "code-scan", str(built["repo"]), "--sarif", str(out), "--vuln-db", "skip",
                           "--allowed-signers", str(built["allowed"])], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    return built, json.loads(out.read_text())["runs"][0], out


def _tool(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in run["invocations"] if i["properties"]["tool"] == name)


def test_secret_added_then_deleted_is_found_in_the_history(history: tuple[dict[str, Any], dict[str, Any], Path]
                                                           ) -> None:
    built, run, out = history
    assert not (built["repo"] / "app" / "config.py").read_text().count("TOKEN")  # gone from the tree
    assert _tool(run, "gitleaks-history")["executionSuccessful"] is True
    found = [r for r in run["results"] if r["ruleId"].startswith("gitleaks/history/")]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"], r["properties"]["commit"])
            for r in found] == [("gitleaks/history/github-pat", "app/config.py", 2, built["leak"])]
    assert not [r for r in run["results"] if r["ruleId"].startswith(("gitleaks/github", "trivy/secret"))]
    text = out.read_text()
    assert all(TOKEN[i:i + 12] not in text for i in range(len(TOKEN) - 11))


def test_commit_signatures_report_the_unsigned_and_the_untrusted(
        history: tuple[dict[str, Any], dict[str, Any], Path]) -> None:
    built, run, _ = history
    assert _tool(run, "git-signatures")["executionSuccessful"] is True
    signed = {(r["ruleId"], r["properties"]["commit"], r["properties"]["signature-status"])
              for r in run["results"] if r["ruleId"].startswith("git/")}
    assert signed == {("git/unsigned-commit", built["leak"], "N"),
                      ("git/unverifiable-signature", built["unknown"], "U")}
    where = {r["properties"]["commit"]: r["locations"][0] for r in run["results"] if r["ruleId"].startswith("git/")}
    assert where[built["leak"]]["physicalLocation"]["artifactLocation"]["uri"] == "app/config.py"
    assert where[built["unknown"]]["logicalLocations"][0] == {"fullyQualifiedName": built["unknown"],
                                                              "kind": "commit"}


def test_a_subfolder_scan_reads_only_its_commits_with_paths_relative_to_it(tmp_path: Path) -> None:
    built = build_repo(tmp_path)
    findings, run = git_history.scan(built["repo"] / "app", built["since"], 60)
    assert run.status is ToolStatus.OK, run.message
    assert [(f.location.path, f.location.start_line) for f in findings] == [("config.py", 2)]
    assert "2 commit(s)" in run.notes[0]  # the README-only commit does not touch app/


def test_a_revision_not_in_the_clone_fails_closed_and_says_why(tmp_path: Path) -> None:
    built = build_repo(tmp_path)
    findings, run = git_history.scan(built["repo"], "0" * 40, 30)
    assert findings == [] and run.status is ToolStatus.FAILED and "fetch-depth: 0" in run.message


@pytest.mark.parametrize("since", ["--output=/tmp/x", "a..b", "HEAD;id", "x y", ""])
def test_a_revision_that_is_not_one_is_refused_before_anything_runs(tmp_path: Path, since: str) -> None:
    proc = subprocess.run([MLSEC, "code-scan", str(tmp_path), "--sarif", str(tmp_path / "x.sarif"),
                           f"--since={since}"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "--since" in proc.stderr and not (tmp_path / "x.sarif").exists()


def test_signatures_need_a_range(tmp_path: Path) -> None:
    proc = subprocess.run([MLSEC, "code-scan", str(tmp_path), "--sarif", str(tmp_path / "x.sarif"),
                           "--commit-signatures"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "--since" in proc.stderr and not (tmp_path / "x.sarif").exists()
