"""Every test a doc names (`tests/...py::test_name`, and `::other` after it for the same file) exists, so a page
that says which test holds a boundary (docs/threat-model.md, docs/guarantees.md) cannot go stale silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
REF = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`")


def _refs(doc: Path) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    current = ""
    for line in doc.read_text(encoding="utf-8").splitlines():
        for m in REF.finditer(line):
            path, name = m.group(1), m.group(2)
            if path:
                current = path
            if name and current:
                out.append((current, name))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_named_test_exists(doc: Path) -> None:
    missing = []
    for path, name in _refs(doc):
        source = ROOT / path
        if not source.is_file():
            missing.append(f"{path} (no such file)")
        elif not re.search(rf"^\s*(async )?def {re.escape(name)}\b", source.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{doc.name} names tests that do not exist: {missing}"
