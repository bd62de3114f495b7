"""The scanned tree, walked without recursion: deep trees, FIFOs, devices and symlinks are gaps, never crashes."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mlsec_actions.analyzers import tree
from mlsec_actions.cli import main
from mlsec_actions.findings import CoverageGap, GapKind
from tests import model_corpus as corpus

EVIL = corpus.call("os", "system", "touch /nonexistent/canary")


def _run(root: Path, out: Path) -> dict[str, Any]:
    sarif = out / "model-scan.sarif"
    assert main(["model-scan", str(root), "--sarif", str(sarif), "--source-root", str(root), "--no-modelscan"]) == 0
    run: dict[str, Any] = json.loads(sarif.read_text())["runs"][0]
    return run


def _rules_by_file(run: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in run["results"]:
        out.setdefault(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], set()).add(r["ruleId"])
    return out


def _gaps(run: dict[str, Any]) -> list[dict[str, str]]:
    return list(run["properties"]["mlsec-coverage"]["gaps"])


def test_a_thousand_levels_deep_is_a_gap_not_a_recursion_error(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    deep = root
    for _ in range(1000):  # not os.makedirs: it recurses too
        deep = deep / "d"
        deep.mkdir()
    (deep / "evil.pkl").write_bytes(EVIL)
    (root / "d" / "shallow.pkl").write_bytes(EVIL)
    assert sys.getrecursionlimit() < 2000  # the walk must not depend on a raised limit
    try:
        run = _run(root, tmp_path)
    finally:
        _remove_chain(root / "d", deep)
    found = _rules_by_file(run)
    assert found["d/shallow.pkl"] == {"pickle/dangerous-global"}
    cut = "/".join(["d"] * (tree.MAX_DEPTH + 1))
    assert found[cut] == {"archive/limit"}
    assert [r["level"] for r in run["results"] if r["ruleId"] == "archive/limit"] == ["error"]  # HIGH
    assert [(g["kind"], g.get("path")) for g in _gaps(run)] == [("limit-reached", cut)]


def _remove_chain(top: Path, deep: Path) -> None:
    """Delete the deep tree bottom-up (shutil.rmtree and the SARIF session hook's rglob recurse)."""
    for path in (deep / "evil.pkl", top / "shallow.pkl"):
        path.unlink()
    while deep != top.parent:
        deep.rmdir()
        deep = deep.parent


def test_fifo_socket_and_device_are_skipped_as_gaps_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    os.mkfifo(root / "pipe.pkl")  # opening it for reading would block forever with no writer
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock.pkl"))
    (root / "evil.pkl").write_bytes(EVIL)
    done = threading.Event()

    def scan() -> None:
        nonlocal run
        run = _run(root, tmp_path)
        done.set()

    run: dict[str, Any] = {}
    worker = threading.Thread(target=scan, daemon=True)
    worker.start()
    worker.join(60)
    server.close()
    assert done.is_set(), "the scan blocked on a special file"
    assert _rules_by_file(run) == {"evil.pkl": {"pickle/dangerous-global"}}
    assert sorted((g["kind"], g["path"]) for g in _gaps(run)) == [("file-skipped", "pipe.pkl"),
                                                                 ("file-skipped", "sock.pkl")]


def test_device_is_classified_without_opening(tmp_path: Path) -> None:
    null = Path("/dev/null")
    [entry] = list(tree.walk(Path("/dev"), null, frozenset()))
    assert entry.skip is tree.Skip.SPECIAL and "device" in entry.problem


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.pkl").write_bytes(EVIL)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "real.pkl").write_bytes(EVIL)
    (root / "out-file").symlink_to(outside / "evil.pkl")
    (root / "out-dir").symlink_to(outside)
    (root / "in-file").symlink_to(root / "real.pkl")
    (root / "loop").symlink_to(root)
    found = _rules_by_file(_run(root, tmp_path))
    assert found == {"real.pkl": {"pickle/dangerous-global"}, "out-file": {"archive/symlink-escape"},
                     "out-dir": {"archive/symlink-escape"}}


def test_unreadable_folder_is_a_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "locked").mkdir(parents=True)
    (root / "ok.pkl").write_bytes(EVIL)
    real = os.scandir

    def scandir(path: Any) -> Any:  # permissions do not stop root, so the denial is simulated
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(tree.os, "scandir", scandir)
    run = _run(root, tmp_path)
    assert [(g["kind"], g["path"]) for g in _gaps(run)] == [("file-unreadable", "locked")]
    assert _rules_by_file(run) == {"ok.pkl": {"pickle/dangerous-global"}, "locked": {"model/unreadable"}}


def test_walk_order_is_sorted_and_depth_first(tmp_path: Path) -> None:
    for rel in ("b/x", "a/z", "a/y/w", "c"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert [e.rel for e in tree.walk(tmp_path, tmp_path, frozenset())] == ["c", "a/z", "a/y/w", "b/x"]


def _chain(root: Path, levels: int) -> Path:
    deep = root
    for _ in range(levels):  # not os.makedirs: it recurses too
        deep = deep / "d"
        deep.mkdir()
    return deep


def test_folders_walks_a_thousand_levels_iteratively_and_stops_at_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    deep = _chain(root, 1000)
    (deep / "bottom.py").write_text("x = 1\n")
    (root / "top.py").write_text("x = 1\n")
    gaps: list[CoverageGap] = []
    try:
        seen = {os.path.relpath(folder, root): names for folder, names in tree.folders(root, (), gaps)}
    finally:
        (deep / "bottom.py").unlink()
        while deep != root:
            deep.rmdir()
            deep = deep.parent
    assert seen["."] == ["top.py"]
    assert len(seen) == tree.MAX_DEPTH + 1  # the root and MAX_DEPTH levels below it, no more
    cut = "/".join(["d"] * (tree.MAX_DEPTH + 1))
    assert [(g.kind, g.path) for g in gaps] == [(GapKind.LIMIT_REACHED, cut)]
    assert f"deeper than {tree.MAX_DEPTH} levels" in gaps[0].detail


def test_folders_lists_links_as_names_skips_named_folders_and_keeps_sorted_order(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel in ("b/x.py", "a/y.py", ".git/config", "a/sub/z.py", "c.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    (root / "link").symlink_to(tmp_path)  # a link to a folder outside: listed, never entered
    gaps: list[CoverageGap] = []
    walked = [(os.path.relpath(folder, root), names) for folder, names in tree.folders(root, {".git"}, gaps)]
    assert walked == [(".", ["c.py", "link"]), ("a", ["y.py"]), ("a/sub", ["z.py"]), ("b", ["x.py"])]
    assert gaps == []


def test_folders_reports_a_folder_it_cannot_list(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    gaps: list[CoverageGap] = []
    root_only = [f for f, _ in tree.folders(root / "missing", (), gaps)]
    assert root_only == []
    assert [g.kind for g in gaps] == [GapKind.FILE_UNREADABLE]
