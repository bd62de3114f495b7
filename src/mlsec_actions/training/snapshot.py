"""The work tree before and after a training run, by metadata: what the run changed outside its output folder.

A snapshot is `(size, mtime_ns, inode, kind)` per entry, walked iteratively without following links and
bounded in entries, so a hostile tree cannot make it slow or recurse. Comparing two snapshots gives the
files created, changed or removed; the output folder itself is left out (that is where writes belong).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_ENTRIES = 200_000
"""Entries recorded per snapshot; a larger tree is a coverage gap (the rest is not watched)."""
MAX_DEPTH = 64
"""Folder nesting watched."""
SKIPPED_DIRS = frozenset({".git"})
"""Top-level folders not watched: git's own bookkeeping changes under any command that reads the repository."""


@dataclass(frozen=True)
class Snapshot:
    """What the tree held at one moment."""

    entries: dict[str, tuple[int, int, int, int]]
    """Relative POSIX path -> (size, mtime_ns, inode, file-type bits)."""
    truncated: bool
    """The entry or depth limit stopped the walk: changes beyond it are not seen."""


def _inside(rel: str, folder: str) -> bool:
    return folder == "" or rel == folder or rel.startswith(folder + "/")


def take(root: Path, exclude: tuple[str, ...] = ()) -> Snapshot:
    """Snapshot `root`, leaving out the relative folders in `exclude` (the output folder, our results)."""
    entries: dict[str, tuple[int, int, int, int]] = {}
    truncated = False
    stack: list[tuple[Path, str, int]] = [(root, "", 0)]
    while stack:
        here, prefix, depth = stack.pop()
        try:
            listing = sorted(os.scandir(here), key=lambda e: e.name)
        except OSError:
            continue  # a folder we cannot list: its entry's metadata still records it
        for entry in listing:
            rel = f"{prefix}{entry.name}"
            if (depth == 0 and entry.name in SKIPPED_DIRS) or any(_inside(rel, x) for x in exclude):
                continue
            if len(entries) >= MAX_ENTRIES:
                return Snapshot(entries, True)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            entries[rel] = (st.st_size, st.st_mtime_ns, st.st_ino, stat.S_IFMT(st.st_mode))
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 > MAX_DEPTH:
                    truncated = True
                    continue
                stack.append((Path(entry.path), rel + "/", depth + 1))
    return Snapshot(entries, truncated)


def folders(snap: Snapshot) -> list[str]:
    """The snapshot's folders (relative), not links to them."""
    return [rel for rel, meta in snap.entries.items() if meta[3] == stat.S_IFDIR]


@dataclass(frozen=True)
class Changes:
    """What differs between two snapshots (folders' own metadata changes are not listed)."""

    created: tuple[str, ...]
    """Entries that appeared."""
    modified: tuple[str, ...]
    """Entries whose size, time, inode or type changed."""
    removed: tuple[str, ...]
    """Entries that disappeared."""

    @property
    def any(self) -> bool:
        return bool(self.created or self.modified or self.removed)


def diff(before: Snapshot, after: Snapshot) -> Changes:
    def is_dir(meta: tuple[int, int, int, int]) -> bool:
        return meta[3] == stat.S_IFDIR

    created = sorted(k for k in after.entries.keys() - before.entries.keys() if not is_dir(after.entries[k]))
    removed = sorted(k for k in before.entries.keys() - after.entries.keys() if not is_dir(before.entries[k]))
    modified = sorted(k for k in before.entries.keys() & after.entries.keys()
                      if not is_dir(after.entries[k]) and before.entries[k] != after.entries[k])
    return Changes(tuple(created), tuple(modified), tuple(removed))


def relative_inside(path: Path, root: Path) -> str | None:
    """`path` relative to `root` as POSIX text ('' for the root itself), or None when it lies outside."""
    full, base = path.resolve(), root.resolve()
    if not full.is_relative_to(base):
        return None
    rel = PurePosixPath(full.relative_to(base).as_posix()).as_posix()
    return "" if rel == "." else rel


def git_commit(root: Path) -> str | None:
    """The commit checked out at `root`, read from `.git` as data (never by running git in a hostile
    repository, whose config can name programs): `GITHUB_SHA` when the workflow gives it."""
    sha = os.environ.get("GITHUB_SHA", "")
    if _is_sha(sha):
        return sha.lower()
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="ascii", errors="replace").strip() if git.is_dir() else ""
    except OSError:
        return None
    if _is_sha(head):
        return head.lower()
    if not head.startswith("ref: refs/"):
        return None
    ref = head[5:]
    if ".." in ref or "\\" in ref:
        return None
    try:
        loose = git / ref
        if loose.is_file() and not loose.is_symlink():
            value = loose.read_text(encoding="ascii", errors="replace").strip()
            return value.lower() if _is_sha(value) else None
        packed = git / "packed-refs"
        if packed.is_file() and packed.stat().st_size < 16 * 1024 * 1024:
            for line in packed.read_text(encoding="ascii", errors="replace").splitlines():
                value, _, name = line.partition(" ")
                if name == ref and _is_sha(value):
                    return value.lower()
    except OSError:
        return None
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdefABCDEF" for c in text)
