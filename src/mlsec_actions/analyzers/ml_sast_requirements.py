"""Unpinned and unhashed requirements (`requirements*.txt`): what a later install resolves is not what
was reviewed. Lines are parsed as text (pip is never run): a requirement not pinned with `==` to an
exact version (ranges, no version, `@ URL`, wildcards) is `ml/unpinned-requirement`; a file with
requirements and no `--hash` anywhere is `ml/unhashed-requirements` (once, at its first requirement).
"""

from __future__ import annotations

import re

from mlsec_actions.analyzers.ml_sast_rules import _r
from mlsec_actions.findings import Finding, Location, Severity

UNPINNED = _r("unpinned-requirement", "Requirement not pinned to an exact version",
              "A requirement with a range, a wildcard, a URL or no version installs whatever the index serves on "
              "the day: a compromised or breaking release arrives without review.",
              "Pin with == to an exact version (pip-compile or uv pip compile write the whole set), and update "
              "through reviewed pull requests.", Severity.LOW, "supply-chain", "dependency")
UNHASHED = _r("unhashed-requirements", "Requirements file without hashes",
              "Without --hash, pip accepts any file served under the pinned name and version (a replaced wheel, "
              "a poisoned mirror).",
              "Generate hashes (pip-compile --generate-hashes, uv pip compile --generate-hashes) and install with "
              "--require-hashes.", Severity.LOW, "supply-chain", "dependency")
RULES = (UNPINNED.rule, UNHASHED.rule)

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")
_EXACT = re.compile(r"^==\s*[A-Za-z0-9][A-Za-z0-9.+!_-]*$")


def is_requirements(path: str) -> bool:
    """`requirements*.txt`, `*-requirements.txt`, or a `.txt` in a `requirements/` folder."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".txt") and ("requirements" in name or "/requirements/" in f"/{path}")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with `\\` continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, (pending + line).strip()))
        pending = ""
    if pending:
        out.append((start, pending.strip()))
    return out


def scan_requirements(path: str, text: str) -> list[Finding]:
    """Findings for one requirements file."""
    found: list[Finding] = []
    first: int | None = None
    hashed = False
    for number, line in _logical_lines(text):
        if not line or line.startswith("-"):  # -r, -c, --index-url, -e: options, not requirements
            hashed = hashed or "--hash" in line
            continue
        spec, _, options = line.partition(" --")
        hashed = hashed or "hash=" in options
        match = _NAME.match(spec.split(";", 1)[0].strip())
        if match is None:
            continue
        first = first or number
        version = match.group(3).strip()
        if not _EXACT.match(version):
            name = match.group(1)
            found.append(Finding(rule=UNPINNED.rule, severity=UNPINNED.severity,
                                 message=f"{name} is not pinned to an exact version ({path}, line {number})",
                                 location=Location(path, number), properties=(("package", name),)))
    if first is not None and not hashed:
        found.append(Finding(rule=UNHASHED.rule, severity=UNHASHED.severity,
                             message=f"{path} has no --hash for its requirements", location=Location(path, first)))
    return found
