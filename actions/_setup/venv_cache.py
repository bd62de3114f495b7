"""The tool venv's cache key, its manifest digest, and the check of a venv restored from the cache.

A restored venv is never trusted because its cache key matched: any job of the same run and ref scope can write
cache entries, and some jobs run the scanned repository's code. It is used only when the digest of its files
equals a digest the caller got from a job that installed fresh and ran no repository code, and its interpreter
is this job's; otherwise install.sh installs fresh.

The manifest lists every entry below the folder (the folder itself too), sorted by its path's bytes: type
(d folder, f file, l link), permission bits in octal, the path, then the file's SHA-256 or the link's target;
each field ends in a NUL, so no path, target or mode can pass for another entry. Anything else (a fifo, a
socket, a device) makes the folder unfit. Times and owners are not listed (a cache round trip may change them).

Run by the job's own interpreter in isolated mode, never by the venv's:
    python -I venv_cache.py key --extras E --index URL --root CHECKOUT --venv DIR
    python -I venv_cache.py digest DIR
    python -I venv_cache.py verify DIR EXPECTED-DIGEST
Exit codes: 0 done (verify: the venv is fit), 1 verify: unfit (the reason on stderr), 2 bad usage.
"""

# Paths are bytes here (os, not pathlib): a name is listed exactly as the filesystem gives it.
# ruff: noqa: PTH100, PTH113, PTH114, PTH115, PTH118, PTH123, PTH208

from __future__ import annotations

import hashlib
import os
import platform
import re
import stat
import sys

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# What the install reads from the action's checkout: a change to any of it is a new key.
_CHECKOUT_PARTS = ("pyproject.toml", "src", "actions/_setup")


class Unfit(Exception):
    """The folder cannot be used: its reason."""


def _file_sha256(path: bytes) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _entries(top: bytes, rel: bytes, skip_pycache: bool) -> list[tuple[bytes, bytes]]:
    """(path, record) for `rel` below `top` and everything under it, unsorted."""
    path = os.path.join(top, rel) if rel != b"." else top
    st = os.lstat(path)
    mode = b"%o" % stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return [(rel, b"l\0" + mode + b"\0" + rel + b"\0" + os.readlink(path) + b"\0")]
    if stat.S_ISREG(st.st_mode):
        return [(rel, b"f\0" + mode + b"\0" + rel + b"\0" + _file_sha256(path).encode() + b"\0")]
    if not stat.S_ISDIR(st.st_mode):
        raise Unfit(f"{os.fsdecode(rel)} is neither a file, a folder nor a link")
    out = [(rel, b"d\0" + mode + b"\0" + rel + b"\0\0")]
    for name in os.listdir(path):
        if skip_pycache and name == b"__pycache__":
            continue
        out.extend(_entries(top, name if rel == b"." else os.path.join(rel, name), skip_pycache))
    return out


def manifest(folder: str, *, skip_pycache: bool = False) -> bytes:
    """The manifest of `folder` (which must be a folder, not a link to one)."""
    top = os.fsencode(folder)
    try:
        st = os.lstat(top)
    except FileNotFoundError:
        raise Unfit(f"{folder} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise Unfit(f"{folder} is not a folder")
    entries = _entries(top, b".", skip_pycache)
    entries.sort(key=lambda e: e[0])
    return b"".join(record for _, record in entries)


def digest(folder: str, *, skip_pycache: bool = False) -> str:
    return hashlib.sha256(manifest(folder, skip_pycache=skip_pycache)).hexdigest()


def checkout_digest(root: str) -> str:
    """Digest of the parts of the action's checkout the install reads (bytecode caches left out)."""
    h = hashlib.sha256()
    for part in _CHECKOUT_PARTS:
        path = os.path.join(root, part)
        h.update(part.encode() + b"\0")
        if os.path.isfile(path) and not os.path.islink(path):
            h.update(_file_sha256(os.fsencode(path)).encode() + b"\0")
        else:
            h.update(digest(path, skip_pycache=True).encode() + b"\0")
    return h.hexdigest()


def _version() -> str:
    """This interpreter's x.y.z, as the key names it and pyvenv.cfg records it."""
    return ".".join(str(n) for n in sys.version_info[:3])


def _os_id() -> str:
    try:
        rel = platform.freedesktop_os_release()
        name = rel.get("ID", "") + rel.get("VERSION_ID", "")
    except OSError:
        name = ""
    return f"{platform.system()}-{name}-{platform.machine()}".lower()


def key(extras: str, index: str, root: str, venv: str) -> str:
    """The cache key: runner OS, this interpreter exactly, the extras, the index, the checkout and the venv's path."""
    interpreter = os.path.realpath(sys.executable)
    identity = "\0".join([_os_id(), sys.version, sys.implementation.cache_tag or "", interpreter,
                          extras, index, checkout_digest(root), os.path.abspath(venv)])
    short = re.sub(r"[^a-z0-9.-]+", "-", _os_id())
    version = _version()
    return f"mlsec-venv-1-{short}-py{version}-{hashlib.sha256(identity.encode()).hexdigest()[:40]}"


def _pyvenv_version(venv: str) -> str | None:
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() in ("version", "version_info"):
            return value.strip()
    return None


def verify(venv: str, expected: str) -> None:
    """Raise Unfit unless `venv`'s digest is `expected` and its interpreter is this job's."""
    got = digest(venv)
    if got != expected:
        raise Unfit(f"its files differ from the ones installed (digest {got}, expected {expected})")
    link = os.path.join(venv, "bin", "python")
    if not os.path.islink(link) and not os.path.isfile(link):
        raise Unfit("it has no bin/python")
    if os.path.realpath(link) != os.path.realpath(sys.executable):
        raise Unfit(f"its interpreter {os.path.realpath(link)} is not this job's {os.path.realpath(sys.executable)}")
    version = _version()
    cfg = _pyvenv_version(venv)
    if cfg is None or not (cfg == version or cfg.startswith(version + ".")):
        raise Unfit(f"its pyvenv.cfg names Python {cfg}, this job runs {version}")


def main(argv: list[str]) -> int:
    usage = "usage: venv_cache.py key --extras E --index URL --root DIR --venv DIR | digest DIR | verify DIR DIGEST"
    if argv[:1] == ["key"] and len(argv) == 9 and argv[1:9:2] == ["--extras", "--index", "--root", "--venv"]:
        print(key(argv[2], argv[4], argv[6], argv[8]))
        return 0
    if argv[:1] == ["digest"] and len(argv) == 2:
        try:
            print(digest(argv[1]))
        except (Unfit, OSError, RecursionError) as e:
            print(f"venv_cache.py: {e}", file=sys.stderr)
            return 1
        return 0
    if argv[:1] == ["verify"] and len(argv) == 3:
        if not _DIGEST.fullmatch(argv[2]):
            print("venv_cache.py: the expected digest must be 64 lowercase hex digits", file=sys.stderr)
            return 2
        try:
            verify(argv[1], argv[2])
        except (Unfit, OSError, RecursionError) as e:
            print(f"venv_cache.py: {argv[1]} is unfit: {e}", file=sys.stderr)
            return 1
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
