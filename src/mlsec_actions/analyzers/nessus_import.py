"""Nessus `.nessus` reports (format v2, `NessusClientData_v2`) imported as infra-scan findings.

What is read, per `ReportHost name=...`: each `ReportItem` (attributes `port`, `protocol`, `svc_name`,
`severity` 0-4, `pluginID`, `pluginName`; children `synopsis`, `solution`, `risk_factor`, `cvss3_base_score`
or `cvss_base_score`, `cve`, `plugin_output`). Severity 0 items are informational (open ports, OS guesses) and
are counted, not reported. The report is hostile: read with `xml_safe` (no DTD, no entities, bounded), only
the ReportHost subtrees are built, every text is bounded, a plugin id must be a number. A report that cannot
be read is bad input (exit 2, naming the file), checked before any host is contacted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mlsec_actions.findings import Finding, Location, Rule, Severity

DOCS = "https://github.com/mlsec-actions/mlsec-actions/blob/main/docs/infra-scan.md#nessus"
MAX_REPORT = 256 * 1024 * 1024
MAX_ITEMS = 200_000
_SEVERITIES = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)


@dataclass(frozen=True)
class Imported:
    """One report's findings."""

    findings: tuple[Finding, ...]
    """A finding per ReportItem of severity 1 to 4."""
    informational: int
    """Severity 0 items seen (not reported)."""
    hosts: int
    """ReportHost elements read."""


def _text(item: object, tag: str, limit: int = 2000) -> str:
    import xml.etree.ElementTree as ET

    assert isinstance(item, ET.Element)
    child = item.find(tag)
    return (child.text or "").strip()[:limit] if child is not None else ""


def _score(item: object) -> float | None:
    for tag in ("cvss3_base_score", "cvss_base_score"):
        raw = _text(item, tag, 20)
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value) and 0.0 <= value <= 10.0:
            return value
    return None


def load(path: Path, where: str) -> Imported:
    """The report's findings, located at `where` (the report, relative to the scanned root)."""
    from mlsec_actions import inputs, xml_safe
    from mlsec_actions.errors import InputError

    data = inputs.read_regular(path, "Nessus report", MAX_REPORT)
    try:
        hosts = xml_safe.parse(data, keep={"ReportHost"}, limits=xml_safe.Limits(max_bytes=MAX_REPORT, max_depth=16))
    except xml_safe.XmlRefused as e:
        raise InputError(path, f"not a Nessus report we read: {e}") from None
    if b"<NessusClientData_v2" not in data[:65536]:
        raise InputError(path, "not a Nessus v2 report (no NessusClientData_v2 element)")
    findings: list[Finding] = []
    info = items = 0
    for host in hosts:
        name = host.get("name", "")[:255]
        for item in host.iter("ReportItem"):
            items += 1
            if items > MAX_ITEMS:
                raise InputError(path, f"more than {MAX_ITEMS} ReportItem elements")
            found = _finding(item, name, where, path)
            if found is None:
                info += 1
            else:
                findings.append(found)
    return Imported(tuple(findings), info, len(hosts))


def _finding(item: object, host: str, where: str, path: Path) -> Finding | None:
    import xml.etree.ElementTree as ET

    from mlsec_actions.errors import InputError

    assert isinstance(item, ET.Element)
    plugin, level = item.get("pluginID", ""), item.get("severity", "")
    if not plugin.isdigit() or len(plugin) > 12:
        raise InputError(path, f"ReportItem pluginID {plugin[:20]!r} is not a number")
    if level not in ("0", "1", "2", "3", "4"):
        raise InputError(path, f"ReportItem severity {level[:20]!r} is not 0-4")
    if level == "0":
        return None
    title = (item.get("pluginName", "") or f"Nessus plugin {plugin}")[:200]
    synopsis = _text(item, "synopsis") or title
    rule = Rule(id=f"nessus/{plugin}", name="NessusPlugin", short_description=f"Nessus: {title}",
                full_description=synopsis, help_text=_text(item, "solution") or synopsis, help_uri=DOCS,
                tags=("security", "infrastructure", "nessus"))
    port, proto = item.get("port", "0")[:5], item.get("protocol", "tcp")[:10]
    cves = [c.text.strip()[:30] for c in item.findall("cve") if c.text and c.text.strip()][:20]
    facts = [("host", host), ("port", port), ("protocol", proto), ("plugin", plugin)]
    if cves:
        facts.append(("cve", ",".join(cves)))
    return Finding(rule, f"{title} on {host}:{port}/{proto}.", _SEVERITIES[int(level)],
                   Location(where, logical=f"{host}:{port}/{proto}", logical_kind="object"), score=_score(item),
                   properties=tuple(facts))
