"""The real trivy on git checkouts a pull request can make hostile (issue 9 item 9): a commit holding a ~1,000-deep
tree (trivy 0.76 `fs` on the checkout itself runs past any timeout) and a `.git` file whose gitdir holds a FIFO
(blocks trivy for good). trivy is given a view of the tree without `.git` (tools/trivy_view.py): it finishes,
finds the planted secret at the bottom with the tree's own relative path, and the view is gone afterwards."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.tools import trivy, trivy_view
from tests.integration.test_code_scan_hostile import GH_TOKEN
from tests.trees import deep_file

LEVELS = 1000
OPTIONS = trivy.TrivyOptions(vuln_db="skip", timeout=300)


def _deep_secret(root: Path) -> str:
    """`LEVELS` nested folders with a token at the bottom."""
    return deep_file(root, LEVELS, "settings.py", f'GITHUB_TOKEN = "{GH_TOKEN}"\n'.encode())


def _git(root: Path, *args: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(root.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, timeout=300)


@pytest.fixture
def repo(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    root.mkdir()
    yield root
    trivy_view.remove(root)  # iterative: rmtree and the SARIF hook's rglob recurse per level


def test_a_commit_holding_a_thousand_deep_tree_is_scanned_to_the_bottom(repo: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bottom = _deep_secret(repo)
    (repo / "app.py").write_text("print('hi')\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "deep")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    monkeypatch.setenv("RUNNER_TEMP", str(runner_temp))
    findings, run = trivy.scan(repo, OPTIONS)
    assert run.status is ToolStatus.OK, run.message
    assert ("trivy/secret/github-pat", bottom) in {(f.rule.id, f.location.path) for f in findings}
    assert list(runner_temp.iterdir()) == []  # the view was made there, and removed


def test_a_git_file_whose_gitdir_holds_a_fifo_does_not_block(repo: Path, tmp_path: Path) -> None:
    gitdir = tmp_path / "gitdir"
    gitdir.mkdir()
    os.mkfifo(gitdir / "HEAD")  # trivy on the tree itself waits on it for good (a writer never comes)
    (repo / ".git").write_text(f"gitdir: {gitdir}\n")
    (repo / "settings.py").write_text(f'GITHUB_TOKEN = "{GH_TOKEN}"\n')
    os.mkfifo(repo / "requirements-dev.txt")
    findings, run = trivy.scan(repo, trivy.TrivyOptions(vuln_db="skip", timeout=120))
    assert run.status is ToolStatus.OK, run.message
    assert [(f.rule.id, f.location.path) for f in findings] == [("trivy/secret/github-pat", "settings.py")]
    assert any(n.startswith("1 FIFO(s)") and "requirements-dev.txt" in n for n in run.notes), run.notes


def test_rootfs_of_a_folder_whose_gitdir_holds_a_fifo_does_not_block(repo: Path, tmp_path: Path) -> None:
    """image-scan's `trivy rootfs` of a folder blocks on the same `.git` file as `fs` does."""
    from mlsec_actions.tools import trivy_image

    gitdir = tmp_path / "gitdir"
    gitdir.mkdir()
    os.mkfifo(gitdir / "HEAD")
    (repo / ".git").write_text(f"gitdir: {gitdir}\n")
    (repo / "etc").mkdir()
    (repo / "etc" / "app.env").write_text(f'GITHUB_TOKEN="{GH_TOKEN}"\n')
    done = trivy_image.scan(trivy_image.ImageTarget("rootfs", str(repo)),
                            trivy.TrivyOptions(vuln_db="skip", timeout=120), repo)
    assert done.run.status is ToolStatus.OK, done.run.message
    found = {(f.finding.rule.id, f.finding.location.path) for f in done.findings}
    assert found == {("trivy/secret/github-pat", "etc/app.env")}, found
