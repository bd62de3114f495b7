"""Bounded processes: the timeout is the timeout, the whole group dies, output is capped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from mlsec_actions.tools import process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][:1] != "Z"


def _wait_gone(pid: int, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_hung_tool_is_stopped_at_its_timeout_with_its_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 1000 & echo $! > {pidfile}; sleep 1000"
    started = time.monotonic()
    got = process.run(["/bin/sh", "-c", script], cwd=tmp_path, env=dict(os.environ), timeout=1.5,
                      max_stdout=1024)
    took = time.monotonic() - started
    assert got.timed_out and got.returncode is None
    assert 1.4 <= took < 2.5, took
    grandchild = int(pidfile.read_text())
    assert _wait_gone(grandchild), "grandchild survived the timeout"


def test_grandchild_left_behind_after_a_normal_exit_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    got = process.run(["/bin/sh", "-c", f"sleep 1000 > /dev/null 2>&1 & echo $! > {pidfile}; echo done"],
                      cwd=tmp_path, env=dict(os.environ), timeout=10, max_stdout=1024)
    assert got.returncode == 0 and got.stdout == b"done\n" and not got.timed_out
    assert _wait_gone(int(pidfile.read_text()))


def test_output_flood_is_cut_and_the_tool_stopped(tmp_path: Path) -> None:
    flood = "import sys\nwhile True: sys.stdout.buffer.write(b'x' * 65536)\n"
    started = time.monotonic()
    got = process.run([sys.executable, "-c", flood], cwd=tmp_path, env=dict(os.environ), timeout=30,
                      max_stdout=1024 * 1024)
    assert got.overflowed and got.returncode is None and not got.timed_out
    assert len(got.stdout) == 1024 * 1024
    assert time.monotonic() - started < 10


def test_stderr_keeps_only_its_tail(tmp_path: Path) -> None:
    noisy = "import sys\nsys.stderr.write('a' * 500000 + 'THE-END')\n"
    got = process.run([sys.executable, "-c", noisy], cwd=tmp_path, env=dict(os.environ), timeout=30,
                      max_stdout=1024)
    assert got.returncode == 0
    assert len(got.stderr) == process.STDERR_TAIL_BYTES and got.stderr.endswith(b"THE-END")


def test_tool_runs_in_its_own_session(tmp_path: Path) -> None:
    got = process.run([sys.executable, "-c", "import os; print(os.getsid(0), os.getpgid(0), os.getpid())"],
                      cwd=tmp_path, env=dict(os.environ), timeout=30, max_stdout=1024)
    sid, pgid, pid = map(int, got.stdout.split())
    assert sid == pgid == pid != os.getsid(0)


def test_a_program_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        process.run([str(tmp_path / "nope")], cwd=tmp_path, env={}, timeout=1, max_stdout=1)
