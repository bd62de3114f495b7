"""The one finding model every stage speaks.

Stages return a `StageResult`: findings plus the record of every tool that ran (or failed to).
Tool failures travel beside findings; a stage never drops findings because a tool also failed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlsec_actions.licenses import PackageLicense


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so `max()` and comparisons just work."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read a severity name as scanners spell it (`HIGH`, `high`, `moderate`, `unknown`...)."""
        key = text.strip().upper()
        aliases = {"MODERATE": "MEDIUM", "UNKNOWN": "INFO", "NONE": "INFO", "NOTE": "LOW",
                   "WARNING": "MEDIUM", "ERROR": "HIGH", "INFORMATIONAL": "INFO"}
        key = aliases.get(key, key)
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None

    @classmethod
    def from_score(cls, score: float) -> Severity:
        """Map a CVSS-like 0-10 score the way GitHub buckets `security-severity`."""
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        if score > 0.0:
            return cls.LOW
        return cls.INFO

    @property
    def default_score(self) -> float:
        """The `security-severity` used when a tool gives no score of its own."""
        return {Severity.INFO: 0.0, Severity.LOW: 2.0, Severity.MEDIUM: 5.5,
                Severity.HIGH: 8.0, Severity.CRITICAL: 9.5}[self]

    @property
    def sarif_level(self) -> str:
        """SARIF `level`: GitHub shows error/warning/note."""
        if self >= Severity.HIGH:
            return "error"
        if self == Severity.MEDIUM:
            return "warning"
        return "note"


@dataclass(frozen=True)
class Rule:
    """A check that can produce findings; becomes a SARIF `reportingDescriptor`."""

    id: str
    """`<tool>/<rule>`, e.g. `trivy/AVD-DS-0002` or `pickle/dangerous-global`."""
    name: str
    """A short PascalCase-ish name for the rule (SARIF `name`)."""
    short_description: str
    """One line, shown as the alert title."""
    full_description: str = ""
    """A paragraph; defaults to the short description."""
    help_text: str = ""
    """How to fix it; markdown allowed. Defaults to the full description."""
    help_uri: str | None = None
    """Where to read more (the docs anchor for in-house checks)."""
    tags: tuple[str, ...] = ()
    """Free-form tags; `security` is always added."""
    precision: str = "high"
    """SARIF/GitHub precision: very-high, high, medium, low."""


@dataclass(frozen=True)
class Location:
    """Where a finding is. A file with no line (a model, a dataset) is fine."""

    path: str
    """Path relative to the scanned root, POSIX separators."""
    start_line: int | None = None
    """1-based first line, when the finding has one."""
    end_line: int | None = None
    """1-based last line, when known."""
    snippet: str | None = None
    """The source text at the location, when the tool gave it."""
    logical: str | None = None
    """Where inside the file: archive member, pickle byte offset, global, layer, tensor name."""
    logical_kind: str = "member"
    """SARIF logicalLocation kind for `logical` (member, function, object, module...)."""


@dataclass(frozen=True)
class Finding:
    """One problem found by one rule at one place."""

    rule: Rule
    """The check that fired."""
    message: str
    """What is wrong, for this occurrence, in a sentence."""
    severity: Severity
    """How bad it is."""
    location: Location
    """Where it is."""
    score: float | None = None
    """A 0-10 `security-severity` from the tool (CVSS); `None` uses the severity's default."""
    properties: tuple[tuple[str, str], ...] = ()
    """Extra key/value facts copied into the SARIF result's properties (CVE, package, version)."""
    fingerprint: str | None = None
    """A fingerprint carried over from imported SARIF; `None` lets `sarif.py` compute one."""

    @property
    def security_severity(self) -> float:
        return self.score if self.score is not None else self.severity.default_score


class GapKind(enum.Enum):
    """What kind of thing a scanner could not check. The values are stable: policies name them."""

    VULNERABILITIES_NOT_SCANNED = "vulnerabilities-not-scanned"
    """No vulnerability database: dependencies were listed but not checked against advisories."""
    FILE_SKIPPED = "file-skipped"
    """A file was not scanned (size, count or depth limit, special file, excluded by the user)."""
    FILE_UNREADABLE = "file-unreadable"
    """A file could not be read (permissions, I/O error, not valid in its declared encoding)."""
    FORMAT_UNKNOWN = "format-unknown"
    """A file's format was not understood, so its content was not checked."""
    LIMIT_REACHED = "limit-reached"
    """A size, depth, count or time limit stopped part of a scan."""
    ALLOW_RULE = "allow-rule"
    """A tool's allow rule or an ignore file suppressed results (listed so it is never silent)."""
    EXCLUSION = "exclusion"
    """The user excluded a path, rule or check."""
    TOOL_ERROR = "tool-error"
    """A tool failed on part of the input (e.g. one file) while the rest was scanned."""


@dataclass(frozen=True)
class CoverageGap:
    """Something a scanner did not check. Recorded in SARIF, the summary, the verdict and the attestation."""

    kind: GapKind
    """What kind of gap."""
    detail: str
    """What was not checked and why, in a sentence."""
    path: str = ""
    """The file concerned, relative to the scanned root, when there is one."""


class ToolStatus(enum.Enum):
    """How a tool's run ended. Anything but OK and SKIPPED fails closed at the gate."""

    OK = "ok"
    FAILED = "failed"
    MISSING = "missing"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"

    @property
    def succeeded(self) -> bool:
        return self in (ToolStatus.OK, ToolStatus.SKIPPED)


@dataclass(frozen=True)
class ToolRun:
    """The record of one tool (external scanner or in-house analyzer) in a stage."""

    name: str
    """Tool name as in rule ids (`trivy`, `pickle`)."""
    status: ToolStatus
    """How it ended."""
    version: str | None = None
    """The tool's own version string, when it could be read."""
    message: str = ""
    """Why it failed or was skipped; becomes a SARIF notification."""
    notes: tuple[str, ...] = ()
    """Things the user should know even on success (e.g. 'no vulnerability DB, vulns not scanned')."""
    command: tuple[str, ...] = ()
    """The command line that ran, for the SARIF invocation."""
    exit_code: int | None = None
    """The process exit code, for external tools."""
    gaps: tuple[CoverageGap, ...] = ()
    """What this tool could not check (coverage); a tool can succeed and still have gaps."""
    licenses: tuple[PackageLicense, ...] | None = None
    """The dependencies it listed with their licences (trivy's licence scanner); None: it made no such list."""


@dataclass(frozen=True)
class StageResult:
    """What a stage returns: findings and the tools' records, side by side."""

    stage: str
    """Stage id (`code-scan`); also the SARIF category `mlsec/<stage>`."""
    findings: tuple[Finding, ...] = ()
    """Every finding from every tool, in a stable order."""
    tools: tuple[ToolRun, ...] = ()
    """Every tool that was asked to run."""
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    """Stage-specific facts copied to the SARIF run's properties (e.g. metrics)."""

    @property
    def succeeded(self) -> bool:
        """True when every tool ran (findings or not)."""
        return all(t.status.succeeded for t in self.tools)

    @property
    def gaps(self) -> tuple[tuple[str, CoverageGap], ...]:
        """Every tool's coverage gaps, as (tool name, gap)."""
        return tuple((t.name, g) for t in self.tools for g in t.gaps)

    def counts(self) -> dict[Severity, int]:
        out = {s: 0 for s in Severity}
        for f in self.findings:
            out[f.severity] += 1
        return out


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Most severe first, then by place, so output is stable across runs."""
    return tuple(sorted(findings, key=lambda f: (-f.severity, f.location.path, f.location.start_line or 0,
                                                   f.rule.id, f.location.logical or "", f.message)))
