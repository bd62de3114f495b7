"""train's inotify record of the files a run opened (training/opened.py): the event rules on hand-made event
buffers, then the real kernel's events for hostile runs (a read through a link from outside the tree,
relative names after a chdir, spaces and newlines in names, a file written but never read, a new folder),
checked against strace tracing every open on the same run; the fallback to strace when inotify cannot watch
the tree (the snapshot's limits, no room for watches)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions.findings import ToolStatus
from mlsec_actions.training import observe, opened, runner, snapshot, trace

STRACE = trace.locate()
"""strace is installed by the project's test set-up; without it these tests fail, they are not skipped."""


def _event(wd: int, mask: int, name: bytes = b"") -> bytes:
    padded = name + b"\0" * (16 - len(name) % 16) if name else b""
    return struct.pack("iIII", wd, mask, 0, len(padded)) + padded


def _watcher(*folders: bytes, max_files: int = 100) -> opened.Opened:
    """An Opened that parses buffers without a kernel descriptor behind it."""
    got = opened.Opened.__new__(opened.Opened)
    got.where = dict(enumerate(folders, start=1))
    got.max_files, got.reads, got.fresh, got.incomplete = max_files, set(), set(), None
    return got


def test_an_existing_file_opened_is_read_and_a_created_one_is_not() -> None:
    w = _watcher(b"/w", b"/w/sub")
    w.feed(_event(1, opened.IN_OPEN, b"data.csv") + _event(2, opened.IN_OPEN, b"a\nb c.csv")
           + _event(1, opened.IN_CREATE, b"new.bin") + _event(1, opened.IN_OPEN, b"new.bin")
           + _event(1, opened.IN_CLOSE_WRITE, b"new.bin")
           + _event(1, opened.IN_MOVED_TO, b"moved.csv") + _event(1, opened.IN_OPEN, b"moved.csv")
           + _event(1, opened.IN_CREATE, b"back.csv") + _event(1, opened.IN_CLOSE_NOWRITE, b"back.csv")
           + _event(1, opened.IN_OPEN | opened.IN_ISDIR, b"sub") + _event(9, opened.IN_OPEN, b"unknown.csv"))
    assert w.reads == {b"/w/data.csv", b"/w/sub/a\nb c.csv", b"/w/back.csv"}
    assert w.incomplete is None


def test_an_open_counts_before_its_close_arrives() -> None:
    """A descendant killed with the group closes its files after the run is over: its open already counted."""
    w = _watcher(b"/w")
    w.feed(_event(1, opened.IN_OPEN, b"held.csv"))
    assert w.reads == {b"/w/held.csv"}


def test_overflow_and_the_file_limit_make_the_record_incomplete() -> None:
    w = _watcher(b"/w", max_files=2)
    w.feed(b"".join(_event(1, opened.IN_OPEN, b"f%d" % i) for i in range(4)))
    assert len(w.reads) == 2 and w.incomplete is not None and "distinct files" in w.incomplete
    q = _watcher(b"/w")
    q.feed(_event(-1, opened.IN_Q_OVERFLOW))
    assert q.incomplete is not None and "overflowed" in q.incomplete


def test_package_and_git_folders_are_not_watched(tmp_path: Path) -> None:
    got = opened.folders(tmp_path, ["data", ".git", ".git/objects", ".venv", ".venv/lib/site-packages",
                                    ".venv/lib/site-packages/numpy", "web/node_modules/x", "a b\nc", "data/.git"])
    assert got == [os.fsencode(p) for p in (tmp_path, tmp_path / "data", tmp_path / ".venv", tmp_path / "a b\nc",
                                            tmp_path / "data/.git")]  # only the top-level .git is git's own
    assert opened.SKIPPED == observe.ENVIRONMENT_PARTS


HOSTILE = """\
import os, pathlib, sys
os.chdir("sub dir")
open("in sub.csv").read()              # relative to the new current folder
open("../a b\\nc.csv").read()           # relative, after a chdir, a space and a newline in its name
open(sys.argv[1]).read()               # a link outside the tree to a file inside it
pathlib.Path("written.bin").write_bytes(b"w")  # created, never read
os.makedirs("../fresh/deep", exist_ok=True)
pathlib.Path("../fresh/deep/x.csv").write_text("x")
open("../fresh/deep/x.csv").read()     # a file of the run's own, read back
fd = os.open("../open-only.bin", os.O_WRONLY)  # a write-only open of an existing file
os.close(fd)
open("../model/out.bin", "wb").write(b"m")
"""


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "tree"
    (tree / "sub dir").mkdir(parents=True)
    (tree / "model").mkdir()
    (tree / "a b\nc.csv").write_text("1\n")
    (tree / "sub dir" / "in sub.csv").write_text("2\n")
    (tree / "secret.csv").write_text("s\n")
    (tree / "open-only.bin").write_bytes(b"o")
    (tree / "never.csv").write_text("n\n")
    (tree / "hostile.py").write_text(HOSTILE)
    link = tmp_path / "outside-link.csv"
    link.symlink_to(tree / "secret.csv")
    return tree.resolve(), link


def _observe(tree: Path, link: Path, watched: list[bytes] | None) -> trace.Observation:
    assert STRACE is not None
    with trace.session(STRACE, tree, watched) as s:
        assert (s.opened is not None) is (watched is not None)
        subprocess.run([*s.prefix, sys.executable, "-S", "-I", str(tree / "hostile.py"), str(link)], cwd=tree,
                       check=True, timeout=60)
        return s.finish()


def test_the_kernels_events_name_what_strace_names(tmp_path: Path) -> None:
    tree, link = _tree(tmp_path)
    base = snapshot.take(tree, ("model",))
    by_inotify = _observe(tree, link, opened.folders(tree, snapshot.folders(base)))
    for p in ("sub dir/written.bin", "fresh"):
        path = tree / p
        if path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)
    by_strace = _observe(tree, link, None)
    inside = {str(tree / n) for n in ("a b\nc.csv", "sub dir/in sub.csv", "secret.csv", "hostile.py")}
    assert by_inotify.watched and not by_strace.watched
    # Documented differences: a write-only open of an existing file counts; a file in a folder the run created
    # is the run's own (a write outside the output folder) and is not watched.
    assert {r for r in by_inotify.reads if r.startswith(f"{tree}/")} == inside | {str(tree / "open-only.bin")}
    assert {r for r in by_strace.reads if r.startswith(f"{tree}/")} == inside | {str(tree / "fresh/deep/x.csv")}
    assert by_inotify.executed == by_strace.executed and by_inotify.exit_code == by_strace.exit_code == 0
    assert by_inotify.incomplete is None


def _plan(tree: Path) -> runner.Plan:
    assert STRACE is not None
    return runner.Plan((sys.executable, "-S", "-I", "hostile.py", str(tree.parent / "outside-link.csv")), tree,
                       tree / "model", (), (), dict(os.environ), 60.0, tracer=STRACE)


def test_a_tree_cut_short_by_the_snapshot_is_traced_whole_with_strace(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tree, _ = _tree(tmp_path)
    deep = tree / "d1" / "d2"
    deep.mkdir(parents=True)
    (deep / "deep.csv").write_text("d\n")
    (tree / "hostile.py").write_text(HOSTILE + "open('../d1/d2/deep.csv').read()\n")
    monkeypatch.setattr(snapshot, "MAX_ENTRIES", 3)  # the walk stops before d1/d2: it would go unwatched
    done = runner.execute(_plan(tree))
    assert done.tool.status is ToolStatus.OK and done.observed is not None
    assert "d1/d2/deep.csv" in done.observed.undeclared


def test_no_room_for_watches_falls_back_to_strace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree, link = _tree(tmp_path)
    monkeypatch.setattr(opened, "MAX_WATCHES", 1)
    assert STRACE is not None
    with trace.session(STRACE, tree, opened.folders(tree, ["sub dir", "model"])) as s:
        assert s.opened is None and "-y" in s.prefix and f"trace={trace.SYSCALLS}" in s.prefix
        subprocess.run([*s.prefix, sys.executable, "-S", "-I", str(tree / "hostile.py"), str(link)], cwd=tree,
                       check=True, timeout=60)
        seen = s.finish()
    assert str(tree / "secret.csv") in seen.reads and not seen.watched
