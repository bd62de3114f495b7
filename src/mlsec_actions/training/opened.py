"""The files of the work tree a training run opened, from the kernel's inotify events instead of strace.

Tracing every `open` under strace stops the command twice per call (an interpreter's start-up opens
thousands of files, nearly all outside the tree), which cost more than the rest of `mlsec train` together.
inotify queues an event per open in the watched folders without stopping anyone, so the tree's folders are
watched (from the snapshot taken before the run; `.git` and installed-package folders, whose files the judge
never counts, are left out) and strace traces only what is rare: programs executed and network calls.

What counts as read: a regular file of a watched folder opened while it existed from before the run (the
kernel's open event does not say the mode, so a write-only open of an existing file counts too: that file
is a write outside the output folder in any case), or closed after a read-only open (a file the run created
and read back; one in a folder the run created is not watched: it is the run's own, a write outside the
output folder or an output). An event names the folder the kernel resolved the path to (a link into the
tree from outside is seen under its real name) and the name's exact bytes (no escaping). The events are not
per process: a file another program opens in the tree during the run counts too (more findings, never fewer).

Fails towards strace: no inotify, or more folders than the watch limit allows, and the caller traces opens
with strace as before. A full kernel queue, or more files than `trace.MAX_FILES`, makes the observation
incomplete (a coverage gap).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct
import threading
from collections.abc import Iterable
from pathlib import Path

IN_OPEN = 0x20
IN_CLOSE_WRITE = 0x08
IN_CLOSE_NOWRITE = 0x10
IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_Q_OVERFLOW = 0x4000
IN_ISDIR = 0x40000000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_OPEN | IN_CLOSE_NOWRITE | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW
"""Per folder: opens, read-only closes, and names that appear (created or moved in: not from before)."""
SKIPPED = frozenset({"site-packages", "dist-packages", "node_modules", "__pypackages__"})
"""Folder names not watched anywhere (nor what lies below them), and the top-level `.git`: the judge never
counts their files as reads (observe.ENVIRONMENT_PARTS; a test keeps the two equal)."""
MAX_WATCHES = 100_000
"""Folders watched at most; a larger tree is traced with strace instead."""
_EVENT = struct.Struct("iIII")
_BUFFER = 256 * 1024


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1.argtypes, libc.inotify_init1.restype = [ctypes.c_int], ctypes.c_int
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        libc.inotify_add_watch.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def folders(root: Path, dirs: Iterable[str]) -> list[bytes]:
    """The folders to watch: the root and the snapshot's folders (relative), less `SKIPPED` subtrees."""
    out = [os.fsencode(root)]
    for rel in dirs:
        parts = rel.split("/")
        if parts[0] != ".git" and not SKIPPED.intersection(parts):
            out.append(os.fsencode(root / rel))
    return out


class Opened:
    """inotify watches on the tree's folders and a thread that reads their events while the command runs."""

    def __init__(self, watched: list[bytes], max_files: int) -> None:
        """Raises OSError when inotify is unavailable or a watch cannot be added for lack of room (the caller
        falls back to strace); a folder that is gone or unreadable by now is skipped."""
        libc = _libc()
        if libc is None:
            raise OSError(errno.ENOSYS, "no inotify in this C library")
        if len(watched) > MAX_WATCHES:
            raise OSError(errno.ENOSPC, f"more than {MAX_WATCHES} folders to watch")
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        self.where: dict[int, bytes] = {}
        try:
            for folder in watched:
                wd = libc.inotify_add_watch(fd, folder, MASK)
                if wd >= 0:
                    self.where[wd] = folder
                elif ctypes.get_errno() in (errno.ENOSPC, errno.ENOMEM):
                    raise OSError(ctypes.get_errno(), "no room for another inotify watch")
        except BaseException:
            os.close(fd)
            raise
        self.max_files = max_files
        self.reads: set[bytes] = set()
        self.fresh: set[bytes] = set()
        self.incomplete: str | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(InterruptedError):
                select.select([self.fd], [], [], 0.05)
            self.drain()

    def drain(self) -> None:
        """Read what is queued (never blocks)."""
        while True:
            try:
                data = os.read(self.fd, _BUFFER)
            except BlockingIOError:
                return
            except OSError:
                return
            if not data:
                return
            self.feed(data)

    def feed(self, data: bytes) -> None:
        """A buffer of `struct inotify_event`s, as read from the descriptor."""
        at = 0
        while at + _EVENT.size <= len(data):
            wd, mask, _cookie, size = _EVENT.unpack_from(data, at)
            name = data[at + _EVENT.size: at + _EVENT.size + size].rstrip(b"\0")
            at += _EVENT.size + size
            if mask & IN_Q_OVERFLOW:
                self.incomplete = self.incomplete or "the kernel's inotify queue overflowed"
                continue
            folder = self.where.get(wd)
            if folder is None or not name or mask & IN_ISDIR:
                continue
            self._event(folder + b"/" + name, mask)

    def _event(self, path: bytes, mask: int) -> None:
        if mask & (IN_CREATE | IN_MOVED_TO):
            self.fresh.add(path)
            return
        read = bool(mask & IN_OPEN and path not in self.fresh) or bool(mask & IN_CLOSE_NOWRITE)
        if not read or path in self.reads:
            return
        if len(self.reads) >= self.max_files:
            self.incomplete = self.incomplete or f"more than {self.max_files} distinct files"
            return
        self.reads.add(path)

    def finish(self) -> tuple[frozenset[str], str | None]:
        """After the command's process group was killed: the last events, then the files read and why the
        record is incomplete (None when it is whole)."""
        self.stop.set()
        self.thread.join(timeout=30)
        self.drain()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return frozenset(os.fsdecode(p) for p in self.reads), self.incomplete
