"""Dependency licences: the inventory code-scan records (trivy's licence scanner) and how an expression is judged.

code-scan writes every package trivy listed, with its licences, to `run.properties.mlsec-licenses` of its SARIF
(`{"complete": bool, "packages": [...]}`); the gate's `code-scan.licenses` policy (gate/licenses.py) and the sbom
stage (`--licenses-from`) read it from there, never from the tree. `complete` is false when trivy did not finish
on every scanned path: then the list may lack packages, and the gate fails closed on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

PROPERTY = "mlsec-licenses"
"""The SARIF run property holding the inventory."""
MAX_PACKAGES = 20_000
"""Packages recorded at most; more make the inventory incomplete (the gate then fails closed)."""
UNKNOWN = frozenset({"", "unknown", "noassertion", "none", "unlicensed", "see license", "see license in file"})
"""Licence names that say nothing about the terms (compared lower-case)."""


@dataclass(frozen=True)
class PackageLicense:
    """One dependency and the licences its package metadata declares."""

    ecosystem: str
    """trivy's package type: `npm`, `pip`, `poetry`, `uv`, `gomod`, `cargo`..."""
    name: str
    """Package name as the manifest spells it."""
    version: str
    """Its version ('' when the manifest gives none)."""
    licenses: tuple[str, ...]
    """Each declared licence: an SPDX id, an SPDX expression or a free-text name; empty when none is declared."""
    path: str
    """The manifest or lockfile it was found in, repository-relative."""

    @property
    def known(self) -> bool:
        """Whether any licence is declared (not blank, `UNKNOWN` or `NOASSERTION`)."""
        return any(lic.strip().lower() not in UNKNOWN for lic in self.licenses)

    def as_json(self) -> dict[str, Any]:
        return {"ecosystem": self.ecosystem, "name": self.name, "version": self.version,
                "licenses": list(self.licenses), "path": self.path}


def to_property(packages: Iterable[PackageLicense], complete: bool) -> dict[str, Any]:
    """The run property: sorted, capped at `MAX_PACKAGES` (past it, `complete` is false)."""
    unique = sorted(set(packages), key=lambda p: (p.path, p.ecosystem, p.name, p.version, p.licenses))
    return {"complete": complete and len(unique) <= MAX_PACKAGES,
            "packages": [p.as_json() for p in unique[:MAX_PACKAGES]]}


class InventoryError(ValueError):
    """The property is not an inventory of ours."""


def from_property(value: Any) -> tuple[tuple[PackageLicense, ...], bool]:
    """(packages, complete) from the run property; `InventoryError` when its shape is wrong."""
    if not isinstance(value, dict) or not isinstance(value.get("complete"), bool) \
            or not isinstance(value.get("packages"), list):
        raise InventoryError(f"run.properties.{PROPERTY} is not {{complete: bool, packages: [...]}}")
    out = []
    for i, p in enumerate(value["packages"]):
        fields = [p.get(k) if isinstance(p, dict) else None for k in ("ecosystem", "name", "version", "path")]
        lics = p.get("licenses") if isinstance(p, dict) else None
        if not all(isinstance(f, str) for f in fields) or not isinstance(lics, list) \
                or not all(isinstance(lic, str) for lic in lics):
            raise InventoryError(f"run.properties.{PROPERTY}.packages[{i}] is not a package with string fields "
                                 "and a list of licences")
        out.append(PackageLicense(fields[0], fields[1], fields[2], tuple(lics), fields[3]))  # type: ignore[arg-type]
    return tuple(out), value["complete"]


def relocate(value: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The property with every package's path under `prefix` (a scan of a sub-folder of the repository)."""
    if not prefix:
        return value
    return {**value, "packages": [{**p, "path": f"{prefix}/{p['path']}" if p.get("path") else prefix}
                                  for p in value.get("packages") or [] if isinstance(p, dict)]}


def combine(first: Any, second: dict[str, Any]) -> dict[str, Any]:
    """Two paths' inventories as one: complete only when both are."""
    if not isinstance(first, dict):
        return second
    packages = [*(first.get("packages") or []), *(second.get("packages") or [])]
    return {"complete": first.get("complete") is True and second.get("complete") is True
            and len(packages) <= MAX_PACKAGES, "packages": packages[:MAX_PACKAGES]}


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def _operators(tokens: list[str]) -> bool:
    return any(t.upper() in ("AND", "OR", "WITH") or t in ("(", ")") for t in tokens)


def terms(expression: str) -> list[str]:
    """The licence ids of an SPDX expression (`MIT OR (Apache-2.0 AND BSD-3-Clause)`), without operators and
    `WITH` exceptions; a free-text name without operators (`Apache 2.0`) is one id."""
    tokens = _TOKEN.findall(expression)
    if not _operators(tokens):
        return [expression.strip()]
    out = []
    for i, t in enumerate(tokens):
        after_with = i > 0 and tokens[i - 1].upper() == "WITH"
        if t not in ("(", ")") and t.upper() not in ("AND", "OR", "WITH") and not after_with:
            out.append(t)
    return out


def acceptable(expression: str, ok: Callable[[str], bool]) -> bool:
    """Whether `expression` can be complied with when `ok(id)` says which ids are acceptable: `A OR B` needs
    one of them, `A AND B` both, `A WITH exception` is judged as `A`. A free-text name (`Apache 2.0`,
    `BSD License`) is one id as a whole. Operators that do not make an expression (`MIT AND (`) are never acceptable."""
    tokens = _TOKEN.findall(expression)
    if not _operators(tokens):
        return ok(expression.strip())
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def primary() -> bool:
        nonlocal pos
        tok = peek()
        if tok is None or tok == ")" or tok.upper() in ("AND", "OR", "WITH"):
            raise ValueError("expected a licence")
        pos += 1
        if tok == "(":
            value = disjunction()
            if peek() != ")":
                raise ValueError("unbalanced parenthesis")
            pos += 1
            return value
        if (peek() or "").upper() == "WITH":
            pos += 2  # the exception only grants more: judged as the licence itself
        return ok(tok)

    def conjunction() -> bool:
        nonlocal pos
        values = [primary()]
        while (peek() or "").upper() == "AND":
            pos += 1
            values.append(primary())
        return all(values)

    def disjunction() -> bool:
        nonlocal pos
        values = [conjunction()]
        while (peek() or "").upper() == "OR":
            pos += 1
            values.append(conjunction())
        return any(values)

    try:
        value = disjunction()
        if pos != len(tokens):
            raise ValueError("trailing tokens")
        return value
    except ValueError:
        return False  # operators that do not make an expression: nothing says what may be complied with
