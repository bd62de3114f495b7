"""The policy as data: what `policy.load` builds from a policy file (`policies/schema.json`).

Reference: docs/gate.md. Loading, schema and semantic checks are in `policy.py`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from mlsec_actions.findings import Severity

if TYPE_CHECKING:
    from mlsec_actions.analyzers.pickle_allow import Allow

OPS = (">=", ">", "<=", "<", "==", "!=")
WAIVER_MAX_DAYS = 90
"""`waiver-max-days` when a policy does not set it."""
WAIVER_MIN_REASON = 10
"""A waiver's reason has at least this many characters (not counting surrounding blanks)."""


@dataclass(frozen=True)
class Selector:
    """Names (stages, tools) picked by globs; patterns starting with `!` exclude."""

    patterns: tuple[str, ...] = ("*",)
    """As written in the policy."""

    def matches(self, name: str) -> bool:
        include, exclude = _selector_regexes(self.patterns)
        return include.match(name) is not None and (exclude is None or exclude.match(name) is None)


@cache
def _selector_regexes(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    inc = [p for p in patterns if not p.startswith("!")] or ["*"]
    exc = [p[1:] for p in patterns if p.startswith("!")]
    include = re.compile("|".join(fnmatch.translate(p) for p in inc))
    return include, re.compile("|".join(fnmatch.translate(p) for p in exc)) if exc else None


def path_glob(pattern: str) -> re.Pattern[str]:
    """A path glob: `*` and `?` stay inside one folder, `**` crosses folders."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Threshold:
    """Fail when more than `max` findings in scope meet the severity bar."""

    id: str
    """Name in violations (the policy's `id`, else `thresholds[N]`)."""
    stage: Selector
    """Stages counted."""
    tool: Selector
    """Tools counted (the `<tool>` of rule ids `<tool>/<rule>`, else the SARIF driver name)."""
    severity: Severity | None
    """Count findings at this severity or above; None: any severity."""
    security_severity: float | None
    """Count findings whose score is at least this; None: any score. Both set: both must hold."""
    max: int
    """Most findings allowed."""
    line: int
    """Line in the policy file."""
    control: Selector | None = None
    """Count only findings whose rule maps to a matching framework control (`owasp-llm:LLM01`,
    docs/compliance.md); None: every finding."""


@dataclass(frozen=True)
class MetricRule:
    """Compare a property of a stage's SARIF run (e.g. `evaluate`'s `metrics.accuracy`) with a value."""

    id: str
    """Name in violations."""
    stage: str
    """Stage id whose runs carry the property."""
    property: tuple[str, ...]
    """Path into `run.properties`."""
    op: str
    """One of `OPS`."""
    value: float | str | bool
    """What the property is compared with."""
    missing_fails: bool
    """Whether an absent stage or property is a violation (default) or passes."""
    line: int
    """Line in the policy file."""


@dataclass(frozen=True)
class Waiver:
    """An accepted finding (or set of findings), with who accepted it, why, and until when."""

    id: str
    """Name in the verdict (the policy's `id`, else `waivers[N]`)."""
    reason: str
    """Why it is accepted."""
    owner: str
    """Who accepted it."""
    expires: dt.date
    """Last day it applies (UTC); after that it is a violation itself."""
    rule: str | None = None
    """Rule id glob."""
    fingerprint: str | None = None
    """Exact `primaryLocationLineHash`."""
    path: str | None = None
    """Path glob."""
    stage: str | None = None
    """Stage id glob."""
    line: int = 0
    """Line in the policy file."""


@dataclass(frozen=True)
class LicensePolicy:
    """`code-scan.licenses`: which dependency licences are accepted (docs/gate.md#license)."""

    allow: tuple[str, ...] = ()
    """Licence id globs accepted; empty: every licence not denied is accepted."""
    deny: tuple[str, ...] = ()
    """Licence id globs refused, whatever `allow` says."""
    unknown_fails: bool = True
    """A dependency that declares no licence is a violation (`unknown: fail`, default) or a warning (`warn`)."""
    line: int = 0
    """Line of `code-scan.licenses` in the policy file."""


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy."""

    path: str
    """Where it came from (a builtin shows as `policies/<name>.yml`)."""
    sha256: str
    """Digest of the file's bytes, recorded in the verdict."""
    required_stages: tuple[str, ...] = ()
    """Stages that must be present."""
    required_line: int = 0
    """Line of `required-stages`, for violations' locations."""
    tool_errors_fail: bool = True
    """A failed tool in any stage present fails the gate."""
    thresholds: tuple[Threshold, ...] = ()
    """Severity/count limits."""
    metrics: tuple[MetricRule, ...] = ()
    """Metric limits."""
    waivers: tuple[Waiver, ...] = ()
    """Accepted findings."""
    waiver_max_days: int = WAIVER_MAX_DAYS
    """Longest allowed time, in days from the gate's run, to a waiver's expiry."""
    waiver_path_only: bool = True
    """Whether a waiver may match by path alone (`waiver-path-only: allow`); else it needs a rule or fingerprint."""
    coverage_gaps_fail: bool = False
    """`coverage.gaps: fail`: any coverage gap is a violation; else (`warn`) each is a warning in the verdict."""
    coverage_required: tuple[str, ...] = ()
    """`coverage.require` keys (`coverage.REQUIREMENTS`): a gap of their kind is a violation either way."""
    coverage_line: int = 0
    """Line of `coverage`, for violations' locations."""
    builtin: str | None = None
    """The builtin's name (`default`, `strict`) when the policy is one: the caller has no file to point at."""
    allow_globals: tuple[Allow, ...] = ()
    """`model-scan.allow-globals`: exact pickle imports accepted after review (docs/model-scan.md)."""
    licenses: LicensePolicy | None = None
    """`code-scan.licenses`; None: dependency licences are not judged."""
    warnings: tuple[str, ...] = ()
    """`file:line: key: problem` notes that do not invalidate the policy."""
    checkpoint: int | None = None
    """The gate position it was loaded for (`--checkpoint`, e.g. 8); its `checkpoints.<N>` section applied."""
    pipeline: str | None = None
    """The pipeline whose gate applies it (`--pipeline`): required stages outside that pipeline left out
    (`gate.scope`); None: every required stage counts."""
