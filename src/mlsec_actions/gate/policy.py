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
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mlsec_actions import catalog, compliance
from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity
from mlsec_actions.gate.coverage import REQUIREMENTS
from mlsec_actions.gate.model import (
    WAIVER_MAX_DAYS,
    WAIVER_MIN_REASON,
    LicensePolicy,
    MetricRule,
    Policy,
    Selector,
    Threshold,
    Waiver,
)
from mlsec_actions.inputs import read_regular
from mlsec_actions.yaml_lines import DuplicateKey, Lines, compose, key_name, line_of

BUILTIN = ("default", "strict")
# ~1,600 waivers. PyYAML's pure-Python composer (which keeps line numbers) is superlinear: 256 KiB load in ~1-2 s,
# 1 MiB took ~30 s. Nothing reviewable is larger.
MAX_POLICY_BYTES = 256 * 1024
MAX_POLICY_DEPTH = 32  # the schema nests 4 deep
_OPEN = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
         yaml.FlowSequenceStartToken)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_REPO_POLICIES = Path(__file__).resolve().parents[3] / "policies"


class PolicyError(InputError):
    """A policy that cannot be used; `problems` holds every `file:line: key: problem` line."""

    def __init__(self, path: object, problems: list[str]) -> None:
        super().__init__(path, f"{len(problems)} problem(s)")
        self.problems = problems

    def diagnostics(self) -> str:
        more = f" (and {len(self.problems) - 1} more; `mlsec policy validate` lists them)"
        return self.problems[0] + (more if len(self.problems) > 1 else "")


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


def load(source: str | Path, known_stages: frozenset[str] | None = None, checkpoint: int | None = None) -> Policy:
    """Read and check a policy file (or a builtin name). Raises `PolicyError` listing every problem.
    `checkpoint`: the gate's position (ML 8: after training); its `checkpoints.<N>` section, when the policy has
    one, replaces the top-level keys it names (docs/gate.md#checkpoints)."""
    path = builtin_path(str(source)) if str(source) in BUILTIN else Path(source)
    label = f"policies/{source}.yml" if str(source) in BUILTIN else str(path)
    try:
        raw = read_regular(path, "policy", MAX_POLICY_BYTES)
    except InputError as e:
        raise InputError(label, e.problem) from None
    try:
        text = raw.decode("utf-8")
        refused = _refused_structure(text, label)
        if refused:
            raise PolicyError(label, [refused])
        doc, lines = compose(text)
    except UnicodeDecodeError:
        raise PolicyError(label, [f"{label}:1: not UTF-8 text"]) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise PolicyError(label, [f"{label}:{line}: not valid YAML: {e.problem or e}"]) from None
    except DuplicateKey as e:
        raise PolicyError(label, [f"{label}:{e.line}: {e.key}: duplicate key"]) from None
    except RecursionError:
        raise PolicyError(label, [f"{label}:1: nested too deeply"]) from None
    problems = _schema_problems(doc, lines, label)
    if problems:
        raise PolicyError(label, problems)
    known = known_stage_ids() if known_stages is None else known_stages
    digest = hashlib.sha256(raw).hexdigest()
    for other in doc.get("checkpoints") or {}:  # a typo in any section fails every load, not only the 8th gate
        if str(checkpoint) != other:
            _build(*at_checkpoint(doc, lines, int(other)), label, digest, known)
    doc, lines = at_checkpoint(doc, lines, checkpoint)
    pol = replace(_build(doc, lines, label, digest, known), checkpoint=checkpoint)
    return replace(pol, builtin=str(source)) if str(source) in BUILTIN else pol


def at_checkpoint(doc: dict[str, Any], lines: Lines, checkpoint: int | None) -> tuple[dict[str, Any], Lines]:
    """The document a gate at `checkpoint` applies: the top level with the keys of `checkpoints.<N>` replaced
    (each keeping its own line numbers). A policy without that section applies the same at every checkpoint."""
    section = (doc.get("checkpoints") or {}).get(str(checkpoint)) if checkpoint is not None else None
    if not section:
        return doc, lines
    prefix = ("checkpoints", str(checkpoint))
    merged = {**{k: v for k, v in doc.items() if k != "checkpoints"}, **section}
    kept = {at: n for at, n in lines.items() if not at or at[0] not in section}
    kept.update({at[2:]: n for at, n in lines.items() if at[:2] == prefix and len(at) > 2})
    return merged, kept


def load_document(source: str | Path) -> tuple[dict[str, Any], str]:
    """The schema-checked policy document and its label, for stages that read their own section (evaluate)."""
    pol = load(source)  # every check the gate makes: a policy evaluate accepts, the gate accepts
    path = builtin_path(str(source)) if str(source) in BUILTIN else Path(source)
    doc, _ = compose(read_regular(path, "policy", MAX_POLICY_BYTES).decode("utf-8"))
    return (doc if isinstance(doc, dict) else {}), pol.path


def _refused_structure(text: str, label: str) -> str | None:
    """What the composer must never see, found by the (iterative, linear) tokenizer first: anchors and aliases
    (a policy needs none; expanded, a few hundred bytes become gigabytes) and nesting past `MAX_POLICY_DEPTH`
    (the composer recurses)."""
    depth = 0
    for token in yaml.scan(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: 20x faster
        if isinstance(token, yaml.AnchorToken | yaml.AliasToken):
            return f"{label}:{token.start_mark.line + 1}: YAML anchors and aliases are not allowed in a policy"
        if isinstance(token, _OPEN):
            depth += 1
            if depth > MAX_POLICY_DEPTH:
                return f"{label}:{token.start_mark.line + 1}: nested deeper than {MAX_POLICY_DEPTH} levels"
        elif isinstance(token, _CLOSE):
            depth -= 1
    return None


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

    def problem(at: tuple[str | int, ...], text: str) -> None:
        problems.append(f"{label}:{line_of(lines, at)}: {key_name(at)}: {text}")

    def check_stages(value: Any, at: tuple[str | int, ...]) -> None:
        """A stage name or glob must name a catalog stage: `evalute` or `[` would silently match nothing."""
        for name in [] if value is None else [p.removeprefix("!") for p in ([value] if isinstance(value, str)
                                                                              else value)]:
            if known and not any(_matches(name, stage) for stage in known):
                problem(at, f"'{name}' names no stage (known: {', '.join(sorted(known))})")

    required = tuple(doc.get("required-stages", ()))
    for i, name in enumerate(required):
        check_stages(name, ("required-stages", i))
    thresholds = []
    for i, t in enumerate(doc.get("thresholds", ())):
        check_stages(t.get("stage"), ("thresholds", i, "stage"))
        control = t.get("control")
        if control is not None:
            # A misspelt control would count nothing, and the threshold would always pass.
            for bad in compliance.unknown_patterns([control] if isinstance(control, str) else control):
                problem(("thresholds", i, "control"), f"'{bad}' names no framework control (see docs/compliance.md; "
                        f"frameworks: {', '.join(compliance.catalog().frameworks)})")
        sev = t.get("severity")
        thresholds.append(Threshold(
            id=t.get("id", f"thresholds[{i}]"), stage=_selector(t.get("stage")), tool=_selector(t.get("tool")),
            severity=Severity.parse(sev) if sev else None, security_severity=t.get("security-severity"),
            max=t.get("max", 0), line=line_of(lines, ("thresholds", i)),
            control=_selector(control) if control is not None else None))
    metrics = []
    for i, m in enumerate(doc.get("metrics", ())):
        at = ("metrics", i)
        check_stages(m["stage"], (*at, "stage"))
        value = m["value"]
        if m["op"] not in ("==", "!=") and (isinstance(value, bool) or not isinstance(value, int | float)):
            problem((*at, "value"), f"'{m['op']}' needs a number, got {value!r}")
        metrics.append(MetricRule(id=m.get("id", f"metrics[{i}]"), stage=m["stage"],
                                  property=tuple(m["property"].split(".")), op=m["op"], value=value,
                                  missing_fails=m.get("missing", "fail") == "fail", line=line_of(lines, at)))
    path_only = doc.get("waiver-path-only", "allow") == "allow"
    waivers = []
    for i, w in enumerate(doc.get("waivers", ())):
        at = ("waivers", i)
        check_stages(w.get("stage"), (*at, "stage"))
        for key, text in _waiver_problems(w, path_only):
            problem((*at, key) if key else at, text)
        expires = _date(w["expires"])
        if expires is None:
            problem((*at, "expires"), f"not a date (YYYY-MM-DD): {w['expires']!r}")
            continue
        waivers.append(Waiver(id=w.get("id", f"waivers[{i}]"), reason=w["reason"].strip(), owner=w["owner"].strip(),
                              expires=expires, rule=w.get("rule"), fingerprint=w.get("fingerprint"),
                              path=w.get("path"), stage=w.get("stage"), line=line_of(lines, at)))
    allows = _allow_globals(doc, problem)
    ids = [t.id for t in thresholds] + [m.id for m in metrics] + [w.id for w in waivers]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"{label}:1: {dup}: id used more than once")
    if problems:
        raise PolicyError(label, problems)
    coverage = doc.get("coverage", {})
    return Policy(path=label, sha256=digest, required_stages=required,
                  required_line=line_of(lines, ("required-stages",)), tool_errors_fail=doc.get("tool-errors") != "warn",
                  thresholds=tuple(thresholds), metrics=tuple(metrics), waivers=tuple(waivers),
                  waiver_max_days=doc.get("waiver-max-days", WAIVER_MAX_DAYS), waiver_path_only=path_only,
                  coverage_gaps_fail=coverage.get("gaps", "warn") == "fail",
                  coverage_required=tuple(k for k in REQUIREMENTS if k in coverage.get("require", {})),
                  coverage_line=line_of(lines, ("coverage",)), allow_globals=allows,
                  licenses=_licenses(doc, lines))


def _licenses(doc: dict[str, Any], lines: Lines) -> LicensePolicy | None:
    """`code-scan.licenses` (the schema has checked its shape)."""
    lic = doc.get("code-scan", {}).get("licenses")
    if lic is None:
        return None
    return LicensePolicy(allow=tuple(lic.get("allow", ())), deny=tuple(lic.get("deny", ())),
                         unknown_fails=lic.get("unknown", "fail") == "fail",
                         line=line_of(lines, ("code-scan", "licenses")))


def _allow_globals(doc: dict[str, Any], problem: Callable[[tuple[str | int, ...], str], None]) -> tuple[Any, ...]:
    """`model-scan.allow-globals`: exact pickle imports; a dangerous, chaining or wildcard entry is refused."""
    entries = doc.get("model-scan", {}).get("allow-globals", ())
    if not entries:
        return ()
    from mlsec_actions.analyzers import pickle_allow  # only policies that allow imports need the pickle policy

    out = []
    for i, entry in enumerate(entries):
        found = pickle_allow.problems(entry.get("module"), entry.get("name"), entry.get("reason"))
        for text in found:
            problem(("model-scan", "allow-globals", i), text)
        if not found:
            out.append(pickle_allow.Allow(entry["module"], entry["name"], entry["reason"]))
    return tuple(out)


def _matches(pattern: str, name: str) -> bool:
    return re.fullmatch(fnmatch.translate(pattern), name) is not None


def _broad(glob: str) -> bool:
    """A glob with nothing but wildcards and separators (`*`, `**`, `*/*`, `?*`) matches everything."""
    return not re.sub(r"[*?/\[\]!.-]", "", glob).strip()


def _waiver_problems(w: dict[str, Any], path_only: bool) -> list[tuple[str, str]]:
    """(key, problem) for a waiver that could hide more than a reviewed, owned, specific exception."""
    out = []
    for key in ("reason", "owner"):
        if not w[key].strip():
            out.append((key, "must not be blank"))
    if w["reason"].strip() and len(w["reason"].strip()) < WAIVER_MIN_REASON:
        out.append(("reason", f"too short: say why it is accepted (at least {WAIVER_MIN_REASON} characters)"))
    if re.search(r"[\x00-\x1f\x7f]", w["owner"].strip()):
        out.append(("owner", "must be one line of text"))
    rule, path, fingerprint = w.get("rule"), w.get("path"), w.get("fingerprint")
    if fingerprint is None and (rule is None or _broad(rule)):
        key = "rule" if rule is not None else "path" if path is not None else ""
        if not path_only:
            out.append((key, "this policy forbids path-only waivers (waiver-path-only: forbid): give a specific "
                             "rule or a fingerprint"))
        elif path is None or _broad(path):
            shown = ", ".join(f"{k} '{v}'" for k, v in (("rule", rule), ("path", path)) if v is not None)
            out.append((key, f"matches every finding ({shown or 'no matcher'}): give a specific rule "
                             "(e.g. trivy/secret/*), a fingerprint or a specific path"))
    return out


def _date(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
