"""Moving checked artifacts from quarantine into the destination folder, all or nothing, without following links.

Each destination folder is opened component by component with `O_DIRECTORY | O_NOFOLLOW` relative to the one
above it (a planted `models -> /etc` symlink cannot redirect a write), every target is checked first (a
folder, link or special file where a file should land is refused before anything moves), then every file is
renamed into place (`os.replace` with directory descriptors: same filesystem, atomic per file).

`refuse_linked_parents` is fetch's check of `--dest` as the user wrote it, before anything is downloaded: no
folder above the destination may be a symlink, wherever it leads (issue 16).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from mlsec_actions.errors import InputError, UsageError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def refuse_linked_parents(path: Path) -> None:
    """Exit 2 when a folder above `path`, as written, is a symlink: each existing component from the first below
    the working directory (relative) or below `/` (absolute) is `lstat`ed, never resolved. The last component is
    the caller's check; a missing component ends the walk (nothing below it exists)."""
    parts = path.parts
    start = 1 if path.is_absolute() else 0  # `/` itself is not a component the user chose
    for i in range(start + 1, len(parts)):
        component = Path(*parts[:i])
        try:
            info = component.lstat()
        except OSError:
            return
        if stat.S_ISLNK(info.st_mode):
            raise UsageError(f"{path}: destination goes through a link: {component} -> {component.readlink()}")


def _open_parent(stack: ExitStack, dest_fd: int, name: str, dest: Path) -> int:
    fd = dest_fd
    for part in name.split("/")[:-1]:
        with suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as e:
            raise InputError(dest / name, f"cannot place it: {part!r} is not a plain folder ({e.strerror})") from None
        stack.callback(os.close, fd)
    return fd


def _check_target(fd: int, leaf: str, shown: Path) -> None:
    try:
        info = os.stat(leaf, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise InputError(shown, "cannot place it: something other than a regular file is in the way")


@contextmanager
def _dest_fd(dest: Path) -> Iterator[int]:
    try:
        fd = os.open(dest, _DIR_FLAGS)
    except OSError as e:
        raise InputError(dest, f"destination is not a plain folder ({e.strerror})") from None
    try:
        yield fd
    finally:
        os.close(fd)


def place(quarantine: Path, dest: Path, names: Sequence[str]) -> list[str]:
    """Move `quarantine/NAME` to `dest/NAME` for every name; returns the names placed."""
    with _dest_fd(dest) as dest_fd, ExitStack() as stack:
        planned = []
        for name in names:
            parent = _open_parent(stack, dest_fd, name, dest)
            leaf = name.rsplit("/", 1)[-1]
            _check_target(parent, leaf, dest / name)
            planned.append((name, parent, leaf))
        for name, parent, leaf in planned:
            os.replace(quarantine / name, leaf, dst_dir_fd=parent)
    return [n for n, _, _ in planned]
