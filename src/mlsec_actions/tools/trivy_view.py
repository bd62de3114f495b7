"""The tree as trivy is given it: a view in a private folder of ours, without the repository's `.git`.

`trivy fs` on a git checkout opens the repository at the scan root (go-git) and works out its status. On a
commit holding a ~1,000-deep tree that runs past any timeout (the same tree without `.git` takes seconds),
and a `.git` *file* reading `gitdir: <a FIFO>` blocks trivy for good. A pull request controls both.

So trivy scans a view: the same relative paths under a folder of ours (mode 0700, beside the runner's temp
files, never inside the tree), regular files hard-linked (no bytes copied; when the link is refused, as
across file systems, a copy within a byte budget, then a coverage gap), symlinks recreated as the same
symlinks (trivy is made to follow nothing it would not have followed), FIFOs, sockets and devices left out
(never opened; each one is a note), and no top-level `.git`, file or folder. Paths in trivy's report are
relative to the view's root, so they, the fingerprints and the SARIF locations are those of the tree.
The walk and the removal are iterative (a tree deeper than Python's recursion limit is normal here).
"""

# str paths on purpose, not pathlib (see _Builder):
# ruff: noqa: PTH102, PTH106, PTH108, PTH115, PTH123, PTH211
from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions import sanitize
from mlsec_actions.findings import CoverageGap, GapKind, ToolStatus

COPY_BUDGET = 512 * 1024 * 1024
"""Bytes copied in all when hard links are refused; files past it are not given to trivy (a gap each)."""
CHUNK = 1024 * 1024
MAX_GAPS = 200
"""Gaps recorded one by one; the rest are counted in one more."""
HIDDEN = (".git",)
"""Top-level entries never put in the view (trivy's git handling at the scan root)."""


class ViewError(Exception):
    """The view could not be made: trivy does not run, and the run fails closed with `status`."""

    def __init__(self, message: str, status: ToolStatus = ToolStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class View:
    """A built view of the tree."""

    root: Path
    """The folder trivy scans (same relative paths as the tree)."""
    gaps: tuple[CoverageGap, ...]
    """What the tree holds that the view does not (files trivy did not get to see)."""
    left_out: tuple[str, ...]
    """FIFOs, sockets and devices not put in the view (relative paths); trivy never opens these anyway."""
    copied: int
    """Files copied because a hard link was refused."""


class _Builder:
    # Paths are strings joined by hand, not Path objects: pathlib re-parses every part of a path per call,
    # which made a 1,000-deep tree take seconds (quadratic in the depth).
    def __init__(self, source: Path, dest: Path, copy_budget: int, deadline: float | None) -> None:
        self.source, self.dest = str(source), str(dest)
        self.budget, self.total = copy_budget, copy_budget
        self.deadline = deadline
        self.gaps: list[CoverageGap] = []
        self.dropped = 0
        self.left_out: list[str] = []
        self.copied = 0

    def gap(self, kind: GapKind, detail: str, rel: str) -> None:
        if len(self.gaps) < MAX_GAPS:
            self.gaps.append(CoverageGap(kind, detail, path=sanitize.log_line(rel, 300)))
        else:
            self.dropped += 1

    def build(self, skip_top: Collection[str]) -> None:
        stack = [""]
        while stack:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise ViewError("timed out making the view of the tree trivy scans", ToolStatus.TIMEOUT)
            rel = stack.pop()
            try:
                with os.scandir(f"{self.source}/{rel}" if rel else self.source) as listing:
                    entries = sorted(((e.name, _kind(e)) for e in listing), reverse=True)
            except OSError as e:
                if not rel:
                    raise ViewError(f"cannot list the tree {self.source}: {e.strerror or e}") from e
                self.gap(GapKind.FILE_UNREADABLE, f"folder not listed, so not given to trivy: {e.strerror or e}", rel)
                continue
            for name, kind in entries:
                if not rel and name in skip_top:
                    continue
                child = f"{rel}/{name}" if rel else name
                if self.add(child, kind):
                    stack.append(child)

    def add(self, rel: str, kind: str) -> bool:
        """Put one entry in the view; True when it is a folder to walk."""
        src, dst = f"{self.source}/{rel}", f"{self.dest}/{rel}"
        try:
            if kind == "dir":
                os.mkdir(dst, 0o700)
                return True
            if kind == "symlink":
                os.symlink(os.readlink(src), dst)  # the exact target text (a trailing slash means something)
            elif kind == "file":
                self.link(src, dst, rel)
            else:
                self.left_out.append(rel)
        except OSError as e:
            self.gap(GapKind.FILE_UNREADABLE, f"not given to trivy: {e.strerror or e}", rel)
        return False

    def link(self, src: str, dst: str, rel: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
            return
        except OSError as e:
            refused = e.strerror or str(e)
        spent = f"hard link refused ({refused}) and the copy budget ({self.total} bytes in all) is spent"
        # O_NOFOLLOW and a regular-file check on what was opened: the entry may have been swapped meanwhile.
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as reader:
            info = os.fstat(reader.fileno())
            if not stat.S_ISREG(info.st_mode):
                self.left_out.append(rel)
                return
            if info.st_size > self.budget:
                self.gap(GapKind.FILE_SKIPPED, f"not given to trivy: {spent}", rel)
                return
            with open(dst, "xb") as writer:
                while chunk := reader.read(min(CHUNK, self.budget + 1)):
                    if len(chunk) > self.budget:  # grew since the lstat: what was copied is not a true view
                        writer.truncate(0)
                        self.gap(GapKind.FILE_SKIPPED, f"not given to trivy (left empty): {spent}", rel)
                        self.budget = 0
                        return
                    writer.write(chunk)
                    self.budget -= len(chunk)
        self.copied += 1

    def result(self) -> View:
        gaps = list(self.gaps)
        if self.dropped:
            gaps.append(CoverageGap(GapKind.FILE_SKIPPED, f"{self.dropped} more entries not given to trivy "
                                    "(not listed one by one)"))
        return View(Path(self.dest), tuple(gaps), tuple(sorted(self.left_out)), self.copied)


def _kind(entry: os.DirEntry[str]) -> str:
    """dir, symlink, file or special, from the listing (no stat call where the file system gives the type)."""
    if entry.is_symlink():
        return "symlink"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    return "file" if entry.is_file(follow_symlinks=False) else "special"


def _parent(root: Path) -> Path:
    """Where the view goes: the runner's temp folder when it shares the tree's file system (hard links work
    there), else the system's; never a folder inside the tree."""
    real = root.resolve()
    candidates = [Path(p) for p in (os.environ.get("RUNNER_TEMP"), tempfile.gettempdir()) if p]
    usable = [c.resolve() for c in candidates if c.is_dir() and not c.resolve().is_relative_to(real)]
    if not usable:
        raise ViewError(f"no temporary folder outside the scanned tree {root}")
    try:
        device = real.stat().st_dev
    except OSError:
        return usable[0]
    return next((c for c in usable if c.stat().st_dev == device), usable[0])


def remove(folder: Path) -> None:
    """Remove `folder` and everything under it, iteratively and without following a symlink. Best effort:
    what cannot be removed stays (in a private temp folder) rather than hide the error being handled."""
    stack = [(str(folder), False)]
    while stack:
        path, listed = stack.pop()
        try:
            if listed:
                os.rmdir(path)
                continue
            stack.append((path, True))
            with os.scandir(path) as listing:
                for entry in listing:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, False))
                    else:
                        os.unlink(entry.path)
        except OSError:
            continue


def notes(view: View) -> tuple[str, ...]:
    """What the run's record says about the view: what was left out or copied."""
    out = []
    if view.left_out:
        shown = ", ".join(sanitize.log_line(p, 200) for p in view.left_out[:10])
        more = f" and {len(view.left_out) - 10} more" if len(view.left_out) > 10 else ""
        out.append(f"{len(view.left_out)} FIFO(s), socket(s) or device(s) not given to trivy (never opened): "
                   f"{shown}{more}")
    if view.copied:
        out.append(f"{view.copied} file(s) copied into trivy's view of the tree (hard links refused)")
    return tuple(out)


@contextmanager
def view(root: Path, *, deadline: float | None = None, copy_budget: int = COPY_BUDGET,
         parent: Path | None = None) -> Iterator[View]:
    """A view of `root` for trivy, removed when the block ends (also on an error or a timeout). Raises
    `ViewError` when it cannot be made."""
    try:
        where = parent if parent is not None else _parent(root)
        if where.resolve().is_relative_to(root.resolve()):
            raise ViewError(f"the view of {root} must not be inside it ({where})")
        holder = Path(tempfile.mkdtemp(prefix="mlsec-trivy-tree-", dir=where))
    except OSError as e:
        raise ViewError(f"cannot make a view of the tree for trivy: {e.strerror or e}") from e
    try:
        dest = holder / "tree"
        try:
            dest.mkdir(mode=0o700)
            builder = _Builder(root, dest, copy_budget, deadline)
            builder.build(HIDDEN)
        except OSError as e:
            raise ViewError(f"cannot make a view of the tree for trivy: {e.strerror or e}") from e
        yield builder.result()
    finally:
        remove(holder)
