"""What the stages could not check, as the gate reads it and the policy judges it.

A scanner records each coverage gap twice in its SARIF run: in `run.properties.mlsec-coverage`
(`{"total": N, "gaps": [{"tool", "kind", "detail", "path"?}]}`, listed up to a cap) and as a
`toolExecutionNotifications` entry with descriptor id `mlsec/coverage/<kind>`. Both are read (a
third-party SARIF may carry only notifications) and merged. The policy's `coverage` key decides:
`gaps: warn|fail` and `require: {vulnerabilities: scanned}` (judged in `rules.coverage_violations`).
Reference: docs/gate.md#coverage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.findings import GapKind

COVERAGE_PROPERTY = "mlsec-coverage"
NOTIFICATION_PREFIX = "mlsec/coverage/"
# What `coverage.require` may name, and the gap kind whose presence means it was not checked.
REQUIREMENTS: dict[str, tuple[str, GapKind]] = {
    "vulnerabilities": ("scanned", GapKind.VULNERABILITIES_NOT_SCANNED),
}
# Gaps kept one by one per stage in the verdict; past this they are counted only (the SARIF has them).
MAX_GAPS_PER_STAGE = 500


@dataclass(frozen=True)
class Gap:
    """One thing a tool did not check."""

    tool: str
    """The tool that recorded it."""
    kind: str
    """A `GapKind` value (a third-party SARIF may name others; they are kept as written)."""
    detail: str
    """What was not checked and why."""
    path: str = ""
    """The file concerned, when there is one."""


def read_run_gaps(properties: dict[str, Any], notes: Iterable[tuple[str, str, str]], source: str,
                  ) -> tuple[tuple[Gap, ...], int]:
    """A run's gaps and their total (listed or not). `notes`: (tool, descriptor id, message text) of
    every notification. Raises `InputError` when `mlsec-coverage` is present but not the shape we write:
    coverage that cannot be read is not coverage that is complete."""
    listed: list[Gap] = []
    total = 0
    raw = properties.get(COVERAGE_PROPERTY)
    if raw is not None:
        listed, total = _property_gaps(raw, source)
    # Each notification repeats one listed gap (without its path): only the ones left over are new.
    unmatched = Counter((g.tool, g.kind, g.detail) for g in listed)
    for tool, descriptor, text in notes:
        if not descriptor.startswith(NOTIFICATION_PREFIX):
            continue
        kind = descriptor.removeprefix(NOTIFICATION_PREFIX) or "unknown"
        detail = text.removeprefix(f"{tool}: ").removeprefix("not covered: ")
        if unmatched[(tool, kind, detail)] > 0:
            unmatched[(tool, kind, detail)] -= 1
        else:
            listed.append(Gap(tool, kind, detail))
    return tuple(listed), max(total, len(listed))


def _property_gaps(raw: Any, source: str) -> tuple[list[Gap], int]:
    where = f"run.properties.{COVERAGE_PROPERTY}"
    if not isinstance(raw, dict) or not isinstance(raw.get("gaps", []), list):
        raise InputError(source, f"{where} is not an object with a 'gaps' array")
    total = raw.get("total", 0)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InputError(source, f"{where}.total is not a count")
    out = []
    for i, g in enumerate(raw.get("gaps", [])):
        if not isinstance(g, dict) or not all(isinstance(g.get(k), str) for k in ("tool", "kind", "detail")) \
                or not isinstance(g.get("path", ""), str):
            raise InputError(source, f"{where}.gaps[{i}] needs string 'tool', 'kind', 'detail' (and 'path')")
        out.append(Gap(g["tool"], g["kind"], g["detail"], g.get("path", "")))
    return out, total


@dataclass
class StageCoverage:
    """The gaps of one stage's runs (filled while reading; the verdict holds it as read)."""

    stage: str
    """Stage id."""
    total: int = 0
    """Every gap its runs recorded, listed in their SARIF or only counted there."""
    read: int = 0
    """Gaps listed in its SARIF (and so read one by one)."""
    gaps: list[Gap] = field(default_factory=list)
    """Listed gaps kept for the verdict, up to `MAX_GAPS_PER_STAGE`."""
    groups: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    """(tool, kind) -> [count, first gap] over every gap read, kept or not: what the policy judges."""

    @property
    def unlisted(self) -> int:
        """Gaps its SARIF counted but did not list (past the writer's cap): their kinds are unknown."""
        return self.total - self.read

    def by_tool(self) -> dict[str, list[Gap]]:
        out: dict[str, list[Gap]] = {}
        for g in self.gaps:
            out.setdefault(g.tool, []).append(g)
        return out


class CoverageTally:
    """Collects the gaps of every run, per stage."""

    def __init__(self) -> None:
        self.stages: dict[str, StageCoverage] = {}

    def add(self, stage: str, gaps: tuple[Gap, ...], total: int) -> None:
        c = self.stages.setdefault(stage, StageCoverage(stage))
        c.total += total
        c.read += len(gaps)
        room = MAX_GAPS_PER_STAGE - len(c.gaps)
        if room > 0:
            c.gaps.extend(gaps[:room])
        for g in gaps:
            group = c.groups.setdefault((g.tool, g.kind), [0, g])
            group[0] += 1

    def result(self) -> tuple[StageCoverage, ...]:
        return tuple(self.stages[s] for s in sorted(self.stages) if self.stages[s].total)


def to_json(coverage: tuple[StageCoverage, ...]) -> dict[str, Any]:
    """The verdict's `coverage` section: totals, by kind, and per stage and tool the listed gaps."""
    by_kind: dict[str, int] = {}
    for c in coverage:
        for (_, kind), (n, _) in c.groups.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    return {
        "total": sum(c.total for c in coverage),
        "by_kind": dict(sorted(by_kind.items())),
        "stages": {c.stage: {"total": c.total, "unlisted": c.unlisted, "not_shown": c.read - len(c.gaps),
                             "tools": {tool: [{"kind": g.kind, "detail": g.detail, "path": g.path} for g in gaps]
                                       for tool, gaps in c.by_tool().items()}} for c in coverage},
    }
