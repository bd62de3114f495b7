"""Run one external process with hard bounds: wall time, output size, and its whole process group.

A tool starts in a new session (its own process group), so on a timeout, an output overflow or after it
exits, every process it left behind (a grandchild that kept running) is killed with the group. The group
is killed while the leader is still an unreaped zombie, so its id cannot have been reused. Standard output
is kept up to `max_stdout` bytes (more is an overflow: the group is killed); standard error keeps its tail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STDERR_TAIL_BYTES = 64 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Completed:
    """How a bounded process ended."""

    returncode: int | None
    """Its exit code; None when we killed it (timeout or overflow)."""
    stdout: bytes
    """Standard output, at most `max_stdout` bytes."""
    stderr: bytes
    """The last `STDERR_TAIL_BYTES` of standard error."""
    timed_out: bool
    """The time limit passed and the group was killed."""
    overflowed: bool
    """Standard output passed `max_stdout` and the group was killed."""
    seconds: float
    """Wall time."""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it (the zombie keeps its group id reserved)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _pump(stream: IO[bytes], keep: bytearray, limit: int, tail: bool, overflow: threading.Event, pgid: int) -> None:
    reader = stream.read1 if hasattr(stream, "read1") else stream.read
    while chunk := reader(_CHUNK):
        keep += chunk
        if len(keep) > limit:
            if tail:
                del keep[: len(keep) - limit]
            else:
                del keep[limit:]
                overflow.set()
                _kill_group(pgid)
                return


def run(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float,
        max_stdout: int, ended: threading.Event | None = None) -> Completed:
    """Run `command` (argument list, no shell); raises OSError only when it cannot start. `ended`, when set,
    also ends the run (a tracer in front of the real command says that command exited): the group is killed."""
    started = time.monotonic()
    proc = subprocess.Popen(list(command), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    out, err, overflow = bytearray(), bytearray(), threading.Event()
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, out, max_stdout, False, overflow, proc.pid),
                              daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, err, STDERR_TAIL_BYTES, True, overflow, proc.pid),
                              daemon=True)]
    for p in pumps:
        p.start()
    deadline = started + max(0.0, timeout)
    pause = 0.001
    timed_out = False
    while not _exited(proc.pid):
        if overflow.is_set() or (ended is not None and ended.is_set()):
            break
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            break
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, 0.02)
    _kill_group(proc.pid)  # the leader is at most a zombie here: stragglers in its group die with it
    code = proc.wait()
    for p in pumps:
        p.join(timeout=5)
    proc.stdout.close()
    proc.stderr.close()
    killed = timed_out or overflow.is_set()
    return Completed(None if killed else code, bytes(out), bytes(err), timed_out, overflow.is_set(),
                     time.monotonic() - started)
