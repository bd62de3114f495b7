"""tools/trivy_view.py: the tree trivy is given has the same relative paths, hard-linked files, the same symlinks,
no FIFO or device and no top-level `.git`, and it is gone when the block ends, however it ends."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from mlsec_actions.findings import GapKind, ToolStatus
from mlsec_actions.tools import trivy_view
from tests.trees import deep_file

SHM = Path("/dev/shm")


def _deep(root: Path, levels: int) -> str:
    """`levels` nested `d` folders under `root` with `bottom.txt`; returns the file's relative path."""
    return deep_file(root, levels, "bottom.txt", b"deep\n")


@pytest.fixture
def tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "repo"
    root.mkdir()
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("x = 1\n")
    yield root
    trivy_view.remove(root)  # iterative: rmtree and the SARIF hook's rglob recurse per level of a deep tree


def _holders(parent: Path) -> list[Path]:
    return sorted(parent.glob("mlsec-trivy-tree-*"))


def test_same_paths_hard_linked_deep_tree_and_removed_after(tree: Path, tmp_path: Path) -> None:
    bottom = _deep(tree, 1000)
    parent = tmp_path / "runner-temp"
    parent.mkdir()
    with trivy_view.view(tree, parent=parent) as view:
        assert view.root.parent.parent == parent
        assert (view.root / bottom).read_bytes() == b"deep\n"
        assert (view.root / bottom).stat().st_ino == (tree / bottom).stat().st_ino  # a link, no bytes copied
        assert (view.root / "src" / "app.py").stat().st_ino == (tree / "src" / "app.py").stat().st_ino
        assert (view.root.stat().st_mode & 0o777) == 0o700
        assert view.gaps == () and view.left_out == () and view.copied == 0
    assert _holders(parent) == []
    assert (tree / bottom).read_bytes() == b"deep\n"  # removing the view removed links, not the tree's files


def test_no_top_level_git_folder_or_file_and_nested_ones_kept(tree: Path, tmp_path: Path) -> None:
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tree / "vendor" / "lib").mkdir(parents=True)
    (tree / "vendor" / "lib" / ".git").write_text("gitdir: ../../.git/modules/lib\n")
    with trivy_view.view(tree, parent=tmp_path) as view:
        assert not os.path.lexists(view.root / ".git")
        assert (view.root / "vendor" / "lib" / ".git").read_text() == "gitdir: ../../.git/modules/lib\n"
    (tree / ".git" / "HEAD").unlink()
    (tree / ".git").rmdir()
    (tree / ".git").write_text("gitdir: /elsewhere\n")
    with trivy_view.view(tree, parent=tmp_path) as view:
        assert not os.path.lexists(view.root / ".git")


def test_git_file_pointing_at_a_fifo_is_left_out_unopened(tree: Path, tmp_path: Path) -> None:
    gitdir = tmp_path / "gitdir"
    gitdir.mkdir()
    os.mkfifo(gitdir / "HEAD")  # what blocks trivy for good when it opens the repository
    os.mkfifo(tmp_path / "fifo")
    (tree / ".git").write_text(f"gitdir: {gitdir}\n")
    with trivy_view.view(tree, parent=tmp_path) as view:  # would block here if anything opened the FIFOs
        assert sorted(p.name for p in view.root.iterdir()) == ["src"]


def test_fifo_socket_in_the_tree_are_left_out_and_recorded(tree: Path, tmp_path: Path) -> None:
    os.mkfifo(tree / "src" / "stuck.pkl")
    os.mkfifo(tree / "requirements-dev.txt")
    with trivy_view.view(tree, parent=tmp_path) as view:
        assert view.left_out == ("requirements-dev.txt", "src/stuck.pkl")
        assert not os.path.lexists(view.root / "src" / "stuck.pkl")
        assert view.gaps == ()  # trivy never reads a FIFO: nothing it would have seen is missing
        (note,) = trivy_view.notes(view)
    assert note.startswith("2 FIFO(s)") and "src/stuck.pkl" in note


def test_symlinks_are_recreated_as_symlinks_not_followed(tree: Path, tmp_path: Path) -> None:
    (tree / "etc").symlink_to("/etc")
    (tree / "shadow.pkl").symlink_to("/etc/shadow")
    (tree / "inside").symlink_to("src/app.py")
    (tree / "dangling").symlink_to("no/such/")
    with trivy_view.view(tree, parent=tmp_path) as view:
        for name, target in (("etc", "/etc"), ("shadow.pkl", "/etc/shadow"), ("inside", "src/app.py"),
                             ("dangling", "no/such/")):
            assert (view.root / name).is_symlink()
            assert os.readlink(view.root / name) == target  # noqa: PTH115 -- the same text, trailing slash kept
    assert Path("/etc/passwd").exists()  # removing the view's symlink removed nothing it points at


def test_mode_000_file_is_linked_with_its_mode(tree: Path, tmp_path: Path) -> None:
    locked = tree / "models" / "locked.pkl"
    locked.parent.mkdir()
    locked.write_bytes(b"\x80\x02}q\x00.")
    locked.chmod(0)
    with trivy_view.view(tree, parent=tmp_path) as view:
        linked = view.root / "models" / "locked.pkl"
        assert linked.lstat().st_ino == locked.lstat().st_ino
        assert linked.lstat().st_mode & 0o777 == 0
        assert view.gaps == ()


def test_across_file_systems_files_are_copied(tree: Path) -> None:
    """/dev/shm (tmpfs) is another file system than pytest's temp folder: os.link fails with EXDEV for real."""
    assert SHM.is_dir() and SHM.stat().st_dev != tree.stat().st_dev, "the test needs /dev/shm on its own fs"
    with trivy_view.view(tree, parent=SHM) as view:
        copy = view.root / "src" / "app.py"
        assert copy.read_text() == "x = 1\n"
        assert copy.stat().st_ino != (tree / "src" / "app.py").stat().st_ino
        assert view.copied == 1 and view.gaps == ()
        assert trivy_view.notes(view) == ("1 file(s) copied into trivy's view of the tree (hard links refused)",)
    assert _holders(SHM) == []


def test_copy_budget_spent_is_a_gap(tree: Path) -> None:
    (tree / "big.bin").write_bytes(b"x" * 5000)
    with trivy_view.view(tree, parent=SHM, copy_budget=1000) as view:
        assert not (view.root / "big.bin").exists()
        assert (view.root / "src" / "app.py").is_file()  # 6 bytes: within the budget
        (gap,) = view.gaps
    assert (gap.kind, gap.path) == (GapKind.FILE_SKIPPED, "big.bin")
    assert "hard link refused" in gap.detail and "1000 bytes" in gap.detail


def test_link_refused_on_the_same_fs_falls_back_to_a_copy(tree: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-in: EPERM from os.link is what fs.protected_hardlinks gives a non-owner; the tests run as root,
    for which the kernel never refuses, so the refusal is simulated."""
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(trivy_view.os, "link", refuse)
    with trivy_view.view(tree, parent=tmp_path) as view:
        assert (view.root / "src" / "app.py").read_text() == "x = 1\n"
        assert view.copied == 1


def test_removed_on_an_error_in_the_block(tree: Path, tmp_path: Path) -> None:
    _deep(tree, 300)
    with pytest.raises(RuntimeError, match="trivy crashed"), trivy_view.view(tree, parent=tmp_path) as view:
        assert view.root.is_dir()
        raise RuntimeError("trivy crashed")
    assert _holders(tmp_path) == []


def test_deadline_passed_while_building_is_a_timeout_and_removed(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(trivy_view.ViewError) as raised, trivy_view.view(tree, parent=tmp_path,
                                                                         deadline=time.monotonic() - 1):
        pytest.fail("the block must not run")
    assert raised.value.status is ToolStatus.TIMEOUT
    assert _holders(tmp_path) == []


def test_never_inside_the_tree(tree: Path) -> None:
    with pytest.raises(trivy_view.ViewError, match="must not be inside"), trivy_view.view(tree, parent=tree / "src"):
        pytest.fail("the block must not run")
    assert sorted(p.name for p in (tree / "src").iterdir()) == ["app.py"]


def test_runner_temp_inside_the_tree_is_not_used(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_TEMP", str(tree / "src"))
    with trivy_view.view(tree) as view:
        assert not view.root.resolve().is_relative_to(tree.resolve())


def test_unlistable_tree_is_a_view_error(tmp_path: Path) -> None:
    with pytest.raises(trivy_view.ViewError), trivy_view.view(tmp_path / "missing", parent=tmp_path):
        pytest.fail("the block must not run")
