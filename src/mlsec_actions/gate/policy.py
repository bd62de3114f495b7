"""Gate policy: the model, loading YAML with line numbers, schema and semantic checks.

A policy is data (`policies/schema.json`); errors name the file, the line and the key
(`policy.yml:12: waivers[0]: 'reason' is a required property`). Reference: docs/gate.md.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlsec_actions import catalog
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity
from mlsec_actions.yaml_lines import DuplicateKey, Lines, compose, key_name, line_of

BUILTIN = ("default", "strict")
OPS = (">=", ">", "<=", "<", "==", "!=")
_REPO_POLICIES = Path(__file__).resolve().parents[3] / "policies"


class PolicyError(InputError):
    """A policy that cannot be used; `problems` holds every `file:line: key: problem` line."""

    def __init__(self, path: object, problems: list[str]) -> None:
        super().__init__(path, f"{len(problems)} problem(s)")
        self.problems = problems

    def diagnostics(self) -> str:
        more = f" (and {len(self.problems) - 1} more; `mlsec policy validate` lists them)"
        return self.problems[0] + (more if len(self.problems) > 1 else "")


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
    waiver_max_days: int | None = None
    """Longest allowed time to a waiver's expiry."""
    warnings: tuple[str, ...] = ()
    """`file:line: key: problem` notes that do not invalidate the policy."""


def builtin_path(name: str) -> Path:
    """`default`/`strict`: shipped inside the wheel (`mlsec_actions/policies`) or beside the source tree."""
    packaged = resources.files("mlsec_actions").joinpath("policies", f"{name}.yml")
    if packaged.is_file():
        return Path(str(packaged))
    return _REPO_POLICIES / f"{name}.yml"


def schema() -> dict[str, Any]:
    packaged = resources.files("mlsec_actions").joinpath("policies", "schema.json")
    path = Path(str(packaged)) if packaged.is_file() else _REPO_POLICIES / "schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def known_stage_ids() -> frozenset[str]:
    """Every stage id the project defines, built or planned: the catalog's."""
    return catalog.stage_ids()


def load(source: str | Path, known_stages: frozenset[str] | None = None) -> Policy:
    """Read and check a policy file (or a builtin name). Raises `PolicyError` listing every problem."""
    path = builtin_path(str(source)) if str(source) in BUILTIN else Path(source)
    label = f"policies/{source}.yml" if str(source) in BUILTIN else str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(label, f"cannot read policy: {e.strerror or e}") from None
    try:
        doc, lines = compose(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyError(label, [f"{label}:1: not UTF-8 text"]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise PolicyError(label, [f"{label}:{line}: not valid YAML: {e.problem or e}"]) from None
    except DuplicateKey as e:
        raise PolicyError(label, [f"{label}:{e.line}: {e.key}: duplicate key"]) from None
    problems = _schema_problems(doc, lines, label)
    if problems:
        raise PolicyError(label, problems)
    known = known_stage_ids() if known_stages is None else known_stages
    return _build(doc, lines, label, hashlib.sha256(raw).hexdigest(), known)


def _schema_problems(doc: Any, lines: Lines, label: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: (line_of(lines, tuple(e.absolute_path)), e.message))
    out = []
    for e in errors:
        at = tuple(e.absolute_path)
        message = e.message
        if e.validator == "anyOf" and at and at[0] == "waivers":
            message = "a waiver needs at least one of 'rule', 'fingerprint', 'path'"
        elif e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = e.schema.get("properties", {}) if isinstance(e.schema, dict) else {}
            extra = sorted(k for k in e.instance if k not in allowed)
            at = (*at, extra[0]) if extra else at
            message = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        out.append(f"{label}:{line_of(lines, at)}: {key_name(at)}: {message}")
    return out


def _selector(value: Any) -> Selector:
    if value is None:
        return Selector()
    return Selector((value,) if isinstance(value, str) else tuple(value))


def _build(doc: dict[str, Any], lines: Lines, label: str, digest: str, known: frozenset[str]) -> Policy:
    problems: list[str] = []
    warnings: list[str] = []

    def stage_warning(value: Any, at: tuple[str | int, ...]) -> None:
        names = [] if value is None else [p.lstrip("!") for p in ([value] if isinstance(value, str) else value)]
        for name in names:
            if known and not any(c in name for c in "*?[") and name not in known:
                warnings.append(f"{label}:{line_of(lines, at)}: {key_name(at)}: unknown stage id '{name}'")

    required = tuple(doc.get("required-stages", ()))
    for i, name in enumerate(required):
        stage_warning(name, ("required-stages", i))
    thresholds = []
    for i, t in enumerate(doc.get("thresholds", ())):
        stage_warning(t.get("stage"), ("thresholds", i, "stage"))
        sev = t.get("severity")
        thresholds.append(Threshold(
            id=t.get("id", f"thresholds[{i}]"), stage=_selector(t.get("stage")), tool=_selector(t.get("tool")),
            severity=Severity.parse(sev) if sev else None, security_severity=t.get("security-severity"),
            max=t.get("max", 0), line=line_of(lines, ("thresholds", i))))
    metrics = []
    for i, m in enumerate(doc.get("metrics", ())):
        at = ("metrics", i)
        stage_warning(m["stage"], (*at, "stage"))
        value = m["value"]
        if m["op"] not in ("==", "!=") and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{label}:{line_of(lines, (*at, 'value'))}: {key_name((*at, 'value'))}: "
                            f"'{m['op']}' needs a number, got {value!r}")
        metrics.append(MetricRule(id=m.get("id", f"metrics[{i}]"), stage=m["stage"],
                                  property=tuple(m["property"].split(".")), op=m["op"], value=value,
                                  missing_fails=m.get("missing", "fail") == "fail", line=line_of(lines, at)))
    waivers = []
    for i, w in enumerate(doc.get("waivers", ())):
        at = ("waivers", i)
        for key in ("reason", "owner"):
            if not w[key].strip():
                problems.append(f"{label}:{line_of(lines, (*at, key))}: {key_name((*at, key))}: must not be blank")
        expires = _date(w["expires"])
        if expires is None:
            problems.append(f"{label}:{line_of(lines, (*at, 'expires'))}: {key_name((*at, 'expires'))}: "
                            f"not a date (YYYY-MM-DD): {w['expires']!r}")
            continue
        stage_warning(w.get("stage"), (*at, "stage"))
        waivers.append(Waiver(id=w.get("id", f"waivers[{i}]"), reason=w["reason"].strip(), owner=w["owner"].strip(),
                              expires=expires, rule=w.get("rule"), fingerprint=w.get("fingerprint"),
                              path=w.get("path"), stage=w.get("stage"), line=line_of(lines, at)))
    ids = [t.id for t in thresholds] + [m.id for m in metrics] + [w.id for w in waivers]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{label}:1: {dup}: id used more than once")
    if problems:
        raise PolicyError(label, problems)
    return Policy(path=label, sha256=digest, required_stages=required,
                  required_line=line_of(lines, ("required-stages",)), tool_errors_fail=doc.get("tool-errors") != "warn",
                  thresholds=tuple(thresholds), metrics=tuple(metrics), waivers=tuple(waivers),
                  waiver_max_days=doc.get("waiver-max-days"), warnings=tuple(warnings))


def _date(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
