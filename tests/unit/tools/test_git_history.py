"""The history and signature parts without a repository: what `--since` accepts, how git is isolated, which
parts a scan runs, and how a gitleaks history report is read (real repositories: test_code_scan_history.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind
from mlsec_actions.stages import code_scan
from mlsec_actions.tools import git_history, git_signatures


@pytest.mark.parametrize("value", ["main", "HEAD~3", "v1.2.3", "origin/main", "a" * 40, "HEAD^", "@{u}"])
def test_revisions_accepted(value: str) -> None:
    assert git_history.rev(value) == value


@pytest.mark.parametrize("value", ["-x", "--output=/tmp/x", "a..b", "a...b", "x y", "a;b", "a\nb", "", "$(id)",
                                   "a" * 201, "\u00e9t\u00e9"])
def test_revisions_refused(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        git_history.rev(value)


def test_git_runs_without_outside_configuration(tmp_path: Path) -> None:
    env = git_history.git_env(tmp_path)
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["HOME"] == str(tmp_path)
    pairs = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert pairs["core.fsmonitor"] == "false" and pairs["core.hooksPath"] == "/dev/null"
    assert pairs["diff.external"] == "" and pairs["core.pager"] == "cat"
    assert "GIT_" in git_history.GIT.isolation.env_prefixes  # the caller's GIT_DIR, GIT_EXTERNAL_DIFF, ... dropped


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"since": None, "commit_signatures": False, **kw})


def test_history_and_signature_parts_run_only_when_asked() -> None:
    names = lambda a: [p.name for p in code_scan._parts(a)]  # noqa: E731
    assert "gitleaks-history" not in names(_args()) and "git-signatures" not in names(_args())
    assert names(_args(since="main"))[-1] == "gitleaks-history"
    assert names(_args(since="main", commit_signatures=True))[-2:] == ["gitleaks-history", "git-signatures"]


def test_history_report_outside_the_range_or_folder_is_a_gap() -> None:
    span = git_history.Range("a" * 40, "b" * 40, Path("/r"), "sub/", ("b" * 40,))
    leak = {"RuleID": "github-pat", "Commit": "c" * 40, "File": "sub/x.py", "StartLine": 3, "Description": "d"}
    findings, gaps = git_history._parse([leak, dict(leak, File="other/y.py"), dict(leak, Commit="HEAD"),
                                         dict(leak, StartLine=True)], span)
    assert [(f.rule.id, f.location.path, f.location.start_line, dict(f.properties)["commit"]) for f in findings] == [
        ("gitleaks/history/github-pat", "x.py", 3, "c" * 40)]
    assert [g.kind for g in gaps] == [GapKind.TOOL_ERROR] * 3


def test_only_a_good_signature_passes() -> None:
    passing = {letter for letter, status in git_signatures.STATUSES.items() if status.rule is None}
    assert passing == {"G"}
    assert {git_signatures.STATUSES[x].rule for x in "BR"} == {"bad-signature"}
    assert git_signatures.STATUSES["N"].rule == "unsigned-commit"
