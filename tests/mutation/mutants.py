"""Hand-made mutants of the security checks, each with the tests that must kill it.

A mutant is one exact text replacement in one source file. `test_mutants.py` applies each to a copy of
`src/`, runs the named tests against the copy, and fails when they still pass (the mutant survived: a
missing test). When the code a mutant names changes, the replacement no longer matches once and the
harness says so: update the entry, do not drop it. The catalogue is data (tests/mutation/mutants.toml).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

CATALOGUE = Path(__file__).with_name("mutants.toml")


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug in a security check."""

    id: str
    """A name saying what the bug does (`tar-traversal-check-removed`)."""
    file: str
    """The source file, relative to the repository (`src/mlsec_actions/...`)."""
    find: str
    """The exact text to replace; must occur exactly once in the file."""
    replace: str
    """What it becomes."""
    tests: tuple[str, ...]
    """pytest node ids or files that must fail with the mutant in place."""
    why: str = ""
    """What a user would lose if this survived."""


def load(path: Path = CATALOGUE) -> tuple[Mutant, ...]:
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    out = []
    for entry in doc.get("mutant", []):
        out.append(Mutant(id=entry["id"], file=entry["file"], find=entry["find"], replace=entry["replace"],
                          tests=tuple(entry["tests"]), why=entry.get("why", "")))
    ids = [m.id for m in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"{path}: duplicate mutant ids {sorted(dupes)}")
    return tuple(out)
