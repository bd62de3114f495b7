"""Findings -> SARIF 2.1.0 that GitHub code scanning ingests.

One run per stage file (GitHub rejects several runs with the same tool and category), the scanners
behind it listed as `tool.extensions`, one invocation per scanner so a failed one shows as
`executionSuccessful: false` with a notification. Reading SARIF back is in `sarif_read.py`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlsec_actions import __version__, compliance, outputs, sanitize
from mlsec_actions.findings import Finding, Rule, Severity, StageResult, ToolRun, ToolStatus, sort_findings

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/mlsec-actions/mlsec-actions"
DRIVER_NAME = "mlsec-actions"

# GitHub's documented upload limits.
MAX_RESULTS_PER_RUN = 25_000
MAX_GZIPPED_BYTES = 10 * 1024 * 1024
MAX_TAGS_PER_RULE = 20
# Coverage gaps listed one by one in a run's properties; past this they are counted, not listed.
MAX_LISTED_GAPS = 1000
# The environment variable carrying this pipeline run's id (set by `mlsec run` and the workflows);
# every stage stamps it into its SARIF and the gate refuses SARIF from another run.
RUN_ID_ENV = "MLSEC_RUN_ID"
# Lines longer than this are not read for fingerprints (minified files, binary data).
_MAX_LINE_FILE_BYTES = 8 * 1024 * 1024

JSONDict = dict[str, Any]


def fs_bytes(text: str) -> bytes:
    """UTF-8 bytes of a text that may carry a POSIX file name's undecodable bytes (surrogateescape, as
    `os.fsdecode` makes them): those become the original bytes, so a name fingerprints and encodes the same
    in every run; any other lone surrogate is kept by `surrogatepass` instead of raising."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def display(text: str) -> str:
    """Text safe to store as JSON/UTF-8: undecodable file-name bytes shown as `\\xNN` (what a terminal shows)."""
    return fs_bytes(text).decode("utf-8", "backslashreplace")


def _clean(value: Any) -> Any:
    """`display` applied to every string of a JSON document (only used when it holds a lone surrogate)."""
    if isinstance(value, str):
        return display(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def dumps(log: JSONDict) -> bytes:
    """The SARIF document as UTF-8 bytes; never raises for a file name that is not valid UTF-8."""
    text = json.dumps(log, indent=1, ensure_ascii=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(_clean(log), indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def category(stage: str) -> str:
    """The code-scanning category for a stage."""
    return f"mlsec/{stage}"


class _LineSource:
    """Reads source lines once per file, for content-based fingerprints."""

    def __init__(self, root: Path | None) -> None:
        self._root = root
        self._cache: dict[str, list[str] | None] = {}

    def line(self, path: str, number: int) -> str | None:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        lines = self._cache[path]
        if lines is None or not 1 <= number <= len(lines):
            return None
        return lines[number - 1]

    def _read(self, path: str) -> list[str] | None:
        if self._root is None:
            return None
        file = self._root / path
        try:
            if not file.is_file() or file.stat().st_size > _MAX_LINE_FILE_BYTES:
                return None
            return file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return None


def _fingerprint_key(finding: Finding, lines: _LineSource) -> str:
    """What identifies a finding regardless of where its line moved: its rule, file and content."""
    loc = finding.location
    text = ""
    if loc.start_line is not None:
        text = lines.line(loc.path, loc.start_line) or loc.snippet or ""
    text = re.sub(r"\s+", "", text)
    if not text and loc.start_line is not None and not loc.logical:
        # Nothing but a line number to go on: keep it rather than merge distinct findings.
        text = f"line:{loc.start_line}"
    return "\0".join((finding.rule.id, loc.path, text, loc.logical or ""))


def fingerprints(findings: Sequence[Finding], root: Path | None) -> list[str]:
    """`primaryLocationLineHash` values, GitHub style (`<hash>:<occurrence>`), stable across runs."""
    lines = _LineSource(root)
    seen: dict[str, int] = {}
    out = []
    for f in findings:
        if f.fingerprint:
            out.append(f.fingerprint)
            continue
        digest = hashlib.sha256(fs_bytes(_fingerprint_key(f, lines))).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        out.append(f"{digest}:{seen[digest]}")
    return out


def _rule_descriptor(rule: Rule, score: float, level: str) -> JSONDict:
    full = rule.full_description or rule.short_description
    help_text = rule.help_text or full
    # The framework controls the rule bears on go last: GitHub filters alerts by tag (`tag:owasp-llm:LLM01`).
    tags = list(dict.fromkeys(("security", *rule.tags, *compliance.controls_for(rule.id))))[:MAX_TAGS_PER_RULE]
    desc: JSONDict = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.short_description},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": level},
        "properties": {"security-severity": f"{score:.1f}", "tags": tags, "precision": rule.precision},
    }
    if rule.help_uri:
        desc["helpUri"] = rule.help_uri
    return desc


def _result(finding: Finding, rule_index: int, fingerprint: str, uri_prefix: str) -> JSONDict:
    loc = finding.location
    physical: JSONDict = {"artifactLocation": {"uri": _uri(uri_prefix, loc.path)}}
    # A finding in a binary file (a model, a dataset) has no line: no region at all, rather than a made-up
    # line 1 (GitHub shows such a result at file level; the fingerprint comes from the logical location).
    if loc.start_line:
        region: JSONDict = {"startLine": loc.start_line}
        if loc.end_line and loc.end_line >= loc.start_line:
            region["endLine"] = loc.end_line
        if loc.snippet:
            region["snippet"] = {"text": loc.snippet}
        physical["region"] = region
    location: JSONDict = {"physicalLocation": physical}
    if loc.logical:
        location["logicalLocations"] = [{"fullyQualifiedName": loc.logical, "kind": loc.logical_kind}]
    props: JSONDict = {"security-severity": f"{finding.security_severity:.1f}",
                       "mlsec-severity": finding.severity.name.lower()}
    props.update(dict(finding.properties))
    return {
        "ruleId": finding.rule.id,
        "ruleIndex": rule_index,
        "level": finding.severity.sarif_level,
        "message": {"text": _text(finding.message)},
        "locations": [location],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint},
        "properties": props,
    }


def _uri(prefix: str, path: str) -> str:
    # Finding paths are POSIX paths: a backslash is part of a file name there (and is percent-encoded).
    path = path.lstrip("/")
    joined = f"{prefix.rstrip('/')}/{path}" if prefix and prefix != "." else path
    # Percent-encode what a URI may not carry raw; keep '/' and the usual path characters. ':' is encoded
    # too: in a relative reference a colon in the first segment would read as a scheme (RFC 3986, 4.2).
    return re.sub(r"[^A-Za-z0-9._~/!$&'()*+,;=@-]", lambda m: "".join(f"%{b:02X}" for b in fs_bytes(m.group())),
                  joined)


def _text(text: str) -> str:
    """Every `message.text` we write: one bounded line, no embedded link a viewer would render (the tree's
    file names and contents reach messages)."""
    return sanitize.sarif_text(text)


def _invocation(tool: ToolRun) -> JSONDict:
    notes: list[JSONDict] = []
    if not tool.status.succeeded:
        notes.append({"level": "error", "message": {"text": _text(f"{tool.name}: {tool.message or tool.status.value}")},
                      "descriptor": {"id": f"{tool.name}/execution"}})
    elif tool.message:
        notes.append({"level": "note", "message": {"text": _text(f"{tool.name}: {tool.message}")},
                      "descriptor": {"id": f"{tool.name}/execution"}})
    notes.extend({"level": "warning", "message": {"text": _text(f"{tool.name}: {n}")},
                  "descriptor": {"id": f"{tool.name}/notice"}} for n in tool.notes)
    notes.extend({"level": "warning", "message": {"text": _text(f"{tool.name}: not covered: {g.detail}")},
                  "descriptor": {"id": f"mlsec/coverage/{g.kind.value}"}} for g in tool.gaps[:MAX_LISTED_GAPS])
    inv: JSONDict = {
        "executionSuccessful": tool.status.succeeded,
        "toolExecutionNotifications": notes,
        "properties": {"tool": tool.name, "status": tool.status.value, "version": tool_version(tool) or "unknown"},
    }
    if tool.command:
        inv["commandLine"] = " ".join(tool.command)
    if tool.exit_code is not None:
        inv["exitCode"] = tool.exit_code
    return inv


def run_id_from_env() -> str | None:
    """This pipeline run's id, when a runner set one."""
    return os.environ.get(RUN_ID_ENV) or None


def coverage_property(result: StageResult) -> JSONDict:
    """`run.properties.mlsec-coverage`: every gap (up to a cap) and the total, for the gate and the verdict."""
    gaps = result.gaps
    # `detail` as its notification writes it (`_text`), so the gate matches the two and counts the gap once.
    listed = [{"tool": tool, "kind": g.kind.value, "detail": _text(g.detail), **({"path": g.path} if g.path else {})}
              for tool, g in gaps[:MAX_LISTED_GAPS]]
    return {"total": len(gaps), "gaps": listed}


def counts_property(findings: Sequence[Finding]) -> JSONDict:
    """`run.properties.mlsec-result-counts`: the true counts before any truncation, which the gate uses."""
    counts = {s.name.lower(): 0 for s in Severity}
    for f in findings:
        counts[f.severity.name.lower()] += 1
    return {"total": len(findings), **counts}


def to_sarif(result: StageResult, root: Path | None = None, uri_prefix: str = "",
             run_id: str | None = None) -> JSONDict:
    """Build the SARIF log for one stage, kept within GitHub's limits. `run_id`: the pipeline run's id
    (default: `$MLSEC_RUN_ID`), stamped into the run's properties so the gate can refuse stale files."""
    run_id = run_id if run_id is not None else run_id_from_env()
    findings = sort_findings(result.findings)
    dropped_notice: list[str] = []
    if len(findings) > MAX_RESULTS_PER_RUN:
        dropped_notice.append(_truncation_note(len(findings), MAX_RESULTS_PER_RUN, findings))
        findings = findings[:MAX_RESULTS_PER_RUN]
    log = _build(result, findings, root, uri_prefix, dropped_notice, run_id)
    # Keep the most severe results until the gzipped log fits GitHub's size limit.
    while len(findings) > 1 and _gzipped_size(log) > MAX_GZIPPED_BYTES:
        keep = len(findings) * 3 // 4
        dropped_notice = [_truncation_note(len(result.findings), keep, findings)]
        findings = findings[:keep]
        log = _build(result, findings, root, uri_prefix, dropped_notice, run_id)
    return log


def _truncation_note(total: int, kept: int, findings: Sequence[Finding]) -> str:
    lowest = findings[kept - 1].severity.name.lower() if kept else "none"
    return (f"{total} results exceed GitHub's limits; kept the {kept} most severe (down to {lowest}). "
            "The full list is in the stage's artifacts and the gate counts all of them.")


def _gzipped_size(log: JSONDict) -> int:
    return len(gzip.compress(json.dumps(log).encode(), compresslevel=6))  # ensure_ascii: no surrogate can raise


def _build(result: StageResult, findings: Sequence[Finding], root: Path | None, uri_prefix: str,
           notices: Iterable[str], run_id: str | None) -> JSONDict:
    rules: dict[str, int] = {}
    scores: dict[str, float] = {}
    levels: dict[str, Severity] = {}
    rule_objs: dict[str, Rule] = {}
    for f in findings:
        if f.rule.id not in rules:
            rules[f.rule.id] = len(rules)
            rule_objs[f.rule.id] = f.rule
        scores[f.rule.id] = max(scores.get(f.rule.id, 0.0), f.security_severity)
        levels[f.rule.id] = max(levels.get(f.rule.id, Severity.INFO), f.severity)
    prints = fingerprints(findings, root)
    invocations = [_invocation(t) for t in result.tools] or [
        {"executionSuccessful": True, "toolExecutionNotifications": []}]
    for text in notices:
        invocations[0]["toolExecutionNotifications"].append(
            {"level": "warning", "message": {"text": _text(text)}, "descriptor": {"id": "mlsec/truncated"}})
    run: JSONDict = {
        "tool": {
            "driver": {
                "name": DRIVER_NAME,
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(rule_objs[rid], scores[rid], levels[rid].sarif_level) for rid in rules],
            },
            # One entry per tool: a stage that ran trivy on several paths lists it once (the schema wants unique items).
            "extensions": list({(t.name, t.version): _extension(t) for t in result.tools}.values()),
        },
        "automationDetails": {"id": f"{category(result.stage)}/"},
        "invocations": invocations,
        "results": [_result(f, rules[f.rule.id], fp, uri_prefix) for f, fp in zip(findings, prints, strict=True)],
        "columnKind": "utf16CodeUnits",
        "properties": {
            **{k: v for k, v in result.extra.items()},
            "mlsec-stage": result.stage,
            "mlsec-result-counts": counts_property(result.findings),
            "mlsec-truncated": len(findings) < len(result.findings),
            "mlsec-coverage": coverage_property(result),
            **({"mlsec-run-id": run_id} if run_id else {}),
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def tool_version(tool: ToolRun) -> str | None:
    """The tool's version; an in-house analyzer (it ran in our process: no command line, no exit code) is ours.
    A tool that was missing or skipped ran nothing, so it has no version to report."""
    if tool.version:
        return tool.version
    ran_here = not tool.command and tool.exit_code is None
    return __version__ if ran_here and tool.status in (ToolStatus.OK, ToolStatus.FAILED) else None


def _extension(tool: ToolRun) -> JSONDict:
    ext: JSONDict = {"name": tool.name}
    version = tool_version(tool)
    if version:
        ext["version"] = version
    return ext


def write_sarif(result: StageResult, out: Path, root: Path | None = None, uri_prefix: str = "",
                run_id: str | None = None) -> Path:
    """Write the stage's SARIF to `out` atomically (creating folders; nothing is left behind on failure)."""
    return outputs.write_bytes(out, dumps(to_sarif(result, root, uri_prefix, run_id)))
