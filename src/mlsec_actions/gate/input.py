"""The gate's SARIF reader: every `*.sarif` under a folder, one file at a time, reduced to what policies use.

`sarif_read.py` builds a full `Finding` (and `Rule`) per result, which suits importing reports but
costs 30-40 µs a result; the gate must read 100,000 results in well under a second. msgspec decodes
only the fields below (typed, so a wrong type is an error naming its JSON path) and skips the rest.
Severity follows `sarif_read`: `mlsec-severity`, else `security-severity` (the result's, then its
rule's), else the SARIF level; unlike `sarif_read`, a result without `level` takes its rule's
`defaultConfiguration.level`, as the SARIF spec says, before falling back to `warning`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from mlsec_actions.errors import InputError
from mlsec_actions.findings import Severity, ToolRun, ToolStatus
from mlsec_actions.inputs import MAX_SARIF_BYTES, read_regular

_LEVEL_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}
_NOT_FINDINGS = frozenset({"pass", "notApplicable", "informational"})


# Field names are SARIF's own (camelCase).
class _Text(msgspec.Struct, gc=False):
    text: str | None = None
    markdown: str | None = None


class _Artifact(msgspec.Struct, gc=False):
    uri: str = ""


class _Region(msgspec.Struct, gc=False):
    startLine: int | None = None


class _Physical(msgspec.Struct, gc=False):
    artifactLocation: _Artifact | None = None
    region: _Region | None = None


class _Location(msgspec.Struct, gc=False):
    physicalLocation: _Physical | None = None


class _Props(msgspec.Struct, gc=False):
    """The two result/rule properties severity comes from; other properties are skipped unread."""

    severity_name: str | None = msgspec.field(default=None, name="mlsec-severity")
    score: str | float | None = msgspec.field(default=None, name="security-severity")


class _Fingerprints(msgspec.Struct, gc=False):
    primaryLocationLineHash: str | None = None


class _Result(msgspec.Struct, gc=False):
    ruleId: str | None = None
    ruleIndex: int = -1
    level: str | None = None
    kind: str | None = None
    message: _Text | None = None
    locations: list[_Location] | None = None
    partialFingerprints: _Fingerprints | None = None
    properties: _Props | None = None


class _Config(msgspec.Struct, gc=False):
    level: str | None = None


class _RuleDescriptor(msgspec.Struct, gc=False):
    id: str = ""
    defaultConfiguration: _Config | None = None
    properties: _Props | None = None


class _Component(msgspec.Struct, gc=False):
    name: str = "unknown"
    version: str | None = None
    rules: list[_RuleDescriptor] | None = None


class _Tool(msgspec.Struct, gc=False):
    driver: _Component


class _Notification(msgspec.Struct, gc=False):
    level: str = "warning"
    message: _Text | None = None


class _Invocation(msgspec.Struct, gc=False):
    executionSuccessful: bool = True
    toolExecutionNotifications: list[_Notification] | None = None
    properties: dict[str, Any] | None = None


class _Automation(msgspec.Struct, gc=False):
    id: str = ""


class _Run(msgspec.Struct, gc=False):
    tool: _Tool
    results: list[_Result] | None = None
    invocations: list[_Invocation] | None = None
    automationDetails: _Automation | None = None
    properties: dict[str, Any] | None = None


class _Log(msgspec.Struct, gc=False):
    version: str
    runs: list[_Run]


_DECODER = msgspec.json.Decoder(_Log)


class Hit(NamedTuple):
    """One result, reduced to what the gate needs. A tuple: 100,000 of them are built per second many times."""

    rule: str
    tool: str
    severity: Severity
    score: float
    fingerprint: str | None
    path: str
    line: int | None
    message: str


@dataclass(frozen=True)
class RunInput:
    """One SARIF run."""

    source: str
    """The file it came from, as found under the folder given."""
    stage: str
    """`run.properties.mlsec-stage`, else the category without `mlsec/`, else the driver name."""
    tools: tuple[ToolRun, ...]
    """One per invocation (a run without invocations: the driver, assumed to have run)."""
    properties: dict[str, Any]
    """`run.properties` (metrics live here)."""
    hits: list[Hit]
    """Every result that is a finding (kind `fail` or unset)."""


@dataclass(frozen=True)
class InputFile:
    """A file the verdict was computed from."""

    path: str
    """As found under the folder given."""
    sha256: str
    """Digest of its bytes ('' when it could not be read)."""
    name: str = ""
    """Relative to the folder given, '/'-separated: what `--sarif-digest NAME=...` names."""


def iter_dir(root: Path, exclude: frozenset[Path] = frozenset(), max_bytes: int = MAX_SARIF_BYTES) -> Iterator[
        tuple[InputFile, list[RunInput], InputError | None]]:
    """Each `*.sarif` under `root` (recursively, sorted): its digest, its runs, or why it could not be read.
    One file at a time, so a caller that keeps only counts holds one file's findings at once.
    Only regular files of at most `max_bytes` are read: a FIFO or a device named `x.sarif` is reported as
    unreadable at once (never opened for a blocking read), not skipped, since it stands where evidence should.
    `exclude`: resolved paths to skip (the gate's own output, which it is about to overwrite)."""
    if not root.is_dir():
        raise InputError(root, "no such folder")
    for path in sorted(root.rglob("*.sarif")):
        if path.is_dir() or (exclude and path.resolve() in exclude):
            continue
        name = path.relative_to(root).as_posix()
        try:
            data = read_regular(path, "SARIF", max_bytes)
        except InputError as e:
            yield InputFile(str(path), "", name), [], e
            continue
        file = InputFile(str(path), hashlib.sha256(data).hexdigest(), name)
        try:
            yield file, read_bytes(str(path), data), None
        except InputError as e:
            yield file, [], e


def read_bytes(source: str, data: bytes) -> list[RunInput]:
    """Decode one SARIF log. Raises `InputError` naming `source` for anything malformed."""
    try:
        log = _DECODER.decode(data)
    except msgspec.ValidationError as e:
        raise InputError(source, f"not a SARIF log we can read: {e}") from None
    except msgspec.DecodeError as e:
        raise InputError(source, f"not valid JSON ({e}); truncated or corrupt SARIF") from None
    if log.version != "2.1.0":
        raise InputError(source, f"unsupported SARIF version {log.version!r} (need 2.1.0)")
    return [_run(source, run) for run in log.runs]


def _run(source: str, run: _Run) -> RunInput:
    driver = run.tool.driver
    tools = tuple(_tool(inv, driver) for inv in run.invocations or ()) or (
        ToolRun(name=driver.name, status=ToolStatus.OK, version=driver.version),)
    names = {t.name for t in tools}
    rules = driver.rules or []
    scores: dict[str | float, float | None] = {}  # parsed `security-severity` values: few distinct ones
    named: dict[str, Severity | None] = {}
    # Per rule: (score, level) from its descriptor, the fallbacks when a result gives neither.
    rule_info = {r.id: (_score(r.properties.score, scores) if r.properties else None,
                        r.defaultConfiguration.level if r.defaultConfiguration else None) for r in rules}
    tool_of: dict[str, str] = {}
    hits: list[Hit] = []
    append = hits.append
    make = tuple.__new__  # Hit(...) goes through a Python-level __new__; this is the same tuple, faster
    for res in run.results or ():
        if res.kind is not None and res.kind in _NOT_FINDINGS:
            continue
        rid = res.ruleId
        if rid is None:
            rid = rules[res.ruleIndex].id if 0 <= res.ruleIndex < len(rules) else f"{driver.name}/unknown"
        props = res.properties
        severity = score = None
        if props is not None:
            raw = props.score
            if raw is not None:
                score = scores[raw] if raw in scores else _score(raw, scores)
            name = props.severity_name
            if name is not None:
                severity = named[name] if name in named else named.setdefault(name, _parse_severity(name))
        if score is None or severity is None:
            rule_score, rule_level = rule_info.get(rid, (None, None))
            score = rule_score if score is None else score
            if severity is None:
                severity = Severity.from_score(score) if score is not None else _LEVEL_SEVERITY.get(
                    res.level or rule_level or "warning", Severity.MEDIUM)
        tool = tool_of.get(rid)
        if tool is None:
            prefix = rid.split("/", 1)[0]
            tool = tool_of[rid] = prefix if prefix in names else driver.name
        path, line = "", None
        if res.locations:
            phys = res.locations[0].physicalLocation
            if phys is not None:
                path = phys.artifactLocation.uri if phys.artifactLocation else ""
                line = phys.region.startLine if phys.region else None
        msg = res.message
        fps = res.partialFingerprints
        append(make(Hit, (rid, tool, severity, score if score is not None else severity.default_score,
                          fps.primaryLocationLineHash if fps else None, path, line,
                          (msg.text or msg.markdown or rid) if msg else rid)))
    auto = run.automationDetails.id if run.automationDetails else ""
    cat = auto.rsplit("/", 1)[0] if "/" in auto else (auto or driver.name)
    props_run = run.properties or {}
    stage = str(props_run.get("mlsec-stage") or cat.removeprefix("mlsec/"))
    return RunInput(source=source, stage=stage, tools=tools, properties=props_run, hits=hits)


def _score(raw: str | float | None, cache: dict[str | float, float | None]) -> float | None:
    if raw is None:
        return None
    if raw not in cache:
        try:
            cache[raw] = float(raw)
        except ValueError:
            cache[raw] = None  # not a number: as if absent, the level decides
    return cache[raw]


def _parse_severity(value: str) -> Severity | None:
    try:
        return Severity.parse(value)
    except ValueError:
        return None  # an unknown name falls back to the score or level, as if absent


def _tool(inv: _Invocation, driver: _Component) -> ToolRun:
    props = inv.properties or {}
    name = str(props.get("tool") or driver.name)
    ok = inv.executionSuccessful
    try:
        status = ToolStatus(str(props.get("status", "ok" if ok else "failed")))
    except ValueError:
        status = ToolStatus.OK if ok else ToolStatus.FAILED
    if not ok and status.succeeded:
        status = ToolStatus.FAILED
    errors = [n.message.text or "" for n in inv.toolExecutionNotifications or () if n.level == "error" and n.message]
    version = props.get("version")
    return ToolRun(name=name, status=status, version=str(version) if version else driver.version,
                   message="; ".join(e for e in errors if e))
