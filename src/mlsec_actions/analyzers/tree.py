"""The scanned tree, walked iteratively: regular files to scan, and everything else as a reason.

A hostile tree can be deeper than Python's recursion limit, hold FIFOs or devices that block or never
end when opened, and symlinks pointing anywhere. The walk keeps its own stack (no recursion), stops at a
depth limit (reported, never silent), never opens anything but regular files (it only `lstat`s), and
never follows a symlink: one pointing out of the root is reported, one inside is scanned where it lives.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers import archive_rules as rules
from mlsec_actions.findings import CoverageGap, Finding, GapKind, Location, Severity

MAX_DEPTH = 64
"""Folder nesting below the root that is walked; deeper folders are reported as not scanned."""


class Skip(enum.Enum):
    """Why an entry is not scanned."""

    SYMLINK_OUT = "symlink-out"
    """A symlink whose target is outside the scanned root."""
    UNREADABLE = "unreadable"
    """`lstat` or listing the folder failed."""
    SPECIAL = "special"
    """A FIFO, socket or device: never opened (reading one can block forever or never end)."""
    TOO_DEEP = "too-deep"
    """A folder below the depth limit: its contents were not walked."""


@dataclass(frozen=True)
class Entry:
    """One thing the walk met."""

    rel: str
    """Path relative to the root, POSIX separators."""
    path: Path | None
    """The regular file to scan; None when it is not scanned."""
    skip: Skip | None = None
    """Why it is not scanned (None for a file to scan)."""
    problem: str = ""
    """The reason in words, for findings and gaps."""


def walk(root: Path, target: Path, skip_dirs: frozenset[str], max_depth: int = MAX_DEPTH) -> Iterator[Entry]:
    """Every entry under `target` (inside `root`), depth-first in sorted order, without recursion."""
    if target != root:
        try:
            info = target.lstat()
        except OSError as e:
            yield Entry(_rel(root, target), None, Skip.UNREADABLE, f"cannot stat: {e.strerror or e}")
            return
        if not stat.S_ISDIR(info.st_mode):
            yield _classify(root, target, info)
            return
    stack: list[tuple[Path, int]] = [(target, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                names = sorted(e.name for e in listing)
        except OSError as e:
            yield Entry(_rel(root, folder), None, Skip.UNREADABLE, f"cannot list folder: {e.strerror or e}")
            continue
        subfolders: list[Path] = []
        for name in names:
            path = folder / name
            try:
                info = path.lstat()
            except OSError as e:
                yield Entry(_rel(root, path), None, Skip.UNREADABLE, f"cannot stat: {e.strerror or e}")
                continue
            if stat.S_ISDIR(info.st_mode):
                if name in skip_dirs:
                    continue
                if depth + 1 > max_depth:
                    yield Entry(_rel(root, path), None, Skip.TOO_DEEP,
                                f"folder nested deeper than {max_depth} levels; its contents were not scanned")
                    continue
                subfolders.append(path)
                continue
            yield _classify(root, path, info)
        # Reversed so that popping visits subfolders in sorted order.
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))


def folders(root: Path, skip_dirs: Collection[str], gaps: list[CoverageGap],
            max_depth: int = MAX_DEPTH, unchecked: str = "its contents were not scanned",
            ) -> Iterator[tuple[str, list[str]]]:
    """`os.walk(root)` without recursion (os.walk and rglob recurse per level before Python 3.12): each folder
    and the sorted names of its entries that are not folders, top-down in sorted order. Symlinks are never
    followed (a link to a folder is among the names, for the caller's `lstat` to refuse); a folder named in
    `skip_dirs` is not entered; one nested deeper than `max_depth` (gap detail ending in `unchecked`), or one
    that cannot be listed, is a gap."""
    stack: list[tuple[str, int]] = [(str(root), 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as e:
            gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, f"cannot list folder: {e.strerror or e}",
                                    _text_rel(root, folder)))
            continue
        names: list[str] = []
        subfolders: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False  # the caller's lstat reports it
            if not is_dir:
                names.append(entry.name)
            elif entry.name in skip_dirs:
                continue
            elif depth + 1 > max_depth:
                why = f"folder nested deeper than {max_depth} levels; {unchecked}"
                gaps.append(CoverageGap(GapKind.LIMIT_REACHED, why, _text_rel(root, entry.path)))
            else:
                subfolders.append(entry.path)
        yield folder, names
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))


def _text_rel(root: Path, folder: str) -> str:
    rel = os.path.relpath(folder, root).replace(os.sep, "/")
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _classify(root: Path, path: Path, info: os.stat_result) -> Entry:
    rel = _rel(root, path)
    if stat.S_ISREG(info.st_mode):
        return Entry(rel, path)
    if stat.S_ISLNK(info.st_mode):
        try:
            target = str(path.readlink())
        except OSError as e:
            return Entry(rel, None, Skip.UNREADABLE, f"cannot read symlink: {e.strerror or e}")
        if not Path(os.path.realpath(path)).is_relative_to(root):
            return Entry(rel, None, Skip.SYMLINK_OUT, f"symlink to {target!r} points outside the scanned root")
        return Entry(rel, None)  # inside the root: its target is scanned where it lives
    kind = ("FIFO" if stat.S_ISFIFO(info.st_mode) else "socket" if stat.S_ISSOCK(info.st_mode)
            else "device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "special file")
    return Entry(rel, None, Skip.SPECIAL, f"{kind}, not a regular file; never opened")


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def not_scanned(entry: Entry, gaps: list[CoverageGap]) -> list[Finding]:
    """An entry the walk did not hand out: a coverage gap, and a finding when it can hide or point at content."""
    rel, why = entry.rel, f"{entry.rel}: {entry.problem}."
    if entry.skip is None:
        return []  # a symlink inside the root: its target is scanned where it lives
    if entry.skip is Skip.SPECIAL:
        gaps.append(CoverageGap(GapKind.FILE_SKIPPED, why, rel))
        return []
    if entry.skip is Skip.TOO_DEEP:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, why, rel))
        # HIGH: no project nests folders this deep, and the files below were not checked.
        return [Finding(rule=rules.LIMIT, severity=Severity.HIGH, message=why, location=Location(rel))]
    if entry.skip is Skip.UNREADABLE:
        gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, why, rel))
        return [Finding(rule=rules.UNREADABLE, severity=Severity.MEDIUM, message=why, location=Location(rel))]
    return [Finding(rule=rules.SYMLINK, severity=Severity.HIGH, message=why, location=Location(rel))]
