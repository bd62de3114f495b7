"""The gate's rule types, one function or class each: thresholds, metrics, waivers (and the violation they yield).

Each violation kind is a SARIF rule `gate/<kind>` and a docs/gate.md anchor.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import operator
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mlsec_actions import compliance
from mlsec_actions.findings import Severity
from mlsec_actions.gate import coverage as cov
from mlsec_actions.gate.input import Hit
from mlsec_actions.gate.model import MetricRule, Selector, Threshold, Waiver, path_glob

KINDS = ("threshold", "required-stage-missing", "tool-failed", "metric", "metric-missing",
         "waiver-expired", "waiver-too-long", "sarif-malformed", "no-inputs", "sarif-stale", "stage-missing",
         "sarif-tampered", "coverage-gap", "coverage-required", "license", "license-unknown", "license-unchecked")
# (stage, tool, rule, severity, score) -> findings: what thresholds are evaluated over.
Tally = Counter[tuple[str, str, str, Severity, float]]


@dataclass(frozen=True)
class Violation:
    """One reason the gate fails."""

    kind: str
    """One of `KINDS`."""
    message: str
    """What is wrong, in a sentence."""
    rule: str = ""
    """The policy item it comes from (threshold/metric/waiver id, or `required-stages`)."""
    stage: str | None = None
    """The stage it is about, when one."""
    path: str = ""
    """The file it points at: the policy for policy rules, the SARIF file for input problems."""
    line: int | None = None
    """Line in that file, when known."""


class Waivers:
    """Matches findings to waivers, caching per (stage, rule) and per path: few distinct values, many findings."""

    def __init__(self, waivers: tuple[Waiver, ...], today: dt.date) -> None:
        self.waivers = waivers
        self.active = [w.expires >= today for w in waivers]
        self.matched = [0] * len(waivers)
        self._rule = [re.compile(fnmatch.translate(w.rule)) if w.rule else None for w in waivers]
        self._stage = [re.compile(fnmatch.translate(w.stage)) if w.stage else None for w in waivers]
        self._path = [path_glob(w.path) if w.path else None for w in waivers]
        self._candidates: dict[tuple[str, str], tuple[int, ...]] = {}
        self._paths: dict[tuple[int, str], bool] = {}

    def waived(self, stage: str, hit: Hit) -> bool:
        """True when an active waiver matches; records matches (expired ones too, for the report)."""
        key = (stage, hit.rule)
        cands = self._candidates.get(key)
        if cands is None:
            cands = self._candidates[key] = tuple(
                i for i in range(len(self.waivers))
                if (self._stage[i] is None or self._stage[i].match(stage))  # type: ignore[union-attr]
                and (self._rule[i] is None or self._rule[i].match(hit.rule)))  # type: ignore[union-attr]
        expired_match = None
        for i in cands:
            fp = self.waivers[i].fingerprint
            if fp is not None and fp != hit.fingerprint:
                continue
            if self._path[i] is not None and not self._path_ok(i, hit.path):
                continue
            if self.active[i]:
                self.matched[i] += 1
                return True
            if expired_match is None:
                expired_match = i
        if expired_match is not None:
            self.matched[expired_match] += 1
        return False

    def _path_ok(self, i: int, uri: str) -> bool:
        got = self._paths.get((i, uri))
        if got is None:
            got = self._paths[(i, uri)] = self._path[i].match(normal_path(uri)) is not None  # type: ignore[union-attr]
        return got


def normal_path(uri: str) -> str:
    """A SARIF artifact URI as a repo-relative path (percent-decoding, no `file://` or `./`)."""
    path = unquote(uri.removeprefix("file://"))
    return path.removeprefix("./")


UNKNOWN_RULE = ""
"""The rule of findings a stage counted but its truncated SARIF does not hold."""


def _in_controls(selector: Selector, rule: str) -> bool:
    """Whether any control the rule maps to is selected (a finding counts once, however many match).
    A finding of unknown rule could be mapped to any: it counts (fail closed)."""
    return rule == UNKNOWN_RULE or any(selector.matches(c) for c in compliance.controls_for(rule))


def threshold(t: Threshold, agg: Tally, policy_path: str) -> Violation | None:
    by_stage: Counter[str] = Counter()
    for (stage, tool, rule, sev, score), n in agg.items():
        if t.severity is not None and sev < t.severity:
            continue
        if t.security_severity is not None and score < t.security_severity:
            continue
        if t.control is not None and not _in_controls(t.control, rule):
            continue
        if t.stage.matches(stage) and t.tool.matches(tool):
            by_stage[stage] += n
    total = sum(by_stage.values())
    if total <= t.max:
        return None
    bar = " and ".join(filter(None, (f"severity {t.severity.name.lower()} or above" if t.severity is not None else "",
                                     f"security-severity >= {t.security_severity}"
                                     if t.security_severity is not None else ""))) or "any severity"
    if t.control is not None:
        bar += " mapped to " + ", ".join(t.control.patterns)
    where = ", ".join(f"{s}: {n}" for s, n in sorted(by_stage.items()))
    return Violation("threshold", f"{total} findings at {bar} (max {t.max}; {where})", t.id,
                     next(iter(by_stage)) if len(by_stage) == 1 else None, policy_path, t.line)


_MISSING = object()


def _lookup(props: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = props
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
            "!=": operator.ne}


def metric(m: MetricRule, runs: list[tuple[str, dict[str, Any]]], policy_path: str) -> Iterator[Violation]:
    prop = ".".join(m.property)
    found = [(src, v) for src, props in runs if (v := _lookup(props, m.property)) is not _MISSING]
    if not found:
        if m.missing_fails:
            what = "produced no SARIF" if not runs else f"has no property {prop}"
            yield Violation("metric-missing", f"metric {m.id}: stage {m.stage} {what}", m.id, m.stage,
                            policy_path, m.line)
        return
    for source, value in found:
        actual: Any = value
        expected: Any = m.value
        if m.op not in ("==", "!=") or (_number(value) is not None and _number(m.value) is not None):
            actual, expected = _number(value), _number(m.value)
        if actual is None or not _COMPARE[m.op](actual, expected):
            yield Violation("metric", f"metric {m.id}: {m.stage} {prop} = {value!r}, needs {m.op} {m.value!r} "
                            f"({source})", m.id, m.stage, policy_path, m.line)


def waiver_violations(w: Waiver, active: bool, today: dt.date, max_days: int,
                      policy_path: str) -> Iterator[Violation]:
    """An expired waiver is a violation itself; so is one that outlives the policy's `waiver-max-days`."""
    if not active:
        yield Violation("waiver-expired", f"waiver {w.id} (owner {w.owner}) expired on {w.expires}",
                        w.id, w.stage, policy_path, w.line)
        return
    days = (w.expires - today).days
    if days > max_days:
        yield Violation("waiver-too-long", f"waiver {w.id} expires in {days} days; the policy allows at most "
                        f"{max_days}", w.id, w.stage, policy_path, w.line)


def _describe(stage: str, tool: str, kind: str, count: int, first: cov.Gap) -> str:
    where = f" ({first.path})" if first.path else ""
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{stage}: {tool}: {kind}: {first.detail}{where}{more}"


def coverage_violations(coverage: tuple[cov.StageCoverage, ...], gaps_fail: bool, required: tuple[str, ...],
                        policy_path: str, line: int) -> tuple[list[Violation], list[str]]:
    """Violations and warnings for the gaps found, one per (stage, tool, kind). `gaps_fail`: any gap fails
    (`coverage.gaps: fail`), else it is a warning. `required`: keys of `coverage.REQUIREMENTS` the policy
    requires; a gap of their kind is a violation either way, and so are gaps of unknown kind (counted but
    not listed in a SARIF), which cannot show the requirement was met."""
    violations: list[Violation] = []
    warnings: list[str] = []
    banned = {cov.REQUIREMENTS[r][1].value: r for r in required}

    def judged(text: str, stage: str, kind: str | None) -> None:
        need = banned.get(kind) if kind is not None else next(iter(banned.values()), None)
        if need is not None:
            violations.append(Violation("coverage-required", f"{text}; the policy requires {need}: "
                                        f"{cov.REQUIREMENTS[need][0]}", f"coverage.require.{need}", stage,
                                        policy_path, line))
        elif gaps_fail:
            violations.append(Violation("coverage-gap", f"{text}; the policy fails on coverage gaps",
                                        "coverage.gaps", stage, policy_path, line))
        else:
            warnings.append(f"not covered: {text}")

    for c in coverage:
        for (tool, kind), (count, first) in c.groups.items():
            judged(_describe(c.stage, tool, kind, count, first), c.stage, kind)
        if c.unlisted > 0:
            judged(f"{c.stage}: {c.unlisted} more coverage gap(s) counted but not listed in its SARIF", c.stage, None)
    return violations, warnings
