"""The gate's provenance options as values: `--run-id`, `--expect-stage`, `--sarif-digest`.

Checked while the command line (or `MLSEC_*`) is parsed, so a bad value is exit 2 before anything is read.
Kept apart from `provenance.py` and light to import: every `mlsec` command builds the gate's parser.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from mlsec_actions import catalog

MAX_RUN_ID = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: what runners and workflows generate


class BadValue(argparse.ArgumentTypeError, ValueError):
    """An option value that cannot be used: argparse shows its message (exit 2); the `MLSEC_*` reader
    catches it as a ValueError (exit 2, naming the variable)."""


def parse_run_id(text: str) -> str:
    """A run id: 1-200 printable ASCII characters, no spaces (it is printed and compared byte for byte)."""
    if not _RUN_ID.fullmatch(text) or len(text) > MAX_RUN_ID:
        raise BadValue(f"run id must be 1-{MAX_RUN_ID} printable ASCII characters without spaces")
    return text


def parse_stage(text: str) -> str:
    """A stage id from the catalog; the gate's own stage is never counted, so it cannot be expected."""
    if text not in catalog.stage_ids():
        raise BadValue(f"unknown stage id {text[:80]!r} (known: {', '.join(sorted(catalog.stage_ids()))})")
    if catalog.by_id(text) is not None and catalog.by_id(text).kind is catalog.Kind.GATE:  # type: ignore[union-attr]
        raise BadValue("the gate's own SARIF is never counted, so it cannot be an expected stage")
    return text


def parse_digest(text: str) -> tuple[str, str]:
    """`NAME=SHA256`: NAME relative to the SARIF folder (no `..`, not absolute), a 64-digit hex digest."""
    name, sep, digest = text.strip().rpartition("=")
    digest = digest.strip().lower()
    if not sep or not name:
        raise BadValue("expected NAME=SHA256 (NAME relative to --sarif-dir)")
    if not _SHA256.fullmatch(digest):
        raise BadValue(f"{name[:80]!r}: the digest must be 64 hexadecimal digits (SHA-256)")
    return normal_name(name), digest


def normal_name(name: str) -> str:
    """A SARIF folder-relative name in one spelling (`./a//b.sarif` -> `a/b.sarif`); refuses escapes."""
    if "\\" in name or "\0" in name:
        raise BadValue(f"{name[:80]!r}: use '/' to separate folders")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts == (".",):
        raise BadValue(f"{name[:80]!r}: must be a path inside --sarif-dir")
    return path.as_posix()


def unique_digests(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """One digest per name; two different digests for one name are a usage error."""
    seen: dict[str, str] = {}
    for name, digest in pairs:
        if seen.setdefault(name, digest) != digest:
            raise BadValue(f"{name[:80]!r}: two different digests given")
    return tuple(seen.items())
