"""outputs.py: output-path checks, atomic writes, the results-folder lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlsec_actions import outputs
from mlsec_actions.errors import BusyError, OutputError


@pytest.mark.parametrize(("make", "problem"), [
    (lambda t: Path("/proc/self/x.sarif"), "is under /proc"),
    (lambda t: Path("/sys/x"), "is under /sys"),
    (lambda t: Path("/dev/null"), "is under /dev"),
    (lambda t: (t / "d").mkdir() or t / "d", "is a folder"),
    (lambda t: (t / "f").write_text("x") and t / "f" / "v.json", "is not a folder"),
    (lambda t: os.mkfifo(t / "fifo") or t / "fifo", "not a regular file"),
    (lambda t: t / ("x" * 256), "longer than 255 bytes"),
    (lambda t: (t / "loop").symlink_to(t / "loop") or t / "loop" / "a", "resolved"),
])
def test_file_problems(tmp_path: Path, make, problem: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path)
    found = outputs.file_problem(path)
    assert found is not None and problem in found, found
    with pytest.raises(OutputError):
        outputs.check_file(path)


def test_good_paths_pass(tmp_path: Path) -> None:
    assert outputs.file_problem(tmp_path / "new" / "deeper" / "x.sarif") is None  # parents are created later
    (tmp_path / "old.json").write_text("x")
    assert outputs.file_problem(tmp_path / "old.json") is None  # replaced atomically
    assert outputs.dir_problem(tmp_path / "new-dir") is None and outputs.dir_problem(tmp_path) is None
    (tmp_path / "afile").write_text("x")
    assert "not a folder" in (outputs.dir_problem(tmp_path / "afile") or "")


def test_atomic_write_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json"
    outputs.write_text(target, "one")
    outputs.write_text(target, "two")
    assert target.read_text() == "two" and sorted(p.name for p in target.parent.iterdir()) == ["b.json"]


def _try_lock(folder: Path, token: str = "") -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from mlsec_actions import outputs\n"
            "try:\n with outputs.lock(Path(sys.argv[1])): print('got it')\n"
            "except Exception as e: print(type(e).__name__)\n")
    env = {**os.environ, outputs.LOCK_TOKEN_ENV: token}
    return subprocess.run([sys.executable, "-c", code, str(folder)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_lock_is_exclusive_across_processes_but_open_to_the_holders_children(tmp_path: Path) -> None:
    token = "f" * 32
    with outputs.lock(tmp_path, token):
        assert _try_lock(tmp_path).stdout.strip() == "BusyError"
        assert _try_lock(tmp_path, "e" * 32).stdout.strip() == "BusyError"  # another run's token
        assert _try_lock(tmp_path, token).stdout.strip() == "got it"  # a stage this run started
        with pytest.raises(BusyError, match="another mlsec run, gate or sign"), outputs.lock(tmp_path):
            pass
    assert _try_lock(tmp_path).stdout.strip() == "got it"  # released with the block


def test_short_token_never_opens_a_lock(tmp_path: Path) -> None:
    with outputs.lock(tmp_path, ""):
        assert _try_lock(tmp_path, "").stdout.strip() == "BusyError"
