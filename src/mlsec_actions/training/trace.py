"""Watch a training command under `strace -f`: the files its processes open and the addresses they connect to.

strace writes its trace into a FIFO in a private temporary folder (outside the work tree), which a thread of
ours reads and parses while the command runs, so a trace of gigabytes never lands on disk or in memory: past
`MAX_TRACE_BYTES` (or `MAX_FILES` distinct files, `MAX_ENDPOINTS` addresses) only exit lines and network
calls are still parsed, the rest is drained unread, and the observation says it is incomplete (a coverage gap).
Paths come as strace prints them, C-escaped
(`\\n`, `\\"`, octal bytes), and are unescaped to their exact bytes, so a hostile or non-UTF-8 name is the file
it names. A call split across two lines by another process (`<unfinished ...>` / `<... resumed>`) is joined.

strace with `-f` waits for every traced descendant before it exits, so the run's end is the command's own
(the first process traced) exit line, `+++ exited with N +++` or `+++ killed by SIGNAL +++`: the caller stops
waiting then and kills the process group, as it does without a tracer, and takes the exit code from that line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.training import opened

STRACE_ENV = "MLSEC_STRACE_BIN"
"""Names the strace binary instead of PATH's (the fault tests use it)."""
SYSCALLS = "open,openat,openat2,creat,execve,execveat,connect,sendto,sendmsg"
"""Traced when opens cannot be watched with inotify (training/opened.py)."""
RARE_SYSCALLS = "execve,execveat,connect,sendto,sendmsg"
"""Traced when inotify watches the tree's opens: programs executed and network calls only."""
MAX_TRACE_BYTES = 512 * 1024 * 1024
"""Trace text parsed; the rest is drained unread (a coverage gap)."""
MAX_LINE = 64 * 1024
"""Longest trace line parsed (a path is at most 4096 bytes, escaped four times that); longer lines are skipped."""
MAX_FILES = 200_000
"""Distinct files recorded."""
MAX_ENDPOINTS = 1_000
"""Distinct network addresses recorded."""
MAX_PENDING = 10_000
"""Calls left `<unfinished ...>` kept for their `resumed` half."""

_PID = re.compile(rb"^(\d+) +(.*)$", re.S)
_OPEN = re.compile(rb'(open|openat|openat2|creat)\((?:(?:AT_FDCWD|-?\d+)(?:<(?:[^\\>]|\\.)*>)?, )?'
                   rb'"((?:[^"\\]|\\.)*)"(.*)\) += (-?\d+)(?:<((?:[^\\>]|\\.)*)>)?$', re.S)
_EXEC = re.compile(rb'(execve|execveat)\((?:(?:AT_FDCWD|-?\d+)(?:<(?:[^\\>]|\\.)*>)?, )?'
                   rb'"((?:[^"\\]|\\.)*)".*\) += 0$', re.S)
_NET = re.compile(rb'(connect|sendto|sendmsg)\(')
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"'
                    rb'|\{sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([0-9.]+)"\)\}'
                    rb'|\{sa_family=AF_INET6, sin6_port=htons\((\d+)\), sin6_flowinfo=htonl\(\d+\), '
                    rb'inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)", &sin6_addr\)')
_EXIT = re.compile(rb"\+\+\+ (?:exited with (\d+)|killed by (SIG[A-Z0-9]+)(?: \(core dumped\))?) \+\+\+")
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v", b"f": b"\f", b"a": b"\a", b"b": b"\b"}


def unescape(text: bytes) -> bytes:
    """strace's C-style escapes back to the bytes they stand for."""
    def one(m: re.Match[bytes]) -> bytes:
        code = m[1]
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1] in b"01234567":
            return bytes([int(code, 8) & 0xFF])
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, text)


@dataclass(frozen=True)
class Endpoint:
    """An address a traced process connected or sent to."""

    address: str
    """IPv4 or IPv6 address, as text."""
    port: int
    """Port."""
    call: str
    """`connect`, `sendto` or `sendmsg`."""


@dataclass(frozen=True)
class Observation:
    """What the traced processes did."""

    reads: frozenset[str]
    """Absolute paths (as the kernel resolved them) opened for reading (read-only or read-write), successfully."""
    executed: frozenset[str]
    """Programs executed (a relative name against the work tree)."""
    endpoints: tuple[Endpoint, ...]
    """Internet addresses reached, in order of first use (local sockets are not recorded)."""
    incomplete: str | None
    """Why the trace was not read whole (a limit), else None."""
    exit_code: int | None
    """The command's own exit code from the trace (negative: killed by that signal); None when not seen."""
    lines: int
    """Trace lines parsed."""
    watched: bool = False
    """The reads came from inotify's events on the tree's folders (training/opened.py), not from strace."""


class Parser:
    """Trace lines in, an `Observation` out; bounded in what it keeps."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = os.fsencode(workdir)
        self.reads: set[str] = set()
        self.executed: set[str] = set()
        self.endpoints: dict[tuple[str, int], Endpoint] = {}
        self.pending: dict[bytes, bytes] = {}
        self.leader: bytes | None = None
        self.exit_code: int | None = None
        self.incomplete: str | None = None
        self.lines = 0
        self.leader_done = threading.Event()

    def limit(self, why: str) -> None:
        self.incomplete = self.incomplete or why

    def feed(self, line: bytes, *, light: bool = False) -> None:
        """One trace line; `light` (past the byte limit): only exit lines and network calls."""
        m = _PID.match(line[:-1] if line.endswith(b"\n") else line)
        if not m:
            return
        pid, body = m[1], m[2]
        if self.leader is None:
            self.leader = pid
        if body.startswith(b"+++ "):
            self._exit(pid, body)
            return
        if body.startswith(b"--- ") or (light and not _NET.match(body)):
            return
        self.lines += 1
        if body.endswith(b" <unfinished ...>"):
            if len(self.pending) < MAX_PENDING:
                self.pending[pid] = body[: -len(b" <unfinished ...>")]
            else:
                self.limit(f"more than {MAX_PENDING} unfinished calls at once")
            return
        if body.startswith(b"<... "):
            head = self.pending.pop(pid, None)
            close = body.find(b" resumed>")
            if head is None or close < 0:
                return
            body = head + body[close + len(b" resumed>"):]
        self._call(body)

    def _exit(self, pid: bytes, body: bytes) -> None:
        m = _EXIT.match(body)
        if pid != self.leader or not m or self.leader_done.is_set():
            return
        if m[1] is not None:
            self.exit_code = int(m[1])
        else:
            with contextlib.suppress(KeyError):
                self.exit_code = -int(signal.Signals[m[2].decode("ascii")])
        self.leader_done.set()

    def _call(self, body: bytes) -> None:
        if m := _OPEN.match(body):
            call, flags, ret, got = m[1], m[3], int(m[4]), m[5]
            if ret < 0 or got is None or call == b"creat" or b"O_DIRECTORY" in flags or b"O_PATH" in flags:
                return
            if b"O_WRONLY" in flags or b"O_TRUNC" in flags:
                return  # written, or emptied first: nothing of the file's earlier content is read
            self._add(self.reads, unescape(got), MAX_FILES)
        elif m := _EXEC.match(body):
            path = unescape(m[2])
            self._add(self.executed, path if path.startswith(b"/") else os.path.join(self.workdir, path),  # noqa: PTH118 -- bytes
                      MAX_FILES)
        elif _NET.match(body):
            self._network(_NET.match(body)[1].decode("ascii"), body)  # type: ignore[index]

    def _add(self, into: set[str], path: bytes, cap: int) -> None:
        name = os.fsdecode(os.path.normpath(path))
        if name not in into:
            if len(into) >= cap:
                self.limit(f"more than {cap} distinct files")
                return
            into.add(name)

    def _network(self, call: str, body: bytes) -> None:
        for t in _TOKEN.finditer(body):  # quoted data is consumed whole: an address inside it is not one
            port, address = (t[1], t[2]) if t[1] is not None else (t[3], t[4])
            if port is None or address is None:
                continue
            key = (address.decode("ascii"), int(port))
            if key not in self.endpoints:
                if len(self.endpoints) >= MAX_ENDPOINTS:
                    self.limit(f"more than {MAX_ENDPOINTS} network addresses")
                    return
                self.endpoints[key] = Endpoint(key[0], key[1], call)

    def result(self) -> Observation:
        return Observation(frozenset(self.reads), frozenset(self.executed), tuple(self.endpoints.values()),
                           self.incomplete, self.exit_code, self.lines)


def locate() -> str | None:
    """The strace binary: `MLSEC_STRACE_BIN`, else `strace` on PATH; None when there is none."""
    override = os.environ.get(STRACE_ENV)
    if override:
        return override if Path(override).is_file() and os.access(override, os.X_OK) else None
    return shutil.which("strace")


def problem(binary: str) -> str | None:
    """Why `binary` cannot trace here (ptrace denied, a broken install), or None when it can."""
    try:
        done = subprocess.run([binary, "-f", "-qq", "-e", "trace=none", "-o", os.devnull, "--", binary, "-V"],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{binary} did not run: {e}"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return f"{binary} exited {done.returncode}" + (f": {lines[0][:200]}" if lines else "")


class Session:
    """One traced run: the command prefix to run, and the thread that reads the trace."""

    def __init__(self, binary: str, folder: Path, workdir: Path, watched: list[bytes] | None = None) -> None:
        """`watched`: the tree's folders whose opens inotify reports (then strace traces only the rare calls);
        None, or inotify unavailable: strace traces the opens too, with the kernel's name of each (-y)."""
        self.fifo = folder / "trace"
        os.mkfifo(self.fifo, 0o600)
        self.opened: opened.Opened | None = None
        if watched is not None:
            with contextlib.suppress(OSError):
                self.opened = opened.Opened(watched, MAX_FILES)
        traced = ("-e", f"trace={RARE_SYSCALLS}") if self.opened else ("-y", "-e", f"trace={SYSCALLS}")
        self.prefix = (binary, "-f", "-q", "--seccomp-bpf", "-s", "32", *traced, "-o", str(self.fifo), "--")
        self.parser = Parser(workdir)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    @property
    def leader_done(self) -> threading.Event:
        return self.parser.leader_done

    def _read(self) -> None:
        fd = os.open(self.fifo, os.O_RDONLY)  # blocks until strace opens it (or `finish` does)
        total = 0
        with os.fdopen(fd, "rb", buffering=1024 * 1024) as stream:
            while line := stream.readline(MAX_LINE):
                total += len(line)
                light = total > MAX_TRACE_BYTES
                if light:
                    self.parser.limit(f"the trace passed {MAX_TRACE_BYTES // (1024 * 1024)} MiB")
                if not line.endswith(b"\n"):
                    self.parser.limit(f"a trace line over {MAX_LINE} bytes")
                    while (more := stream.readline(MAX_LINE)) and not more.endswith(b"\n"):
                        total += len(more)
                    continue
                self.parser.feed(line, light=light)

    def finish(self) -> Observation:
        """After the run: release a reader strace never connected to, wait for it, and give what it saw."""
        with contextlib.suppress(OSError):  # ENXIO: the reader is past open() already
            os.close(os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK))
        self.thread.join(timeout=30)
        if self.thread.is_alive():
            self.parser.limit("the trace did not end with the command (a process kept it open)")
        seen = self.parser.result()
        if self.opened is None:
            return seen
        reads, why = self.opened.finish()
        return dataclasses.replace(seen, reads=seen.reads | reads, incomplete=seen.incomplete or why,
                                   watched=True)


@contextlib.contextmanager
def session(binary: str, workdir: Path, watched: list[bytes] | None = None) -> Iterator[Session]:
    """A trace session in a private folder outside the work tree (removed afterwards)."""
    base = Path(tempfile.gettempdir()).resolve()
    if base.is_relative_to(workdir):
        base = Path("/tmp")  # noqa: S108 -- never inside the watched tree, whatever TMPDIR says
    with tempfile.TemporaryDirectory(prefix="mlsec-trace-", dir=base) as tmp:
        yield Session(binary, Path(tmp), workdir, watched)
