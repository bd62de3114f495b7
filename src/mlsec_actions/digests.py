"""SHA-256 of files, fast and once per run.

`DigestCache` remembers each file's digest keyed by (path, size, mtime_ns, inode) and persists it as
JSON in the output folder, so `sbom`, `sign` and `attest` in one pipeline run read every file once.
Large files are hashed from a read-only memory map (no copy from the page cache into a buffer: on the
2-core runner that copy costs a fifth of the time SHA-256 itself takes), small ones with `readinto` into a
reused per-thread buffer; files are spread over one thread per core, largest first, and hashlib releases
the GIL while it hashes, so the cores stay busy. One file's SHA-256 is serial by definition: a single big
file is bound by one core, a folder of several by all of them.
A file truncated by someone else while it is mapped ends the process with SIGBUS: a failure (non-zero,
nothing signed or verified), never a wrong digest.

Verification never trusts the cache (mtime can be forged); it calls `hash_files`, and walks folders
with `scan_tree`, which reports every symlink, FIFO or device instead of following or skipping it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
import threading
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.errors import InputError

BUFFER_SIZE = 1024 * 1024
"""Read size for small files: large enough that syscalls are negligible next to SHA-256 itself."""
MMAP_MIN_BYTES = 8 * 1024 * 1024
"""Files at least this big are hashed from a memory map instead of read into the buffer."""
MMAP_WINDOW = 64 * 1024 * 1024
"""Bytes mapped at once (a multiple of the page size)."""
CACHE_VERSION = 1
"""Bumped when the cache file's shape changes; other versions are ignored, not trusted."""
DEFAULT_CACHE = Path("mlsec-results") / "digests.json"
"""Where the stages keep the cache unless told otherwise (beside the SARIF files)."""

_local = threading.local()


def _buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = memoryview(bytearray(BUFFER_SIZE))
        _local.buf = buf
    return buf


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of one file: memory-mapped when large, else read in large chunks into a per-thread buffer."""
    h = hashlib.sha256()
    buf = _buffer()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO swapped in must not hang us
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(path, "not a regular file; refusing to hash it")
        if st.st_size >= MMAP_MIN_BYTES:
            # A window at a time, so the mapped pages (counted in RSS) stay bounded however large the file.
            for offset in range(0, st.st_size, MMAP_WINDOW):
                length = min(MMAP_WINDOW, st.st_size - offset)
                with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset) as mapped:
                    mapped.madvise(mmap.MADV_SEQUENTIAL)
                    h.update(mapped)  # hashlib hashes the window with the GIL released
            if os.fstat(fd).st_size != st.st_size:
                raise InputError(path, "cannot read: the file changed size while it was hashed")
        else:
            with os.fdopen(fd, "rb", buffering=0, closefd=False) as fh:
                while n := fh.readinto(buf):
                    h.update(buf[:n])
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    except ValueError:  # mmap of a file emptied since fstat
        raise InputError(path, "cannot read: the file changed while it was hashed") from None
    finally:
        os.close(fd)
    return h.hexdigest()


def workers() -> int:
    """Threads to hash with: one per usable core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


MAX_TREE_DEPTH = 256
"""Folder depth a model tree may have; deeper is refused (a model is not 256 folders deep)."""


@dataclass(frozen=True)
class Tree:
    """Everything in a folder, as `lstat` sees it: nothing is followed, nothing is left out silently."""

    files: tuple[Path, ...]
    """Regular files, sorted."""
    others: tuple[tuple[str, str], ...]
    """(relative POSIX path, what it is) for every entry that is neither a regular file nor a folder:
    symlinks (to files, folders, outside or nowhere), FIFOs, sockets, devices. Sorted."""


def _what(path: Path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            target = str(path.readlink())
        except OSError:
            target = "?"
        return f"symlink -> {target}"
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def scan_tree(folder: Path, ignore: Collection[str] = (".git",), max_depth: int = MAX_TREE_DEPTH) -> Tree:
    """Every entry under `folder` (iterative, no link followed), minus top-level names in `ignore`."""
    files: list[Path] = []
    others: list[tuple[str, str]] = []
    stack: list[tuple[Path, int]] = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        if depth > max_depth:
            raise InputError(here, f"folder is nested over {max_depth} levels deep; refusing to walk it")
        try:
            entries = list(os.scandir(here))
        except OSError as e:
            raise InputError(here, f"cannot list folder: {e.strerror or e}") from None
        for entry in entries:
            if depth == 0 and entry.name in ignore:
                continue
            p = Path(entry.path)
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as e:
                raise InputError(p, f"cannot stat: {e.strerror or e}") from None
            if stat.S_ISDIR(mode):
                stack.append((p, depth + 1))
            elif stat.S_ISREG(mode):
                files.append(p)
            else:
                others.append((p.relative_to(folder).as_posix(), _what(p, mode)))
    return Tree(tuple(sorted(files)), tuple(sorted(others)))


def hash_files(paths: Iterable[Path]) -> dict[Path, str]:
    """Hex SHA-256 of every file, read now, in parallel, with no cache: what verification uses."""
    todo = sorted(set(paths), key=lambda p: _size(p), reverse=True)
    if len(todo) <= 1:
        return {p: sha256_file(p) for p in todo}
    with ThreadPoolExecutor(max_workers=min(workers(), len(todo))) as pool:
        return dict(zip(todo, pool.map(sha256_file, todo), strict=True))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # sha256_file names the problem


def walk_files(folder: Path, ignore: Collection[str] = (".git",)) -> list[Path]:
    """Files under `folder` to describe (sbom, sign's digest batch): regular files and symlinks to files inside
    it, sorted, minus top-level names in `ignore`; a symlink leaving the folder is refused. FIFOs and
    devices are not files to hash (verification reports them: `scan_tree`)."""
    tree = scan_tree(folder, ignore)
    root = folder.resolve()
    out = list(tree.files)
    for rel, what in tree.others:
        if not what.startswith("symlink"):
            continue
        p = folder / rel
        if not p.resolve().is_relative_to(root):
            raise InputError(p, "symlink points outside the folder; refusing to hash it")
        if p.is_file():
            out.append(p)
    return sorted(out)


@dataclass(frozen=True)
class _Key:
    """What must be unchanged for a cached digest to be reused."""

    size: int
    """File size in bytes."""
    mtime_ns: int
    """Modification time, nanoseconds."""
    inode: int
    """Inode number: a file replaced by rename gets a new one."""


def _key(path: Path) -> _Key:
    try:
        st = path.stat()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    return _Key(st.st_size, st.st_mtime_ns, st.st_ino)


class DigestCache:
    """Digests of files by resolved path, reused while size, mtime and inode are unchanged."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self.hashed = 0
        """Files actually read in this process (tests use it to prove reuse)."""
        self._entries: dict[str, dict[str, object]] = {}
        self._lock = threading.Lock()
        if file is not None and file.is_file():
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                doc = None  # a damaged cache only costs a re-hash
            if isinstance(doc, dict) and doc.get("version") == CACHE_VERSION and isinstance(doc.get("files"), dict):
                self._entries = doc["files"]

    def _lookup(self, path: Path) -> tuple[str, _Key, str | None]:
        name = str(path.resolve())
        key = _key(path)
        entry = self._entries.get(name)
        if (isinstance(entry, dict) and entry.get("size") == key.size and entry.get("mtime_ns") == key.mtime_ns
                and entry.get("inode") == key.inode and isinstance(entry.get("sha256"), str)):
            return name, key, str(entry["sha256"])
        return name, key, None

    def _hash(self, name: str, key: _Key, path: Path) -> str:
        digest = sha256_file(path)
        with self._lock:
            self.hashed += 1
            self._entries[name] = {"size": key.size, "mtime_ns": key.mtime_ns, "inode": key.inode, "sha256": digest}
        return digest

    def digest(self, path: Path) -> str:
        """Hex SHA-256 of one file."""
        return self.digests([path])[path]

    def digests(self, paths: Iterable[Path]) -> dict[Path, str]:
        """Hex SHA-256 of many files, the uncached ones hashed in parallel, largest first."""
        out: dict[Path, str] = {}
        todo: list[tuple[str, _Key, Path]] = []
        aliases: dict[str, list[Path]] = {}  # one read per file, however many ways it was named
        for p in paths:
            name, key, cached = self._lookup(p)
            if cached is not None:
                out[p] = cached
            elif name in aliases:
                aliases[name].append(p)
            else:
                aliases[name] = [p]
                todo.append((name, key, p))
        # Largest first so a big file does not start last and leave one core idle at the end.
        todo.sort(key=lambda t: t[1].size, reverse=True)
        if len(todo) <= 1:
            for name, key, p in todo:
                out[p] = self._hash(name, key, p)
        else:
            with ThreadPoolExecutor(max_workers=min(workers(), len(todo))) as pool:
                for p, d in zip([t[2] for t in todo], pool.map(lambda t: self._hash(*t), todo), strict=True):
                    out[p] = d
        for same in aliases.values():
            for p in same[1:]:
                out[p] = out[same[0]]
        return out

    def tree(self, folder: Path, ignore: Collection[str] = (".git",)) -> dict[str, str]:
        """`{relative POSIX path: hex digest}` for every file in a folder."""
        files = walk_files(folder, ignore)
        digests = self.digests(files)
        return {f.relative_to(folder).as_posix(): digests[f] for f in files}

    def save(self) -> None:
        """Write the cache (atomically) if it has a file; entries for vanished files are dropped."""
        if self.file is None:
            return
        live = {k: v for k, v in self._entries.items() if Path(k).exists()}
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(self.file.name + ".tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "files": live}, indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")
        tmp.replace(self.file)
