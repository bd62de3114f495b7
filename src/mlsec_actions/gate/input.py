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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from mlsec_actions.errors import InputError
from mlsec_actions.findings import CoverageGap, Severity, ToolRun, ToolStatus
from mlsec_actions.gate import sarif_model as sm
from mlsec_actions.gate.coverage import Gap, read_run_gaps
from mlsec_actions.inputs import MAX_SARIF_BYTES, read_regular

_LEVEL_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}
_NOT_FINDINGS = frozenset({"pass", "notApplicable", "informational"})
COUNTS_PROPERTY = "mlsec-result-counts"
NO_INVOCATIONS = "the run lists no invocations, so nothing shows that its tools ran"


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
    """One per invocation. A run without invocations does not show that anything ran: it gets one record,
    the driver with status `failed` (fails closed like any tool error)."""
    properties: dict[str, Any]
    """`run.properties` (metrics live here)."""
    hits: list[Hit]
    """Every result that is a finding (kind `fail` or unset)."""
    dropped: dict[Severity, int] = field(default_factory=dict)
    """Findings the stage counted (`mlsec-result-counts`, true counts) but the file does not hold, e.g. a run
    truncated to GitHub's 25,000 results: by severity. They count, with their severity only."""
    gaps: tuple[Gap, ...] = ()
    """Coverage gaps the run lists (`mlsec-coverage` and `mlsec/coverage/*` notifications, merged)."""
    gap_total: int = 0
    """Every gap the run recorded, listed or only counted."""


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
    Only regular files of at most `max_bytes` are read: a FIFO, a device or a symbolic link named `x.sarif` is
    reported as unreadable at once (never opened for a blocking read), not skipped: it stands where evidence should.
    `exclude`: resolved paths to skip (the gate's own output, which it is about to overwrite)."""
    if not root.is_dir():
        raise InputError(root, "no such folder")
    from mlsec_actions.analyzers.tree import folders

    unread: list[CoverageGap] = []  # iterative (rglob recurses per level): a folder too deep fails closed
    found = [Path(folder, n) for folder, names in folders(root, (), unread, unchecked="its SARIF was not read")
             for n in names if n.endswith(".sarif")]
    for gap in unread:
        yield InputFile(str(root / gap.path), "", gap.path), [], InputError(root / gap.path, gap.detail)
    for path in sorted(found):
        if exclude and path.resolve() in exclude:
            continue
        name = path.relative_to(root).as_posix()
        if path.is_symlink():  # it could point anywhere (/etc/shadow, /dev/zero): evidence is a file in the folder
            yield InputFile(str(path), "", name), [], InputError(path, "SARIF is a symbolic link, not a regular file")
            continue
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
        log = sm.DECODER.decode(data)
    except msgspec.ValidationError as e:
        raise InputError(source, f"not a SARIF log we can read: {e}") from None
    except msgspec.DecodeError as e:
        raise InputError(source, f"not valid JSON ({e}); truncated or corrupt SARIF") from None
    except RecursionError:  # msgspec stops at the interpreter's limit; a pre-scan would double the read time
        raise InputError(source, "SARIF is nested too deeply to be a SARIF log we write") from None
    if log.version != "2.1.0":
        raise InputError(source, f"unsupported SARIF version {log.version!r} (need 2.1.0)")
    return [_run(source, run) for run in log.runs]


def _run(source: str, run: sm.Run) -> RunInput:
    driver = run.tool.driver
    tools = tuple(_tool(inv, driver) for inv in run.invocations or ()) or (
        ToolRun(name=driver.name, status=ToolStatus.FAILED, version=driver.version, message=NO_INVOCATIONS),)
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
    notes = [(t.name, n.descriptor.id, (n.message.text or "") if n.message else "")
             for inv, t in zip(run.invocations or (), tools, strict=False)
             for n in inv.toolExecutionNotifications or () if n.descriptor is not None]
    gaps, gap_total = read_run_gaps(props_run, notes, source)
    return RunInput(source=source, stage=stage, tools=tools, properties=props_run, hits=hits,
                    dropped=_dropped(props_run.get(COUNTS_PROPERTY), hits, source), gaps=gaps, gap_total=gap_total)


def _dropped(counts: Any, hits: list[Hit], source: str) -> dict[Severity, int]:
    """Per severity, how many more findings `mlsec-result-counts` says there are than the file holds."""
    if counts is None:
        return {}
    names = {s.name.lower(): s for s in Severity}
    if not isinstance(counts, dict) or any(isinstance(counts.get(n, 0), bool) or not isinstance(counts.get(n, 0), int)
                                           or counts.get(n, 0) < 0 for n in (*names, "total")):
        raise InputError(source, f"run.properties.{COUNTS_PROPERTY} is not a map of severity to count")
    held = dict.fromkeys(Severity, 0)
    for h in hits:
        held[h.severity] += 1
    return {sev: counts.get(name, 0) - held[sev] for name, sev in names.items() if counts.get(name, 0) > held[sev]}


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


def _tool(inv: sm.Invocation, driver: sm.Component) -> ToolRun:
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
