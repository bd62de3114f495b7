"""The text files of a source tree, read once with limits, for the in-house code-scan analyzers.

Only regular files are read (a symbolic link, FIFO or device is never opened, so nothing outside the
tree is read); a file larger than `MAX_TEXT_BYTES` is read up to that size and the rest is a gap; a file
with a NUL byte in its first 8 KiB is binary, skipped as a gap. Nothing is imported or executed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.analyzers import tree
from mlsec_actions.findings import CoverageGap, GapKind

MAX_TEXT_BYTES = 4 * 1024 * 1024
"""Bytes read of one file; past this the file is scanned in part and the rest recorded as a gap."""
SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "mlsec-results", "__pycache__", ".pytest_cache", ".mypy_cache",
                       ".ruff_cache", ".tox"})
"""Folders not walked: what trivy skips, and local tool caches (never committed)."""
_SNIFF = 8192


@dataclass(frozen=True)
class SourceFile:
    """One text file of the tree."""

    path: str
    """Path relative to the scanned root, POSIX separators (undecodable bytes replaced)."""
    text: str
    """Its content decoded as UTF-8 (invalid bytes replaced), at most `MAX_TEXT_BYTES`."""


def _rel(root: str, full: str) -> str:
    rel = os.path.relpath(full, root).replace(os.sep, "/")
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def files(root: Path, gaps: list[CoverageGap], suffixes: tuple[str, ...] = ()) -> Iterator[SourceFile]:
    """Every text file under `root` (only names ending in `suffixes`, when given); what is skipped goes to `gaps`."""
    base = str(root)
    for folder, names in tree.folders(root, SKIP_DIRS, gaps):  # iterative: a 1,000-deep tree is a gap
        for name in names:
            if suffixes and not name.endswith(suffixes):
                continue
            full = f"{folder}{os.sep}{name}"
            got = _read(full, _rel(base, full), gaps)
            if got is not None:
                yield got


def _read(full: str, rel: str, gaps: list[CoverageGap]) -> SourceFile | None:
    try:
        info = os.lstat(full)
        if not stat.S_ISREG(info.st_mode):
            if not stat.S_ISDIR(info.st_mode):
                gaps.append(CoverageGap(GapKind.FILE_SKIPPED, "not a regular file (link or special file): not read",
                                        path=rel))
            return None
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None  # replaced between lstat and open
            data = fh.read(MAX_TEXT_BYTES + 1)
    except OSError as e:
        gaps.append(CoverageGap(GapKind.FILE_UNREADABLE, f"could not be read: {e.strerror or e}", path=rel))
        return None
    if b"\0" in data[:_SNIFF]:
        gaps.append(CoverageGap(GapKind.FILE_SKIPPED, "binary file: not scanned for secrets or code", path=rel))
        return None
    if len(data) > MAX_TEXT_BYTES:
        gaps.append(CoverageGap(GapKind.LIMIT_REACHED, f"only the first {MAX_TEXT_BYTES} bytes were scanned",
                                path=rel))
        data = data[:MAX_TEXT_BYTES]
    return SourceFile(rel, data.decode("utf-8", errors="replace"))
