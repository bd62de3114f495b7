"""SARIF (ours or any tool's) -> findings. Used by the gate and to import third-party reports.

Malformed input is an `InputError` naming the file and the problem: the gate fails closed on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsec_actions.errors import InputError
from mlsec_actions.findings import Finding, Location, Rule, Severity, StageResult, ToolRun, ToolStatus
from mlsec_actions.inputs import load_json

NO_INVOCATIONS = "the run lists no invocations, so nothing shows that its tools ran"
_LEVEL_SEVERITY = {"error": Severity.HIGH, "warning": Severity.MEDIUM, "note": Severity.LOW, "none": Severity.INFO}


@dataclass(frozen=True)
class SarifRun:
    """One run read back from a SARIF file."""

    source: Path
    """The file it came from."""
    category: str
    """`automationDetails.id` without the run id part (`mlsec/code-scan`), or the driver name."""
    result: StageResult
    """Findings (each with its fingerprint) and tool records."""


def read_sarif(path: Path) -> list[SarifRun]:
    """Read every run of a SARIF file. Raises `InputError` for anything malformed."""
    doc = load_json(path, "SARIF")
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise InputError(path, "not a SARIF log (no 'runs' array)")
    if doc.get("version") != "2.1.0":
        raise InputError(path, f"unsupported SARIF version {doc.get('version')!r} (need 2.1.0)")
    return [_read_run(path, i, run) for i, run in enumerate(doc["runs"])]


def _obj(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(path, f"{where} is not an object")
    return value


def _read_run(path: Path, index: int, raw: Any) -> SarifRun:
    where = f"runs[{index}]"
    run = _obj(raw, path, where)
    driver = _obj(_obj(run.get("tool"), path, f"{where}.tool").get("driver"), path, f"{where}.tool.driver")
    driver_name = str(driver.get("name") or "unknown")
    rules_raw = driver.get("rules", [])
    if not isinstance(rules_raw, list):
        raise InputError(path, f"{where}.tool.driver.rules is not an array")
    rules = [_rule(_obj(r, path, f"{where}.tool.driver.rules[{i}]"), driver_name) for i, r in enumerate(rules_raw)]
    by_id = {r.id: r for r in rules}
    scores = {r.get("id"): _score(r.get("properties", {})) for r in rules_raw if isinstance(r, dict)}
    # SARIF: a result without `level` takes its rule's defaultConfiguration level (gate/input.py does the same).
    levels = {r.get("id"): (r.get("defaultConfiguration") or {}).get("level") for r in rules_raw if isinstance(r, dict)}
    results_raw = run.get("results", [])
    if not isinstance(results_raw, list):
        raise InputError(path, f"{where}.results is not an array")
    findings = []
    for i, res in enumerate(results_raw):
        findings.append(_finding(_obj(res, path, f"{where}.results[{i}]"), rules, by_id, scores, levels,
                                 driver_name))
    auto = run.get("automationDetails") or {}
    cat = str(auto.get("id", "")) if isinstance(auto, dict) else ""
    cat = cat.rsplit("/", 1)[0] if "/" in cat else (cat or driver_name)
    # A run without invocations does not show that its tools ran: read as a failed tool (as the gate does).
    tools = tuple(_tool(inv, driver) for inv in run.get("invocations") or [] if isinstance(inv, dict)) or (
        ToolRun(name=driver_name, status=ToolStatus.FAILED, message=NO_INVOCATIONS),)
    stage = str((run.get("properties") or {}).get("mlsec-stage") or cat.removeprefix("mlsec/"))
    return SarifRun(path, cat, StageResult(stage, tuple(findings), tools))


def _rule(raw: dict[str, Any], driver: str) -> Rule:
    rid = str(raw.get("id") or "unknown")
    short = _text(raw.get("shortDescription")) or _text(raw.get("fullDescription")) or rid
    props = raw.get("properties") or {}
    tags = tuple(str(t) for t in props.get("tags", []) if isinstance(t, str)) if isinstance(props, dict) else ()
    return Rule(id=rid, name=str(raw.get("name") or rid), short_description=short,
                full_description=_text(raw.get("fullDescription")), help_text=_text(raw.get("help")),
                help_uri=raw.get("helpUri") if isinstance(raw.get("helpUri"), str) else None, tags=tags)


def _text(value: Any) -> str:
    return str(value.get("text", "")) if isinstance(value, dict) else ""


def _score(props: Any) -> float | None:
    if not isinstance(props, dict) or "security-severity" not in props:
        return None
    try:
        return float(props["security-severity"])
    except (TypeError, ValueError):
        return None


def _finding(res: dict[str, Any], rules: list[Rule], by_id: dict[str, Rule], scores: dict[Any, float | None],
             levels: dict[Any, Any], driver: str) -> Finding:
    rid = res.get("ruleId")
    idx = res.get("ruleIndex")
    if rid is None and isinstance(idx, int) and 0 <= idx < len(rules):
        rid = rules[idx].id
    rid = str(rid or f"{driver}/unknown")
    rule = by_id.get(rid) or Rule(id=rid, name=rid, short_description=rid)
    raw_props = res.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    own = _score(props)
    score = own if own is not None else scores.get(rid)
    sev_name = props.get("mlsec-severity")
    if isinstance(sev_name, str):
        severity = Severity.parse(sev_name)
    elif score is not None:
        severity = Severity.from_score(score)
    else:
        level = res.get("level") or levels.get(rid) or "warning"
        severity = _LEVEL_SEVERITY.get(str(level), Severity.MEDIUM)
    message = res.get("message") or {}
    text = str(message.get("text") or message.get("markdown") or rule.short_description)
    fps = res.get("partialFingerprints") or {}
    fingerprint = fps.get("primaryLocationLineHash") if isinstance(fps, dict) else None
    return Finding(rule=rule, message=text, severity=severity, location=_location(res), score=score,
                   fingerprint=str(fingerprint) if fingerprint else None)


def _location(res: dict[str, Any]) -> Location:
    locs = res.get("locations") or []
    first = locs[0] if isinstance(locs, list) and locs and isinstance(locs[0], dict) else {}
    phys = first.get("physicalLocation") or {}
    art = phys.get("artifactLocation") or {}
    region = phys.get("region") or {}
    logical = first.get("logicalLocations") or []
    lname = logical[0].get("fullyQualifiedName") if logical and isinstance(logical[0], dict) else None
    start = region.get("startLine")
    end = region.get("endLine")
    return Location(path=str(art.get("uri", "")), start_line=start if isinstance(start, int) else None,
                    end_line=end if isinstance(end, int) else None, snippet=_text(region.get("snippet")) or None,
                    logical=str(lname) if lname else None)


def _tool(inv: dict[str, Any], driver: dict[str, Any]) -> ToolRun:
    raw_props = inv.get("properties")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    name = str(props.get("tool") or driver.get("name") or "unknown")
    ok = inv.get("executionSuccessful", True) is not False
    status_text = str(props.get("status", "ok" if ok else "failed"))
    try:
        status = ToolStatus(status_text)
    except ValueError:
        status = ToolStatus.OK if ok else ToolStatus.FAILED
    if not ok and status.succeeded:
        status = ToolStatus.FAILED
    notes = [n for n in inv.get("toolExecutionNotifications") or [] if isinstance(n, dict)]
    message = "; ".join(_text(n.get("message")) for n in notes if n.get("level") == "error")
    return ToolRun(name=name, status=status, version=props.get("version"), message=message)
