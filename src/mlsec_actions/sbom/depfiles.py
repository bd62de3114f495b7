"""Python dependency declarations read from `requirements*.txt`, `uv.lock`, `poetry.lock`, `pyproject.toml`.

Locks give exact versions; requirements and pyproject give a version only when pinned with `==`.
Each parser is a small function; `collect` merges them, a lock's version winning over a range.
Files are parsed, never executed (no setup.py).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from mlsec_actions.errors import InputError
from mlsec_actions.inputs import read_regular

MAX_DEPFILE_BYTES = 8 * 1024 * 1024
"""A lock or requirements file larger than this is refused (exit 2), not read."""


@dataclass(frozen=True)
class Dependency:
    """One Python package a project declares."""

    name: str
    """Normalized (PEP 503) distribution name."""
    version: str | None
    """Exact version when pinned or locked, else None."""
    source: str
    """The file it was read from, relative to the project root."""

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{self.name}@{self.version}" if self.version else f"pkg:pypi/{self.name}"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _from_spec(spec: str, source: str) -> Dependency | None:
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return None
    pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return Dependency(normalize(req.name), pins[0] if len(pins) == 1 else None, source)


def parse_requirements(path: Path, root: Path, _seen: set[Path] | None = None) -> Iterator[Dependency]:
    seen = _seen if _seen is not None else set()
    if path in seen:
        return
    seen.add(path)
    source = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    text = _read(path).replace("\\\n", " ")
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            included = _unlinked(path.parent / line.split(None, 1)[1].strip())
            if included is not None and included.is_relative_to(_unlinked(root) or root) \
                    and _regular(included):  # never leave the project, never through a link
                yield from parse_requirements(included, _unlinked(root) or root, seen)
            continue
        if line.startswith("-") or "://" in line.split(";")[0]:
            continue  # options, editables and direct URLs carry no PyPI name@version
        line = re.split(r"\s--hash[= ]", line)[0]
        dep = _from_spec(line, source)
        if dep is not None:
            yield dep


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as e:
        raise InputError(path, f"not valid TOML: {e}") from None


def parse_lock(path: Path, root: Path) -> Iterator[Dependency]:
    """`uv.lock` and `poetry.lock`: both list `[[package]]` tables with name and version."""
    source = path.relative_to(root).as_posix()
    for pkg in _toml(path).get("package") or []:
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            continue
        src = pkg.get("source")
        if isinstance(src, dict) and ("editable" in src or "virtual" in src):
            continue  # the project itself (uv)
        version = pkg.get("version")
        yield Dependency(normalize(pkg["name"]), str(version) if version else None, source)


def parse_pyproject(path: Path, root: Path) -> Iterator[Dependency]:
    source = path.relative_to(root).as_posix()
    doc = _toml(path)
    project = doc.get("project") or {}
    specs = list(project.get("dependencies") or [])
    for group in (project.get("optional-dependencies") or {}).values():
        specs.extend(group or [])
    for spec in specs:
        if isinstance(spec, str) and (dep := _from_spec(spec, source)) is not None:
            yield dep
    poetry = ((doc.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    for name, constraint in poetry.items():
        if name.lower() == "python":
            continue
        version = constraint if isinstance(constraint, str) else (constraint or {}).get("version")
        exact = version if isinstance(version, str) and re.fullmatch(r"=?=?\s*[\w.+!-]+", version) \
            and not re.search(r"[\^~*<>]", version) else None
        yield Dependency(normalize(name), exact.lstrip("= ") if exact else None, source)


def _read(path: Path) -> str:
    data = read_regular(path, "dependency file", MAX_DEPFILE_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"cannot read: {e}") from None


def _unlinked(path: Path) -> Path | None:
    """`path` made absolute and normalised, or None when any part of it is a symbolic link (never followed)."""
    plain = os.path.normpath(path.absolute())
    return Path(plain) if os.path.realpath(plain) == plain else None


def _regular(path: Path) -> bool:
    """True for a regular file itself, not a link to one, a FIFO or a device (which would block a read)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


PARSERS: tuple[tuple[str, Callable[[Path, Path], Iterator[Dependency]]], ...] = (
    ("uv.lock", parse_lock),
    ("poetry.lock", parse_lock),
    ("pyproject.toml", parse_pyproject),
    ("requirements*.txt", parse_requirements),
)
"""Glob in the project root -> parser. Locks first: their exact versions win."""


def collect(root: Path, notes: list[str] | None = None) -> list[Dependency]:
    """Every dependency declared in the root's files, one per name, sorted. A match that is not a regular
    file (a link, a FIFO, a folder) is not read: one line saying so goes to `notes`."""
    found: dict[str, Dependency] = {}
    for pattern, parser in PARSERS:
        for path in sorted(root.glob(pattern)):
            if not _regular(path):
                if notes is not None:
                    notes.append(f"{path}: not a regular file (a link, FIFO or folder), dependencies not read")
                continue
            for dep in parser(path, root):
                known = found.get(dep.name)
                if known is None or (known.version is None and dep.version is not None):
                    found[dep.name] = dep
    return sorted(found.values(), key=lambda d: d.name)
