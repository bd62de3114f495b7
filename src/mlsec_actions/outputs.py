"""Output paths: checked before any work starts, written atomically, and one writer per results folder.

- `check_file` / `check_dir` (and the argparse types `output_file` / `output_dir`, so a value from the
  command line, `MLSEC_*` or `--config` is checked the same way): the target is not a folder (or not a
  file), not under /proc, /sys or /dev, and its nearest existing parent is a folder we can write.
- `write_text` / `write_bytes`: a temporary file beside the target, then `os.replace`; on any failure the
  temporary file is removed, so nothing half-written is ever left (or read by the gate).
- `lock`: `fcntl.flock` on `FOLDER/.mlsec.lock`; a second `mlsec run`, `gate` or `sign` into the same
  folder fails at once with one line instead of mixing its results with ours. The holder writes a random
  token into the lock file; the stages `mlsec run` starts get it as `MLSEC_LOCK_TOKEN` and so may write
  into the folder their run holds (and only that run's children can).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlsec_actions.errors import BusyError, OutputError

LOCK_NAME = ".mlsec.lock"
LOCK_TOKEN_ENV = "MLSEC_LOCK_TOKEN"  # noqa: S105 -- the variable's name, not a secret
_SPECIAL = (Path("/proc"), Path("/sys"), Path("/dev"))
_NAME_MAX = 255


def _mode(path: Path) -> int:
    """The mode of what `path` names (links followed); 0 when it is missing or cannot be reached (`Path.is_dir`
    and `exists` raise PermissionError under a folder the caller may not enter: a traceback, not a refusal)."""
    try:
        return path.stat().st_mode
    except OSError:
        return 0


def _is_dir(path: Path) -> bool:
    return stat.S_ISDIR(_mode(path))


def _common_problem(path: Path) -> str | None:
    text = str(path)
    if not text or text == ".":
        return "empty path"
    if "\0" in text:
        return "path contains a NUL byte"
    if len(os.fsencode(path.name)) > _NAME_MAX:
        return f"file name is longer than {_NAME_MAX} bytes"
    try:
        resolved = path.absolute().resolve()
    except (OSError, RuntimeError):
        return "path cannot be resolved (symlink loop?)"
    for special in _SPECIAL:
        if resolved == special or resolved.is_relative_to(special):
            return f"is under {special}, not a place for results"
    return None


def _parent_problem(path: Path) -> str | None:
    parent = path.absolute().parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not _is_dir(parent):
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write in {parent}"
    return None


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be an output file, or None."""
    problem = _common_problem(path)
    if problem is None:
        mode = _mode(path)  # one stat: what the path names now
        if stat.S_ISDIR(mode):
            problem = "is a folder; name a file"
        elif mode and not stat.S_ISREG(mode):
            problem = "exists and is not a regular file"
    return problem or _parent_problem(path)


def dir_problem(path: Path) -> str | None:
    """Why `path` cannot be an output folder, or None."""
    problem = _common_problem(path) if str(path) != "." else None
    if problem is None:
        if _is_dir(path):
            return None if os.access(path, os.W_OK | os.X_OK) else "cannot write in this folder"
        if os.path.lexists(path):
            problem = "exists and is not a folder"
    return problem or _parent_problem(path)


def check_file(path: Path) -> Path:
    problem = file_problem(path)
    if problem:
        raise OutputError(path, problem)
    return path


def check_dir(path: Path) -> Path:
    problem = dir_problem(path)
    if problem:
        raise OutputError(path, problem)
    return path


def output_file(value: str) -> Path:
    """argparse type for an option naming a file we write."""
    problem = file_problem(Path(value))
    if problem:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return Path(value)


def output_dir(value: str) -> Path:
    """argparse type for an option naming a folder we write into."""
    problem = dir_problem(Path(value))
    if problem:
        raise argparse.ArgumentTypeError(f"{value}: {problem}")
    return Path(value)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (creating parent folders); OutputError, and nothing left, on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(path, f"cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            f.write(data)
        Path(tmp).replace(path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        if isinstance(e, OSError):
            raise OutputError(path, f"cannot write: {e.strerror or e}") from None
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """`write_bytes` of UTF-8 text."""
    return write_bytes(path, text.encode("utf-8"))


def _held_by_our_run(fd: int) -> bool:
    token = os.environ.get(LOCK_TOKEN_ENV, "")
    if len(token) < 32:
        return False
    try:
        return os.pread(fd, 256, 0).decode("ascii", "replace").strip() == token
    except OSError:
        return False


@contextlib.contextmanager
def lock(folder: Path, token: str | None = None) -> Iterator[Path]:
    """Hold `FOLDER/.mlsec.lock` exclusively while the block runs; BusyError at once when another holds it
    (unless the holder is the `mlsec run` that started us: its `token` is in our environment)."""
    check_dir(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise OutputError(folder, f"cannot create the lock file {LOCK_NAME}: {e.strerror or e}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if _held_by_our_run(fd):
                yield folder
                return
            raise BusyError(f"{folder}: another mlsec run, gate or sign is writing into this folder; "
                            "wait for it to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        if token:
            os.pwrite(fd, token.encode("ascii") + b"\n", 0)
        yield folder
    finally:
        os.close(fd)  # closing the descriptor releases the lock
